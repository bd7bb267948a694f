//! What a sync run tells the rest of the node: change events for the render/encode side,
//! progress for the CLI's bars, the run's report, and the status `GET /sync/status` shows.

use super::catalog::CatalogEntry;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

/// A change to the cache, sent after the catalog says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// A new item is ready.
    New(CatalogEntry),
    /// A ready item was replaced by a new version (rebuild what was made from it).
    Changed(CatalogEntry),
    /// An item left the store (or its new version was refused): it leaves the schedule at
    /// the next boundary. `deleted` is false while the file is in use; the removal is
    /// retried (and the event sent again) on later runs.
    Removed { channel: String, key: String, local_path: PathBuf, deleted: bool },
}

/// Progress of a run, for progress bars. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// The plan is made: this many objects and bytes will be transferred.
    fn planned(&self, _objects: u64, _bytes: u64) {}
    /// One planned object is finished (downloaded, failed or skipped).
    fn object_done(&self, _key: &str, _bytes: u64, _ok: bool) {}
}

/// Progress that is not shown.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// An object the run could not bring in, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectFailure {
    pub channel: String,
    pub key: String,
    pub reason: String,
}

/// The outcome of one run (of one channel, or several merged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub channels: Vec<String>,
    pub started_unix_ms: i64,
    /// Objects in the listing (media and sidecars).
    pub listed: u64,
    /// Media items in the listing (objects that are not sidecars).
    pub media: u64,
    pub downloaded: u64,
    pub bytes: u64,
    pub unchanged: u64,
    pub removed: u64,
    /// Removals put off because the file is in use (on air).
    pub removal_deferred: u64,
    /// Keys refused as unsafe (`..`, absolute, backslash, ...), with the reason.
    pub refused: Vec<ObjectFailure>,
    pub failed: Vec<ObjectFailure>,
    /// Downloads not tried because the store went away during the run.
    pub skipped: u64,
    /// Run-level errors (store unreachable, catalog unreadable), each naming its source.
    pub errors: Vec<String>,
    /// The store could not be reached: the node plays from its cache.
    pub degraded: bool,
    pub duration_ms: u64,
}

impl SyncReport {
    /// True when everything listed is in the cache.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.failed.is_empty() && self.skipped == 0 && !self.degraded
    }

    /// Adds another run's counts (several channels in one report).
    pub fn merge(&mut self, other: SyncReport) {
        self.channels.extend(other.channels);
        if self.started_unix_ms == 0 || (other.started_unix_ms != 0 && other.started_unix_ms < self.started_unix_ms) {
            self.started_unix_ms = other.started_unix_ms;
        }
        self.listed += other.listed;
        self.media += other.media;
        self.downloaded += other.downloaded;
        self.bytes += other.bytes;
        self.unchanged += other.unchanged;
        self.removed += other.removed;
        self.removal_deferred += other.removal_deferred;
        self.refused.extend(other.refused);
        self.failed.extend(other.failed);
        self.skipped += other.skipped;
        self.errors.extend(other.errors);
        self.degraded |= other.degraded;
        self.duration_ms += other.duration_ms;
    }
}

/// Most recent errors kept per channel.
pub const RECENT_ERRORS: usize = 20;

/// Sync health of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelSyncStatus {
    pub last_run_unix_ms: Option<i64>,
    pub last_success_unix_ms: Option<i64>,
    pub last_duration_ms: u64,
    pub listed: u64,
    pub media: u64,
    pub downloaded: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
    pub refused: u64,
    /// Bytes transferred in the last run, and since the node started.
    pub bytes: u64,
    pub bytes_total: u64,
    pub degraded: bool,
    /// Newest last.
    pub recent_errors: Vec<String>,
}

/// What `GET /sync/status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    pub running: bool,
    pub runs: u64,
    pub last_run_unix_ms: Option<i64>,
    /// Some channel's store was unreachable in its last run.
    pub degraded: bool,
    pub channels: BTreeMap<String, ChannelSyncStatus>,
}

impl SyncStatus {
    /// Records a one-channel report.
    pub fn record(&mut self, report: &SyncReport) {
        let end = report.started_unix_ms + report.duration_ms as i64;
        self.last_run_unix_ms = Some(end);
        for channel in &report.channels {
            let c = self.channels.entry(channel.clone()).or_default();
            c.last_run_unix_ms = Some(end);
            if report.is_clean() {
                c.last_success_unix_ms = Some(end);
            }
            c.last_duration_ms = report.duration_ms;
            c.listed = report.listed;
            c.media = report.media;
            c.downloaded = report.downloaded;
            c.unchanged = report.unchanged;
            c.removed = report.removed;
            c.failed = report.failed.len() as u64;
            c.refused = report.refused.len() as u64;
            c.bytes = report.bytes;
            c.bytes_total += report.bytes;
            c.degraded = report.degraded;
            let mut recent: VecDeque<String> = std::mem::take(&mut c.recent_errors).into();
            let lines = report.errors.iter().cloned().chain(report.failed.iter().map(|f| f.reason.clone()));
            for line in lines {
                recent.push_back(line);
                if recent.len() > RECENT_ERRORS {
                    recent.pop_front();
                }
            }
            c.recent_errors = recent.into();
        }
        self.degraded = self.channels.values().any(|c| c.degraded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_last_run_and_keeps_recent_errors() {
        let mut status = SyncStatus::default();
        let bad = SyncReport {
            channels: vec!["rock".into()],
            started_unix_ms: 1_000,
            errors: vec!["store unreachable".into()],
            degraded: true,
            duration_ms: 5,
            ..Default::default()
        };
        status.record(&bad);
        assert!(status.degraded && status.channels["rock"].last_success_unix_ms.is_none());
        let good = SyncReport { channels: vec!["rock".into()], started_unix_ms: 2_000, bytes: 10, downloaded: 1, ..Default::default() };
        status.record(&good);
        let rock = &status.channels["rock"];
        assert!(!status.degraded && !rock.degraded);
        assert_eq!((rock.last_success_unix_ms, rock.bytes_total, rock.recent_errors.len()), (Some(2_000), 10, 1));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["channels"]["rock"]["downloaded"], 1);
        let mut merged = bad.clone();
        merged.merge(good);
        assert_eq!((merged.channels.len(), merged.degraded, merged.bytes), (2, true, 10));
    }
}
