//! The 188-byte transport stream packet: header fields, adaptation field, PCR, and the
//! packetizers that cut sections and PES packets into transport packets.

use super::time::Pcr;
use std::fmt;

pub const TS_PACKET_SIZE: usize = 188;
pub const SYNC_BYTE: u8 = 0x47;

/// A 13-bit packet identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(u16);

pub const PAT_PID: Pid = Pid(0x0000);
pub const CAT_PID: Pid = Pid(0x0001);
pub const NIT_PID: Pid = Pid(0x0010);
pub const SDT_PID: Pid = Pid(0x0011);
pub const EIT_PID: Pid = Pid(0x0012);
pub const TDT_PID: Pid = Pid(0x0014);
pub const NULL_PID: Pid = Pid(0x1FFF);

impl Pid {
    /// Masks to 13 bits.
    pub const fn new(v: u16) -> Self {
        Pid(v & 0x1FFF)
    }
    /// `None` when `v` does not fit in 13 bits.
    pub fn checked(v: u16) -> Option<Self> {
        (v <= 0x1FFF).then_some(Pid(v))
    }
    pub const fn value(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.0)
    }
}
impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X}", self.0)
    }
}

/// One transport packet, owned. Accessors read the header in place; setters keep the
/// packet well formed.
#[derive(Clone, PartialEq, Eq)]
pub struct TsPacket(pub [u8; TS_PACKET_SIZE]);

impl fmt::Debug for TsPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsPacket")
            .field("pid", &self.pid())
            .field("pusi", &self.pusi())
            .field("cc", &self.cc())
            .field("afc", &self.adaptation_field_control())
            .field("pcr", &self.pcr())
            .finish()
    }
}

/// Why bytes are not a transport packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("packet is {0} bytes, a transport packet is 188")]
    WrongLength(usize),
    #[error("sync byte is 0x{0:02X}, expected 0x47")]
    LostSync(u8),
    #[error("adaptation field length {0} does not fit in the packet")]
    BadAdaptationLength(u8),
}

