//! `headend demo`: writes demo songs (WAV + sidecar metadata) into a local folder the demo
//! channels sync from, makes the fallback item with the FFmpeg libraries if missing, and
//! returns the embedded demo configuration. The node then syncs, renders each song with
//! the built-in template, encodes it and plays it.

use crate::config::Config;
use crate::demo_media::{songs_for, write_sidecar, write_song};
use headend_actors::encode::testcard::{generate_test_item, AudioCodec, AudioSpec, TestItemSpec, VideoCodec, VideoSpec};
use std::path::Path;
use std::time::Duration;

fn mpeg2() -> VideoSpec {
    VideoSpec { codec: VideoCodec::Mpeg2, width: 720, height: 576, fps: 25, bitrate: 1_800_000, gop: 12 }
}
fn mp2(tone_hz: u32) -> AudioSpec {
    AudioSpec { codec: AudioCodec::Mp2, sample_rate: 48_000, channels: 2, bitrate: 192_000, tone_hz }
}

/// Seconds of the fallback item.
pub const FALLBACK_SECONDS: u64 = 12;

/// The demo configuration, with its songs and fallback created under `data_dir/demo`
/// if missing. Blocking (writes audio, encodes the fallback).
pub fn prepare(data_dir: &Path) -> anyhow::Result<Config> {
    std::fs::create_dir_all(data_dir)?;
    // The channels sync from a file:// URL, which needs an absolute path.
    let data_dir = std::fs::canonicalize(data_dir)?;
    let config = Config::demo(&data_dir);
    for channel in &config.channels {
        let dir = data_dir.join("demo").join("source").join(&channel.id);
        std::fs::create_dir_all(&dir)?;
        for song in songs_for(&channel.id) {
            let path = dir.join(song.file);
            write_sidecar(song, &dir, &channel.id)?;
            if !path.exists() {
                eprintln!("making demo song {} ({} - {})", path.display(), song.artist, song.title);
                write_song(song, &path)?;
            }
        }
    }
    let fallback = data_dir.join("demo").join("fallback.ts");
    if !fallback.exists() {
        eprintln!("making demo fallback {}", fallback.display());
        let spec = TestItemSpec {
            title: "We'll be right back".into(),
            artist: "headend".into(),
            duration: Duration::from_secs(FALLBACK_SECONDS),
            video: Some(mpeg2()),
            audio: Some(mp2(1000)),
        };
        generate_test_item(&spec, &fallback)?;
    }
    Ok(config)
}
