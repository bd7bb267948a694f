//! The test item every tool plays, made once and kept in a cache directory:
//!
//! - `item.ts`: ~10 s of H.264 720p25 + AAC at ~2.5 Mbit/s (VBR, as an encoder writes
//!   it), made with headend's own test-card generator (FFmpeg libraries). headend and
//!   ffmpeg play this file.
//! - a CBR copy for multicat, which plays files at the pace of their PCRs and cannot
//!   loop: `ffmpeg -stream_loop L -i item.ts -c copy -muxrate RATE -f mpegts` with
//!   enough loops to outlast a run, plus the `.aux` timing file made by `ingests`.

use anyhow::{bail, Context};
use headend_actors::encode::testcard::{
    generate_test_item, AudioCodec, AudioSpec, TestItemSpec, VideoCodec, VideoSpec,
};
use headend_actors::ts::analyzer::{Analyzer, AnalyzerConfig};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Length of the test item.
pub const ITEM_SECONDS: u64 = 10;

/// The files a run plays.
#[derive(Debug, Clone)]
pub struct Items {
    /// The VBR item (headend, ffmpeg).
    pub item: PathBuf,
    /// The looped CBR copy (multicat); its `.aux` file sits next to it.
    pub cbr: PathBuf,
    /// PCR PID of the CBR copy.
    pub cbr_pcr_pid: u16,
    /// Average rate of the item (file size over its duration), bit/s.
    pub item_bps: f64,
}

/// The default cache directory: `bench-items` in the build's target directory
/// (`$CARGO_TARGET_DIR`, else the one this binary was built into).
pub fn default_dir() -> PathBuf {
    let built_into = || {
        let exe = std::env::current_exe().ok()?;
        Some(exe.parent()?.parent()?.to_path_buf()) // <target>/release/headend-bench
    };
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).or_else(built_into).unwrap_or_else(std::env::temp_dir);
    target.join("bench-items")
}

/// Makes what is missing in `dir`: the item, and a CBR copy at `rate` lasting at least
/// `cover` (for multicat).
pub fn prepare(dir: &Path, rate: u64, cover: Duration) -> anyhow::Result<Items> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let item = dir.join("item-720p25-h264-aac-10s.ts");
    if !item.exists() {
        eprintln!("making the test item {} ...", item.display());
        generate_test_item(&item_spec(), &item).with_context(|| format!("making {}", item.display()))?;
        let meta = serde_json::json!({"media_id": "bench", "title": "Bench", "artist": "headend-bench"});
        std::fs::write(format!("{}.json", item.display()), meta.to_string())?;
    }
    let item_bps = std::fs::metadata(&item)?.len() as f64 * 8.0 / ITEM_SECONDS as f64;

    // A CBR file lasts exactly its size at the rate: remake it when too short.
    let cbr = dir.join(format!("item-cbr-{rate}.ts"));
    let cbr_seconds = |p: &Path| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 * 8.0 / rate as f64);
    if cbr_seconds(&cbr) < cover.as_secs_f64() {
        let loops = cover.as_secs().div_ceil(ITEM_SECONDS) + 1;
        eprintln!("making the CBR copy {} ({loops} loops) ...", cbr.display());
        let tmp = dir.join(format!("item-cbr-{rate}.tmp.ts"));
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop"])
            .arg((loops - 1).to_string())
            .arg("-i")
            .arg(&item)
            .args(["-c", "copy", "-muxrate"])
            .arg(rate.to_string())
            .args(["-f", "mpegts"])
            .arg(&tmp))?;
        std::fs::rename(&tmp, &cbr)?;
        let _ = std::fs::remove_file(cbr.with_extension("aux"));
    }
    let cbr_pcr_pid = pcr_pid(&cbr)?;
    if !cbr.with_extension("aux").exists() {
        run(Command::new("ingests").arg("-p").arg(cbr_pcr_pid.to_string()).arg(&cbr))?;
    }
    Ok(Items { item, cbr, cbr_pcr_pid, item_bps })
}

/// H.264 1280x720 at 25 fps, 2.3 Mbit/s, 1 s closed GOPs, AAC stereo 128 kbit/s.
fn item_spec() -> TestItemSpec {
    TestItemSpec {
        title: "headend-bench".into(),
        artist: "headend-bench".into(),
        duration: Duration::from_secs(ITEM_SECONDS),
        video: Some(VideoSpec {
            codec: VideoCodec::H264,
            width: 1280,
            height: 720,
            fps: 25,
            bitrate: 2_300_000,
            gop: 25,
        }),
        audio: Some(AudioSpec {
            codec: AudioCodec::Aac,
            sample_rate: 48_000,
            channels: 2,
            bitrate: 128_000,
            tone_hz: 1000,
        }),
    }
}

/// The PCR PID of a file's first program, from the analyzer over its first 4 MB.
fn pcr_pid(path: &Path) -> anyhow::Result<u16> {
    let mut head = Vec::new();
    std::fs::File::open(path)?.take(4 << 20).read_to_end(&mut head)?;
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    analyzer.push(&head, None);
    let report = analyzer.report();
    report
        .programs
        .first()
        .and_then(|p| p.pcr_pid)
        .with_context(|| format!("{}: no program with a PCR PID", path.display()))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
