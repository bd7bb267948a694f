//! Broadcast test items made with the FFmpeg libraries (no CLI): a test pattern with a
//! title card and running timecode, and/or a sine tone, encoded (H.264 or MPEG-2 video;
//! AAC, MP2 or AC-3 audio) and muxed as MPEG-TS. Used by `demo` and the integration
//! tests, and the seed of the encode actor: filter graph → encoders → mpegts muxer.

mod graph;
mod pipeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::atomic::AtomicOutput;
use super::{clean_text, init_ffmpeg, AudioProfile, VideoProfile};

pub use super::{AudioCodec, EncodeError, VideoCodec};

/// Video track: yuv420p, closed GOP, VBV-bounded (maxrate = bufsize = `bitrate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSpec {
    pub codec: VideoCodec,
    /// Even (4:2:0).
    pub width: u32,
    /// Even (4:2:0).
    pub height: u32,
    /// Integer frames per second, e.g. 25.
    pub fps: u32,
    /// bit/s; also the VBV max rate and buffer size.
    pub bitrate: u64,
    /// Frames per closed GOP; the first frame is an IDR/I frame.
    pub gop: u32,
}

/// Audio track: a sine tone at -18 dBFS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpec {
    pub codec: AudioCodec,
    /// Hz, e.g. 48000.
    pub sample_rate: u32,
    /// 1..=8 (default FFmpeg layout for the count; MP2 takes 1 or 2, AC-3 up to 6).
    pub channels: u16,
    /// bit/s, e.g. 192000 (MP2 and AC-3 take only their standard rates).
    pub bitrate: u64,
    /// Tone frequency, below the Nyquist frequency.
    pub tone_hz: u32,
}

/// What to generate. At least one of `video` / `audio` must be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestItemSpec {
    pub title: String,
    pub artist: String,
    pub duration: Duration,
    pub video: Option<VideoSpec>,
    pub audio: Option<AudioSpec>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestItemInfo {
    pub path: PathBuf,
    /// Media duration: video frames / fps, else audio samples / rate (before the last
    /// audio frame's padding).
    pub duration: Duration,
    /// Encoded video frames (= round(duration × fps)).
    pub video_frames: u64,
    /// Encoded audio frames (codec frames, e.g. 1024 samples for AAC).
    pub audio_frames: u64,
    /// File size.
    pub bytes: u64,
}

fn validate(spec: &TestItemSpec) -> Result<(), EncodeError> {
    let bad = |m: String| Err(EncodeError::InvalidSpec(m));
    if spec.video.is_none() && spec.audio.is_none() {
        return bad("neither video nor audio is set; set `video` and/or `audio`".into());
    }
    if spec.duration.is_zero() {
        return bad("duration is zero; give the item a positive duration".into());
    }
    if spec.duration > Duration::from_secs(24 * 3600) {
        return bad(format!("duration {:?} is over 24 h", spec.duration));
    }
    if let Some(v) = &spec.video {
        v.profile().validate()?;
        if video_frames(spec.duration, v.fps) == 0 {
            return bad(format!(
                "duration {:?} is shorter than one video frame at {} fps",
                spec.duration, v.fps
            ));
        }
    }
    if let Some(a) = &spec.audio {
        a.profile().validate()?;
        if a.tone_hz == 0 || a.tone_hz >= a.sample_rate / 2 {
            return bad(format!(
                "tone {} Hz must be above 0 and below half the sample rate ({} Hz)",
                a.tone_hz, a.sample_rate
            ));
        }
    }
    Ok(())
}

impl VideoSpec {
    /// The encoder settings: VBV buffer = one second, x264 `veryfast`.
    pub(crate) fn profile(&self) -> VideoProfile {
        VideoProfile {
            gop: self.gop,
            bufsize: Some(self.bitrate),
            ..VideoProfile::new(self.codec, self.width, self.height, self.fps, self.bitrate)
        }
    }
}

impl AudioSpec {
    pub(crate) fn profile(&self) -> AudioProfile {
        AudioProfile {
            codec: self.codec,
            sample_rate: self.sample_rate,
            channels: self.channels,
            bitrate: self.bitrate,
        }
    }
}

/// round(duration × fps).
fn video_frames(d: Duration, fps: u32) -> u64 {
    ((d.as_nanos() * u128::from(fps) + 500_000_000) / 1_000_000_000) as u64
}

/// Audio samples to encode: as long as the video (whole frames) when there is video, else
/// round(duration × rate).
fn audio_samples(spec: &TestItemSpec, rate: u32) -> u64 {
    let rate = u128::from(rate);
    let samples = match &spec.video {
        Some(v) => {
            let fps = u128::from(v.fps);
            (u128::from(video_frames(spec.duration, v.fps)) * rate + fps / 2) / fps
        }
        None => (spec.duration.as_nanos() * rate + 500_000_000) / 1_000_000_000,
    };
    samples as u64
}

/// Generate a test item into `out` (MPEG-TS). Blocking: run it on a blocking thread.
///
/// Writes `out` + ".tmp", fsyncs it and renames it to `out` (then fsyncs the directory);
/// on error the temporary file is removed and `out` is untouched.
pub fn generate_test_item(spec: &TestItemSpec, out: &Path) -> Result<TestItemInfo, EncodeError> {
    validate(spec)?;
    init_ffmpeg()?;
    let output = AtomicOutput::create(out)?;
    let title = clean_text(&spec.title);
    let artist = clean_text(&spec.artist);
    let counts = pipeline::run(spec, &title, &artist, output.tmp_path())?;
    let bytes = output.commit()?;

    let duration = match (&spec.video, &spec.audio) {
        (Some(v), _) => {
            Duration::from_nanos(counts.video_frames * 1_000_000_000 / u64::from(v.fps))
        }
        (None, Some(a)) => Duration::from_nanos(
            audio_samples(spec, a.sample_rate) * 1_000_000_000 / u64::from(a.sample_rate),
        ),
        (None, None) => unreachable!("validated"),
    };
    Ok(TestItemInfo {
        path: out.to_path_buf(),
        duration,
        video_frames: counts.video_frames,
        audio_frames: counts.audio_frames,
        bytes,
    })
}
