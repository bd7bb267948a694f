//! [`ClusterHandle`]: what the rest of the node uses of the cluster. Writes go to the
//! leader: carried out here when this node leads, else forwarded over the `Cluster`
//! service's `Forward` RPC; a forwarded write returns once this node has applied it too
//! (a client reading from the same node sees its own write).

use headend_proto::cluster::cluster_client::ClusterClient;
use headend_proto::cluster::RaftPayload;
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, ClientTlsConfig};

use super::error::ClusterError;
use super::proposal::{execute, LocalError, Outcome, Proposal};
use super::store::state_machine::StateReader;
use super::types::{ClusterNode, HeadendRaft, NodeId};

/// How long a write may wait for a leader and its commit.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// How many times a write may be forwarded (follower -> seed -> leader).
const MAX_HOPS: u8 = 2;

/// A write crossing the `Forward` RPC.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Forwarded {
    pub proposal: Proposal,
    pub hops: u8,
}

/// The cluster side of a running node. Cheap to clone.
#[derive(Clone)]
pub struct ClusterHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle").field("me", &self.inner.me).finish()
    }
}

struct Inner {
    raft: HeadendRaft,
    id: NodeId,
    me: ClusterNode,
    state: StateReader,
    tls: Option<ClientTlsConfig>,
    /// Clients of peers' `Cluster` service by address (lock held only to clone one out).
    peers: Mutex<HashMap<String, ClusterClient<Channel>>>,
}

impl ClusterHandle {
    pub(crate) fn new(raft: HeadendRaft, me: ClusterNode, state: StateReader, tls: Option<ClientTlsConfig>) -> Self {
        let id = super::types::raft_id(&me.name);
        ClusterHandle { inner: Arc::new(Inner { raft, id, me, state, tls, peers: Mutex::new(HashMap::new()) }) }
    }

    /// The Raft node.
    pub fn raft(&self) -> &HeadendRaft {
        &self.inner.raft
    }

    /// This node's Raft id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// This node as a member.
    pub fn me(&self) -> &ClusterNode {
        &self.inner.me
    }

    /// The applied replicated state.
    pub fn state(&self) -> &StateReader {
        &self.inner.state
    }

    /// The leader as this node knows it.
    pub fn leader(&self) -> Option<(NodeId, ClusterNode)> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id).cloned().unwrap_or_default();
        Some((id, node))
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.inner.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Writes `proposal` through the leader and returns once it is committed (and applied
    /// on this node).
    pub async fn propose(&self, proposal: Proposal) -> Result<Outcome, ClusterError> {
        self.propose_hops(proposal, 0).await
    }

    /// Carries out a write that arrived over `Forward` with `hops` so far.
    pub(crate) async fn propose_hops(&self, proposal: Proposal, hops: u8) -> Result<Outcome, ClusterError> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let mut metrics = self.inner.raft.metrics();
        loop {
            let leader = self.leader();
            match leader {
                Some((id, _)) if id == self.inner.id => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match tokio::time::timeout(left, execute(&self.inner.raft, proposal.clone())).await {
                        Ok(Ok(outcome)) => return Ok(outcome),
                        Ok(Err(LocalError::Failed(e))) => return Err(e),
                        Ok(Err(LocalError::NotLeader)) => {}
                        Err(_) => return Err(ClusterError::NotCommitted { ms: WRITE_TIMEOUT.as_millis() as u64 }),
                    }
                }
                Some((_, node)) if hops < MAX_HOPS => {
                    let outcome = self.forward(&node, &proposal, hops + 1, deadline).await?;
                    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(500));
                    self.inner.state.wait_applied(outcome.index, left).await;
                    return Ok(outcome);
                }
                Some(_) | None => {}
            }
            // Wait for a (new) leader.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, metrics.changed()).await.is_err() {
                return Err(match self.leader() {
                    Some(_) => ClusterError::NotCommitted { ms: WRITE_TIMEOUT.as_millis() as u64 },
                    None => ClusterError::NoLeader,
                });
            }
        }
    }

    /// Sends `proposal` to `leader`'s `Forward` RPC.
    async fn forward(&self, leader: &ClusterNode, proposal: &Proposal, hops: u8, deadline: Instant) -> Result<Outcome, ClusterError> {
        let fail = |message: String| ClusterError::Forward { leader: leader.name.clone(), addr: leader.raft_addr.clone(), message };
        let request = Forwarded { proposal: proposal.clone(), hops };
        let json = serde_json::to_vec(&request).map_err(|e| fail(e.to_string()))?;
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(200));
        let reply = self.call_forward(&leader.raft_addr, json, left).await.map_err(fail)?;
        let result: Result<Outcome, ClusterError> = serde_json::from_slice(&reply).map_err(|e| fail(e.to_string()))?;
        result
    }

    /// Calls `Forward` on the node at `addr` with a JSON [`Forwarded`]; the JSON reply.
    pub(crate) async fn call_forward(&self, addr: &str, json: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, String> {
        let mut client = self.peer(addr)?;
        match tokio::time::timeout(timeout, client.forward(RaftPayload { json })).await {
            Err(_) => Err(format!("no answer within {timeout:?}")),
            Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
            Ok(Ok(r)) => Ok(r.into_inner().json),
        }
    }

    /// Asks the node at `seed` (any member) to make this node a voter.
    pub(crate) async fn join_via(&self, seed: &str) -> Result<Outcome, String> {
        let request = Forwarded { proposal: Proposal::Join(self.inner.me.clone()), hops: 0 };
        let json = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let reply = self.call_forward(seed, json, Duration::from_secs(15)).await?;
        let result: Result<Outcome, ClusterError> = serde_json::from_slice(&reply).map_err(|e| e.to_string())?;
        result.map_err(|e| e.to_string())
    }

    fn peer(&self, addr: &str) -> Result<ClusterClient<Channel>, String> {
        let mut peers = self.inner.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = peers.get(addr) {
            return Ok(c.clone());
        }
        let channel = super::network::channel(addr, self.inner.tls.as_ref()).map_err(|e| format!("bad address {addr:?}: {e}"))?;
        let client = ClusterClient::new(channel);
        peers.insert(addr.to_owned(), client.clone());
        Ok(client)
    }
}
