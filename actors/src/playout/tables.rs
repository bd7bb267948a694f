//! The channel's own tables: PAT, PMT, SDT, EIT present/following and the ID3
//! now-playing tag, built from the channel spec and the schedule.
//!
//! Every table here is kept to a fixed number of packets per emission (texts are capped),
//! so the continuity counter of each table PID is a closed-form function of the output
//! packet index. That is what lets a node resume mid-stream with identical counters.

use super::schedule::{ScheduledItem, FAMILIES};
use super::spec::{ChannelSpec, ServiceKind};
use crate::ts::id3::NowPlayingTag;
use crate::ts::packet::{packetize_pes_exact, packetize_section, Pid, TsPacket};
use crate::ts::pes::pes_with_pts;
use crate::ts::psi::{Descriptor, Pat, Pmt, PmtStream};
use crate::ts::si::{self, EitEvent, EitPf, Sdt, SdtService};
use crate::ts::{MuxRate, Pts};

/// Packets per emission, fixed by construction.
pub const PAT_PACKETS: u64 = 1;
pub const PMT_PACKETS: u64 = 1;
pub const SDT_PACKETS: u64 = 1;
pub const EIT_PACKETS: u64 = 2;
pub const ID3_PACKETS: u64 = 2;

/// Text caps that keep SDT and EIT sections in one packet and the ID3 PES in two.
const SERVICE_TEXT_MAX: usize = 64;
const EVENT_NAME_MAX: usize = 80;
const EVENT_TEXT_MAX: usize = 64;

