//! The pacing rule on simulated time: every datagram is sent at its absolute deadline
//! (epoch + k x 1504 / mux rate), so the output rate is the mux rate with no drift,
//! and a pacer that stalls skips ahead to now instead of bursting.

mod common;

use headend_actors::playout::clock::Clock;
use headend_actors::playout::extend::{extend, ProbeCache};
use headend_actors::playout::pacer::{Pacer, PacerEvent, PacerRole};
use headend_actors::playout::schedule::Schedule;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Time moves only when the pacer sleeps: each sleep jumps to its deadline (plus an
/// optional one-off stall), and every deadline is recorded.
#[derive(Debug)]
struct SimClock {
    now: AtomicU64,
    deadlines: Mutex<Vec<u64>>,
    /// At the first sleep at or after this time, time jumps `stall` further.
    stall_at: u64,
    stall: u64,
}

impl Clock for SimClock {
    fn now_unix_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
    fn sleep_until_unix_ns(&self, t: u64) {
        self.deadlines.lock().unwrap().push(t);
        let mut next = t.max(self.now_unix_ns());
        if next >= self.stall_at && self.now_unix_ns() < self.stall_at {
            next += self.stall;
        }
        self.now.store(next, Ordering::SeqCst);
    }
}

#[test]
fn deadlines_are_absolute_and_a_stall_skips_ahead() {
    let i = common::items();
    let spec = common::spec("pace", 40, 5040, vec![i.h264_aac.clone(), i.audio_only.clone()]);
    let epoch = 1_800_000_000_000_000_000u64;
    let mut schedule = Schedule::new(epoch, spec.mux_rate);
    let state = tempfile::tempdir().unwrap();
    extend(&mut schedule, &spec, state.path(), &mut ProbeCache::default(), 0);

    let minutes = 3;
    let stall_at = epoch + 60_000_000_000; // one minute in
    let stall = 2_000_000_000; // a 2 s stall
    let clock = Arc::new(SimClock { now: AtomicU64::new(epoch), deadlines: Mutex::new(Vec::new()), stall_at, stall });
    let (tx, rx) = mpsc::channel();
    let mut pacer = Pacer::start(spec.clone(), schedule.clone(), clock.clone(), PacerRole::standalone(), move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    let end = epoch + minutes * 60_000_000_000;
    let mut on_air = None;
    let mut skipped = Vec::new();
    while clock.now_unix_ns() < end {
        match rx.recv_timeout(Duration::from_secs(60)).expect("pacer events") {
            PacerEvent::OnAir { k } => on_air = Some(k),
            PacerEvent::SkippedAhead { packets } => skipped.push(packets),
            PacerEvent::Stopped(e) => panic!("pacer stopped: {e:?}"),
            _ => {}
        }
    }
    pacer.stop();

    let first_k = on_air.expect("went on air");
    let deadlines = clock.deadlines.lock().unwrap().clone();
    // The collision check sleeps are not datagram deadlines: keep those on the grid.
    let grid: Vec<u64> = deadlines.into_iter().filter(|&t| t >= schedule.unix_ns_of_packet(first_k)).collect();
    assert!(grid.len() > 10_000, "{} datagrams paced", grid.len());
    // Before the stall: the n-th sleep is for the datagram at packet k0 + 7n exactly (a
    // datagram due exactly now is sent without sleeping, so k0 is where sleeps start).
    let k0 = schedule.packet_at_unix_ns(grid[0]);
    assert_eq!(schedule.unix_ns_of_packet(k0), grid[0], "first deadline is a packet's due time");
    assert_eq!((k0 - first_k) % 7, 0, "datagrams of 7 packets from the first one on air");
    let before: Vec<&u64> = grid.iter().take_while(|&&t| t < stall_at).collect();
    for (n, &&t) in before.iter().enumerate() {
        assert_eq!(t, schedule.unix_ns_of_packet(k0 + 7 * n as u64), "datagram {n} deadline");
    }
    // One skip of about 2 s worth of packets (more than the 200 ms lateness allowed).
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    let per_second = spec.mux_rate.packets_per_second();
    let skipped_s = skipped[0] as f64 / per_second;
    assert!((1.9..2.2).contains(&skipped_s), "skipped {skipped_s} s");
    // After it, deadlines are on the same grid again (whole datagrams from the epoch's
    // packet 0), one every 7 packets: no drift over the remaining minutes.
    let after: Vec<u64> = grid.iter().copied().filter(|&t| t > stall_at + stall).collect();
    let k_after = schedule.packet_at_unix_ns(after[0]);
    assert_eq!(k_after % 7, 0);
    for (n, &t) in after.iter().enumerate() {
        assert_eq!(t, schedule.unix_ns_of_packet(k_after + 7 * n as u64), "datagram {n} after the stall");
    }
    let span_s = (after[after.len() - 1] - after[0]) as f64 / 1e9;
    let rate = (after.len() - 1) as f64 * 7.0 * 1504.0 / span_s;
    let ppm = (rate / spec.mux_rate.bits_per_second() as f64 - 1.0) * 1e6;
    assert!(ppm.abs() < 1.0, "rate over {span_s:.0} s off by {ppm:.3} ppm");
}
