//! PSI/SI section reassembly from transport packets (ISO/IEC 13818-1 2.4.4).

use std::collections::VecDeque;

use super::ParseError;
use crate::ts::crc::crc32_mpeg2;
use crate::ts::packet::{Pid, TsPacket};

/// Largest section_length of a private section (DVB SI); PSI tables stay under 1021.
pub const MAX_SECTION_LENGTH: u16 = 4093;

/// One complete section: its bytes from table_id through the CRC (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pid: Pid,
    bytes: Vec<u8>,
    crc_valid: Option<bool>,
}

impl Section {
    /// Wraps the bytes of one whole section, checking its length and its CRC.
    pub fn new(pid: Pid, bytes: Vec<u8>) -> Result<Self, ParseError> {
        if bytes.len() < 3 {
            return Err(ParseError::Truncated {
                what: "section header",
                need: 3,
                have: bytes.len(),
            });
        }
        let length = section_length(&bytes);
        if length > MAX_SECTION_LENGTH {
            return Err(ParseError::SectionTooLong(length));
        }
        let total = 3 + length as usize;
        if bytes.len() != total {
            return Err(ParseError::SectionIncomplete {
                have: bytes.len(),
                need: total,
            });
        }
        let has_crc = bytes[1] & 0x80 != 0 || bytes[0] == 0x73; // long form, or a TOT
        let crc_valid = has_crc.then(|| bytes.len() >= 7 && crc32_mpeg2(&bytes) == 0);
        Ok(Section {
            pid,
            bytes,
            crc_valid,
        })
    }

    /// The PID the section arrived on.
    pub fn pid(&self) -> Pid {
        self.pid
    }
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn table_id(&self) -> u8 {
        self.bytes[0]
    }
    /// section_syntax_indicator: the long form with extension, version and CRC.
    pub fn is_long_form(&self) -> bool {
        self.bytes[1] & 0x80 != 0
    }
    /// `Some(true/false)` for sections that carry a CRC_32, `None` for those that don't
    /// (short sections such as the TDT).
    pub fn crc_valid(&self) -> Option<bool> {
        self.crc_valid
    }
    /// False only when a CRC is present and wrong.
    pub fn crc_ok(&self) -> bool {
        self.crc_valid != Some(false)
    }
    fn long_header(&self) -> Option<&[u8]> {
        if self.is_long_form() {
            self.bytes.get(3..8)
        } else {
            None
        }
    }
    /// table_id_extension (transport_stream_id, program_number, service_id...).
    pub fn table_id_extension(&self) -> Option<u16> {
        self.long_header().map(|h| u16::from_be_bytes([h[0], h[1]]))
    }
    pub fn version(&self) -> Option<u8> {
        self.long_header().map(|h| (h[2] >> 1) & 0x1F)
    }
    /// current_next_indicator; short sections are always current.
    pub fn is_current(&self) -> bool {
        self.long_header().is_none_or(|h| h[2] & 0x01 != 0)
    }
    pub fn section_number(&self) -> Option<u8> {
        self.long_header().map(|h| h[3])
    }
    pub fn last_section_number(&self) -> Option<u8> {
        self.long_header().map(|h| h[4])
    }
    /// The table body: after last_section_number and before the CRC for long sections,
    /// after section_length for short ones.
    pub fn body(&self) -> &[u8] {
        if self.is_long_form() {
            let end = self.bytes.len().saturating_sub(4).max(8);
            self.bytes.get(8..end).unwrap_or(&[])
        } else {
            let end = if self.crc_valid.is_some() {
                self.bytes.len().saturating_sub(4).max(3)
            } else {
                self.bytes.len()
            };
            &self.bytes[3..end]
        }
    }
}

fn section_length(header: &[u8]) -> u16 {
    (((header[1] & 0x0F) as u16) << 8) | header[2] as u16
}

/// Reassembles the sections carried on one PID: pointer_field handling, sections
/// spanning packets, several sections in one packet, 0xFF stuffing, duplicate packets
/// (ignored) and continuity loss (the partial section is dropped and reported).
///
/// Push packets with [`SectionAssembler::push`], then call
/// [`SectionAssembler::next_section`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct SectionAssembler {
    pid: Pid,
    partial: Vec<u8>,
    last_cc: Option<u8>,
    ready: VecDeque<Result<Section, ParseError>>,
}

impl SectionAssembler {
    pub fn new(pid: Pid) -> Self {
        SectionAssembler {
            pid,
            partial: Vec::new(),
            last_cc: None,
            ready: VecDeque::new(),
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Drops any partial section and the continuity state.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.last_cc = None;
    }

    /// The next complete section (with its CRC verdict), `Ok(None)` when none is ready.
    pub fn next_section(&mut self) -> Result<Option<Section>, ParseError> {
        self.ready.pop_front().transpose()
    }

    /// Feeds one packet of this assembler's PID (packets of other PIDs are ignored).
    pub fn push(&mut self, packet: &TsPacket) {
        if packet.pid() != self.pid || !packet.has_payload() {
            return;
        }
        if packet.transport_error() {
            self.drop_partial("section (transport error)");
            self.last_cc = None;
            return;
        }
        let cc = packet.cc();
        if let Some(last) = self.last_cc {
            if cc == last && !packet.discontinuity_indicator() {
                return; // a duplicate packet: same payload again
            }
            if cc != (last + 1) & 0x0F && !packet.discontinuity_indicator() {
                self.drop_partial("section");
            }
        }
        self.last_cc = Some(cc);
        let payload = packet.payload();
        if !packet.pusi() {
            self.feed(payload, false);
            return;
        }
        let Some((&pointer, rest)) = payload.split_first() else {
            self.drop_partial("section");
            return;
        };
        let pointer_len = pointer as usize;
        if pointer_len > rest.len() {
            self.partial.clear();
            self.ready.push_back(Err(ParseError::BadPointer {
                pointer,
                len: rest.len(),
            }));
            return;
        }
        let (tail, new) = rest.split_at(pointer_len);
        if !self.partial.is_empty() {
            self.feed(tail, false);
            if !self.partial.is_empty() {
                let have = self.partial.len();
                let need = if have >= 3 {
                    3 + section_length(&self.partial) as usize
                } else {
                    3
                };
                self.partial.clear();
                self.ready
                    .push_back(Err(ParseError::SectionIncomplete { have, need }));
            }
        }
        self.feed(new, true);
    }

    fn drop_partial(&mut self, what: &'static str) {
        if !self.partial.is_empty() {
            self.partial.clear();
            self.ready
                .push_back(Err(ParseError::Discontinuity { what }));
        }
    }

    /// Appends `data` to the section in progress; when `may_start`, new sections may
    /// begin in `data` (only after a pointer_field) until stuffing or the end.
    fn feed(&mut self, mut data: &[u8], may_start: bool) {
        loop {
            if self.partial.is_empty() && (!may_start || data.first().is_none_or(|&b| b == 0xFF)) {
                return;
            }
            let want = if self.partial.len() < 3 {
                3 - self.partial.len()
            } else {
                3 + section_length(&self.partial) as usize - self.partial.len()
            };
            let take = want.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < 3 {
                return;
            }
            let length = section_length(&self.partial);
            if length > MAX_SECTION_LENGTH {
                self.partial.clear();
                self.ready
                    .push_back(Err(ParseError::SectionTooLong(length)));
                return; // the rest of this packet cannot be trusted
            }
            if self.partial.len() == 3 + length as usize {
                let bytes = std::mem::take(&mut self.partial);
                self.ready.push_back(Section::new(self.pid, bytes));
            } else if data.is_empty() {
                return;
            }
        }
    }
}
