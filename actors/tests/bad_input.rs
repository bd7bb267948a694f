//! Bad items never reach the air: each is refused with a reason that names it, is
//! counted, and the channel plays on (the next item, the fallback, or a slate).

mod common;

use common::{describe, items, now_playing, status, wait_for, Node};
use headend_actors::playout::actor::{ChannelMsg, NowPlaying};
use headend_actors::playout::capture::{ts_bytes, Capture};
use headend_actors::playout::probe::probe;
use headend_actors::playout::reader::ItemError;
use headend_actors::playout::schedule::EntryKind;
use headend_actors::playout::spec::PlaylistSource;
use headend_actors::ts::analyzer::{analyze_bytes, AnalyzerConfig};
use headend_actors::ts::{MuxRate, TsPacket};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const RATE: u64 = 3_000_000;

fn packets(path: &Path) -> Vec<[u8; 188]> {
    std::fs::read(path).unwrap().chunks_exact(188).map(|c| c.try_into().unwrap()).collect()
}

fn write_packets(path: &Path, pkts: &[[u8; 188]]) {
    std::fs::write(path, pkts.concat()).unwrap();
}

/// Hostile variants of a good item, made once.
struct Hostile {
    _dir: tempfile::TempDir,
    sync_garbage: PathBuf,
    packet_lost: PathBuf,
    truncated_odd: PathBuf,
    truncated_mid_pes: PathBuf,
    empty: PathBuf,
    not_ts: PathBuf,
    missing: PathBuf,
    unsupported: PathBuf,
    too_fast: PathBuf,
}

fn ffmpeg(args: &[&str]) {
    let out = std::process::Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().unwrap();
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn hostile() -> &'static Hostile {
    static H: std::sync::OnceLock<Hostile> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = packets(&items().h264_aac);
        let pid = |p: &[u8; 188]| TsPacket(*p).pid().value();

        let mut g = good.clone();
        for p in &mut g[300..303] {
            p.fill(0);
        }
        let sync_garbage = d.join("sync-garbage.ts");
        write_packets(&sync_garbage, &g);

        let mut g = good.clone();
        let video_at = (400..g.len()).find(|&i| pid(&g[i]) == 0x100 && TsPacket(g[i]).has_payload()).unwrap();
        g.remove(video_at);
        let packet_lost = d.join("packet-lost.ts");
        write_packets(&packet_lost, &g);

        let truncated_odd = d.join("truncated-odd.ts");
        let bytes = std::fs::read(&items().h264_aac).unwrap();
        std::fs::write(&truncated_odd, &bytes[..bytes.len() / 2 + 100]).unwrap();

        // Cut right after an audio PES started: the PES declares a length it never gets.
        let audio_start = (good.len() / 2..good.len()).find(|&i| pid(&good[i]) == 0x101 && TsPacket(good[i]).pusi()).unwrap();
        let truncated_mid_pes = d.join("truncated-mid-pes.ts");
        write_packets(&truncated_mid_pes, &good[..=audio_start]);

        let empty = d.join("empty.ts");
        std::fs::write(&empty, b"").unwrap();
        let not_ts = d.join("not-ts.ts");
        std::fs::write(&not_ts, "this is a text file, not a transport stream\n".repeat(100)).unwrap();
        let missing = d.join("missing.ts");

        // MPEG-4 part 2 video (stream type 0x10), which headend does not carry.
        let unsupported = d.join("mpeg4.ts");
        ffmpeg(&["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "1", "-c:v", "mpeg4", "-f", "mpegts", unsupported.to_str().unwrap()]);

        // A constant 8 Mbit/s item for a 3 Mbit/s channel.
        let too_fast = d.join("too-fast.ts");
        ffmpeg(&[
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast",
            "-x264-params", "nal-hrd=cbr", "-b:v", "8M", "-minrate", "8M", "-maxrate", "8M", "-bufsize", "2M",
            "-f", "mpegts", too_fast.to_str().unwrap(),
        ]);
        Hostile { _dir: dir, sync_garbage, packet_lost, truncated_odd, truncated_mid_pes, empty, not_ts, missing, unsupported, too_fast }
    })
}

fn refused(path: &Path) -> ItemError {
    match probe(path, MuxRate::new(RATE)) {
        Ok(f) => panic!("{} was accepted: {f:?}", path.display()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "error names the file: {msg}");
            e
        }
    }
}

