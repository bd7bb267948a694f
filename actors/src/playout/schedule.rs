//! The schedule: the pure description from which a channel's output is computed.
//!
//! A schedule is the channel epoch (wall-clock time of output packet 0), the mux rate and
//! the ordered items with the output packet each one starts at. Everything else a packet
//! needs (continuity counter bases, PMT versions, EIT versions) is derived here when an
//! item is appended, so any node holding the same schedule computes the same packets.

use crate::ts::MuxRate;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::spec::PlayOrder;

/// Role of an elementary stream in the channel's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StreamRole {
    Video,
    Audio,
}

impl StreamRole {
    pub const ALL: [StreamRole; 2] = [StreamRole::Video, StreamRole::Audio];
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One elementary stream an item contributes to the channel's service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFacts {
    pub role: StreamRole,
    pub stream_type: u8,
    /// ES descriptors copied from the item's PMT as (tag, body): language, AC-3, ...
    pub descriptors: Vec<(u8, Vec<u8>)>,
}

impl StreamFacts {
    /// Codec family within the role: 0 = H.264 / AAC, 1 = MPEG-2 video / MPEG audio,
    /// 2 = HEVC / AC-3 and E-AC-3.
    pub fn family(&self) -> usize {
        match (self.role, self.stream_type) {
            (StreamRole::Video, 0x01 | 0x02) => 1,
            (StreamRole::Video, 0x24) => 2,
            (StreamRole::Video, _) => 0,
            (StreamRole::Audio, 0x03 | 0x04) => 1,
            (StreamRole::Audio, 0x0F | 0x11) => 0,
            (StreamRole::Audio, _) => 2,
        }
    }
    /// Output stream slot: one per (role, codec family), each with its own stable PID
    /// and continuity counter, so a receiver never sees a codec change on a PID.
    pub fn slot(&self) -> usize {
        self.role.index() * FAMILIES + self.family()
    }
}

/// Codec families per role.
pub const FAMILIES: usize = 3;
/// Output stream slots (roles x families).
pub const SLOTS: usize = 2 * FAMILIES;

/// Now-playing metadata of an item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemMeta {
    pub media_id: String,
    pub title: String,
    pub artist: String,
    #[serde(default)]
    pub album: String,
    #[serde(default)]
    pub genre: String,
}

/// What the schedule needs to know about an item, measured by probing it at the channel's
/// mux rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFacts {
    pub path: PathBuf,
    /// Identity of the bytes (CRC-64 of the file), so a changed file is a different item.
    pub content_id: u64,
    pub meta: ItemMeta,
    /// The kept elementary streams, in PMT order.
    pub streams: Vec<StreamFacts>,
    /// 90 kHz from the item's time origin (first PCR) to its first presentation on the
    /// output, including `added_delay_90k`.
    pub lead_90k: u64,
    /// 90 kHz from the time origin to the end of the last frame of any stream on the
    /// output, including `added_delay_90k`.
    pub end_90k: u64,
    /// Presentation delay added on the output so the item's bursts, queued at the
    /// channel's mux rate, still reach the decoder in time.
    pub added_delay_90k: u64,
    /// Estimated output packets from the item's start to its last packet at this mux
    /// rate, including queueing behind PSI/SI (the exact figure is measured when the
    /// item is placed: [`ScheduledItem::transmission_end`]).
    pub span_packets: u64,
    /// Payload-carrying packets per role (for continuity counters).
    pub payload_packets: [u64; 2],
}

impl ItemFacts {
    pub fn presentation_90k(&self) -> u64 {
        self.end_90k.saturating_sub(self.lead_90k)
    }
}

/// Whether an entry is regular programme, the configured fallback, or a generated slate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    Item,
    Fallback,
    Slate,
    /// A segment of a peer's recording of the channel (content failed).
    Recording,
}

/// One item placed on the output timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledItem {
    /// Global, ever-increasing entry number (EIT event ids and versions derive from it).
    pub index: u64,
    pub kind: EntryKind,
    pub facts: ItemFacts,
    /// Output packet at which the item's time origin lies.
    pub start_packet: u64,
    /// Continuity counter of the first payload packet per output stream slot.
    pub cc_base: [u8; SLOTS],
    pub pmt_version: u8,
    /// Output packet after the item's last content packet, measured by running the mux
    /// over the item from its start. The next item starts after it, so every item start
    /// is a point where the mux holds no content backlog (what makes resuming exact).
    pub transmission_end: u64,
}

impl ScheduledItem {
    /// Output packet at which the item's presentation ends.
    pub fn end_packet(&self, rate: MuxRate) -> u64 {
        self.start_packet + rate.packets_for_90k(self.facts.end_90k)
    }
    /// Output packet at which the item's first frame is presented.
    pub fn presentation_packet(&self, rate: MuxRate) -> u64 {
        self.start_packet + rate.packets_for_90k(self.facts.lead_90k)
    }
}

