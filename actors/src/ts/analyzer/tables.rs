//! Section handling: CRC (2.2), table_id checks on PID 0 and 1 (1.3, 2.6), and what the
//! PAT, PMT, SDT and EIT say.

use super::timeline::{Occurrence, Watch};
use super::{push_folded, Analyzer, ErrorKind, EventSeen, ProgramState};
use crate::ts::packet::{Pid, TsPacket, CAT_PID, EIT_PID, NULL_PID, PAT_PID, SDT_PID};
use crate::ts::parser::{Eit, Pat, Pmt, Sdt, Section, SectionAssembler};

const TABLE_PAT: u8 = 0x00;
const TABLE_CAT: u8 = 0x01;
const TABLE_PMT: u8 = 0x02;
const TABLE_SDT_ACTUAL: u8 = 0x42;
const TABLE_EIT_PF_ACTUAL: u8 = 0x4E;

impl Analyzer {
    pub(super) fn on_section_payload(&mut self, packet: &TsPacket, pos: u64, index: u64) {
        let pid = packet.pid();
        let Some(state) = self.pids.get_mut(&pid) else {
            return;
        };
        let assembler = state
            .sections
            .get_or_insert_with(|| SectionAssembler::new(pid));
        assembler.push(packet);
        let mut sections = Vec::new();
        let mut broken = 0;
        loop {
            match assembler.next_section() {
                Ok(Some(s)) => sections.push(s),
                Ok(None) => break,
                Err(_) => broken += 1,
            }
        }
        self.broken_sections += broken;
        for section in sections {
            self.on_section(section, pos, index);
        }
    }

    fn on_section(&mut self, section: Section, pos: u64, index: u64) {
        let pid = section.pid();
        let table_id = section.table_id();
        if !section.crc_ok() {
            self.record(ErrorKind::CrcError, pid, index, || {
                format!("CRC error in a section with table_id 0x{table_id:02X}")
            });
            return;
        }
        match pid {
            PAT_PID if table_id != TABLE_PAT => {
                self.record(ErrorKind::PatError, pid, index, || {
                    format!("table_id 0x{table_id:02X} on PID 0 (PAT PID)")
                });
            }
            PAT_PID => self.on_pat(&section, pos, index),
            CAT_PID if table_id != TABLE_CAT => {
                self.record(ErrorKind::CatError, pid, index, || {
                    format!("table_id 0x{table_id:02X} on PID 1 (CAT PID)")
                });
            }
            CAT_PID => self.cat_seen = true,
            SDT_PID if table_id == TABLE_SDT_ACTUAL => self.on_sdt(&section, pos, index),
            EIT_PID if table_id == TABLE_EIT_PF_ACTUAL => self.on_eit_pf(&section, pos, index),
            _ if table_id == TABLE_PMT && self.is_pmt_pid(pid) => self.on_pmt(&section, pos, index),
            _ => {}
        }
    }

    fn on_pat(&mut self, section: &Section, pos: u64, index: u64) {
        self.observe(pos, index, Occurrence::Seen(Watch::Pat));
        if !section.is_current() {
            return;
        }
        let Ok(pat) = Pat::parse(section) else {
            self.malformed_sections += 1;
            return;
        };
        if self.pat_versions.last() != Some(&pat.version) {
            self.pat_sections.clear();
        }
        push_folded(&mut self.pat_versions, pat.version);
        self.transport_stream_id = Some(pat.transport_stream_id);
        self.pat_sections
            .insert(section.section_number().unwrap_or(0), pat.programs);
        let programs: Vec<(u16, Pid)> = self.pat_sections.values().flatten().copied().collect();
        let current: Vec<(u16, Pid)> = self
            .programs
            .iter()
            .map(|p| (p.number, p.pmt_pid))
            .collect();
        if programs == current {
            return;
        }
        let mut old = std::mem::take(&mut self.programs);
        for (number, pmt_pid) in programs {
            match old
                .iter()
                .position(|p| p.number == number && p.pmt_pid == pmt_pid)
            {
                Some(i) => self.programs.push(old.swap_remove(i)),
                None => {
                    self.programs.push(ProgramState {
                        number,
                        pmt_pid,
                        pmt: None,
                        pmt_versions: Vec::new(),
                    });
                    self.observe(pos, index, Occurrence::Arm(Watch::Pmt(pmt_pid)));
                }
            }
        }
        for gone in old {
            if !self.is_pmt_pid(gone.pmt_pid) {
                if let Some(c) = self.cadences.get_mut(&Watch::Pmt(gone.pmt_pid)) {
                    c.deactivate();
                }
            }
        }
        self.on_programs_changed(pos, index);
    }

