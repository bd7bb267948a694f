//! The channel actor: owns a channel's schedule, keeps it extended and stored, runs the
//! pacing thread, answers now-playing and playlist queries, and fails (so its supervisor
//! restarts it) when the pacing thread dies or stops making progress.

use super::clock::Clock;
use super::extend::{extend, ProbeCache, MIN_ENTRIES_AHEAD};
use super::mux::MuxEvent;
use super::pacer::{Pacer, PacerEvent, PacerRole, ShadowProgress};
use super::role::Role;
use super::schedule::{pass_order, EntryKind, Schedule, ScheduledItem};
use super::spec::{ChannelSpec, PlaylistSource};
use super::store::ScheduleStore;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the actor checks on its pacer and extends the schedule.
pub const TICK: Duration = Duration::from_millis(500);
/// A pacer that reports no progress for this long is considered stuck.
pub const STALL: Duration = Duration::from_secs(3);

/// The registry name of a channel's actor.
pub fn actor_name(channel_id: &str) -> String {
    format!("channel:{channel_id}")
}

/// What is on air now (the JSON of `GET /channels/{id}/now`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct NowPlaying {
    pub channel: String,
    /// Global schedule entry number (increases by one per item aired).
    pub index: u64,
    pub media_id: String,
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
    /// Wall-clock start of the item's presentation, Unix milliseconds.
    pub started_unix_ms: u64,
    pub duration_ms: u64,
    pub position_ms: u64,
    pub kind: EntryKind,
    pub path: PathBuf,
}

/// One line of the play-order listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaylistEntry {
    pub title: String,
    pub artist: String,
    /// Seconds; `None` for items not probed yet.
    pub duration_s: Option<f64>,
    pub path: PathBuf,
    pub scheduled: bool,
}

/// Health and counters of a channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelStatus {
    pub channel: String,
    pub on_air: bool,
    pub next_packet: u64,
    pub datagrams: u64,
    pub collisions: u64,
    /// Items passed over, by reason kind.
    pub skipped: BTreeMap<String, u64>,
    pub recent_errors: Vec<String>,
    pub scheduled_entries: usize,
    pub fallback_entries: u64,
    pub slate_entries: u64,
    /// Entries filled with a peer's recording of the channel.
    pub recording_entries: u64,
    pub skipped_ahead_packets: u64,
    /// `main` or `backup`, and the epoch this node holds the role at.
    pub role: Option<Role>,
    pub epoch: u64,
    /// A backup's view of the group (hearing it, in step with it).
    pub shadow: Option<ShadowProgress>,
    pub takeovers: u64,
    pub fenced: u64,
}

#[derive(Debug)]
pub enum ChannelMsg {
    NowPlaying(RpcReplyPort<Option<NowPlaying>>),
    Playlist(RpcReplyPort<Vec<PlaylistEntry>>),
    Status(RpcReplyPort<ChannelStatus>),
    /// Replace the playlist; applies at the next item boundary.
    SetPlaylist(PlaylistSource),
    /// The main's schedule, as replicated (a backup follows it; a main ignores it).
    AdoptSchedule(Box<Schedule>),
    Tick,
    Pacer(PacerEvent),
}

/// Where a channel keeps its state, its clock, and (in a cluster) its role and the
/// way to the replicated state.
#[derive(Clone)]
pub struct ChannelEnv {
    pub state_dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub role: PacerRole,
    /// What a main's changes and a pacer's takeovers are reported to (the reconciler).
    pub notices: Option<tokio::sync::mpsc::UnboundedSender<ChannelNotice>>,
    /// The channel's replicated schedule now, read at each (re)start.
    pub replicated: Option<Arc<dyn Fn() -> Option<Schedule> + Send + Sync>>,
}

impl std::fmt::Debug for ChannelEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelEnv").field("state_dir", &self.state_dir).field("role", &self.role).finish()
    }
}

impl ChannelEnv {
    /// A standalone channel: always main, no cluster.
    pub fn standalone(state_dir: PathBuf, clock: Arc<dyn Clock>) -> Self {
        ChannelEnv { state_dir, clock, role: PacerRole::standalone(), notices: None, replicated: None }
    }
}

