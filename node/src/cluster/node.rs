//! Starting the cluster part of a node: the Raft store in `<data_dir>/raft`, the `Cluster`
//! gRPC service, membership (a node without seeds initializes a cluster of its own; a
//! node with seeds asks them to add it), and two loops: the heartbeat that renews this
//! node's lease, and on the leader the scheduler.

use openraft::SnapshotPolicy;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use super::error::StartError;
use super::handle::ClusterHandle;
use super::network::Network;
use super::proposal::Proposal;
use super::service::ClusterService;
use super::state::{Command, NodeRecord};
use super::store::{log::LogStore, open_db, state_machine::StateMachineStore};
use super::tls::TlsFiles;
use super::types::{raft_id, ClusterNode, HeadendRaft};
use crate::config::ClusterConfig;
use crate::scheduler::{plan, SchedulerInput};
use headend_proto::cluster::cluster_server::ClusterServer;

/// Largest gRPC message between nodes (snapshots and log batches).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The running cluster part of a node.
#[derive(Debug)]
pub struct ClusterRuntime {
    handle: ClusterHandle,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// TLS material, shared with the admin API.
    pub tls: Option<TlsFiles>,
}

impl ClusterRuntime {
    /// The handle the rest of the node uses.
    pub fn handle(&self) -> &ClusterHandle {
        &self.handle
    }

