//! One segment file. Opened as `<dir>/<channel>/<start_unix_ms>.ts.part` (indexed as
//! `Recording` first, so a crash leaves an entry recovery can finish), written through a
//! buffer, and on close flushed, fsynced, renamed to `.ts`, the folder fsynced, then
//! indexed as `Complete`. Nothing half-written is ever listed as complete.

use super::error::RecorderError;
use super::index::{SegmentIndex, SegmentInfo, SegmentState};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

const BUFFER: usize = 256 * 1024;

/// `<channel_dir>/<start_unix_ms>.ts`
pub fn segment_path(channel_dir: &Path, start_unix_ms: u64) -> PathBuf {
    channel_dir.join(format!("{start_unix_ms}.ts"))
}

/// The name a segment has while it is written: `<segment>.part`.
pub fn part_path(segment: &Path) -> PathBuf {
    let mut s = segment.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Fsyncs a folder, so a rename in it survives a crash.
pub(super) fn sync_dir(dir: &Path) -> Result<(), RecorderError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(RecorderError::io(dir, "fsync the folder"))
}

#[derive(Debug)]
pub struct SegmentWriter {
    part: PathBuf,
    file: BufWriter<File>,
    info: SegmentInfo,
}

impl SegmentWriter {
    /// Opens a new segment whose first datagram arrived at `arrival_unix_ns` (a name
    /// already taken moves on by a millisecond). The caller checked the disk floor.
    pub fn open(
        index: &SegmentIndex,
        channel_dir: &Path,
        channel: &str,
        group: Ipv4Addr,
        port: u16,
        arrival_unix_ns: u64,
    ) -> Result<Self, RecorderError> {
        let mut start_unix_ms = arrival_unix_ns / 1_000_000;
        let path = loop {
            let path = segment_path(channel_dir, start_unix_ms);
            if !path.exists() && !part_path(&path).exists() && index.get(channel, start_unix_ms)?.is_none() {
                break path;
            }
            start_unix_ms += 1;
        };
        let info = SegmentInfo {
            channel: channel.to_string(),
            group,
            port,
            path: path.clone(),
            start_unix_ms,
            first_arrival_unix_ns: arrival_unix_ns,
            last_arrival_unix_ns: arrival_unix_ns,
            bytes: 0,
            packets: 0,
            gaps: 0,
            largest_gap_ns: 0,
            state: SegmentState::Recording,
            recovered: false,
        };
        index.put(&info)?;
        let part = part_path(&path);
        let file = File::create_new(&part).map_err(RecorderError::io(&part, "create the segment"))?;
        Ok(SegmentWriter { part, file: BufWriter::with_capacity(BUFFER, file), info })
    }

    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// Appends whole packets that arrived at `arrival_unix_ns`.
    pub fn write(&mut self, packets: &[u8], arrival_unix_ns: u64) -> Result<(), RecorderError> {
        debug_assert_eq!(packets.len() % 188, 0);
        self.file.write_all(packets).map_err(RecorderError::io(&self.part, "write the segment"))?;
        self.info.bytes += packets.len() as u64;
        self.info.packets += (packets.len() / 188) as u64;
        self.info.last_arrival_unix_ns = arrival_unix_ns;
        Ok(())
    }

    /// An arrival gap ended with the next datagram written here.
    pub fn note_gap(&mut self, gap_ns: u64) {
        self.info.gaps += 1;
        self.info.largest_gap_ns = self.info.largest_gap_ns.max(gap_ns);
    }

    /// Flushes, fsyncs, renames to `.ts`, fsyncs the folder and indexes it `Complete`.
    pub fn close(self, index: &SegmentIndex) -> Result<SegmentInfo, RecorderError> {
        let SegmentWriter { part, file, mut info } = self;
        let file = file.into_inner().map_err(|e| RecorderError::Io { path: part.clone(), what: "flush the segment", source: e.into_error() })?;
        file.sync_all().map_err(RecorderError::io(&part, "fsync the segment"))?;
        drop(file);
        std::fs::rename(&part, &info.path).map_err(RecorderError::io(&part, "rename the closed segment to .ts"))?;
        if let Some(dir) = info.path.parent() {
            sync_dir(dir)?;
        }
        info.state = SegmentState::Complete;
        index.put(&info)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_part_until_closed_then_complete_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let index = SegmentIndex::open(&dir.path().join("index.sled")).unwrap();
        let chan = dir.path().join("news");
        std::fs::create_dir(&chan).unwrap();
        let group = Ipv4Addr::new(239, 255, 1, 1);
        let mut w = SegmentWriter::open(&index, &chan, "news", group, 5000, 1_700_000_000_123_456_789).unwrap();
        let path = w.info().path.clone();
        assert_eq!(path, chan.join("1700000000123.ts"));
        assert!(part_path(&path).exists() && !path.exists());
        assert_eq!(index.get("news", 1_700_000_000_123).unwrap().unwrap().state, SegmentState::Recording);
        let mut p = [0xFFu8; 188];
        p[0] = 0x47;
        w.write(&p.repeat(7), 1_700_000_000_200_000_000).unwrap();
        w.note_gap(300_000_000);
        w.write(&p.repeat(3), 1_700_000_000_500_000_000).unwrap();
        // A second segment in the same millisecond gets the next name.
        let other = SegmentWriter::open(&index, &chan, "news", group, 5000, 1_700_000_000_123_999_999).unwrap();
        assert_eq!(other.info().start_unix_ms, 1_700_000_000_124);
        let info = w.close(&index).unwrap();
        assert!(path.exists() && !part_path(&path).exists());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1880);
        assert_eq!((info.bytes, info.packets, info.gaps, info.largest_gap_ns), (1880, 10, 1, 300_000_000));
        assert_eq!(info.last_arrival_unix_ns, 1_700_000_000_500_000_000);
        assert_eq!(index.get("news", 1_700_000_000_123).unwrap().unwrap(), info);
        assert_eq!(info.state, SegmentState::Complete);
    }
}
