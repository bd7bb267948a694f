//! A synthetic constant-bitrate stream, packet slot by packet slot: every packet starts
//! at exactly `slot * 188 * 8 / rate` seconds and PCRs carry exactly that time.

use std::collections::HashMap;

use crate::ts::packet::{packetize_pes, packetize_section, Pid, TsPacket};
use crate::ts::parser::testkit::*;
use crate::ts::time::{MuxRate, Pcr};

/// 2 Mbit/s: one packet lasts 752 us = 20 304 ticks exactly.
pub(super) const RATE: u64 = 2_000_000;
pub(super) const PMT_PID: u16 = 0x1000;
pub(super) const PCR_PID: u16 = 0x100;
pub(super) const AUDIO_PID: u16 = 0x101;
pub(super) const ID3_PID: u16 = 0x102;
pub(super) const PROGRAM: u16 = 1;
pub(super) const SERVICE_NAME: &str = "Radio Süd";
/// PTS of the audio at stream time 0 (90 kHz).
pub(super) const PTS_BASE: u64 = 900_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Item {
    Pcr,
    Pat,
    Pmt,
    Sdt,
    Eit,
    Audio,
    Id3,
}

pub(super) struct CbrStream {
    rate: MuxRate,
    pub packets: Vec<TsPacket>,
    cc: HashMap<u16, u8>,
    /// Added to every PCR value from now on (27 MHz ticks).
    pub pcr_offset: i64,
    /// Added to every audio PTS (90 kHz).
    pub pts_base: u64,
    pub pmt_version: u8,
    pub pmt_streams: Vec<(u8, u16)>,
}

impl CbrStream {
    pub(super) fn new() -> Self {
        CbrStream {
            rate: MuxRate::new(RATE),
            packets: Vec::new(),
            cc: HashMap::new(),
            pcr_offset: 0,
            pts_base: PTS_BASE,
            pmt_version: 0,
            pmt_streams: vec![(0x0F, AUDIO_PID), (0x15, ID3_PID)],
        }
    }

    /// 27 MHz time of the next packet slot.
    pub(super) fn ticks(&self) -> u64 {
        self.rate.byte_time_27mhz(self.packets.len() as u128 * 188) as u64
    }
    pub(super) fn ms(&self) -> f64 {
        self.ticks() as f64 / 27_000.0
    }
    pub(super) fn pts_now(&self) -> u64 {
        self.ticks() / 300 + self.pts_base
    }
    fn cc(&mut self, pid: u16) -> &mut u8 {
        self.cc.entry(pid).or_insert(0)
    }
    pub(super) fn bytes(&self) -> Vec<u8> {
        stream_bytes(&self.packets)
    }

    pub(super) fn section(&mut self, pid: u16, section: &[u8]) {
        let mut cc = *self.cc(pid);
        self.packets
            .extend(packetize_section(Pid::new(pid), section, &mut cc));
        *self.cc(pid) = cc;
    }
    pub(super) fn pes(&mut self, pid: u16, pes: &[u8]) {
        let mut cc = *self.cc(pid);
        self.packets
            .extend(packetize_pes(Pid::new(pid), pes, &mut cc));
        *self.cc(pid) = cc;
    }
    /// A PCR-only packet (no payload: the CC repeats) carrying the slot's exact time.
    pub(super) fn pcr(&mut self, discontinuity: bool) {
        let value = (self.ticks() as i64 + self.pcr_offset).max(0) as u64;
        self.pcr_value(Pcr::new(value), discontinuity);
    }
    pub(super) fn pcr_value(&mut self, pcr: Pcr, discontinuity: bool) {
        let cc = *self.cc(PCR_PID);
        self.packets.push(TsPacket::pcr_only(
            Pid::new(PCR_PID),
            pcr,
            cc,
            discontinuity,
        ));
    }
    pub(super) fn null(&mut self) {
        self.packets.push(TsPacket::null());
    }

    pub(super) fn send(&mut self, item: Item) {
        match item {
            Item::Pcr => self.pcr(false),
            Item::Pat => self.section(0, &pat_section(1, 0, &[(PROGRAM, PMT_PID)])),
            Item::Pmt => {
                let s = pmt_section(PROGRAM, self.pmt_version, PCR_PID, &self.pmt_streams);
                self.section(PMT_PID, &s);
            }
            Item::Sdt => self.section(
                0x11,
                &sdt_section(1, 2, 0, &[(PROGRAM, 0x02, "headend", SERVICE_NAME)]),
            ),
            Item::Eit => {
                let n = (self.ms() / 4000.0) as u16;
                let start = [0xC0, 0x79, 0x12, 0x45, 0x00];
                let present = format!("Song {n}");
                let following = format!("Song {}", n + 1);
                self.section(
                    0x12,
                    &eit_pf_section(
                        PROGRAM,
                        n as u8,
                        0,
                        Some((n, start, [0, 0x04, 0], &present, "now")),
                    ),
                );
                self.section(
                    0x12,
                    &eit_pf_section(
                        PROGRAM,
                        n as u8,
                        1,
                        Some((n + 1, start, [0, 0x04, 0], &following, "next")),
                    ),
                );
            }
            Item::Audio => {
                let pts = self.pts_now();
                self.pes(AUDIO_PID, &pes_packet(0xC0, Some(pts), None, &[0xAA; 40]));
            }
            Item::Id3 => {
                let n = (self.ms() / 4000.0) as u16;
                let title = format!("Song {n}");
                let tag = id3_v24(&[("TIT2", &title), ("TPE1", "Artist")]);
                let pts = self.pts_now();
                self.pes(ID3_PID, &pes_packet(0xBD, Some(pts), None, &tag));
            }
        }
    }
}

/// Periods of the items of the standard test channel, in ms, in priority order.
pub(super) fn standard_schedule() -> Vec<(Item, f64)> {
    vec![
        (Item::Pcr, 20.0),
        (Item::Pat, 100.0),
        (Item::Pmt, 100.0),
        (Item::Sdt, 1000.0),
        (Item::Eit, 1000.0),
        (Item::Audio, 24.0),
        (Item::Id3, 2000.0),
    ]
}

/// Builds `seconds` of the standard channel. `tweak(stream, item)` runs before each
/// scheduled item and returns whether to send it as usual (it may send something else).
pub(super) fn generate(seconds: f64, tweak: impl FnMut(&mut CbrStream, Item) -> bool) -> CbrStream {
    generate_with(CbrStream::new(), &standard_schedule(), seconds, tweak)
}

pub(super) fn generate_with(
    mut s: CbrStream,
    schedule: &[(Item, f64)],
    seconds: f64,
    mut tweak: impl FnMut(&mut CbrStream, Item) -> bool,
) -> CbrStream {
    let mut next_due: Vec<f64> = vec![0.0; schedule.len()];
    while s.ms() < seconds * 1000.0 {
        let now = s.ms();
        let mut sent = false;
        for (i, &(item, period)) in schedule.iter().enumerate() {
            if now >= next_due[i] {
                next_due[i] += period;
                if tweak(&mut s, item) {
                    s.send(item);
                }
                sent = true;
                break; // one item per slot keeps PCRs on time
            }
        }
        if !sent {
            s.null();
        }
    }
    s
}

/// The standard channel, untouched.
pub(super) fn clean(seconds: f64) -> Vec<u8> {
    generate(seconds, |_, _| true).bytes()
}
