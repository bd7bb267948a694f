//! The segment index, in sled (a tree `recorder_segments`, in `<dir>/index.sled` or in a
//! database the node passes in). Keys are `<channel> NUL <start_unix_ms, big-endian>`,
//! so a channel's segments are one ordered range. Values are JSON. Every change is
//! flushed before the call returns.

use super::error::RecorderError;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

const TREE: &str = "recorder_segments";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentState {
    /// Being written (as `<path>.part`); counts are those at opening.
    Recording,
    /// Closed, fsynced and renamed: `path` holds exactly `bytes`.
    Complete,
}

/// One segment of a channel's recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub channel: String,
    pub group: Ipv4Addr,
    pub port: u16,
    /// The complete segment's file (`<dir>/<channel>/<start_unix_ms>.ts`).
    pub path: PathBuf,
    /// Its name: the first datagram's arrival, Unix milliseconds (made unique).
    pub start_unix_ms: u64,
    pub first_arrival_unix_ns: u64,
    pub last_arrival_unix_ns: u64,
    pub bytes: u64,
    pub packets: u64,
    /// Arrival gaps longer than the threshold before datagrams of this segment.
    pub gaps: u64,
    pub largest_gap_ns: u64,
    pub state: SegmentState,
    /// Closed by crash recovery: the end of the recording was lost, `last_arrival` is
    /// the file's modification time.
    #[serde(default)]
    pub recovered: bool,
}

impl SegmentInfo {
    /// Whether the segment's datagrams arrived within `[from, to]` in part.
    pub fn overlaps(&self, from_unix_ns: u64, to_unix_ns: u64) -> bool {
        self.first_arrival_unix_ns <= to_unix_ns && self.last_arrival_unix_ns >= from_unix_ns
    }
}

/// A channel id usable as a folder name (and inside index keys).
pub fn validate_channel(channel: &str) -> Result<(), RecorderError> {
    let ok = !channel.is_empty()
        && channel.len() <= 100
        && !channel.starts_with('.')
        && channel.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RecorderError::InvalidChannel { channel: channel.to_string() })
    }
}

fn key(channel: &str, start_unix_ms: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.len() + 9);
    k.extend_from_slice(channel.as_bytes());
    k.push(0);
    k.extend_from_slice(&start_unix_ms.to_be_bytes());
    k
}

fn prefix(channel: &str) -> Vec<u8> {
    let mut k = channel.as_bytes().to_vec();
    k.push(0);
    k
}

/// The index; cheap to clone (sled trees are shared handles).
#[derive(Clone)]
pub struct SegmentIndex {
    tree: sled::Tree,
    label: String,
}

impl std::fmt::Debug for SegmentIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentIndex").field("index", &self.label).finish()
    }
}

impl SegmentIndex {
    /// Opens (or creates) the index database at `path`.
    pub fn open(path: &Path) -> Result<Self, RecorderError> {
        let label = path.display().to_string();
        let db = sled::open(path).map_err(|source| RecorderError::Index { index: label.clone(), source })?;
        Self::in_db(&db, label)
    }

    /// Uses a database the node already has; `label` names it in errors.
    pub fn in_db(db: &sled::Db, label: impl Into<String>) -> Result<Self, RecorderError> {
        let label = label.into();
        let tree = db.open_tree(TREE).map_err(|source| RecorderError::Index { index: label.clone(), source })?;
        Ok(SegmentIndex { tree, label })
    }

