//! DVB service information writers (ETSI EN 300 468): SDT actual and EIT present/following
//! actual, with DVB text strings, MJD/BCD times and the descriptors they carry.

use super::psi::{table_id, Descriptor};
use super::crc::crc32_mpeg2;

/// DVB `service_type` values headend uses.
pub mod service_type {
    pub const DIGITAL_TV: u8 = 0x01;
    pub const DIGITAL_RADIO: u8 = 0x02;
}

/// Running status: 4 = running, 1 = not running.
pub const RUNNING: u8 = 4;
pub const NOT_RUNNING: u8 = 1;

/// Encodes a DVB string: plain bytes when the text is printable ASCII, else UTF-8 with the
/// 0x15 selector (EN 300 468 annex A). Truncated on a character boundary to `max` bytes.
pub fn dvb_string(text: &str, max: usize) -> Vec<u8> {
    let ascii = text.bytes().all(|b| (0x20..0x7F).contains(&b));
    let mut out = Vec::with_capacity(text.len() + 1);
    let budget = if ascii { max } else { max.saturating_sub(1) };
    if !ascii {
        out.push(0x15);
    }
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() > budget {
            break;
        }
        end = i + c.len_utf8();
    }
    out.extend_from_slice(&text.as_bytes()[..end]);
    out
}

/// service_descriptor (0x48).
pub fn service_descriptor(service_type: u8, provider: &str, name: &str) -> Descriptor {
    let p = dvb_string(provider, 100);
    let n = dvb_string(name, 100);
    let mut b = Vec::with_capacity(3 + p.len() + n.len());
    b.push(service_type);
    b.push(p.len() as u8);
    b.extend_from_slice(&p);
    b.push(n.len() as u8);
    b.extend_from_slice(&n);
    Descriptor::new(0x48, b)
}

/// short_event_descriptor (0x4D) with ISO 639 language, event name and text.
pub fn short_event_descriptor(lang: &[u8; 3], name: &str, text: &str) -> Descriptor {
    let n = dvb_string(name, 120);
    let t = dvb_string(text, 120);
    let mut b = Vec::with_capacity(5 + n.len() + t.len());
    b.extend_from_slice(lang);
    b.push(n.len() as u8);
    b.extend_from_slice(&n);
    b.push(t.len() as u8);
    b.extend_from_slice(&t);
    Descriptor::new(0x4D, b)
}

/// DVB SI sections set the private indicator bit, unlike PSI.
fn si_section(
    table_id: u8,
    table_id_extension: u16,
    version: u8,
    section_number: u8,
    last_section_number: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut s = super::psi::long_section(
        table_id,
        table_id_extension,
        version,
        section_number,
        last_section_number,
        body,
    );
    s.truncate(s.len() - 4);
    s[1] |= 0x40; // reserved_future_use = 1, as EN 300 468 writes it
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// One service of an SDT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdtService {
    pub service_id: u16,
    pub eit_present_following: bool,
    pub running_status: u8,
    pub service_type: u8,
    pub provider: String,
    pub name: String,
}

/// Service description table, actual transport stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdt {
    pub transport_stream_id: u16,
    pub original_network_id: u16,
    pub version: u8,
    pub services: Vec<SdtService>,
}

impl Sdt {
    pub fn section(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        body.extend_from_slice(&self.original_network_id.to_be_bytes());
        body.push(0xFF);
        for s in &self.services {
            body.extend_from_slice(&s.service_id.to_be_bytes());
            body.push(0xFC | if s.eit_present_following { 0x01 } else { 0 });
            let mut d = Vec::new();
            service_descriptor(s.service_type, &s.provider, &s.name).write(&mut d);
            let loop_len = d.len() as u16 & 0x0FFF;
            body.extend_from_slice(&(((s.running_status as u16 & 0x7) << 13) | loop_len).to_be_bytes());
            body.extend_from_slice(&d);
        }
        si_section(table_id::SDT_ACTUAL, self.transport_stream_id, self.version, 0, 0, &body)
    }
}

/// One event of an EIT present/following section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EitEvent {
    pub event_id: u16,
    /// Unix time, seconds (UTC).
    pub start_unix: u64,
    pub duration_secs: u32,
    pub running_status: u8,
    pub name: String,
    pub text: String,
}

/// EIT present/following for one service: section 0 is the present event, section 1 the
/// following one (either may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EitPf {
    pub service_id: u16,
    pub transport_stream_id: u16,
    pub original_network_id: u16,
    pub version: u8,
    pub present: Option<EitEvent>,
    pub following: Option<EitEvent>,
}

