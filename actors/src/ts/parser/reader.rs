//! Cutting a byte stream into 188-byte transport packets, with sync acquisition and
//! recovery as TR 101 290 1.1/1.2 describe them.

use super::ParseError;
use crate::ts::packet::{TsPacket, SYNC_BYTE, TS_PACKET_SIZE};

/// Sync is acquired after this many sync bytes at 188-byte spacing (TR 101 290 1.1).
const ACQUIRE_SYNC_BYTES: usize = 5;
/// Consumed bytes are dropped from the front of the buffer once there are this many.
const COMPACT_AT: usize = 64 * 1024;

/// Counters a reader keeps over its whole input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReaderStats {
    /// Bytes pushed so far.
    pub bytes_in: u64,
    /// Whole packets returned.
    pub packets: u64,
    /// Isolated corrupted sync bytes while in sync (TR 101 290 1.2); each dropped a packet.
    pub sync_byte_errors: u64,
    /// Losses of sync: two or more consecutive corrupted sync bytes (TR 101 290 1.1).
    pub sync_losses: u64,
    /// Bytes thrown away while hunting for sync, before the first packet, or at the end.
    pub bytes_skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncState {
    /// Looking for the first packet of the input.
    Initial,
    /// In sync: a packet starts every 188 bytes.
    Locked,
    /// Sync was lost at stream offset `lost_at`; hunting for it again.
    Hunting { lost_at: u64 },
}

/// Incremental transport packet reader: push arbitrary chunks (UDP datagrams, file
/// reads), pull packets with [`PacketReader::next_packet`].
///
/// Sync handling: the reader starts hunting and locks once it sees five sync bytes at
/// 188-byte spacing (fewer at the end of input, after [`PacketReader::finish`]). While
/// locked, a single corrupted sync byte drops that packet and is reported as
/// [`ParseError::SyncByte`]; two in a row mean sync is lost, the reader hunts again from
/// the first corrupted byte and reports [`ParseError::SyncLost`] with the number of
/// skipped bytes once it has locked again.
#[derive(Debug)]
pub struct PacketReader {
    buf: Vec<u8>,
    /// Index in `buf` of the next unread byte.
    start: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    state: SyncState,
    finished: bool,
    trailing_reported: bool,
    last_packet_offset: u64,
    stats: ReaderStats,
}

impl Default for PacketReader {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketReader {
    pub fn new() -> Self {
        PacketReader {
            buf: Vec::with_capacity(COMPACT_AT),
            start: 0,
            base: 0,
            state: SyncState::Initial,
            finished: false,
            trailing_reported: false,
            last_packet_offset: 0,
            stats: ReaderStats::default(),
        }
    }

    /// Appends bytes. Pushing after [`PacketReader::finish`] resumes normal operation.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start >= COMPACT_AT && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.stats.bytes_in += bytes.len() as u64;
        self.finished = false;
        self.trailing_reported = false;
    }

    /// Marks the end of input: the remaining bytes are read without waiting for the
    /// look-ahead that sync decisions normally need.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// Stream offset of the first byte of the packet last returned.
    pub fn last_packet_offset(&self) -> u64 {
        self.last_packet_offset
    }

