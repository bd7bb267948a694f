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
    /// A channel's scan is done (sent by the scan's task). `template` is the template's
    /// new fingerprint when it was checked this time.
    Scanned { channel: usize, template: Option<String>, result: Result<Scan, String> },
    /// A build made progress (0..=1).
    Progress { id: String, fraction: f32 },
    /// A build ended; its record is already stored.
    Finished { id: String, record: Option<JobRecord>, cancelled: bool },
    Status(RpcReplyPort<EncodeStatus>),
    /// Build (or rebuild) a job now.
    Start { id: String, reply: RpcReplyPort<JobControl> },
    Cancel { id: String, reply: RpcReplyPort<JobControl> },
}

/// What the pool knows of one media file of a channel.
#[derive(Debug, Clone)]
struct Known {
    channel: usize,
    position: usize,
    media: MediaFile,
}

#[derive(Debug)]
struct Running {
    known: Known,
    started: Instant,
    progress: f32,
    cancel: CancellationToken,
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
    /// Fingerprint of the template, refreshed every `template_check_every`.
    template: Option<String>,
    template_checked: Option<Instant>,
    scanning: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct EncodePool;

pub struct PoolState {
    args: PoolArgs,
    channels: Vec<ChannelState>,
    /// Every media file of the last scans, by job id.
    known: BTreeMap<String, Known>,
    queue: JobQueue<()>,
    running: HashMap<String, Running>,
    /// Outcomes by fingerprint (mirrors the catalog).
    records: HashMap<String, JobRecord>,
    /// Cancelled by an operator: not queued again until started or changed.
    held: HashSet<String>,
    /// Job ids waiting because the disk is too full.
    disk_low: Option<String>,
}

impl std::fmt::Debug for PoolState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolState").field("queued", &self.queue.len()).field("running", &self.running.len()).finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl PoolState {
    fn scan_channels(&mut self, myself: &ActorRef<PoolMsg>) {
        let every = self.args.settings.template_check_every;
        for (i, ch) in self.channels.iter_mut().enumerate() {
            if ch.scanning {
                continue;
            }
            ch.scanning = true;
            let check_template = ch.template_checked.is_none_or(|t| t.elapsed() >= every);
            if check_template {
                ch.template_checked = Some(Instant::now());
            }
            let (build, known_template, myself) = (ch.build.clone(), ch.template.clone(), myself.clone());
            tokio::spawn(async move {
                // A template that cannot be read now keeps its last fingerprint.
                let checked = if check_template { Some(build::template_fingerprint(&build).await) } else { None };
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
                    Some(fp) => {
                        let b = build.clone();
                        tokio::task::spawn_blocking(move || {
                            let media = scan::scan(&b.media_dir, &b.format_key(&fp))
                                .map_err(|e| format!("cannot list media folder {}: {e}", b.media_dir.display()))?;
                            Ok(Scan { media, existing: scan::existing_items(&b.items_dir) })
                        })
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r)
                    }
                };
                let _ = myself.send_message(PoolMsg::Scanned { channel: i, template, result });
            });
        }
    }

    fn scanned(&mut self, channel: usize, template: Option<String>, result: Result<Scan, String>) {
        let ch = &mut self.channels[channel];
        ch.scanning = false;
        if template.is_some() {
            ch.template = template;
        }
        let Scan { media, existing } = match result {
            Ok(scan) => scan,
            Err(e) => {
                tracing::warn!(channel = %ch.build.channel, "encode scan: {e}");
                return;
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
            let fresh = Known { channel, position, media: m.clone() };
            self.known.insert(id.clone(), fresh);
            let built = existing.contains_key(&m.item_name());
            let failed = self.records.get(&m.fingerprint).is_some_and(|r| matches!(r.outcome, Outcome::Failed { .. }));
            if built || failed || self.held.contains(&id) || self.running.contains_key(&id) || self.queue.contains(&id) {
                continue;
            }
            self.queue.push(id, Urgency::Scan, position, &self.channels[channel].build.channel, ());
        }
        let stale = scan::stale_items(&media, &existing);
        if !stale.is_empty() {
            tokio::task::spawn_blocking(move || {
                for p in stale {
                    tracing::info!(item = %p.display(), "removing replaced item");
                    let _ = std::fs::remove_file(&p);
                    let _ = std::fs::remove_file(p.with_extension("png"));
                    let _ = std::fs::remove_file(p.with_extension("json"));
                }
            });
        }
    }

    fn dispatch(&mut self, myself: &ActorRef<PoolMsg>) {
        while self.running.len() < self.args.settings.workers.max(1) {
            let Some((id, ())) = self.queue.pop() else { return };
            let Some(known) = self.known.get(&id).cloned() else { continue };
            let ch = &self.channels[known.channel];
            if ch.template.is_none() {
                self.queue.push(id, Urgency::Scan, known.position, &ch.build.channel, ());
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
                    self.queue.push(id, Urgency::Scan, known.position, &build.channel, ());
                    return;
                }
                _ => self.disk_low = None,
            }
            let cancel = CancellationToken::new();
            self.running.insert(id.clone(), Running { known: known.clone(), started: Instant::now(), progress: 0.0, cancel: cancel.clone() });
            let (renderer, records, myself) = (self.args.renderer.clone(), self.args.records.clone(), myself.clone());
            tokio::spawn(async move {
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
                let result = build::build(&renderer, &build, &known.media, progress, cancel).await;
                let cancelled = matches!(result, Err(BuildError::Cancelled));
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
            });
        }
    }

    fn status(&self) -> EncodeStatus {
        let mut jobs = Vec::new();
        let base = |id: &str, k: &Known, ch: &ChannelState, state| JobStatus {
            id: id.to_string(),
            channel: ch.build.channel.clone(),
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
        let mut running: Vec<_> = self.running.iter().collect();
        running.sort_by_key(|(_, r)| r.started);
        for (id, r) in running {
            let mut s = base(id, &r.known, &self.channels[r.known.channel], JobState::Running);
            s.progress_percent = (r.progress * 100.0).clamp(0.0, 100.0);
            s.elapsed_ms = Some(r.started.elapsed().as_millis() as u64);
            jobs.push(s);
        }
        for (id, ()) in self.queue.iter() {
            if let Some(k) = self.known.get(id) {
                let mut s = base(id, k, &self.channels[k.channel], JobState::Queued);
                s.reason = self.disk_low.clone();
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
            let ch = &self.channels[k.channel];
            let state = match record.map(|r| &r.outcome) {
                _ if self.held.contains(id) => JobState::Cancelled,
                Some(Outcome::Failed { .. }) => JobState::Failed,
                _ => JobState::Done,
            };
            let mut s = base(id, k, ch, state);
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
                let item = ch.build.items_dir.join(k.media.item_name());
                s.output = Some(item);
            }
            if state == JobState::Done {
                s.progress_percent = 100.0;
                done += 1;
            } else if state == JobState::Failed {
                failed += 1;
            }
            jobs.push(s);
        }
        EncodeStatus { workers: self.args.settings.workers, running: self.running.len(), queued: self.queue.len(), done, failed, jobs }
    }
}

