//! PCR checks for one PCR PID: TR 101 290 2.3a (repetition), 2.3b (discontinuity
//! without indicator), 2.4 (accuracy), and the transport rate they imply.

use super::report::PcrPidReport;
use crate::ts::time::{Pcr, PCR_HZ};

/// Limits for the PCR checks, in 27 MHz ticks and nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct PcrLimits {
    pub repetition_ticks: u64,
    pub discontinuity_ticks: u64,
    pub accuracy_ns: f64,
}

/// Something wrong with one PCR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PcrFinding {
    /// 2.3a: this long since the previous PCR (by PCR values, or estimated from bytes).
    Repetition { interval_ticks: u64 },
    /// 2.3b: the PCR moved by this much (negative or too far) without the indicator.
    Jump { delta_ticks: i64 },
    /// 2.4: off the byte-position prediction by this much.
    Accuracy { error_ns: f64 },
}

/// The result of one PCR: how much stream time passed since the previous one (`None`
/// for the first, or after a discontinuity when no rate is known yet) and what is wrong.
#[derive(Debug, Clone, Default)]
pub(super) struct PcrStep {
    pub elapsed_ticks: Option<u64>,
    pub findings: Vec<PcrFinding>,
}

/// PCR accuracy against a constant transport rate: each PCR is predicted from the line
/// through the first PCR after a (re)start (the anchor) and the latest PCR that passed
/// (the reference). A long baseline makes the rate exact for CBR streams, and since a
/// PCR that fails never becomes the reference, one bad PCR is reported once, not twice.
/// Five failures in a row restart the line (the stream's clock really moved).
#[derive(Debug, Clone, Default)]
struct AccuracyModel {
    anchor: Option<(u64, u64)>,
    reference: Option<(u64, u64)>,
    misses: u32,
}

const RESTART_AFTER_MISSES: u32 = 5;

impl AccuracyModel {
    fn restart(&mut self, pos: u64, t: u64) {
        *self = AccuracyModel {
            anchor: Some((pos, t)),
            reference: None,
            misses: 0,
        };
    }

    /// The error of the PCR at byte `pos` with continuous time `t`, in ns.
    fn check(&mut self, pos: u64, t: u64, limit_ns: f64) -> Option<f64> {
        let Some((pa, ta)) = self.anchor else {
            self.restart(pos, t);
            return None;
        };
        let Some((pr, tr)) = self.reference.filter(|&(pr, _)| pr > pa) else {
            self.reference = Some((pos, t));
            return None;
        };
        let (dx_ref, dt_ref) = ((pr - pa) as i128, tr as i128 - ta as i128);
        let (dx, dt) = (pos.saturating_sub(pa) as i128, t as i128 - ta as i128);
        // (dt - dx * dt_ref / dx_ref) ticks, in ns: 1 tick = 1000/27 ns.
        let numerator = dt * dx_ref - dx * dt_ref;
        let error_ns = numerator as f64 * 1000.0 / (dx_ref as f64 * 27.0);
        if error_ns.abs() <= limit_ns {
            self.reference = Some((pos, t));
            self.misses = 0;
        } else {
            self.misses += 1;
            if self.misses >= RESTART_AFTER_MISSES {
                self.restart(pos, t);
            }
        }
        Some(error_ns)
    }
}

/// Per-PID PCR state and statistics.
#[derive(Debug, Clone)]
pub(super) struct PcrTracker {
    limits: PcrLimits,
    last: Option<(u64, Pcr)>,
    discontinuity_pending: bool,
    /// 27 MHz ticks per byte, from the latest pair of continuous PCRs.
    ticks_per_byte: Option<f64>,
    /// Continuous stream time since `first_pos` in ticks.
    elapsed_total: u64,
    first_pos: u64,
    last_pos: u64,
    accuracy: AccuracyModel,
    window_start: (u64, u64),
    report: PcrPidReport,
    max_interval_ticks: Option<u64>,
}

impl PcrTracker {
    pub(super) fn new(limits: PcrLimits) -> Self {
        PcrTracker {
            limits,
            last: None,
            discontinuity_pending: false,
            ticks_per_byte: None,
            elapsed_total: 0,
            first_pos: 0,
            last_pos: 0,
            accuracy: AccuracyModel::default(),
            window_start: (0, 0),
            report: PcrPidReport::default(),
            max_interval_ticks: None,
        }
    }

    /// A discontinuity_indicator on a packet of this PID without a PCR: applies to the
    /// next PCR.
    pub(super) fn note_discontinuity(&mut self) {
        self.discontinuity_pending = true;
    }

