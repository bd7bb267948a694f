//! Failover on the data plane, with two streamers of one channel on loopback multicast
//! (as two nodes would run it, each with its own source address): the backup computes
//! the main's stream in shadow from the main's replicated schedule, takes over a silent
//! group without losing a packet, and a main that hears a higher epoch stops.

mod common;

use common::wait_for;
use headend_actors::playout::actor::{ChannelActor, ChannelEnv, ChannelMsg, ChannelNotice, ChannelStatus};
use headend_actors::playout::capture::{ts_bytes, Capture, Datagram};
use headend_actors::playout::clock::{Clock, MonotonicClock};
use headend_actors::playout::failover::{content_hash, FailoverSettings};
use headend_actors::ts::TsPacket;
use headend_actors::playout::pacer::PacerRole;
use headend_actors::playout::role::{node_tag, Role, RoleCell};
use headend_actors::playout::spec::ChannelSpec;
use headend_actors::ts::analyzer::{analyze_bytes, AnalyzerConfig};
use ractor::{Actor, ActorRef};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A clock that can be frozen, as a SIGSTOP freezes a process: while frozen, the pacer's
/// sleeps do not return.
#[derive(Debug, Default)]
struct FreezableClock {
    inner: MonotonicClock,
    frozen: AtomicBool,
}

