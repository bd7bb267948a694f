//! Live counters of a capture thread (atomics written by the thread, read by the actor
//! for status) and the status the actor answers with.

use serde::Serialize;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters shared between one group's capture threads (kept across restarts) and the
/// actor. Each field is independent; no lock.
#[derive(Debug, Default)]
pub struct CaptureStats {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    invalid_datagrams: AtomicU64,
    gaps: AtomicU64,
    largest_gap_ns: AtomicU64,
    last_arrival_unix_ns: AtomicU64,
    segments_closed: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Valid TS datagrams received.
    pub datagrams: u64,
    /// TS bytes received (RTP headers not counted).
    pub bytes: u64,
    /// Datagrams that were not TS (or RTP-wrapped TS), dropped.
    pub invalid_datagrams: u64,
    pub gaps: u64,
    pub largest_gap_ns: u64,
    pub last_arrival_unix_ns: Option<u64>,
    pub segments_closed: u64,
}

impl CaptureStats {
    pub(super) fn datagram(&self, ts_bytes: usize, arrival_unix_ns: u64) {
        self.datagrams.fetch_add(1, Relaxed);
        self.bytes.fetch_add(ts_bytes as u64, Relaxed);
        self.last_arrival_unix_ns.store(arrival_unix_ns, Relaxed);
    }
    pub(super) fn invalid(&self) {
        self.invalid_datagrams.fetch_add(1, Relaxed);
    }
    pub(super) fn gap(&self, gap_ns: u64) {
        self.gaps.fetch_add(1, Relaxed);
        self.largest_gap_ns.fetch_max(gap_ns, Relaxed);
    }
    pub(super) fn segment_closed(&self) {
        self.segments_closed.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let last = self.last_arrival_unix_ns.load(Relaxed);
        StatsSnapshot {
            datagrams: self.datagrams.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            invalid_datagrams: self.invalid_datagrams.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            largest_gap_ns: self.largest_gap_ns.load(Relaxed),
            last_arrival_unix_ns: (last != 0).then_some(last),
            segments_closed: self.segments_closed.load(Relaxed),
        }
    }
}

/// One recorded channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelRecordingStatus {
    pub channel: String,
    pub group: Ipv4Addr,
    pub port: u16,
    pub interface: Ipv4Addr,
    /// A capture thread is running for it (after `Stop`, until it has closed its
    /// segment and ended).
    pub recording: bool,
    #[serde(flatten)]
    pub counters: StatsSnapshot,
    /// Capture threads restarted after dying.
    pub restarts: u32,
    pub last_error: Option<String>,
}

/// The recorder's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecorderStatus {
    pub channels: Vec<ChannelRecordingStatus>,
    pub retention_runs: u64,
    pub deleted_segments: u64,
    /// Bytes of all indexed segments after the last retention run.
    pub kept_bytes: u64,
    pub last_retention_error: Option<String>,
}

impl RecorderStatus {
    pub fn channel(&self, channel: &str) -> Option<&ChannelRecordingStatus> {
        self.channels.iter().find(|c| c.channel == channel)
    }
}
