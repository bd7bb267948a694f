//! HLS and RTSP delivery of replicated channels.
//!
//! * HLS: `RequestStream` with PROTOCOL_HLS answers the playlist URL on the channel's
//!   main; the playlist slides, its segments start with PAT+PMT, are TR 101 290 clean
//!   alone and continuous one after the other, and ffprobe plays the playlist over HTTP.
//!   After kill -9 of the main, the new main serves it.
//! * RTSP: PROTOCOL_RTSP answers `rtsp://<main>/<channel>`; ffprobe plays it over TCP
//!   (interleaved) and over RTP/UDP, and a bad request gets an RTSP error.

use headend_actors::ts::analyzer::{analyze_bytes, AnalyzerConfig};
use headend_cluster_tests::cluster::{stream_request, ClusterBuilder, TestCluster};
use headend_cluster_tests::{http_get, http_request, shared_media, wait_for};
use headend_proto::admin as pb;
use std::net::SocketAddr;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(30);

/// `(media sequence, [(duration, file)])` of a playlist.
fn parse(text: &str) -> (u64, Vec<(f64, String)>) {
    let sequence = text.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).and_then(|v| v.parse().ok()).expect("media sequence");
    let mut segments = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            let d: f64 = d.trim_end_matches(',').parse().expect("EXTINF duration");
            segments.push((d, lines.next().expect("segment URI").to_owned()));
        }
    }
    (sequence, segments)
}

/// Waits for a playlist of at least `n` segments on `http`.
fn playlist(http: SocketAddr, id: &str, n: usize) -> (u64, Vec<(f64, String)>) {
    wait_for(CONVERGE, &format!("{n} HLS segments on {http}"), || {
        let r = http_get(http, &format!("/hls/{id}/index.m3u8")).ok().filter(|r| r.status == 200)?;
        assert_eq!(r.header("content-type"), Some("application/vnd.apple.mpegurl"));
        let p = parse(&r.body);
        (p.1.len() >= n).then_some(p)
    })
}

fn node_of(c: &TestCluster, name: &str) -> usize {
    c.index_of(name)
}

