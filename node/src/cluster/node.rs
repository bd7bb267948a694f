//! Starting the cluster part of a node: the Raft store in `<data_dir>/raft`, the `Cluster`
//! gRPC service, membership (a node without seeds initializes a cluster of its own; a
//! node with seeds asks them to add it), and two loops: the lease heartbeat (on the
//! leader: renewing the leases of every node that answers it; elsewhere: registering this
//! node), and on the leader the scheduler.

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
use super::network::{Network, PeerAcks, DEFAULT_RETRY};
use super::proposal::Proposal;
use super::service::ClusterService;
use super::state::{ClusterState, Command, NodeRecord};
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

/// Where a node serves HTTP (HLS) and RTSP, recorded with it for delivery URLs.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub http: String,
    /// Empty: the node runs no RTSP server.
    pub rtsp: String,
}

/// Starts the cluster part of node `name` with its state under `data_dir`.
pub async fn start(name: &str, data_dir: &Path, endpoints: &Endpoints, c: &ClusterConfig) -> Result<ClusterRuntime, StartError> {
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
    let acks = PeerAcks::default();
    let raft = HeadendRaft::new(id, Arc::new(raft_config), Network::new(client_tls.clone(), acks.clone(), DEFAULT_RETRY), log, sm)
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
        http_addr: endpoints.http.clone(),
        rtsp_addr: endpoints.rtsp.clone(),
        capacity: c.capacity,
        interfaces: c.interfaces.clone(),
        lease_until_ms: 0,
    };
    let ack_within = Duration::from_millis(c.election_timeout_max_ms);
    tasks.push(tokio::spawn(heartbeats(handle.clone(), record, c.lease_ms, ack_within, acks, stop.subscribe())));
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

/// Keeps the leases in the replicated state current with few Raft writes.
///
/// On the leader: every node that answered one of its Raft RPCs (AppendEntries, sent at
/// least every `heartbeat_ms`) within `ack_within`, and the leader itself, get their lease
/// renewed to `now + lease_ms` in one `Batch`, once any of them has less than half a lease
/// left: one write per half lease for the whole cluster instead of one per node per
/// quarter lease. A node that dies stops answering, is no longer renewed and its lease
/// lapses at most `lease_ms + ack_within` after it died.
///
/// On any node: its own `NodeHeartbeat` when its record is missing or changed (start,
/// new capacity or addresses), or as a fallback when its lease has less than a quarter
/// left (no leader renewed it, e.g. during an election).
///
/// Fewer entries matter for failover: a follower that is an entry behind when the leader
/// dies has its candidacy refused by the other one and waits `2 x election_timeout_max`
/// before it stands again (openraft's `smaller_log_timeout`).
async fn heartbeats(
    handle: ClusterHandle,
    record: NodeRecord,
    lease_ms: u64,
    ack_within: Duration,
    acks: PeerAcks,
    stop: watch::Receiver<bool>,
) {
    let every = Duration::from_millis((lease_ms / 8).max(25));
    loop {
        if tokio::time::timeout(every, stopped(stop.clone())).await.is_ok() {
            return;
        }
        if !is_member(&handle) {
            continue;
        }
        let now = unix_ms();
        let mut beats = if handle.is_leader() {
            let alive = |name: &str| acks.answered_within(raft_id(name), ack_within);
            handle.state().read(|s| leader_renewals(s, &record, alive, lease_ms, now))
        } else {
            handle.state().read(|s| own_beat(s, &record, lease_ms, now)).into_iter().collect()
        };
        let command = match beats.len() {
            0 => continue,
            1 => Command::NodeHeartbeat(beats.remove(0)),
            _ => Command::Batch(beats.into_iter().map(Command::NodeHeartbeat).collect()),
        };
        if let Err(e) = handle.propose(Proposal::Command(command)).await {
            tracing::debug!(error = %e, "lease renewal not committed");
        }
    }
}

/// Whether `a` and `b` are the same record but for the lease.
fn same_record(a: &NodeRecord, b: &NodeRecord) -> bool {
    NodeRecord { lease_until_ms: 0, ..a.clone() } == NodeRecord { lease_until_ms: 0, ..b.clone() }
}

