//! End to end on the real binary: a rendered channel's media folder (songs with tags and
//! sidecars, one corrupt file, one hostile title) is rendered in headless Chromium with
//! the built-in template, encoded with the FFmpeg libraries and played out. The encode
//! status API, the thumbnail, the job controls and the output on the wire are checked.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use headend_cluster_tests::{analyze, capture, datagrams_in, describe, Channel, Headend};
use serde_json::Value;

const ENCODE_TIMEOUT: Duration = Duration::from_secs(240);

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn song(dir: &Path, file: &str, hz: u32, secs: u32, title: &str, artist: &str) {
    let src = format!("sine=frequency={hz}:duration={secs}:sample_rate=44100");
    let t = format!("title={title}");
    let a = format!("artist={artist}");
    ffmpeg(&["-f", "lavfi", "-i", &src, "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", "-metadata", &t, "-metadata", &a, "-metadata", "genre=Rock", &dir.join(file).display().to_string()]);
}

fn post(h: &Headend, path: &str) -> (u16, Value) {
    let r = h.request("POST", path);
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

fn jobs(h: &Headend) -> Vec<Value> {
    let r = h.get("/encode/status");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["jobs"].as_array().cloned().unwrap_or_default()
}

fn job<'a>(jobs: &'a [Value], media: &str) -> Option<&'a Value> {
    jobs.iter().find(|j| j["media_id"] == media)
}

#[test]
fn media_are_rendered_encoded_and_played() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    song(&media, "01-first.mp3", 440, 6, "First Light", "The Renderers");
    song(&media, "02-second.mp3", 660, 5, "placeholder", "Nobody");
    // The sidecar wins over tags; a hostile title is data, never markup.
    std::fs::write(media.join("02-second.mp3.json"), br#"{"title": "<img src=x onerror=alert(1)>", "artist": "Mallory"}"#).unwrap();
    std::fs::write(media.join("03-broken.mp3"), b"ID3\x04\0\0\0\0\0\0 this is not audio at all").unwrap();

    let mut ch = Channel::new("rendered", 31, 5301, &[]);
    ch.mux_rate = 2_000_000;
    ch.extra = format!(
        "[channels.render]\ntemplate = \"default\"\nmedia = {}\n\n[channels.encode]\nvideo = \"h264\"\nwidth = 640\nheight = 360\nfps = 25\nvideo_bitrate = 1000000\naudio = \"aac\"\naudio_bitrate = 128000\n",
        headend_cluster_tests::toml_str(&media.display().to_string())
    );
    let cap = capture(ch.group, ch.port);
    let mut h = Headend::builder().channel(ch.clone()).spawn();

    // Both songs are built, the corrupt file fails with a reason that names it.
    // A timeout prints the jobs as last seen: a queued job's reason (for example too little
    // free disk for a build) says why nothing was built.
    let deadline = std::time::Instant::now() + ENCODE_TIMEOUT;
    let all = loop {
        let all = jobs(&h);
        let done = all.iter().filter(|j| j["state"] == "done").count();
        let failed = all.iter().filter(|j| j["state"] == "failed").count();
        if done == 2 && failed == 1 {
            break all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {ENCODE_TIMEOUT:?} waiting for two items built and one failure; jobs: {}",
            serde_json::to_string_pretty(&all).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    let broken = job(&all, "03-broken.mp3").expect("broken job listed");
    let reason = broken["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("03-broken.mp3"), "reason names the file: {reason}");
    let first = job(&all, "01-first.mp3").expect("first job listed");
    assert_eq!(first["title"], "First Light");
    assert_eq!(first["artist"], "The Renderers");
    assert_eq!(first["progress_percent"], 100.0);
    let output = first["output"].as_str().expect("output path");
    assert!(Path::new(output).exists(), "{output}");
    let thumb = first["thumbnail_url"].as_str().expect("thumbnail url");
    let png = h.request("GET", thumb);
    assert_eq!(png.status, 200, "thumbnail {thumb}: {:?}", png.headers);
    assert!(png.headers.iter().any(|(k, v)| k == "content-type" && v == "image/png"), "{:?}", png.headers);
    assert!(png.body.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG ({} bytes)", png.body.len());

    // ffprobe sees the channel's format in the item.
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height,r_frame_rate", "-of", "json", output])
        .output()
        .unwrap();
    let probe: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let streams = probe["streams"].as_array().unwrap();
    assert!(streams.iter().any(|s| s["codec_name"] == "h264" && s["width"] == 640 && s["height"] == 360 && s["r_frame_rate"] == "25/1"), "{probe}");
    assert!(streams.iter().any(|s| s["codec_name"] == "aac"), "{probe}");

    // Controls: restarting the failed job fails it again with its reason; unknown ids 404.
    let id = broken["id"].as_str().unwrap();
    let (status, body) = post(&h, &format!("/encode/jobs/{id}/start"));
    assert_eq!(status, 202, "{body}");
    let (status, _) = post(&h, "/encode/jobs/0000000000000000/cancel");
    assert_eq!(status, 404);
    headend_cluster_tests::wait_for(Duration::from_secs(60), "the restarted job to fail again", || {
        job(&jobs(&h), "03-broken.mp3").filter(|j| j["state"] == "failed").map(|_| ())
    });

    // On air: the hostile title arrives as text in now playing, and the stream is clean.
    headend_cluster_tests::wait_for(Duration::from_secs(90), "the rendered items on air", || {
        h.now(&ch.id).filter(|n| n.title == "<img src=x onerror=alert(1)>" || n.title == "First Light").map(|_| ())
    });
    let _ = cap.take();
    let wanted = datagrams_in(ch.mux_rate, Duration::from_secs(4));
    headend_cluster_tests::wait_for(Duration::from_secs(20), "4 s of output", || (cap.count() >= wanted).then_some(()));
    let report = analyze(&cap.take());
    assert!(report.p1_error_count() == 0 && report.p2_error_count() == 0, "{}", describe(&report));
    h.signal("TERM");
    assert!(h.wait_exit(Duration::from_secs(20)).is_some(), "headend stops on SIGTERM");
}