#[test]
fn a_channel_requested_as_hls_is_served_by_its_main_and_follows_a_failover() {
    let media = shared_media();
    let mut c = ClusterBuilder::new(2).start();
    let leader = c.wait_leader(&[0, 1], CONVERGE);
    let mut req = stream_request("Web Radio", "239.255.215.1", 5501);
    req.protocol = pb::Protocol::Hls as i32;
    req.media_folder = media.path().display().to_string();
    let d = c.block_on(c.admin(leader).request_stream(req)).expect("request stream").into_inner();
    let main = node_of(&c, &d.main_node);
    let http = c.nodes[main].http;
    assert_eq!(d.protocol, pb::Protocol::Hls as i32);
    assert_eq!(d.url, format!("http://{http}/hls/{}/index.m3u8", d.channel_id));

    let (first, segments) = playlist(http, &d.channel_id, 3);
    assert!(segments.iter().all(|(dur, _)| (1.5..3.5).contains(dur)), "segments of about 2 s: {segments:?}");
    let names: Vec<String> = (0..segments.len() as u64).map(|i| format!("{}.ts", first + i)).collect();
    assert_eq!(segments.iter().map(|s| s.1.clone()).collect::<Vec<_>>(), names, "consecutive numbers");
    // Each segment alone starts with PAT+PMT and is clean; consecutive ones are one
    // continuous stream.
    let mut joined = Vec::new();
    for (_, name) in &segments {
        let r = http_request(http, "GET", &format!("/hls/{}/{name}", d.channel_id)).unwrap();
        assert_eq!((r.status, r.body.len() % 188), (200, 0), "{name}");
        assert_eq!(&r.body[1..3], &[0x40, 0x00], "{name} starts with a PAT");
        let report = analyze_bytes(&r.body, AnalyzerConfig::default());
        assert!(report.p1_errors.is_empty(), "{name}: {:?}", report.p1_errors.first());
        joined.extend_from_slice(&r.body);
    }
    let report = analyze_bytes(&joined, AnalyzerConfig::default());
    assert!(report.p1_errors.is_empty() && report.p2_errors.is_empty(), "segments joined: {:?}", report.p1_errors.iter().chain(&report.p2_errors).next());
    // A player reads it over HTTP. (It probes the first segment of the window; the very
    // first segments of a new channel carry only tables until its first item starts, so
    // wait until the window has slid past them.)
    wait_for(CONVERGE, "the HLS window to slide", || (playlist(http, &d.channel_id, 3).0 >= first + 3).then_some(()));
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(&d.url)
        .output()
        .expect("ffprobe runs");
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.status.success() && codecs.contains("h264") && codecs.contains("aac"), "ffprobe {}: {codecs}", d.url);
    // Names the segmenter does not write are never served.
    for bad in ["..%2F..%2Fetc%2Fpasswd", "index.m3u8.tmp", "1.ts.tmp", "x.ts"] {
        let r = http_request(http, "GET", &format!("/hls/{}/{bad}", d.channel_id)).unwrap();
        assert_eq!(r.status, 404, "{bad}");
    }

    // The main dies. With two nodes the survivor has no Raft majority, so nothing can
    // be committed; the data plane does not wait for Raft: the backup takes over and
    // serves the channel as HLS itself.
    let backup = node_of(&c, &d.backup_node);
    c.kill(main);
    let (_, after) = playlist(c.nodes[backup].http, &d.channel_id, 2);
    assert!(!after.is_empty());
    let status = http_get(c.nodes[backup].http, &format!("/channels/{}/status", d.channel_id)).unwrap().json();
    assert_eq!((status["on_air"].as_bool(), status["takeovers"].as_u64(), status["role"].as_str()), (Some(true), Some(1), Some("main")), "{status}");
}


fn ffprobe_codecs(args: &[&str], url: &str) -> String {
    let probe = std::process::Command::new("timeout")
        .arg("20")
        .arg("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .expect("ffprobe runs");
    format!("{}{}", String::from_utf8_lossy(&probe.stdout), String::from_utf8_lossy(&probe.stderr))
}

#[test]
fn a_channel_requested_as_rtsp_plays_over_tcp_and_udp() {
    let media = shared_media();
    let c = ClusterBuilder::new(2).start();
    let leader = c.wait_leader(&[0, 1], CONVERGE);
    let mut req = stream_request("Rtsp News", "239.255.215.2", 5502);
    req.protocol = pb::Protocol::Rtsp as i32;
    req.media_folder = media.path().display().to_string();
    let d = c.block_on(c.admin(leader).request_stream(req)).expect("request stream").into_inner();
    let main = node_of(&c, &d.main_node);
    assert_eq!(d.protocol, pb::Protocol::Rtsp as i32);
    assert_eq!(d.url, format!("rtsp://{}/{}", c.nodes[main].rtsp, d.channel_id));
    wait_for(CONVERGE, "the channel on air on its main", || {
        let s = http_get(c.nodes[main].http, &format!("/channels/{}/now", d.channel_id)).ok()?;
        (s.status == 200).then_some(())
    });
    for transport in ["tcp", "udp"] {
        let out = ffprobe_codecs(&["-rtsp_transport", transport], &d.url);
        assert!(out.contains("h264") && out.contains("aac"), "ffprobe over RTSP/{transport}: {out}");
    }
    // A channel this node does not serve, and a request that is not RTSP.
    let other = format!("rtsp://{}/no-such-channel", c.nodes[main].rtsp);
    let out = ffprobe_codecs(&["-rtsp_transport", "tcp"], &other);
    assert!(out.contains("404"), "{out}");
    let mut s = std::net::TcpStream::connect(c.nodes[main].rtsp).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("RTSP/1.0 400"), "{answer}");
}