/// The record a node writes itself: when `state` lacks it, holds it changed, or its lease
/// has less than a quarter of `lease_ms` left at `now`.
fn own_beat(state: &ClusterState, me: &NodeRecord, lease_ms: u64, now: u64) -> Option<NodeRecord> {
    let due = state.nodes.get(&me.name).is_none_or(|r| !same_record(r, me) || r.lease_until_ms < now + lease_ms / 4);
    due.then(|| NodeRecord { lease_until_ms: now + lease_ms, ..me.clone() })
}

/// The leader's renewals at `now`: itself (`me`, its own record) and every recorded node
/// that is `alive`, all to `now + lease_ms`, once any of them has less than half a lease
/// left (or `me` is missing or changed); none before.
fn leader_renewals(
    state: &ClusterState,
    me: &NodeRecord,
    alive: impl Fn(&str) -> bool,
    lease_ms: u64,
    now: u64,
) -> Vec<NodeRecord> {
    let until = now + lease_ms;
    let soon = now + lease_ms / 2;
    let mut due = state.nodes.get(&me.name).is_none_or(|r| !same_record(r, me) || r.lease_until_ms < soon);
    let mut renewals = vec![NodeRecord { lease_until_ms: until, ..me.clone() }];
    for r in state.nodes.values().filter(|r| r.name != me.name && alive(&r.name)) {
        due |= r.lease_until_ms < soon;
        renewals.push(NodeRecord { lease_until_ms: until, ..r.clone() });
    }
    if due {
        renewals
    } else {
        Vec::new()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, lease_until_ms: u64) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            raft_addr: format!("{name}:1"),
            admin_addr: format!("{name}:2"),
            http_addr: format!("{name}:3"),
            rtsp_addr: String::new(),
            capacity: 10,
            interfaces: vec![],
            lease_until_ms,
        }
    }

    fn state(nodes: &[NodeRecord]) -> ClusterState {
        let mut s = ClusterState::default();
        for n in nodes {
            s.nodes.insert(n.name.clone(), n.clone());
        }
        s
    }

    #[test]
    fn a_node_writes_its_record_when_missing_changed_or_nearly_lapsed() {
        let me = node("n2", 0);
        let now = 100_000;
        let lease = 2000;
        let beat = own_beat(&ClusterState::default(), &me, lease, now).expect("registers");
        assert_eq!(beat.lease_until_ms, now + lease);
        // Renewed by the leader: nothing to write.
        assert_eq!(own_beat(&state(&[node("n2", now + 1000)]), &me, lease, now), None);
        // Capacity changed: written again.
        let more = NodeRecord { capacity: 20, ..me.clone() };
        assert!(own_beat(&state(&[node("n2", now + 1000)]), &more, lease, now).is_some());
        // Less than a quarter lease left: the fallback renewal.
        assert!(own_beat(&state(&[node("n2", now + 499)]), &me, lease, now).is_some());
    }

    #[test]
    fn the_leader_renews_every_node_that_answers_in_one_batch_when_one_is_due() {
        let (lease, now) = (2000, 100_000);
        let me = node("n1", 0);
        let alive = |n: &str| n != "n3";
        // Everyone has more than half a lease left: no write.
        let s = state(&[node("n1", now + 1500), node("n2", now + 1200), node("n3", now + 1200)]);
        assert!(leader_renewals(&s, &me, alive, lease, now).is_empty());
        // n2 is due: n1 and n2 renewed together; n3 does not answer and is left to lapse.
        let s = state(&[node("n1", now + 1500), node("n2", now + 900), node("n3", now + 900)]);
        let r = leader_renewals(&s, &me, alive, lease, now);
        let names: Vec<&str> = r.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2"]);
        assert!(r.iter().all(|n| n.lease_until_ms == now + lease));
        // The records are kept as they are (addresses, capacity).
        assert!(same_record(&r[1], &s.nodes["n2"]));
        // A leader missing from the state registers itself at once.
        let r = leader_renewals(&state(&[node("n2", now + 1500)]), &me, alive, lease, now);
        assert_eq!(r.len(), 2);
    }
}
