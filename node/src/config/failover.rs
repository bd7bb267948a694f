//! `[node.failover]`: how this node's streamers watch their multicast groups in a
//! cluster (a standalone node has no backup and ignores it).

use super::ConfigIssue;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[node.failover]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverConfig {
    /// A backup takes over when its group has been silent this long, ms. [50]
    pub takeover_ms: u64,
    /// A backup that never heard its main listens this long before it may take over
    /// (the main may still be starting), ms. [2000]
    pub first_listen_ms: u64,
    /// How much of its shadow stream a backup keeps to re-send what the main missed, ms.
    /// [500]
    pub keep_ms: u64,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig { takeover_ms: 50, first_listen_ms: 2000, keep_ms: 500 }
    }
}

impl FailoverConfig {
    /// The playout settings for the node tagged `node`.
    pub fn settings(&self, node: u32) -> headend_actors::playout::failover::FailoverSettings {
        headend_actors::playout::failover::FailoverSettings {
            node,
            takeover_after: Duration::from_millis(self.takeover_ms),
            first_listen: Duration::from_millis(self.first_listen_ms),
            keep: Duration::from_millis(self.keep_ms),
        }
    }
}

pub(super) fn issues(f: &FailoverConfig, issues: &mut Vec<ConfigIssue>) {
    if !(5..=5000).contains(&f.takeover_ms) {
        issues.push(ConfigIssue::OutOfRange { field: "node.failover.takeover_ms".into(), value: f.takeover_ms, range: "5..=5000 (longer than the gap between two datagrams of the slowest channel)" });
    }
    if !(100..=60_000).contains(&f.first_listen_ms) {
        issues.push(ConfigIssue::OutOfRange { field: "node.failover.first_listen_ms".into(), value: f.first_listen_ms, range: "100..=60000" });
    }
    if f.keep_ms < 2 * f.takeover_ms || f.keep_ms > 10_000 {
        issues.push(ConfigIssue::OutOfRange { field: "node.failover.keep_ms".into(), value: f.keep_ms, range: "2 x takeover_ms ..= 10000" });
    }
}

/// `[node.recorder]`: recordings of the groups this node backs up (in a cluster), under
/// `<data_dir>/recordings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    /// Length of a segment file, seconds. [60]
    pub segment_secs: u64,
    /// Segments older than this are deleted, hours. [8]
    pub retention_hours: u64,
    /// At most this many bytes of recordings (oldest deleted first); none: no cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// No new segment is opened while less than this is free, bytes. [1 GiB]
    pub min_free_bytes: u64,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig { segment_secs: 60, retention_hours: 8, max_bytes: None, min_free_bytes: 1 << 30 }
    }
}

impl RecorderConfig {
    /// The recorder's settings for a node keeping its data in `data_dir`.
    pub fn settings(&self, data_dir: &std::path::Path) -> headend_actors::recorder::RecorderSettings {
        let mut s = headend_actors::recorder::RecorderSettings::new(data_dir.join("recordings"));
        s.segment_length = Duration::from_secs(self.segment_secs);
        s.retention = Duration::from_secs(self.retention_hours * 3600);
        s.max_bytes = self.max_bytes;
        s.disk_floor_bytes = self.min_free_bytes;
        s
    }
}

pub(super) fn recorder_issues(r: &RecorderConfig, issues: &mut Vec<ConfigIssue>) {
    if !(1..=3600).contains(&r.segment_secs) {
        issues.push(ConfigIssue::OutOfRange { field: "node.recorder.segment_secs".into(), value: r.segment_secs, range: "1..=3600" });
    }
    if !(1..=24 * 31).contains(&r.retention_hours) {
        issues.push(ConfigIssue::OutOfRange { field: "node.recorder.retention_hours".into(), value: r.retention_hours, range: "1..=744" });
    }
}