    fn on_pmt(&mut self, section: &Section, pos: u64, index: u64) {
        let pid = section.pid();
        self.observe(pos, index, Occurrence::Seen(Watch::Pmt(pid)));
        if !section.is_current() {
            return;
        }
        let Ok(pmt) = Pmt::parse(section) else {
            self.malformed_sections += 1;
            return;
        };
        let Some(program) = self
            .programs
            .iter_mut()
            .find(|p| p.pmt_pid == pid && p.number == pmt.program_number)
        else {
            return; // a program the PAT does not list
        };
        push_folded(&mut program.pmt_versions, pmt.version);
        if program.pmt.as_ref() == Some(&pmt) {
            return;
        }
        program.pmt = Some(pmt);
        self.on_programs_changed(pos, index);
    }

    /// Recomputes the referenced PIDs, their stream types and the timebase after a PAT or
    /// PMT change. PIDs no longer referred to stop being judged (1.6, 2.5).
    fn on_programs_changed(&mut self, pos: u64, index: u64) {
        let mut referenced = std::collections::BTreeMap::new();
        for pmt in self.programs.iter().filter_map(|p| p.pmt.as_ref()) {
            if pmt.pcr_pid != NULL_PID {
                referenced.entry(pmt.pcr_pid).or_insert(None);
            }
            for s in &pmt.streams {
                referenced.insert(s.pid, Some(s.stream_type));
            }
        }
        let old = std::mem::replace(&mut self.referenced, referenced);
        for pid in old.keys().filter(|p| !self.referenced.contains_key(p)) {
            for watch in [Watch::Presence(*pid), Watch::Pts(*pid)] {
                if let Some(c) = self.cadences.get_mut(&watch) {
                    c.deactivate();
                }
            }
        }
        let new: Vec<Pid> = self
            .referenced
            .keys()
            .filter(|p| !old.contains_key(p))
            .copied()
            .collect();
        for pid in new {
            self.observe(pos, index, Occurrence::Arm(Watch::Presence(pid)));
        }
        // Stream types decide which PTS cadences are judged.
        let pts_pids: Vec<Pid> = self
            .cadences
            .keys()
            .filter_map(|w| {
                if let Watch::Pts(p) = w {
                    Some(*p)
                } else {
                    None
                }
            })
            .collect();
        for pid in pts_pids {
            let limit = self.limit_for(Watch::Pts(pid));
            if let Some(c) = self.cadences.get_mut(&Watch::Pts(pid)) {
                c.limit = limit;
            }
        }
        // The timebase: the PCR PID of the first program (in PAT order) whose PMT is known
        // and names one.
        let first_pcr_pid = self
            .programs
            .iter()
            .filter_map(|p| p.pmt.as_ref())
            .map(|m| m.pcr_pid)
            .find(|&p| p != NULL_PID);
        if let Some(pid) = first_pcr_pid {
            self.timeline.set_source(pid);
        }
    }

    fn on_sdt(&mut self, section: &Section, pos: u64, index: u64) {
        self.observe(pos, index, Occurrence::Seen(Watch::Sdt));
        match Sdt::parse(section) {
            Ok(sdt) if section.is_current() => {
                push_folded(&mut self.sdt_versions, sdt.version);
                if section.section_number() == Some(0) || self.sdt_services.is_empty() {
                    self.sdt_services = sdt.services;
                } else {
                    self.sdt_services.extend(sdt.services);
                }
            }
            Ok(_) => {}
            Err(_) => self.malformed_sections += 1,
        }
    }

    fn on_eit_pf(&mut self, section: &Section, pos: u64, index: u64) {
        let Ok(eit) = Eit::parse(section) else {
            self.malformed_sections += 1;
            return;
        };
        self.observe(pos, index, Occurrence::Seen(Watch::EitPf(eit.service_id)));
        let cap = self.config.max_stored_items;
        for e in eit.events {
            let key = (
                eit.service_id,
                e.event_id,
                eit.section_number,
                e.name.clone(),
            );
            if self.eit_seen.contains(&key) {
                continue;
            }
            let list = if eit.section_number == 0 {
                &mut self.eit_present
            } else {
                &mut self.eit_following
            };
            if list.len() >= cap {
                continue;
            }
            self.eit_seen.insert(key);
            list.push(EventSeen {
                service_id: eit.service_id,
                event_id: e.event_id,
                start_time_utc: e.start_time_utc,
                duration_secs: e.duration_secs,
                name: e.name,
                text: e.text,
            });
        }
    }
}
