//! Typed PSI/SI tables read from sections: PAT, PMT (ISO/IEC 13818-1), SDT and EIT
//! (EN 300 468).

use super::section::Section;
use super::text::{bcd_duration_secs, decode_dvb_text, mjd_bcd_to_unix};
use super::{be_u16, slice, tail, ParseError};
use crate::ts::packet::Pid;

pub use crate::ts::psi::{Descriptor, Pat, Pmt, PmtStream};

impl Descriptor {
    /// Reads a whole descriptor loop.
    pub fn parse_loop(mut b: &[u8]) -> Result<Vec<Descriptor>, ParseError> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let len = *b.get(1).ok_or(ParseError::Truncated {
                what: "descriptor header",
                need: 2,
                have: b.len(),
            })?;
            let data = slice(b, 2, len as usize, "descriptor")?;
            out.push(Descriptor {
                tag: b[0],
                data: data.to_vec(),
            });
            b = &b[2 + len as usize..];
        }
        Ok(out)
    }
}

fn expect_table(section: &Section, expected: &'static str, ids: &[u8]) -> Result<(), ParseError> {
    if !ids.contains(&section.table_id()) {
        return Err(ParseError::WrongTable {
            expected,
            found: section.table_id(),
        });
    }
    if !section.is_long_form() || section.bytes().len() < 12 {
        return Err(ParseError::Malformed {
            what: expected,
            detail: "not a long-form section",
        });
    }
    Ok(())
}

/// 12-bit length field at `at` (the upper four bits are reserved).
fn length12(b: &[u8], at: usize, what: &'static str) -> Result<usize, ParseError> {
    Ok((be_u16(b, at, what)? & 0x0FFF) as usize)
}

impl Pat {
    pub fn parse(section: &Section) -> Result<Pat, ParseError> {
        expect_table(section, "PAT", &[0x00])?;
        let body = section.body();
        let entries = body.chunks_exact(4);
        if !entries.remainder().is_empty() {
            return Err(ParseError::Malformed {
                what: "PAT",
                detail: "program loop is not a multiple of 4 bytes",
            });
        }
        let mut programs = Vec::with_capacity(body.len() / 4);
        let mut network_pid = None;
        for entry in entries {
            let number = u16::from_be_bytes([entry[0], entry[1]]);
            let pid = Pid::new(u16::from_be_bytes([entry[2], entry[3]]));
            if number == 0 {
                network_pid = Some(pid);
            } else {
                programs.push((number, pid));
            }
        }
        Ok(Pat {
            transport_stream_id: section.table_id_extension().unwrap_or(0),
            version: section.version().unwrap_or(0),
            programs,
            network_pid,
        })
    }
}

impl Pmt {
    pub fn parse(section: &Section) -> Result<Pmt, ParseError> {
        expect_table(section, "PMT", &[0x02])?;
        let b = section.body();
        let pcr_pid = Pid::new(be_u16(b, 0, "PMT PCR_PID")?);
        let info_len = length12(b, 2, "PMT program_info_length")?;
        let program_descriptors =
            Descriptor::parse_loop(slice(b, 4, info_len, "PMT program_info")?)?;
        let mut rest = &b[4 + info_len..];
        let mut streams = Vec::new();
        while !rest.is_empty() {
            let pid = Pid::new(be_u16(rest, 1, "PMT stream entry")?);
            let es_len = length12(rest, 3, "PMT stream entry")?;
            let descriptors = Descriptor::parse_loop(slice(rest, 5, es_len, "PMT ES_info")?)?;
            streams.push(PmtStream {
                stream_type: rest[0],
                pid,
                descriptors,
            });
            rest = &rest[5 + es_len..];
        }
        Ok(Pmt {
            program_number: section.table_id_extension().unwrap_or(0),
            version: section.version().unwrap_or(0),
            pcr_pid,
            program_descriptors,
            streams,
        })
    }

    /// The PIDs this PMT refers to: its elementary streams and its PCR PID.
    pub fn referenced_pids(&self) -> impl Iterator<Item = Pid> + '_ {
        let pcr = (self.pcr_pid != crate::ts::packet::NULL_PID).then_some(self.pcr_pid);
        self.streams.iter().map(|s| s.pid).chain(pcr)
    }
}

/// One service of an SDT, with the names from its service_descriptor (0x48).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SdtService {
    pub service_id: u16,
    pub eit_schedule_flag: bool,
    /// EIT_present_following_flag.
    pub eit_pf_flag: bool,
    pub running_status: u8,
    pub free_ca_mode: bool,
    /// From the service_descriptor; 0 when there is none.
    pub service_type: u8,
    pub provider_name: String,
    pub service_name: String,
}

/// Service description table (one section of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdt {
    /// 0x42 for the actual transport stream, 0x46 for another.
    pub table_id: u8,
    pub transport_stream_id: u16,
    pub original_network_id: u16,
    pub version: u8,
    pub services: Vec<SdtService>,
}

