//! One object from the store into the cache: free-space check against the floor, stream
//! to a temporary file beside the target, verify (size, SHA-256 when known), then commit
//! it with the other downloads finishing at the same time: sync to disk, rename, fsync the
//! directory. A crash at any point leaves at most a temporary file, never a partial file
//! under the final name.

use super::keys::{CachePath, TEMP_PREFIX};
use super::plan::RemoteObject;
use bytes::Bytes;
use futures::StreamExt;
use object_store::{path::Path as StorePath, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const TEMP_NAME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);

/// Limits for one transfer.
#[derive(Debug, Clone)]
pub struct TransferLimits {
    /// Objects larger than this are refused.
    pub max_object_bytes: u64,
    /// Free space that must remain on the cache's file system after the download.
    pub disk_floor_bytes: u64,
    /// Optional bandwidth cap for this transfer, bytes per second.
    pub bytes_per_second: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{key}: {size} bytes exceeds the per-object limit of {limit} bytes (sync.max_object_bytes)")]
    TooLarge { key: String, size: u64, limit: u64 },
    #[error("{key}: not enough disk space in {dir}: {free} bytes free, {size} needed plus the {floor}-byte floor (sync.disk_floor_bytes); free space or lower the floor")]
    DiskFloor { key: String, dir: PathBuf, free: u64, size: u64, floor: u64 },
    #[error("{key}: store error: {source}")]
    Store { key: String, source: object_store::Error },
    #[error("{key}: writing {path}: {source}")]
    Io { key: String, path: PathBuf, source: std::io::Error },
    #[error("{key}: got {got} bytes where the listing said {expected} (truncated, or changed during the download)")]
    Truncated { key: String, got: u64, expected: u64 },
    #[error("{key}: checksum mismatch: SHA-256 {got}, expected {expected}")]
    ChecksumMismatch { key: String, got: String, expected: String },
    #[error("{key}: not fetched: the store stopped answering earlier in this run; left for the next run")]
    StoreDown { key: String },
}

impl TransferError {
    /// Whether retrying can help (the store or the network failed), as opposed to the
    /// object or the node being wrong.
    pub fn is_transient(&self) -> bool {
        matches!(self, TransferError::Store { .. } | TransferError::Truncated { .. })
    }
}

