//! The node's encode pool (ractor actor): scans each rendered channel's media on an
//! interval, queues the media whose item is missing (the item needed soonest first), runs
//! up to `workers` builds at once, keeps each job's outcome, and answers status, start
//! and cancel at any time. Builds run on their own tasks (FFmpeg on blocking threads);
//! the actor only exchanges messages.
//!
//! Rebuilds: an item's file name carries the fingerprint of everything it is made from
//! (`scan`), so a change of the media, its sidecar or artwork, the channel's format or
//! its template (checked every `template_check_every`) makes a new item; the old one
//! stays on air until the new one is written, then it is deleted.
//!
//! The set of channels can change at run time (`SetChannels`, sent by the cluster
//! reconciler). Channels are keyed by id; each added channel (or changed settings) gets a
//! new generation, which its scans carry, so a scan that ends after its channel was
//! removed or replaced is dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio_util::sync::CancellationToken;

use super::build::{self, BuildError, ChannelBuild};
use super::queue::{JobQueue, Urgency};
use super::record::{JobRecord, JobRecords, Outcome};
use super::scan::{self, MediaFile};
use super::status::{EncodeStatus, JobControl, JobState, JobStatus};
use crate::render::Renderer;

/// The registry name of a node's encode pool.
pub const ACTOR_NAME: &str = "encode";

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Builds at once (at least 1).
    pub workers: usize,
    /// A build does not start while less than this is free where items are written.
    pub min_free_bytes: u64,
    /// Media folders are scanned this often.
    pub scan_every: Duration,
    /// Templates are checked for changes this often.
    pub template_check_every: Duration,
}

impl PoolSettings {
    /// Workers bounded by cores and by memory (500 MB a build), at least 1.
    pub fn auto_workers() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mem_jobs = available_memory_bytes().map_or(cores, |b| (b / (500 << 20)) as usize);
        cores.min(mem_jobs).max(1)
    }
}

/// `MemAvailable` from /proc/meminfo.
fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What the pool starts with. `channels` may be empty (see `PoolMsg::SetChannels`).
#[derive(Debug, Clone)]
pub struct PoolArgs {
    pub channels: Vec<ChannelBuild>,
    pub renderer: Renderer,
    pub records: JobRecords,
    pub settings: PoolSettings,
}

#[derive(Debug)]
pub enum PoolMsg {
    /// Scan every channel now (also sent on the interval).
    Scan,
    /// A channel's scan is done (sent by the scan's task). `generation` names the channel
    /// settings the scan was made for: the result of a channel removed or replaced
    /// meanwhile is dropped. `template` is the template's new fingerprint when it was
    /// checked this time.
    Scanned { channel: String, generation: u64, template: Option<String>, result: Result<Scan, String> },
    /// A build made progress (0..=1).
    Progress { id: String, fraction: f32 },
    /// A build ended; its record is already stored.
    Finished { id: String, record: Option<JobRecord>, cancelled: bool },
    Status(RpcReplyPort<EncodeStatus>),
    /// Build (or rebuild) a job now.
    Start { id: String, reply: RpcReplyPort<JobControl> },
    Cancel { id: String, reply: RpcReplyPort<JobControl> },
    /// Replace the set of channels, keyed by `ChannelBuild::channel` (a later duplicate
    /// wins). An unchanged channel keeps its state. A removed channel, or one whose
    /// `ChannelBuild` changed (it is removed, then added), loses its queued jobs and its
    /// media (they leave `Status`); its running builds are cancelled, and that
    /// cancellation is neither recorded as a failure nor holds the job. Its items and job
    /// records are kept. A new channel is scanned at once.
    SetChannels(Vec<ChannelBuild>),
}

/// What the pool knows of one media file of a channel.
#[derive(Debug, Clone)]
struct Known {
    /// The channel's key (`ChannelBuild::channel`).
    channel: String,
    position: usize,
    media: MediaFile,
}

#[derive(Debug)]
struct Running {
    known: Known,
    started: Instant,
    progress: f32,
    cancel: CancellationToken,
    /// Its channel was removed or replaced: cancelled, not shown, not held when it ends.
    detached: bool,
}