/// What a channel tells the node in a cluster.
#[derive(Debug, Clone)]
pub enum ChannelNotice {
    /// The main changed its schedule (to be replicated), holding its role at `epoch`.
    Schedule { channel: String, epoch: u64, schedule: Box<Schedule> },
    /// This node's backup took over the group with `epoch`.
    TookOver { channel: String, epoch: u64 },
    /// This node's main stopped: a source with `epoch` outranks it.
    Fenced { channel: String, epoch: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct ChannelActor;

pub struct ChannelState {
    spec: ChannelSpec,
    env: ChannelEnv,
    store: ScheduleStore,
    schedule: Schedule,
    cache: Option<ProbeCache>,
    pacer: Option<Pacer>,
    /// The fallback loop kept in sled (when the channel has one).
    fallback_store: Option<super::fallback::FallbackStore>,
    status: ChannelStatus,
    last_progress: Instant,
}

impl std::fmt::Debug for ChannelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelState").field("channel", &self.spec.id).finish()
    }
}

const RECENT_ERRORS: usize = 20;

impl ChannelState {
    fn now_k(&self) -> u64 {
        self.schedule.packet_at_unix_ns(self.env.clock.now_unix_ns())
    }

    fn note_error(&mut self, msg: String) {
        let mut recent: VecDeque<String> = std::mem::take(&mut self.status.recent_errors).into();
        recent.push_back(msg);
        while recent.len() > RECENT_ERRORS {
            recent.pop_front();
        }
        self.status.recent_errors = recent.into();
    }

    fn role(&self) -> (Role, u64) {
        self.env.role.cell.get()
    }

    fn notify(&self, notice: ChannelNotice) {
        if let Some(n) = &self.env.notices {
            let _ = n.send(notice);
        }
    }

    /// Extends the schedule on a blocking thread, stores it and hands it to the pacer. A
    /// backup does not: it follows the main's schedule.
    async fn extend(&mut self) -> Result<(), ActorProcessingErr> {
        if self.role().0 == Role::Backup {
            return Ok(());
        }
        let now_k = self.now_k();
        let mut schedule = self.schedule.clone();
        let mut cache = self.cache.take().unwrap_or_default();
        let mut spec = self.spec.clone();
        let dir = self.env.state_dir.clone();
        let before = self.schedule.clone();
        let store = self.store.clone();
        let fallback_store = self.fallback_store.clone();
        // Probing, placing and the store's write + fsync all run off the executor.
        let (schedule, cache, report, saved) = tokio::task::spawn_blocking(move || {
            // The fallback loop: the configured file, else the copy kept in sled.
            if let (Some(configured), Some(fs)) = (spec.fallback.clone(), &fallback_store) {
                let probe_spec = spec.clone();
                let playable = |p: &std::path::Path| cache.probe(p, &probe_spec).0.is_ok();
                spec.fallback = fs.resolve(&configured, &dir, playable).or(Some(configured));
            }
            schedule.prune_before(now_k);
            let report = extend(&mut schedule, &spec, &dir, &mut cache, now_k);
            let saved = if schedule != before { Some(store.save(&schedule)) } else { None };
            (schedule, cache, report, saved)
        })
        .await?;
        self.cache = Some(cache);
        for s in &report.skipped {
            *self.status.skipped.entry(s.kind.to_string()).or_default() += 1;
            if s.first_time {
                tracing::warn!(channel = %self.spec.id, item = %s.path.display(), reason = s.kind, "skipping item: {}", s.reason);
                self.note_error(s.reason.clone());
            }
        }
        if let Some(e) = &report.playlist_error {
            tracing::warn!(channel = %self.spec.id, "{e}");
        }
        self.status.fallback_entries += report.fallback_used as u64;
        self.status.slate_entries += report.slate_used as u64;
        self.status.recording_entries += report.recording_used as u64;
        if report.fallback_used || report.slate_used || report.recording_used {
            tracing::warn!(channel = %self.spec.id, recording = report.recording_used, fallback = report.fallback_used, slate = report.slate_used,
                "no playable item in the playlist; playing filler");
        }
        self.schedule = schedule;
        if let Some(saved) = saved {
            saved?;
            if let Some(p) = &self.pacer {
                p.update_schedule(self.schedule.clone());
            }
            self.publish();
        }
        Ok(())
    }

