//! The channel multiplexer: output packet `k` as a pure function of the schedule.
//!
//! Slot rule, in order of priority, for output packet `k`:
//! 1. `k % pcr_every == 0`: a PCR-only packet on the PCR PID, PCR exact for its byte
//!    position.
//! 2. Table cadence enqueues PAT+PMT (`k % psi_every == 1`), SDT+EIT p/f
//!    (`k % si_every == 3`), the ID3 now-playing tag (`k % id3_every == 5`, and at every
//!    item's start packet); queued table packets go first.
//! 3. The next content packet of the item on air, once its due slot has come (its time
//!    in the item, from the item's own PCRs, mapped onto the output timeline).
//! 4. A null packet.
//!
//! Content packets get the channel's PIDs, continuity counters continued from the
//! schedule's bases, their own PCRs removed (the channel's clock is on its PCR PID) and
//! PTS/DTS moved onto the output timeline. Table continuity counters are closed-form in `k` (every emission has
//! a fixed packet count), so [`ChannelMux::resume`] rebuilds the exact state at any `k`
//! by replaying from the start of the item before.

use super::reader::{ItemPacket, ItemReader};
use super::schedule::{Schedule, ScheduledItem, SLOTS};
use super::tables::{self, ChannelTables};
use super::spec::ChannelSpec;
use crate::ts::pes::{find_timestamps, read_timestamp, write_timestamp};
use crate::ts::time::PTS_WRAP;
use crate::ts::{MuxRate, Pts, TsPacket};
use std::collections::VecDeque;

/// Table and PCR repetition, in packets at the channel's mux rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub pcr_every: u64,
    pub psi_every: u64,
    pub si_every: u64,
    pub id3_every: u64,
}

impl Cadence {
    /// PCR every 30 ms, PAT/PMT every 80 ms, SDT/EIT every second, ID3 every 5 s.
    pub fn for_rate(rate: MuxRate) -> Self {
        Cadence {
            pcr_every: rate.packets_in_ms(30).max(8),
            psi_every: rate.packets_in_ms(80).max(16),
            si_every: rate.packets_in_ms(1000).max(32),
            id3_every: rate.packets_in_ms(5000).max(64),
        }
    }
}

/// Number of `j` in `[0, k)` with `j % n == r` (for `r < n`).
fn hits_before(k: u64, n: u64, r: u64) -> u64 {
    (k + n - 1 - r) / n
}

/// More packets than the table queue can ever hold (PAT, PMT, SDT, 2 EIT, 2 x 2 ID3).
const TABLE_BACKLOG_PACKETS: u64 = 64;

const PSI_PHASE: u64 = 1;
const SI_PHASE: u64 = 3;
const ID3_PHASE: u64 = 5;

/// Something worth telling the channel actor about, drained by the pacer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxEvent {
    /// The entry with this global index went on air at packet `k`.
    ItemOnAir { index: u64, k: u64 },
    /// The previous item still had packets when the next one started; they were dropped.
    /// The schedule's measured transmission end makes this a bug report, not a plan.
    TailCut { index: u64, k: u64 },
    /// An entry could not be played; the stream carried on without it.
    ItemFailed { index: u64, path: String, reason: String },
}

struct ActiveItem {
    index: u64,
    reader: ItemReader,
    start_packet: u64,
    /// 90 kHz offset from the item's clock to the output clock, modulo 2^33.
    pts_delta: i64,
    lookahead: Option<(u64, ItemPacket)>,
}

/// Per-PID continuity counters of the channel's own tables.
#[derive(Debug, Clone, Copy, Default)]
struct TableCounters {
    pat: u8,
    pmt: u8,
    sdt: u8,
    eit: u8,
    id3: u8,
}

/// Produces a channel's output packets one by one.
pub struct ChannelMux {
    tables: ChannelTables,
    schedule: Schedule,
    cadence: Cadence,
    k: u64,
    queue: VecDeque<TsPacket>,
    cc: TableCounters,
    content_cc: [u8; SLOTS],
    /// Global index of the last entry whose content was taken up (played or failed).
    last_taken: Option<u64>,
    active: Option<ActiveItem>,
    events: Vec<MuxEvent>,
}