    /// A receiver that turns `true` when the node stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops the loops, the `Cluster` service and Raft.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.handle.raft().shutdown()).await;
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

/// Wall-clock Unix milliseconds (leases are wall-clock: nodes must agree on time).
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Resolves when `stop` turns true (or its sender is gone).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Starts the cluster part of node `name` with its state under `data_dir`.
pub async fn start(name: &str, data_dir: &Path, c: &ClusterConfig) -> Result<ClusterRuntime, StartError> {
    let tls = c.tls.as_ref().map(TlsFiles::load).transpose()?;
    let dir = data_dir.join("raft");
    let store_err = |source| StartError::Store { path: dir.clone(), source };
    std::fs::create_dir_all(&dir).map_err(|e| store_err(sled::Error::Io(e)))?;
    let db = open_db(&dir).map_err(store_err)?;
    let log = LogStore::open(&db).map_err(store_err)?;
    let sm = StateMachineStore::open(&db).map_err(|e| StartError::State { path: dir.clone(), message: e.to_string() })?;
    let reader = sm.reader();

    let raft_config = openraft::Config {
        cluster_name: "headend".into(),
        heartbeat_interval: c.heartbeat_ms,
        election_timeout_min: c.election_timeout_min_ms,
        election_timeout_max: c.election_timeout_max_ms,
        install_snapshot_timeout: c.election_timeout_max_ms.max(1000),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(c.snapshot_logs),
        max_in_snapshot_log_to_keep: c.snapshot_logs / 2,
        ..Default::default()
    }
    .validate()
    .map_err(|e| StartError::RaftConfig(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(c.raft_listen)
        .await
        .map_err(|source| StartError::Bind { field: "node.cluster.raft_listen", addr: c.raft_listen, source })?;
    let me = ClusterNode { name: name.to_owned(), raft_addr: c.raft_addr(), admin_addr: c.admin_addr() };
    let id = raft_id(name);
    let client_tls = tls.as_ref().map(TlsFiles::client);
    let raft = HeadendRaft::new(id, Arc::new(raft_config), Network::new(client_tls.clone()), log, sm)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let handle = ClusterHandle::new(raft.clone(), me.clone(), reader, client_tls);
    let (stop, _) = watch::channel(false);
    let mut tasks = Vec::new();

    let mut server = Server::builder().tcp_nodelay(true);
    if let Some(tls) = &tls {
        server = server.tls_config(tls.server(false)).map_err(|e| StartError::Raft(format!("TLS: {e}")))?;
    }
    let service = ClusterServer::new(ClusterService::new(handle.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serve = server.add_service(service).serve_with_incoming_shutdown(incoming, stopped(stop.subscribe()));
    tasks.push(tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "cluster gRPC service stopped");
        }
    }));

    let initialized = raft.is_initialized().await.map_err(|e| StartError::Raft(e.to_string()))?;
    if !initialized && c.seeds.is_empty() && c.bootstrap {
        raft.initialize(BTreeMap::from([(id, me.clone())])).await.map_err(|e| StartError::Raft(e.to_string()))?;
        tracing::info!(node = name, "initialized a new cluster");
    } else if !initialized && !c.seeds.is_empty() {
        tasks.push(tokio::spawn(join(handle.clone(), c.seeds.clone(), stop.subscribe())));
    }
    let record = NodeRecord {
        name: name.to_owned(),
        raft_addr: me.raft_addr.clone(),
        admin_addr: me.admin_addr.clone(),
        capacity: c.capacity,
        interfaces: c.interfaces.clone(),
        lease_until_ms: 0,
    };
    tasks.push(tokio::spawn(heartbeats(handle.clone(), record, c.lease_ms, stop.subscribe())));
    tasks.push(tokio::spawn(schedule(handle.clone(), c.lease_ms, stop.subscribe())));
    tracing::info!(node = name, raft_id = id, raft = %c.raft_listen, admin = %c.admin_listen, initialized, "cluster node started");
    Ok(ClusterRuntime { handle, stop, tasks, tls })
}

/// Whether this node is in the membership config (voter or learner).
fn is_member(handle: &ClusterHandle) -> bool {
    handle.raft().metrics().borrow().membership_config.membership().get_node(&handle.id()).is_some()
}

fn is_voter(handle: &ClusterHandle) -> bool {
    handle.raft().metrics().borrow().membership_config.membership().voter_ids().any(|v| v == handle.id())
}

/// Asks the seeds, in turn, to make this node a voter, until one does.
async fn join(handle: ClusterHandle, seeds: Vec<String>, stop: watch::Receiver<bool>) {
    loop {
        for seed in &seeds {
            if is_voter(&handle) || *stop.borrow() {
                return;
            }
            match handle.join_via(seed).await {
                Ok(_) => {
                    tracing::info!(seed = %seed, "joined the cluster");
                    return;
                }
                Err(e) => tracing::warn!(seed = %seed, error = %e, "cannot join through this seed yet; retrying"),
            }
        }
        if tokio::time::timeout(Duration::from_millis(500), stopped(stop.clone())).await.is_ok() {
            return;
        }
    }
}

/// Renews this node's lease every quarter lease while it is a member.
async fn heartbeats(handle: ClusterHandle, record: NodeRecord, lease_ms: u64, stop: watch::Receiver<bool>) {
    let every = Duration::from_millis((lease_ms / 4).max(50));
    loop {
        if tokio::time::timeout(every, stopped(stop.clone())).await.is_ok() {
            return;
        }
        if !is_member(&handle) {
            continue;
        }
        let beat = NodeRecord { lease_until_ms: unix_ms() + lease_ms, ..record.clone() };
        if let Err(e) = handle.propose(Proposal::Command(Command::NodeHeartbeat(beat))).await {
            tracing::debug!(error = %e, "heartbeat not committed");
        }
    }
}

/// On the leader: runs the scheduler when the state changes and every quarter lease, and
/// commits its decisions. A new leader first waits one lease so that live nodes have
/// renewed theirs.
async fn schedule(handle: ClusterHandle, lease_ms: u64, stop: watch::Receiver<bool>) {
    let tick = Duration::from_millis((lease_ms / 4).max(50));
    let mut changes = handle.state().subscribe();
    let mut leader_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stopped(stop.clone()) => return,
            _ = changes.changed() => {}
            _ = tokio::time::sleep(tick) => {}
        }
        if !handle.is_leader() {
            leader_since = None;
            continue;
        }
        if leader_since.get_or_insert_with(Instant::now).elapsed() < Duration::from_millis(lease_ms) {
            continue;
        }
        let now = unix_ms();
        let commands = handle.state().read(|s| plan(&SchedulerInput::from_state(s, now)));
        if commands.is_empty() {
            continue;
        }
        tracing::info!(decisions = commands.len(), "scheduler: committing placement");
        if let Err(e) = handle.propose(Proposal::Command(Command::Batch(commands))).await {
            tracing::warn!(error = %e, "scheduler decisions not committed");
        }
    }
}