    /// A scheduled item whose file is gone before it starts (a replaced item deleted, a
    /// media removed) would fail on air and leave the slate: the schedule is cut before
    /// it (keeping what is on air and anything starting within a second) and extended
    /// again from the playlist as it is now. Backups follow the main's schedule instead.
    async fn replan_missing(&mut self) -> Result<(), ActorProcessingErr> {
        if self.role().0 == Role::Backup {
            return Ok(());
        }
        let soon = self.now_k() + self.schedule.mux_rate.packets_in_ms(1000);
        let Some(keep) = self.schedule.position_at(soon) else { return Ok(()) };
        let later: Vec<PathBuf> = self.schedule.entries[keep + 1..].iter().map(|e| e.facts.path.clone()).collect();
        if later.is_empty() {
            return Ok(());
        }
        let missing = tokio::task::spawn_blocking(move || later.iter().position(|p| !p.exists())).await?;
        let Some(i) = missing else { return Ok(()) };
        let gone = self.schedule.entries[keep + 1 + i].facts.path.clone();
        tracing::warn!(channel = %self.spec.id, item = %gone.display(), "a scheduled item's file is gone before it airs; planning again from there");
        self.schedule.truncate_after(keep + i);
        self.extend().await?;
        if let Some(p) = &self.pacer {
            p.update_schedule(self.schedule.clone());
        }
        Ok(())
    }

    /// Reports the schedule for replication when this node is main.
    fn publish(&self) {
        if let (Role::Main, epoch) = self.role() {
            self.notify(ChannelNotice::Schedule { channel: self.spec.id.clone(), epoch, schedule: Box::new(self.schedule.clone()) });
        }
    }

    fn start_pacer(&mut self, myself: &ActorRef<ChannelMsg>) -> Result<(), ActorProcessingErr> {
        let events = myself.clone();
        self.pacer = Some(Pacer::start(self.spec.clone(), self.schedule.clone(), self.env.clock.clone(), self.env.role.clone(), move |e| {
            let _ = events.cast(ChannelMsg::Pacer(e));
        })?);
        self.last_progress = Instant::now();
        Ok(())
    }

    /// A backup takes the main's schedule: item paths are mapped to this node's copies,
    /// it is stored, and the pacer follows it (restarted when the past differs, e.g. a
    /// new epoch, so the shadow computes exactly the main's packets).
    async fn adopt(&mut self, myself: &ActorRef<ChannelMsg>, schedule: Schedule) -> Result<(), ActorProcessingErr> {
        if self.role().0 == Role::Main || schedule == self.schedule {
            return Ok(());
        }
        if schedule.mux_rate != self.spec.mux_rate {
            tracing::warn!(channel = %self.spec.id, "replicated schedule has another mux rate than this node's channel; not adopted");
            return Ok(());
        }
        let spec = self.spec.clone();
        let store = self.store.clone();
        let (schedule, saved, missing) = tokio::task::spawn_blocking(move || {
            let mut schedule = schedule;
            let missing = localize(&mut schedule, &spec);
            let saved = store.save(&schedule);
            (schedule, saved, missing)
        })
        .await?;
        saved?;
        for path in missing {
            let msg = format!("item {} of the main's schedule is not on this node; a takeover during it will miss its content", path.display());
            tracing::warn!(channel = %self.spec.id, "{msg}");
            self.note_error(msg);
        }
        let now_k = self.now_k();
        let same_past = schedule.epoch_unix_ns == self.schedule.epoch_unix_ns && {
            let upto = |s: &Schedule| s.entries.iter().filter(|e| e.start_packet <= now_k + s.mux_rate.packets_in_ms(1000)).map(|e| (e.index, e.start_packet, e.facts.content_id)).collect::<Vec<_>>();
            let (a, b) = (upto(&schedule), upto(&self.schedule));
            let n = a.len().min(b.len());
            a[a.len() - n..] == b[b.len() - n..]
        };
        self.schedule = schedule;
        match &self.pacer {
            Some(p) if same_past => p.update_schedule(self.schedule.clone()),
            _ => {
                if let Some(mut p) = self.pacer.take() {
                    tokio::task::spawn_blocking(move || p.stop()).await?;
                }
                tracing::info!(channel = %self.spec.id, "following the main's schedule from now");
                self.start_pacer(myself)?;
            }
        }
        Ok(())
    }

