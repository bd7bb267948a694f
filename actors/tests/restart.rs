//! A restarted node resumes the channel where it should be, and what it sends is exactly
//! the pure function of the stored schedule: the stream a backup will be able to
//! continue packet for packet.

mod common;

use common::{now_playing, wait_for, wait_for_entry, Node};
use headend_actors::playout::capture::{ts_bytes, Capture};
use headend_actors::playout::mux::ChannelMux;
use headend_actors::playout::store::ScheduleStore;
use headend_actors::ts::{Pid, TsPacket};
use std::net::Ipv4Addr;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_the_schedule_packet_for_packet() {
    let i = common::items();
    let spec = common::spec("restart", 30, 5030, vec![i.h264_aac.clone(), i.mpeg2_mp2.clone()]);
    let dir = tempfile::tempdir().unwrap();

    let node = Node::start_in(vec![spec.clone()], dir.path()).await;
    let before = wait_for_entry("restart", 1, Duration::from_millis(300)).await;
    node.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    let stored = ScheduleStore::new(&dir.path().join("channels/restart")).load().unwrap().unwrap();

    let capture = Capture::start(spec.output.group, spec.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start_in(vec![spec.clone()], dir.path()).await;
    let after = wait_for(Duration::from_secs(30), "the channel back on air", async || now_playing("restart").await).await;
    assert_eq!(stored.epoch_unix_ns, ScheduleStore::new(&dir.path().join("channels/restart")).load().unwrap().unwrap().epoch_unix_ns, "same epoch");
    assert!(after.index >= before.index, "resumed, not started over: {before:?} then {after:?}");
    if after.index == before.index {
        assert_eq!(after.started_unix_ms, before.started_unix_ms, "the same airing of the same entry");
    }
    wait_for_entry("restart", after.index + 1, Duration::from_millis(300)).await;
    node.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    let schedule = ScheduleStore::new(&dir.path().join("channels/restart")).load().unwrap().unwrap();

    let ts = ts_bytes(&capture.finish());
    let packets: Vec<TsPacket> = ts.chunks_exact(188).map(|c| TsPacket::from_slice(c).unwrap()).collect();
    // Locate the capture on the channel's timeline by a PCR of the channel's PCR PID:
    // PCR(k) is a pure function of k.
    let rate = schedule.mux_rate;
    let (j, pcr) = packets
        .iter()
        .enumerate()
        .skip(packets.len() / 2)
        .find_map(|(j, p)| (p.pid() == Pid::new(0x1FF)).then(|| (j, p.pcr().unwrap())))
        .unwrap();
    let approx = (pcr.ticks() as u128 * rate.bits_per_second() as u128 / (27_000_000 * 1504)) as u64;
    let k = (approx.saturating_sub(2)..approx + 2).find(|&k| rate.pcr_of_packet(k) == pcr).expect("PCR maps to a packet");
    let start = k - j as u64;
    let mut mux = ChannelMux::resume(spec, schedule, start + (packets.len() as u64 / 2));
    for (n, p) in packets.iter().enumerate().skip(packets.len() / 2) {
        let expected = mux.next_packet();
        assert_eq!(p.0, expected.0, "captured packet {n} (output packet {}) is not the schedule's", start + n as u64);
    }
}
