//! First pass: decode the media, resample it to the profile and measure its integrated
//! loudness and true peak with libavfilter's `ebur128` (ITU-R BS.1770-4, as the ffmpeg
//! CLI measures it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ffmpeg::{frame, ChannelLayout};
use ffmpeg_next as ffmpeg;

use super::source::AudioSource;
use crate::encode::filters::{FrameGraph, Pulled};
use crate::encode::{init_ffmpeg, AudioProfile, EncodeError};

/// What the first pass learnt about an item's sound, at the profile's sample rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioMeasure {
    /// Samples per channel after resampling to `sample_rate`.
    pub samples: u64,
    pub sample_rate: u32,
    /// `samples / sample_rate`.
    pub duration: Duration,
    /// Integrated loudness (LUFS); -70 or below for silence.
    pub integrated_lufs: f64,
    /// Highest true peak over all channels (dBTP); `-inf` for digital silence.
    pub true_peak_dbtp: f64,
}

impl AudioMeasure {
    /// Video frames an item of this sound has at `fps`: round(duration × fps).
    pub fn video_frames(&self, fps: u32) -> u64 {
        let rate = u128::from(self.sample_rate);
        ((u128::from(self.samples) * u128::from(fps) * 2 + rate) / (2 * rate)) as u64
    }

    /// Whether the sound is silence as far as loudness goes (nothing above the gate).
    pub fn is_silent(&self) -> bool {
        self.integrated_lufs <= -69.9 || !self.integrated_lufs.is_finite()
    }
}

/// Resampling chain from the decoded audio to the profile's rate and layout (float).
pub(crate) fn resample_chain(audio: &AudioProfile) -> String {
    let layout = ChannelLayout::default(i32::from(audio.channels));
    format!(
        "aresample={rate},aformat=sample_fmts=flt:sample_rates={rate}:channel_layouts=0x{bits:x}",
        rate = audio.sample_rate,
        bits = layout.bits()
    )
}

/// Samples at `to` Hz for `samples` at `from` Hz (what swresample produces, rounded).
pub(crate) fn rescale_samples(samples: u64, from: u32, to: u32) -> u64 {
    ((u128::from(samples) * u128::from(to) * 2 + u128::from(from)) / (2 * u128::from(from))) as u64
}

/// Measure `media`'s sound as it will be encoded with `audio`. Blocking: run it on a
/// blocking thread. Decodes the whole file once.
pub fn measure_audio(media: &Path, audio: &AudioProfile) -> Result<AudioMeasure, EncodeError> {
    measure_with_cancel(media, audio, &AtomicBool::new(false))
}

pub(crate) fn measure_with_cancel(
    media: &Path,
    audio: &AudioProfile,
    cancel: &AtomicBool,
) -> Result<AudioMeasure, EncodeError> {
    measure_through(media, audio, "anull", cancel)
}

/// Measure `media` resampled to `audio` and passed through the filter `chain` (e.g. a
/// gain and limiter, to see what they do to the loudness).
pub(crate) fn measure_through(
    media: &Path,
    audio: &AudioProfile,
    chain: &str,
    cancel: &AtomicBool,
) -> Result<AudioMeasure, EncodeError> {
    init_ffmpeg()?;
    audio.validate()?;
    let mut source = AudioSource::open(media)?;
    let chain = format!(
        "{},{chain},ebur128=peak=true:metadata=1",
        resample_chain(audio)
    );
    let mut graph = FrameGraph::audio("loudness measurement", source.desc(), &chain, None)?;
    let mut decoded = frame::Audio::empty();
    let mut out = frame::Audio::empty();
    let mut loudness = Loudness::default();
    let mut more = true;
    loop {
        match graph.pull(&mut out)? {
            Pulled::Frame => {
                loudness.read(&out);
                continue;
            }
            Pulled::End => break,
            Pulled::Again if !more => break,
            Pulled::Again => {}
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(EncodeError::Cancelled);
        }
        if source.next(&mut decoded)? {
            graph.push(&decoded)?;
        } else {
            graph.finish()?;
            more = false;
        }
    }
    let samples = rescale_samples(source.samples, source.desc().rate, audio.sample_rate);
    if samples == 0 {
        return Err(EncodeError::EmptyAudio {
            path: media.to_path_buf(),
        });
    }
    Ok(AudioMeasure {
        samples,
        sample_rate: audio.sample_rate,
        duration: Duration::from_nanos(
            (u128::from(samples) * 1_000_000_000 / u128::from(audio.sample_rate)) as u64,
        ),
        integrated_lufs: loudness.integrated.unwrap_or(-70.0),
        true_peak_dbtp: loudness.true_peak_dbtp(),
    })
}

/// The latest values `ebur128` put in the frames' metadata.
#[derive(Debug, Default)]
struct Loudness {
    integrated: Option<f64>,
    /// Highest linear true peak seen over all channels.
    true_peak: f64,
}

impl Loudness {
    fn read(&mut self, f: &frame::Audio) {
        for (key, value) in f.metadata().iter() {
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            if key == "lavfi.r128.I" {
                self.integrated = Some(v);
            } else if key.starts_with("lavfi.r128.true_peaks_ch") {
                self.true_peak = self.true_peak.max(v);
            }
        }
    }

    fn true_peak_dbtp(&self) -> f64 {
        if self.true_peak > 0.0 {
            20.0 * self.true_peak.log10()
        } else {
            f64::NEG_INFINITY
        }
    }
}
