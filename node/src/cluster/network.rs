//! Raft RPCs over tonic: a [`RaftNetworkFactory`] whose connections call the `Cluster`
//! service of `proto/cluster.proto` on the target's advertised Raft address. Payloads
//! are openraft's own types as JSON.
//!
//! Every answer a peer gives is noted in [`PeerAcks`]: on the leader, which sends every
//! member an AppendEntries (at least a heartbeat) each `heartbeat_ms`, that is the
//! cluster's view of which nodes are alive, used to renew their leases without a Raft
//! write per node (see `node::heartbeats`).

use headend_proto::cluster::cluster_client::ClusterClient;
use headend_proto::cluster::RaftPayload;
use openraft::error::{Infallible, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::types::{ClusterNode, NodeId, TypeConfig};

/// How long a connection attempt to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A lazily connecting gRPC channel to `addr` (`host:port`), TLS when `tls` is set.
pub fn channel(addr: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.clone())?;
    }
    Ok(endpoint.connect_lazy())
}

/// How long openraft waits before it retries a peer that was unreachable, unless
/// [`Network::new`] is given another interval. openraft's own default is 500 ms, which
/// left a restarted node without log entries for up to half a second after it came back
/// (it learned the leader from heartbeats but lagged behind, so a candidacy of its own
/// was refused if the leader died in that window).
pub const DEFAULT_RETRY: Duration = Duration::from_millis(100);

/// When each peer last answered a Raft RPC of this node. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct PeerAcks(Arc<Mutex<HashMap<NodeId, Instant>>>);

impl PeerAcks {
    fn record(&self, peer: NodeId) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, Instant::now());
    }

    /// Whether `peer` answered an RPC within the last `within`.
    pub fn answered_within(&self, peer: NodeId, within: Duration) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&peer).is_some_and(|t| t.elapsed() <= within)
    }
}

/// Makes one [`PeerConnection`] per target.
#[derive(Debug, Clone, Default)]
pub struct Network {
    tls: Option<ClientTlsConfig>,
    acks: PeerAcks,
    retry: Option<Duration>,
}

impl Network {
    /// A network using `tls` (mutual TLS) for every peer when set, noting answers in
    /// `acks` and retrying an unreachable peer every `retry`.
    pub fn new(tls: Option<ClientTlsConfig>, acks: PeerAcks, retry: Duration) -> Self {
        Network { tls, acks, retry: Some(retry) }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> PeerConnection {
        let client = channel(&node.raft_addr, self.tls.as_ref()).map(ClusterClient::new).map_err(|e| e.to_string());
        let retry = self.retry.unwrap_or(DEFAULT_RETRY);
        PeerConnection { target, node: node.clone(), client, acks: self.acks.clone(), retry, cut: Default::default() }
    }
}

/// The connection to one peer.
#[derive(Debug)]
pub struct PeerConnection {
    target: NodeId,
    node: ClusterNode,
    client: Result<ClusterClient<Channel>, String>,
    acks: PeerAcks,
    retry: Duration,
    /// RPCs to this peer cut by their deadline (openraft gives every AppendEntries
    /// `heartbeat_ms`), for the operator hint in [`RpcDeadline`].
    cut: Arc<std::sync::atomic::AtomicU64>,
}

/// Counts an RPC that was dropped before it finished (its deadline passed) and, every
/// [`CUT_HINT_EVERY`] of them, tells the operator what to change: with openraft 0.9 an
/// AppendEntries must come back within `heartbeat_ms`, so a link whose round trip is
/// longer commits nothing.
struct RpcDeadline {
    cut: Arc<std::sync::atomic::AtomicU64>,
    peer: String,
    ttl: Duration,
    done: bool,
}

const CUT_HINT_EVERY: u64 = 50;

impl Drop for RpcDeadline {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let n = self.cut.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n % CUT_HINT_EVERY == 1 {
            tracing::warn!(peer = %self.peer, deadline = ?self.ttl, cut = n,
                "Raft RPCs to this peer do not come back within node.cluster.heartbeat_ms; nothing commits while the round trip is longer; \
                 fix: a link slower than the LAN needs heartbeat_ms above its round trip (e.g. 150 for 50 ms each way) and election timeouts of 4x..8x that");
        }
    }
}

/// An error a peer connection reports as openraft's network errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PeerError(String);

type RpcResult<T, E> = Result<T, RPCError<NodeId, ClusterNode, RaftError<NodeId, E>>>;

impl PeerConnection {
    async fn call<Req, Resp, E>(&mut self, rpc: Rpc, req: &Req, option: &RPCOption) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let who = format!("{} ({})", self.node.name, self.node.raft_addr);
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&PeerError(format!("{who}: bad address: {e}"))))),
        };
        let json = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = client;
        let payload = RaftPayload { json };
        let call = async {
            match rpc {
                Rpc::Append => client.append_entries(payload).await,
                Rpc::Vote => client.vote(payload).await,
                Rpc::Snapshot => client.install_snapshot(payload).await,
            }
        };
        let mut deadline = RpcDeadline { cut: self.cut.clone(), peer: who.to_string(), ttl: option.hard_ttl(), done: false };
        let reply = tokio::time::timeout(option.hard_ttl(), call).await;
        deadline.done = reply.is_ok();
        drop(deadline);
        let reply = match reply {
            Err(_) => {
                let e = PeerError(format!("{who}: no answer within {:?}", option.hard_ttl()));
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Ok(Err(status)) => {
                let e = PeerError(format!("{who}: {}: {}", status.code(), status.message()));
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::Unknown => RPCError::Unreachable(Unreachable::new(&e)),
                    _ => RPCError::Network(NetworkError::new(&e)),
                });
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            serde_json::from_slice(&reply.json).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // Only a working peer renews its lease: one whose Raft core quit (e.g. its disk is
        // full) still answers, with an error, and must be treated as gone.
        if result.is_ok() {
            self.acks.record(self.target);
        }
        result.map_err(|e| RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e)))
    }
}

#[derive(Debug, Clone, Copy)]
enum Rpc {
    Append,
    Vote,
    Snapshot,
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, Infallible> {
        self.call(Rpc::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(Rpc::Snapshot, &rpc, &option).await
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>, Infallible> {
        self.call(Rpc::Vote, &rpc, &option).await
    }

    /// A constant interval (openraft's default: 500 ms) between attempts to reach a peer
    /// that was unreachable: a node that restarts gets its missing entries within
    /// `retry` instead of half a second.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.retry))
    }
}
