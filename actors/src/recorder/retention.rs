//! Retention: a pure plan (which complete segments go) and its execution. Only complete
//! segments are deleted, and only at the exact path the recorder gives its own segments
//! (`<dir>/<channel>/<start_unix_ms>.ts`); anything else in the folders is never touched.

use super::error::RecorderError;
use super::index::{SegmentIndex, SegmentInfo, SegmentState};
use super::segment::segment_path;
use std::path::Path;
use std::time::Duration;

/// The complete segments to delete: those whose last datagram is older than
/// `retention`, then, while the total of all indexed bytes is over `max_bytes`, the
/// oldest remaining complete ones.
pub fn plan_retention(segments: &[SegmentInfo], now_unix_ns: u64, retention: Duration, max_bytes: Option<u64>) -> Vec<SegmentInfo> {
    let cutoff = now_unix_ns.saturating_sub(retention.as_nanos() as u64);
    let mut complete: Vec<&SegmentInfo> = segments.iter().filter(|s| s.state == SegmentState::Complete).collect();
    complete.sort_by_key(|s| (s.last_arrival_unix_ns, s.start_unix_ms));
    let mut total: u64 = segments.iter().map(|s| s.bytes).sum();
    let mut out = Vec::new();
    for s in complete {
        let expired = s.last_arrival_unix_ns < cutoff;
        let over_cap = max_bytes.is_some_and(|cap| total > cap);
        if !expired && !over_cap {
            break;
        }
        total -= s.bytes;
        out.push(s.clone());
    }
    out
}

/// What a retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted: u64,
    pub freed_bytes: u64,
    /// Bytes of all segments still indexed.
    pub kept_bytes: u64,
    pub errors: Vec<String>,
}

/// Plans and deletes (file, then index entry).
pub fn apply_retention(
    dir: &Path,
    index: &SegmentIndex,
    now_unix_ns: u64,
    retention: Duration,
    max_bytes: Option<u64>,
) -> Result<RetentionReport, RecorderError> {
    let all = index.all()?;
    let mut report = RetentionReport { kept_bytes: all.iter().map(|s| s.bytes).sum(), ..Default::default() };
    for s in plan_retention(&all, now_unix_ns, retention, max_bytes) {
        if s.path != segment_path(&dir.join(&s.channel), s.start_unix_ms) {
            report.errors.push(format!(
                "recorder: index entry {}/{} points at {}, outside the recording folder {}; not deleting it, remove the entry by hand",
                s.channel,
                s.start_unix_ms,
                s.path.display(),
                dir.display()
            ));
            continue;
        }
        match std::fs::remove_file(&s.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                report.errors.push(RecorderError::Io { path: s.path.clone(), what: "delete an expired segment", source: e }.to_string());
                continue;
            }
        }
        index.remove(&s.channel, s.start_unix_ms)?;
        report.deleted += 1;
        report.freed_bytes += s.bytes;
        report.kept_bytes -= s.bytes;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    const S: u64 = 1_000_000_000;

    fn seg(channel: &str, start_s: u64, bytes: u64, state: SegmentState) -> SegmentInfo {
        SegmentInfo {
            channel: channel.into(),
            group: Ipv4Addr::new(239, 255, 1, 1),
            port: 5000,
            path: PathBuf::from(format!("/r/{channel}/{}.ts", start_s * 1000)),
            start_unix_ms: start_s * 1000,
            first_arrival_unix_ns: start_s * S,
            last_arrival_unix_ns: (start_s + 10) * S,
            bytes,
            packets: bytes / 188,
            gaps: 0,
            largest_gap_ns: 0,
            state,
            recovered: false,
        }
    }

    fn starts(v: &[SegmentInfo]) -> Vec<(String, u64)> {
        v.iter().map(|s| (s.channel.clone(), s.start_unix_ms / 1000)).collect()
    }

    #[test]
    fn old_segments_go_and_the_cap_takes_the_oldest_first() {
        let segs = vec![
            seg("a", 0, 100, SegmentState::Complete),
            seg("b", 5, 100, SegmentState::Complete),
            seg("a", 10, 100, SegmentState::Complete),
            seg("b", 15, 100, SegmentState::Complete),
            seg("a", 20, 100, SegmentState::Recording),
        ];
        // Ended at 10 and 15 s; retention 100 s at 114 s: only the first.
        assert_eq!(starts(&plan_retention(&segs, 114 * S, Duration::from_secs(100), None)), [("a".into(), 0)]);
        assert!(plan_retention(&segs, 109 * S, Duration::from_secs(100), None).is_empty());
        // Cap 250 of 500: the three oldest complete ones.
        assert_eq!(starts(&plan_retention(&segs, 0, Duration::from_secs(100), Some(250))), [("a".into(), 0), ("b".into(), 5), ("a".into(), 10)]);
        // A recording segment is never planned, even far over the cap.
        assert_eq!(plan_retention(&segs, 0, Duration::ZERO, Some(0)).len(), 4);
    }
}
