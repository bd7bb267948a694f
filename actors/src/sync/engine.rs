//! One sync run for a channel: read the catalog, list the store under
//! `<source>/<channel>/` (in key ranges side by side when the catalog knows the keys),
//! plan, mark every item to fetch `Pending` (one unflushed batch), then for each: fetch
//! its sidecars and the media (bounded parallel transfers, retries with exponential
//! backoff and jitter, an optional total bandwidth cap shared by the transfers), read the
//! media's metadata from the staged file on its writer thread, and commit the file with
//! its `Ready` entry (in groups: see `group`), or record `Failed`/`Refused` with the
//! reason, before sending the change event. Items gone from the store are deleted from
//! the cache and the catalog, except while in use (on air).
//!
//! A store that cannot be reached leaves every `Ready` item as it was: the report says
//! degraded, and the next run picks up where this one stopped.

use super::catalog::{Catalog, CatalogEntry, EntryState};
use super::items::{group, Item};
use super::keys::CachePath;
use super::metadata::{self, MediaInfo};
use super::plan::{plan, Action, Known, RemoteObject};
use super::report::{NoProgress, ObjectFailure, Progress, SyncEvent, SyncReport};
use super::retry::with_retry;
pub use super::retry::RetryPolicy;
use super::source::{Source, SourceError};
use super::group::GroupCommit;
use super::transfer::{self, download, Downloaded, Inspect, Staged, TransferError, TransferLimits};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// Items in progress per transfer slot. Only `parallelism` of them talk to the store at
/// once; the others wait for a slot or finish on disk (fsync, rename, metadata, catalog),
/// where many at once let the file system and the catalog commit them together.
const ITEMS_PER_TRANSFER: usize = 8;

/// Largest `.sha256` sidecar read.
const MAX_SHA256_SIDECAR: u64 = 4096;

/// How a node syncs.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// The cache: items land at `<cache_root>/<key>`.
    pub cache_root: PathBuf,
    /// Transfers at once.
    pub parallelism: usize,
    pub max_object_bytes: u64,
    /// Free space to keep on the cache's file system.
    pub disk_floor_bytes: u64,
    /// Total bandwidth cap, shared by the parallel transfers.
    pub bandwidth_bytes_per_second: Option<u64>,
    pub retry: RetryPolicy,
}

impl SyncSettings {
    pub fn new(cache_root: impl Into<PathBuf>) -> Self {
        SyncSettings {
            cache_root: cache_root.into(),
            parallelism: 4,
            max_object_bytes: 20 << 30,
            disk_floor_bytes: 1 << 30,
            bandwidth_bytes_per_second: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// How a run talks to the rest of the node.
#[derive(Clone)]
pub struct SyncHooks {
    /// True for a file the player is using: it is not deleted from under it.
    pub in_use: Arc<dyn Fn(&Path) -> bool + Send + Sync>,
    pub events: Option<UnboundedSender<SyncEvent>>,
    pub progress: Arc<dyn Progress>,
}

impl Default for SyncHooks {
    fn default() -> Self {
        SyncHooks { in_use: Arc::new(|_| false), events: None, progress: Arc::new(NoProgress) }
    }
}

impl std::fmt::Debug for SyncHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHooks").field("events", &self.events.is_some()).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

struct Ctx<'a> {
    source: &'a Source,
    channel: &'a str,
    catalog: &'a Catalog,
    settings: &'a SyncSettings,
    hooks: &'a SyncHooks,
    limits: TransferLimits,
    /// Set when the store stops answering: the remaining downloads are not tried.
    store_down: AtomicBool,
    listed: BTreeSet<&'a str>,
    /// The files in the cache folders of the items to fetch when the run began.
    existing: std::collections::HashSet<PathBuf>,
    /// `parallelism` transfer slots: held while bytes come from the store.
    slots: tokio::sync::Semaphore,
    commits: Commits,
}

/// Why an item's files did not all arrive.
enum FetchError {
    /// The store stopped answering earlier in the run: not tried, left for the next run.
    StoreDown,
    Failed(String),
}

impl From<TransferError> for FetchError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::StoreDown { .. } => FetchError::StoreDown,
            e => FetchError::Failed(e.to_string()),
        }
    }
}

