//! The recorder actor (registered as [`ACTOR_NAME`]): keeps one capture thread per
//! recorded channel, restarts a thread that dies with backoff (the `supervise.rs`
//! constants), stops recording a group whose disk is below the floor (reported in
//! status until the next `Record`), runs retention on a periodic self-message, and
//! answers list and status. Handlers only exchange messages and read atomics; the
//! index, recovery and retention run in `spawn_blocking`.

use super::capture::{CaptureExit, CaptureSpec, CaptureThread};
use super::error::RecorderError;
use super::index::{validate_channel, SegmentIndex, SegmentInfo};
use super::recover::recover_all;
use super::retention::apply_retention;
use super::settings::RecorderSettings;
use super::stats::{CaptureStats, ChannelRecordingStatus, RecorderStatus};
use crate::playout::clock::unix_now_ns;
use crate::supervise::{FIRST_BACKOFF, HEALTHY_AFTER, MAX_BACKOFF};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The registry name of a node's recorder.
pub const ACTOR_NAME: &str = "recorder";

#[derive(Debug, Clone)]
pub struct RecorderArgs {
    pub settings: RecorderSettings,
    /// The index to use; `None` opens `<dir>/index.sled` (then the actor must not be
    /// restarted while another handle to that database is open: pass one in when the
    /// recorder runs under a `Restarter`).
    pub index: Option<SegmentIndex>,
}

#[derive(Debug)]
pub enum RecorderMsg {
    /// Record `group:port` (joined on `interface`) as `channel`; a channel already
    /// recorded from another group moves to this one.
    Record { channel: String, group: Ipv4Addr, port: u16, interface: Ipv4Addr },
    /// Close the channel's segment and stop recording it (its segments stay).
    Stop { channel: String },
    /// Every indexed segment, by channel then start.
    List(RpcReplyPort<Vec<SegmentInfo>>),
    Status(RpcReplyPort<RecorderStatus>),
    RetentionTick,
    /// A capture thread ended (sent by the thread).
    CaptureEnded { channel: String, generation: u64, exit: CaptureExit },
    /// A backoff is over (self-sent).
    Restart { channel: String, generation: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct RecorderActor;

/// One recorded channel.
#[derive(Debug)]
struct GroupRecorder {
    spec: CaptureSpec,
    /// Kept across restarts of the thread.
    stats: Arc<CaptureStats>,
    thread: Option<CaptureThread>,
    /// Of the thread running or last started; stale reports are ignored.
    generation: u64,
    /// Recording is asked for (false after `Stop` or a refusal).
    wanted: bool,
    restart_pending: bool,
    started: Instant,
    backoff: Duration,
    restarts: u32,
    last_error: Option<String>,
}

pub struct RecorderState {
    settings: RecorderSettings,
    index: SegmentIndex,
    groups: BTreeMap<String, GroupRecorder>,
    next_generation: u64,
    status: RecorderStatus,
}

impl std::fmt::Debug for RecorderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderState").field("dir", &self.settings.dir).field("channels", &self.groups.len()).finish()
    }
}

impl RecorderState {
    /// Starts the channel's capture thread (the previous one has ended).
    fn start(&mut self, myself: &ActorRef<RecorderMsg>, channel: &str) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let Some(g) = self.groups.get_mut(channel) else { return };
        g.generation = generation;
        g.restart_pending = false;
        g.started = Instant::now();
        let reply = myself.clone();
        let name = channel.to_string();
        let on_exit = move |exit| {
            let _ = reply.send_message(RecorderMsg::CaptureEnded { channel: name, generation, exit });
        };
        match CaptureThread::start(g.spec.clone(), self.settings.clone(), self.index.clone(), g.stats.clone(), on_exit) {
            Ok(t) => g.thread = Some(t),
            Err(e) => self.failed(myself, channel, e.to_string(), e.is_refusal()),
        }
    }

    /// A thread could not start or died: refused for good, or restarted after a backoff.
    fn failed(&mut self, myself: &ActorRef<RecorderMsg>, channel: &str, why: String, refusal: bool) {
        let Some(g) = self.groups.get_mut(channel) else { return };
        g.last_error = Some(why.clone());
        if refusal {
            tracing::error!(channel, "{why}; recording of this channel stopped");
            g.wanted = false;
            return;
        }
        if !g.wanted {
            return;
        }
        if g.started.elapsed() > HEALTHY_AFTER {
            g.backoff = FIRST_BACKOFF;
        }
        g.restarts += 1;
        g.restart_pending = true;
        tracing::error!(channel, backoff = ?g.backoff, restarts = g.restarts, "capture thread died: {why}; restarting");
        let (name, generation) = (channel.to_string(), g.generation);
        myself.send_after(g.backoff, move || RecorderMsg::Restart { channel: name, generation });
        g.backoff = (g.backoff * 2).min(MAX_BACKOFF);
    }

    fn record(&mut self, myself: &ActorRef<RecorderMsg>, spec: CaptureSpec) {
        let channel = spec.channel.clone();
        if let Err(e) = validate_channel(&channel) {
            tracing::error!("{e}");
        }
        let g = self.groups.entry(channel.clone()).or_insert_with(|| GroupRecorder {
            spec: spec.clone(),
            stats: Arc::default(),
            thread: None,
            generation: 0,
            wanted: false,
            restart_pending: false,
            started: Instant::now(),
            backoff: FIRST_BACKOFF,
            restarts: 0,
            last_error: None,
        });
        if g.wanted && g.spec == spec && (g.thread.is_some() || g.restart_pending) {
            return;
        }
        let moved = g.spec != spec;
        g.spec = spec;
        g.wanted = true;
        g.backoff = FIRST_BACKOFF;
        match &g.thread {
            // Started again once the old thread has closed its segment and ended.
            Some(t) if moved => t.stop(),
            Some(_) => {}
            None => self.start(myself, &channel),
        }
    }

    fn on_ended(&mut self, myself: &ActorRef<RecorderMsg>, channel: &str, generation: u64, exit: CaptureExit) {
        let Some(g) = self.groups.get_mut(channel) else { return };
        if g.generation != generation {
            return;
        }
        // The thread has reported its end and is returning; let it go.
        g.thread = None;
        match exit {
            CaptureExit::Stopped if g.wanted => self.start(myself, channel),
            CaptureExit::Stopped => tracing::info!(channel, "recording stopped"),
            CaptureExit::Failed(e) => self.failed(myself, channel, e.to_string(), e.is_refusal()),
            CaptureExit::Panicked(p) => self.failed(myself, channel, format!("capture thread panicked: {p}"), false),
        }
    }

    fn status(&self) -> RecorderStatus {
        let channels = self
            .groups
            .iter()
            .map(|(channel, g)| ChannelRecordingStatus {
                channel: channel.clone(),
                group: g.spec.group,
                port: g.spec.port,
                interface: g.spec.interface,
                recording: g.thread.is_some(),
                counters: g.stats.snapshot(),
                restarts: g.restarts,
                last_error: g.last_error.clone(),
            })
            .collect();
        RecorderStatus { channels, ..self.status.clone() }
    }
}

