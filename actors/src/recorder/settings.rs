//! What the recorder is configured with (settings, apart from state).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct RecorderSettings {
    /// Segments go to `<dir>/<channel>/<start_unix_ms>.ts`; the index to
    /// `<dir>/index.sled` unless one is passed in.
    pub dir: PathBuf,
    /// A segment is cut at the first PAT packet after it is this old.
    pub segment_length: Duration,
    /// How long past `segment_length` a cut waits for a PAT before cutting anywhere (at
    /// a packet boundary); also how long a new segment waits for its first PAT.
    pub pat_wait: Duration,
    /// Complete segments whose last datagram is older than this are deleted.
    pub retention: Duration,
    /// Total bytes of segments kept (oldest deleted first), if set.
    pub max_bytes: Option<u64>,
    /// Free bytes required on the disk before each segment is opened.
    pub disk_floor_bytes: u64,
    /// Arrival gaps between datagrams longer than this are counted.
    pub gap_threshold: Duration,
    /// How often retention runs.
    pub retention_interval: Duration,
}

impl RecorderSettings {
    /// Defaults: 60 s segments, 8 h retention, no byte cap, 1 GiB disk floor, 100 ms
    /// gap threshold, retention checked every minute.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RecorderSettings {
            dir: dir.into(),
            segment_length: Duration::from_secs(60),
            pat_wait: Duration::from_secs(1),
            retention: Duration::from_secs(8 * 3600),
            max_bytes: None,
            disk_floor_bytes: 1 << 30,
            gap_threshold: Duration::from_millis(100),
            retention_interval: Duration::from_secs(60),
        }
    }

    /// The folder of a channel's segments.
    pub fn channel_dir(&self, channel: &str) -> PathBuf {
        self.dir.join(channel)
    }
}
