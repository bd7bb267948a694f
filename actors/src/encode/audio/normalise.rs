//! Second pass: decode again, resample, apply the loudness gain (and a limiter when the
//! gain would push the true peak over -1 dBTP), and encode exactly the measured number of
//! samples. Runs on its own thread; encoded packets go to the muxing thread.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ffmpeg::format::Sample;
use ffmpeg::{encoder, frame, ChannelLayout, Packet};
use ffmpeg_next as ffmpeg;

use super::measure::{measure_through, resample_chain, AudioMeasure};
use super::source::AudioSource;
use crate::encode::audio_encoder::AudioEncoder;
use crate::encode::filters::{FrameGraph, Pulled};
use crate::encode::mux::{drain_encoder, send_eof};
use crate::encode::profile::MAX_TRUE_PEAK_DBTP;
use crate::encode::{AudioProfile, EncodeError, LoudnessTarget};

/// Headroom under the true-peak ceiling the (sample-peak) limiter aims for, dB.
const LIMITER_HEADROOM_DB: f64 = 0.5;
/// Most extra measurement passes made to correct the gain for the limiter.
const LIMITER_PASSES: usize = 3;

/// How the sound is changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Gain {
    /// Gain applied, dB.
    pub db: f64,
    /// Whether a limiter keeps the peaks under the ceiling.
    pub limited: bool,
}

impl Gain {
    /// The gain that brings `m` to `target` (none for silence or without a target).
    pub fn for_target(m: &AudioMeasure, target: Option<LoudnessTarget>) -> Gain {
        let Some(target) = target else {
            return Gain {
                db: 0.0,
                limited: false,
            };
        };
        if m.is_silent() {
            return Gain {
                db: 0.0,
                limited: false,
            };
        }
        let db = target.lufs() - m.integrated_lufs;
        Gain {
            db,
            limited: m.true_peak_dbtp + db > MAX_TRUE_PEAK_DBTP,
        }
    }

    /// The gain for `target`, and when the limiter is needed, corrected for the loudness
    /// the limiter takes away: the limited sound is measured again (a decode pass each)
    /// and the gain raised by what is missing, until it is within 0.3 LU.
    pub fn plan(
        media: &Path,
        audio: &AudioProfile,
        m: &AudioMeasure,
        target: Option<LoudnessTarget>,
        cancel: &AtomicBool,
    ) -> Result<Gain, EncodeError> {
        let mut gain = Gain::for_target(m, target);
        let Some(target) = target.filter(|_| gain.limited) else {
            return Ok(gain);
        };
        for _ in 0..LIMITER_PASSES {
            let limited = measure_through(media, audio, &gain.chain(), cancel)?;
            let missing = target.lufs() - limited.integrated_lufs;
            if missing.abs() <= 0.3 {
                break;
            }
            gain.db += missing;
        }
        Ok(gain)
    }

    fn chain(self) -> String {
        let mut c = format!("volume=volume={:.3}dB:precision=float", self.db);
        if self.limited {
            let limit = 10f64.powf((MAX_TRUE_PEAK_DBTP - LIMITER_HEADROOM_DB) / 20.0);
            c.push_str(&format!(
                ",alimiter=limit={limit:.5}:attack=5:release=50:level=disabled"
            ));
        }
        c
    }
}

/// The audio half of an item encode.
pub(crate) struct AudioLane {
    source: AudioSource,
    graph: FrameGraph,
    enc: encoder::audio::Encoder,
    codec: &'static str,
    format: Sample,
    layout: ChannelLayout,
    rate: u32,
    frame_size: usize,
    small_last: bool,
    total: u64,
    sent: u64,
}

impl AudioLane {
    /// Prepare to encode `media` with the opened encoder `enc`, `measure.samples` samples.
    pub fn new(
        media: &Path,
        profile: &AudioProfile,
        measure: &AudioMeasure,
        gain: Gain,
        enc: AudioEncoder,
    ) -> Result<Self, EncodeError> {
        let source = AudioSource::open(media)?;
        let chain = format!(
            "{},{},aformat=sample_fmts={}",
            resample_chain(profile),
            gain.chain(),
            enc.sample_format.name()
        );
        let graph = FrameGraph::audio(
            "audio normalisation",
            source.desc(),
            &chain,
            Some(enc.frame_size),
        )?;
        Ok(AudioLane {
            source,
            graph,
            codec: enc.track.codec,
            enc: enc.enc,
            format: enc.sample_format,
            layout: enc.layout,
            rate: profile.sample_rate,
            frame_size: enc.frame_size as usize,
            small_last: enc.small_last,
            total: measure.samples,
            sent: 0,
        })
    }