    fn err(&self) -> impl Fn(sled::Error) -> RecorderError + '_ {
        |source| RecorderError::Index { index: self.label.clone(), source }
    }

    fn decode(&self, k: &[u8], v: &[u8]) -> Result<SegmentInfo, RecorderError> {
        serde_json::from_slice(v).map_err(|source| RecorderError::Corrupt {
            index: self.label.clone(),
            key: String::from_utf8_lossy(k).replace('\0', "/"),
            source,
        })
    }

    /// Stores (or replaces) a segment's entry and flushes.
    pub fn put(&self, info: &SegmentInfo) -> Result<(), RecorderError> {
        let v = serde_json::to_vec(info).expect("segment info serialises");
        self.tree.insert(key(&info.channel, info.start_unix_ms), v).map_err(self.err())?;
        self.tree.flush().map_err(self.err())?;
        Ok(())
    }

    pub fn get(&self, channel: &str, start_unix_ms: u64) -> Result<Option<SegmentInfo>, RecorderError> {
        let k = key(channel, start_unix_ms);
        match self.tree.get(&k).map_err(self.err())? {
            Some(v) => self.decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Removes a segment's entry and flushes.
    pub fn remove(&self, channel: &str, start_unix_ms: u64) -> Result<(), RecorderError> {
        self.tree.remove(key(channel, start_unix_ms)).map_err(self.err())?;
        self.tree.flush().map_err(self.err())?;
        Ok(())
    }

    /// Every segment, by channel then start.
    pub fn all(&self) -> Result<Vec<SegmentInfo>, RecorderError> {
        self.collect(self.tree.iter())
    }

    /// A channel's segments, by start.
    pub fn channel(&self, channel: &str) -> Result<Vec<SegmentInfo>, RecorderError> {
        self.collect(self.tree.scan_prefix(prefix(channel)))
    }

    /// A channel's segments whose datagrams arrived (in part) between `from` and `to`
    /// (Unix ns, inclusive), complete or still recording, by start.
    pub fn segments(&self, channel: &str, from_unix_ns: u64, to_unix_ns: u64) -> Result<Vec<SegmentInfo>, RecorderError> {
        let mut v = self.channel(channel)?;
        v.retain(|s| match s.state {
            SegmentState::Complete => s.overlaps(from_unix_ns, to_unix_ns),
            // A segment being written runs on until now.
            SegmentState::Recording => s.first_arrival_unix_ns <= to_unix_ns,
        });
        Ok(v)
    }

    /// The first complete segment of `channel` starting after `start_unix_ms`.
    pub fn next_complete(&self, channel: &str, start_unix_ms: u64) -> Result<Option<SegmentInfo>, RecorderError> {
        let from = key(channel, start_unix_ms.saturating_add(1));
        let end = key(channel, u64::MAX);
        for kv in self.tree.range(from..=end) {
            let (k, v) = kv.map_err(self.err())?;
            let s = self.decode(&k, &v)?;
            if s.state == SegmentState::Complete {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    fn collect(&self, it: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>) -> Result<Vec<SegmentInfo>, RecorderError> {
        it.map(|kv| {
            let (k, v) = kv.map_err(self.err())?;
            self.decode(&k, &v)
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(channel: &str, start_ms: u64, len_ms: u64, state: SegmentState) -> SegmentInfo {
        SegmentInfo {
            channel: channel.into(),
            group: Ipv4Addr::new(239, 255, 1, 1),
            port: 5000,
            path: PathBuf::from(format!("/r/{channel}/{start_ms}.ts")),
            start_unix_ms: start_ms,
            first_arrival_unix_ns: start_ms * 1_000_000,
            last_arrival_unix_ns: (start_ms + len_ms) * 1_000_000,
            bytes: 188,
            packets: 1,
            gaps: 0,
            largest_gap_ns: 0,
            state,
            recovered: false,
        }
    }

    #[test]
    fn channels_are_separate_ranges_and_time_lookups_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let index = SegmentIndex::open(&dir.path().join("index.sled")).unwrap();
        for s in [
            seg("a", 1_000, 999, SegmentState::Complete),
            seg("a", 2_000, 999, SegmentState::Complete),
            seg("a", 3_000, 0, SegmentState::Recording),
            seg("a-b", 1_500, 999, SegmentState::Complete),
            seg("b", 500, 999, SegmentState::Complete),
        ] {
            index.put(&s).unwrap();
        }
        let starts = |v: Vec<SegmentInfo>| v.iter().map(|s| (s.channel.clone(), s.start_unix_ms)).collect::<Vec<_>>();
        assert_eq!(starts(index.channel("a").unwrap()), [("a".into(), 1_000), ("a".into(), 2_000), ("a".into(), 3_000)]);
        assert_eq!(starts(index.segments("a", 1_999_000_000, 2_000_000_000).unwrap()), [("a".into(), 1_000), ("a".into(), 2_000)]);
        assert_eq!(starts(index.segments("a", 2_500_000_000, 9_000_000_000).unwrap()), [("a".into(), 2_000), ("a".into(), 3_000)]);
        assert!(index.segments("a", 0, 999_000_000).unwrap().is_empty());
        assert_eq!(index.next_complete("a", 1_000).unwrap().unwrap().start_unix_ms, 2_000);
        assert_eq!(index.next_complete("a", 2_000).unwrap(), None, "the recording one is skipped");
        assert_eq!(index.all().unwrap().len(), 5);
        index.remove("a", 1_000).unwrap();
        assert_eq!(index.get("a", 1_000).unwrap(), None);
        assert!(index.get("a", 2_000).unwrap().is_some());
    }

    #[test]
    fn channel_ids_are_checked_as_folder_names() {
        for ok in ["news", "Rock-FM_2", "a.b"] {
            validate_channel(ok).unwrap();
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a\0b", "a b", &"x".repeat(101), "é"] {
            let e = validate_channel(bad).unwrap_err();
            assert!(e.to_string().contains("letters, digits"), "{e}");
        }
    }
}