impl std::fmt::Debug for ChannelMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelMux").field("k", &self.k).field("active", &self.active.as_ref().map(|a| a.index)).finish()
    }
}

impl ChannelMux {
    /// A mux whose next packet is packet `k` of the schedule, in exactly the state it
    /// would have had playing from the epoch.
    ///
    /// Every item starts after the previous item's last packet (see
    /// [`transmission_end`]), so at an item's start packet the only state is the table
    /// queue, which does not depend on content: replaying from a little before the start
    /// of the item on air (or before `k` when nothing is on air) rebuilds it exactly.
    pub fn resume(spec: ChannelSpec, schedule: Schedule, k: u64) -> Self {
        let cadence = Cadence::for_rate(schedule.mux_rate);
        let pos = schedule.position_at(k);
        let anchor = pos.map_or(k, |p| schedule.entries[p].start_packet);
        let k0 = anchor.saturating_sub(TABLE_BACKLOG_PACKETS);
        let next = pos.map_or(0, |p| p);
        let mut mux = ChannelMux {
            tables: ChannelTables::new(spec),
            cadence,
            k: k0,
            queue: VecDeque::new(),
            cc: Self::table_counters_at(&schedule, cadence, k0),
            content_cc: schedule.entries.get(next).map_or([0; SLOTS], |e| e.cc_base),
            last_taken: schedule.entries.get(next).and_then(|e| e.index.checked_sub(1)),
            active: None,
            events: Vec::new(),
            schedule,
        };
        while mux.k < k {
            mux.next_packet();
        }
        mux.events.clear();
        mux
    }

    fn table_counters_at(schedule: &Schedule, c: Cadence, k: u64) -> TableCounters {
        let psi = hits_before(k, c.psi_every, PSI_PHASE);
        let si = hits_before(k, c.si_every, SI_PHASE);
        // Item starts strictly before k, counted by global entry index.
        let starts = match k.checked_sub(1).and_then(|k1| schedule.position_at(k1)) {
            Some(p) => schedule.entries[p].index + 1,
            None => schedule.entries.first().map_or(0, |e| e.index),
        };
        let id3 = hits_before(k, c.id3_every, ID3_PHASE) + starts;
        let m = |n: u64| (n % 16) as u8;
        TableCounters {
            pat: m(psi * tables::PAT_PACKETS),
            pmt: m(psi * tables::PMT_PACKETS),
            sdt: m(si * tables::SDT_PACKETS),
            eit: m(si * tables::EIT_PACKETS),
            id3: m(id3 * tables::ID3_PACKETS),
        }
    }