impl TsPacket {
    /// Parses and sanity-checks one packet from exactly 188 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Self, PacketError> {
        let arr: [u8; TS_PACKET_SIZE] =
            b.try_into().map_err(|_| PacketError::WrongLength(b.len()))?;
        let p = TsPacket(arr);
        p.validate()?;
        Ok(p)
    }

    /// Checks the sync byte and adaptation field length.
    pub fn validate(&self) -> Result<(), PacketError> {
        if self.0[0] != SYNC_BYTE {
            return Err(PacketError::LostSync(self.0[0]));
        }
        if self.has_adaptation() {
            let len = self.0[4];
            let max = if self.has_payload() { 182 } else { 183 };
            if len > max {
                return Err(PacketError::BadAdaptationLength(len));
            }
        }
        Ok(())
    }

    /// A null packet (PID 0x1FFF, payload of 0xFF).
    pub fn null() -> Self {
        let mut b = [0xFFu8; TS_PACKET_SIZE];
        b[0] = SYNC_BYTE;
        b[1] = 0x1F;
        b[2] = 0xFF;
        b[3] = 0x10;
        TsPacket(b)
    }

    /// A packet that carries only an adaptation field with a PCR (no payload, so the
    /// continuity counter does not advance; `cc` is repeated as the standard asks).
    pub fn pcr_only(pid: Pid, pcr: Pcr, cc: u8, discontinuity: bool) -> Self {
        let mut b = [0xFFu8; TS_PACKET_SIZE];
        b[0] = SYNC_BYTE;
        b[1] = (pid.0 >> 8) as u8 & 0x1F;
        b[2] = pid.0 as u8;
        b[3] = 0x20 | (cc & 0x0F);
        b[4] = 183;
        b[5] = 0x10 | if discontinuity { 0x80 } else { 0 };
        let mut p = TsPacket(b);
        p.write_pcr_field(pcr);
        p
    }

    pub fn pid(&self) -> Pid {
        Pid(((self.0[1] as u16 & 0x1F) << 8) | self.0[2] as u16)
    }
    pub fn set_pid(&mut self, pid: Pid) {
        self.0[1] = (self.0[1] & 0xE0) | ((pid.0 >> 8) as u8 & 0x1F);
        self.0[2] = pid.0 as u8;
    }
    pub fn transport_error(&self) -> bool {
        self.0[1] & 0x80 != 0
    }
    /// payload_unit_start_indicator.
    pub fn pusi(&self) -> bool {
        self.0[1] & 0x40 != 0
    }
    pub fn scrambling(&self) -> u8 {
        self.0[3] >> 6
    }
    pub fn adaptation_field_control(&self) -> u8 {
        (self.0[3] >> 4) & 0x03
    }
    pub fn has_adaptation(&self) -> bool {
        self.0[3] & 0x20 != 0
    }
    pub fn has_payload(&self) -> bool {
        self.0[3] & 0x10 != 0
    }
    pub fn cc(&self) -> u8 {
        self.0[3] & 0x0F
    }
    pub fn set_cc(&mut self, cc: u8) {
        self.0[3] = (self.0[3] & 0xF0) | (cc & 0x0F);
    }
    pub fn is_null(&self) -> bool {
        self.pid() == NULL_PID
    }

    /// The adaptation field body (after its length byte), empty when absent.
    pub fn adaptation(&self) -> &[u8] {
        if !self.has_adaptation() {
            return &[];
        }
        let len = (self.0[4] as usize).min(183);
        &self.0[5..5 + len]
    }

    pub fn discontinuity_indicator(&self) -> bool {
        self.adaptation().first().is_some_and(|f| f & 0x80 != 0)
    }
    pub fn random_access_indicator(&self) -> bool {
        self.adaptation().first().is_some_and(|f| f & 0x40 != 0)
    }

    /// Sets the discontinuity indicator when an adaptation field with a flags byte exists.
    /// Returns whether it could be set.
    pub fn set_discontinuity_indicator(&mut self) -> bool {
        if self.has_adaptation() && self.0[4] >= 1 {
            self.0[5] |= 0x80;
            true
        } else {
            false
        }
    }

    /// The PCR carried in the adaptation field, if any.
    pub fn pcr(&self) -> Option<Pcr> {
        let af = self.adaptation();
        if af.len() < 7 || af[0] & 0x10 == 0 {
            return None;
        }
        let b = &af[1..7];
        let base = ((b[0] as u64) << 25)
            | ((b[1] as u64) << 17)
            | ((b[2] as u64) << 9)
            | ((b[3] as u64) << 1)
            | ((b[4] as u64) >> 7);
        let ext = (((b[4] & 0x01) as u16) << 8) | b[5] as u16;
        Some(Pcr::from_parts(base, ext))
    }

    /// Overwrites an existing PCR field. Returns false when the packet carries none.
    pub fn set_pcr(&mut self, pcr: Pcr) -> bool {
        if self.pcr().is_none() {
            return false;
        }
        self.write_pcr_field(pcr);
        true
    }

    /// Removes the PCR from the adaptation field (clears PCR_flag, moves any later
    /// optional fields up, stuffs the freed bytes with 0xFF). Returns whether there was
    /// one. The packet's length and payload are unchanged.
    pub fn strip_pcr(&mut self) -> bool {
        if self.pcr().is_none() {
            return false;
        }
        let len = self.0[4] as usize;
        // Adaptation field: [length][flags][PCR 6 bytes][rest...]
        let end = 5 + len;
        self.0[5] &= !0x10;
        self.0.copy_within(12..end, 6);
        self.0[end - 6..end].fill(0xFF);
        true
    }

    /// Writes `data` as the adaptation field's transport private data, in a packet that
    /// carries only an adaptation field with a PCR and stuffing (as [`TsPacket::pcr_only`]
    /// makes). Returns false, changing nothing, for any other packet or when `data` does
    /// not fit.
    pub fn set_private_data(&mut self, data: &[u8]) -> bool {
        let only_pcr = self.adaptation_field_control() == 0b10 && self.0[4] == 183 && self.0[5] & 0x1F == 0x10;
        if !only_pcr || data.len() > 170 {
            return false;
        }
        self.0[5] |= 0x02;
        self.0[12] = data.len() as u8;
        self.0[13..13 + data.len()].copy_from_slice(data);
        true
    }

    /// The adaptation field's transport private data, if any.
    pub fn private_data(&self) -> Option<&[u8]> {
        let af = self.adaptation();
        let flags = *af.first()?;
        if flags & 0x02 == 0 {
            return None;
        }
        let mut at = 1;
        if flags & 0x10 != 0 {
            at += 6;
        }
        if flags & 0x08 != 0 {
            at += 6;
        }
        if flags & 0x04 != 0 {
            at += 1;
        }
        let len = *af.get(at)? as usize;
        af.get(at + 1..at + 1 + len)
    }

    fn write_pcr_field(&mut self, pcr: Pcr) {
        let base = pcr.base();
        let ext = pcr.ext();
        let b = &mut self.0[6..12];
        b[0] = (base >> 25) as u8;
        b[1] = (base >> 17) as u8;
        b[2] = (base >> 9) as u8;
        b[3] = (base >> 1) as u8;
        b[4] = ((base as u8 & 1) << 7) | 0x7E | ((ext >> 8) as u8 & 1);
        b[5] = ext as u8;
    }

    /// Offset of the payload within the packet (188 when there is none).
    pub fn payload_offset(&self) -> usize {
        if !self.has_payload() {
            return TS_PACKET_SIZE;
        }
        if self.has_adaptation() {
            (5 + self.0[4] as usize).min(TS_PACKET_SIZE)
        } else {
            4
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.0[self.payload_offset()..]
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let o = self.payload_offset();
        &mut self.0[o..]
    }
    pub fn as_bytes(&self) -> &[u8; TS_PACKET_SIZE] {
        &self.0
    }
}