enum Outcome {
    Ready { bytes: u64 },
    Failed { reason: String },
    Skipped,
}

/// A failure that says the store (or the way to it) is gone, not that an object is bad.
fn store_outage(e: &object_store::Error) -> bool {
    !matches!(e, object_store::Error::NotFound { .. } | object_store::Error::InvalidPath { .. })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f).await.map_err(|e| format!("blocking task failed: {e}"))
}

/// Downloads waiting to be made durable under their names, each with the catalog entry
/// that says so (none for a sidecar), committed together: the files first (see
/// [`transfer::commit`]), then the entries of the files that made it, in one batch and one
/// flush. An entry is never durable before its file.
type Commits = GroupCommit<(Staged, Option<CatalogEntry>), Result<Downloaded, String>>;

fn start_commits(catalog: &Catalog) -> Commits {
    let c = catalog.clone();
    GroupCommit::start(
        move |batch: Vec<(Staged, Option<CatalogEntry>)>| {
            let (files, entries): (Vec<Staged>, Vec<Option<CatalogEntry>>) = batch.into_iter().unzip();
            let mut results: Vec<Result<Downloaded, String>> =
                transfer::commit(files).into_iter().map(|r| r.map_err(|e| e.to_string())).collect();
            let placed: Vec<CatalogEntry> =
                results.iter().zip(&entries).filter(|(r, _)| r.is_ok()).filter_map(|(_, e)| e.clone()).collect();
            if !placed.is_empty() {
                if let Err(e) = c.put_all(&placed) {
                    for (r, entry) in results.iter_mut().zip(&entries) {
                        if r.is_ok() && entry.is_some() {
                            *r = Err(e.to_string());
                        }
                    }
                }
            }
            results
        },
        Err,
    )
}

