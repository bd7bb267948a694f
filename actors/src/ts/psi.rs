//! Program-specific information writers: long-form sections with CRC, PAT and PMT, and
//! the descriptors headend puts in its PMT (ID3 timed metadata, as HLS players expect).

use super::crc::crc32_mpeg2;
use super::packet::Pid;

/// Stream types headend writes in its PMT (ISO/IEC 13818-1 table 2-34 and ATSC/DVB usage).
pub mod stream_type {
    pub const MPEG2_VIDEO: u8 = 0x02;
    pub const MPEG1_AUDIO: u8 = 0x03;
    pub const MPEG2_AUDIO: u8 = 0x04;
    pub const PRIVATE_PES: u8 = 0x06;
    pub const AAC_ADTS: u8 = 0x0F;
    pub const METADATA_PES: u8 = 0x15;
    pub const H264: u8 = 0x1B;
    pub const HEVC: u8 = 0x24;
    /// ATSC A/52 AC-3 (DVB carries AC-3 as 0x06 plus an AC-3 descriptor).
    pub const AC3_ATSC: u8 = 0x81;
}

/// Table ids headend writes.
pub mod table_id {
    pub const PAT: u8 = 0x00;
    pub const PMT: u8 = 0x02;
    pub const SDT_ACTUAL: u8 = 0x42;
    pub const EIT_PF_ACTUAL: u8 = 0x4E;
}

/// A descriptor: tag and body (the length byte is written from the body). One type
/// for both sides: writers build it, `ts::parser` reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Descriptor {
    pub tag: u8,
    pub data: Vec<u8>,
}

impl Descriptor {
    /// Descriptor bodies longer than 255 bytes are a programming error.
    pub fn new(tag: u8, data: Vec<u8>) -> Self {
        assert!(data.len() <= 255, "descriptor 0x{tag:02X} body is {} bytes", data.len());
        Descriptor { tag, data }
    }
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.tag);
        out.push(self.data.len() as u8);
        out.extend_from_slice(&self.data);
    }
    /// ISO 639 language descriptor (0x0A) with audio type 0 (undefined).
    pub fn language(code: &[u8; 3]) -> Self {
        Descriptor::new(0x0A, vec![code[0], code[1], code[2], 0])
    }
    /// metadata_pointer_descriptor (0x25) for an ID3 metadata service, in program_info.
    pub fn id3_metadata_pointer(program_number: u16) -> Self {
        let mut b = Vec::with_capacity(15);
        b.extend_from_slice(&[0xFF, 0xFF]);
        b.extend_from_slice(b"ID3 ");
        b.push(0xFF);
        b.extend_from_slice(b"ID3 ");
        b.push(0x00); // metadata_service_id
        b.push(0x1F); // locator_record_flag 0, carriage_flags 0 (same TS), reserved
        b.extend_from_slice(&program_number.to_be_bytes());
        Descriptor::new(0x25, b)
    }
    /// metadata_descriptor (0x26) for the ID3 elementary stream.
    pub fn id3_metadata() -> Self {
        let mut b = Vec::with_capacity(13);
        b.extend_from_slice(&[0xFF, 0xFF]);
        b.extend_from_slice(b"ID3 ");
        b.push(0xFF);
        b.extend_from_slice(b"ID3 ");
        b.push(0x00); // metadata_service_id
        b.push(0x0F); // decoder_config_flags 0, dsmcc_flag 0, reserved
        Descriptor::new(0x26, b)
    }
}

/// Writes a long-form section (syntax indicator 1) around `body` and appends the CRC.
/// `body` is what follows last_section_number and precedes the CRC.
pub fn long_section(
    table_id: u8,
    table_id_extension: u16,
    version: u8,
    section_number: u8,
    last_section_number: u8,
    body: &[u8],
) -> Vec<u8> {
    let section_length = 5 + body.len() + 4;
    assert!(section_length <= 1021, "section of {section_length} bytes exceeds 1021");
    let mut s = Vec::with_capacity(3 + section_length);
    s.push(table_id);
    // section_syntax_indicator 1, private/'0' bit 0 for PSI (1 for DVB SI: set by caller
    // through `si_section`), reserved 11, length.
    s.push(0xB0 | ((section_length >> 8) as u8 & 0x0F));
    s.push(section_length as u8);
    s.extend_from_slice(&table_id_extension.to_be_bytes());
    s.push(0xC0 | ((version & 0x1F) << 1) | 0x01); // current_next 1
    s.push(section_number);
    s.push(last_section_number);
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// Program association table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pat {
    pub transport_stream_id: u16,
    pub version: u8,
    /// Programs in table order, program_number 0 (the network PID) excluded.
    pub programs: Vec<(u16, Pid)>,
    /// The NIT PID, listed as program_number 0 when present.
    pub network_pid: Option<Pid>,
}

