//! `headend demo`: makes demo items with the FFmpeg libraries if they are missing and
//! returns the embedded demo configuration.

use crate::config::{Config, DEMO_ITEMS};
use headend_actors::encode::testcard::{generate_test_item, AudioCodec, AudioSpec, TestItemSpec, VideoCodec, VideoSpec};
use std::path::Path;
use std::time::Duration;

struct DemoItem {
    title: &'static str,
    artist: &'static str,
    genre: &'static str,
    video: Option<VideoSpec>,
    audio: AudioSpec,
}

fn h264() -> VideoSpec {
    VideoSpec { codec: VideoCodec::H264, width: 1280, height: 720, fps: 25, bitrate: 1_500_000, gop: 25 }
}
fn mpeg2() -> VideoSpec {
    VideoSpec { codec: VideoCodec::Mpeg2, width: 720, height: 576, fps: 25, bitrate: 1_800_000, gop: 12 }
}
fn aac(tone_hz: u32) -> AudioSpec {
    AudioSpec { codec: AudioCodec::Aac, sample_rate: 48_000, channels: 2, bitrate: 128_000, tone_hz }
}
fn mp2(tone_hz: u32) -> AudioSpec {
    AudioSpec { codec: AudioCodec::Mp2, sample_rate: 48_000, channels: 2, bitrate: 192_000, tone_hz }
}

fn items_for(channel: &str) -> [DemoItem; 3] {
    if channel.contains("jazz") {
        [
            DemoItem { title: "Blue in Green Bars", artist: "The Test Pattern Quartet", genre: "Jazz", video: Some(mpeg2()), audio: mp2(440) },
            DemoItem { title: "So What (Tone)", artist: "The Test Pattern Quartet", genre: "Jazz", video: Some(mpeg2()), audio: mp2(554) },
            DemoItem { title: "Radio Interlude", artist: "Audio Only Trio", genre: "Jazz", video: None, audio: mp2(659) },
        ]
    } else {
        [
            DemoItem { title: "Highway to Bars", artist: "AC/Test", genre: "Rock", video: Some(h264()), audio: aac(330) },
            DemoItem { title: "Smoke on the Pattern", artist: "Deep Colour", genre: "Rock", video: Some(h264()), audio: aac(392) },
            DemoItem { title: "Sweet Child o' Tone", artist: "Sines N' Roses", genre: "Rock", video: Some(h264()), audio: aac(494) },
        ]
    }
}

/// Seconds per demo item.
pub const DEMO_ITEM_SECONDS: u64 = 12;

/// The demo configuration, with its items created under `data_dir/demo` if missing.
/// Blocking (encodes with the FFmpeg libraries).
pub fn prepare(data_dir: &Path) -> anyhow::Result<Config> {
    let config = Config::demo(data_dir);
    for channel in &config.channels {
        let dir = data_dir.join("demo").join(&channel.id);
        std::fs::create_dir_all(&dir)?;
        for (file, item) in DEMO_ITEMS.iter().zip(items_for(&channel.id)) {
            let path = dir.join(file);
            let sidecar = dir.join(format!("{file}.json"));
            let meta = serde_json::json!({
                "media_id": format!("{}-{}", channel.id, file.trim_end_matches(".ts")),
                "title": item.title, "artist": item.artist, "album": "headend demo", "genre": item.genre,
            });
            std::fs::write(&sidecar, serde_json::to_vec_pretty(&meta)?)?;
            if !path.exists() {
                eprintln!("making demo item {} ({} - {})", path.display(), item.artist, item.title);
                let spec = TestItemSpec {
                    title: item.title.into(),
                    artist: item.artist.into(),
                    duration: Duration::from_secs(DEMO_ITEM_SECONDS),
                    video: item.video,
                    audio: Some(item.audio),
                };
                generate_test_item(&spec, &path)?;
            }
        }
    }
    let fallback = data_dir.join("demo").join("fallback.ts");
    if !fallback.exists() {
        eprintln!("making demo fallback {}", fallback.display());
        let spec = TestItemSpec {
            title: "We'll be right back".into(),
            artist: "headend".into(),
            duration: Duration::from_secs(DEMO_ITEM_SECONDS),
            video: Some(mpeg2()),
            audio: Some(mp2(1000)),
        };
        generate_test_item(&spec, &fallback)?;
    }
    Ok(config)
}