    /// The entry being presented now: the last one whose first frame is due by now.
    /// (An item's packets start `lead` before its presentation, while the previous item
    /// is still on screen.)
    fn on_air_entry(&self) -> Option<&ScheduledItem> {
        let k = self.now_k();
        let rate = self.schedule.mux_rate;
        self.schedule.entries.iter().rev().find(|e| e.presentation_packet(rate) <= k)
    }

    fn now_playing(&self) -> Option<NowPlaying> {
        if !self.status.on_air {
            return None;
        }
        let e = self.on_air_entry()?;
        let rate = self.schedule.mux_rate;
        let start_ns = self.schedule.unix_ns_of_packet(e.presentation_packet(rate));
        let now = self.env.clock.now_unix_ns();
        let m = &e.facts.meta;
        Some(NowPlaying {
            channel: self.spec.id.clone(),
            index: e.index,
            media_id: m.media_id.clone(),
            title: m.title.clone(),
            artist: m.artist.clone(),
            album: m.album.clone(),
            genre: m.genre.clone(),
            started_unix_ms: start_ns / 1_000_000,
            duration_ms: e.facts.presentation_90k() / 90,
            position_ms: now.saturating_sub(start_ns) / 1_000_000,
            kind: e.kind,
            path: e.facts.path.clone(),
        })
    }

    /// Scheduled entries from the one on air, then the rest of the current pass.
    fn playlist(&self) -> Vec<PlaylistEntry> {
        let from = self.schedule.position_at(self.now_k()).unwrap_or(0);
        let mut out: Vec<PlaylistEntry> = self.schedule.entries[from.min(self.schedule.entries.len())..]
            .iter()
            .map(|e| PlaylistEntry {
                title: e.facts.meta.title.clone(),
                artist: e.facts.meta.artist.clone(),
                duration_s: Some(e.facts.presentation_90k() as f64 / 90_000.0),
                path: e.facts.path.clone(),
                scheduled: true,
            })
            .collect();
        if let Ok(items) = self.spec.playlist.list() {
            let order = pass_order(items.len(), self.schedule.cursor.pass, self.spec.order);
            for &i in order.iter().skip(self.schedule.cursor.position) {
                let meta = super::probe::item_meta(&items[i]);
                out.push(PlaylistEntry {
                    title: meta.title,
                    artist: meta.artist,
                    duration_s: None,
                    path: items[i].clone(),
                    scheduled: false,
                });
            }
        }
        out
    }

