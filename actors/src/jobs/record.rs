//! Job outcomes kept across restarts (sled, behind this one module): a failed job keeps
//! its reason and is not retried until its inputs change or an operator starts it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Outcome {
    Done { output: PathBuf, thumbnail: Option<PathBuf> },
    Failed { kind: String, reason: String },
}

/// What the catalog keeps of one job, by its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub fingerprint: String,
    pub channel: String,
    pub media: PathBuf,
    pub title: String,
    pub artist: String,
    pub outcome: Outcome,
    pub finished_unix_ms: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("encode job catalog {}: {source}; fix: check the data directory's permissions and free space, or move the damaged catalog away", path.display())]
    Store { path: PathBuf, source: sled::Error },
    #[error("encode job catalog {}: a record does not decode ({source}); fix: move the catalog away to rebuild it", path.display())]
    Decode { path: PathBuf, source: serde_json::Error },
}

/// The job catalog.
#[derive(Clone)]
pub struct JobRecords {
    db: sled::Db,
    path: PathBuf,
}

impl std::fmt::Debug for JobRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobRecords({})", self.path.display())
    }
}

impl JobRecords {
    /// Opens (or creates) the catalog at `path`. Blocking.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let db = sled::open(path).map_err(|source| RecordError::Store { path: path.into(), source })?;
        Ok(JobRecords { db, path: path.into() })
    }

    fn store_err(&self) -> impl FnOnce(sled::Error) -> RecordError + '_ {
        move |source| RecordError::Store { path: self.path.clone(), source }
    }

    /// Stores a record and flushes it. Blocking.
    pub fn put(&self, r: &JobRecord) -> Result<(), RecordError> {
        let bytes = serde_json::to_vec(r).map_err(|source| RecordError::Decode { path: self.path.clone(), source })?;
        self.db.insert(r.fingerprint.as_bytes(), bytes).map_err(self.store_err())?;
        self.db.flush().map_err(self.store_err())?;
        Ok(())
    }

    pub fn get(&self, fingerprint: &str) -> Result<Option<JobRecord>, RecordError> {
        let Some(bytes) = self.db.get(fingerprint.as_bytes()).map_err(self.store_err())? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|source| RecordError::Decode { path: self.path.clone(), source })
    }

    /// Forgets a record (an operator restarts the job).
    pub fn remove(&self, fingerprint: &str) -> Result<(), RecordError> {
        self.db.remove(fingerprint.as_bytes()).map_err(self.store_err())?;
        self.db.flush().map_err(self.store_err())?;
        Ok(())
    }

    /// Every record (for status).
    pub fn all(&self) -> Result<Vec<JobRecord>, RecordError> {
        self.db
            .iter()
            .values()
            .map(|v| {
                let v = v.map_err(self.store_err())?;
                serde_json::from_slice(&v).map_err(|source| RecordError::Decode { path: self.path.clone(), source })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.sled");
        let r = JobRecord {
            fingerprint: "ab".repeat(32),
            channel: "rock".into(),
            media: "/m/a.mp3".into(),
            title: "A".into(),
            artist: "B".into(),
            outcome: Outcome::Failed { kind: "corrupt-audio".into(), reason: "a.mp3: no audio".into() },
            finished_unix_ms: 1,
            elapsed_ms: 2,
        };
        {
            let db = JobRecords::open(&path).unwrap();
            db.put(&r).unwrap();
        }
        let db = JobRecords::open(&path).unwrap();
        assert_eq!(db.get(&r.fingerprint).unwrap(), Some(r.clone()));
        assert_eq!(db.all().unwrap(), vec![r.clone()]);
        db.remove(&r.fingerprint).unwrap();
        assert_eq!(db.get(&r.fingerprint).unwrap(), None);
    }
}
