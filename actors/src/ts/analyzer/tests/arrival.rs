//! Arrival statistics: MDI (RFC 4445) and inter-arrival jitter from capture times.

use std::time::Duration;

use super::stream::*;
use super::*;

const DATAGRAM: usize = 7 * 188;

/// Pushes `bytes` as 7-packet datagrams; `arrival(k, nominal)` gives datagram k's time.
fn push_datagrams(bytes: &[u8], mut arrival: impl FnMut(usize, Duration) -> Duration) -> Report {
    let mut a = Analyzer::default();
    let per_datagram = Duration::from_nanos((DATAGRAM as u64 * 8 * 1_000_000_000) / RATE);
    for (k, chunk) in bytes.chunks(DATAGRAM).enumerate() {
        let nominal = per_datagram * k as u32;
        a.push(chunk, Some(arrival(k, nominal)));
    }
    a.finish();
    a.report()
}

#[test]
fn paced_datagrams_have_the_minimal_delay_factor() {
    let r = push_datagrams(&clean(4.0), |_, t| t);
    let a = r.arrival.clone().unwrap();
    // Perfect pacing: the virtual buffer swings by one datagram, 1316 bytes at 2 Mbit/s.
    let df = a.mdi_df_max_ms.unwrap();
    assert!((5.25..5.28).contains(&df), "{df}");
    assert!(a.mdi_intervals >= 2);
    assert_eq!(a.mdi_mlr_max, Some(0));
    assert!(a.max_jitter_us.unwrap() < 1.0);
    assert!((5263.0..5265.0).contains(&a.mean_gap_us.unwrap()));
    assert!((a.bitrate_bps.unwrap() - RATE as f64).abs() < 100.0);
    assert!(r.is_clean());
}

#[test]
fn a_network_stall_raises_the_delay_factor_and_jitter() {
    // Everything due between 2.0 s and 2.02 s arrives at 2.02 s in one burst.
    let (stall, release) = (Duration::from_millis(2000), Duration::from_millis(2020));
    let r = push_datagrams(&clean(4.0), |_, t| {
        if (stall..release).contains(&t) {
            release
        } else {
            t
        }
    });
    let a = r.arrival.clone().unwrap();
    let df = a.mdi_df_max_ms.unwrap();
    assert!((20.0..27.0).contains(&df), "{df}");
    assert!(a.max_gap_us.unwrap() > 20_000.0);
    assert!(a.max_jitter_us.unwrap() > 15_000.0);
    assert!(r.is_clean(), "stream time is unaffected by arrival times");
}

#[test]
fn media_loss_rate_counts_lost_packets() {
    let mut s = generate(3.0, |_, _| true);
    let k = s
        .packets
        .iter()
        .enumerate()
        .skip(1500)
        .find(|(_, p)| p.pid().value() == AUDIO_PID)
        .unwrap()
        .0;
    s.packets.remove(k);
    let r = push_datagrams(&s.bytes(), |_, t| t);
    assert_eq!(r.arrival.clone().unwrap().mdi_mlr_max, Some(1));
    assert_eq!(r.error_count(ErrorKind::ContinuityCountError), 1);
}
