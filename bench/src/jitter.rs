//! Departure jitter against the ideal schedule.
//!
//! A CBR sender should let datagram `i` leave at `t0 + bytes_before(i) × 8 / R`. With
//! `(t0, R)` fitted to the captured arrivals by least squares (so `R` is the stream's
//! measured rate and `t0` the best constant offset), each datagram's deviation is
//! `|arrival − ideal|`. The analyzer's figures are gap-to-gap; this one is against the
//! whole timeline, so a burst, a stall or a drifting rate all show.

use std::time::Duration;

/// Deviations of one stream from its ideal constant-rate timeline.
#[derive(Debug, Clone, Default)]
pub struct Deviation {
    /// Rate of the fitted line, bit/s.
    pub rate_bps: f64,
    /// |arrival − ideal| of every datagram, milliseconds, ascending.
    pub sorted_ms: Vec<f64>,
    /// Arrival time of the datagram with the largest deviation.
    pub worst_at: Duration,
}

/// Fits the ideal timeline to `(arrival, datagram size)` in arrival order. `None` with
/// fewer than two datagrams.
pub fn deviation(arrivals: impl IntoIterator<Item = (Duration, usize)>) -> Option<Deviation> {
    let mut xs = Vec::new(); // bytes before the datagram
    let mut ys = Vec::new(); // arrival, seconds
    let mut bytes = 0u64;
    for (at, len) in arrivals {
        xs.push(bytes as f64);
        ys.push(at.as_secs_f64());
        bytes += len as u64;
    }
    if xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in xs.iter().zip(&ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    if sxx <= 0.0 || sxy <= 0.0 {
        return None;
    }
    let seconds_per_byte = sxy / sxx;
    let mut sorted_ms: Vec<f64> =
        xs.iter().zip(&ys).map(|(x, y)| (y - (my + (x - mx) * seconds_per_byte)).abs() * 1e3).collect();
    let worst = (0..sorted_ms.len()).max_by(|&a, &b| sorted_ms[a].total_cmp(&sorted_ms[b])).unwrap_or(0);
    let worst_at = Duration::from_secs_f64(ys[worst]);
    sorted_ms.sort_by(f64::total_cmp);
    Some(Deviation { rate_bps: 8.0 / seconds_per_byte, sorted_ms, worst_at })
}

/// Nearest-rank percentile (`p` in 0..=100) of ascending values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DG: usize = 1316;

    /// Arrivals of a sender at `bps` whose datagram `i` is late by `late(i)` seconds.
    fn stream(bps: f64, count: usize, late: impl Fn(usize) -> f64) -> Vec<(Duration, usize)> {
        (0..count).map(|i| (Duration::from_secs_f64(5.0 + (i * DG * 8) as f64 / bps + late(i)), DG)).collect()
    }

    #[test]
    fn a_perfect_sender_has_no_deviation_and_its_rate_is_found() {
        let d = deviation(stream(4e6, 1000, |_| 0.0)).unwrap();
        assert!((d.rate_bps - 4e6).abs() < 1.0, "{}", d.rate_bps);
        assert!(d.sorted_ms.last().unwrap() < &1e-6);
    }

    #[test]
    fn bursts_show_as_deviation_of_about_half_the_burst_period() {
        // Datagrams sent 10 at once, every 10 datagram times, instead of evenly: the
        // fitted line runs through the middle, ±0.45 periods from both ends of a burst.
        let period = 10.0 * DG as f64 * 8.0 / 4e6;
        let d = deviation(stream(4e6, 10_000, |i| -((i % 10) as f64) * period / 10.0)).unwrap();
        let max = *d.sorted_ms.last().unwrap();
        assert!((max - period * 1e3 * 0.45).abs() < 0.1, "max {max} ms, period {} ms", period * 1e3);
    }

    #[test]
    fn one_late_datagram_is_the_maximum() {
        let d = deviation(stream(4e6, 10_000, |i| if i == 5000 { 0.003 } else { 0.0 })).unwrap();
        assert!((d.sorted_ms.last().unwrap() - 3.0).abs() < 0.01);
        let at = 5.0 + (5000 * DG * 8) as f64 / 4e6 + 0.003;
        assert!((d.worst_at.as_secs_f64() - at).abs() < 1e-6);
        assert!(percentile(&d.sorted_ms, 99.0).unwrap() < 0.01);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