/// A verified download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// The temporary file a download to `target` is written to first: beside it, with
/// headend's reserved prefix and a short fixed-length name, so any legal target name
/// leaves a legal temporary name.
pub fn temp_path(target: &Path) -> PathBuf {
    let id = TEMP_NAME.checksum(target.as_os_str().as_encoded_bytes());
    target.with_file_name(format!("{TEMP_PREFIX}{id:016x}"))
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// Bytes gathered in memory before the writer starts: an object that fits is written in
/// one blocking step (one hop to a blocking thread), a larger one streams on.
const IN_MEMORY_BYTES: usize = 1 << 20;
/// Bytes handed to the writer at a time once it streams.
const BATCH_BYTES: usize = 1 << 20;
/// Held while a file is created or renamed in the cache. Both take the directory's lock
/// in the kernel, where waiters spin while the holder works; when creating a file is slow
/// (ext4 stepping over many recently freed inodes), dozens of writer threads spinning
/// there burn the CPU the transfers need. Waiting here sleeps instead.
static NAMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A commit syncs its files with one `syncfs` when they are several and this small in
/// all; larger ones get an fsync each.
const SYNCFS_BYTES: u64 = 16 << 20;
/// Batches queued for the writer: the download runs at most this far ahead of the disk.
const BATCHES_AHEAD: usize = 4;

/// Work run on a download's writer thread once the file is whole and verified, before it
/// is committed: given the temporary file's path (the sync reads the media's metadata
/// there, so content that is not media never reaches its name).
pub type Inspect<T> = Arc<dyn Fn(&Path) -> T + Send + Sync>;

/// Downloads `object` (at `location` in `store`) into a verified temporary file beside
/// `dest` under `cache_root`, and runs `inspect` on it; [`commit`] then makes it durable
/// under its name.
///
/// The network side stays on the async runtime; everything that touches the disk (the
/// floor check, the directory, the temporary file, SHA-256, `inspect`) runs on one
/// blocking thread, fed in batches. A download that is dropped or fails leaves no file.
///
/// `transfer_slot` is held while bytes come from the store and let go once the last one
/// is in: the writing and inspecting that follow do not count against the parallel
/// transfers.
#[allow(clippy::too_many_arguments)]
pub async fn download<S, T: Send + 'static>(
    store: &dyn ObjectStore,
    location: &StorePath,
    object: &RemoteObject,
    cache_root: &Path,
    dest: &CachePath,
    expected_sha256: Option<&str>,
    limits: &TransferLimits,
    transfer_slot: S,
    inspect: Inspect<T>,
) -> Result<(Staged, T), TransferError> {
    let key = object.key.clone();
    if object.size > limits.max_object_bytes {
        return Err(TransferError::TooLarge { key, size: object.size, limit: limits.max_object_bytes });
    }
    let job = WriteJob {
        key: key.clone(),
        target: dest.under(cache_root),
        cache_root: cache_root.to_path_buf(),
        size: object.size,
        last_modified_ms: object.last_modified_ms,
        expected_sha256: expected_sha256.map(str::to_string),
        disk_floor_bytes: limits.disk_floor_bytes,
    };
    if object.size > IN_MEMORY_BYTES as u64 {
        // Refuse before the request when the disk is already too full for this object
        // (a small one is checked before it is written).
        let precheck = job.clone();
        blocking(move || precheck.check_floor()).await?;
    }
    let store_err = |source| TransferError::Store { key: key.clone(), source };
    let mut stream = store.get(location).await.map_err(store_err)?.into_stream();
    let mut got = 0u64;
    let started = Instant::now();
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut writer: Option<Writer<T>> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(store_err)?;
        got += chunk.len() as u64;
        // The listing said the object fits; a store that sends more is cut off.
        if got > limits.max_object_bytes {
            return Err(TransferError::TooLarge { key, size: got, limit: limits.max_object_bytes });
        }
        batch_bytes += chunk.len();
        batch.push(chunk);
        if let Some(bps) = limits.bytes_per_second {
            // Stay under the cap: sleep until the bytes so far are due.
            let due = Duration::from_secs_f64(got as f64 / bps as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let threshold = if writer.is_some() { BATCH_BYTES } else { IN_MEMORY_BYTES };
        if batch_bytes < threshold {
            continue;
        }
        let (tx, _) = writer.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
            let (job, inspect) = (job.clone(), inspect.clone());
            (tx, tokio::task::spawn_blocking(move || job.stream(rx).map(|s| inspected(s, &*inspect))))
        });
        batch_bytes = 0;
        if tx.send(std::mem::take(&mut batch)).await.is_err() {
            // The writer stopped early (disk full, I/O error): its error says why.
            let (_, handle) = writer.take().expect("writer");
            return Err(joined(handle.await).err().unwrap_or(TransferError::Io {
                key,
                path: job.target.clone(),
                source: std::io::Error::other("the writer stopped"),
            }));
        }
    }
    drop(stream);
    drop(transfer_slot);
    match writer {
        None => blocking(move || job.write_all(batch).map(|s| inspected(s, &*inspect))).await,
        Some((tx, handle)) => {
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                return joined(handle.await);
            }
            // An empty batch says "that was all"; dropping the sender without it aborts.
            let _ = tx.send(Vec::new()).await;
            drop(tx);
            joined(handle.await)
        }
    }
}

fn joined<T>(r: Result<Result<T, TransferError>, tokio::task::JoinError>) -> Result<T, TransferError> {
    r.unwrap_or_else(|e| Err(TransferError::Io { key: String::new(), path: PathBuf::new(), source: std::io::Error::other(e) }))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, TransferError> + Send + 'static) -> Result<T, TransferError> {
    joined(tokio::task::spawn_blocking(f).await)
}

fn inspected<T>(s: Staged, inspect: &(dyn Fn(&Path) -> T + Send + Sync)) -> (Staged, T) {
    let t = inspect(&s.temp.path);
    (s, t)
}

/// A download's writer thread: batches go in, the staged file comes out.
type Writer<T> = (mpsc::Sender<Vec<Bytes>>, tokio::task::JoinHandle<Result<(Staged, T), TransferError>>);