impl Pat {
    pub fn section(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.programs.len() * 4 + 4);
        let network = self.network_pid.map(|pid| (0u16, pid));
        for (number, pid) in network.iter().chain(&self.programs) {
            body.extend_from_slice(&number.to_be_bytes());
            body.extend_from_slice(&(0xE000 | pid.value()).to_be_bytes());
        }
        long_section(table_id::PAT, self.transport_stream_id, self.version, 0, 0, &body)
    }
}

/// One elementary stream entry of a PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmtStream {
    pub stream_type: u8,
    pub pid: Pid,
    pub descriptors: Vec<Descriptor>,
}

/// Program map table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmt {
    pub program_number: u16,
    pub version: u8,
    pub pcr_pid: Pid,
    pub program_descriptors: Vec<Descriptor>,
    pub streams: Vec<PmtStream>,
}

impl Pmt {
    pub fn section(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&(0xE000 | self.pcr_pid.value()).to_be_bytes());
        let mut info = Vec::new();
        for d in &self.program_descriptors {
            d.write(&mut info);
        }
        body.extend_from_slice(&(0xF000 | info.len() as u16).to_be_bytes());
        body.extend_from_slice(&info);
        for s in &self.streams {
            body.push(s.stream_type);
            body.extend_from_slice(&(0xE000 | s.pid.value()).to_be_bytes());
            let mut es = Vec::new();
            for d in &s.descriptors {
                d.write(&mut es);
            }
            body.extend_from_slice(&(0xF000 | es.len() as u16).to_be_bytes());
            body.extend_from_slice(&es);
        }
        long_section(table_id::PMT, self.program_number, self.version, 0, 0, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pat_bytes_match_reference() {
        // A single program 1 on PMT PID 0x1000, TSID 1, version 0: the same bytes the
        // FFmpeg muxer writes for its default PAT.
        let pat = Pat { transport_stream_id: 1, version: 0, programs: vec![(1, Pid::new(0x1000))], network_pid: None };
        let s = pat.section();
        assert_eq!(&s[..12], &[0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00]);
        assert_eq!(crc32_mpeg2(&s), 0);
        assert_eq!(&s[12..], &[0x2A, 0xB1, 0x04, 0xB2]);
    }

    #[test]
    fn pmt_layout_and_crc() {
        let pmt = Pmt {
            program_number: 7,
            version: 3,
            pcr_pid: Pid::new(0x1FF),
            program_descriptors: vec![Descriptor::id3_metadata_pointer(7)],
            streams: vec![
                PmtStream { stream_type: stream_type::H264, pid: Pid::new(0x100), descriptors: vec![] },
                PmtStream {
                    stream_type: stream_type::METADATA_PES,
                    pid: Pid::new(0x102),
                    descriptors: vec![Descriptor::id3_metadata()],
                },
            ],
        };
        let s = pmt.section();
        assert_eq!(crc32_mpeg2(&s), 0);
        let section_length = (((s[1] & 0x0F) as usize) << 8) | s[2] as usize;
        assert_eq!(section_length + 3, s.len());
        assert_eq!(u16::from_be_bytes([s[3], s[4]]), 7);
        assert_eq!((s[5] >> 1) & 0x1F, 3, "version");
        assert_eq!(u16::from_be_bytes([s[8], s[9]]) & 0x1FFF, 0x1FF, "PCR PID");
        let info_len = (u16::from_be_bytes([s[10], s[11]]) & 0x0FFF) as usize;
        assert_eq!(info_len, 17);
        assert_eq!(s[12], 0x25);
        let es = &s[12 + info_len..];
        assert_eq!(es[0], 0x1B);
        assert_eq!(u16::from_be_bytes([es[1], es[2]]) & 0x1FFF, 0x100);
        assert_eq!(es[5], 0x15);
        assert_eq!(es[10], 0x26);
    }
}