fn cap(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Builds the channel's table packets.
#[derive(Debug, Clone)]
pub struct ChannelTables {
    spec: ChannelSpec,
}

impl ChannelTables {
    pub fn new(spec: ChannelSpec) -> Self {
        ChannelTables { spec }
    }

    pub fn spec(&self) -> &ChannelSpec {
        &self.spec
    }

    fn one_packet(pid: Pid, section: &[u8], cc: u8, what: &str) -> TsPacket {
        let mut cc = cc;
        let mut pkts = packetize_section(pid, section, &mut cc);
        debug_assert_eq!(pkts.len(), 1, "{what} must fit one packet");
        pkts.truncate(1);
        pkts.pop().expect("a section makes at least one packet")
    }

    pub fn pat(&self, cc: u8) -> TsPacket {
        let pat = Pat {
            transport_stream_id: self.spec.transport_stream_id,
            version: 0,
            programs: vec![(self.spec.program_number, self.spec.pids.pmt)],
            network_pid: None,
        };
        Self::one_packet(crate::ts::packet::PAT_PID, &pat.section(), cc, "PAT")
    }

    /// The output PID of a stream slot: the role's base PID plus 0x10 per codec family
    /// (H.264 0x100, MPEG-2 0x110, HEVC 0x120; AAC 0x101, MPEG audio 0x111, AC-3 0x121
    /// with the default PIDs).
    pub fn pid_of_slot(&self, slot: usize) -> Pid {
        let base = if slot < FAMILIES { self.spec.pids.video } else { self.spec.pids.audio };
        Pid::new(base.value() + 0x10 * (slot % FAMILIES) as u16)
    }

    /// PMT for the item on air (no item: only the metadata stream).
    pub fn pmt(&self, on_air: Option<&ScheduledItem>, cc: u8) -> TsPacket {
        let mut streams: Vec<PmtStream> = on_air
            .map(|e| {
                e.facts
                    .streams
                    .iter()
                    .map(|s| PmtStream {
                        stream_type: s.stream_type,
                        pid: self.pid_of_slot(s.slot()),
                        descriptors: s.descriptors.iter().map(|(t, b)| Descriptor::new(*t, b.clone())).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        streams.push(PmtStream {
            stream_type: crate::ts::psi::stream_type::METADATA_PES,
            pid: self.spec.pids.metadata,
            descriptors: vec![Descriptor::id3_metadata()],
        });
        let pmt = Pmt {
            program_number: self.spec.program_number,
            version: on_air.map_or(0, |e| e.pmt_version),
            pcr_pid: self.spec.pids.pcr,
            program_descriptors: vec![Descriptor::id3_metadata_pointer(self.spec.program_number)],
            streams,
        };
        Self::one_packet(self.spec.pids.pmt, &pmt.section(), cc, "PMT")
    }

    pub fn sdt(&self, cc: u8) -> TsPacket {
        let sdt = Sdt {
            transport_stream_id: self.spec.transport_stream_id,
            original_network_id: self.spec.original_network_id,
            version: 0,
            services: vec![SdtService {
                service_id: self.spec.program_number,
                eit_present_following: true,
                running_status: si::RUNNING,
                service_type: match self.spec.service_kind {
                    ServiceKind::Tv => si::service_type::DIGITAL_TV,
                    ServiceKind::Radio => si::service_type::DIGITAL_RADIO,
                },
                provider: cap(&self.spec.provider, SERVICE_TEXT_MAX),
                name: cap(&self.spec.service_name, SERVICE_TEXT_MAX),
            }],
        };
        Self::one_packet(crate::ts::packet::SDT_PID, &sdt.section(), cc, "SDT")
    }

    fn event(entry: &ScheduledItem, epoch_unix_ns: u64, rate: MuxRate, running: u8) -> EitEvent {
        let start_ns = epoch_unix_ns + rate.packet_offset_ns(entry.presentation_packet(rate)) as u64;
        let meta = &entry.facts.meta;
        let text = if meta.album.is_empty() { meta.artist.clone() } else { format!("{} - {}", meta.artist, meta.album) };
        EitEvent {
            event_id: (entry.index % 0xFFFF) as u16 + 1,
            start_unix: start_ns / 1_000_000_000,
            duration_secs: entry.facts.presentation_90k().div_ceil(90_000) as u32,
            running_status: running,
            name: cap(&meta.title, EVENT_NAME_MAX),
            text: cap(&text, EVENT_TEXT_MAX),
        }
    }

    /// EIT present/following (two packets: section 0 and section 1). Its version follows
    /// the entry on air, so it changes exactly when the programme does.
    pub fn eit(
        &self,
        present: Option<&ScheduledItem>,
        following: Option<&ScheduledItem>,
        epoch_unix_ns: u64,
        rate: MuxRate,
        cc: u8,
    ) -> [TsPacket; 2] {
        let eit = EitPf {
            service_id: self.spec.program_number,
            transport_stream_id: self.spec.transport_stream_id,
            original_network_id: self.spec.original_network_id,
            version: present.map_or(0, |e| (e.index % 32) as u8),
            present: present.map(|e| Self::event(e, epoch_unix_ns, rate, si::RUNNING)),
            following: following.map(|e| Self::event(e, epoch_unix_ns, rate, si::NOT_RUNNING)),
        };
        let [p, f] = eit.sections();
        [
            Self::one_packet(crate::ts::packet::EIT_PID, &p, cc, "EIT present"),
            Self::one_packet(crate::ts::packet::EIT_PID, &f, (cc + 1) & 0x0F, "EIT following"),
        ]
    }

    /// The now-playing tag of an entry, capped so its PES fits in two packets.
    pub fn now_playing_tag(entry: &ScheduledItem) -> NowPlayingTag {
        let m = &entry.facts.meta;
        NowPlayingTag {
            title: cap(&m.title, 80),
            artist: cap(&m.artist, 64),
            album: cap(&m.album, 48),
            genre: cap(&m.genre, 24),
            media_id: cap(&m.media_id, 32),
        }
    }

    /// The ID3 timed-metadata PES for `entry` at `pts`, as exactly two packets.
    pub fn id3(&self, entry: Option<&ScheduledItem>, pts: Pts, cc: u8) -> Vec<TsPacket> {
        let tag = entry.map(Self::now_playing_tag).unwrap_or_else(|| NowPlayingTag {
            title: cap(&self.spec.name, 80),
            ..Default::default()
        });
        let pes = pes_with_pts(0xBD, pts, &tag.to_id3());
        let mut cc = cc;
        packetize_pes_exact(self.spec.pids.metadata, &pes, ID3_PACKETS as usize, &mut cc)
            .expect("capped ID3 tag fits two packets")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playout::schedule::{EntryKind, ItemFacts, ItemMeta};
    use crate::playout::spec::*;
    use crate::ts::crc::crc32_mpeg2;
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    pub(crate) fn spec() -> ChannelSpec {
        ChannelSpec {
            id: "rock".into(),
            name: "Rock".into(),
            service_name: "Rock TV".into(),
            provider: "headend".into(),
            service_kind: ServiceKind::Tv,
            program_number: 1,
            transport_stream_id: 1,
            original_network_id: 1,
            mux_rate: MuxRate::new(4_000_000),
            pids: ChannelPids::default(),
            output: MulticastOutput {
                group: Ipv4Addr::new(239, 255, 0, 1),
                port: 5000,
                interface: Ipv4Addr::LOCALHOST,
                ttl: 1,
                loopback: true,
                rtp: false,
                source: None,
                hitless_group: None,
            },
            playlist: PlaylistSource::Items(vec![]),
            order: PlayOrder::Sequential,
            fallback: None,
        }
    }

    fn entry(title: &str) -> ScheduledItem {
        ScheduledItem {
            index: 3,
            kind: EntryKind::Item,
            facts: ItemFacts {
                path: PathBuf::from("x.ts"),
                content_id: 0,
                meta: ItemMeta {
                    media_id: "m".repeat(100),
                    title: title.into(),
                    artist: "ä".repeat(100),
                    album: "b".repeat(100),
                    genre: "g".repeat(100),
                },
                streams: vec![],
                lead_90k: 0,
                end_90k: 90_000,
                span_packets: 1,
                added_delay_90k: 0,
                payload_packets: [0, 0],
            },
            start_packet: 0,
            cc_base: [0; crate::playout::schedule::SLOTS],
            pmt_version: 0,
            transmission_end: 1,
        }
    }

    #[test]
    fn long_texts_still_fit_fixed_packet_counts() {
        let t = ChannelTables::new(ChannelSpec { service_name: "S".repeat(300), provider: "P".repeat(300), ..spec() });
        let e = entry(&"Ö".repeat(300));
        let sdt = t.sdt(0);
        let section_len = (((sdt.payload()[2] & 0x0F) as usize) << 8) | sdt.payload()[3] as usize;
        assert_eq!(crc32_mpeg2(&sdt.payload()[1..4 + section_len]), 0);
        let [p, f] = t.eit(Some(&e), Some(&e), 0, MuxRate::new(4_000_000), 15);
        assert_eq!((p.cc(), f.cc()), (15, 0));
        for pkt in [&p, &f] {
            let len = (((pkt.payload()[2] & 0x0F) as usize) << 8) | pkt.payload()[3] as usize;
            assert_eq!(crc32_mpeg2(&pkt.payload()[1..4 + len]), 0, "EIT section complete in one packet");
        }
        let id3 = t.id3(Some(&e), Pts::new(0), 0);
        assert_eq!(id3.len(), 2);
    }
}
