//! The output is a pure function of the schedule: a mux resumed at any packet produces
//! exactly what a mux running since the epoch produces from that packet on.

mod common;

use headend_actors::playout::extend::{extend, ProbeCache};
use headend_actors::playout::mux::ChannelMux;
use headend_actors::playout::schedule::Schedule;

#[test]
fn resume_at_any_packet_reproduces_the_stream() {
    let items = common::items();
    let spec = common::spec(
        "det",
        1,
        5001,
        vec![items.h264_aac.clone(), items.mpeg2_mp2.clone(), items.audio_only.clone()],
    );
    let state = tempfile::tempdir().unwrap();
    let mut schedule = Schedule::new(1_700_000_000_000_000_000, spec.mux_rate);
    let report = extend(&mut schedule, &spec, state.path(), &mut ProbeCache::default(), 0);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert!(schedule.entries.len() >= 4, "schedule covers several joins");

    // Play past the first three joins from the epoch.
    let total = schedule.entries[3].start_packet + 2_000;
    let mut from_epoch = ChannelMux::resume(spec.clone(), schedule.clone(), 0);
    let reference: Vec<[u8; 188]> = (0..total).map(|_| from_epoch.next_packet().0).collect();

    // Resume at item starts, just around them, and mid-item.
    let mut points = vec![1, 7, 1234];
    for e in &schedule.entries[..4] {
        points.extend([e.start_packet.saturating_sub(1), e.start_packet, e.start_packet + 1, e.start_packet + 777]);
    }
    for k in points.into_iter().filter(|&k| k + 500 <= total) {
        let mut resumed = ChannelMux::resume(spec.clone(), schedule.clone(), k);
        for j in k..k + 500 {
            let p = resumed.next_packet();
            assert_eq!(p.0, reference[j as usize], "packet {j} differs after resuming at {k} ({:?})", p);
        }
    }
}
