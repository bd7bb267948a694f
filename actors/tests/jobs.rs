//! Encode jobs with the real parts: the node's browser (chromium-headless-shell) renders
//! the built-in template for a song, the FFmpeg libraries encode it, and the pool builds
//! a folder of media, reports status, rebuilds on a change and keeps a failure's reason.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use headend_actors::encode::{AudioCodec, AudioProfile, EncodeProfile, LoudnessTarget, TsLayout, VideoCodec, VideoProfile};
use headend_actors::jobs::build::{build, ChannelBuild};
use headend_actors::jobs::pool::{self, EncodePool, PoolArgs, PoolSettings};
use headend_actors::jobs::record::JobRecords;
use headend_actors::jobs::scan::scan;
use headend_actors::jobs::status::{EncodeStatus, JobState};
use headend_actors::render::{BrowserSettings, Renderer, Template};
use headend_actors::ts::analyzer::analyze_file;
use tokio_util::sync::CancellationToken;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A tagged MP3 sine of `secs` seconds.
fn song(path: &Path, hz: u32, secs: u32, title: &str) {
    let src = format!("sine=frequency={hz}:duration={secs}:sample_rate=44100");
    let t = format!("title={title}");
    ffmpeg(&["-f", "lavfi", "-i", &src, "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", "-metadata", &t, "-metadata", "artist=Test Artist", &path.display().to_string()]);
}

fn profile() -> EncodeProfile {
    let mut video = VideoProfile::new(VideoCodec::H264, 320, 180, 25, 600_000);
    video.gop = 25;
    EncodeProfile {
        video: Some(video),
        audio: AudioProfile { codec: AudioCodec::Aac, sample_rate: 48_000, channels: 2, bitrate: 128_000 },
        loudness: Some(LoudnessTarget::AtscA85),
        ts: TsLayout::default(),
    }
}

fn channel(media: &Path, items: &Path) -> ChannelBuild {
    ChannelBuild {
        channel: "jobs-test".into(),
        name: "Jobs Test".into(),
        media_dir: media.into(),
        items_dir: items.into(),
        template: Template::Default,
        allow_network: false,
        logo: None,
        profile: profile(),
    }
}

async fn renderer(dir: &Path) -> Renderer {
    Renderer::start(BrowserSettings::new(dir.join("profiles"))).await.expect("chromium-headless-shell starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_build_renders_and_encodes_a_song() {
    let dir = tempfile::tempdir().unwrap();
    let (media, items) = (dir.path().join("media"), dir.path().join("items"));
    std::fs::create_dir_all(&media).unwrap();
    song(&media.join("a.mp3"), 440, 3, "Alpha");
    let r = renderer(dir.path()).await;
    let ch = channel(&media, &items);
    let found = scan(&media, &ch.format_key("t")).unwrap();
    assert_eq!(found.len(), 1);
    let built = build(&r, &ch, &found[0], |_| {}, CancellationToken::new()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.title, "Alpha");
    assert!(built.output.starts_with(&items), "{}", built.output.display());
    assert!(built.thumbnail.as_ref().is_some_and(|t| t.exists()), "thumbnail written");
    let sidecar: serde_json::Value = serde_json::from_slice(&std::fs::read(built.output.with_extension("json")).unwrap()).unwrap();
    assert_eq!(sidecar["title"], "Alpha");
    // The item is a valid TS with both streams (its broadcast compliance on the wire is
    // the playout's job, checked in cluster-tests/tests/render_encode.rs).
    let report = analyze_file(&built.output).unwrap();
    assert_eq!(report.error_count(headend_actors::ts::analyzer::ErrorKind::ContinuityCountError), 0, "{:?}", report.error_counts);
    r.shutdown().await;
}

async fn wait_status(actor: &ractor::ActorRef<pool::PoolMsg>, what: &str, timeout: Duration, ok: impl Fn(&EncodeStatus) -> bool) -> EncodeStatus {
    let deadline = Instant::now() + timeout;
    loop {
        let s = pool::status(actor).await.expect("pool answers");
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_builds_a_folder_rebuilds_on_change_and_keeps_failures() {
    let dir = tempfile::tempdir().unwrap();
    let (media, items) = (dir.path().join("media"), dir.path().join("items"));
    std::fs::create_dir_all(&media).unwrap();
    song(&media.join("01.mp3"), 440, 2, "One");
    song(&media.join("02.mp3"), 550, 2, "Two");
    std::fs::write(media.join("03.mp3"), b"not audio").unwrap();
    let r = renderer(dir.path()).await;
    let records = JobRecords::open(&dir.path().join("encode.sled")).unwrap();
    let settings = PoolSettings { workers: 2, min_free_bytes: 0, scan_every: Duration::from_millis(300), template_check_every: Duration::from_secs(60) };
    let args = PoolArgs { channels: vec![channel(&media, &items)], renderer: r.clone(), records, settings };
    let (actor, handle) = ractor::Actor::spawn(None, EncodePool, args).await.unwrap();

    let s = wait_status(&actor, "2 done, 1 failed", Duration::from_secs(180), |s| s.done == 2 && s.failed == 1).await;
    let failed = s.jobs.iter().find(|j| j.state == JobState::Failed).unwrap();
    assert_eq!(failed.media_id, "03.mp3");
    assert!(failed.reason.as_deref().unwrap_or("").contains("03.mp3"), "{failed:?}");
    let one = s.jobs.iter().find(|j| j.media_id == "01.mp3").unwrap();
    assert_eq!((one.title.as_str(), one.progress_percent), ("One", 100.0));
    let old = one.output.clone().unwrap();
    assert!(old.exists());

    // A sidecar changes the metadata: the item is rebuilt under a new name, the old one goes.
    std::fs::write(media.join("01.mp3.json"), br#"{"title": "One (edit)"}"#).unwrap();
    let s = wait_status(&actor, "the rebuilt item", Duration::from_secs(120), |s| {
        s.jobs.iter().any(|j| j.media_id == "01.mp3" && j.state == JobState::Done && j.title == "One (edit)")
    })
    .await;
    let new = s.jobs.iter().find(|j| j.media_id == "01.mp3").unwrap().output.clone().unwrap();
    assert_ne!(new, old);
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.exists() {
        assert!(Instant::now() < deadline, "the replaced item {} is removed", old.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(new.exists());
    actor.stop(None);
    handle.await.unwrap();
    r.shutdown().await;
}