/// The disk side of one download, run on a blocking thread.
#[derive(Debug, Clone)]
struct WriteJob {
    key: String,
    target: PathBuf,
    cache_root: PathBuf,
    size: u64,
    last_modified_ms: i64,
    expected_sha256: Option<String>,
    disk_floor_bytes: u64,
}

/// A temporary file, removed when dropped unless it was renamed into place.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    file: std::fs::File,
    renamed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The temporary file being written.
struct Partial {
    temp: TempFile,
    hasher: Sha256,
    got: u64,
}

/// A verified download in its temporary file, waiting for [`commit`]: not yet durable and
/// not yet under its name. Dropping it removes the file.
#[derive(Debug)]
pub struct Staged {
    temp: TempFile,
    key: String,
    target: PathBuf,
    bytes: u64,
    sha256: String,
}

impl Staged {
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> TransferError {
        io_error(&self.key, path)
    }
}

/// Maps an I/O error on `path` while handling `key`.
fn io_error(key: &str, path: &Path) -> impl FnOnce(std::io::Error) -> TransferError {
    let (key, path) = (key.to_string(), path.to_path_buf());
    move |source| TransferError::Io { key, path, source }
}

/// Makes a batch of downloads durable under their names: their data and inodes reach the
/// disk (one `syncfs` per file system when several small files share it, else each
/// file's own fsync), then each is renamed into place, then each directory that changed
/// is fsynced.
/// A crash at any point leaves every name holding either its old content or its whole
/// new content; a file whose sync fails is not renamed. Blocking.
pub fn commit(batch: Vec<Staged>) -> Vec<Result<Downloaded, TransferError>> {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;
    let mut devices: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut out: Vec<Option<Result<Downloaded, TransferError>>> = batch.iter().map(|_| None).collect();
    for (i, s) in batch.iter().enumerate() {
        match s.temp.file.metadata() {
            Ok(m) => devices.entry(m.dev()).or_default().push(i),
            Err(e) => out[i] = Some(Err(s.io(&s.temp.path)(e))),
        }
    }
    for members in devices.values() {
        let bytes: u64 = members.iter().map(|&i| batch[i].bytes).sum();
        if members.len() > 1 && bytes <= SYNCFS_BYTES {
            // Many small files: one sync of the file system costs one flush for all.
            if let Err(e) = nix::unistd::syncfs(&batch[members[0]].temp.file) {
                let e = std::io::Error::from(e);
                for &i in members {
                    let failed = std::io::Error::new(e.kind(), format!("syncing to disk: {e}"));
                    out[i] = Some(Err(batch[i].io(&batch[i].temp.path)(failed)));
                }
            }
        } else {
            // Large files: each its own fsync, so none waits for the others' data (or for
            // the parts of downloads still under way).
            for &i in members {
                if let Err(e) = batch[i].temp.file.sync_all() {
                    out[i] = Some(Err(batch[i].io(&batch[i].temp.path)(e)));
                }
            }
        }
    }
    let mut dirs: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    let mut batch = batch;
    for (i, s) in batch.iter_mut().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let renamed = {
            let _one_at_a_time = NAMING.lock().unwrap_or_else(|e| e.into_inner());
            std::fs::rename(&s.temp.path, &s.target)
        };
        match renamed {
            Ok(()) => {
                s.temp.renamed = true;
                let dir = s.target.parent().unwrap_or(Path::new("/")).to_path_buf();
                dirs.entry(dir).or_default().push(i);
            }
            Err(e) => out[i] = Some(Err(s.io(&s.target)(e))),
        }
    }
    for (dir, members) in dirs {
        let synced = std::fs::File::open(&dir).and_then(|f| f.sync_all());
        for i in members {
            let s = &batch[i];
            out[i] = Some(match &synced {
                Ok(()) => Ok(Downloaded { path: s.target.clone(), bytes: s.bytes, sha256: s.sha256.clone() }),
                Err(e) => Err(s.io(&dir)(std::io::Error::new(e.kind(), e.to_string()))),
            });
        }
    }
    out.into_iter().map(|r| r.expect("every download answered")).collect()
}

impl WriteJob {
    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> TransferError {
        io_error(&self.key, path)
    }

    fn dir(&self) -> &Path {
        self.target.parent().unwrap_or(&self.cache_root)
    }

