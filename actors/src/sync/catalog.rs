//! The node's media catalog: what was synced, from where, in which state. Stored in
//! sled behind this small module (sled 0.34 is no longer maintained; nothing else in
//! headend touches it). Every state that is relied on (`Ready`, `Failed`, `Refused`,
//! removals) is flushed (fsync) before the call returns, so the catalog survives
//! restarts and kill -9; `Pending` is written without waiting, since losing it only
//! makes the object look new again. An entry is only `Ready` once its file was
//! verified, fsynced and renamed into place.

use super::plan::{Known, KnownState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog {path}: {source}")]
    Store { path: PathBuf, source: sled::Error },
    #[error("catalog {path}: entry {key:?} is unreadable ({source}); remove it with the catalog tools or delete the catalog to rebuild it from the store")]
    Corrupt { path: PathBuf, key: String, source: serde_json::Error },
}

/// State of a catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EntryState {
    /// Download started, not finished: never playable.
    Pending,
    Ready,
    /// The last attempt failed; retried on the next run.
    Failed { reason: String },
    /// This version of the object cannot be used (not media headend can read); tried
    /// again only when the object changes.
    Refused { reason: String },
}

/// One synced object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// Channel or genre folder the object belongs to.
    pub channel: String,
    pub source_key: String,
    pub media_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub artist: String,
    #[serde(default)]
    pub album: String,
    #[serde(default)]
    pub genre: String,
    #[serde(default)]
    pub duration_ms: u64,
    pub size: u64,
    pub etag: Option<String>,
    /// SHA-256 of the file when it was verified against one.
    #[serde(default)]
    pub sha256: Option<String>,
    pub last_modified_ms: i64,
    pub local_path: PathBuf,
    #[serde(flatten)]
    pub state: EntryState,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

impl CatalogEntry {
    /// What the sync plan needs to know.
    pub fn known(&self) -> Known {
        Known {
            size: self.size,
            etag: self.etag.clone(),
            last_modified_ms: self.last_modified_ms,
            state: match self.state {
                EntryState::Pending => KnownState::Pending,
                EntryState::Ready => KnownState::Ready,
                EntryState::Failed { .. } => KnownState::Failed,
                EntryState::Refused { .. } => KnownState::Refused,
            },
        }
    }
}

/// The catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    path: PathBuf,
    db: sled::Db,
}

fn db_key(channel: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.len() + 1 + key.len());
    k.extend_from_slice(channel.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let db = sled::open(path).map_err(|source| CatalogError::Store { path: path.into(), source })?;
        Ok(Catalog { path: path.into(), db })
    }

    fn store_err(&self) -> impl Fn(sled::Error) -> CatalogError + '_ {
        move |source| CatalogError::Store { path: self.path.clone(), source }
    }

    /// Writes an entry and flushes it to disk before returning.
    pub fn put(&self, entry: &CatalogEntry) -> Result<(), CatalogError> {
        self.put_unflushed(entry)?;
        self.db.flush().map_err(self.store_err())?;
        Ok(())
    }

    /// Writes entries in one batch and flushes them to disk before returning.
    pub fn put_all(&self, entries: &[CatalogEntry]) -> Result<(), CatalogError> {
        self.put_all_unflushed(entries)?;
        self.db.flush().map_err(self.store_err())?;
        Ok(())
    }

    /// Writes entries in one batch without waiting for the disk (see `put_unflushed`).
    pub fn put_all_unflushed(&self, entries: &[CatalogEntry]) -> Result<(), CatalogError> {
        let mut batch = sled::Batch::default();
        for e in entries {
            batch.insert(db_key(&e.channel, &e.source_key), serde_json::to_vec(e).expect("catalog entry serializes"));
        }
        self.db.apply_batch(batch).map_err(self.store_err())?;
        Ok(())
    }

    /// Writes an entry without waiting for the disk. For states whose loss in a crash
    /// is harmless: a lost `Pending` entry makes the object look new to the next run,
    /// which downloads it again (nothing is ever marked `Ready` early).
    pub fn put_unflushed(&self, entry: &CatalogEntry) -> Result<(), CatalogError> {
        let value = serde_json::to_vec(entry).expect("catalog entry serializes");
        self.db.insert(db_key(&entry.channel, &entry.source_key), value).map_err(self.store_err())?;
        Ok(())
    }

    pub fn get(&self, channel: &str, key: &str) -> Result<Option<CatalogEntry>, CatalogError> {
        match self.db.get(db_key(channel, key)).map_err(self.store_err())? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|source| CatalogError::Corrupt { path: self.path.clone(), key: key.into(), source }),
        }
    }

    pub fn remove(&self, channel: &str, key: &str) -> Result<(), CatalogError> {
        self.db.remove(db_key(channel, key)).map_err(self.store_err())?;
        self.db.flush().map_err(self.store_err())?;
        Ok(())
    }

    /// Every entry of a channel, by key.
    pub fn channel(&self, channel: &str) -> Result<BTreeMap<String, CatalogEntry>, CatalogError> {
        let mut prefix = channel.as_bytes().to_vec();
        prefix.push(0);
        let mut out = BTreeMap::new();
        for kv in self.db.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(self.store_err())?;
            let key = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let entry: CatalogEntry = serde_json::from_slice(&v)
                .map_err(|source| CatalogError::Corrupt { path: self.path.clone(), key: key.clone(), source })?;
            out.insert(key, entry);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, state: EntryState) -> CatalogEntry {
        CatalogEntry {
            channel: "rock".into(),
            source_key: key.into(),
            media_id: key.into(),
            title: "T".into(),
            artist: "A".into(),
            album: String::new(),
            genre: "Rock".into(),
            duration_ms: 1000,
            size: 10,
            etag: Some("e".into()),
            sha256: None,
            last_modified_ms: 5,
            local_path: PathBuf::from("/cache").join(key),
            state,
            first_seen_ms: 1,
            last_seen_ms: 2,
        }
    }

    #[test]
    fn entries_survive_reopen_and_are_kept_per_channel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog");
        {
            let c = Catalog::open(&path).unwrap();
            c.put(&entry("rock/a.mp3", EntryState::Ready)).unwrap();
            c.put(&entry("rock/b.mp3", EntryState::Pending)).unwrap();
            c.put(&entry("rock/c.mp3", EntryState::Failed { reason: "checksum mismatch".into() })).unwrap();
            let mut other = entry("jazz/x.mp3", EntryState::Ready);
            other.channel = "jazz".into();
            c.put(&other).unwrap();
        }
        let c = Catalog::open(&path).unwrap();
        let rock = c.channel("rock").unwrap();
        assert_eq!(rock.len(), 3);
        assert_eq!(rock["rock/a.mp3"].state, EntryState::Ready);
        assert_eq!(rock["rock/b.mp3"].known().state, KnownState::Pending);
        assert_eq!(rock["rock/c.mp3"].state, EntryState::Failed { reason: "checksum mismatch".into() });
        assert_eq!(c.channel("jazz").unwrap().len(), 1);
        c.remove("rock", "rock/a.mp3").unwrap();
        assert!(c.get("rock", "rock/a.mp3").unwrap().is_none());
    }
}
