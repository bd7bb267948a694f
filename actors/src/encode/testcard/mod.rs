//! Broadcast test items made with the FFmpeg libraries (no CLI): a test pattern with a
//! title card and running timecode, and/or a sine tone, encoded (H.264 or MPEG-2 video;
//! AAC, MP2 or AC-3 audio) and muxed as MPEG-TS. Used by `demo` and the integration
//! tests, and the seed of the encode actor: filter graph → encoders → mpegts muxer.

mod graph;
mod pipeline;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use ffmpeg_next as ffmpeg;

/// Video codec of a test item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 through `libx264`.
    H264,
    /// MPEG-2 video through FFmpeg's `mpeg2video`.
    Mpeg2,
}

impl VideoCodec {
    /// The FFmpeg encoder used.
    pub fn encoder_name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "libx264",
            VideoCodec::Mpeg2 => "mpeg2video",
        }
    }
}

/// Audio codec of a test item (FFmpeg's native encoders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC-LC (`aac`, fltp), in ADTS in the TS.
    Aac,
    /// MPEG-1 Layer II (`mp2`, s16).
    Mp2,
    /// AC-3 (`ac3`, fltp).
    Ac3,
}

impl AudioCodec {
    /// The FFmpeg encoder used.
    pub fn encoder_name(self) -> &'static str {
        match self {
            AudioCodec::Aac => "aac",
            AudioCodec::Mp2 => "mp2",
            AudioCodec::Ac3 => "ac3",
        }
    }
}

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

/// Why a test item could not be made. Messages name the codec, option or path, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("invalid test item spec: {0}")]
    InvalidSpec(String),
    #[error("output path {}: {reason}", path.display())]
    BadPath { path: PathBuf, reason: &'static str },
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("FFmpeg initialisation failed: {0}")]
    Init(ffmpeg::Error),
    #[error("encoder `{name}` is not in this FFmpeg build; {hint}")]
    EncoderMissing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("filter `{name}` is not in this FFmpeg build; install a full libavfilter (Debian: libavfilter8 with libfreetype for drawtext)")]
    FilterMissing { name: &'static str },
    #[error("no font for drawtext (tried {tried}); install fonts-dejavu-core")]
    FontMissing { tried: String },
    #[error("encoder `{codec}` does not support {setting}; supported: {supported}")]
    Unsupported {
        codec: &'static str,
        setting: String,
        supported: String,
    },
    #[error("cannot open encoder `{codec}` with {settings}: {source}; {hint}")]
    EncoderOpen {
        codec: &'static str,
        settings: String,
        hint: &'static str,
        #[source]
        source: ffmpeg::Error,
    },
    #[error("filter graph for the {what} failed: {source}; graph: {graph}")]
    FilterGraph {
        what: &'static str,
        graph: String,
        #[source]
        source: ffmpeg::Error,
    },
    #[error("encoder `{codec}` failed: {source}")]
    Encode {
        codec: &'static str,
        #[source]
        source: ffmpeg::Error,
    },
    #[error("mpegts muxer could not {op} {}: {source}", path.display())]
    Mux {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: ffmpeg::Error,
    },
}

/// Initialise FFmpeg once per process and quiet its log to errors.
fn init_ffmpeg() -> Result<(), EncodeError> {
    static INIT: OnceLock<Result<(), ffmpeg::Error>> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init()?;
        ffmpeg::log::set_level(ffmpeg::log::Level::Error);
        Ok(())
    })
    .map_err(EncodeError::Init)
}

/// Drop control characters (newlines, NUL, …): one line of text each for the card and
/// C-string-safe for FFmpeg's metadata.
fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
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
        if v.width == 0 || v.height == 0 || v.width % 2 != 0 || v.height % 2 != 0 {
            return bad(format!(
                "video size {}x{} must be non-zero and even in both dimensions for yuv420p",
                v.width, v.height
            ));
        }
        if v.width > 8192 || v.height > 4320 {
            return bad(format!(
                "video size {}x{} is over 8192x4320",
                v.width, v.height
            ));
        }
        if !(1..=120).contains(&v.fps) {
            return bad(format!("video fps {} must be 1..=120", v.fps));
        }
        if v.gop == 0 {
            return bad("video gop is 0; give the GOP length in frames, e.g. the fps".into());
        }
        if !(10_000..=i32::MAX as u64).contains(&v.bitrate) {
            return bad(format!(
                "video bitrate {} bit/s is outside 10 kbit/s..2 Gbit/s",
                v.bitrate
            ));
        }
        if video_frames(spec.duration, v.fps) == 0 {
            return bad(format!(
                "duration {:?} is shorter than one video frame at {} fps",
                spec.duration, v.fps
            ));
        }
    }
    if let Some(a) = &spec.audio {
        if !(8_000..=192_000).contains(&a.sample_rate) {
            return bad(format!(
                "audio sample rate {} Hz must be 8000..=192000",
                a.sample_rate
            ));
        }
        if !(1..=8).contains(&a.channels) {
            return bad(format!("audio channels {} must be 1..=8", a.channels));
        }
        if a.tone_hz == 0 || a.tone_hz >= a.sample_rate / 2 {
            return bad(format!(
                "tone {} Hz must be above 0 and below half the sample rate ({} Hz)",
                a.tone_hz, a.sample_rate
            ));
        }
        if !(8_000..=i32::MAX as u64).contains(&a.bitrate) {
            return bad(format!(
                "audio bitrate {} bit/s is outside 8 kbit/s..2 Gbit/s",
                a.bitrate
            ));
        }
    }
    Ok(())
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

/// Removes the temporary output unless disarmed.
struct TempOutput(Option<PathBuf>);

impl Drop for TempOutput {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Generate a test item into `out` (MPEG-TS). Blocking: run it on a blocking thread.
///
/// Writes `out` + ".tmp", fsyncs it and renames it to `out` (then fsyncs the directory);
/// on error the temporary file is removed and `out` is untouched.
pub fn generate_test_item(spec: &TestItemSpec, out: &Path) -> Result<TestItemInfo, EncodeError> {
    validate(spec)?;
    let bad_path = |reason| EncodeError::BadPath {
        path: out.to_path_buf(),
        reason,
    };
    let Some(out_str) = out.to_str() else {
        return Err(bad_path("not valid UTF-8; FFmpeg needs UTF-8 paths"));
    };
    if out_str.contains('\0') || out.file_name().is_none() {
        return Err(bad_path("must name a file"));
    }
    init_ffmpeg()?;

    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| EncodeError::Io { op, path, source }
    };
    // Create it here for a plain I/O error (e.g. permission denied) naming the path.
    File::create(&tmp).map_err(io("create temporary output", &tmp))?;
    let mut guard = TempOutput(Some(tmp.clone()));

    let title = clean_text(&spec.title);
    let artist = clean_text(&spec.artist);
    let counts = pipeline::run(spec, &title, &artist, &tmp)?;

    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync", &tmp))?;
    fs::rename(&tmp, out).map_err(io("rename temporary output to", out))?;
    guard.0 = None;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))?;
    let bytes = fs::metadata(out).map_err(io("stat", out))?.len();

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