/// Builds one packet with `payload` (at most 184 bytes); shorter payloads are padded
/// with adaptation-field stuffing so the payload ends the packet, as PES needs.
fn packet_with_payload(pid: Pid, pusi: bool, cc: u8, payload: &[u8], pad_with_af: bool) -> TsPacket {
    debug_assert!(payload.len() <= 184);
    let mut b = [0xFFu8; TS_PACKET_SIZE];
    b[0] = SYNC_BYTE;
    b[1] = (if pusi { 0x40 } else { 0 }) | ((pid.0 >> 8) as u8 & 0x1F);
    b[2] = pid.0 as u8;
    let room = 184 - payload.len();
    if room > 0 && pad_with_af {
        b[3] = 0x30 | (cc & 0x0F);
        let af_len = room - 1;
        b[4] = af_len as u8;
        if af_len > 0 {
            b[5] = 0x00; // flags; the rest is 0xFF stuffing
        }
        b[4 + room..].copy_from_slice(payload);
    } else {
        b[3] = 0x10 | (cc & 0x0F);
        b[4..4 + payload.len()].copy_from_slice(payload);
        // Sections are followed by 0xFF stuffing, already there.
    }
    TsPacket(b)
}

/// Cuts one PSI/SI section into packets on `pid`, with a pointer field of 0 in the first
/// packet and 0xFF stuffing after the section. `cc` is advanced per packet.
pub fn packetize_section(pid: Pid, section: &[u8], cc: &mut u8) -> Vec<TsPacket> {
    let mut out = Vec::with_capacity(section.len() / 183 + 1);
    let mut first = Vec::with_capacity(184);
    first.push(0u8); // pointer_field
    let n = section.len().min(183);
    first.extend_from_slice(&section[..n]);
    out.push(packet_with_payload(pid, true, *cc, &first, false));
    *cc = (*cc + 1) & 0x0F;
    for chunk in section[n..].chunks(184) {
        out.push(packet_with_payload(pid, false, *cc, chunk, false));
        *cc = (*cc + 1) & 0x0F;
    }
    out
}

