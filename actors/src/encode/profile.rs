//! What a channel's items are encoded to: codecs, picture, sound, loudness and TS layout.

use super::{AudioCodec, ColourMatrix, EncodeError, VideoCodec};

/// The format of every item of a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeProfile {
    /// `None`: audio-only items (a radio service).
    pub video: Option<VideoProfile>,
    pub audio: AudioProfile,
    /// `None` keeps the source's loudness.
    pub loudness: Option<LoudnessTarget>,
    pub ts: TsLayout,
}

/// The picture: yuv420p at a fixed size and integer frame rate, closed GOPs, VBV-bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoProfile {
    pub codec: VideoCodec,
    /// Even (4:2:0), at most 8192.
    pub width: u32,
    /// Even (4:2:0), at most 4320.
    pub height: u32,
    /// Integer frames per second, 1..=120.
    pub fps: u32,
    /// Frames per closed GOP; an IDR/I frame starts the item and every GOP.
    pub gop: u32,
    /// bit/s: the average target and the VBV max rate.
    pub bitrate: u64,
    /// VBV buffer in bits; `None`: half a second at `bitrate`.
    pub bufsize: Option<u64>,
    /// x264 preset (H.264 only), e.g. "veryfast".
    pub preset: String,
    /// x264 tune (H.264 only), e.g. "stillimage" for pages.
    pub tune: Option<String>,
}

impl VideoProfile {
    /// A profile with GOP = 1 s, VBV buffer = 0.5 s, x264 preset `veryfast`.
    pub fn new(codec: VideoCodec, width: u32, height: u32, fps: u32, bitrate: u64) -> Self {
        VideoProfile {
            codec,
            width,
            height,
            fps,
            gop: fps,
            bitrate,
            bufsize: None,
            preset: "veryfast".into(),
            tune: None,
        }
    }

    /// The VBV buffer in bits.
    pub fn vbv_buffer(&self) -> u64 {
        self.bufsize.unwrap_or(self.bitrate / 2)
    }

    /// The colour matrix of the encoded pictures: BT.709 above 576 lines, else BT.601.
    pub fn colour(&self) -> ColourMatrix {
        ColourMatrix::for_height(self.height)
    }
}

/// The sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioProfile {
    pub codec: AudioCodec,
    /// Hz, e.g. 48000.
    pub sample_rate: u32,
    /// 1..=8 (FFmpeg's default layout for the count; MP2 takes 1 or 2, AC-3 up to 6).
    pub channels: u16,
    /// bit/s (MP2 and AC-3 take only their standard rates).
    pub bitrate: u64,
}

/// Integrated loudness the item is normalised to (true peak kept at or under -1 dBTP).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoudnessTarget {
    /// ATSC A/85: -24 LKFS.
    AtscA85,
    /// EBU R128: -23 LUFS.
    EbuR128,
    /// Another integrated loudness in LUFS (-70..0).
    Custom(f64),
}

impl LoudnessTarget {
    /// The target in LUFS (= LKFS).
    pub fn lufs(self) -> f64 {
        match self {
            LoudnessTarget::AtscA85 => -24.0,
            LoudnessTarget::EbuR128 => -23.0,
            LoudnessTarget::Custom(l) => l,
        }
    }
}

/// The highest true peak a normalised item may reach (dBTP).
pub const MAX_TRUE_PEAK_DBTP: f64 = -1.0;

/// Service and PIDs written into the item. The mpegts muxer numbers elementary streams
/// consecutively from one start PID, so the item carries video on `video_pid` and audio
/// on `video_pid + 1` (audio-only: on `audio_pid`); the playout remaps PIDs to the
/// channel's anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsLayout {
    pub pmt_pid: u16,
    pub video_pid: u16,
    pub audio_pid: u16,
    /// Program number.
    pub service_id: u16,
    pub service_name: String,
    pub provider: String,
}

impl Default for TsLayout {
    /// The playout's default PIDs (PMT 0x1000, video 0x100, audio 0x101), service 1.
    fn default() -> Self {
        TsLayout {
            pmt_pid: 0x1000,
            video_pid: 0x0100,
            audio_pid: 0x0101,
            service_id: 1,
            service_name: "headend".into(),
            provider: "headend".into(),
        }
    }
}

/// TS bytes per payload byte (188-byte packets with a 4-byte header).
const TS_PACKET_OVERHEAD: f64 = 188.0 / 184.0;
/// PES header plus, on average, half a packet of adaptation stuffing per PES (bits).
const PES_OVERHEAD_BITS: u64 = (20 + 92) * 8;
/// The library muxer's PAT and PMT (every 100 ms), SDT (every 500 ms) and PCR-only
/// packets (at most one per `pcr_period`), bit/s.
const TABLES_BPS: u64 = (20 + 2 + 1000 / super::mux::PCR_PERIOD_MS) * 188 * 8;

