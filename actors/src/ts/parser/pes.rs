//! PES packets (ISO/IEC 13818-1 2.4.3.6): header fields and reassembly per PID.

use std::collections::VecDeque;

use super::ParseError;
use crate::ts::packet::{Pid, TsPacket};
use crate::ts::pes::{has_optional_header, read_timestamp as timestamp};
use crate::ts::time::Pts;

/// The fields of a PES header the analyzer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    pub stream_id: u8,
    /// PES_packet_length: bytes after this field; 0 means unbounded (video).
    pub packet_length: u16,
    pub data_alignment: bool,
    pub pts: Option<Pts>,
    pub dts: Option<Pts>,
    /// Bytes from the start code to the first payload byte.
    pub header_len: usize,
}


impl PesHeader {
    /// Reads the header at the start of `b` (the payload of a PUSI packet, or a whole
    /// PES packet). Needs the bytes up to the timestamps, not the stuffing after them.
    pub fn parse(b: &[u8]) -> Result<PesHeader, ParseError> {
        let fixed = super::slice(b, 0, 6, "PES header")?;
        if fixed[..3] != [0, 0, 1] {
            return Err(ParseError::NoPesStartCode);
        }
        let stream_id = fixed[3];
        let packet_length = u16::from_be_bytes([fixed[4], fixed[5]]);
        if !has_optional_header(stream_id) {
            return Ok(PesHeader {
                stream_id,
                packet_length,
                data_alignment: false,
                pts: None,
                dts: None,
                header_len: 6,
            });
        }
        let opt = super::slice(b, 6, 3, "PES header")?;
        if opt[0] & 0xC0 != 0x80 {
            return Err(ParseError::Malformed {
                what: "PES header",
                detail: "marker bits are not '10'",
            });
        }
        let header_len = 9 + opt[2] as usize;
        let (pts, dts) = match opt[1] >> 6 {
            0b10 => (Some(timestamp(super::slice(b, 9, 5, "PES PTS")?)), None),
            0b11 => {
                let both = super::slice(b, 9, 10, "PES PTS/DTS")?;
                (Some(timestamp(&both[..5])), Some(timestamp(&both[5..])))
            }
            0b01 => {
                return Err(ParseError::Malformed {
                    what: "PES header",
                    detail: "PTS_DTS_flags '01' is forbidden",
                })
            }
            _ => (None, None),
        };
        let ts_len = match (pts, dts) {
            (Some(_), Some(_)) => 10,
            (Some(_), None) => 5,
            _ => 0,
        };
        if header_len < 9 + ts_len {
            return Err(ParseError::Malformed {
                what: "PES header",
                detail: "header_data_length too short for PTS/DTS",
            });
        }
        Ok(PesHeader {
            stream_id,
            packet_length,
            data_alignment: opt[0] & 0x04 != 0,
            pts,
            dts,
            header_len,
        })
    }
}

/// One reassembled PES packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PesPacket {
    pub header: PesHeader,
    /// The whole PES packet from its start code (cut at the assembler's limit).
    pub bytes: Vec<u8>,
    /// False when PES_packet_length promised more bytes than arrived, or the packet was
    /// longer than the assembler's limit.
    pub complete: bool,
}

impl PesPacket {
    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(self.header.header_len..).unwrap_or(&[])
    }
}

/// Collects the payloads of one PID from one PUSI packet to the next into whole PES
/// packets. A packet with a PES_packet_length is returned as soon as it is complete;
/// an unbounded one when the next PUSI arrives or on [`PesAssembler::flush`].
#[derive(Debug)]
pub struct PesAssembler {
    pid: Pid,
    buf: Vec<u8>,
    active: bool,
    truncated: bool,
    max_len: usize,
    last_cc: Option<u8>,
    ready: VecDeque<Result<PesPacket, ParseError>>,
}

impl PesAssembler {
    /// Keeps at most `max_len` bytes of each PES packet (the rest is counted as cut).
    pub fn new(pid: Pid, max_len: usize) -> Self {
        PesAssembler {
            pid,
            buf: Vec::new(),
            active: false,
            truncated: false,
            max_len,
            last_cc: None,
            ready: VecDeque::new(),
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The next PES packet, `Ok(None)` when none is ready.
    pub fn next_pes(&mut self) -> Result<Option<PesPacket>, ParseError> {
        self.ready.pop_front().transpose()
    }

    /// Returns the packet in progress (end of input).
    pub fn flush(&mut self) {
        if self.active {
            self.emit();
        }
    }

    pub fn push(&mut self, packet: &TsPacket) {
        if packet.pid() != self.pid || !packet.has_payload() {
            return;
        }
        if packet.transport_error() {
            self.abandon();
            self.last_cc = None;
            return;
        }
        let cc = packet.cc();
        if let Some(last) = self.last_cc {
            if cc == last && !packet.discontinuity_indicator() {
                return; // duplicate
            }
            if cc != (last + 1) & 0x0F && !packet.discontinuity_indicator() {
                self.abandon();
            }
        }
        self.last_cc = Some(cc);
        if packet.pusi() {
            if self.active {
                self.emit();
            }
            self.active = true;
            self.truncated = false;
            self.buf.clear();
        } else if !self.active {
            return;
        }
        let room = self.max_len.saturating_sub(self.buf.len());
        let payload = packet.payload();
        if payload.len() > room {
            self.truncated = true;
        }
        self.buf
            .extend_from_slice(&payload[..payload.len().min(room)]);
        if let Some(total) = declared_total(&self.buf) {
            if self.buf.len() >= total || (self.truncated && self.buf.len() >= self.max_len) {
                self.emit();
            }
        }
    }

    fn abandon(&mut self) {
        if self.active {
            self.active = false;
            self.buf.clear();
            self.ready
                .push_back(Err(ParseError::Discontinuity { what: "PES packet" }));
        }
    }

    fn emit(&mut self) {
        self.active = false;
        let mut bytes = std::mem::take(&mut self.buf);
        let declared = declared_total(&bytes);
        let complete = !self.truncated && declared.is_none_or(|total| bytes.len() >= total);
        if let Some(total) = declared {
            bytes.truncate(total);
        }
        let result = PesHeader::parse(&bytes).map(|header| PesPacket {
            header,
            bytes,
            complete,
        });
        self.ready.push_back(result);
    }
}

/// 6 + PES_packet_length, when the length field is there and non-zero.
fn declared_total(b: &[u8]) -> Option<usize> {
    let l = b.get(4..6)?;
    let len = u16::from_be_bytes([l[0], l[1]]) as usize;
    (len > 0).then_some(6 + len)
}
