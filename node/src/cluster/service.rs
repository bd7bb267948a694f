//! The `Cluster` gRPC service (proto/cluster.proto): Raft RPCs handed to openraft, and
//! writes forwarded by followers.

use headend_proto::cluster::cluster_server::Cluster;
use headend_proto::cluster::RaftPayload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::error::ClusterError;
use super::handle::{ClusterHandle, Forwarded};
use super::proposal::Outcome;
use super::types::TypeConfig;

/// Serves a node's Raft and `Forward` RPCs.
#[derive(Debug, Clone)]
pub struct ClusterService {
    handle: ClusterHandle,
}

impl ClusterService {
    pub fn new(handle: ClusterHandle) -> Self {
        ClusterService { handle }
    }
}

fn decode<T: DeserializeOwned>(p: &RaftPayload, what: &str) -> Result<T, Status> {
    serde_json::from_slice(&p.json)
        .map_err(|e| Status::invalid_argument(format!("json: not a {what} request ({e}); fix: peers must run the same headend version")))
}

fn encode<T: Serialize>(value: &T) -> Result<Response<RaftPayload>, Status> {
    serde_json::to_vec(value).map(|json| Response::new(RaftPayload { json })).map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn append_entries(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let req: openraft::raft::AppendEntriesRequest<TypeConfig> = decode(request.get_ref(), "AppendEntries")?;
        encode(&self.handle.raft().append_entries(req).await)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let req: openraft::raft::VoteRequest<u64> = decode(request.get_ref(), "Vote")?;
        encode(&self.handle.raft().vote(req).await)
    }

    async fn install_snapshot(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let req: openraft::raft::InstallSnapshotRequest<TypeConfig> = decode(request.get_ref(), "InstallSnapshot")?;
        encode(&self.handle.raft().install_snapshot(req).await)
    }

    async fn forward(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let req: Forwarded = decode(request.get_ref(), "Forward")?;
        let result: Result<Outcome, ClusterError> = self.handle.propose_hops(req.proposal, req.hops).await;
        encode(&result)
    }
}