/// The bit/s of an item of `profile`, TS overhead included: the video's VBV max rate and
/// the audio rate in 188-byte packets, per-PES headers and stuffing, the item's own
/// tables and PCR packets. Items are muxed at exactly this constant rate (null packets
/// fill the gaps, which the playout drops), each picture sent at most its VBV buffer's
/// worth (+100 ms) ahead of its decoding time, so an item never bursts above it. A
/// channel plays the profile's items when this is at most its mux rate minus the share
/// its own tables and PCRs take (`playout::probe::table_overhead`).
pub fn max_item_rate(profile: &EncodeProfile) -> u64 {
    let a = &profile.audio;
    let audio_frame = match a.codec {
        AudioCodec::Aac => 1024,
        AudioCodec::Mp2 => 1152,
        AudioCodec::Ac3 => 1536,
    };
    let mut es = a.bitrate;
    let mut pes_per_s = u64::from(a.sample_rate).div_ceil(audio_frame);
    if let Some(v) = &profile.video {
        es += v.bitrate;
        pes_per_s += u64::from(v.fps);
    }
    (es as f64 * TS_PACKET_OVERHEAD * 1.02).ceil() as u64
        + pes_per_s * PES_OVERHEAD_BITS
        + TABLES_BPS
}

impl VideoProfile {
    /// Check the picture settings; the message names the field and the allowed values.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let v = self;
        let bad = |m: String| Err(EncodeError::InvalidSpec(m));
        if v.width == 0
            || v.height == 0
            || !v.width.is_multiple_of(2)
            || !v.height.is_multiple_of(2)
        {
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
        let frame = v.bitrate / u64::from(v.fps);
        if v.vbv_buffer() < frame || v.vbv_buffer() > v.bitrate * 2 {
            return bad(format!(
                "video VBV buffer {} bit must be between one frame ({frame} bit) and 2 s at {} bit/s",
                v.vbv_buffer(),
                v.bitrate
            ));
        }
        let name =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == ',');
        if !name(&v.preset) || !v.tune.as_deref().is_none_or(name) {
            return bad(format!(
                "x264 preset {:?} / tune {:?} are not names (e.g. preset \"veryfast\", tune \"stillimage\")",
                v.preset, v.tune
            ));
        }
        Ok(())
    }
}

impl AudioProfile {
    /// Check the sound settings; the message names the field and the allowed values.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let a = self;
        let bad = |m: String| Err(EncodeError::InvalidSpec(m));
        if !(8_000..=192_000).contains(&a.sample_rate) {
            return bad(format!(
                "audio sample rate {} Hz must be 8000..=192000",
                a.sample_rate
            ));
        }
        if !(1..=8).contains(&a.channels) {
            return bad(format!("audio channels {} must be 1..=8", a.channels));
        }
        if !(8_000..=i32::MAX as u64).contains(&a.bitrate) {
            return bad(format!(
                "audio bitrate {} bit/s is outside 8 kbit/s..2 Gbit/s",
                a.bitrate
            ));
        }
        Ok(())
    }
}

impl EncodeProfile {
    /// Check every field; the message names the field and the allowed values.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let bad = |m: String| Err(EncodeError::InvalidSpec(m));
        if let Some(v) = &self.video {
            v.validate()?;
        }
        self.audio.validate()?;
        if let Some(t) = self.loudness {
            if !(-70.0..=0.0).contains(&t.lufs()) {
                return bad(format!("loudness target {} LUFS must be -70..=0", t.lufs()));
            }
        }
        let ts = &self.ts;
        for (name, pid) in [
            ("pmt_pid", ts.pmt_pid),
            ("video_pid", ts.video_pid),
            ("audio_pid", ts.audio_pid),
        ] {
            if !(0x0020..=0x1FFA).contains(&pid) {
                return bad(format!(
                    "ts.{name} {pid:#x} must be 0x0020..=0x1FFA (the mpegts muxer's range)"
                ));
            }
        }
        if ts.service_id == 0 {
            return bad("ts.service_id 0 is reserved for the NIT; use 1..=65535".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> EncodeProfile {
        EncodeProfile {
            video: Some(VideoProfile::new(
                VideoCodec::H264,
                1280,
                720,
                25,
                2_500_000,
            )),
            audio: AudioProfile {
                codec: AudioCodec::Aac,
                sample_rate: 48_000,
                channels: 2,
                bitrate: 128_000,
            },
            loudness: Some(LoudnessTarget::AtscA85),
            ts: TsLayout::default(),
        }
    }

    #[test]
    fn item_rate_covers_payload_and_overhead() {
        let p = profile();
        let rate = max_item_rate(&p);
        // 2.628 Mbit/s of payload: 2.2 % TS headers, 2 % margin, PES and tables on top,
        // PCR packets 20 ms apart: about 11 % in all at this rate.
        assert!(rate > 2_628_000 * 188 / 184, "{rate}");
        assert!(rate < 2_628_000 * 112 / 100, "{rate}");
        let radio = EncodeProfile { video: None, ..p };
        assert!(max_item_rate(&radio) < 300_000);
    }

    #[test]
    fn validation_names_the_field() {
        assert!(profile().validate().is_ok());
        let mut p = profile();
        p.video.as_mut().unwrap().bufsize = Some(10);
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("VBV buffer 10 bit"));
        let mut p = profile();
        p.video.as_mut().unwrap().tune = Some("still image; rm".into());
        assert!(p.validate().unwrap_err().to_string().contains("tune"));
        let mut p = profile();
        p.loudness = Some(LoudnessTarget::Custom(3.0));
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("loudness target"));
        let mut p = profile();
        p.ts.service_id = 0;
        assert!(p.validate().unwrap_err().to_string().contains("service_id"));
    }
}