    /// Index of the next packet `next_packet` will return.
    pub fn position(&self) -> u64 {
        self.k
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Takes a newer version of the schedule (extended, or with future entries
    /// replaced). Entries already taken up keep playing.
    pub fn update_schedule(&mut self, schedule: Schedule) {
        debug_assert_eq!(schedule.epoch_unix_ns, self.schedule.epoch_unix_ns);
        debug_assert_eq!(schedule.mux_rate, self.schedule.mux_rate);
        self.schedule = schedule;
    }

    /// Events since the last call.
    pub fn drain_events(&mut self) -> Vec<MuxEvent> {
        std::mem::take(&mut self.events)
    }

    fn entry_by_index(&self, index: u64) -> Option<&ScheduledItem> {
        let first = self.schedule.entries.first()?.index;
        self.schedule.entries.get(index.checked_sub(first)? as usize)
    }

    fn on_air(&self, k: u64) -> (Option<&ScheduledItem>, Option<&ScheduledItem>) {
        match self.schedule.position_at(k) {
            Some(p) => (self.schedule.entries.get(p), self.schedule.entries.get(p + 1)),
            None => (None, self.schedule.entries.first()),
        }
    }

    /// Output packet `self.position()`; advances by one.
    pub fn next_packet(&mut self) -> TsPacket {
        let k = self.k;
        self.k += 1;
        let rate = self.schedule.mux_rate;
        let c = self.cadence;
        self.enqueue_tables(k);
        if k.is_multiple_of(c.pcr_every) {
            return TsPacket::pcr_only(self.tables.spec().pids.pcr, rate.pcr_of_packet(k), 0, false);
        }
        if let Some(p) = self.queue.pop_front() {
            return p;
        }
        self.next_content(k).unwrap_or_else(TsPacket::null)
    }

    fn enqueue_tables(&mut self, k: u64) {
        let c = self.cadence;
        let rate = self.schedule.mux_rate;
        if k % c.psi_every == PSI_PHASE {
            let pat = self.tables.pat(self.cc.pat);
            let pmt = self.tables.pmt(self.on_air(k).0, self.cc.pmt);
            self.cc.pat = (self.cc.pat + 1) & 0x0F;
            self.cc.pmt = (self.cc.pmt + 1) & 0x0F;
            self.queue.extend([pat, pmt]);
        }
        if k % c.si_every == SI_PHASE {
            let sdt = self.tables.sdt(self.cc.sdt);
            let (present, following) = self.on_air(k);
            let eit = self.tables.eit(present, following, self.schedule.epoch_unix_ns, rate, self.cc.eit);
            self.cc.sdt = (self.cc.sdt + 1) & 0x0F;
            self.cc.eit = (self.cc.eit + 2) & 0x0F;
            self.queue.push_back(sdt);
            self.queue.extend(eit);
        }
        let present = self.on_air(k).0;
        let item_start = present.is_some_and(|e| e.start_packet == k);
        if item_start || k % c.id3_every == ID3_PHASE {
            // At an item's start the tag carries its first presentation time; repeats
            // carry the time now on screen.
            let pts = match present {
                Some(e) if item_start => rate.packet_time_90k(e.start_packet) + e.facts.lead_90k,
                Some(e) => rate.packet_time_90k(k) + e.facts.lead_90k,
                None => rate.packet_time_90k(k),
            };
            let pkts = self.tables.id3(present, Pts::new(pts), self.cc.id3);
            self.cc.id3 = (self.cc.id3 + tables::ID3_PACKETS as u8) & 0x0F;
            self.queue.extend(pkts);
        }
    }

    /// Takes up the next entry whose start has come; failed entries are reported and
    /// passed over.
    fn take_up_next(&mut self, k: u64) -> bool {
        loop {
            let next_index = self.last_taken.map_or(0, |i| i + 1);
            let first = self.schedule.entries.first().map(|e| e.index);
            let next_index = first.map_or(next_index, |f| next_index.max(f));
            let Some(entry) = self.entry_by_index(next_index).cloned() else { return false };
            if entry.start_packet > k {
                return false;
            }
            if let Some(old) = self.active.take() {
                self.events.push(MuxEvent::TailCut { index: old.index, k });
            }
            self.last_taken = Some(entry.index);
            self.content_cc = entry.cc_base;
            match ItemReader::open(&entry.facts) {
                Ok(reader) => {
                    let origin = reader.origin().base() as i128;
                    let output_start = self.schedule.mux_rate.packet_time_90k(entry.start_packet) + entry.facts.added_delay_90k;
                    let delta = (output_start as i128 - origin).rem_euclid(PTS_WRAP as i128) as i64;
                    self.events.push(MuxEvent::ItemOnAir { index: entry.index, k });
                    self.active = Some(ActiveItem {
                        index: entry.index,
                        reader,
                        start_packet: entry.start_packet,
                        pts_delta: delta,
                        lookahead: None,
                    });
                    return true;
                }
                Err(e) => self.events.push(MuxEvent::ItemFailed {
                    index: entry.index,
                    path: entry.facts.path.display().to_string(),
                    reason: e.to_string(),
                }),
            }
        }
    }

    fn next_entry_due(&self, k: u64) -> bool {
        let next = self.last_taken.map_or(0, |i| i + 1);
        let next = self.schedule.entries.first().map_or(next, |f| next.max(f.index));
        self.entry_by_index(next).is_some_and(|e| e.start_packet <= k)
    }

    fn next_content(&mut self, k: u64) -> Option<TsPacket> {
        loop {
            if (self.active.is_none() || self.next_entry_due(k)) && !self.take_up_next(k) && self.active.is_none() {
                return None;
            }
            let rate = self.schedule.mux_rate;
            let active = self.active.as_mut().expect("taken up");
            if active.lookahead.is_none() {
                match active.reader.next_packet() {
                    Ok(Some(p)) => {
                        let due = active.start_packet + rate.packets_for_27m(p.due_27m);
                        active.lookahead = Some((due, p));
                    }
                    Ok(None) => {
                        self.active = None;
                        continue;
                    }
                    Err(e) => {
                        let index = active.index;
                        let path = active.reader.path().display().to_string();
                        self.events.push(MuxEvent::ItemFailed { index, path, reason: e.to_string() });
                        self.active = None;
                        continue;
                    }
                }
            }
            let (due, _) = active.lookahead.as_ref().expect("filled");
            if *due > k {
                return None;
            }
            let (_, item_packet) = active.lookahead.take().expect("filled");
            let delta = active.pts_delta;
            return Some(self.finish_content(item_packet, delta));
        }
    }

    fn finish_content(&mut self, p: ItemPacket, pts_delta: i64) -> TsPacket {
        let mut pkt = p.packet;
        pkt.set_pid(self.tables.pid_of_slot(p.slot));
        let cc = &mut self.content_cc[p.slot];
        if pkt.has_payload() {
            pkt.set_cc(*cc);
            *cc = (*cc + 1) & 0x0F;
        } else {
            pkt.set_cc(cc.wrapping_sub(1) & 0x0F);
        }
        // The channel's PCR runs on its own PID; the item's PCRs would be a second,
        // sparser clock on a content PID.
        pkt.strip_pcr();
        if pkt.pusi() {
            let payload = pkt.payload_mut();
            if let Some(ts) = find_timestamps(payload) {
                for at in [ts.pts_at, ts.dts_at].into_iter().flatten() {
                    let old = read_timestamp(&payload[at..at + 5]);
                    write_timestamp(&mut payload[at..at + 5], old.offset(pts_delta));
                }
            }
        }
        pkt
    }
}

/// Runs the mux over the entry at `pos` alone, from its start packet, and returns the
/// output packet after its last content packet. Blocking (reads the item).
pub fn transmission_end(spec: &ChannelSpec, schedule: &Schedule, pos: usize) -> Result<u64, String> {
    let entry = schedule.entries[pos].clone();
    let index = entry.index;
    let single = Schedule { entries: vec![entry.clone()], ..schedule.clone() };
    let mut mux = ChannelMux::resume(spec.clone(), single, entry.start_packet);
    loop {
        mux.next_packet();
        for e in mux.drain_events() {
            if let MuxEvent::ItemFailed { reason, .. } = e {
                return Err(reason);
            }
        }
        if mux.last_taken == Some(index) && mux.active.is_none() {
            return Ok(mux.k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_before_counts_phase_matches() {
        for (n, r) in [(7u64, 1u64), (10, 3), (1000, 5)] {
            for k in 0..3 * n {
                let brute = (0..k).filter(|j| j % n == r).count() as u64;
                assert_eq!(hits_before(k, n, r), brute, "k {k} n {n} r {r}");
            }
        }
    }

    #[test]
    fn cadence_meets_repetition_limits() {
        for bps in [500_000u64, 3_000_000, 4_000_000, 20_000_000, 80_000_000] {
            let r = MuxRate::new(bps);
            let c = Cadence::for_rate(r);
            let ms = |pkts: u64| pkts as f64 * 188.0 * 8.0 / bps as f64 * 1000.0;
            assert!(ms(c.pcr_every) <= 40.0, "{bps}: PCR {}", ms(c.pcr_every));
            assert!(ms(c.psi_every) <= 100.0, "{bps}: PSI {}", ms(c.psi_every));
            assert!(ms(c.si_every) <= 2000.0);
            assert!(ms(c.id3_every) <= 10_000.0);
        }
    }
}