    /// Transport rate implied by the latest continuous PCR pair, in bit/s.
    pub(super) fn current_bitrate(&self) -> Option<f64> {
        self.ticks_per_byte
            .filter(|&r| r > 0.0)
            .map(|r| 8.0 * PCR_HZ as f64 / r)
    }

    pub(super) fn last_pos(&self) -> Option<u64> {
        self.last.map(|(p, _)| p)
    }

    /// Bytes to ticks at the latest measured rate.
    pub(super) fn estimate_ticks(&self, bytes: u64) -> Option<u64> {
        self.ticks_per_byte
            .map(|r| (bytes as f64 * r).round() as u64)
    }

    /// One PCR at stream byte `pos`; `discontinuity` is this packet's indicator.
    pub(super) fn on_pcr(&mut self, pos: u64, pcr: Pcr, discontinuity: bool) -> PcrStep {
        let discontinuity = discontinuity || std::mem::take(&mut self.discontinuity_pending);
        self.report.count += 1;
        let mut step = PcrStep::default();
        let Some((last_pos, last_pcr)) = self.last.replace((pos, pcr)) else {
            self.first_pos = pos;
            self.last_pos = pos;
            self.accuracy.restart(pos, 0);
            self.window_start = (pos, 0);
            return step;
        };
        let bytes = pos.saturating_sub(last_pos);
        let delta = pcr.since(last_pcr);
        let continuous =
            !discontinuity && delta >= 0 && delta as u64 <= self.limits.discontinuity_ticks;
        if continuous {
            let delta = delta as u64;
            step.elapsed_ticks = Some(delta);
            if delta > 0 && bytes > 0 {
                self.ticks_per_byte = Some(delta as f64 / bytes as f64);
            }
        } else {
            if discontinuity {
                self.report.discontinuities += 1;
            } else {
                step.findings.push(PcrFinding::Jump { delta_ticks: delta });
            }
            step.elapsed_ticks = self.estimate_ticks(bytes);
        }
        self.last_pos = pos;
        let Some(elapsed) = step.elapsed_ticks else {
            // No way to know how much time passed: start measuring afresh.
            self.first_pos = pos;
            self.elapsed_total = 0;
            self.accuracy.restart(pos, 0);
            self.window_start = (pos, 0);
            return step;
        };
        self.max_interval_ticks = Some(self.max_interval_ticks.unwrap_or(0).max(elapsed));
        if elapsed > self.limits.repetition_ticks {
            step.findings.push(PcrFinding::Repetition {
                interval_ticks: elapsed,
            });
        }
        self.elapsed_total += elapsed;
        let t = self.elapsed_total;
        if continuous {
            if let Some(error_ns) = self.accuracy.check(pos, t, self.limits.accuracy_ns) {
                let max = self.report.max_accuracy_error_ns.get_or_insert(0.0);
                *max = max.max(error_ns.abs());
                if error_ns.abs() > self.limits.accuracy_ns {
                    self.report.accuracy_violations += 1;
                    step.findings.push(PcrFinding::Accuracy { error_ns });
                }
            }
            self.close_window(pos, t);
        } else {
            self.accuracy.restart(pos, t);
            self.window_start = (pos, t);
        }
        step
    }

    fn close_window(&mut self, pos: u64, t: u64) {
        let (start_pos, start_t) = self.window_start;
        if t.saturating_sub(start_t) < PCR_HZ {
            return;
        }
        let bps = (pos - start_pos) as f64 * 8.0 * PCR_HZ as f64 / (t - start_t) as f64;
        let b = &mut self.report.bitrate;
        b.windows += 1;
        b.window_min_bps = Some(b.window_min_bps.map_or(bps, |m| m.min(bps)));
        b.window_max_bps = Some(b.window_max_bps.map_or(bps, |m| m.max(bps)));
        self.window_start = (pos, t);
    }

    pub(super) fn report(&self) -> PcrPidReport {
        let mut r = self.report.clone();
        r.max_interval_ms = self.max_interval_ticks.map(ticks_to_ms);
        if self.elapsed_total > 0 {
            r.bitrate.overall_bps = Some(
                (self.last_pos - self.first_pos) as f64 * 8.0 * PCR_HZ as f64
                    / self.elapsed_total as f64,
            );
        }
        r
    }
}

pub(super) fn ticks_to_ms(ticks: u64) -> f64 {
    ticks as f64 / 27_000.0
}
