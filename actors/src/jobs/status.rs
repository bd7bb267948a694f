//! What `GET /encode/status` shows: every job the pool knows, like the patent's parallel
//! encoder view (media id, title, artist, progress, output file, thumbnail).

use serde::Serialize;
use std::path::PathBuf;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    /// 16 hex digits of the fingerprint; names the job in start/cancel calls.
    pub id: String,
    pub channel: String,
    /// The media's path relative to the channel's media folder.
    pub media_id: String,
    pub title: String,
    pub artist: String,
    pub state: JobState,
    /// 0..=100.
    pub progress_percent: f32,
    pub output: Option<PathBuf>,
    /// `/encode/thumbnails/<id>.png` once built.
    pub thumbnail_url: Option<String>,
    /// Why it failed (names the file and the fix).
    pub reason: Option<String>,
    /// Stable failure class, e.g. `corrupt_audio`, `template_http_status`.
    pub kind: Option<String>,
    pub elapsed_ms: Option<u64>,
}

/// The pool as a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncodeStatus {
    pub workers: usize,
    pub running: usize,
    pub queued: usize,
    pub done: usize,
    pub failed: usize,
    /// Running first, then queued in run order, then finished (newest first).
    pub jobs: Vec<JobStatus>,
}

/// Answer of a start/cancel call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobControl {
    /// Queued to run next.
    Started,
    /// Already queued or running.
    AlreadyActive,
    /// Cancelled (running: stopped and its partial output removed; queued: dropped).
    Cancelled,
    /// Nothing to cancel: the job is not queued or running.
    NotActive,
    /// No job with that id.
    Unknown,
}
