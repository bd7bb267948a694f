//! End to end: real items (FFmpeg libraries) played by the channel actor to a multicast
//! group on loopback, captured, checked with the project's TR 101 290 analyzer and
//! decoded by FFmpeg.

mod common;

use common::{describe, status, wait_for_entry, Node};
use headend_actors::playout::capture::{ts_bytes, Capture};
use headend_actors::ts::analyzer::{analyze_bytes, analyze_file, AnalyzerConfig};
use headend_actors::ts::parser::{Id3Tag, PesHeader};
use headend_actors::ts::pes::{find_timestamps, read_timestamp};
use headend_actors::ts::{Pts, TsPacket};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

fn ffmpeg_decode_errors(path: &Path) -> String {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ffprobe_codecs(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim_end_matches(',').to_string()).collect()
}

/// Packet index of the ID3 tag that starts the last item in the capture (the last
/// title change on the metadata PID).
fn last_item_start(ts: &[u8]) -> Option<usize> {
    let packets: Vec<TsPacket> = ts.chunks_exact(188).map(|c| TsPacket::from_slice(c).unwrap()).collect();
    let mut starts = Vec::new();
    let mut previous: Option<String> = None;
    for (i, p) in packets.iter().enumerate() {
        if p.pid().value() != 0x102 || !p.pusi() {
            continue;
        }
        // The tag is two packets: this one and the next on the metadata PID.
        let mut pes = p.payload().to_vec();
        if let Some(next) = packets[i + 1..].iter().find(|q| q.pid().value() == 0x102) {
            pes.extend_from_slice(next.payload());
        }
        let Ok(h) = PesHeader::parse(&pes) else { continue };
        let title = Id3Tag::parse(&pes[h.header_len..]).ok().and_then(|t| t.title().map(str::to_owned));
        if title.is_some() && title != previous {
            if previous.is_some() {
                starts.push(i);
            }
            previous = title;
        }
    }
    starts.last().copied()
}

