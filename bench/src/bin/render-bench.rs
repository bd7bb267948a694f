//! `render-bench`: a 4-minute song to a 720p25 H.264 + AAC item, as times realtime, in
//! one run: headend (page rendered in chromium-headless-shell with beginFrame, encoded
//! with the FFmpeg libraries) for a page that changes once a second (the built-in
//! template) and for a page animating every frame; the FFmpeg CLI baseline
//! (`ffmpeg -loop 1 -i cover.png -i song.mp3 -c:v libx264 -tune stillimage -shortest -f
//! mpegts out.ts`); and naive per-frame screenshots (`Page.captureScreenshot` in a loop,
//! capture only, extrapolated from `--naive-frames`). See `bench/README.md`.
//!
//! ```sh
//! export CARGO_TARGET_DIR=$HOME/.cache/headend-target
//! cargo run --release -p headend-bench --bin render-bench -- [--seconds 240] [--naive-frames 100]
//! ```
//!
//! Each headend build runs in a child process (`render-bench child ...`) that reports its
//! peak resident memory (VmHWM): the encode worker's memory, Chromium's processes apart.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use headend_actors::encode::{AudioCodec, AudioProfile, EncodeProfile, LoudnessTarget, TsLayout, VideoCodec, VideoProfile};
use headend_actors::jobs::build::{build, ChannelBuild};
use headend_actors::jobs::scan::scan;
use headend_actors::render::{BrowserSettings, Renderer, Template};
use headend_bench::host::{machine, shell};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Song length in seconds.
    #[arg(long, default_value_t = 240)]
    seconds: u32,
    /// Frames captured by the naive screenshot loop.
    #[arg(long, default_value_t = 100)]
    naive_frames: u32,
    /// Keep inputs and outputs here (default: a temporary directory).
    #[arg(long)]
    work: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// One headend build (used by the bench itself).
    Child { media: PathBuf, template: String, items: PathBuf },
}

const FPS: u32 = 25;

/// A page whose bar and square move every frame (CSS animations and a per-frame tick).
const ANIMATED_PAGE: &str = r#"<!doctype html><html><head><style>
html,body{margin:0;width:100%;height:100%;background:#102040;overflow:hidden;font:48px sans-serif;color:#fff}
#sq{position:absolute;top:40%;left:0;width:120px;height:120px;background:#e94;animation:slide 2s linear infinite alternate}
#spin{position:absolute;top:10%;right:10%;width:200px;height:200px;border:16px solid #4ae;border-top-color:transparent;border-radius:50%;animation:spin 1s linear infinite}
@keyframes slide{from{transform:translateX(0)}to{transform:translateX(1100px)}}
@keyframes spin{to{transform:rotate(360deg)}}
</style></head><body><div id="sq"></div><div id="spin"></div><div id="t" style="position:absolute;bottom:5%;left:5%"></div>
<script>
addEventListener('headend:tick', e => { document.getElementById('t').textContent = (e.detail.position_ms / 1000).toFixed(2) + ' s'; });
</script></body></html>"#;

fn profile() -> EncodeProfile {
    EncodeProfile {
        video: Some(VideoProfile::new(VideoCodec::H264, 1280, 720, FPS, 2_500_000)),
        audio: AudioProfile { codec: AudioCodec::Aac, sample_rate: 48_000, channels: 2, bitrate: 192_000 },
        loudness: Some(LoudnessTarget::AtscA85),
        ts: TsLayout::default(),
    }
}

/// Peak resident memory of this process, MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn child(media: &Path, template: &str, items: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let template: Template = template.parse()?;
        let dir = media.parent().context("media has a folder")?;
        let renderer = Renderer::start(BrowserSettings::new(items.join("profiles"))).await?;
        let ch = ChannelBuild {
            channel: "bench".into(),
            name: "Bench FM".into(),
            media_dir: dir.to_path_buf(),
            items_dir: items.to_path_buf(),
            template,
            allow_network: false,
            logo: None,
            profile: profile(),
        };
        let file = scan(dir, &ch.format_key("bench"))?.into_iter().find(|m| m.path == media).context("the song is scanned")?;
        let started = Instant::now();
        let built = build(&renderer, &ch, &file, |_| {}, CancellationToken::new()).await?;
        let secs = started.elapsed().as_secs_f64();
        renderer.shutdown().await;
        println!("{}", serde_json::json!({ "secs": secs, "peak_rss_mb": peak_rss_mb(), "output": built.output }));
        Ok(())
    })
}