impl EitPf {
    /// The two sections (present, following).
    pub fn sections(&self) -> [Vec<u8>; 2] {
        [self.section(0, self.present.as_ref()), self.section(1, self.following.as_ref())]
    }

    fn section(&self, number: u8, event: Option<&EitEvent>) -> Vec<u8> {
        let mut body = Vec::with_capacity(96);
        body.extend_from_slice(&self.transport_stream_id.to_be_bytes());
        body.extend_from_slice(&self.original_network_id.to_be_bytes());
        body.push(1); // segment_last_section_number
        body.push(table_id::EIT_PF_ACTUAL); // last_table_id
        if let Some(e) = event {
            body.extend_from_slice(&e.event_id.to_be_bytes());
            body.extend_from_slice(&mjd_utc(e.start_unix));
            body.extend_from_slice(&bcd_duration(e.duration_secs));
            let mut d = Vec::new();
            short_event_descriptor(b"eng", &e.name, &e.text).write(&mut d);
            let loop_len = d.len() as u16 & 0x0FFF;
            body.extend_from_slice(&(((e.running_status as u16 & 0x7) << 13) | loop_len).to_be_bytes());
            body.extend_from_slice(&d);
        }
        si_section(table_id::EIT_PF_ACTUAL, self.service_id, self.version, number, 1, &body)
    }
}

/// 40-bit MJD + BCD hh:mm:ss UTC of a Unix time (EN 300 468 annex C).
pub fn mjd_utc(unix: u64) -> [u8; 5] {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let mjd = (days + 40_587) as u16;
    let [h, m] = mjd.to_be_bytes();
    [h, m, bcd((secs / 3600) as u8), bcd((secs / 60 % 60) as u8), bcd((secs % 60) as u8)]
}

/// 24-bit BCD hh:mm:ss duration; saturates at 99:59:59.
pub fn bcd_duration(secs: u32) -> [u8; 3] {
    let secs = secs.min(99 * 3600 + 59 * 60 + 59);
    [bcd((secs / 3600) as u8), bcd((secs / 60 % 60) as u8), bcd((secs % 60) as u8)]
}

fn bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mjd_matches_en300468_example() {
        // EN 300 468 annex C: 93/10/13 12:45:00 is MJD 0xC079, BCD 12 45 00.
        let unix = 750_516_300; // 1993-10-13T12:45:00Z
        assert_eq!(mjd_utc(unix), [0xC0, 0x79, 0x12, 0x45, 0x00]);
        assert_eq!(bcd_duration(3 * 3600 + 25 * 60 + 9), [0x03, 0x25, 0x09]);
        assert_eq!(bcd_duration(u32::MAX), [0x99, 0x59, 0x59]);
    }

    #[test]
    fn dvb_strings_ascii_and_utf8() {
        assert_eq!(dvb_string("Rock", 100), b"Rock".to_vec());
        let s = dvb_string("Motörhead", 100);
        assert_eq!(s[0], 0x15);
        assert_eq!(&s[1..], "Motörhead".as_bytes());
        // Truncation never splits a UTF-8 sequence.
        let s = dvb_string("ööö", 4);
        assert_eq!(&s[1..], "ö".as_bytes());
    }

    #[test]
    fn sdt_and_eit_sections_check() {
        let sdt = Sdt {
            transport_stream_id: 1,
            original_network_id: 0xFF01,
            version: 2,
            services: vec![SdtService {
                service_id: 1,
                eit_present_following: true,
                running_status: RUNNING,
                service_type: service_type::DIGITAL_TV,
                provider: "headend".into(),
                name: "Rock TV".into(),
            }],
        };
        let s = sdt.section();
        assert_eq!(s[0], 0x42);
        assert_eq!(s[1] & 0xF0, 0xF0);
        assert_eq!(crc32_mpeg2(&s), 0);
        assert!(s.windows(7).any(|w| w == b"Rock TV"));

        let ev = EitEvent {
            event_id: 9,
            start_unix: 750_516_300,
            duration_secs: 200,
            running_status: RUNNING,
            name: "Song".into(),
            text: "Artist".into(),
        };
        let eit = EitPf {
            service_id: 1,
            transport_stream_id: 1,
            original_network_id: 1,
            version: 0,
            present: Some(ev),
            following: None,
        };
        let [p, f] = eit.sections();
        for (i, s) in [&p, &f].into_iter().enumerate() {
            assert_eq!(s[0], 0x4E);
            assert_eq!(s[6], i as u8, "section_number");
            assert_eq!(s[7], 1, "last_section_number");
            assert_eq!(crc32_mpeg2(s), 0);
        }
        assert!(p.windows(4).any(|w| w == b"Song"));
        assert_eq!(f.len(), 3 + 5 + 6 + 4, "empty following section");
    }
}
