//! An item encode job and its result.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;

use super::{AudioMeasure, EncodeProfile};
use crate::frame::PageFrame;

/// Where the item's pictures come from.
#[derive(Debug)]
pub enum VideoInput {
    /// No pictures: an audio-only item (the profile has no video).
    None,
    /// Rendered page frames: exactly `frames` arrive, the first `New`; `frames` must be
    /// [`AudioMeasure::video_frames`] of the media at the profile's fps.
    Frames {
        rx: Receiver<PageFrame>,
        frames: u64,
    },
    /// A video file (MP4, MKV, TS, ...) transcoded to the profile, optionally with page
    /// frames (RGBA with alpha, one per output frame) blended over it.
    Transcode {
        path: PathBuf,
        overlay: Option<Receiver<PageFrame>>,
    },
    /// A still image (PNG, JPEG, ...; at most 8192×8192 and 50 MB) held for the whole item.
    Still(PathBuf),
}

/// One item to encode: the media's sound (normalised), pictures, output and thumbnail.
#[derive(Debug)]
pub struct ItemEncodeJob {
    pub profile: EncodeProfile,
    /// The file whose audio is the item's sound (an audio file or a video with sound).
    pub media: PathBuf,
    pub video: VideoInput,
    /// The TS item, written atomically.
    pub out: PathBuf,
    /// A PNG thumbnail (320 px wide), written atomically; ignored for audio-only items.
    pub thumbnail: Option<PathBuf>,
    /// Title and artist in the TS metadata.
    pub title: String,
    pub artist: String,
    /// The first pass's result when the caller has it already (it measured to learn the
    /// frame count); else the encoder measures.
    pub measure: Option<AudioMeasure>,
}

impl ItemEncodeJob {
    /// A job that measures the sound itself.
    pub fn new(
        profile: EncodeProfile,
        media: PathBuf,
        video: VideoInput,
        out: PathBuf,
        thumbnail: Option<PathBuf>,
        title: &str,
        artist: &str,
    ) -> Self {
        ItemEncodeJob {
            profile,
            media,
            video,
            out,
            thumbnail,
            title: title.into(),
            artist: artist.into(),
            measure: None,
        }
    }

    /// Reuse a measurement made with [`super::measure_audio`] for the same media and
    /// audio profile.
    pub fn with_measure(mut self, measure: AudioMeasure) -> Self {
        self.measure = Some(measure);
        self
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedItem {
    pub path: PathBuf,
    /// Size of the TS file.
    pub bytes: u64,
    /// The sound's duration (the pictures last round(duration × fps) frames).
    pub duration: Duration,
    /// Encoded video frames (0 for audio-only).
    pub video_frames: u64,
    /// Encoded audio frames (codec frames, e.g. 1024 samples for AAC).
    pub audio_frames: u64,
    /// The thumbnail written, if any.
    pub thumbnail: Option<PathBuf>,
    /// The source's sound as measured in the first pass.
    pub measured: AudioMeasure,
    /// Gain applied to reach the loudness target, dB.
    pub gain_db: f64,
    /// Whether a limiter held the true peak under -1 dBTP.
    pub limited: bool,
}