    fn on_pacer_event(&mut self, e: PacerEvent) -> Result<(), ActorProcessingErr> {
        let id = &self.spec.id;
        match e {
            PacerEvent::Collision(src) => {
                self.status.collisions += 1;
                tracing::warn!(channel = %id, source = %src, group = %self.spec.output.group, port = self.spec.output.port,
                    "another source is sending on the channel's group; holding back and listening again");
                self.note_error(format!("collision with {src}"));
            }
            PacerEvent::OnAir { k } => {
                tracing::info!(channel = %id, group = %self.spec.output.group, port = self.spec.output.port, packet = k, "on air");
                self.status.on_air = true;
                self.status.next_packet = k;
                self.last_progress = Instant::now();
            }
            PacerEvent::Shadow { k } => {
                tracing::info!(channel = %id, group = %self.spec.output.group, port = self.spec.output.port, packet = k, "backup: computing the stream in shadow");
                self.status.on_air = false;
                self.status.next_packet = k;
                self.last_progress = Instant::now();
            }
            PacerEvent::TookOver { k, epoch, resent } => {
                tracing::warn!(channel = %id, group = %self.spec.output.group, port = self.spec.output.port, packet = k, epoch, resent,
                    "group silent: this backup took over");
                self.status.on_air = true;
                self.status.takeovers += 1;
                self.status.shadow = None;
                self.notify(ChannelNotice::TookOver { channel: id.clone(), epoch });
            }
            PacerEvent::Yielded { source, k } => {
                tracing::warn!(channel = %id, packet = k, source = %source, "another source sends this channel's stream (it took over): stopped sending");
                self.status.on_air = false;
                self.status.fenced += 1;
                let epoch = self.role().1;
                self.notify(ChannelNotice::Fenced { channel: id.clone(), epoch });
            }
            PacerEvent::Fenced { by, k } => {
                tracing::warn!(channel = %id, packet = k, epoch = by.epoch, node = by.node, "another source outranks this main on the group: stopped sending");
                self.status.on_air = false;
                self.status.fenced += 1;
                self.notify(ChannelNotice::Fenced { channel: id.clone(), epoch: by.epoch });
            }
            PacerEvent::Mux(MuxEvent::ItemOnAir { index, .. }) => {
                if let Some(e) = self.schedule.entries.iter().find(|e| e.index == index) {
                    tracing::info!(channel = %id, index, title = %e.facts.meta.title, item = %e.facts.path.display(), "item on air");
                }
            }
            PacerEvent::Mux(MuxEvent::TailCut { index, k }) => {
                tracing::error!(channel = %id, index, packet = k, "item tail cut at the next item's start (schedule measured it wrong)");
                self.note_error(format!("tail of entry {index} cut at packet {k}"));
            }
            PacerEvent::Mux(MuxEvent::ItemFailed { index, path, reason }) => {
                *self.status.skipped.entry("failed_on_air".into()).or_default() += 1;
                tracing::warn!(channel = %id, index, item = %path, "item failed on air: {reason}");
                self.note_error(reason);
            }
            PacerEvent::SkippedAhead { packets } => {
                self.status.skipped_ahead_packets += packets;
                tracing::warn!(channel = %id, packets, "pacer fell behind and skipped ahead");
            }
            PacerEvent::SendError(e) => {
                tracing::warn!(channel = %id, "send failed: {e}");
                self.note_error(e);
            }
            PacerEvent::Progress { k, datagrams, shadow } => {
                self.status.next_packet = k;
                self.status.datagrams = datagrams;
                self.status.shadow = shadow;
                self.last_progress = Instant::now();
            }
            PacerEvent::Stopped(None) => {}
            PacerEvent::Stopped(Some(e)) => {
                self.status.on_air = false;
                return Err(format!("channel {id}: playout stopped: {e}").into());
            }
        }
        Ok(())
    }
}