/// What a channel's scan found: its media (in play order) and the items already built.
#[derive(Debug)]
pub struct Scan {
    media: Vec<MediaFile>,
    existing: BTreeMap<String, PathBuf>,
}

#[derive(Debug)]
struct ChannelState {
    build: Arc<ChannelBuild>,
    /// Set when the channel (with these settings) was added; scans carry it.
    generation: u64,
    /// Fingerprint of the template, refreshed every `template_check_every`.
    template: Option<String>,
    template_checked: Option<Instant>,
    scanning: bool,
}

impl ChannelState {
    fn new(build: ChannelBuild, generation: u64) -> ChannelState {
        ChannelState { build: Arc::new(build), generation, template: None, template_checked: None, scanning: false }
    }
}

/// The pool's bookkeeping: channels, known media, queue, running builds and outcomes.
/// No I/O and no tasks: the actor does those.
#[derive(Debug, Default)]
struct Jobs {
    channels: BTreeMap<String, ChannelState>,
    /// The last channel generation handed out.
    generation: u64,
    /// Every media file of the last scans, by job id.
    known: BTreeMap<String, Known>,
    queue: JobQueue<()>,
    running: HashMap<String, Running>,
    /// Outcomes by fingerprint (mirrors the catalog).
    records: HashMap<String, JobRecord>,
    /// Cancelled by an operator: not queued again until started or changed.
    held: HashSet<String>,
}

impl Jobs {
    /// Replaces the set of channels (see `PoolMsg::SetChannels`); returns the keys of the
    /// channels added or replaced, to scan at once.
    fn set_channels(&mut self, builds: Vec<ChannelBuild>) -> Vec<String> {
        let mut wanted: BTreeMap<String, ChannelBuild> = builds.into_iter().map(|b| (b.channel.clone(), b)).collect();
        let current: Vec<String> = self.channels.keys().cloned().collect();
        for key in current {
            let unchanged = wanted.get(&key).is_some_and(|b| *self.channels[&key].build == *b);
            if unchanged {
                wanted.remove(&key);
            } else {
                self.remove_channel(&key);
            }
        }
        let mut added = Vec::with_capacity(wanted.len());
        for (key, build) in wanted {
            self.generation += 1;
            self.channels.insert(key.clone(), ChannelState::new(build, self.generation));
            added.push(key);
        }
        added
    }

