//! Statistics from capture timestamps: inter-arrival gaps and jitter, and the RFC 4445
//! Media Delivery Index (delay factor and media loss rate).

use std::time::Duration;

use super::report::ArrivalReport;

const MDI_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct ArrivalStats {
    first: Option<Duration>,
    last: Option<(Duration, usize)>,
    arrivals: u64,
    bytes: u64,
    gap_min: Option<Duration>,
    gap_max: Option<Duration>,
    gap_sum: Duration,
    jitter_s: Option<f64>,
    max_jitter_s: Option<f64>,
    mdi: Option<MdiInterval>,
    df_max_s: Option<f64>,
    mlr_max: Option<u64>,
    mdi_intervals: u64,
}

/// One RFC 4445 measurement interval: a virtual buffer filled by arrivals and drained
/// at the media rate.
#[derive(Debug, Clone, Copy)]
struct MdiInterval {
    start: Duration,
    rate_bytes_per_s: f64,
    received: f64,
    vb_min: f64,
    vb_max: f64,
    lost_at_start: u64,
}

impl ArrivalStats {
    /// `bytes` arrived at `at`. `rate_bps` is the transport rate measured so far;
    /// `lost_packets` the running count of packets lost according to CC gaps.
    pub(super) fn on_arrival(
        &mut self,
        at: Duration,
        bytes: usize,
        rate_bps: Option<f64>,
        lost_packets: u64,
    ) {
        self.arrivals += 1;
        self.bytes += bytes as u64;
        self.first.get_or_insert(at);
        if let Some((prev_at, prev_bytes)) = self.last {
            let gap = at.saturating_sub(prev_at);
            self.gap_min = Some(self.gap_min.map_or(gap, |g| g.min(gap)));
            self.gap_max = Some(self.gap_max.map_or(gap, |g| g.max(gap)));
            self.gap_sum += gap;
            if let Some(rate) = rate_bps.filter(|r| *r > 0.0) {
                let expected = prev_bytes as f64 * 8.0 / rate;
                let deviation = (gap.as_secs_f64() - expected).abs();
                let j = self.jitter_s.get_or_insert(0.0);
                *j += (deviation - *j) / 16.0;
                self.max_jitter_s = Some(self.max_jitter_s.map_or(deviation, |m| m.max(deviation)));
            }
        }
        self.last = Some((at, bytes));
        self.mdi_arrival(at, bytes, rate_bps, lost_packets);
    }

    fn mdi_arrival(
        &mut self,
        at: Duration,
        bytes: usize,
        rate_bps: Option<f64>,
        lost_packets: u64,
    ) {
        let Some(rate) = rate_bps.filter(|r| *r > 0.0) else {
            self.mdi = None;
            return;
        };
        if let Some(iv) = self.mdi {
            if at.saturating_sub(iv.start) >= MDI_INTERVAL {
                let df = (iv.vb_max - iv.vb_min) / iv.rate_bytes_per_s;
                self.df_max_s = Some(self.df_max_s.map_or(df, |m| m.max(df)));
                let lost = lost_packets.saturating_sub(iv.lost_at_start);
                self.mlr_max = Some(self.mlr_max.map_or(lost, |m| m.max(lost)));
                self.mdi_intervals += 1;
                self.mdi = None;
            }
        }
        let iv = self.mdi.get_or_insert(MdiInterval {
            start: at,
            rate_bytes_per_s: rate / 8.0,
            received: 0.0,
            vb_min: 0.0,
            vb_max: 0.0,
            lost_at_start: lost_packets,
        });
        let drained = iv.rate_bytes_per_s * at.saturating_sub(iv.start).as_secs_f64();
        let before = iv.received - drained;
        iv.received += bytes as f64;
        iv.vb_min = iv.vb_min.min(before);
        iv.vb_max = iv.vb_max.max(before + bytes as f64);
    }

    pub(super) fn report(&self) -> Option<ArrivalReport> {
        let first = self.first?;
        let (last, _) = self.last?;
        let duration = last.saturating_sub(first);
        let gaps = self.arrivals.saturating_sub(1);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Some(ArrivalReport {
            arrivals: self.arrivals,
            duration_ms: duration.as_secs_f64() * 1e3,
            // The last chunk's bytes arrive at the end: they are not part of the span.
            bitrate_bps: (duration > Duration::ZERO).then(|| {
                (self.bytes - self.last.map_or(0, |l| l.1 as u64)) as f64 * 8.0
                    / duration.as_secs_f64()
            }),
            min_gap_us: self.gap_min.map(us),
            max_gap_us: self.gap_max.map(us),
            mean_gap_us: (gaps > 0).then(|| us(self.gap_sum) / gaps as f64),
            jitter_us: self.jitter_s.map(|s| s * 1e6),
            max_jitter_us: self.max_jitter_s.map(|s| s * 1e6),
            mdi_df_max_ms: self.df_max_s.map(|s| s * 1e3),
            mdi_mlr_max: self.mlr_max,
            mdi_intervals: self.mdi_intervals,
        })
    }
}