/// Cuts one PES packet into transport packets on `pid`; the last packet is padded with
/// adaptation-field stuffing. `cc` is advanced per packet.
pub fn packetize_pes(pid: Pid, pes: &[u8], cc: &mut u8) -> Vec<TsPacket> {
    let mut out = Vec::with_capacity(pes.len() / 184 + 1);
    for (i, chunk) in pes.chunks(184).enumerate() {
        out.push(packet_with_payload(pid, i == 0, *cc, chunk, true));
        *cc = (*cc + 1) & 0x0F;
    }
    out
}

/// Cuts one PES packet into exactly `n` transport packets (balanced payload sizes, padded
/// with adaptation stuffing), so a PID's packet count per emission is fixed. `None` when
/// the PES does not fit in `n` packets or is shorter than `n` bytes.
pub fn packetize_pes_exact(pid: Pid, pes: &[u8], n: usize, cc: &mut u8) -> Option<Vec<TsPacket>> {
    if n == 0 || pes.len() < n || pes.len() > 184 * n {
        return None;
    }
    let (base, rem) = (pes.len() / n, pes.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for i in 0..n {
        let size = base + usize::from(i < rem);
        out.push(packet_with_payload(pid, i == 0, *cc, &pes[at..at + size], true));
        *cc = (*cc + 1) & 0x0F;
        at += size;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_packet_fields() {
        let p = TsPacket::null();
        assert_eq!(p.pid(), NULL_PID);
        assert!(p.is_null());
        assert!(p.has_payload());
        assert!(!p.has_adaptation());
        p.validate().unwrap();
    }

    #[test]
    fn private_data_only_in_pcr_only_packets_and_keeps_the_pcr() {
        let pcr = Pcr::new(987_654_321);
        let mut p = TsPacket::pcr_only(Pid::new(0x1FF), pcr, 3, false);
        assert_eq!(p.private_data(), None);
        assert!(p.set_private_data(b"HDND-epoch"));
        assert_eq!(p.private_data(), Some(&b"HDND-epoch"[..]));
        assert_eq!(p.pcr(), Some(pcr));
        assert_eq!(p.cc(), 3);
        p.validate().unwrap();
        assert!(!p.set_private_data(&[0u8; 171]), "too long");
        let mut null = TsPacket::null();
        assert!(!null.set_private_data(b"x"));
        assert_eq!(null, TsPacket::null());
    }

    #[test]
    fn pcr_roundtrip_including_extension_and_wrap_edge() {
        for ticks in [0u64, 1, 299, 300, 27_000_000, super::super::time::PCR_WRAP - 1] {
            let pcr = Pcr::new(ticks);
            let p = TsPacket::pcr_only(Pid::new(0x1FF), pcr, 5, false);
            assert_eq!(p.pcr(), Some(pcr), "ticks {ticks}");
            assert_eq!(p.pid().value(), 0x1FF);
            assert_eq!(p.cc(), 5);
            assert!(!p.has_payload());
            p.validate().unwrap();
        }
        let mut p = TsPacket::pcr_only(Pid::new(0x100), Pcr::new(1), 0, true);
        assert!(p.discontinuity_indicator());
        assert!(p.set_pcr(Pcr::new(123_456_789)));
        assert_eq!(p.pcr(), Some(Pcr::new(123_456_789)));
        assert!(!TsPacket::null().set_pcr(Pcr::new(1)));
    }

    #[test]
    fn strip_pcr_keeps_payload_and_later_fields() {
        let mut p = TsPacket::pcr_only(Pid::new(0x100), Pcr::new(12345), 3, false);
        // Add a splice countdown after the PCR (flag 0x04) and make room for a payload.
        p.0[3] = 0x30 | 3;
        p.0[4] = 8; // flags + PCR + splice countdown
        p.0[5] |= 0x04;
        p.0[12] = 0x7E;
        for (i, b) in p.0[13..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let payload = p.payload().to_vec();
        assert!(p.strip_pcr());
        assert_eq!(p.pcr(), None);
        assert_eq!(p.0[5] & 0x14, 0x04, "PCR flag cleared, splice flag kept");
        assert_eq!(p.0[6], 0x7E, "splice countdown moved up");
        assert!(p.0[7..13].iter().all(|&b| b == 0xFF), "stuffing");
        assert_eq!(p.payload(), &payload[..]);
        p.validate().unwrap();
        assert!(!p.strip_pcr());
    }

    #[test]
    fn header_setters() {
        let mut p = TsPacket::null();
        p.set_pid(Pid::new(0x0ABC));
        p.set_cc(17);
        assert_eq!(p.pid().value(), 0x0ABC);
        assert_eq!(p.cc(), 1);
        assert_eq!(Pid::checked(0x2000), None);
    }

    #[test]
    fn rejects_bad_bytes() {
        assert_eq!(TsPacket::from_slice(&[0x47; 10]), Err(PacketError::WrongLength(10)));
        let mut b = *TsPacket::null().as_bytes();
        b[0] = 0x48;
        assert_eq!(TsPacket::from_slice(&b), Err(PacketError::LostSync(0x48)));
        let mut b = *TsPacket::null().as_bytes();
        b[3] = 0x30;
        b[4] = 183;
        assert_eq!(TsPacket::from_slice(&b), Err(PacketError::BadAdaptationLength(183)));
    }

    #[test]
    fn section_packetizing_and_cc() {
        let section: Vec<u8> = (0..400u32).map(|i| i as u8).collect();
        let mut cc = 14;
        let pkts = packetize_section(Pid::new(0x20), &section, &mut cc);
        assert_eq!(pkts.len(), 3);
        assert_eq!(cc, 1);
        assert!(pkts[0].pusi() && !pkts[1].pusi());
        assert_eq!(pkts[0].payload()[0], 0, "pointer field");
        let mut joined: Vec<u8> = pkts[0].payload()[1..].to_vec();
        joined.extend_from_slice(pkts[1].payload());
        joined.extend_from_slice(pkts[2].payload());
        assert_eq!(&joined[..400], &section[..]);
        assert!(joined[400..].iter().all(|&b| b == 0xFF));
        assert_eq!([pkts[0].cc(), pkts[1].cc(), pkts[2].cc()], [14, 15, 0]);
    }

    #[test]
    fn exact_packetizing() {
        let mut cc = 0;
        for len in [2usize, 100, 184, 200, 368] {
            let pes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let pkts = packetize_pes_exact(Pid::new(0x40), &pes, 2, &mut cc).unwrap();
            assert_eq!(pkts.len(), 2);
            let joined: Vec<u8> = pkts.iter().flat_map(|p| p.payload().to_vec()).collect();
            assert_eq!(joined, pes, "len {len}");
            pkts.iter().for_each(|p| p.validate().unwrap());
        }
        assert!(packetize_pes_exact(Pid::new(0x40), &[0; 369], 2, &mut cc).is_none());
        assert!(packetize_pes_exact(Pid::new(0x40), &[0; 1], 2, &mut cc).is_none());
    }

    #[test]
    fn pes_packetizing_pads_last_packet_with_adaptation() {
        let pes: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        let mut cc = 0;
        let pkts = packetize_pes(Pid::new(0x30), &pes, &mut cc);
        assert_eq!(pkts.len(), 2);
        assert_eq!(pkts[0].payload(), &pes[..184]);
        assert_eq!(pkts[1].payload(), &pes[184..]);
        assert!(pkts[1].has_adaptation());
        pkts[1].validate().unwrap();
        // A payload of 183 bytes needs a one-byte adaptation field (length 0).
        let pkts = packetize_pes(Pid::new(0x30), &[1u8; 183], &mut cc);
        assert_eq!(pkts[0].payload().len(), 183);
        assert_eq!(pkts[0].0[4], 0);
    }
}
