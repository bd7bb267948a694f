//! Failover of a replicated channel on a 3-node cluster of `headend run` processes on
//! 127.0.0.1-3, each sending from its own address: Raft places a main and a backup, the
//! backup computes the stream in shadow, and when the main is killed (kill -9) or frozen
//! (SIGSTOP) the backup takes over within tens of milliseconds. A receiver on the group
//! checks what an operator's multiplexer would see: one source at a time, no lost or
//! reordered packet (TR 101 290 priority 1 and 2 clean across the switch), decodable
//! by ffprobe; Raft records the new main with a higher epoch and names a new backup.

use headend_actors::playout::capture::{ts_bytes, Capture, Datagram};
use headend_actors::ts::analyzer::{analyze_bytes, AnalyzerConfig};
use headend_cluster_tests::cluster::{stream_request, ClusterBuilder, TestCluster};
use headend_cluster_tests::{http_get, shared_media, wait_for};
use headend_proto::admin as pb;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(30);


fn channel_status(c: &TestCluster, i: usize, id: &str) -> Option<Value> {
    let r = http_get(c.nodes[i].http, &format!("/channels/{id}/status")).ok()?;
    (r.status == 200).then(|| r.json())
}

fn roles(c: &TestCluster, i: usize, id: &str) -> Option<pb::GroupRoles> {
    c.channels(i).ok()?.into_iter().find(|ch| ch.id == id)?.roles
}

struct Placed {
    id: String,
    group: Ipv4Addr,
    port: u16,
    main: usize,
    backup: usize,
}

/// Requests a channel playing `media`, waits until its main is on air and its backup in
/// step with it.
fn place(c: &TestCluster, name: &str, group: &str, port: u16, media: &std::path::Path) -> Placed {
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    let mut req = stream_request(name, group, port.into());
    req.media_folder = media.display().to_string();
    let mut admin = c.admin(leader);
    let d = c.block_on(admin.request_stream(req)).expect("request stream").into_inner();
    let (main, backup) = (c.index_of(&d.main_node), c.index_of(&d.backup_node));
    let id = d.channel_id.clone();
    wait_for(CONVERGE, "the main on air", || channel_status(c, main, &id).filter(|s| s["on_air"] == true));
    wait_for(CONVERGE, "the backup in step with the main", || {
        channel_status(c, backup, &id).filter(|s| s["shadow"]["hearing"] == true && !s["shadow"]["matched"].is_null())
    });
    Placed { id, group: group.parse().unwrap(), port, main, backup }
}

fn capture_until(capture: &Capture, n: u64) {
    wait_for(CONVERGE, &format!("{n} datagrams captured"), || (capture.count() >= n).then_some(()));
}

fn from(d: &Datagram, c: &TestCluster, i: usize) -> bool {
    d.source.ip() == IpAddr::V4(c.nodes[i].ip)
}

/// What the receiver saw, checked: the old main's datagrams, then only the new main's;
/// the largest silence; TR 101 290 P1/P2 clean; ffprobe decodes it.
fn check_switch(c: &TestCluster, datagrams: &[Datagram], old: usize, new: usize) -> Duration {
    let switch = datagrams.iter().position(|d| from(d, c, new)).expect("the new main sent");
    assert!(switch > 0 && datagrams[..switch].iter().all(|d| from(d, c, old)), "before the switch: only the old main");
    let late = datagrams[switch..].iter().filter(|d| !from(d, c, new)).count();
    assert_eq!(late, 0, "{late} datagrams from another source after the switch");
    let gap = datagrams.windows(2).map(|w| w[1].arrival.saturating_sub(w[0].arrival)).max().unwrap();
    let ts = ts_bytes(datagrams);
    let report = analyze_bytes(&ts, AnalyzerConfig::default());
    let errors: Vec<String> = report.p1_errors.iter().chain(&report.p2_errors).take(10).map(|e| format!("{e:?}")).collect();
    assert!(errors.is_empty(), "TR 101 290 errors across the switch:\n{}", errors.join("\n"));
    assert_decodes(&ts);
    gap
}

/// ffprobe finds H.264 video and AAC audio in `ts`.
fn assert_decodes(ts: &[u8]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), ts).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(file.path())
        .output()
        .expect("ffprobe runs");
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.status.success() && codecs.contains("h264") && codecs.contains("aac"), "ffprobe: {codecs}");
}