    /// Forgets a channel: its media, queued jobs and holds go; its running builds are
    /// cancelled and detached.
    fn remove_channel(&mut self, key: &str) {
        self.channels.remove(key);
        let ids: Vec<String> = self.known.iter().filter(|(_, k)| k.channel == key).map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.known.remove(&id);
            self.queue.remove(&id);
            self.held.remove(&id);
        }
        for r in self.running.values_mut().filter(|r| r.known.channel == key) {
            r.detached = true;
            r.cancel.cancel();
        }
    }

    /// Takes a channel's scan: forgets its media that are gone, queues those that need
    /// an item. Returns the items the scan found replaced (to delete). A scan of a channel
    /// removed or replaced since it started is dropped.
    fn scanned(&mut self, channel: &str, generation: u64, template: Option<String>, result: Result<Scan, String>) -> Vec<PathBuf> {
        let Some(ch) = self.channels.get_mut(channel).filter(|c| c.generation == generation) else {
            tracing::debug!(channel, generation, "encode scan of a removed or replaced channel dropped");
            return Vec::new();
        };
        ch.scanning = false;
        if template.is_some() {
            ch.template = template;
        }
        let Scan { media, existing } = match result {
            Ok(scan) => scan,
            Err(e) => {
                tracing::warn!(channel, "encode scan: {e}");
                return Vec::new();
            }
        };
        let current: HashSet<String> = media.iter().map(|m| m.job_id()).collect();
        // Forget this channel's media that are gone or changed.
        let gone: Vec<String> = self.known.iter().filter(|(id, k)| k.channel == channel && !current.contains(*id)).map(|(id, _)| id.clone()).collect();
        for id in gone {
            self.known.remove(&id);
            self.queue.remove(&id);
            if let Some(r) = self.running.get(&id) {
                r.cancel.cancel(); // its media changed under it
            }
        }
        for (position, m) in media.iter().enumerate() {
            let id = m.job_id();
            self.known.insert(id.clone(), Known { channel: channel.to_string(), position, media: m.clone() });
            let built = existing.contains_key(&m.item_name());
            let failed = self.records.get(&m.fingerprint).is_some_and(|r| matches!(r.outcome, Outcome::Failed { .. }));
            if built || failed || self.held.contains(&id) || self.running.contains_key(&id) || self.queue.contains(&id) {
                continue;
            }
            self.queue.push(id, Urgency::Scan, position, channel, ());
        }
        scan::stale_items(&media, &existing)
    }

    /// A build ended. A cancelled build is held (not queued again) unless its channel was
    /// removed meanwhile.
    fn finished(&mut self, id: String, record: Option<JobRecord>, cancelled: bool) {
        let detached = self.running.remove(&id).is_some_and(|r| r.detached);
        if cancelled && !detached {
            self.held.insert(id);
        }
        if let Some(r) = record {
            self.records.insert(r.fingerprint.clone(), r);
        }
    }

    /// An operator's "build now". Returns the answer and, when the job had a record, the
    /// fingerprint to forget in the record store.
    fn start(&mut self, id: String) -> (JobControl, Option<String>) {
        let Some(k) = self.known.get(&id).cloned() else { return (JobControl::Unknown, None) };
        if self.running.contains_key(&id) {
            return (JobControl::AlreadyActive, None);
        }
        self.held.remove(&id);
        let forget = self.records.remove(&k.media.fingerprint).map(|r| r.fingerprint);
        self.queue.push(id, Urgency::Operator, k.position, &k.channel, ());
        (JobControl::Started, forget)
    }

    /// An operator's "cancel": a running build is stopped, a queued job held.
    fn cancel(&mut self, id: String) -> JobControl {
        if let Some(r) = self.running.get(&id) {
            r.cancel.cancel();
            JobControl::Cancelled
        } else if self.queue.remove(&id).is_some() {
            self.held.insert(id);
            JobControl::Cancelled
        } else if self.known.contains_key(&id) {
            JobControl::NotActive
        } else {
            JobControl::Unknown
        }
    }

    /// Every job of the current channels (builds of removed channels still winding down
    /// are left out).
    fn status(&self, workers: usize, disk_low: Option<&String>) -> EncodeStatus {
        let mut jobs = Vec::new();
        let base = |id: &str, k: &Known, state| JobStatus {
            id: id.to_string(),
            channel: k.channel.clone(),
            media_id: k.media.rel.clone(),
            title: String::new(),
            artist: String::new(),
            state,
            progress_percent: 0.0,
            output: None,
            thumbnail_url: None,
            reason: None,
            kind: None,
            elapsed_ms: None,
        };
        let mut running: Vec<_> = self.running.iter().filter(|(_, r)| !r.detached).collect();
        running.sort_by_key(|(_, r)| r.started);
        let running_count = running.len();
        for (id, r) in running {
            let mut s = base(id, &r.known, JobState::Running);
            s.progress_percent = (r.progress * 100.0).clamp(0.0, 100.0);
            s.elapsed_ms = Some(r.started.elapsed().as_millis() as u64);
            jobs.push(s);
        }
        for (id, ()) in self.queue.iter() {
            if let Some(k) = self.known.get(id) {
                let mut s = base(id, k, JobState::Queued);
                s.reason = disk_low.cloned();
                jobs.push(s);
            }
        }
        let mut finished: Vec<(&String, &Known, Option<&JobRecord>)> = self
            .known
            .iter()
            .filter(|(id, _)| !self.running.contains_key(*id) && !self.queue.contains(id))
            .map(|(id, k)| (id, k, self.records.get(&k.media.fingerprint)))
            .collect();
        finished.sort_by_key(|(_, _, r)| std::cmp::Reverse(r.map_or(0, |r| r.finished_unix_ms)));
        let (mut done, mut failed) = (0, 0);
        for (id, k, record) in finished {
            let state = match record.map(|r| &r.outcome) {
                _ if self.held.contains(id) => JobState::Cancelled,
                Some(Outcome::Failed { .. }) => JobState::Failed,
                _ => JobState::Done,
            };
            let mut s = base(id, k, state);
            if let Some(r) = record {
                s.title = r.title.clone();
                s.artist = r.artist.clone();
                s.elapsed_ms = Some(r.elapsed_ms);
                match &r.outcome {
                    Outcome::Done { output, thumbnail } => {
                        s.output = Some(output.clone());
                        s.thumbnail_url = thumbnail.as_ref().map(|_| format!("/encode/thumbnails/{id}.png"));
                    }
                    Outcome::Failed { kind, reason } => {
                        s.kind = Some(kind.clone());
                        s.reason = Some(reason.clone());
                    }
                }
            } else if state == JobState::Done {
                // Built before this catalog knew it (or by another node): the file is there.
                s.output = self.channels.get(&k.channel).map(|ch| ch.build.items_dir.join(k.media.item_name()));
            }
            if state == JobState::Done {
                s.progress_percent = 100.0;
                done += 1;
            } else if state == JobState::Failed {
                failed += 1;
            }
            jobs.push(s);
        }
        EncodeStatus { workers, running: running_count, queued: self.queue.len(), done, failed, jobs }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EncodePool;

pub struct PoolState {
    args: PoolArgs,
    jobs: Jobs,
    /// Job ids waiting because the disk is too full.
    disk_low: Option<String>,
}

impl std::fmt::Debug for PoolState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolState")
            .field("channels", &self.jobs.channels.len())
            .field("queued", &self.jobs.queue.len())
            .field("running", &self.jobs.running.len())
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Deletes replaced items (with their thumbnails and sidecars) on a blocking thread.
fn remove_items(stale: Vec<PathBuf>) {
    if stale.is_empty() {
        return;
    }
    tokio::task::spawn_blocking(move || {
        for p in stale {
            tracing::info!(item = %p.display(), "removing replaced item");
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(p.with_extension("png"));
            let _ = std::fs::remove_file(p.with_extension("json"));
        }
    });
}

/// Lists a channel's media and built items with the template fingerprint `template`
/// (or the last known one), on a blocking thread.
async fn scan_folder(build: Arc<ChannelBuild>, checked: Option<Result<String, String>>, known_template: Option<String>) -> (Option<String>, Result<Scan, String>) {
    // A template that cannot be read now keeps its last fingerprint.
    let template = match checked {
        Some(Ok(fp)) => Some(fp),
        Some(Err(e)) => {
            tracing::warn!(channel = %build.channel, "template check: {e}");
            None
        }
        None => None,
    };
    let result = match template.clone().or(known_template) {
        None => Err("the template could not be read yet".to_string()),
        Some(fp) => tokio::task::spawn_blocking(move || {
            let media = scan::scan(&build.media_dir, &build.format_key(&fp))
                .map_err(|e| format!("cannot list media folder {}: {e}", build.media_dir.display()))?;
            Ok(Scan { media, existing: scan::existing_items(&build.items_dir) })
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r),
    };
    (template, result)
}

impl PoolState {
    fn scan_channels(&mut self, myself: &ActorRef<PoolMsg>) {
        let keys: Vec<String> = self.jobs.channels.keys().cloned().collect();
        for key in keys {
            self.scan_channel(&key, myself);
        }
    }

    /// Starts a scan of one channel unless one is under way.
    fn scan_channel(&mut self, key: &str, myself: &ActorRef<PoolMsg>) {
        let every = self.args.settings.template_check_every;
        let Some(ch) = self.jobs.channels.get_mut(key).filter(|c| !c.scanning) else { return };
        ch.scanning = true;
        let check_template = ch.template_checked.is_none_or(|t| t.elapsed() >= every);
        if check_template {
            ch.template_checked = Some(Instant::now());
        }
        let (build, known_template, generation, myself) = (ch.build.clone(), ch.template.clone(), ch.generation, myself.clone());
        let channel = key.to_string();
        tokio::spawn(async move {
            let checked = if check_template { Some(build::template_fingerprint(&build).await) } else { None };
            let (template, result) = scan_folder(build, checked, known_template).await;
            let _ = myself.send_message(PoolMsg::Scanned { channel, generation, template, result });
        });
    }

    fn dispatch(&mut self, myself: &ActorRef<PoolMsg>) {
        while self.jobs.running.len() < self.args.settings.workers.max(1) {
            let Some((id, ())) = self.jobs.queue.pop() else { return };
            let Some(known) = self.jobs.known.get(&id).cloned() else { continue };
            let Some(ch) = self.jobs.channels.get(&known.channel) else { continue };
            if ch.template.is_none() {
                self.jobs.queue.push(id, Urgency::Scan, known.position, &known.channel, ());
                return;
            }
            let build = ch.build.clone();
            // Disk check before each build (a statvfs: microseconds).
            let _ = std::fs::create_dir_all(&build.items_dir);
            match crate::sync::transfer::free_bytes(&build.items_dir) {
                Ok(free) if free < self.args.settings.min_free_bytes => {
                    self.disk_low = Some(format!(
                        "{}: {free} bytes free, below the {} bytes a build needs; fix: free space or lower node.encode.min_free_bytes",
                        build.items_dir.display(),
                        self.args.settings.min_free_bytes
                    ));
                    self.jobs.queue.push(id, Urgency::Scan, known.position, &build.channel, ());
                    return;
                }
                _ => self.disk_low = None,
            }
            let cancel = CancellationToken::new();
            let running = Running { known: known.clone(), started: Instant::now(), progress: 0.0, cancel: cancel.clone(), detached: false };
            self.jobs.running.insert(id.clone(), running);
            let (renderer, records) = (self.args.renderer.clone(), self.args.records.clone());
            tokio::spawn(run_build(renderer, records, build, known, id, cancel, myself.clone()));
        }
    }
}

/// One build on its own task: runs it, stores its record and tells the pool. A build
/// that fails after it was cancelled counts as cancelled, not as a failure of the media.
async fn run_build(
    renderer: Renderer,
    records: JobRecords,
    build: Arc<ChannelBuild>,
    known: Known,
    id: String,
    cancel: CancellationToken,
    myself: ActorRef<PoolMsg>,
) {
    let started = Instant::now();
    let progress = {
        let (myself, id) = (myself.clone(), id.clone());
        let mut last = -1.0f32;
        move |fraction: f32| {
            if fraction - last >= 0.01 || fraction >= 1.0 {
                last = fraction;
                let _ = myself.send_message(PoolMsg::Progress { id: id.clone(), fraction });
            }
        }
    };
    let result = build::build(&renderer, &build, &known.media, progress, cancel.clone()).await;
    let cancelled = matches!(result, Err(BuildError::Cancelled)) || (result.is_err() && cancel.is_cancelled());
    let record = if cancelled {
        None
    } else {
        let (title, artist) = match &result {
            Ok(b) => (b.title.clone(), b.artist.clone()),
            Err(_) => (String::new(), String::new()),
        };
        let outcome = match result {
            Ok(b) => {
                tracing::info!(channel = %build.channel, media = %known.media.rel, item = %b.output.display(), secs = started.elapsed().as_secs_f32(), "item built");
                Outcome::Done { output: b.output, thumbnail: b.thumbnail }
            }
            Err(e) => {
                tracing::warn!(channel = %build.channel, media = %known.media.rel, "encode job failed: {e}");
                Outcome::Failed { kind: e.kind().to_string(), reason: e.to_string() }
            }
        };
        let record = JobRecord {
            fingerprint: known.media.fingerprint.clone(),
            channel: build.channel.clone(),
            media: known.media.path.clone(),
            title,
            artist,
            outcome,
            finished_unix_ms: now_ms(),
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        let stored = record.clone();
        match tokio::task::spawn_blocking(move || records.put(&stored)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("{e}"),
            Err(e) => tracing::error!("storing a job record: {e}"),
        }
        Some(record)
    };
    let _ = myself.send_message(PoolMsg::Finished { id, record, cancelled });
}

impl Actor for EncodePool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = PoolArgs;

    async fn pre_start(&self, myself: ActorRef<PoolMsg>, mut args: PoolArgs) -> Result<PoolState, ActorProcessingErr> {
        let records = args.records.clone();
        let records: HashMap<String, JobRecord> =
            tokio::task::spawn_blocking(move || records.all()).await??.into_iter().map(|r| (r.fingerprint.clone(), r)).collect();
        let mut jobs = Jobs { records, ..Jobs::default() };
        jobs.set_channels(std::mem::take(&mut args.channels));
        myself.send_interval(args.settings.scan_every, || PoolMsg::Scan);
        myself.send_message(PoolMsg::Scan)?;
        Ok(PoolState { args, jobs, disk_low: None })
    }

    async fn handle(&self, myself: ActorRef<PoolMsg>, msg: PoolMsg, state: &mut PoolState) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Scan => state.scan_channels(&myself),
            PoolMsg::Scanned { channel, generation, template, result } => {
                remove_items(state.jobs.scanned(&channel, generation, template, result));
                state.dispatch(&myself);
            }
            PoolMsg::Progress { id, fraction } => {
                if let Some(r) = state.jobs.running.get_mut(&id) {
                    r.progress = fraction;
                }
            }
            PoolMsg::Finished { id, record, cancelled } => {
                state.jobs.finished(id, record, cancelled);
                // Rescan now: removes the replaced item and queues what is next.
                state.scan_channels(&myself);
                state.dispatch(&myself);
            }
            PoolMsg::Status(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.jobs.status(state.args.settings.workers, state.disk_low.as_ref()));
                }
            }
            PoolMsg::Start { id, reply } => {
                let (answer, forget) = state.jobs.start(id);
                if let Some(fp) = forget {
                    let records = state.args.records.clone();
                    tokio::task::spawn_blocking(move || records.remove(&fp));
                }
                if answer == JobControl::Started {
                    state.dispatch(&myself);
                }
                if !reply.is_closed() {
                    let _ = reply.send(answer);
                }
            }
            PoolMsg::Cancel { id, reply } => {
                let answer = state.jobs.cancel(id);
                if !reply.is_closed() {
                    let _ = reply.send(answer);
                }
            }
            PoolMsg::SetChannels(builds) => {
                for key in state.jobs.set_channels(builds) {
                    state.scan_channel(&key, &myself);
                }
                // A build slot freed by a cancelled build is refilled when it ends.
                state.dispatch(&myself);
            }
        }
        Ok(())
    }
}