    /// Encode the whole sound, handing each packet (pts in 1/rate) to `sink`; `sink`
    /// returns `false` when nobody takes packets any more (the encode failed elsewhere).
    /// Returns the packets handed over.
    pub fn run(
        mut self,
        cancel: &AtomicBool,
        mut sink: impl FnMut(Packet) -> bool,
    ) -> Result<u64, EncodeError> {
        let packets = Cell::new(0u64);
        let gone = Cell::new(false);
        let mut hand = |p: Packet| {
            if !gone.get() && sink(p) {
                packets.set(packets.get() + 1);
            } else {
                gone.set(true);
            }
            Ok(())
        };
        let mut decoded = frame::Audio::empty();
        let mut filtered = frame::Audio::empty();
        let mut source_done = false;
        while self.sent < self.total {
            if cancel.load(Ordering::Relaxed) {
                return Err(EncodeError::Cancelled);
            }
            let pulled = if source_done {
                Pulled::End
            } else {
                self.graph.pull(&mut filtered)?
            };
            match pulled {
                Pulled::Frame => {
                    let mut fitted = self.fit(&filtered);
                    self.send(fitted.as_mut().unwrap_or(&mut filtered))?;
                }
                Pulled::Again => {
                    if self.source.next(&mut decoded)? {
                        self.graph.push(&decoded)?;
                    } else {
                        self.graph.finish()?;
                    }
                    continue;
                }
                Pulled::End => {
                    // The resampler gave a few samples fewer than measured: silence.
                    source_done = true;
                    let n = self.frame_len((self.total - self.sent) as usize);
                    let mut f = self.silence(n);
                    self.send(&mut f)?;
                }
            }
            drain_encoder(&mut self.enc, self.codec, &mut hand)?;
            if gone.get() {
                return Ok(packets.get());
            }
        }
        send_eof(&mut self.enc, self.codec)?;
        drain_encoder(&mut self.enc, self.codec, &mut hand)?;
        Ok(packets.get())
    }

    /// Samples to put in a frame when `remaining` are left.
    fn frame_len(&self, remaining: usize) -> usize {
        if self.small_last {
            remaining.min(self.frame_size)
        } else {
            self.frame_size
        }
    }

    /// A frame of `n` samples of silence.
    fn silence(&self, n: usize) -> frame::Audio {
        let mut f = frame::Audio::new(self.format, n, self.layout);
        f.set_rate(self.rate);
        for i in 0..f.planes() {
            f.data_mut(i).fill(0);
        }
        f
    }

    /// `f` cut to the samples still wanted, and padded with silence to a whole frame for
    /// encoders that take only whole frames; `None` when `f` fits as it is.
    fn fit(&self, f: &frame::Audio) -> Option<frame::Audio> {
        let remaining = (self.total - self.sent) as usize;
        let keep = f.samples().min(remaining);
        let len = if keep < self.frame_size {
            self.frame_len(keep)
        } else {
            keep
        };
        if keep == f.samples() && len == keep {
            return None;
        }
        let mut out = self.silence(len);
        let per_sample = self.format.bytes()
            * if self.format.is_planar() {
                1
            } else {
                self.layout.channels() as usize
            };
        for i in 0..out.planes() {
            let n = keep * per_sample;
            out.data_mut(i)[..n].copy_from_slice(&f.data(i)[..n]);
        }
        Some(out)
    }

    fn send(&mut self, f: &mut frame::Audio) -> Result<(), EncodeError> {
        f.set_pts(Some(self.sent as i64));
        self.enc
            .send_frame(f)
            .map_err(|source| EncodeError::Encode {
                codec: self.codec,
                source,
            })?;
        self.sent += f.samples() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn measure(lufs: f64, peak: f64) -> AudioMeasure {
        AudioMeasure {
            samples: 48_000,
            sample_rate: 48_000,
            duration: Duration::from_secs(1),
            integrated_lufs: lufs,
            true_peak_dbtp: peak,
        }
    }

    #[test]
    fn gain_reaches_the_target_and_limits_only_when_needed() {
        let g = Gain::for_target(&measure(-35.0, -20.0), Some(LoudnessTarget::AtscA85));
        assert_eq!(
            g,
            Gain {
                db: 11.0,
                limited: false
            }
        );
        let g = Gain::for_target(&measure(-35.0, -3.0), Some(LoudnessTarget::EbuR128));
        assert_eq!(
            g,
            Gain {
                db: 12.0,
                limited: true
            }
        );
        assert!(
            g.chain().contains("alimiter=limit=0.84140"),
            "{}",
            g.chain()
        );
        // Silence and no target: left alone.
        let g = Gain::for_target(
            &measure(-70.0, f64::NEG_INFINITY),
            Some(LoudnessTarget::AtscA85),
        );
        assert_eq!(g.db, 0.0);
        assert_eq!(Gain::for_target(&measure(-10.0, 0.0), None).db, 0.0);
    }

    #[test]
    fn frames_and_samples_round_to_nearest() {
        let m = AudioMeasure {
            samples: 288_019,
            ..measure(-20.0, -3.0)
        };
        assert_eq!(m.video_frames(25), 150); // 6.0004 s
        assert_eq!(
            crate::encode::audio::measure::rescale_samples(44_100, 44_100, 48_000),
            48_000
        );
        assert_eq!(
            crate::encode::audio::measure::rescale_samples(1, 44_100, 48_000),
            1
        );
    }
}