impl Ctx<'_> {
    async fn put(&self, entry: CatalogEntry) -> Result<(), String> {
        let c = self.catalog.clone();
        blocking(move || c.put(&entry)).await?.map_err(|e| e.to_string())
    }

    fn send(&self, event: SyncEvent) {
        if let Some(tx) = &self.hooks.events {
            let _ = tx.send(event);
        }
    }

    /// A transfer slot, or `None` once the store has stopped answering in this run.
    async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let permit = self.slots.acquire().await.ok()?;
        (!self.store_down.load(Ordering::SeqCst)).then_some(permit)
    }

    /// Downloads one object to a staged file, running `inspect` on it, with retries.
    async fn fetch<T: Send + 'static>(
        &self,
        object: &RemoteObject,
        dest: &CachePath,
        sha256: Option<&str>,
        inspect: Inspect<T>,
    ) -> Result<(Staged, T), TransferError> {
        let location = self.source.location(&object.key);
        let root = &self.settings.cache_root;
        let r = with_retry(&self.settings.retry, TransferError::is_transient, || async {
            let Some(slot) = self.slot().await else { return Err(TransferError::StoreDown { key: object.key.clone() }) };
            download(self.source.store(), &location, object, root, dest, sha256, &self.limits, slot, inspect.clone()).await
        })
        .await;
        if let Err(TransferError::Store { source, .. }) = &r {
            if store_outage(source) {
                self.store_down.store(true, Ordering::SeqCst);
            }
        }
        r
    }

    async fn expected_sha256(&self, sidecar: &RemoteObject) -> Result<String, FetchError> {
        let transient = SourceError::is_transient;
        let got = with_retry(&self.settings.retry, transient, || async {
            let Some(_slot) = self.slot().await else { return Ok(None) };
            self.source.get_small(&sidecar.key, MAX_SHA256_SIDECAR).await.map(Some)
        })
        .await;
        let got = got.map_err(|e| {
            if let SourceError::Get { source, .. } = &e {
                if store_outage(source) {
                    self.store_down.store(true, Ordering::SeqCst);
                }
            }
            FetchError::Failed(e.to_string())
        })?;
        let Some(bytes) = got else { return Err(FetchError::StoreDown) };
        let text = String::from_utf8_lossy(&bytes);
        let digest = text.split_whitespace().next().unwrap_or("");
        if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(digest.to_ascii_lowercase())
        } else {
            Err(FetchError::Failed(format!("{}: checksum sidecar is not a SHA-256 hex digest; fix or delete it", sidecar.key)))
        }
    }

    /// The `Pending` entry of an item about to be fetched.
    fn pending(&self, item: &Item, version: &RemoteObject, prev: Option<&CatalogEntry>, now: i64) -> CatalogEntry {
        CatalogEntry {
            channel: self.channel.into(),
            source_key: item.media.key.clone(),
            media_id: String::new(),
            title: String::new(),
            artist: String::new(),
            album: String::new(),
            genre: String::new(),
            duration_ms: 0,
            size: version.size,
            etag: version.etag.clone(),
            sha256: None,
            last_modified_ms: version.last_modified_ms,
            local_path: item.dest.under(&self.settings.cache_root),
            state: EntryState::Pending,
            first_seen_ms: prev.map_or(now, |p| p.first_seen_ms),
            last_seen_ms: now,
        }
    }

    /// Brings one item in (its `Pending` entry already written), and records the outcome
    /// in the catalog.
    async fn process(&self, item: &Item, mut entry: CatalogEntry, prev: Option<CatalogEntry>) -> Outcome {
        if self.store_down.load(Ordering::SeqCst) {
            if let Some(p) = prev.filter(|p| p.state == EntryState::Ready) {
                let _ = self.put(p).await;
            }
            return Outcome::Skipped;
        }
        let local_path = entry.local_path.clone();
        let was_ready = prev.as_ref().is_some_and(|p| p.state == EntryState::Ready);
        // On the writer thread, once the bytes are whole: the old covers and unlisted
        // sidecars go, then the metadata is read from the staged file.
        let (stale, media) = (self.stale_derived(item, &local_path), local_path.clone());
        let inspect: Inspect<Result<MediaInfo, String>> = Arc::new(move |staged: &Path| {
            remove_existing(&stale);
            metadata::read_media_info_as(staged, &media).map_err(|e| e.to_string())
        });
        let (staged, local, sidecar_bytes) = match self.fetch_all(item, inspect).await {
            Ok(v) => v,
            Err(e) => {
                let skipped = matches!(e, FetchError::StoreDown);
                let reason = match e {
                    FetchError::StoreDown => String::new(),
                    FetchError::Failed(r) => r,
                };
                if !was_ready {
                    let sidecars = self.sidecar_files(item);
                    let _ = blocking(move || remove_existing(&sidecars)).await;
                }
                // The old version (if any) is untouched: keep it playable. An item left
                // for the next run is fetched then.
                let back = match prev {
                    Some(p) if was_ready => Some(p),
                    _ if skipped => None,
                    _ => Some(CatalogEntry { state: EntryState::Failed { reason: reason.clone() }, ..entry }),
                };
                if let Some(back) = back {
                    let _ = self.put(back).await;
                }
                return if skipped { Outcome::Skipped } else { Outcome::Failed { reason } };
            }
        };
        let info = match local {
            Ok(info) => info,
            Err(reason) => {
                // The bytes arrived whole but are not media headend can read: the staged
                // file never takes the name. The item is refused until the object
                // changes, rather than fetched every run.
                drop(staged);
                let deleted = self.delete_files(&local_path, self.sidecar_files(item)).await;
                entry.state = EntryState::Refused { reason: reason.clone() };
                let _ = self.put(entry).await;
                if was_ready {
                    let key = item.media.key.clone();
                    self.send(SyncEvent::Removed { channel: self.channel.into(), key, local_path, deleted });
                }
                return Outcome::Failed { reason };
            }
        };
        for w in &info.warnings {
            tracing::warn!(channel = self.channel, key = %item.media.key, "{w}");
        }
        fill(&mut entry, info, staged.sha256());
        let downloaded = match self.commits.commit((staged, Some(entry.clone())), Err).await {
            Ok(d) => d,
            Err(reason) => {
                if let Some(p) = prev.filter(|_| was_ready) {
                    let _ = self.put(p).await;
                }
                return Outcome::Failed { reason };
            }
        };
        self.send(if was_ready { SyncEvent::Changed(entry) } else { SyncEvent::New(entry) });
        Outcome::Ready { bytes: downloaded.bytes + sidecar_bytes }
    }

    /// Checksum sidecar, then the other sidecars (each committed as it comes), then the
    /// media, staged and inspected; the caller commits it.
    async fn fetch_all<T: Send + 'static>(&self, item: &Item, inspect: Inspect<T>) -> Result<(Staged, T, u64), FetchError> {
        let limit = self.limits.max_object_bytes;
        if item.media.size > limit {
            return Err(TransferError::TooLarge { key: item.media.key.clone(), size: item.media.size, limit }.into());
        }
        let sha = match &item.sha256 {
            Some(s) => Some(self.expected_sha256(s).await?),
            None => None,
        };
        let mut bytes = 0;
        let nothing: Inspect<()> = Arc::new(|_: &Path| ());
        for (o, dest) in &item.files {
            let (staged, ()) = self.fetch(o, dest, None, nothing.clone()).await?;
            bytes += self.commits.commit((staged, None), Err).await.map_err(FetchError::Failed)?.bytes;
        }
        let (staged, local) = self.fetch(&item.media, &item.dest, sha.as_deref(), inspect).await?;
        Ok((staged, local, bytes))
    }

    /// Before reading a new version's metadata, its old covers and the sidecars the store
    /// no longer has must go, so they cannot speak for it: the names to remove. Only
    /// files there when the run began can be stale (during a run, an item's covers are
    /// written by that item alone, and its sidecars are listed), so the run's snapshot of
    /// the cache folders is asked instead of the disk.
    fn stale_derived(&self, item: &Item, path: &Path) -> Vec<PathBuf> {
        let root = &self.settings.cache_root;
        let covers = ["jpg", "png", "bmp", "gif", "webp"].map(|e| metadata::cover_path(path, e));
        let sides = ["json"].iter().chain(metadata::IMAGE_EXTENSIONS).flat_map(|e| metadata::sidecar_candidates(path, e));
        covers
            .into_iter()
            .chain(sides)
            .filter(|p| {
                let key = p.strip_prefix(root).ok().and_then(|r| r.to_str()).unwrap_or("");
                let current = item.files.iter().any(|(o, _)| o.key == key);
                !current && !self.listed.contains(key) && p.starts_with(root) && self.existing.contains(p)
            })
            .collect()
    }

    /// Deletes an item's file, its covers and `more` (its sidecars), unless the file is in
    /// use; the unlinks run on a blocking thread.
    async fn delete_files(&self, path: &Path, more: Vec<PathBuf>) -> bool {
        if !path.starts_with(&self.settings.cache_root) {
            tracing::warn!(path = %path.display(), "not deleting a file outside the cache");
            return false;
        }
        if (self.hooks.in_use)(path) {
            return false;
        }
        let covers = ["jpg", "png", "bmp", "gif", "webp"].map(|e| metadata::cover_path(path, e));
        let doomed: Vec<PathBuf> = std::iter::once(path.to_path_buf()).chain(covers).chain(more).collect();
        let _ = blocking(move || remove_existing(&doomed)).await;
        true
    }

    /// The cached copies of an item's sidecars.
    fn sidecar_files(&self, item: &Item) -> Vec<PathBuf> {
        item.files.iter().map(|(_, dest)| dest.under(&self.settings.cache_root)).collect()
    }

    /// Retires items gone from the store; their sidecars go too when no longer listed.
    async fn remove(&self, key: &str, entry: &CatalogEntry, report: &mut SyncReport) {
        let path = &entry.local_path;
        let was_ready = entry.state == EntryState::Ready;
        let root = &self.settings.cache_root;
        let unlisted_sidecars: Vec<PathBuf> = ["json"]
            .iter()
            .chain(metadata::IMAGE_EXTENSIONS)
            .flat_map(|ext| metadata::sidecar_candidates(path, ext))
            .filter(|side| {
                let key = side.strip_prefix(root).ok().and_then(|r| r.to_str()).unwrap_or("");
                !key.is_empty() && !self.listed.contains(key) && side.starts_with(root)
            })
            .collect();
        let deleted = self.delete_files(path, unlisted_sidecars).await;
        if deleted {
            let (c, ch, k) = (self.catalog.clone(), self.channel.to_string(), key.to_string());
            if let Err(e) = blocking(move || c.remove(&ch, &k)).await.and_then(|r| r.map_err(|e| e.to_string())) {
                report.failed.push(ObjectFailure { channel: self.channel.into(), key: key.into(), reason: e });
                return;
            }
            report.removed += 1;
        } else {
            report.removal_deferred += 1;
        }
        if was_ready {
            self.send(SyncEvent::Removed { channel: self.channel.into(), key: key.into(), local_path: path.clone(), deleted });
        }
    }
}