/// Asks the pool for its status.
pub async fn status(pool: &ActorRef<PoolMsg>) -> Option<EncodeStatus> {
    ractor::call!(pool, PoolMsg::Status).ok()
}

/// Where the thumbnail of a job is, if it was built (answered from the status).
pub async fn thumbnail(pool: &ActorRef<PoolMsg>, id: &str) -> Option<PathBuf> {
    let status = status(pool).await?;
    let job = status.jobs.into_iter().find(|j| j.id == id && j.state == JobState::Done)?;
    job.output.map(|o| o.with_extension("png")).filter(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{AudioCodec, AudioProfile, EncodeProfile, TsLayout};
    use crate::jobs::scan::MediaKind;
    use crate::render::Template;

    fn channel(key: &str, root: &std::path::Path) -> ChannelBuild {
        ChannelBuild {
            channel: key.into(),
            name: key.to_uppercase(),
            media_dir: root.join(key).join("media"),
            items_dir: root.join(key).join("items"),
            template: Template::Default,
            allow_network: false,
            logo: None,
            profile: EncodeProfile {
                video: None,
                audio: AudioProfile { codec: AudioCodec::Aac, sample_rate: 48_000, channels: 2, bitrate: 128_000 },
                loudness: None,
                ts: TsLayout::default(),
            },
        }
    }

    fn media(rel: &str, seed: u64) -> MediaFile {
        MediaFile { path: PathBuf::from("/media").join(rel), rel: rel.into(), kind: MediaKind::Audio, fingerprint: format!("{seed:016x}{:048}", 0) }
    }

    fn scan_of(media: Vec<MediaFile>) -> Result<Scan, String> {
        Ok(Scan { media, existing: BTreeMap::new() })
    }

    fn generation(jobs: &Jobs, key: &str) -> u64 {
        jobs.channels[key].generation
    }

    fn status_channels(jobs: &Jobs) -> Vec<(String, JobState)> {
        jobs.status(1, None).jobs.into_iter().map(|j| (j.channel, j.state)).collect()
    }

    /// A running build of `id` as `dispatch` would record it.
    fn run(jobs: &mut Jobs, id: &str) -> CancellationToken {
        jobs.queue.remove(id);
        let known = jobs.known[id].clone();
        let cancel = CancellationToken::new();
        jobs.running.insert(id.into(), Running { known, started: Instant::now(), progress: 0.0, cancel: cancel.clone(), detached: false });
        cancel
    }

    #[test]
    fn set_channels_keeps_unchanged_and_replaces_changed_channels() {
        let root = std::path::Path::new("/srv");
        let mut jobs = Jobs::default();
        assert_eq!(jobs.set_channels(vec![channel("rock", root), channel("jazz", root)]), ["jazz", "rock"]);
        let (jazz, rock) = (generation(&jobs, "jazz"), generation(&jobs, "rock"));
        assert_eq!(jobs.set_channels(vec![channel("rock", root), channel("jazz", root)]), Vec::<String>::new());
        assert_eq!((generation(&jobs, "jazz"), generation(&jobs, "rock")), (jazz, rock), "unchanged channels keep their state");
        let mut renamed = channel("rock", root);
        renamed.name = "Rock FM".into();
        assert_eq!(jobs.set_channels(vec![renamed, channel("folk", root)]), ["folk", "rock"]);
        assert!(generation(&jobs, "rock") > rock, "a changed channel is added anew");
        assert!(!jobs.channels.contains_key("jazz"));
        assert!(jobs.set_channels(vec![]).is_empty());
        assert!(jobs.channels.is_empty());
    }

    #[test]
    fn removing_a_channel_drops_its_queue_and_media_and_cancels_its_builds() {
        let root = std::path::Path::new("/srv");
        let mut jobs = Jobs::default();
        jobs.set_channels(vec![channel("rock", root), channel("jazz", root)]);
        let (rock, jazz) = (generation(&jobs, "rock"), generation(&jobs, "jazz"));
        jobs.scanned("rock", rock, Some("t".into()), scan_of(vec![media("a.mp3", 1), media("b.mp3", 2), media("c.mp3", 3)]));
        jobs.scanned("jazz", jazz, Some("t".into()), scan_of(vec![media("x.mp3", 4)]));
        assert_eq!((jobs.known.len(), jobs.queue.len()), (4, 4));
        let ids: Vec<String> = ["a.mp3", "b.mp3", "c.mp3"].iter().zip(1..).map(|(r, s)| media(r, s).job_id()).collect();
        let cancel = run(&mut jobs, &ids[0]);
        assert_eq!(jobs.cancel(ids[1].clone()), JobControl::Cancelled, "operator hold on a queued job");
        assert!(jobs.held.contains(&ids[1]));

        jobs.set_channels(vec![channel("jazz", root)]);
        assert!(cancel.is_cancelled(), "the running build of a removed channel is cancelled");
        assert!(jobs.known.values().all(|k| k.channel == "jazz"));
        assert_eq!(jobs.queue.iter().map(|(id, ())| id.clone()).collect::<Vec<_>>(), [media("x.mp3", 4).job_id()]);
        assert!(jobs.held.is_empty());
        assert_eq!(status_channels(&jobs), [("jazz".to_string(), JobState::Queued)]);
        let status = jobs.status(1, None);
        assert_eq!((status.running, status.queued), (0, 1));

        // The cancelled build ends: not held, not a failure; the channel is gone.
        jobs.finished(ids[0].clone(), None, true);
        assert!(jobs.running.is_empty() && jobs.held.is_empty() && jobs.records.is_empty());
        assert_eq!(jobs.start(ids[0].clone()), (JobControl::Unknown, None));
    }

    #[test]
    fn an_operator_cancel_still_holds_the_job() {
        let mut jobs = Jobs::default();
        jobs.set_channels(vec![channel("rock", std::path::Path::new("/srv"))]);
        jobs.scanned("rock", generation(&jobs, "rock"), Some("t".into()), scan_of(vec![media("a.mp3", 1)]));
        let id = media("a.mp3", 1).job_id();
        let cancel = run(&mut jobs, &id);
        assert_eq!(jobs.cancel(id.clone()), JobControl::Cancelled);
        assert!(cancel.is_cancelled());
        jobs.finished(id.clone(), None, true);
        assert!(jobs.held.contains(&id));
        assert_eq!(status_channels(&jobs), [("rock".to_string(), JobState::Cancelled)]);
    }

    #[test]
    fn a_scan_of_a_removed_or_replaced_channel_is_dropped() {
        let root = std::path::Path::new("/srv");
        let mut jobs = Jobs::default();
        jobs.set_channels(vec![channel("rock", root)]);
        let old = generation(&jobs, "rock");
        jobs.channels.get_mut("rock").unwrap().scanning = true;
        // Replaced while its scan ran: the old scan's result is ignored.
        let mut changed = channel("rock", root);
        changed.allow_network = true;
        jobs.set_channels(vec![changed]);
        let new = generation(&jobs, "rock");
        assert_ne!(old, new);
        let stale = jobs.scanned("rock", old, Some("old".into()), Ok(Scan { media: vec![media("a.mp3", 1)], existing: BTreeMap::new() }));
        assert!(stale.is_empty());
        assert!(jobs.known.is_empty() && jobs.queue.is_empty());
        assert_eq!(jobs.channels["rock"].template, None, "a stale scan does not set the template");
        // The current generation's scan counts.
        jobs.scanned("rock", new, Some("new".into()), scan_of(vec![media("a.mp3", 1)]));
        assert_eq!((jobs.known.len(), jobs.queue.len()), (1, 1));
        // Removed meanwhile: dropped.
        jobs.set_channels(vec![]);
        jobs.scanned("rock", new, Some("new".into()), scan_of(vec![media("b.mp3", 2)]));
        assert!(jobs.known.is_empty() && jobs.queue.is_empty() && jobs.channels.is_empty());
    }

    async fn wait_status(pool: &ActorRef<PoolMsg>, what: &str, ok: impl Fn(&EncodeStatus) -> bool) -> EncodeStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = status(pool).await.expect("pool answers");
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The real pool with the node's browser; no build starts (the disk is "too full"),
    /// so the jobs stay queued where the test can see them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn set_channels_adds_and_removes_a_channel_at_run_time() {
        let dir = tempfile::tempdir().unwrap();
        let rock = channel("rock", dir.path());
        std::fs::create_dir_all(&rock.media_dir).unwrap();
        // Different sizes: a media's fingerprint is its size and mtime, not its path.
        std::fs::write(rock.media_dir.join("01.mp3"), b"not decoded").unwrap();
        std::fs::write(rock.media_dir.join("02.mp3"), b"not decoded by a scan").unwrap();
        let settings = crate::render::BrowserSettings::new(dir.path().join("profiles"));
        let renderer = Renderer::start(settings).await.expect("chromium-headless-shell starts");
        let records = JobRecords::open(&dir.path().join("encode.sled")).unwrap();
        let settings = PoolSettings { workers: 1, min_free_bytes: u64::MAX, scan_every: Duration::from_secs(3600), template_check_every: Duration::from_secs(3600) };
        let args = PoolArgs { channels: vec![], renderer: renderer.clone(), records, settings };
        let (pool, handle) = Actor::spawn(None, EncodePool, args).await.unwrap();
        assert!(status(&pool).await.unwrap().jobs.is_empty());

        pool.send_message(PoolMsg::SetChannels(vec![rock.clone()])).unwrap();
        let s = wait_status(&pool, "2 queued rock jobs", |s| s.queued == 2).await;
        assert!(s.jobs.iter().all(|j| j.channel == "rock" && j.state == JobState::Queued), "{s:#?}");
        assert!(s.jobs[0].reason.as_deref().unwrap_or("").contains("min_free_bytes"), "{s:#?}");

        pool.send_message(PoolMsg::SetChannels(vec![])).unwrap();
        wait_status(&pool, "no jobs", |s| s.jobs.is_empty() && s.queued == 0).await;
        pool.send_message(PoolMsg::SetChannels(vec![rock])).unwrap();
        wait_status(&pool, "rock back", |s| s.queued == 2).await;
        pool.stop(None);
        handle.await.unwrap();
        renderer.shutdown().await;
    }
}