#[test]
fn each_kind_of_bad_item_is_refused_with_its_reason() {
    let h = hostile();
    let cases: [(&PathBuf, &str, &str); 9] = [
        (&h.sync_garbage, "corrupt", "sync byte"),
        (&h.packet_lost, "corrupt", "continuity counter"),
        (&h.truncated_odd, "truncated", "188-byte packets"),
        (&h.truncated_mid_pes, "truncated", "PES"),
        (&h.empty, "empty", "empty"),
        (&h.not_ts, "not_ts", "not an MPEG transport stream"),
        (&h.missing, "missing", "No such file"),
        (&h.unsupported, "unsupported_codec", "0x10"),
        (&h.too_fast, "peak_rate", "raise mux_rate"),
    ];
    for (path, kind, says) in cases {
        let e = refused(path);
        assert_eq!(e.kind(), kind, "{}: {e}", path.display());
        assert!(e.to_string().contains(says), "{}: {e}", path.display());
    }
    // The good items pass.
    for good in [&items().h264_aac, &items().mpeg2_mp2, &items().audio_only] {
        probe(good, MuxRate::new(RATE)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_items_are_skipped_and_the_stream_stays_clean() {
    let h = hostile();
    let i = items();
    let playlist = vec![i.h264_aac.clone(), h.packet_lost.clone(), h.missing.clone(), h.unsupported.clone(), h.too_fast.clone(), i.audio_only.clone()];
    let spec = common::spec("skip", 20, 5020, playlist);
    let capture = Capture::start(spec.output.group, spec.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start(vec![spec]).await;
    common::wait_for_entry("skip", 2, Duration::from_millis(500)).await;
    let st = status("skip").await.unwrap();
    node.stop().await;
    for kind in ["corrupt", "missing", "unsupported_codec", "peak_rate"] {
        assert!(st.skipped.get(kind).copied().unwrap_or(0) >= 1, "{kind} counted: {:?}", st.skipped);
    }
    assert!(st.recent_errors.iter().any(|e| e.contains("packet-lost.ts")), "{:?}", st.recent_errors);
    let r = analyze_bytes(&ts_bytes(&capture.finish()), AnalyzerConfig::default());
    assert!(r.is_clean(), "{}", describe(&r));
    let titles: Vec<&str> = r.id3.tags.iter().filter_map(|t| t.title.as_deref()).collect();
    let from = titles.iter().position(|t| *t == "Alpha").unwrap();
    assert_eq!(&titles[from..from + 3], &["Alpha", "Charlie", "Alpha"], "only good items air, in order");
}

async fn wait_for_kind(id: &str, kind: EntryKind) -> NowPlaying {
    wait_for(Duration::from_secs(60), &format!("{id} to play a {kind:?}"), async || now_playing(id).await.filter(|n| n.kind == kind)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_playable_plays_the_fallback_then_a_slate() {
    let h = hostile();
    let mut with_fallback = common::spec("fallback", 21, 5021, vec![h.missing.clone(), h.not_ts.clone()]);
    with_fallback.fallback = Some(items().mpeg2_mp2.clone());
    let mut broken_fallback = common::spec("slate", 22, 5022, vec![h.empty.clone()]);
    broken_fallback.fallback = Some(h.sync_garbage.clone());
    let capture = Capture::start(broken_fallback.output.group, broken_fallback.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start(vec![with_fallback, broken_fallback]).await;

    let now = wait_for_kind("fallback", EntryKind::Fallback).await;
    assert_eq!(now.title, "Bravo");
    let slate = wait_for_kind("slate", EntryKind::Slate).await;
    assert!(slate.title.contains("programme will resume"), "{slate:?}");
    // A second of slate on the wire.
    wait_for(Duration::from_secs(30), "a second of slate", async || now_playing("slate").await.filter(|n| n.position_ms > 1000)).await;
    let st = status("slate").await.unwrap();
    node.stop().await;
    assert!(st.slate_entries >= 1 && st.skipped.contains_key("corrupt"), "{st:?}");
    let r = analyze_bytes(&ts_bytes(&capture.finish()), AnalyzerConfig::default());
    assert!(r.is_clean(), "{}", describe(&r));
    assert!(r.pids.keys().any(|p| *p == 0x100), "slate has video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_playlist_applies_at_the_next_item_boundary() {
    let i = items();
    let spec = common::spec("change", 23, 5023, vec![i.h264_aac.clone()]);
    let capture = Capture::start(spec.output.group, spec.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start(vec![spec]).await;
    let first = wait_for(Duration::from_secs(30), "Alpha on air", async || now_playing("change").await.filter(|n| n.title == "Alpha")).await;
    common::channel("change").unwrap().cast(ChannelMsg::SetPlaylist(PlaylistSource::Items(vec![i.audio_only.clone()]))).unwrap();
    // Entries already close to air are kept; Charlie follows within a few items.
    let charlie = wait_for(Duration::from_secs(30), "Charlie on air", async || now_playing("change").await.filter(|n| n.title == "Charlie")).await;
    assert!(charlie.index > first.index);
    common::wait_for_entry("change", charlie.index, Duration::from_millis(500)).await;
    node.stop().await;
    let r = analyze_bytes(&ts_bytes(&capture.finish()), AnalyzerConfig::default());
    assert!(r.is_clean(), "{}", describe(&r));
    let titles: Vec<&str> = r.id3.tags.iter().filter_map(|t| t.title.as_deref()).collect();
    let c = titles.iter().position(|t| *t == "Charlie").unwrap();
    assert_eq!(titles[c - 1], "Alpha", "Alpha played to its end, then Charlie: {titles:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collision_check_holds_back_a_second_streamer() {
    let spec = common::spec("collide", 24, 5024, vec![items().audio_only.clone()]);
    // Another source already sends on the group.
    let stop = Arc::new(AtomicBool::new(false));
    let intruder = {
        let (stop, group, port) = (stop.clone(), spec.output.group, spec.output.port);
        std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_multicast_loop_v4(true).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let _ = s.send_to(&[0x47; 1316], (group, port));
                std::thread::sleep(Duration::from_millis(20));
            }
            s.local_addr().unwrap()
        })
    };
    let capture = Capture::start(spec.output.group, spec.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start(vec![spec]).await;
    wait_for(Duration::from_secs(20), "a collision to be seen", async || status("collide").await.filter(|s| s.collisions >= 2)).await;
    let st = status("collide").await.unwrap();
    assert!(!st.on_air && st.datagrams == 0, "held back while another source sends: {st:?}");
    let before: std::collections::BTreeSet<_> = capture.take().iter().map(|d| d.source).collect();
    assert_eq!(before.len(), 1, "only the intruder on the group: {before:?}");

    stop.store(true, Ordering::Relaxed);
    let intruder_addr = intruder.join().unwrap();
    wait_for(Duration::from_secs(20), "on air once the group is free", async || status("collide").await.filter(|s| s.on_air && s.datagrams > 10)).await;
    node.stop().await;
    let after: Vec<_> = capture.finish().into_iter().filter(|d| d.source != intruder_addr).collect();
    assert!(!after.is_empty(), "headend sends after the intruder stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_loop_kept_in_sled_plays_when_its_file_is_gone() {
    let h = hostile();
    let media = tempfile::tempdir().unwrap();
    let fallback = media.path().join("loop.ts");
    std::fs::copy(&items().mpeg2_mp2, &fallback).unwrap();
    let mut spec = common::spec("stored-fallback", 25, 5025, vec![h.missing.clone()]);
    spec.fallback = Some(fallback.clone());
    let node = Node::start(vec![spec.clone()]).await;
    wait_for_kind("stored-fallback", EntryKind::Fallback).await;
    // The fallback's file goes away (a lost share): entries already scheduled with it
    // fail, then the copy kept in sled is written back and played.
    std::fs::remove_file(&fallback).unwrap();
    let now = wait_for(Duration::from_secs(90), "the stored fallback on air", async || {
        now_playing("stored-fallback").await.filter(|n| n.kind == EntryKind::Fallback && n.path.ends_with("fallback-stored.ts"))
    })
    .await;
    assert_eq!(now.title, "fallback-stored", "{now:?}");
    let st = status("stored-fallback").await.unwrap();
    node.stop().await;
    assert_eq!(st.slate_entries, 0, "never the slate: {st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_item_whose_file_goes_is_planned_out_before_it_airs() {
    let i = items();
    let media = tempfile::tempdir().unwrap();
    let (alpha, charlie) = (media.path().join("01-alpha.ts"), media.path().join("02-charlie.ts"));
    for (from, to) in [(&i.h264_aac, &alpha), (&i.audio_only, &charlie)] {
        std::fs::copy(from, to).unwrap();
        let sidecar = format!("{}.json", from.display());
        if Path::new(&sidecar).is_file() {
            std::fs::copy(&sidecar, format!("{}.json", to.display())).unwrap();
        }
    }
    let mut spec = common::spec("gone", 26, 5026, vec![]);
    spec.playlist = PlaylistSource::Folder(media.path().to_path_buf());
    let capture = Capture::start(spec.output.group, spec.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start(vec![spec]).await;
    // Alpha just on air (Charlie, next, starts more than a second from now): Charlie's
    // file goes.
    let alpha_on = wait_for(Duration::from_secs(30), "Alpha just on air", async || {
        now_playing("gone").await.filter(|n| n.title == "Alpha" && n.position_ms < 300)
    })
    .await;
    std::fs::remove_file(&charlie).unwrap();
    // The next two entries: each is Alpha, none Charlie or the slate.
    let mut aired = std::collections::BTreeMap::new();
    let now = wait_for(Duration::from_secs(30), "two more entries", async || {
        let n = now_playing("gone").await?;
        aired.insert(n.index, (n.title.clone(), n.kind));
        (n.index >= alpha_on.index + 2).then_some(n)
    })
    .await;
    for (index, (title, kind)) in aired.range(alpha_on.index + 1..) {
        assert_eq!((title.as_str(), *kind), ("Alpha", EntryKind::Item), "entry {index}: {aired:?}");
    }
    let st = status("gone").await.unwrap();
    node.stop().await;
    assert_eq!((now.title.as_str(), now.kind), ("Alpha", EntryKind::Item), "{now:?}");
    assert_eq!(st.slate_entries, 0, "never the slate: {st:?}");
    let r = analyze_bytes(&ts_bytes(&capture.finish()), AnalyzerConfig::default());
    assert!(r.is_clean(), "{}", describe(&r));
}
