//! Stream time and the cadence checks that use it.
//!
//! A packet's time is interpolated between the PCRs of the timebase PID (the first
//! program's PCR PID) by byte position, i.e. at the transport rate measured between
//! those PCRs. Since the time of a packet is only known once the next PCR has arrived,
//! occurrences (a PAT, a PTS, ...) wait in a queue until then. Packets before the first
//! PCR have no time: their occurrences are dropped, never judged.

use std::collections::VecDeque;

use crate::ts::packet::Pid;

/// 27 MHz ticks of continuous stream time since the first timebase PCR.
pub(super) type Ticks = u64;

/// Something expected to recur.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Watch {
    /// PAT sections on PID 0 (1.3).
    Pat,
    /// PMT sections on a PMT PID (1.5).
    Pmt(Pid),
    /// Any packet on a PID a PMT refers to (1.6).
    Presence(Pid),
    /// PES packets with a PTS on a PID (2.5).
    Pts(Pid),
    /// SDT actual sections (statistics only).
    Sdt,
    /// EIT p/f actual sections of one service (statistics only).
    EitPf(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Occurrence {
    /// The watched thing happened.
    Seen(Watch),
    /// Start expecting it from now (baseline) if it has not been seen yet.
    Arm(Watch),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    pub pos: u64,
    pub packet_index: u64,
    pub occurrence: Occurrence,
}

/// The stretch of stream between two anchors: byte positions and their times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Segment {
    pub from: (u64, Ticks),
    pub to: (u64, Ticks),
}

impl Segment {
    /// Time of byte `pos`, interpolated (clamped to the segment).
    pub(super) fn time_at(&self, pos: u64) -> Ticks {
        let ((p0, t0), (p1, t1)) = (self.from, self.to);
        if p1 <= p0 || pos >= p1 {
            return t1;
        }
        if pos <= p0 {
            return t0;
        }
        t0 + ((t1 - t0) as u128 * (pos - p0) as u128 / (p1 - p0) as u128) as u64
    }
}

/// Occurrences waiting for the next PCR beyond this are resolved by extrapolation.
const MAX_PENDING: usize = 100_000;

#[derive(Debug, Default)]
pub(super) struct Timeline {
    source: Option<Pid>,
    /// Latest point whose time is known (a PCR or an extrapolation).
    anchor: Option<(u64, Ticks)>,
    /// Latest real PCR of the source: PCR steps are added to it.
    last_pcr: Option<(u64, Ticks)>,
    ticks_per_byte: Option<f64>,
    pending: VecDeque<Pending>,
}

impl Timeline {
    pub(super) fn source(&self) -> Option<Pid> {
        self.source
    }

    /// Makes `pid` the timebase. Switching keeps time continuous by extrapolating to the
    /// new PID's first PCR.
    pub(super) fn set_source(&mut self, pid: Pid) {
        if self.source != Some(pid) {
            self.source = Some(pid);
            self.last_pcr = None;
        }
    }

    /// Time of the latest anchor.
    pub(super) fn now(&self) -> Option<Ticks> {
        self.anchor.map(|(_, t)| t)
    }

    /// Queues an occurrence at byte `pos` to be timed at the next anchor. Before the
    /// first PCR there is no time: dropped. Returns a segment to resolve right away when
    /// the queue is full.
    pub(super) fn observe(
        &mut self,
        pos: u64,
        packet_index: u64,
        occurrence: Occurrence,
    ) -> Option<(Segment, Vec<Pending>)> {
        self.anchor?;
        self.pending.push_back(Pending {
            pos,
            packet_index,
            occurrence,
        });
        if self.pending.len() >= MAX_PENDING {
            return self.extrapolate(pos);
        }
        None
    }

