//! Reads a channel's recording back as transport packets, from the complete segment
//! covering a given time (or the next one after it) onwards through the following
//! complete segments. Each segment is read from its start, which is a PAT when the
//! stream had one, so what is read decodes on its own. (Used to play a peer's recording
//! when content fails.)

use super::error::RecorderError;
use super::index::{SegmentIndex, SegmentInfo, SegmentState};
use crate::ts::packet::{TsPacket, SYNC_BYTE, TS_PACKET_SIZE};
use std::fs::File;
use std::io::{BufReader, Read};

#[derive(Debug)]
pub struct RecordingReader {
    index: SegmentIndex,
    channel: String,
    segment: SegmentInfo,
    file: Option<BufReader<File>>,
    offset: u64,
}

impl RecordingReader {
    /// Starts at the complete segment whose datagrams arrived around `at_unix_ns` (the
    /// last one starting at or before it, when it lasts until then), else at the first
    /// one starting after it.
    pub fn open(index: &SegmentIndex, channel: &str, at_unix_ns: u64) -> Result<Self, RecorderError> {
        let complete: Vec<SegmentInfo> = index.channel(channel)?.into_iter().filter(|s| s.state == SegmentState::Complete).collect();
        let covering = complete.iter().rev().find(|s| s.first_arrival_unix_ns <= at_unix_ns && s.last_arrival_unix_ns >= at_unix_ns);
        let after = || complete.iter().find(|s| s.first_arrival_unix_ns > at_unix_ns);
        let segment = covering.or_else(after).cloned().ok_or_else(|| RecorderError::NoRecording { channel: channel.to_string(), at_unix_ns })?;
        Ok(RecordingReader { index: index.clone(), channel: channel.to_string(), segment, file: None, offset: 0 })
    }

    /// The segment being read.
    pub fn segment(&self) -> &SegmentInfo {
        &self.segment
    }

    /// The next packet; `Ok(None)` when no further complete segment exists yet (a later
    /// call looks again, so a reader can follow a recording as segments close).
    pub fn next_packet(&mut self) -> Result<Option<TsPacket>, RecorderError> {
        loop {
            if self.file.is_none() && self.offset == 0 {
                match File::open(&self.segment.path) {
                    Ok(f) => self.file = Some(BufReader::with_capacity(64 * 1024, f)),
                    // Deleted by retention meanwhile: go on with the next one.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.offset = u64::MAX,
                    Err(e) => return Err(RecorderError::io(&self.segment.path, "open a recorded segment")(e)),
                }
            }
            if let Some(f) = &mut self.file {
                let mut p = [0u8; TS_PACKET_SIZE];
                match read_full(f, &mut p) {
                    Ok(true) => {
                        if p[0] != SYNC_BYTE {
                            return Err(RecorderError::BadSegment { path: self.segment.path.clone(), offset: self.offset });
                        }
                        self.offset += TS_PACKET_SIZE as u64;
                        return Ok(Some(TsPacket(p)));
                    }
                    Ok(false) => self.file = None,
                    Err(e) => return Err(RecorderError::io(&self.segment.path, "read a recorded segment")(e)),
                }
            }
            // This segment is done: the next complete one, if any yet.
            match self.index.next_complete(&self.channel, self.segment.start_unix_ms)? {
                Some(next) => {
                    self.segment = next;
                    self.offset = 0;
                }
                None => return Ok(None),
            }
        }
    }
}

/// Reads a whole packet; `false` at the end of the file (a trailing partial packet,
/// which a complete segment never has, counts as the end).
fn read_full(f: &mut impl Read, p: &mut [u8; TS_PACKET_SIZE]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < p.len() {
        match f.read(&mut p[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl Iterator for RecordingReader {
    type Item = Result<TsPacket, RecorderError>;

    /// `None` means "nothing more recorded yet" (not fused: see [`Self::next_packet`]).
    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet().transpose()
    }
}
