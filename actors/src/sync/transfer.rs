//! One object from the store into the cache: free-space check against the floor, stream
//! to a temporary file beside the target, verify (size, SHA-256 when known), fsync,
//! rename, fsync the directory. A crash at any point leaves at most a temporary file,
//! never a partial file under the final name.

use super::keys::{CachePath, TEMP_PREFIX};
use super::plan::RemoteObject;
use futures::StreamExt;
use object_store::{path::Path as StorePath, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

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

/// Downloads `object` (at `location` in `store`) to `dest` under `cache_root`.
pub async fn download(
    store: &dyn ObjectStore,
    location: &StorePath,
    object: &RemoteObject,
    cache_root: &Path,
    dest: &CachePath,
    expected_sha256: Option<&str>,
    limits: &TransferLimits,
) -> Result<Downloaded, TransferError> {
    let key = object.key.clone();
    if object.size > limits.max_object_bytes {
        return Err(TransferError::TooLarge { key, size: object.size, limit: limits.max_object_bytes });
    }
    let target = dest.under(cache_root);
    let dir = target.parent().unwrap_or(cache_root).to_path_buf();
    let io = |path: &Path| {
        let (key, path) = (key.clone(), path.to_path_buf());
        move |source| TransferError::Io { key, path, source }
    };
    // Check the floor on the nearest existing ancestor before creating anything.
    let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(cache_root).to_path_buf();
    let free = free_bytes(&existing).map_err(io(&existing))?;
    if free < object.size.saturating_add(limits.disk_floor_bytes) {
        return Err(TransferError::DiskFloor { key, dir, free, size: object.size, floor: limits.disk_floor_bytes });
    }
    tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
    let temp = temp_path(&target);
    let result = write_verified(store, location, object, &temp, expected_sha256, limits).await;
    let (bytes, sha256) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
    };
    tokio::fs::rename(&temp, &target).await.map_err(io(&target))?;
    let d = dir.clone();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await
        .expect("fsync task")
        .map_err(io(&dir))?;
    Ok(Downloaded { path: target, bytes, sha256 })
}

async fn write_verified(
    store: &dyn ObjectStore,
    location: &StorePath,
    object: &RemoteObject,
    temp: &Path,
    expected_sha256: Option<&str>,
    limits: &TransferLimits,
) -> Result<(u64, String), TransferError> {
    let key = object.key.clone();
    let io = |source| TransferError::Io { key: key.clone(), path: temp.to_path_buf(), source };
    let store_err = |source| TransferError::Store { key: key.clone(), source };
    let mut file = tokio::fs::File::create(temp).await.map_err(io)?;
    let mut stream = store.get(location).await.map_err(store_err)?.into_stream();
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    let started = Instant::now();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(store_err)?;
        got += chunk.len() as u64;
        // The listing said the object fits; a store that sends more is cut off.
        if got > limits.max_object_bytes {
            return Err(TransferError::TooLarge { key, size: got, limit: limits.max_object_bytes });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
        if let Some(bps) = limits.bytes_per_second {
            // Stay under the cap: sleep until the bytes so far are due.
            let due = Duration::from_secs_f64(got as f64 / bps as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    if got != object.size {
        return Err(TransferError::Truncated { key, got, expected: object.size });
    }
    let sha256 = hex(&hasher.finalize());
    if let Some(expected) = expected_sha256 {
        if !expected.eq_ignore_ascii_case(&sha256) {
            return Err(TransferError::ChecksumMismatch { key, got: sha256, expected: expected.to_string() });
        }
    }
    // The store's modification time, not the arrival time: every node's copy of an
    // object then has the same size and mtime, so items built from it get the same
    // fingerprint (and name) on any node.
    file.flush().await.map_err(io)?;
    if object.last_modified_ms > 0 {
        let t = std::time::UNIX_EPOCH + Duration::from_millis(object.last_modified_ms as u64);
        let std_file = file.try_clone().await.map_err(io)?.into_std().await;
        tokio::task::spawn_blocking(move || std_file.set_modified(t)).await.expect("set mtime task").map_err(io)?;
    }
    file.sync_all().await.map_err(io)?;
    Ok((got, sha256))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