impl Actor for EncodePool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = PoolArgs;

    async fn pre_start(&self, myself: ActorRef<PoolMsg>, args: PoolArgs) -> Result<PoolState, ActorProcessingErr> {
        let records = args.records.clone();
        let records: HashMap<String, JobRecord> =
            tokio::task::spawn_blocking(move || records.all()).await??.into_iter().map(|r| (r.fingerprint.clone(), r)).collect();
        let channels = args
            .channels
            .iter()
            .map(|b| ChannelState { build: Arc::new(b.clone()), template: None, template_checked: None, scanning: false })
            .collect();
        myself.send_interval(args.settings.scan_every, || PoolMsg::Scan);
        myself.send_message(PoolMsg::Scan)?;
        Ok(PoolState {
            args,
            channels,
            known: BTreeMap::new(),
            queue: JobQueue::default(),
            running: HashMap::new(),
            records,
            held: HashSet::new(),
            disk_low: None,
        })
    }

    async fn handle(&self, myself: ActorRef<PoolMsg>, msg: PoolMsg, state: &mut PoolState) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Scan => state.scan_channels(&myself),
            PoolMsg::Scanned { channel, template, result } => {
                state.scanned(channel, template, result);
                state.dispatch(&myself);
            }
            PoolMsg::Progress { id, fraction } => {
                if let Some(r) = state.running.get_mut(&id) {
                    r.progress = fraction;
                }
            }
            PoolMsg::Finished { id, record, cancelled } => {
                state.running.remove(&id);
                if cancelled {
                    state.held.insert(id);
                }
                if let Some(r) = record {
                    state.records.insert(r.fingerprint.clone(), r);
                }
                // Rescan now: removes the replaced item and queues what is next.
                state.scan_channels(&myself);
                state.dispatch(&myself);
            }
            PoolMsg::Status(reply) => {
                if !reply.is_closed() {
                    let _ = reply.send(state.status());
                }
            }
            PoolMsg::Start { id, reply } => {
                let answer = match state.known.get(&id).cloned() {
                    None => JobControl::Unknown,
                    Some(_) if state.running.contains_key(&id) => JobControl::AlreadyActive,
                    Some(k) => {
                        state.held.remove(&id);
                        if state.records.remove(&k.media.fingerprint).is_some() {
                            let (records, fp) = (state.args.records.clone(), k.media.fingerprint.clone());
                            tokio::task::spawn_blocking(move || records.remove(&fp));
                        }
                        let channel = state.channels[k.channel].build.channel.clone();
                        state.queue.push(id, Urgency::Operator, k.position, &channel, ());
                        state.dispatch(&myself);
                        JobControl::Started
                    }
                };
                if !reply.is_closed() {
                    let _ = reply.send(answer);
                }
            }
            PoolMsg::Cancel { id, reply } => {
                let answer = if let Some(r) = state.running.get(&id) {
                    r.cancel.cancel();
                    JobControl::Cancelled
                } else if state.queue.remove(&id).is_some() {
                    state.held.insert(id);
                    JobControl::Cancelled
                } else if state.known.contains_key(&id) {
                    JobControl::NotActive
                } else {
                    JobControl::Unknown
                };
                if !reply.is_closed() {
                    let _ = reply.send(answer);
                }
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
