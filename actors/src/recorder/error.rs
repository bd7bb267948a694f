//! The recorder's one error type. Every variant names the channel, group or path it is
//! about and says what to do.

use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("recorder: channel id {channel:?} cannot name a recording folder; use 1 to 100 letters, digits, '.', '_' or '-', not starting with '.'")]
    InvalidChannel { channel: String },
    #[error("recorder {channel}: cannot join {group}:{port} on interface {interface}: {source}; check that {group} is a multicast address and {interface} is an address of this host")]
    Join { channel: String, group: Ipv4Addr, port: u16, interface: Ipv4Addr, source: std::io::Error },
    #[error("recorder {channel}: receiving from {group}:{port} failed: {source}; the capture thread is restarted, check the interface if this repeats")]
    Receive { channel: String, group: Ipv4Addr, port: u16, source: std::io::Error },
    #[error("recorder: {path}: cannot {what}: {source}; check that the recording folder exists, is writable by headend and its disk is healthy")]
    Io { path: PathBuf, what: &'static str, source: std::io::Error },
    #[error("recorder: only {free} bytes free under {dir}, below the disk floor of {floor} bytes; not opening a new segment. Free space on that disk, shorten the recorder's retention or byte cap, or lower its disk floor, then ask for the recording again")]
    DiskFloor { dir: PathBuf, free: u64, floor: u64 },
    #[error("recording index {index}: {source}; check the disk, or move the index away to start a new one (the recordings are indexed again only as new segments close)")]
    Index { index: String, source: sled::Error },
    #[error("recording index {index}: entry {key} is unreadable ({source}); move the index away to start a new one")]
    Corrupt { index: String, key: String, source: serde_json::Error },
    #[error("recorder: no complete recording of channel {channel} covers or follows unix time {at_unix_ns} ns; ask a peer that recorded the channel, or pick a later time")]
    NoRecording { channel: String, at_unix_ns: u64 },
    #[error("recorder: segment {path}: packet at byte {offset} has no 0x47 sync byte; the file is not a recorder segment or is damaged, remove it")]
    BadSegment { path: PathBuf, offset: u64 },
}

impl RecorderError {
    pub(crate) fn io(path: impl Into<PathBuf>, what: &'static str) -> impl FnOnce(std::io::Error) -> RecorderError {
        let path = path.into();
        move |source| RecorderError::Io { path, what, source }
    }

    /// The node cannot go on recording this group until someone acts (no retry helps).
    pub fn is_refusal(&self) -> bool {
        matches!(self, RecorderError::DiskFloor { .. } | RecorderError::InvalidChannel { .. })
    }
}
