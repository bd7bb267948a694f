//! After a crash: a channel folder may hold a `.part` (the segment being written) and the
//! index `Recording` entries. Each `.part` is cut to whole packets, fsynced, renamed and
//! indexed `Complete` (marked `recovered`, with its real size and the file's mtime as
//! last arrival) or, when empty, removed. A `Recording` entry whose file was already
//! renamed is completed; one whose file is gone is dropped. Only files named like the
//! recorder's own segments are touched. Run it only while nothing records the channel.

use super::error::RecorderError;
use super::index::{validate_channel, SegmentIndex, SegmentInfo, SegmentState};
use super::segment::{segment_path, sync_dir};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::UNIX_EPOCH;

/// What recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// `.part` files closed as segments.
    pub closed: Vec<SegmentInfo>,
    /// Empty `.part` files removed.
    pub removed_empty: u64,
    /// Index entries whose file no longer exists, dropped.
    pub dropped_entries: u64,
}

impl Recovered {
    fn merge(&mut self, o: Recovered) {
        self.closed.extend(o.closed);
        self.removed_empty += o.removed_empty;
        self.dropped_entries += o.dropped_entries;
    }
}

/// The start time in a recorder file name `<digits>.ts.part`.
fn part_start(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".ts.part")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Recovers every channel folder under `dir` (and index entries without a folder).
pub fn recover_all(dir: &Path, index: &SegmentIndex) -> Result<Recovered, RecorderError> {
    let mut out = Recovered::default();
    let mut channels = std::collections::BTreeSet::new();
    if dir.exists() {
        for e in std::fs::read_dir(dir).map_err(RecorderError::io(dir, "list the recording folder"))? {
            let e = e.map_err(RecorderError::io(dir, "list the recording folder"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && validate_channel(&name).is_ok() {
                channels.insert(name);
            }
        }
    }
    channels.extend(index.all()?.into_iter().filter(|s| s.state == SegmentState::Recording).map(|s| s.channel));
    for c in channels {
        out.merge(recover_channel(&dir.join(&c), &c, index)?);
    }
    Ok(out)
}

/// Recovers one channel's folder.
pub fn recover_channel(channel_dir: &Path, channel: &str, index: &SegmentIndex) -> Result<Recovered, RecorderError> {
    let mut out = Recovered::default();
    if channel_dir.exists() {
        let list = std::fs::read_dir(channel_dir).map_err(RecorderError::io(channel_dir, "list the channel's recordings"))?;
        for e in list {
            let e = e.map_err(RecorderError::io(channel_dir, "list the channel's recordings"))?;
            let Some(start) = part_start(&e.file_name().to_string_lossy()) else { continue };
            match close_part(channel_dir, channel, start, index)? {
                Some(info) => out.closed.push(info),
                None => out.removed_empty += 1,
            }
        }
    }
    for s in index.channel(channel)?.into_iter().filter(|s| s.state == SegmentState::Recording) {
        match std::fs::metadata(&s.path) {
            Ok(m) => {
                let info = SegmentInfo {
                    bytes: m.len(),
                    packets: m.len() / 188,
                    last_arrival_unix_ns: mtime_ns(&m).max(s.first_arrival_unix_ns),
                    state: SegmentState::Complete,
                    recovered: true,
                    ..s
                };
                index.put(&info)?;
                out.closed.push(info);
            }
            Err(_) => {
                index.remove(&s.channel, s.start_unix_ms)?;
                out.dropped_entries += 1;
            }
        }
    }
    Ok(out)
}

fn mtime_ns(m: &std::fs::Metadata) -> u64 {
    m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64)
}

/// Closes one `.part`; `None` when it was empty (removed).
fn close_part(channel_dir: &Path, channel: &str, start_unix_ms: u64, index: &SegmentIndex) -> Result<Option<SegmentInfo>, RecorderError> {
    let path = segment_path(channel_dir, start_unix_ms);
    let part = super::segment::part_path(&path);
    let file = std::fs::OpenOptions::new().write(true).open(&part).map_err(RecorderError::io(&part, "open a leftover segment"))?;
    let m = file.metadata().map_err(RecorderError::io(&part, "read a leftover segment's size"))?;
    let whole = m.len() / 188 * 188;
    let entry = index.get(channel, start_unix_ms)?;
    if whole == 0 {
        drop(file);
        std::fs::remove_file(&part).map_err(RecorderError::io(&part, "remove an empty leftover segment"))?;
        if entry.is_some() {
            index.remove(channel, start_unix_ms)?;
        }
        return Ok(None);
    }
    if whole != m.len() {
        file.set_len(whole).map_err(RecorderError::io(&part, "cut a leftover segment to whole packets"))?;
    }
    file.sync_all().map_err(RecorderError::io(&part, "fsync a leftover segment"))?;
    drop(file);
    std::fs::rename(&part, &path).map_err(RecorderError::io(&part, "rename a leftover segment to .ts"))?;
    sync_dir(channel_dir)?;
    let first = start_unix_ms * 1_000_000;
    let base = entry.unwrap_or(SegmentInfo {
        channel: channel.to_string(),
        group: Ipv4Addr::UNSPECIFIED,
        port: 0,
        path: path.clone(),
        start_unix_ms,
        first_arrival_unix_ns: first,
        last_arrival_unix_ns: first,
        bytes: 0,
        packets: 0,
        gaps: 0,
        largest_gap_ns: 0,
        state: SegmentState::Recording,
        recovered: true,
    });
    let info = SegmentInfo {
        path,
        bytes: whole,
        packets: whole / 188,
        last_arrival_unix_ns: mtime_ns(&m).max(base.first_arrival_unix_ns),
        state: SegmentState::Complete,
        recovered: true,
        ..base
    };
    index.put(&info)?;
    Ok(Some(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recorder_part_names_are_recognised() {
        assert_eq!(part_start("1700000000123.ts.part"), Some(1_700_000_000_123));
        for other in ["1700000000123.ts", "x.ts.part", ".ts.part", "12a.ts.part", "notes.part"] {
            assert_eq!(part_start(other), None, "{other}");
        }
    }
}