#[test]
fn kill_9_of_the_main_the_backup_takes_over_and_raft_records_it() {
    let media = shared_media();
    let mut c = ClusterBuilder::new(3).start();
    let p = place(&c, "Failover Kill", "239.255.213.1", 5401, media.path());
    let capture = Capture::start(p.group, p.port, Ipv4Addr::LOCALHOST).unwrap();
    // The backup records the group it backs up.
    wait_for(CONVERGE, "the backup recording the group", || {
        let r = http_get(c.nodes[p.backup].http, "/recordings/status").ok().filter(|r| r.status == 200)?.json();
        r["channels"].as_array()?.iter().find(|ch| ch["channel"] == p.id.as_str() && ch["recording"] == true && ch["datagrams"].as_u64() > Some(0)).map(|_| ())
    });
    capture_until(&capture, 300);
    c.kill(p.main);
    let took = wait_for(CONVERGE, "the backup to take over", || {
        channel_status(&c, p.backup, &p.id).filter(|s| s["on_air"] == true && s["takeovers"] == 1)
    });
    // Raft records the new main with a higher epoch and, once the dead node's lease
    // lapses, names the third node backup; it follows the new main in shadow.
    let survivor = (0..3).find(|i| *i != p.main && *i != p.backup).unwrap();
    let r = wait_for(CONVERGE, "the new roles in Raft", || {
        roles(&c, survivor, &p.id).filter(|r| r.main == c.nodes[p.backup].name && r.backup == c.nodes[survivor].name)
    });
    assert_eq!(r.epoch, took["epoch"].as_u64().unwrap());
    assert!(r.epoch >= 2, "{r:?}");
    wait_for(CONVERGE, "the new backup in step", || {
        channel_status(&c, survivor, &p.id).filter(|s| s["shadow"]["hearing"] == true && !s["shadow"]["matched"].is_null())
    });
    let seen = capture.count();
    capture_until(&capture, seen + 300);
    let datagrams = capture.finish();
    let gap = check_switch(&c, &datagrams, p.main, p.backup);
    assert!(gap < Duration::from_millis(300), "receiver gap {gap:?}");
    eprintln!("kill -9 of the main: receiver gap {gap:?}");
}

#[test]
fn a_frozen_main_woken_after_the_takeover_stays_silent_and_becomes_backup() {
    let media = shared_media();
    let c = ClusterBuilder::new(3).start();
    let p = place(&c, "Failover Stop", "239.255.213.2", 5402, media.path());
    let capture = Capture::start(p.group, p.port, Ipv4Addr::LOCALHOST).unwrap();
    capture_until(&capture, 300);
    c.signal(p.main, "STOP");
    wait_for(CONVERGE, "the backup to take over", || {
        channel_status(&c, p.backup, &p.id).filter(|s| s["on_air"] == true && s["takeovers"] == 1)
    });
    let seen = capture.count();
    capture_until(&capture, seen + 100);
    c.signal(p.main, "CONT");
    // The woken main hears the higher epoch before its first datagram and stands down;
    // Raft then has it as backup or nothing, never as main again.
    wait_for(CONVERGE, "the woken main in shadow", || {
        channel_status(&c, p.main, &p.id).filter(|s| s["on_air"] == false && s["role"] == "backup")
    });
    let r = wait_for(CONVERGE, "Raft to name the new main", || {
        roles(&c, p.backup, &p.id).filter(|r| r.main == c.nodes[p.backup].name)
    });
    assert!(r.epoch >= 2);
    let seen = capture.count();
    capture_until(&capture, seen + 300);
    let datagrams = capture.finish();
    let gap = check_switch(&c, &datagrams, p.main, p.backup);
    eprintln!("SIGSTOP of the main: receiver gap {gap:?}");
}

#[test]
fn when_the_content_fails_the_main_fills_in_with_its_backups_recording() {
    let media = shared_media();
    let c = ClusterBuilder::new(3).recorder_segment_secs(2).start();
    let p = place(&c, "Failover Content", "239.255.213.3", 5403, media.path());
    // The main keeps copies of what its backup recorded of the channel.
    let copies = c.nodes[p.main].data_dir.join("channels").join(&p.id).join("peer-recordings");
    wait_for(Duration::from_secs(60), "the main to hold two of the backup's recorded segments", || {
        (headend_actors::playout::peer::list(&copies).len() >= 2).then_some(())
    });
    // The content fails: every item of the channel is gone (the content provider's
    // share emptied). What is already scheduled fails in turn; then the schedule fills
    // in with the recording instead of the slate.
    for e in std::fs::read_dir(media.path()).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let now = wait_for(Duration::from_secs(90), "the backup's recording on air", || {
        let r = http_get(c.nodes[p.main].http, &format!("/channels/{}/now", p.id)).ok().filter(|r| r.status == 200)?.json();
        (r["kind"] == "Recording").then_some(r)
    });
    assert!(now["path"].as_str().unwrap().contains("peer-recordings"), "{now}");
    assert_eq!(now["title"], format!("Recording of {}", p.id));
    // On the wire: one source, TR 101 290 clean while the recording plays, decodable.
    let capture = Capture::start(p.group, p.port, Ipv4Addr::LOCALHOST).unwrap();
    capture_until(&capture, 700);
    let datagrams = capture.finish();
    assert!(datagrams.iter().all(|d| from(d, &c, p.main)), "one source");
    let ts = ts_bytes(&datagrams);
    let report = analyze_bytes(&ts, AnalyzerConfig::default());
    let errors: Vec<String> = report.p1_errors.iter().chain(&report.p2_errors).take(10).map(|e| format!("{e:?}")).collect();
    assert!(report.p1_errors.is_empty(), "TR 101 290 while the recording plays:\n{}", errors.join("\n"));
    assert_decodes(&ts);
    let status = http_get(c.nodes[p.main].http, &format!("/channels/{}/status", p.id)).unwrap().json();
    assert!(status["recording_entries"].as_u64() > Some(0) && status["slate_entries"] == 0, "the recording, not the slate: {status}");
}