/// DTS (else PTS) of every PES on `pids`, in stream order.
fn decode_timestamps(ts: &[u8], pids: &[u16]) -> Vec<Pts> {
    ts.chunks_exact(188)
        .map(|c| TsPacket::from_slice(c).unwrap())
        .filter(|p| pids.contains(&p.pid().value()) && p.pusi())
        .filter_map(|p| {
            let t = find_timestamps(p.payload())?;
            let at = t.dts_at.or(t.pts_at)?;
            Some(read_timestamp(&p.payload()[at..at + 5]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kinds_of_items_play_as_one_clean_cbr_stream() {
    let items = common::items();
    let playlist = vec![items.h264_aac.clone(), items.mpeg2_mp2.clone(), items.audio_only.clone()];
    let spec = common::spec("mix", 10, 5010, playlist);
    let capture = Capture::start(spec.output.group, spec.output.port, Ipv4Addr::LOCALHOST).unwrap();
    let node = Node::start(vec![spec.clone()]).await;

    // All three joins: Alpha -> Bravo -> Charlie -> Alpha, then a second into Alpha.
    wait_for_entry("mix", 3, Duration::from_secs(1)).await;
    let datagrams = capture.finish();
    let st = status("mix").await.unwrap();
    node.stop().await;

    assert!(datagrams.iter().all(|d| d.bytes.len() == 7 * 188), "7 packets per datagram");
    let sources: std::collections::BTreeSet<_> = datagrams.iter().map(|d| d.source).collect();
    assert_eq!(sources.len(), 1, "one source");
    assert!(st.skipped.is_empty(), "nothing skipped: {:?}", st.skipped);

    let ts = ts_bytes(&datagrams);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.ts");
    std::fs::write(&path, &ts).unwrap();
    let r = analyze_bytes(&ts, AnalyzerConfig::default());

    assert!(r.is_clean(), "TR 101 290 priority 1/2 errors:\n{}", describe(&r));
    assert!(r.max_pcr_interval_ms.unwrap() <= 40.0, "PCR interval {:?}", r.max_pcr_interval_ms);
    assert!(r.max_pcr_accuracy_error_ns.unwrap() <= 100.0, "PCR accuracy {:?} ns", r.max_pcr_accuracy_error_ns);
    assert!(r.max_pat_interval_ms.unwrap() <= 100.0, "PAT interval {:?}", r.max_pat_interval_ms);
    let program = &r.programs[0];
    assert!(program.max_pmt_interval_ms.unwrap() <= 100.0, "PMT interval {:?}", program.max_pmt_interval_ms);
    assert_eq!(program.pcr_pid, Some(0x1FF));

    // Constant bit rate: every 1 s window within 0.1 % of the mux rate.
    let rate = spec.mux_rate.bits_per_second() as f64;
    let (lo, hi) = (r.bitrate.window_min_bps.unwrap(), r.bitrate.window_max_bps.unwrap());
    assert!((lo - rate).abs() / rate < 0.001 && (hi - rate).abs() / rate < 0.001, "bitrate windows {lo}..{hi}");

    // Service information and now-playing metadata.
    assert!(r.sdt.services.iter().any(|s| s.service_name == "Test mix TV" && s.provider_name == "headend tests"), "{:?}", r.sdt);
    assert!(r.sdt.max_interval_ms.unwrap() <= 2000.0);
    assert!(r.eit.max_pf_interval_ms.unwrap() <= 2000.0);
    let present: Vec<&str> = r.eit.present.iter().map(|e| e.name.as_str()).collect();
    for title in ["Alpha", "Bravo", "Charlie"] {
        assert!(present.contains(&title), "EIT present names {present:?}");
    }
    let titles: Vec<&str> = r.id3.tags.iter().filter_map(|t| t.title.as_deref()).collect();
    let first_alpha = titles.iter().position(|t| *t == "Alpha").expect("ID3 Alpha");
    assert_eq!(&titles[first_alpha..first_alpha + 4], &["Alpha", "Bravo", "Charlie", "Alpha"], "ID3 titles in play order");
    assert!(r.id3.max_interval_ms.unwrap() <= 10_000.0);

    // Timestamps never go backwards on any PID; audio runs on across joins with at most
    // one frame more than the items' own PES spacing.
    // Each codec family has its own PID (video 0x100/0x110/0x120, audio
    // 0x101/0x111/0x121); across all PIDs of a role, in stream order, decode times never
    // go backwards, and audio runs on across joins with at most one frame more than the
    // items' own PES spacing.
    let video = decode_timestamps(&ts, &[0x100, 0x110, 0x120]);
    let audio = decode_timestamps(&ts, &[0x101, 0x111, 0x121]);
    assert!(video.len() > 100 && audio.len() > 50, "{} video PES, {} audio PES", video.len(), audio.len());
    for (role, times) in [("video", &video), ("audio", &audio)] {
        let backwards = times.windows(2).filter(|w| w[1].since(w[0]) < 0).count();
        assert_eq!(backwards, 0, "{role} decode timestamps went backwards {backwards} times");
    }
    let item_audio_step = [&items.h264_aac, &items.mpeg2_mp2, &items.audio_only]
        .iter()
        .map(|p| analyze_file(p).unwrap().pids.values().filter(|p| matches!(p.stream_type, Some(0x03 | 0x04 | 0x0F))).map(|p| p.max_pts_forward_gap).max().unwrap())
        .max()
        .unwrap();
    let audio_gap = audio.windows(2).map(|w| w[1].since(w[0])).max().unwrap();
    assert!(audio_gap <= item_audio_step as i64 + 2160, "audio gap at a join {audio_gap} ticks > items' {item_audio_step} + one frame");
    // PMT version changes with the stream set only (3 items of 3 kinds: versions 0,1,2,0).
    assert!(program.pmt_versions.len() >= 3, "PMT versions {:?}", program.pmt_versions);

    // FFmpeg decodes the capture without an error and sees every codec. The capture
    // stops mid-item, cutting that item's last PES short, so the decoded part ends where
    // the last item starts: its ID3 tag goes out at its start packet, before any of its
    // content and after every earlier item's last packet.
    let cut = last_item_start(&ts).expect("a title change in the capture");
    std::fs::write(&path, &ts[..cut * 188]).unwrap();
    let errors = ffmpeg_decode_errors(&path);
    assert!(errors.is_empty(), "ffmpeg decode errors:\n{errors}");
    let codecs = ffprobe_codecs(&path);
    for c in ["h264", "aac", "mpeg2video", "mp2", "timed_id3"] {
        assert!(codecs.iter().any(|x| x == c), "ffprobe codecs {codecs:?}");
    }
}