    /// Free space against the floor, on the nearest existing ancestor of the target.
    fn check_floor(&self) -> Result<(), TransferError> {
        let dir = self.dir();
        let existing = dir.ancestors().find(|a| a.is_dir()).unwrap_or(&self.cache_root);
        let free = free_bytes(existing).map_err(self.io(existing))?;
        if free < self.size.saturating_add(self.disk_floor_bytes) {
            let (key, dir) = (self.key.clone(), dir.to_path_buf());
            return Err(TransferError::DiskFloor { key, dir, free, size: self.size, floor: self.disk_floor_bytes });
        }
        Ok(())
    }

    fn create(&self) -> Result<Partial, TransferError> {
        let dir = self.dir();
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(self.io(dir))?;
        }
        let path = temp_path(&self.target);
        let file = {
            let _one_at_a_time = NAMING.lock().unwrap_or_else(|e| e.into_inner());
            std::fs::File::create(&path).map_err(self.io(&path))?
        };
        Ok(Partial { temp: TempFile { path, file, renamed: false }, hasher: Sha256::new(), got: 0 })
    }

    fn append(&self, p: &mut Partial, chunks: &[Bytes]) -> Result<(), TransferError> {
        for c in chunks {
            p.hasher.update(c);
            p.got += c.len() as u64;
        }
        let mut slices: Vec<IoSlice> = chunks.iter().map(|c| IoSlice::new(c)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = p.temp.file.write_vectored(slices).map_err(self.io(&p.temp.path))?;
            if n == 0 {
                return Err(self.io(&p.temp.path)(std::io::ErrorKind::WriteZero.into()));
            }
            IoSlice::advance_slices(&mut slices, n);
        }
        Ok(())
    }

    /// Verifies and stamps the temporary file; [`commit`] makes it durable and names it.
    fn finish(&self, p: Partial) -> Result<Staged, TransferError> {
        if p.got != self.size {
            return Err(TransferError::Truncated { key: self.key.clone(), got: p.got, expected: self.size });
        }
        let sha256 = hex(&p.hasher.finalize());
        if let Some(expected) = &self.expected_sha256 {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(TransferError::ChecksumMismatch { key: self.key.clone(), got: sha256, expected: expected.clone() });
            }
        }
        // The store's modification time, not the arrival time: every node's copy of an
        // object then has the same size and mtime, so items built from it get the same
        // fingerprint (and name) on any node.
        if self.last_modified_ms > 0 {
            let t = std::time::UNIX_EPOCH + Duration::from_millis(self.last_modified_ms as u64);
            p.temp.file.set_modified(t).map_err(self.io(&p.temp.path))?;
        }
        Ok(Staged { temp: p.temp, key: self.key.clone(), target: self.target.clone(), bytes: p.got, sha256 })
    }

    /// An object that arrived whole in memory: one blocking step.
    fn write_all(self, chunks: Vec<Bytes>) -> Result<Staged, TransferError> {
        self.check_floor()?;
        let mut p = self.create()?;
        self.append(&mut p, &chunks)?;
        self.finish(p)
    }

    /// A larger object: batches until an empty one says the stream ended. A closed
    /// channel without it (the download failed or was dropped) removes the file.
    ///
    /// Each batch's writeback to the disk is started as soon as it is written, so the
    /// disk works while the rest arrives and the commit's sync finds little left to do.
    fn stream(self, mut rx: mpsc::Receiver<Vec<Bytes>>) -> Result<Staged, TransferError> {
        self.check_floor()?;
        let mut p = self.create()?;
        loop {
            match rx.blocking_recv() {
                Some(batch) if batch.is_empty() => return self.finish(p),
                Some(batch) => {
                    let from = p.got;
                    self.append(&mut p, &batch)?;
                    start_writeback(&p.temp.file, from, p.got - from);
                }
                None => return Err(self.io(&p.temp.path)(std::io::Error::other("download stopped"))),
            }
        }
    }
}

/// Starts writing `len` bytes of `file` from `offset` back to the disk, without waiting
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`; the commit's fsync still makes them
/// durable). Only a hint: an error changes nothing.
#[allow(unsafe_code)]
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: a plain syscall on a file descriptor `file` keeps open; no memory is shared.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