/// Where the playlist cursor stands: which pass and which position in that pass's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistCursor {
    pub pass: u64,
    pub position: usize,
}

/// The order of one pass through a playlist of `len` items.
pub fn pass_order(len: usize, pass: u64, order: PlayOrder) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..len).collect();
    if let PlayOrder::Shuffle { seed } = order {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ pass.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        idx.shuffle(&mut rng);
    }
    idx
}

/// A channel's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Wall-clock time of output packet 0, nanoseconds since the Unix epoch.
    pub epoch_unix_ns: u64,
    pub mux_rate: MuxRate,
    pub entries: Vec<ScheduledItem>,
    pub cursor: PlaylistCursor,
}

impl Schedule {
    pub fn new(epoch_unix_ns: u64, mux_rate: MuxRate) -> Self {
        Schedule { epoch_unix_ns, mux_rate, entries: Vec::new(), cursor: PlaylistCursor::default() }
    }

    /// Output packet due at `unix_ns` (the first packet starting at or after it).
    pub fn packet_at_unix_ns(&self, unix_ns: u64) -> u64 {
        self.mux_rate.packet_at_ns(unix_ns.saturating_sub(self.epoch_unix_ns) as u128)
    }

    /// Wall-clock time at which packet `k` is due.
    pub fn unix_ns_of_packet(&self, k: u64) -> u64 {
        self.epoch_unix_ns + self.mux_rate.packet_offset_ns(k) as u64
    }

    /// Where the next appended item would start if nothing forced it later: where the
    /// previous item's presentation ends (minus this item's lead), and never before the
    /// previous item's last packet has left.
    fn natural_next_start(&self, next: &ItemFacts) -> u64 {
        let Some(prev) = self.entries.last() else { return 0 };
        let contiguous =
            prev.start_packet + self.mux_rate.packets_for_90k(prev.facts.end_90k.saturating_sub(next.lead_90k));
        contiguous.max(prev.transmission_end)
    }

    /// Appends an item, starting no earlier than `not_before` (used after a gap, e.g. a
    /// node that was down). Its `transmission_end` is first set from the estimated span;
    /// the caller measures and sets the exact value (see `mux::transmission_end`) before
    /// appending the next item.
    pub fn append(&mut self, kind: EntryKind, facts: ItemFacts, not_before: u64) -> &mut ScheduledItem {
        let start_packet = self.natural_next_start(&facts).max(not_before);
        let (index, cc_base, pmt_version) = match self.entries.last() {
            None => (0, [0; SLOTS], 0),
            Some(prev) => {
                let mut cc = prev.cc_base;
                for st in &prev.facts.streams {
                    let n = prev.facts.payload_packets[st.role.index()];
                    cc[st.slot()] = ((cc[st.slot()] as u64 + n) % 16) as u8;
                }
                let version = if prev.facts.streams == facts.streams { prev.pmt_version } else { (prev.pmt_version + 1) % 32 };
                (prev.index + 1, cc, version)
            }
        };
        let transmission_end = start_packet + facts.span_packets;
        self.entries.push(ScheduledItem { index, kind, facts, start_packet, cc_base, pmt_version, transmission_end });
        self.entries.last_mut().expect("just pushed")
    }

    /// Position of the entry on air at packet `k` (the last one starting at or before k).
    pub fn position_at(&self, k: u64) -> Option<usize> {
        let n = self.entries.partition_point(|e| e.start_packet <= k);
        n.checked_sub(1)
    }

