//! Durable copy of a channel's schedule, so a restarted node resumes the channel exactly
//! where it should be. Written atomically (temporary file, fsync, rename).

use super::schedule::Schedule;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("schedule store {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("schedule store {path} is unreadable ({source}); move it away to start the channel afresh")]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

#[derive(Debug, Clone)]
pub struct ScheduleStore {
    path: PathBuf,
}

impl ScheduleStore {
    pub fn new(state_dir: &Path) -> Self {
        ScheduleStore { path: state_dir.join("schedule.json") }
    }

    pub fn load(&self) -> Result<Option<Schedule>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Corrupt { path: self.path.clone(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path: self.path.clone(), source }),
        }
    }

    pub fn save(&self, schedule: &Schedule) -> Result<(), StoreError> {
        let io = |source| StoreError::Io { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&serde_json::to_vec(schedule).expect("schedule serializes")).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}