impl Actor for RecorderActor {
    type Msg = RecorderMsg;
    type State = RecorderState;
    type Arguments = RecorderArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: RecorderArgs) -> Result<RecorderState, ActorProcessingErr> {
        let RecorderArgs { settings, index } = args;
        let dir = settings.dir.clone();
        let index = tokio::task::spawn_blocking(move || -> Result<SegmentIndex, RecorderError> {
            std::fs::create_dir_all(&dir).map_err(RecorderError::io(&dir, "create the recording folder"))?;
            let index = match index {
                Some(i) => i,
                None => SegmentIndex::open(&dir.join("index.sled"))?,
            };
            let r = recover_all(&dir, &index)?;
            if !r.closed.is_empty() || r.removed_empty > 0 || r.dropped_entries > 0 {
                tracing::warn!(dir = %dir.display(), closed = r.closed.len(), removed_empty = r.removed_empty, dropped = r.dropped_entries,
                    "recovered segments left by a crash");
            }
            Ok(index)
        })
        .await??;
        myself.send_message(RecorderMsg::RetentionTick)?;
        Ok(RecorderState { settings, index, groups: BTreeMap::new(), next_generation: 1, status: RecorderStatus::default() })
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            RecorderMsg::Record { channel, group, port, interface } => state.record(&myself, CaptureSpec { channel, group, port, interface }),
            RecorderMsg::Stop { channel } => {
                if let Some(g) = state.groups.get_mut(&channel) {
                    g.wanted = false;
                    if let Some(t) = &g.thread {
                        t.stop();
                    }
                }
            }
            RecorderMsg::List(reply) => {
                let index = state.index.clone();
                let list = tokio::task::spawn_blocking(move || index.all()).await?;
                match list {
                    Ok(l) if !reply.is_closed() => {
                        let _ = reply.send(l);
                    }
                    Ok(_) => {}
                    // The reply port drops: the caller sees the call fail; the log says why.
                    Err(e) => tracing::error!("listing recordings: {e}"),
                }
            }
            RecorderMsg::Status(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.status());
                }
            }
            RecorderMsg::RetentionTick => {
                let (dir, index, s) = (state.settings.dir.clone(), state.index.clone(), state.settings.clone());
                let run = tokio::task::spawn_blocking(move || apply_retention(&dir, &index, unix_now_ns(), s.retention, s.max_bytes)).await?;
                state.status.retention_runs += 1;
                match run {
                    Ok(r) => {
                        if r.deleted > 0 {
                            tracing::info!(deleted = r.deleted, freed_bytes = r.freed_bytes, "retention deleted old segments");
                        }
                        state.status.deleted_segments += r.deleted;
                        state.status.kept_bytes = r.kept_bytes;
                        state.status.last_retention_error = r.errors.first().cloned();
                        for e in &r.errors {
                            tracing::error!("{e}");
                        }
                    }
                    Err(e) => {
                        tracing::error!("retention: {e}");
                        state.status.last_retention_error = Some(e.to_string());
                    }
                }
                myself.send_after(state.settings.retention_interval, || RecorderMsg::RetentionTick);
            }
            RecorderMsg::CaptureEnded { channel, generation, exit } => state.on_ended(&myself, &channel, generation, exit),
            RecorderMsg::Restart { channel, generation } => {
                let due = state.groups.get(&channel).is_some_and(|g| g.generation == generation && g.wanted && g.thread.is_none());
                if due {
                    state.start(&myself, &channel);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Close every open segment before a restarted recorder recovers the folders.
        let threads: Vec<CaptureThread> = state.groups.values_mut().filter_map(|g| g.thread.take()).collect();
        for t in &threads {
            t.stop();
        }
        tokio::task::spawn_blocking(move || threads.into_iter().for_each(CaptureThread::join)).await?;
        Ok(())
    }
}