/// Removes those of `paths` that are there. Blocking.
fn remove_existing(paths: &[PathBuf]) {
    for p in paths {
        if let Err(e) = std::fs::remove_file(p) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %p.display(), "cannot delete: {e}");
            }
        }
    }
}

/// The files in `dirs` now (a folder that cannot be read holds none). Blocking.
fn snapshot(dirs: BTreeSet<PathBuf>) -> std::collections::HashSet<PathBuf> {
    dirs.iter().filter_map(|d| std::fs::read_dir(d).ok()).flatten().filter_map(|e| e.ok().map(|e| e.path())).collect()
}

fn fill(entry: &mut CatalogEntry, info: MediaInfo, sha256: &str) {
    entry.media_id = info.media_id;
    entry.title = info.title;
    entry.artist = info.artist;
    entry.album = info.album;
    entry.genre = info.genre;
    entry.duration_ms = info.duration_ms;
    entry.sha256 = Some(sha256.to_string());
    entry.state = EntryState::Ready;
}

/// One sync run of `channel` (the folder `<source>/<channel>/`) into the cache.
pub async fn sync_channel(source: &Source, channel: &str, catalog: &Catalog, settings: &SyncSettings, hooks: &SyncHooks) -> SyncReport {
    let started = Instant::now();
    let mut report = SyncReport { channels: vec![channel.to_string()], started_unix_ms: now_ms(), ..Default::default() };
    run(source, channel, catalog, settings, hooks, &mut report).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    for e in &report.errors {
        tracing::warn!(channel, source = source.url(), "sync: {e}");
    }
    report
}

