//! The reconciler: makes this node's channels match the replicated state. For every
//! multicast group Raft names this node main or backup of, it runs the group's channel
//! (through the playout supervisor) with that role and epoch; channels it no longer has
//! a role for are stopped. A backup follows the main's replicated schedule. What the
//! channels report goes back into Raft: a main's schedule changes (`MainSchedule`), a
//! backup's data-plane takeover (`TakeOver`).
//!
//! Media follow the roles: a node syncs the sources of the channels it streams (and of
//! those whose encode job it holds), its encode pool builds the rendered channels whose
//! job the scheduler placed here, and a main or backup of a rendered channel built
//! elsewhere mirrors the builder's items (`items.rs`), so both play identical bytes.
//!
//! It holds no state Raft does not have: restarted, it converges to the same channels
//! and roles. Channels of the node's own config file are not Raft's: they play on this
//! node alone, and a replicated channel with the same id is refused here.

use crate::cluster::state::{ClusterState, Command, CommandResult, Protocol};
use crate::cluster::{ClusterHandle, Proposal};
use crate::config::FailoverConfig;
use crate::rtsp::server::ServedChannel;
use crate::rtsp::RtspChannels;
use crate::encode::Encoder;
use crate::scheduler::render_job_id;
use crate::spec::channel_spec;
use headend_actors::jobs::build::ChannelBuild;
use headend_actors::sync::actor::{SourceSpec, SyncMsg, ACTOR_NAME as SYNC};
use headend_actors::playout::actor::{actor_name, ChannelEnv, ChannelMsg, ChannelNotice};
use headend_actors::playout::clock::Clock;
use headend_actors::playout::pacer::PacerRole;
use headend_actors::playout::peer::peer_recordings_dir;
use headend_actors::playout::role::{node_tag, Role, RoleCell};
use headend_actors::playout::schedule::Schedule;
use headend_actors::playout::spec::ChannelSpec;
use headend_actors::playout::supervisor::{state_dir, SupervisorMsg};
use headend_actors::hls::{HlsMsg, ACTOR_NAME as HLS};
use headend_actors::recorder::{RecorderMsg, ACTOR_NAME as RECORDER};
use ractor::ActorRef;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How often the reconciler looks again without a state change.
const TICK: Duration = Duration::from_millis(500);
/// Wait before proposing again after a failed proposal.
const RETRY: Duration = Duration::from_millis(200);
/// How often a main copies its backup's newest recordings of the channel.
const FETCH_EVERY: Duration = Duration::from_secs(5);
/// Recorded segments a main keeps as filler.
const KEEP_RECORDINGS: usize = 10;
/// How long a starting reconciler waits to catch up with the cluster before it acts on
/// this node's own state.
const BARRIER_WAIT: Duration = Duration::from_secs(3);

/// How often a main or backup of a rendered channel mirrors the builder's items.
const MIRROR_EVERY: Duration = Duration::from_secs(2);

/// What the reconciler works with.
#[derive(Clone)]
pub struct Reconciler {
    pub cluster: ClusterHandle,
    pub supervisor: ActorRef<SupervisorMsg>,
    /// This node's name.
    pub node: String,
    pub data_dir: PathBuf,
    pub failover: FailoverConfig,
    /// The node's multicast interface (and source address), if configured.
    pub interface: Option<Ipv4Addr>,
    /// Channels of the node's config file.
    pub local_ids: BTreeSet<String>,
    pub clock: Arc<dyn Clock>,
    /// The RTSP server's channels, when the node runs one.
    pub rtsp: Option<RtspChannels>,
    /// Where synced media go (`crate::sync::cache_root`).
    pub cache_root: PathBuf,
    /// `node.sync.interval_secs`.
    pub sync_interval_secs: u64,
    /// The config file's sources and builds: always kept next to the cluster's.
    pub local_sources: Vec<SourceSpec>,
    pub local_builds: Vec<ChannelBuild>,
    pub encoder: Encoder,
}

/// What this node does for the media of the cluster's channels.
#[derive(Debug, Default)]
struct MediaWork {
    sources: Vec<SourceSpec>,
    builds: Vec<ChannelBuild>,
    /// Rendered channels this node streams, by the node that builds their items.
    mirrors: BTreeMap<String, String>,
}