    /// Stream offset of the next byte not yet consumed.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    fn available(&self) -> usize {
        self.buf.len() - self.start
    }

    fn byte_at(&self, rel: usize) -> Option<u8> {
        self.buf.get(self.start + rel).copied()
    }

    /// The next packet; `Ok(None)` when more input is needed; `Err` for a sync problem
    /// that has already been dealt with (call again).
    pub fn next_packet(&mut self) -> Result<Option<TsPacket>, ParseError> {
        match self.state {
            SyncState::Locked => self.next_locked(),
            SyncState::Initial | SyncState::Hunting { .. } => match self.hunt()? {
                true => self.next_locked(),
                false => Ok(None),
            },
        }
    }

    fn next_locked(&mut self) -> Result<Option<TsPacket>, ParseError> {
        let avail = self.available();
        if avail < TS_PACKET_SIZE {
            return self.trailing(avail);
        }
        let offset = self.position();
        let first = self.byte_at(0).unwrap_or(0);
        if first == SYNC_BYTE {
            let mut arr = [0u8; TS_PACKET_SIZE];
            arr.copy_from_slice(&self.buf[self.start..self.start + TS_PACKET_SIZE]);
            self.start += TS_PACKET_SIZE;
            self.last_packet_offset = offset;
            self.stats.packets += 1;
            return Ok(Some(TsPacket(arr)));
        }
        // A corrupted sync byte: is the next one corrupted too?
        match self.byte_at(TS_PACKET_SIZE) {
            None if !self.finished => Ok(None),
            Some(b) if b != SYNC_BYTE => {
                self.stats.sync_losses += 1;
                self.state = SyncState::Hunting { lost_at: offset };
                match self.hunt()? {
                    true => self.next_locked(),
                    false => Ok(None),
                }
            }
            _ => {
                self.start += TS_PACKET_SIZE;
                self.stats.sync_byte_errors += 1;
                self.stats.bytes_skipped += TS_PACKET_SIZE as u64;
                Err(ParseError::SyncByte {
                    offset,
                    found: first,
                })
            }
        }
    }

    fn trailing(&mut self, avail: usize) -> Result<Option<TsPacket>, ParseError> {
        if !self.finished || avail == 0 || self.trailing_reported {
            return Ok(None);
        }
        self.trailing_reported = true;
        let offset = self.position();
        self.start = self.buf.len();
        self.stats.bytes_skipped += avail as u64;
        Err(ParseError::TrailingBytes {
            offset,
            len: avail as u64,
        })
    }

    /// Looks for sync. `Ok(true)`: locked at `start`. `Ok(false)`: need more input.
    /// `Err`: locked, with bytes skipped to report.
    fn hunt(&mut self) -> Result<bool, ParseError> {
        let hunt_from = self.position();
        let mut rel = 0usize;
        let avail = self.available();
        let found = loop {
            let Some(pos) = self.buf[self.start + rel..]
                .iter()
                .position(|&b| b == SYNC_BYTE)
            else {
                rel = avail;
                break None;
            };
            rel += pos;
            match self.confirm(rel) {
                Some(true) => break Some(rel),
                Some(false) => rel += 1,
                None => break None, // wait for more bytes at `rel`
            }
        };
        let skipped = rel as u64;
        if let Some(rel) = found {
            self.start += rel;
            self.stats.bytes_skipped += skipped;
            let prev = std::mem::replace(&mut self.state, SyncState::Locked);
            return match prev {
                SyncState::Hunting { lost_at } => Err(ParseError::SyncLost {
                    offset: lost_at,
                    skipped: self.position() - lost_at,
                }),
                _ if skipped > 0 => Err(ParseError::LeadingGarbage {
                    offset: hunt_from + skipped,
                    skipped,
                }),
                _ => Ok(true),
            };
        }
        // Not found (yet): drop what cannot start a packet, keep the rest.
        self.start += rel;
        self.stats.bytes_skipped += skipped;
        if self.finished && self.available() == 0 {
            if let SyncState::Hunting { lost_at } = self.state {
                // Input ended while hunting: report the loss once, with everything skipped.
                self.state = SyncState::Initial;
                let total = self.position() - lost_at;
                if total > 0 {
                    return Err(ParseError::SyncLost {
                        offset: lost_at,
                        skipped: total,
                    });
                }
            }
        }
        Ok(false)
    }

    /// Whether a packet starting at relative offset `rel` is confirmed by the following
    /// sync bytes: `None` when more input is needed to decide.
    fn confirm(&self, rel: usize) -> Option<bool> {
        let mut seen = 0usize;
        for k in 0..ACQUIRE_SYNC_BYTES {
            match self.byte_at(rel + k * TS_PACKET_SIZE) {
                Some(SYNC_BYTE) => seen += 1,
                Some(_) => return Some(false),
                None => break,
            }
        }
        if seen == ACQUIRE_SYNC_BYTES {
            return Some(true);
        }
        // At the end of input, accept fewer confirmations if one whole packet is there.
        if self.finished {
            Some(self.available() >= rel + TS_PACKET_SIZE)
        } else {
            None
        }
    }
}
