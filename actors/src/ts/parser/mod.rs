//! Parse side of the transport stream: bytes in, packets, sections, tables, PES headers
//! and ID3 tags out.
//!
//! Every parser here is incremental: feed it with `push` and pull results with a
//! `next_*` method returning `Result<Option<T>, ParseError>`. `Ok(None)` means "need more
//! data"; an `Err` reports one broken unit (a corrupted sync byte, a section with a bad
//! length, ...) and the parser has already skipped it, so callers simply call again.
//! Nothing here panics on hostile input.
//!
//! This module deliberately shares no code with the build side (`psi`, `si`, `pes`,
//! `id3`) so that the analyzer never trusts the writer's own code paths.

mod id3;
mod pes;
mod reader;
mod section;
mod tables;
mod text;

#[cfg(test)]
pub(crate) mod testkit;

pub use id3::Id3Tag;
pub use pes::{PesAssembler, PesHeader, PesPacket};
pub use reader::{PacketReader, ReaderStats};
pub use section::{Section, SectionAssembler, MAX_SECTION_LENGTH};
pub use tables::{Descriptor, Eit, EitEvent, Pat, Pmt, PmtStream, Sdt, SdtService};
pub use text::{bcd_duration_secs, decode_dvb_text, mjd_bcd_to_unix};

/// Everything the parse side can complain about. All variants are recoverable: the
/// parser that returned one has skipped the offending bytes and can be called again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// One corrupted sync byte while in sync (TR 101 290 1.2); the packet was dropped.
    #[error("sync byte 0x{found:02X} instead of 0x47 at byte {offset}; packet dropped")]
    SyncByte { offset: u64, found: u8 },
    /// Two or more consecutive corrupted sync bytes (TR 101 290 1.1). Reported once sync
    /// is regained (or the input ends), with the number of bytes thrown away.
    #[error("sync lost at byte {offset}; {skipped} bytes skipped before sync was regained")]
    SyncLost { offset: u64, skipped: u64 },
    /// Bytes before the first packet of the input that were not part of any packet.
    #[error("{skipped} bytes skipped before the first packet at byte {offset}")]
    LeadingGarbage { offset: u64, skipped: u64 },
    /// The input ended in the middle of a packet.
    #[error("{len} trailing bytes at byte {offset} do not make a whole packet")]
    TrailingBytes { offset: u64, len: u64 },
    #[error("{what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("section_length {0} exceeds the maximum of 4093")]
    SectionTooLong(u16),
    #[error("section cut off after {have} of {need} bytes")]
    SectionIncomplete { have: usize, need: usize },
    #[error("pointer_field {pointer} points past the {len} payload bytes")]
    BadPointer { pointer: u8, len: usize },
    #[error("continuity lost on a {what}; the partial data was dropped")]
    Discontinuity { what: &'static str },
    #[error("table_id 0x{found:02X} is not a {expected}")]
    WrongTable { expected: &'static str, found: u8 },
    #[error("malformed {what}: {detail}")]
    Malformed {
        what: &'static str,
        detail: &'static str,
    },
    #[error("no PES start code (00 00 01)")]
    NoPesStartCode,
    #[error("not an ID3v2 tag")]
    NotId3,
    #[error("ID3v2.{0} is not supported (only 2.3 and 2.4)")]
    UnsupportedId3Version(u8),
}

/// Big-endian u16 at `at`, or a `Truncated` error naming `what`.
pub(crate) fn be_u16(b: &[u8], at: usize, what: &'static str) -> Result<u16, ParseError> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(ParseError::Truncated {
            what,
            need: at + 2,
            have: b.len(),
        }),
    }
}

/// `b[at..at + len]`, or a `Truncated` error naming `what`.
pub(crate) fn slice<'a>(
    b: &'a [u8],
    at: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], ParseError> {
    b.get(at..at.saturating_add(len))
        .ok_or(ParseError::Truncated {
            what,
            need: at.saturating_add(len),
            have: b.len(),
        })
}

/// `b[at..]`, or a `Truncated` error naming `what`.
pub(crate) fn tail<'a>(b: &'a [u8], at: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
    b.get(at..).ok_or(ParseError::Truncated {
        what,
        need: at,
        have: b.len(),
    })
}

#[cfg(test)]
mod tests;