async fn run(source: &Source, channel: &str, catalog: &Catalog, settings: &SyncSettings, hooks: &SyncHooks, report: &mut SyncReport) {
    let (c, ch) = (catalog.clone(), channel.to_string());
    let known = match blocking(move || c.channel(&ch)).await.and_then(|r| r.map_err(|e| e.to_string())) {
        Ok(k) => k,
        Err(e) => return report.errors.push(format!("{channel}: {e}")),
    };
    // The keys the catalog knows let the listing run in ranges side by side.
    let hints: Vec<&str> = known.keys().map(String::as_str).collect();
    let listing = match source.list_objects_hinted(channel, &hints).await {
        Ok(l) => l,
        Err(e) => {
            report.errors.push(format!("{channel}: {e}"));
            report.degraded = true;
            return;
        }
    };
    report.listed = listing.len() as u64;
    let items = group(&listing, channel, report);
    report.media = items.len() as u64;
    let versions: Vec<RemoteObject> = items.iter().map(Item::version).collect();
    let known_plan: BTreeMap<String, Known> = known.iter().map(|(k, e)| (k.clone(), e.known())).collect();
    let actions = plan(&versions, &known_plan);
    let by_key: BTreeMap<&str, usize> = items.iter().enumerate().map(|(n, i)| (i.media.key.as_str(), n)).collect();
    let mut work = Vec::new();
    let mut removals = Vec::new();
    for a in actions {
        match a {
            Action::Download { object, why } => {
                let prev = known.get(&object.key).cloned();
                tracing::debug!(channel, key = %object.key, ?why, "sync: fetching");
                work.push((by_key[object.key.as_str()], object, prev));
            }
            Action::Remove { key } => removals.push(key),
        }
    }
    // Versions refused before are not fetched again, but each run still reports them.
    let mut still_refused = 0;
    for item in items.iter() {
        let key = &item.media.key;
        if let Some(EntryState::Refused { reason }) = known.get(key).map(|e| &e.state) {
            if !work.iter().any(|(n, _, _)| &items[*n].media.key == key) {
                let reason = format!("{reason} (refused before; fetched again when the object changes)");
                report.failed.push(ObjectFailure { channel: channel.into(), key: key.clone(), reason });
                still_refused += 1;
            }
        }
    }
    report.unchanged = report.media - work.len() as u64 - still_refused;
    let size = |i: &Item| i.media.size + i.files.iter().map(|(o, _)| o.size).sum::<u64>();
    let total: u64 = work.iter().map(|(n, _, _)| size(&items[*n])).sum();
    hooks.progress.planned(work.len() as u64, total);
    let parallel = settings.parallelism.clamp(1, work.len().max(1));
    let limits = TransferLimits {
        max_object_bytes: settings.max_object_bytes,
        disk_floor_bytes: settings.disk_floor_bytes,
        bytes_per_second: settings.bandwidth_bytes_per_second.map(|b| (b / parallel as u64).max(1)),
    };
    let listed: BTreeSet<&str> = listing.iter().map(|o| o.key.as_str()).collect();
    let slots = tokio::sync::Semaphore::new(parallel);
    let dirs: BTreeSet<PathBuf> =
        work.iter().filter_map(|(n, _, _)| items[*n].dest.under(&settings.cache_root).parent().map(Path::to_path_buf)).collect();
    // A run with nothing to fetch (a no-op re-sync) reads no folder and writes nothing.
    let existing = if dirs.is_empty() { Default::default() } else { blocking(move || snapshot(dirs)).await.unwrap_or_default() };
    let commits = start_commits(catalog);
    let store_down = AtomicBool::new(false);
    let ctx = Ctx { source, channel, catalog, settings, hooks, limits, store_down, listed, existing, slots, commits };
    // Every item to fetch is `Pending` from here to its outcome, written in one batch
    // without an fsync (see Catalog::put_unflushed).
    let now = now_ms();
    let work: Vec<(usize, CatalogEntry, Option<CatalogEntry>)> =
        work.into_iter().map(|(n, version, prev)| (n, ctx.pending(&items[n], &version, prev.as_ref(), now), prev)).collect();
    let (c, pendings) = (catalog.clone(), work.iter().map(|(_, e, _)| e.clone()).collect::<Vec<_>>());
    let written = if pendings.is_empty() { Ok(()) } else { blocking(move || c.put_all_unflushed(&pendings)).await.and_then(|r| r.map_err(|e| e.to_string())) };
    if let Err(e) = written {
        report.errors.push(format!("{channel}: {e}"));
        ctx.commits.close().await;
        return;
    }
    let (ctx_ref, items) = (&ctx, &items);
    let mut outcomes = futures::stream::iter(work)
        .map(move |(n, entry, prev): (usize, CatalogEntry, Option<CatalogEntry>)| async move {
            (n, ctx_ref.process(&items[n], entry, prev).await)
        })
        .buffer_unordered(parallel * ITEMS_PER_TRANSFER);
    while let Some((n, outcome)) = outcomes.next().await {
        let key = &items[n].media.key;
        match outcome {
            Outcome::Ready { bytes } => {
                report.downloaded += 1;
                report.bytes += bytes;
                hooks.progress.object_done(key, bytes, true);
            }
            Outcome::Failed { reason } => {
                tracing::warn!(channel, key = %key, "sync: {reason}");
                report.failed.push(ObjectFailure { channel: channel.into(), key: key.clone(), reason });
                hooks.progress.object_done(key, 0, false);
            }
            Outcome::Skipped => {
                report.skipped += 1;
                hooks.progress.object_done(key, 0, false);
            }
        }
    }
    drop(outcomes);
    if ctx.store_down.load(Ordering::SeqCst) {
        report.degraded = true;
        report.errors.push(format!(
            "{channel}: the store at {} stopped answering during the run; {} downloads left for the next run",
            source.url(),
            report.skipped
        ));
    }
    for key in removals {
        if let Some(entry) = known.get(&key) {
            ctx.remove(&key, entry, report).await;
        }
    }
    // The commit task holds the catalog: it ends with the run.
    ctx.commits.close().await;
}