fn run(cmd: &mut Command) -> Result<f64> {
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Runs one headend build in a child process; (seconds, peak RSS MB).
fn headend(media: &Path, template: &str, items: &Path) -> Result<(f64, f64)> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args(["child"]).arg(media).arg(template).arg(items).output()?;
    if !out.status.success() {
        bail!("headend build failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))?;
    Ok((v["secs"].as_f64().unwrap_or(0.0), v["peak_rss_mb"].as_f64().unwrap_or(0.0)))
}

/// Naive capture: `Page.captureScreenshot` per frame of the page, frames per second.
async fn naive(page_url: &str, frames: u32, profile: &Path) -> Result<f64> {
    use chromiumoxide::browser::{Browser, BrowserConfig};
    use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
    use chromiumoxide::page::ScreenshotParams;
    let config = BrowserConfig::builder()
        .chrome_executable(BrowserSettings::default_executable())
        .disable_default_args()
        .no_sandbox()
        .user_data_dir(profile)
        .args(["headless", "disable-gpu", "disable-dev-shm-usage", "no-first-run", "disable-background-networking", "disable-sync"])
        .build()
        .map_err(anyhow::Error::msg)?;
    let (mut browser, mut handler) = Browser::launch(config).await?;
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page(page_url).await?;
    page.execute(SetDeviceMetricsOverrideParams::new(1280, 720, 1.0, false)).await?;
    let started = Instant::now();
    for _ in 0..frames {
        page.screenshot(ScreenshotParams::builder().build()).await?;
    }
    let fps = f64::from(frames) / started.elapsed().as_secs_f64();
    browser.close().await?;
    events.abort();
    Ok(fps)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Mode::Child { media, template, items }) = &args.mode {
        return child(media, template, items);
    }
    let tmp = tempfile::tempdir()?;
    let work = args.work.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let media = work.join("media");
    std::fs::create_dir_all(&media)?;
    let song = media.join("song.mp3");
    let cover = media.join("song.mp3.png"); // the song's sidecar artwork
    eprintln!("render-bench: making a {} s song and its cover", args.seconds);
    let d = args.seconds.to_string();
    run(Command::new("ffmpeg").args(["-v", "error", "-y", "-f", "lavfi", "-i"]).arg(format!("sine=frequency=220:duration={d}:sample_rate=48000")).args(["-f", "lavfi", "-i"]).arg(format!("sine=frequency=331:duration={d}:sample_rate=48000")).args(["-filter_complex", "amerge=inputs=2", "-c:a", "libmp3lame", "-b:a", "192k", "-metadata", "title=Benchmark Song", "-metadata", "artist=The Profilers"]).arg(&song))?;
    run(Command::new("ffmpeg").args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720", "-frames:v", "1"]).arg(&cover))?;
    let anim = work.join("animated.html");
    std::fs::write(&anim, ANIMATED_PAGE)?;
    let realtime = f64::from(args.seconds);

    eprintln!("render-bench: headend, page changing once a second");
    let (static_secs, static_mb) = headend(&song, "default", &work.join("items-static"))?;
    eprintln!("render-bench: headend, page animating every frame");
    let (anim_secs, anim_mb) = headend(&song, &format!("file://{}", anim.display()), &work.join("items-anim"))?;
    eprintln!("render-bench: ffmpeg CLI baseline");
    let ffmpeg_secs = run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-i"])
        .arg(&cover)
        .arg("-i")
        .arg(&song)
        .args(["-c:v", "libx264", "-tune", "stillimage", "-shortest", "-f", "mpegts"])
        .arg(work.join("ffmpeg.ts")))?;
    eprintln!("render-bench: naive per-frame screenshots ({} frames)", args.naive_frames);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let url = format!("file://{}", anim.display());
    let naive_fps = rt.block_on(naive(&url, args.naive_frames, &work.join("naive-profile")))?;

    let x = |secs: f64| realtime / secs;
    let naive_x = naive_fps / f64::from(FPS);
    println!("Machine: {}; {}; {}", machine(), shell("ffmpeg", &["-version"]), shell(&BrowserSettings::default_executable().display().to_string(), &["--version"]));
    println!("Song: {} s, 48 kHz stereo MP3; output 1280x720p25 H.264 (2.5 Mbit/s VBV) + AAC 192 kbit/s, A/85 loudness.\n", args.seconds);
    println!("| run | wall s | × realtime | ÷ ffmpeg CLI | peak RSS of the encode worker MB |");
    println!("|---|---|---|---|---|");
    println!("| headend, page changing once a second (built-in template) | {static_secs:.1} | {:.1} | {:.2} | {static_mb:.0} |", x(static_secs), x(static_secs) / x(ffmpeg_secs));
    println!("| headend, page animating every frame | {anim_secs:.1} | {:.2} | {:.2} | {anim_mb:.0} |", x(anim_secs), x(anim_secs) / x(ffmpeg_secs));
    println!("| ffmpeg CLI: still cover + song (`-tune stillimage`) | {ffmpeg_secs:.1} | {:.1} | 1.00 | – |", x(ffmpeg_secs));
    println!(
        "| naive `Page.captureScreenshot` per frame (capture only, {} frames: {naive_fps:.1} frames/s) | {:.0} (extrapolated) | {naive_x:.2} | {:.2} | – |",
        args.naive_frames,
        realtime * f64::from(FPS) / naive_fps,
        naive_x / x(ffmpeg_secs)
    );
    Ok(())
}