impl Sdt {
    pub fn parse(section: &Section) -> Result<Sdt, ParseError> {
        expect_table(section, "SDT", &[0x42, 0x46])?;
        let b = section.body();
        let original_network_id = be_u16(b, 0, "SDT header")?;
        let mut rest = tail(b, 3, "SDT header")?;
        let mut services = Vec::new();
        while !rest.is_empty() {
            let service_id = be_u16(rest, 0, "SDT service entry")?;
            let flags = *rest.get(2).ok_or(ParseError::Truncated {
                what: "SDT service entry",
                need: 5,
                have: rest.len(),
            })?;
            let status = be_u16(rest, 3, "SDT service entry")?;
            let loop_len = (status & 0x0FFF) as usize;
            let descriptors =
                Descriptor::parse_loop(slice(rest, 5, loop_len, "SDT descriptor loop")?)?;
            let mut service = SdtService {
                service_id,
                eit_schedule_flag: flags & 0x02 != 0,
                eit_pf_flag: flags & 0x01 != 0,
                running_status: (status >> 13) as u8,
                free_ca_mode: status & 0x1000 != 0,
                service_type: 0,
                provider_name: String::new(),
                service_name: String::new(),
            };
            if let Some(d) = descriptors.iter().find(|d| d.tag == 0x48) {
                let provider_len = *d.data.get(1).unwrap_or(&0) as usize;
                let provider = slice(&d.data, 2, provider_len, "service_descriptor")?;
                let name_len = *d.data.get(2 + provider_len).unwrap_or(&0) as usize;
                let name = slice(&d.data, 3 + provider_len, name_len, "service_descriptor")?;
                service.service_type = *d.data.first().unwrap_or(&0);
                service.provider_name = decode_dvb_text(provider);
                service.service_name = decode_dvb_text(name);
            }
            services.push(service);
            rest = &rest[5 + loop_len..];
        }
        Ok(Sdt {
            table_id: section.table_id(),
            transport_stream_id: section.table_id_extension().unwrap_or(0),
            original_network_id,
            version: section.version().unwrap_or(0),
            services,
        })
    }
}

/// One event of an EIT, with name and text from its first short_event_descriptor (0x4D).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EitEvent {
    pub event_id: u16,
    /// Start in Unix seconds (UTC); `None` when undefined or unreadable.
    pub start_time_utc: Option<u64>,
    /// 0 when the BCD duration is unreadable.
    pub duration_secs: u32,
    pub running_status: u8,
    pub language: String,
    pub name: String,
    pub text: String,
}

/// Event information table (one section of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eit {
    /// 0x4E present/following actual, 0x4F p/f other, 0x50-0x6F schedule.
    pub table_id: u8,
    pub service_id: u16,
    pub version: u8,
    /// For p/f tables: 0 is the present event, 1 the following one.
    pub section_number: u8,
    pub transport_stream_id: u16,
    pub original_network_id: u16,
    pub events: Vec<EitEvent>,
}

impl Eit {
    pub fn parse(section: &Section) -> Result<Eit, ParseError> {
        if !(0x4E..=0x6F).contains(&section.table_id()) {
            return Err(ParseError::WrongTable {
                expected: "EIT",
                found: section.table_id(),
            });
        }
        expect_table(section, "EIT", &[section.table_id()])?;
        let b = section.body();
        let transport_stream_id = be_u16(b, 0, "EIT header")?;
        let original_network_id = be_u16(b, 2, "EIT header")?;
        let mut rest = tail(b, 6, "EIT header")?;
        let mut events = Vec::new();
        while !rest.is_empty() {
            let head = slice(rest, 0, 12, "EIT event")?;
            let start = [head[2], head[3], head[4], head[5], head[6]];
            let status = u16::from_be_bytes([head[10], head[11]]);
            let loop_len = (status & 0x0FFF) as usize;
            let descriptors =
                Descriptor::parse_loop(slice(rest, 12, loop_len, "EIT descriptor loop")?)?;
            let mut event = EitEvent {
                event_id: u16::from_be_bytes([head[0], head[1]]),
                start_time_utc: mjd_bcd_to_unix(start),
                duration_secs: bcd_duration_secs([head[7], head[8], head[9]]).unwrap_or(0),
                running_status: (status >> 13) as u8,
                language: String::new(),
                name: String::new(),
                text: String::new(),
            };
            if let Some(d) = descriptors.iter().find(|d| d.tag == 0x4D) {
                let lang = slice(&d.data, 0, 3, "short_event_descriptor")?;
                let name_len = *d.data.get(3).unwrap_or(&0) as usize;
                let name = slice(&d.data, 4, name_len, "short_event_descriptor")?;
                let text_len = *d.data.get(4 + name_len).unwrap_or(&0) as usize;
                let text = slice(&d.data, 5 + name_len, text_len, "short_event_descriptor")?;
                event.language = String::from_utf8_lossy(lang).into_owned();
                event.name = decode_dvb_text(name);
                event.text = decode_dvb_text(text);
            }
            events.push(event);
            rest = &rest[12 + loop_len..];
        }
        Ok(Eit {
            table_id: section.table_id(),
            service_id: section.table_id_extension().unwrap_or(0),
            version: section.version().unwrap_or(0),
            section_number: section.section_number().unwrap_or(0),
            transport_stream_id,
            original_network_id,
            events,
        })
    }

    /// Present/following table (actual or other).
    pub fn is_present_following(&self) -> bool {
        self.table_id == 0x4E || self.table_id == 0x4F
    }
}