    /// A PCR of the source at byte `pos`, `elapsed` ticks after its previous one (as the
    /// PCR tracker judged it). Returns the new segment and the occurrences it times.
    pub(super) fn on_pcr(&mut self, pos: u64, elapsed: Option<Ticks>) -> (Segment, Vec<Pending>) {
        let Some((apos, at)) = self.anchor else {
            self.anchor = Some((pos, 0));
            self.last_pcr = Some((pos, 0));
            return (
                Segment {
                    from: (pos, 0),
                    to: (pos, 0),
                },
                Vec::new(),
            );
        };
        let t = match (self.last_pcr, elapsed) {
            (Some((ppos, pt)), Some(e)) => {
                if pos > ppos && e > 0 {
                    self.ticks_per_byte = Some(e as f64 / (pos - ppos) as f64);
                }
                pt + e
            }
            _ => at + self.estimate(pos.saturating_sub(apos)),
        };
        let t = t.max(at);
        self.last_pcr = Some((pos, t));
        self.advance(pos, t)
    }

    /// Whether the source has been silent long enough (`max_gap` ticks at the last rate)
    /// that time should be extrapolated to `pos`.
    pub(super) fn overdue(&self, pos: u64, max_gap: Ticks) -> bool {
        match (self.anchor, self.ticks_per_byte) {
            (Some((apos, _)), Some(_)) => self.estimate(pos.saturating_sub(apos)) > max_gap,
            _ => false,
        }
    }

    /// Moves time to byte `pos` at the last measured rate (no PCR there).
    pub(super) fn extrapolate(&mut self, pos: u64) -> Option<(Segment, Vec<Pending>)> {
        let (apos, at) = self.anchor?;
        if pos < apos {
            return None;
        }
        let t = at + self.estimate(pos - apos);
        Some(self.advance(pos, t))
    }

    fn estimate(&self, bytes: u64) -> Ticks {
        self.ticks_per_byte
            .map_or(0, |r| (bytes as f64 * r).round() as Ticks)
    }

    fn advance(&mut self, pos: u64, t: Ticks) -> (Segment, Vec<Pending>) {
        let from = self.anchor.unwrap_or((pos, t));
        self.anchor = Some((pos, t));
        let resolved = self.pending.drain(..).collect();
        (Segment { from, to: (pos, t) }, resolved)
    }
}

/// How often something recurs, and whether it is late.
#[derive(Debug, Clone, Default)]
pub(super) struct Cadence {
    /// Longest acceptable gap; `None` for statistics only.
    pub limit: Option<Ticks>,
    /// Inactive cadences are not judged (e.g. a PID the PMT no longer refers to).
    pub active: bool,
    last: Option<Ticks>,
    max_interval: Option<Ticks>,
    overdue_reported: bool,
}

impl Cadence {
    pub(super) fn new(limit: Option<Ticks>) -> Self {
        Cadence {
            limit,
            active: true,
            ..Default::default()
        }
    }

    pub(super) fn max_interval(&self) -> Option<Ticks> {
        self.max_interval
    }

    /// Records an occurrence at `t`; returns the interval when it breaks the limit and
    /// the gap was not already reported as overdue.
    pub(super) fn seen(&mut self, t: Ticks) -> Option<Ticks> {
        let previous = self.last.replace(t);
        let already = std::mem::take(&mut self.overdue_reported);
        let interval = t.saturating_sub(previous?);
        self.max_interval = Some(self.max_interval.unwrap_or(0).max(interval));
        (self.active && !already && self.limit.is_some_and(|l| interval > l)).then_some(interval)
    }

    /// Starts expecting the next occurrence from `t` if none has been seen.
    pub(super) fn arm(&mut self, t: Ticks) {
        self.active = true;
        if self.last.is_none() {
            self.last = Some(t);
        }
    }

    /// Stops judging; the next occurrence starts afresh.
    pub(super) fn deactivate(&mut self) {
        self.active = false;
        self.last = None;
        self.overdue_reported = false;
    }

    /// The gap so far at `now` when it has just gone over the limit.
    pub(super) fn overdue(&mut self, now: Ticks) -> Option<Ticks> {
        let (limit, last) = (self.limit?, self.last?);
        let gap = now.saturating_sub(last);
        if !self.active || self.overdue_reported || gap <= limit {
            return None;
        }
        self.overdue_reported = true;
        Some(gap)
    }
}