impl Clock for FreezableClock {
    fn now_unix_ns(&self) -> u64 {
        self.inner.now_unix_ns()
    }
    fn sleep_until_unix_ns(&self, t: u64) {
        self.inner.sleep_until_unix_ns(t);
        while self.frozen.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

struct Streamer {
    actor: ActorRef<ChannelMsg>,
    role: Arc<RoleCell>,
    source: Ipv4Addr,
    clock: Arc<FreezableClock>,
    _state: tempfile::TempDir,
}

impl Streamer {
    async fn start(spec: &ChannelSpec, node: &str, source: Ipv4Addr, role: Role, notices: tokio::sync::mpsc::UnboundedSender<ChannelNotice>) -> Streamer {
        let mut spec = spec.clone();
        spec.output.source = Some(source);
        let state = tempfile::tempdir().unwrap();
        let cell = Arc::new(RoleCell::new(role, 1));
        let clock = Arc::new(FreezableClock::default());
        let env = ChannelEnv {
            state_dir: state.path().to_path_buf(),
            clock: clock.clone(),
            role: PacerRole { cell: cell.clone(), failover: Some(FailoverSettings::new(node_tag(node))) },
            notices: Some(notices),
            replicated: None,
        };
        let (actor, _) = Actor::spawn(None, ChannelActor, (spec, env)).await.unwrap();
        Streamer { actor, role: cell, source, clock, _state: state }
    }

    async fn status(&self) -> ChannelStatus {
        self.actor.call(ChannelMsg::Status, Some(Duration::from_secs(5))).await.unwrap().success_or(()).unwrap()
    }
}

/// A main and a backup of one channel; the backup follows the main's schedule as the
/// reconciler would make it (here: the main's notices forwarded directly).
async fn pair(id: &str, octet: u8, port: u16) -> (Streamer, Streamer, tokio::sync::mpsc::UnboundedReceiver<ChannelNotice>) {
    pair_with(id, octet, port, None).await
}

async fn pair_with(id: &str, octet: u8, port: u16, hitless: Option<Ipv4Addr>) -> (Streamer, Streamer, tokio::sync::mpsc::UnboundedReceiver<ChannelNotice>) {
    let i = common::items();
    let mut spec = common::spec(id, octet, port, vec![i.h264_aac.clone(), i.mpeg2_mp2.clone()]);
    spec.output.hitless_group = hitless;
    let (main_tx, mut main_rx) = tokio::sync::mpsc::unbounded_channel();
    let (backup_tx, backup_rx) = tokio::sync::mpsc::unbounded_channel();
    let main = Streamer::start(&spec, "node-a", Ipv4Addr::new(127, 0, 0, 1), Role::Main, main_tx).await;
    let backup = Streamer::start(&spec, "node-b", Ipv4Addr::new(127, 0, 0, 2), Role::Backup, backup_tx).await;
    let follower = backup.actor.clone();
    tokio::spawn(async move {
        while let Some(n) = main_rx.recv().await {
            if let ChannelNotice::Schedule { schedule, .. } = n {
                let _ = follower.cast(ChannelMsg::AdoptSchedule(schedule));
            }
        }
    });
    wait_for(Duration::from_secs(30), "the main on air", async || main.status().await.on_air.then_some(())).await;
    wait_for(Duration::from_secs(30), "the backup in step with the main", async || {
        backup.status().await.shadow.and_then(|s| s.matched.filter(|_| s.hearing))
    })
    .await;
    (main, backup, backup_rx)
}

fn from(d: &Datagram, source: Ipv4Addr) -> bool {
    d.source.ip() == IpAddr::V4(source)
}

/// Longest silence between consecutive datagrams.
fn largest_gap(datagrams: &[Datagram]) -> Duration {
    datagrams.windows(2).map(|w| w[1].arrival.saturating_sub(w[0].arrival)).max().unwrap_or_default()
}

async fn capture_until(capture: &Capture, n: u64) {
    wait_for(Duration::from_secs(30), &format!("{n} datagrams captured"), async || (capture.count() >= n).then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_takes_over_a_dead_main_without_losing_a_packet() {
    let (main, backup, mut notices) = pair("fo-kill", 61, 5061).await;
    let capture = Capture::start(Ipv4Addr::new(239, 255, 77, 61), 5061, Ipv4Addr::LOCALHOST).unwrap();
    capture_until(&capture, 300).await;
    // The main dies (its actor and pacing thread stop; nothing more is sent).
    main.actor.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    let took = wait_for(Duration::from_secs(10), "the backup to take over", async || {
        match notices.try_recv() {
            Ok(ChannelNotice::TookOver { epoch, .. }) => Some(epoch),
            _ => None,
        }
    })
    .await;
    assert_eq!(took, 2, "the takeover outbids the main's epoch");
    assert_eq!(backup.role.get(), (Role::Main, 2));
    let seen = capture.count();
    capture_until(&capture, seen + 300).await;
    let datagrams = capture.finish();
    let status = backup.status().await;
    assert!(status.on_air && status.takeovers == 1, "{status:?}");

    // One source at a time: all of the main's datagrams, then all of the backup's.
    let switch = datagrams.iter().position(|d| from(d, backup.source)).expect("the backup sent");
    assert!(switch > 0 && datagrams[..switch].iter().all(|d| from(d, main.source)));
    assert!(datagrams[switch..].iter().all(|d| from(d, backup.source)), "the dead main sent again");
    let gap = largest_gap(&datagrams);
    assert!(gap < Duration::from_millis(250), "receiver gap {gap:?}");

    // One continuous stream: the missed datagrams were re-sent, so no continuity
    // counter, PCR or table error at the switch.
    let ts = ts_bytes(&datagrams);
    let report = analyze_bytes(&ts, AnalyzerConfig::default());
    assert!(report.p1_errors.is_empty() && report.p2_errors.is_empty(), "{}", common::describe(&report));
    backup.actor.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_main_that_wakes_after_a_takeover_never_sends_again() {
    let (main, backup, _notices) = pair("fo-freeze", 62, 5062).await;
    let capture = Capture::start(Ipv4Addr::new(239, 255, 77, 62), 5062, Ipv4Addr::LOCALHOST).unwrap();
    capture_until(&capture, 200).await;
    main.clock.frozen.store(true, Ordering::Release);
    wait_for(Duration::from_secs(10), "the backup to take over", async || (backup.role.get().0 == Role::Main).then_some(())).await;
    let seen = capture.count();
    capture_until(&capture, seen + 100).await;
    // The main wakes up: before its first datagram it hears the new main (its stream or
    // its higher epoch) and stands down.
    main.clock.frozen.store(false, Ordering::Release);
    wait_for(Duration::from_secs(10), "the woken main to stand down", async || (main.role.get().0 == Role::Backup).then_some(())).await;
    let seen = capture.count();
    capture_until(&capture, seen + 200).await;
    let datagrams = capture.finish();
    let switch = datagrams.iter().position(|d| from(d, backup.source)).expect("the backup sent");
    assert!(datagrams[switch..].iter().all(|d| from(d, backup.source)), "the woken main sent over the new main");
    let status = main.status().await;
    assert_eq!(status.fenced, 1, "{status:?}");
    assert!(!status.on_air);
    let report = analyze_bytes(&ts_bytes(&datagrams), AnalyzerConfig::default());
    assert!(report.p1_errors.is_empty(), "{}", common::describe(&report));
    for s in [main, backup] {
        s.actor.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_named_main_waits_for_the_old_main_to_stop_then_switches_cleanly() {
    let (main, backup, _notices) = pair("fo-named", 63, 5063).await;
    let capture = Capture::start(Ipv4Addr::new(239, 255, 77, 63), 5063, Ipv4Addr::LOCALHOST).unwrap();
    capture_until(&capture, 100).await;
    // Raft names the backup main while the old main still sends (the old main is cut
    // off from Raft but not from the multicast network): the new main does not send
    // over it.
    assert!(backup.role.apply(Role::Main, 2));
    let seen = capture.count();
    capture_until(&capture, seen + 200).await;
    assert!(capture.take().iter().all(|d| from(d, main.source)), "the new main sent over the old one");
    assert!(!backup.status().await.on_air);
    // The old main learns it lost its role and stops; the new main takes over the
    // silent group.
    assert!(main.role.apply(Role::Backup, 2));
    wait_for(Duration::from_secs(10), "the new main on air", async || backup.status().await.on_air.then_some(())).await;
    let seen = capture.count();
    capture_until(&capture, seen + 200).await;
    let datagrams = capture.finish();
    let switch = datagrams.iter().position(|d| from(d, backup.source)).expect("the new main sent");
    assert!(datagrams[..switch].iter().all(|d| from(d, main.source)));
    assert!(datagrams[switch..].iter().all(|d| from(d, backup.source)), "two sources interleaved");
    let gap = largest_gap(&datagrams);
    assert!(gap < Duration::from_millis(250), "receiver gap {gap:?}");
    let report = analyze_bytes(&ts_bytes(&datagrams), AnalyzerConfig::default());
    assert!(report.p1_errors.is_empty() && report.p2_errors.is_empty(), "{}", common::describe(&report));
    let status = main.status().await;
    assert!(!status.on_air && status.shadow.is_some_and(|s| s.hearing), "the old main shadows the new one: {status:?}");
    for s in [main, backup] {
        s.actor.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hitless_the_backup_sends_the_same_stream_on_the_second_path_all_along() {
    let second = Ipv4Addr::new(239, 255, 77, 65);
    let (main, backup, mut notices) = pair_with("fo-hitless", 64, 5064, Some(second)).await;
    let path_a = Capture::start(Ipv4Addr::new(239, 255, 77, 64), 5064, Ipv4Addr::LOCALHOST).unwrap();
    let path_b = Capture::start(second, 5064, Ipv4Addr::LOCALHOST).unwrap();
    capture_until(&path_b, 300).await;
    main.actor.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
    wait_for(Duration::from_secs(10), "the backup to take over", async || match notices.try_recv() {
        Ok(ChannelNotice::TookOver { .. }) => Some(()),
        _ => None,
    })
    .await;
    let seen = path_a.count();
    capture_until(&path_a, seen + 200).await;
    let (a, b) = (path_a.finish(), path_b.finish());
    // Path B: the backup's copy, from the backup only, until it became main.
    assert!(!b.is_empty() && b.iter().all(|d| from(d, backup.source)), "path B is the backup's");
    // Path A before the switch: the main's datagrams, each also on path B (the same
    // stream, packet for packet, apart from the stamps).
    let hashes = |ds: &[Datagram]| -> std::collections::HashSet<u64> {
        ds.iter()
            .filter_map(|d| {
                let ts = ts_bytes(std::slice::from_ref(d));
                let packets: Vec<TsPacket> = ts.chunks_exact(188).map(|c| TsPacket::from_slice(c).unwrap()).collect();
                content_hash(&packets)
            })
            .collect()
    };
    let switch = a.iter().position(|d| from(d, backup.source)).expect("the backup took over path A");
    let (on_a, on_b) = (hashes(&a[..switch]), hashes(&b));
    let shared = on_a.iter().filter(|h| on_b.contains(h)).count();
    assert!(shared * 10 >= on_a.len() * 9 && !on_a.is_empty(), "{shared} of {} datagrams of path A also on path B", on_a.len());
    // While path A had its takeover gap, path B did not: a receiver merging both paths
    // loses nothing.
    let (gap_a, gap_b) = (largest_gap(&a), largest_gap(&b));
    assert!(gap_a >= Duration::from_millis(40), "path A's takeover gap {gap_a:?}");
    assert!(gap_b < Duration::from_millis(30), "path B stayed continuous: largest gap {gap_b:?}");
    let report = analyze_bytes(&ts_bytes(&b), AnalyzerConfig::default());
    assert!(report.p1_errors.is_empty(), "path B: {}", common::describe(&report));
    backup.actor.stop_and_wait(None, Some(Duration::from_secs(10))).await.unwrap();
}