/// A channel this node runs for the cluster.
struct Running {
    spec: ChannelSpec,
    protocol: Protocol,
    cell: Arc<RoleCell>,
    group: String,
    /// The replicated schedule last handed to the channel (backups).
    adopted: Option<Schedule>,
}

/// A role this node has in the replicated state.
struct Wanted {
    spec: ChannelSpec,
    protocol: Protocol,
    group: String,
    role: Role,
    epoch: u64,
    /// The replicated schedule, when it differs from the one last adopted.
    schedule: Option<Schedule>,
}

impl Reconciler {
    /// Runs until `stop` turns true, then stops the channels it started.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // A restarted node's state is its own log, possibly far behind: acting on it would
        // start channels in roles long gone. A no-op write through the leader returns once
        // this node has applied everything committed before it (a read barrier). Without
        // a majority it cannot; after BARRIER_WAIT the node acts on what it has (the data
        // plane's collision check and epoch stamps still keep it off a group already sent).
        let barrier = async {
            loop {
                match tokio::time::timeout(Duration::from_secs(1), self.cluster.propose(Proposal::Command(Command::Batch(Vec::new())))).await {
                    Ok(Ok(_)) => return,
                    _ => tokio::time::sleep(RETRY).await,
                }
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = tokio::time::timeout(BARRIER_WAIT, barrier) => if r.is_err() {
                tracing::warn!("the cluster's latest state is not reachable (no majority?); running channels from this node's state");
            },
        }
        let (notices_tx, mut notices) = mpsc::unbounded_channel();
        let (proposals, proposals_rx) = mpsc::unbounded_channel();
        let proposer = tokio::spawn(propose_loop(self.cluster.clone(), proposals_rx));
        let mut changes = self.cluster.state().subscribe();
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        let mut refused: BTreeSet<String> = BTreeSet::new();
        let mut recording: BTreeSet<String> = BTreeSet::new();
        let mut hls: BTreeSet<String> = BTreeSet::new();
        let mut metrics = self.cluster.raft().metrics();
        let mut fetchers: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
        let mut mirrors: BTreeMap<String, (String, JoinHandle<()>)> = BTreeMap::new();
        let (builds_tx, builds_rx) = watch::channel(self.local_builds.clone());
        let builder = tokio::spawn(run_encoder(self.encoder.clone(), builds_rx));
        loop {
            self.reconcile(&mut running, &mut refused, &notices_tx);
            let work = self.cluster.state().read(|s| self.media_work(s, &refused));
            self.sync_sources(&work.sources);
            builds_tx.send_replace(work.builds);
            self.mirror_items(work.mirrors, &mut mirrors);
            self.record(&running, &mut recording);
            self.serve_hls(&running, &mut hls);
            self.serve_rtsp(&running);
            self.fetch_recordings(&running, &mut fetchers);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                r = changes.changed() => if r.is_err() { break },
                Some(n) = notices.recv() => self.on_notice(n, &running, &proposals),
                _ = tokio::time::sleep(TICK) => {}
                r = metrics.changed() => {
                    if r.is_err() {
                        break; // Raft shut down: the node is stopping.
                    }
                    let failed = metrics.borrow().running_state.clone().err();
                    if let Some(e) = failed {
                        // This node can no longer learn or record roles: it must not keep a
                        // group (its lease lapses, the scheduler moves its roles, and the
                        // backups take over the groups it falls silent on).
                        tracing::error!(error = %e, "the Raft core of this node stopped; stopping the cluster's channels here (fix the cause, e.g. a full disk, and restart the node)");
                        break;
                    }
                }
            }
        }
        proposer.abort();
        builder.abort();
        // Back to the config file's own media work: its channels keep playing.
        self.sync_sources(&self.local_sources);
        let _ = self.encoder.set(self.local_builds.clone()).await;
        for (_, f) in fetchers {
            f.abort();
        }
        for (_, (_, m)) in mirrors {
            m.abort();
        }
        for id in recording {
            recorder_cast(RecorderMsg::Stop { channel: id });
        }
        for id in hls {
            hls_cast(HlsMsg::Stop { channel: id });
        }
        for id in running.keys() {
            self.supervisor.cast(SupervisorMsg::Remove { id: id.clone() }).ok();
        }
    }

    /// What this node syncs, builds and mirrors for the cluster's channels (next to the
    /// config file's own sources and builds). Channels refused here (an id of the config
    /// file) are left out.
    fn media_work(&self, s: &ClusterState, refused: &BTreeSet<String>) -> MediaWork {
        let mut work = MediaWork { sources: self.local_sources.clone(), builds: self.local_builds.clone(), ..MediaWork::default() };
        let streams = |id: &str| s.groups.values().any(|g| g.channel == id && (g.main.as_deref() == Some(&self.node) || g.backup.as_deref() == Some(&self.node)));
        for (id, c) in s.channels.iter().filter(|(id, _)| !refused.contains(*id) && !self.local_ids.contains(*id)) {
            let c = &c.config;
            let job = s.encode_jobs.get(&render_job_id(id)).and_then(|j| j.node.clone());
            let builds_here = c.render.is_some() && job.as_deref() == Some(&self.node);
            if c.render.is_some() && streams(id) {
                if let Some(builder) = job.filter(|n| *n != self.node) {
                    work.mirrors.insert(id.clone(), builder);
                }
            }
            // A rendered channel's media are needed where it is built; the others' where
            // they are played.
            let needs_media = if c.render.is_some() { builds_here } else { streams(id) };
            if needs_media {
                if let Some(src) = crate::sync::source_spec(c, self.sync_interval_secs) {
                    if !work.sources.iter().any(|x| x.channel == src.channel) {
                        work.sources.push(src);
                    }
                }
            }
            if builds_here {
                match crate::encode::media_dir(c, &self.cache_root).map(|m| crate::encode::channel_build(c, m, &self.data_dir)) {
                    Some(Ok(Some(b))) => work.builds.push(b),
                    Some(Err(e)) => tracing::error!(channel = %id, error = %e, "cannot build this channel's items"),
                    _ => tracing::error!(channel = %id, "a rendered channel without media folder or source; fix: give it render.media or a sync source"),
                }
            }
        }
        work
    }

    /// Hands the sync actor the sources to sync (idempotent; repeated every pass, so a
    /// restarted actor gets them back).
    fn sync_sources(&self, sources: &[SourceSpec]) {
        if let Some(actor) = ractor::registry::where_is(SYNC).map(ActorRef::<SyncMsg>::from) {
            let _ = actor.cast(SyncMsg::SetSources(sources.to_vec()));
        }
    }

    /// Keeps one mirroring task per rendered channel this node streams and another node
    /// builds (restarted when the builder changes).
    fn mirror_items(&self, wanted: BTreeMap<String, String>, tasks: &mut BTreeMap<String, (String, JoinHandle<()>)>) {
        tasks.retain(|id, (builder, task)| {
            let keep = wanted.get(id) == Some(builder) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (id, builder) in wanted {
            if tasks.contains_key(&id) {
                continue;
            }
            let (cluster, dir) = (self.cluster.clone(), crate::spec::items_dir(&self.data_dir, &id));
            let (channel, from) = (id.clone(), builder.clone());
            tracing::info!(channel = %id, builder = %builder, "mirroring the channel's items from the node that builds them");
            let task = tokio::spawn(async move {
                let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap_or_default();
                let mut failing = false;
                loop {
                    let peer = cluster.state().read(|s| s.nodes.get(&from).map(|n| n.http_addr.clone()).filter(|a| !a.is_empty()));
                    if let Some(peer) = peer {
                        match crate::items::mirror(&client, &peer, &channel, &dir).await {
                            Ok(m) => {
                                if m.copied + m.removed > 0 || failing {
                                    tracing::info!(channel = %channel, builder = %from, copied = m.copied, removed = m.removed, "mirrored items");
                                }
                                failing = false;
                            }
                            Err(e) if !failing => {
                                tracing::warn!(channel = %channel, builder = %from, error = %e, "cannot mirror the channel's items yet (retrying)");
                                failing = true;
                            }
                            Err(_) => {}
                        }
                    }
                    tokio::time::sleep(MIRROR_EVERY).await;
                }
            });
            tasks.insert(id, (builder, task));
        }
    }

    /// The spec this node runs a replicated channel with: sent from the node's own
    /// interface and source address when it has one.
    fn spec(&self, config: &crate::config::ChannelConfig) -> ChannelSpec {
        if config.render.is_some() {
            // Its playlist folder: empty, not missing, until the first items arrive.
            let _ = std::fs::create_dir_all(crate::spec::items_dir(&self.data_dir, &config.id));
        }
        let mut spec = channel_spec(config, &self.data_dir, &self.cache_root);
        if let Some(ip) = self.interface {
            spec.output.interface = ip;
            spec.output.source = Some(ip);
        }
        spec
    }

    fn wanted(&self, s: &ClusterState, running: &BTreeMap<String, Running>) -> BTreeMap<String, Wanted> {
        let mut out = BTreeMap::new();
        for (key, g) in &s.groups {
            let role = if g.main.as_deref() == Some(&self.node) {
                Role::Main
            } else if g.backup.as_deref() == Some(&self.node) {
                Role::Backup
            } else {
                continue;
            };
            let Some(c) = s.channels.get(&g.channel) else { continue };
            let adopted = running.get(&g.channel).and_then(|r| r.adopted.as_ref());
            let schedule = s.schedules.get(&g.channel).filter(|s| Some(*s) != adopted).cloned();
            let w = Wanted { spec: self.spec(&c.config), protocol: c.protocol, group: key.clone(), role, epoch: g.epoch, schedule };
            out.insert(g.channel.clone(), w);
        }
        out
    }

    fn reconcile(&self, running: &mut BTreeMap<String, Running>, refused: &mut BTreeSet<String>, notices: &mpsc::UnboundedSender<ChannelNotice>) {
        let mut wanted = self.cluster.state().read(|s| self.wanted(s, running));
        wanted.retain(|id, _| {
            let local = self.local_ids.contains(id);
            if local && refused.insert(id.clone()) {
                tracing::error!(channel = %id, "the cluster assigns this node a channel with the id of a channel in its config file; \
                    fix: rename one of them (the config file's channel keeps playing)");
            }
            !local
        });
        for id in running.keys().filter(|id| !wanted.contains_key(*id)).cloned().collect::<Vec<_>>() {
            running.remove(&id);
            tracing::info!(channel = %id, "no role for this node any more: stopping the channel");
            self.supervisor.cast(SupervisorMsg::Remove { id }).ok();
        }
        for (id, w) in wanted {
            let restart = running.get(&id).is_none_or(|r| r.spec != w.spec);
            let cell = running.get(&id).map(|r| r.cell.clone()).unwrap_or_else(|| Arc::new(RoleCell::new(w.role, w.epoch)));
            if cell.apply(w.role, w.epoch) {
                tracing::info!(channel = %id, role = ?w.role, epoch = w.epoch, "role from the cluster");
            }
            if restart {
                let reader = self.cluster.state().clone();
                let channel = id.clone();
                let env = ChannelEnv {
                    state_dir: state_dir(&self.data_dir, &id),
                    clock: self.clock.clone(),
                    role: PacerRole { cell: cell.clone(), failover: Some(self.failover.settings(node_tag(&self.node))) },
                    notices: Some(notices.clone()),
                    replicated: Some(Arc::new(move || reader.read(|s| s.schedules.get(&channel).cloned()))),
                };
                tracing::info!(channel = %id, role = ?w.role, epoch = w.epoch, group = %w.group, "starting the channel for the cluster");
                self.supervisor.cast(SupervisorMsg::Ensure { spec: Box::new(w.spec.clone()), env: Box::new(env) }).ok();
                running.insert(id.clone(), Running { spec: w.spec, protocol: w.protocol, cell, group: w.group, adopted: w.schedule.clone() });
                continue;
            }
            let r = running.get_mut(&id).expect("running");
            r.group = w.group;
            r.protocol = w.protocol;
            // A backup follows the main's schedule (a main owns it).
            if let (Some(schedule), Role::Backup) = (w.schedule, cell.get().0) {
                if let Some(actor) = ractor::registry::where_is(actor_name(&id)).map(ActorRef::<ChannelMsg>::from) {
                    if actor.cast(ChannelMsg::AdoptSchedule(Box::new(schedule.clone()))).is_ok() {
                        r.adopted = Some(schedule);
                    }
                }
            }
        }
    }

    /// Records the live output of the groups this node backs up (for a peer's content
    /// failure), and stops recording the others.
    fn record(&self, running: &BTreeMap<String, Running>, recording: &mut BTreeSet<String>) {
        let backs_up: BTreeSet<&String> = running.iter().filter(|(_, r)| r.cell.get().0 == Role::Backup).map(|(id, _)| id).collect();
        for id in recording.iter().filter(|id| !backs_up.contains(id)).cloned().collect::<Vec<_>>() {
            if recorder_cast(RecorderMsg::Stop { channel: id.clone() }) {
                recording.remove(&id);
            }
        }
        for id in backs_up {
            if recording.contains(id) {
                continue;
            }
            let out = &running[id].spec.output;
            if recorder_cast(RecorderMsg::Record { channel: id.clone(), group: out.group, port: out.port, interface: out.interface }) {
                tracing::info!(channel = %id, group = %out.group, port = out.port, "recording the group this node backs up");
                recording.insert(id.clone());
            }
        }
    }

    /// Serves as HLS the channels requested with that protocol while this node sends them
    /// (their main); the segmenter reads the node's own output from the group.
    fn serve_hls(&self, running: &BTreeMap<String, Running>, serving: &mut BTreeSet<String>) {
        let wanted: BTreeSet<&String> =
            running.iter().filter(|(_, r)| r.protocol == Protocol::Hls && r.cell.get().0 == Role::Main).map(|(id, _)| id).collect();
        for id in serving.iter().filter(|id| !wanted.contains(id)).cloned().collect::<Vec<_>>() {
            if hls_cast(HlsMsg::Stop { channel: id.clone() }) {
                serving.remove(&id);
            }
        }
        for id in wanted {
            let out = &running[id].spec.output;
            if !serving.contains(id) && hls_cast(HlsMsg::Start { channel: id.clone(), group: out.group, port: out.port, interface: out.interface }) {
                serving.insert(id.clone());
            }
        }
    }

    /// Offers over RTSP the channels requested with that protocol while this node is their
    /// main.
    fn serve_rtsp(&self, running: &BTreeMap<String, Running>) {
        let Some(rtsp) = &self.rtsp else { return };
        let wanted: BTreeMap<String, ServedChannel> = running
            .iter()
            .filter(|(_, r)| r.protocol == Protocol::Rtsp && r.cell.get().0 == Role::Main)
            .map(|(id, r)| (id.clone(), ServedChannel { group: r.spec.output.group, port: r.spec.output.port, interface: r.spec.output.interface }))
            .collect();
        let mut served = rtsp.write().unwrap_or_else(|p| p.into_inner());
        if *served != wanted {
            *served = wanted;
        }
    }

    /// Where this node is main, keeps copies of the backup's newest recordings of the
    /// channel: the filler when the channel's content fails.
    fn fetch_recordings(&self, running: &BTreeMap<String, Running>, fetchers: &mut BTreeMap<String, JoinHandle<()>>) {
        let mains: BTreeSet<&String> = running.iter().filter(|(_, r)| r.cell.get().0 == Role::Main).map(|(id, _)| id).collect();
        fetchers.retain(|id, f| {
            let keep = mains.contains(id) && !f.is_finished();
            if !keep {
                f.abort();
            }
            keep
        });
        for id in mains {
            if fetchers.contains_key(id) {
                continue;
            }
            let (cluster, channel, dir) = (self.cluster.clone(), id.clone(), peer_recordings_dir(&state_dir(&self.data_dir, id)));
            let group = running[id].group.clone();
            let rate = running[id].spec.mux_rate;
            fetchers.insert(id.clone(), tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
                loop {
                    tokio::time::sleep(FETCH_EVERY).await;
                    let backup = cluster.state().read(|s| {
                        let b = s.groups.get(&group)?.backup.clone()?;
                        s.nodes.get(&b).map(|n| n.http_addr.clone()).filter(|a| !a.is_empty())
                    });
                    let Some(peer) = backup else { continue };
                    match headend_actors::playout::peer::refresh(&client, &peer, &channel, &dir, KEEP_RECORDINGS, rate).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(channel = %channel, peer = %peer, fetched = n, "copied the backup's recordings (filler)"),
                        Err(e) => tracing::debug!(channel = %channel, peer = %peer, error = %e, "cannot copy the backup's recordings yet"),
                    }
                }
            }));
        }
    }

    fn on_notice(&self, notice: ChannelNotice, running: &BTreeMap<String, Running>, proposals: &mpsc::UnboundedSender<(String, Command)>) {
        match notice {
            ChannelNotice::Schedule { channel, epoch, schedule } => {
                let cmd = Command::MainSchedule { channel: channel.clone(), node: self.node.clone(), epoch, schedule };
                let _ = proposals.send((format!("schedule:{channel}"), cmd));
            }
            ChannelNotice::TookOver { channel, epoch } => {
                let Some(r) = running.get(&channel) else { return };
                tracing::warn!(channel = %channel, group = %r.group, epoch, "recording the takeover in the cluster");
                let cmd = Command::TakeOver { group: r.group.clone(), node: self.node.clone(), epoch };
                let _ = proposals.send((format!("group:{}", r.group), cmd));
            }
            ChannelNotice::Fenced { channel, epoch } => {
                tracing::warn!(channel = %channel, epoch, "fenced on the data plane; waiting for the cluster's roles");
            }
        }
    }
}

