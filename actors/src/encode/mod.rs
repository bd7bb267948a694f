//! Encoding: FFmpeg-library encoders that make broadcast TS items.
//!
//! - [`encode_item`] (`item.rs`): a channel item from a media file's sound (measured,
//!   loudness-normalised: `audio/`) and pictures (rendered page frames, a transcoded
//!   video, a still image, or none: `video/`), with a thumbnail; [`measure_audio`] is its
//!   first pass on its own, so the job layer learns the exact duration before rendering.
//!   Profiles: `profile.rs`; jobs and results: `job.rs`.
//! - `testcard/`: generated test items (pattern + tone), used by `demo`, the slate and tests.
//! - Shared by both: `codec.rs` (codecs), `error.rs` ([`EncodeError`]), `mux.rs` (the
//!   mpegts muxer and its tracks), `video_encoder.rs` / `audio_encoder.rs` (opening the
//!   encoders), `atomic.rs` (temp file, fsync, rename).

mod atomic;
mod audio;
mod audio_encoder;
mod codec;
mod error;
mod filters;
mod item;
mod job;
mod mux;
mod profile;
pub mod testcard;
mod video;
mod video_encoder;

use std::sync::OnceLock;

use ffmpeg_next as ffmpeg;

pub use audio::measure::{measure_audio, AudioMeasure};
pub use codec::{AudioCodec, VideoCodec};
pub use error::EncodeError;
pub use item::encode_item;
pub use job::{EncodedItem, ItemEncodeJob, VideoInput};
pub use profile::{
    max_item_rate, AudioProfile, EncodeProfile, LoudnessTarget, TsLayout, VideoProfile,
    MAX_TRUE_PEAK_DBTP,
};
pub use video::thumbnail::THUMBNAIL_WIDTH;
pub use video::transcode::{MAX_STILL_BYTES, MAX_STILL_SIDE};
pub use video_encoder::ColourMatrix;

/// Initialise FFmpeg once per process and quiet its log to errors.
pub(crate) fn init_ffmpeg() -> Result<(), EncodeError> {
    static INIT: OnceLock<Result<(), ffmpeg::Error>> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init()?;
        ffmpeg::log::set_level(ffmpeg::log::Level::Error);
        Ok(())
    })
    .map_err(EncodeError::Init)
}

/// Drop control characters (newlines, NUL, …): one line of text, C-string-safe for
/// FFmpeg's metadata.
pub(crate) fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}