    /// Output packet where the schedule's last item ends (0 when empty).
    pub fn end_packet(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.end_packet(self.mux_rate).max(e.transmission_end))
    }

    /// Drops entries after position `keep_through` (playlist changed; they had not started).
    pub fn truncate_after(&mut self, keep_through: usize) {
        self.entries.truncate(keep_through + 1);
    }

    /// Drops entries that ended before the one on air at `k`, keeping one more for the
    /// play-order listing.
    pub fn prune_before(&mut self, k: u64) {
        if let Some(pos) = self.position_at(k) {
            let drop = pos.saturating_sub(1);
            self.entries.drain(..drop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::psi::stream_type;

    fn facts(name: &str, lead: u64, end: u64, span: u64, streams: Vec<StreamFacts>) -> ItemFacts {
        ItemFacts {
            path: PathBuf::from(name),
            content_id: 1,
            meta: ItemMeta { title: name.into(), ..Default::default() },
            streams,
            lead_90k: lead,
            end_90k: end,
            span_packets: span,
            added_delay_90k: 0,
            payload_packets: [100, 17],
        }
    }

    fn stream(role: StreamRole, stream_type: u8) -> StreamFacts {
        StreamFacts { role, stream_type, descriptors: vec![] }
    }

    fn av() -> Vec<StreamFacts> {
        vec![stream(StreamRole::Video, stream_type::H264), stream(StreamRole::Audio, stream_type::AAC_ADTS)]
    }

    #[test]
    fn items_join_where_presentation_ends() {
        let rate = MuxRate::new(4_000_000);
        let mut s = Schedule::new(1_000, rate);
        // 10 s items with a 0.5 s lead; their last packet leaves 0.6 s before their end.
        let a = facts("a", 45_000, 945_000, rate.packets_for_90k(945_000 - 54_000), av());
        s.append(EntryKind::Item, a.clone(), 0);
        let b = s.append(EntryKind::Item, a.clone(), 0).clone();
        // b's first frame is presented exactly where a's presentation ends.
        assert_eq!(b.start_packet, rate.packets_for_90k(945_000 - 45_000));
        assert_eq!(b.index, 1);
        assert_eq!(b.cc_base, [(100 % 16) as u8, 0, 0, 1, 0, 0], "H.264 slot 0, AAC slot 3");
        assert_eq!(b.pmt_version, 0);
        assert_eq!(s.position_at(b.start_packet - 1), Some(0));
        assert_eq!(s.position_at(b.start_packet), Some(1));
        assert_eq!(Schedule::new(0, rate).position_at(5), None);
    }

    #[test]
    fn pmt_version_changes_only_with_stream_set() {
        let rate = MuxRate::new(4_000_000);
        let mut s = Schedule::new(0, rate);
        s.append(EntryKind::Item, facts("a", 0, 90_000, 100, av()), 0);
        s.append(EntryKind::Item, facts("b", 0, 90_000, 100, av()), 0);
        let audio_only = vec![stream(StreamRole::Audio, stream_type::MPEG1_AUDIO)];
        s.append(EntryKind::Item, facts("c", 0, 90_000, 100, audio_only), 0);
        s.append(EntryKind::Item, facts("d", 0, 90_000, 100, av()), 0);
        let v: Vec<u8> = s.entries.iter().map(|e| e.pmt_version).collect();
        assert_eq!(v, [0, 0, 1, 2]);
    }

    #[test]
    fn the_next_item_waits_for_the_previous_items_last_packet() {
        let rate = MuxRate::new(4_000_000);
        let mut s = Schedule::new(0, rate);
        let first = s.append(EntryKind::Item, facts("a", 45_000, 90_000 * 10, 10, av()), 0);
        // Measured: the last packet leaves 1 s after the presentation ends.
        first.transmission_end = rate.packets_for_90k(90_000 * 11);
        let b = s.append(EntryKind::Item, facts("b", 45_000, 90_000 * 10, 10, av()), 0).clone();
        assert_eq!(b.start_packet, rate.packets_for_90k(90_000 * 11));
        let c = s.append(EntryKind::Item, facts("c", 45_000, 90_000, 10, av()), 50_000_000).clone();
        assert_eq!(c.start_packet, 50_000_000, "not_before wins");
    }

    #[test]
    fn wall_clock_mapping_roundtrips() {
        let s = Schedule::new(1_700_000_000_000_000_000, MuxRate::new(3_000_000));
        let k = s.packet_at_unix_ns(1_700_000_003_000_000_000);
        assert!(s.unix_ns_of_packet(k) >= 1_700_000_003_000_000_000);
        assert!(s.unix_ns_of_packet(k - 1) < 1_700_000_003_000_000_000);
        assert_eq!(s.packet_at_unix_ns(0), 0, "before the epoch");
    }

    #[test]
    fn prune_keeps_previous_entry() {
        let rate = MuxRate::new(4_000_000);
        let mut s = Schedule::new(0, rate);
        for n in 0..5 {
            s.append(EntryKind::Item, facts(&n.to_string(), 0, 90_000, 10, av()), 0);
        }
        let k = s.entries[3].start_packet + 1;
        s.prune_before(k);
        assert_eq!(s.entries.first().unwrap().index, 2);
        assert_eq!(s.position_at(k).map(|p| s.entries[p].index), Some(3));
    }

    #[test]
    fn shuffle_is_reproducible_and_differs_per_pass() {
        let o = PlayOrder::Shuffle { seed: 42 };
        let a = pass_order(20, 0, o);
        assert_eq!(a, pass_order(20, 0, o));
        assert_ne!(a, pass_order(20, 1, o));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_eq!(pass_order(3, 7, PlayOrder::Sequential), vec![0, 1, 2]);
    }
}
