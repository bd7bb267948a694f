//! Timing occurrences on the stream's timeline and judging cadences: PAT and PMT
//! intervals (1.3, 1.5), PID presence (1.6), PTS repetition (2.5), and the PCR gap at the
//! end of the input (2.3a).

use super::pcr::ticks_to_ms;
use super::timeline::{Cadence, Occurrence, Pending, Segment, Ticks, Watch};
use super::{ticks, Analyzer, ErrorKind};
use crate::ts::packet::{Pid, PAT_PID};

impl Analyzer {
    /// The first timebase PCR: from now on, whatever is expected is expected in time.
    pub(super) fn on_timeline_start(&mut self, t: Ticks) {
        let mut watches = vec![Watch::Pat];
        watches.extend(self.programs.iter().map(|p| Watch::Pmt(p.pmt_pid)));
        watches.extend(self.referenced.keys().map(|&pid| Watch::Presence(pid)));
        for watch in watches {
            self.cadence(watch).arm(t);
        }
    }

    /// Queues an occurrence for timing at the next anchor.
    pub(super) fn observe(&mut self, pos: u64, index: u64, occurrence: Occurrence) {
        if let Some((segment, pending)) = self.timeline.observe(pos, index, occurrence) {
            self.resolve(segment, pending, index);
        }
    }

    /// The cadence of `watch`, created with its limit from the configuration.
    pub(super) fn cadence(&mut self, watch: Watch) -> &mut Cadence {
        let limit = self.limit_for(watch);
        self.cadences
            .entry(watch)
            .or_insert_with(|| Cadence::new(limit))
    }

    pub(super) fn limit_for(&self, watch: Watch) -> Option<Ticks> {
        match watch {
            Watch::Pat => Some(ticks(self.config.pat_max_interval)),
            Watch::Pmt(_) => Some(ticks(self.config.pmt_max_interval)),
            Watch::Presence(_) => Some(ticks(self.config.pid_timeout)),
            Watch::Pts(pid) => {
                let exempt = self
                    .referenced
                    .get(&pid)
                    .copied()
                    .flatten()
                    .is_some_and(|t| self.config.pts_exempt_stream_types.contains(&t));
                (!exempt).then(|| ticks(self.config.pts_max_interval))
            }
            Watch::Sdt | Watch::EitPf(_) => None,
        }
    }

    /// Times the occurrences of a new segment, then looks for what is overdue.
    pub(super) fn resolve(&mut self, segment: Segment, pending: Vec<Pending>, index: u64) {
        for p in pending {
            let t = segment.time_at(p.pos);
            match p.occurrence {
                Occurrence::Arm(watch) => self.cadence(watch).arm(t),
                Occurrence::Seen(watch) => {
                    if let Some(interval) = self.cadence(watch).seen(t) {
                        self.report_late(watch, interval, p.packet_index, false);
                    }
                }
            }
        }
        let referenced: Vec<Pid> = self.referenced.keys().copied().collect();
        for pid in referenced {
            let Some(seen) = self.pids.get(&pid).map(|s| s.last_seen_pos) else {
                continue;
            };
            if seen > segment.from.0 || (seen == segment.from.0 && segment.from == segment.to) {
                if let Some(interval) = self
                    .cadence(Watch::Presence(pid))
                    .seen(segment.time_at(seen))
                {
                    self.report_late(Watch::Presence(pid), interval, index, false);
                }
            }
        }
        let now = segment.to.1;
        let late: Vec<(Watch, Ticks)> = self
            .cadences
            .iter_mut()
            .filter_map(|(w, c)| c.overdue(now).map(|gap| (*w, gap)))
            .collect();
        for (watch, gap) in late {
            self.report_late(watch, gap, index, true);
        }
    }

    pub(super) fn report_late(
        &mut self,
        watch: Watch,
        gap: Ticks,
        index: u64,
        still_missing: bool,
    ) {
        let cfg = &self.config;
        let (kind, pid, what, limit) = match watch {
            Watch::Pat => (
                ErrorKind::PatError,
                PAT_PID,
                "PAT".to_string(),
                cfg.pat_max_interval,
            ),
            Watch::Pmt(pid) => (
                ErrorKind::PmtError,
                pid,
                "PMT".to_string(),
                cfg.pmt_max_interval,
            ),
            Watch::Presence(pid) => (
                ErrorKind::PidError,
                pid,
                format!("PID {pid} (referred to by a PMT)"),
                cfg.pid_timeout,
            ),
            Watch::Pts(pid) => (
                ErrorKind::PtsError,
                pid,
                "PTS".to_string(),
                cfg.pts_max_interval,
            ),
            Watch::Sdt | Watch::EitPf(_) => return,
        };
        let ms = ticks_to_ms(gap);
        let limit = limit.as_millis();
        self.record(kind, pid, index, || {
            if still_missing {
                format!("no {what} for {ms:.1} ms (limit {limit} ms)")
            } else {
                format!("{what} interval {ms:.1} ms exceeds {limit} ms")
            }
        });
    }

    /// At the end of input: a PCR PID whose last PCR is older than the repetition limit.
    pub(super) fn check_pcr_tails(&mut self, end: u64, index: u64) {
        let limit = self.pcr_limits.repetition_ticks;
        let mut late = Vec::new();
        for (pid, state) in &self.pids {
            if let Some(tracker) = &state.pcr {
                let gap = tracker
                    .last_pos()
                    .and_then(|p| tracker.estimate_ticks(end.saturating_sub(p)));
                if let Some(gap) = gap.filter(|&g| g > limit) {
                    late.push((*pid, gap));
                }
            }
        }
        late.sort();
        for (pid, gap) in late {
            self.record(ErrorKind::PcrRepetitionError, pid, index, || {
                format!(
                    "no PCR in the last {:.1} ms of the stream",
                    ticks_to_ms(gap)
                )
            });
        }
    }
}