/// Proposes the reconciler's writes one at a time, the latest per key, retrying until
/// the cluster takes them (a node cut off from the leader keeps trying).
async fn propose_loop(cluster: ClusterHandle, mut rx: mpsc::UnboundedReceiver<(String, Command)>) {
    let mut pending: BTreeMap<String, Command> = BTreeMap::new();
    loop {
        while let Ok((k, c)) = rx.try_recv() {
            pending.insert(k, c);
        }
        let Some((key, cmd)) = pending.pop_first() else {
            match rx.recv().await {
                Some((k, c)) => {
                    pending.insert(k, c);
                    continue;
                }
                None => return,
            }
        };
        match tokio::time::timeout(Duration::from_secs(2), cluster.propose(Proposal::Command(cmd.clone()))).await {
            Ok(Ok(o)) if o.result == CommandResult::Stale => tracing::info!(key = %key, "cluster refused a stale write (a newer epoch exists)"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(key = %key, error = %e, "write not committed; retrying");
                pending.entry(key).or_insert(cmd);
                tokio::time::sleep(RETRY).await;
            }
            Err(_) => {
                tracing::debug!(key = %key, "write timed out; retrying");
                pending.entry(key).or_insert(cmd);
            }
        }
    }
}

/// Sends to the node's recorder; false when it is not running (retried later).
fn recorder_cast(msg: RecorderMsg) -> bool {
    ractor::registry::where_is(RECORDER).map(ActorRef::<RecorderMsg>::from).is_some_and(|r| r.cast(msg).is_ok())
}

/// Sends to the node's HLS actor; false when it is not running (retried later).
fn hls_cast(msg: HlsMsg) -> bool {
    ractor::registry::where_is(HLS).map(ActorRef::<HlsMsg>::from).is_some_and(|r| r.cast(msg).is_ok())
}

/// Hands the encoder each new set of builds (the first one may start Chromium, which
/// takes a moment: it runs here, off the reconciler's loop).
async fn run_encoder(encoder: Encoder, mut builds: watch::Receiver<Vec<ChannelBuild>>) {
    loop {
        let wanted = builds.borrow_and_update().clone();
        if let Err(e) = encoder.set(wanted).await {
            tracing::error!(error = %e, "cannot start the encoder for the channels placed here (retrying)");
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        if builds.changed().await.is_err() {
            return;
        }
    }
}