impl Actor for ChannelActor {
    type Msg = ChannelMsg;
    type State = ChannelState;
    type Arguments = (ChannelSpec, ChannelEnv);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (spec, env): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let store = ScheduleStore::new(&env.state_dir);
        let stored = store.load()?;
        let replicated = env.replicated.as_ref().and_then(|f| f()).map(|mut s| {
            localize(&mut s, &spec);
            s
        });
        // A backup follows the main's schedule; a main resumes whichever is further along.
        let resumed = match env.role.cell.get().0 {
            Role::Backup => replicated.or(stored),
            Role::Main => furthest(stored, replicated),
        };
        let schedule = match resumed {
            Some(s) if s.mux_rate == spec.mux_rate => s,
            Some(_) => {
                tracing::info!(channel = %spec.id, "mux rate changed: starting a new schedule");
                Schedule::new(env.clock.now_unix_ns(), spec.mux_rate)
            }
            None => Schedule::new(env.clock.now_unix_ns(), spec.mux_rate),
        };
        let mut state = ChannelState {
            status: ChannelStatus { channel: spec.id.clone(), ..Default::default() },
            store,
            schedule,
            cache: None,
            pacer: None,
            fallback_store: match spec.fallback {
                Some(_) => match super::fallback::FallbackStore::open(&env.state_dir) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(channel = %spec.id, error = %e, "cannot open the fallback store; the fallback file alone is used");
                        None
                    }
                },
                None => None,
            },
            last_progress: Instant::now(),
            spec,
            env,
        };
        state.extend().await?;
        state.start_pacer(&myself)?;
        myself.send_interval(TICK, || ChannelMsg::Tick);
        Ok(state)
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        if let Some(mut p) = state.pacer.take() {
            tokio::task::spawn_blocking(move || p.stop()).await?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ChannelMsg::NowPlaying(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.now_playing());
                }
            }
            ChannelMsg::Playlist(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.playlist());
                }
            }
            ChannelMsg::Status(reply) => {
                if !reply.is_closed() {
                    state.status.scheduled_entries = state.schedule.entries.len();
                    let (role, epoch) = state.role();
                    state.status.role = Some(role);
                    state.status.epoch = epoch;
                    let _ = reply.send(state.status.clone());
                }
            }
            ChannelMsg::SetPlaylist(source) => {
                state.spec.playlist = source;
                // Keep what is on air and anything starting within a second; the new
                // playlist starts from its beginning after that.
                let soon = state.now_k() + state.schedule.mux_rate.packets_in_ms(1000);
                let keep = state.schedule.position_at(soon).unwrap_or(0);
                state.schedule.truncate_after(keep);
                state.schedule.cursor.pass += 1;
                state.schedule.cursor.position = 0;
                tracing::info!(channel = %state.spec.id, "playlist replaced; applies at the next item boundary");
                state.extend().await?;
            }
            ChannelMsg::Tick => {
                let pacer_alive = state.pacer.as_ref().is_some_and(Pacer::is_running);
                if !pacer_alive {
                    return Err(format!("channel {}: pacing thread is not running", state.spec.id).into());
                }
                if state.status.on_air && state.last_progress.elapsed() > STALL {
                    if let Some(p) = state.pacer.take() {
                        p.abandon();
                    }
                    return Err(format!("channel {}: pacing thread stalled for {:?}", state.spec.id, STALL).into());
                }
                state.replan_missing().await?;
                let ahead = state.schedule.position_at(state.now_k()).map_or(0, |p| state.schedule.entries.len() - 1 - p);
                let end_soon = state.schedule.end_packet()
                    < state.now_k() + state.schedule.mux_rate.packets_in_ms(super::extend::HORIZON.as_millis() as u64 / 2);
                if ahead < MIN_ENTRIES_AHEAD || end_soon {
                    state.extend().await?;
                }
            }
            ChannelMsg::AdoptSchedule(schedule) => state.adopt(&myself, *schedule).await?,
            ChannelMsg::Pacer(e) => state.on_pacer_event(e)?,
        }
        Ok(())
    }
}

/// Of the schedule this node stored and the replicated one, the one to resume: the
/// replicated one unless the stored one is the same timeline further along (this node
/// was main and had not replicated its last change yet).
fn furthest(stored: Option<Schedule>, replicated: Option<Schedule>) -> Option<Schedule> {
    match (stored, replicated) {
        (Some(s), Some(r)) => {
            let last = |x: &Schedule| x.entries.last().map(|e| e.index);
            if s.epoch_unix_ns == r.epoch_unix_ns && last(&s) > last(&r) {
                Some(s)
            } else {
                Some(r)
            }
        }
        (s, r) => r.or(s),
    }
}

/// Maps the items of another node's schedule to this node's copies: an item path that
/// does not exist here is looked up by file name in the channel's playlist folder and
/// beside its fallback. Returns the items found nowhere.
fn localize(schedule: &mut Schedule, spec: &ChannelSpec) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let PlaylistSource::Folder(d) = &spec.playlist {
        dirs.push(d.clone());
    }
    if let PlaylistSource::Items(items) = &spec.playlist {
        dirs.extend(items.iter().filter_map(|p| p.parent().map(PathBuf::from)));
    }
    if let Some(parent) = spec.fallback.as_ref().and_then(|f| f.parent()) {
        dirs.push(parent.to_path_buf());
    }
    let mut missing = Vec::new();
    for e in &mut schedule.entries {
        if e.facts.path.is_file() {
            continue;
        }
        let found = e.facts.path.file_name().and_then(|name| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()));
        match found {
            Some(p) => e.facts.path = p,
            None => missing.push(e.facts.path.clone()),
        }
    }
    missing
}
