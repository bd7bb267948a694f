//! `[node.encode]` (this node's encode pool and browser) and `[channels.render]` +
//! `[channels.encode]` (how a channel's media become TS items: the HTML template its
//! pages are rendered from and the operator's video/audio format).
//!
//! A channel with `[channels.render]` plays the items the node encodes from its media;
//! its `playlist.source` is then left out (the items folder is
//! `<data_dir>/channels/<id>/items`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::ConfigIssue;
use headend_actors::encode::{AudioCodec, AudioProfile, EncodeProfile, LoudnessTarget, TsLayout, VideoCodec, VideoProfile};

/// `[node.encode]`: the node's encode pool and its browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncodeNodeConfig {
    /// Jobs run at once; 0 = automatic (bounded by cores and by memory at 500 MB a job).
    pub workers: usize,
    /// The headless Chromium that renders pages (Debian: chromium-headless-shell).
    pub chromium: PathBuf,
    /// A job is not started while less than this is free on the items' file system. [2 GiB]
    pub min_free_bytes: u64,
    /// How often templates are checked for changes, seconds. [60]
    pub template_check_secs: u64,
    /// A page that does not answer a frame within this many seconds is killed. [10]
    pub frame_timeout_secs: u64,
}

impl Default for EncodeNodeConfig {
    fn default() -> Self {
        EncodeNodeConfig {
            workers: 0,
            chromium: PathBuf::from("/usr/bin/chromium-headless-shell"),
            min_free_bytes: 2 << 30,
            template_check_secs: 60,
            frame_timeout_secs: 10,
        }
    }
}

/// `[channels.render]`: the channel's media are rendered with this HTML template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRender {
    /// `default` (built in), `file:///path/page.html` or `https://host/page.html`.
    #[serde(default = "default_template")]
    pub template: String,
    /// Let a `file://` or default template load from the network (artwork comes as data
    /// either way). [false]
    #[serde(default)]
    pub allow_network: bool,
    /// Folder of media to render; default: the channel's sync cache folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<PathBuf>,
}

fn default_template() -> String {
    "default".into()
}

/// Video codec of encoded items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoFormat {
    #[default]
    H264,
    Mpeg2,
    /// Audio-only items (radio services).
    None,
}

/// Audio codec of encoded items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioFormat {
    #[default]
    Aac,
    Mp2,
    Ac3,
}

/// Loudness normalisation of encoded items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loudness {
    /// ATSC A/85: -24 LKFS.
    #[default]
    AtscA85,
    /// EBU R128: -23 LUFS.
    EbuR128,
    /// Keep the source's level.
    Off,
}

/// `[channels.encode]`: the operator's format for this channel's items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelEncode {
    pub video: VideoFormat,
    /// Even, 16..=1920. [1280]
    pub width: u32,
    /// Even, 16..=1080. [720]
    pub height: u32,
    /// Integer frames per second, 1..=60. [25]
    pub fps: u32,
    /// Frames per closed GOP. [fps]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gop: Option<u32>,
    /// Video bit/s (also the VBV max rate). [2.5 Mbit/s]
    pub video_bitrate: u64,
    pub audio: AudioFormat,
    /// Audio bit/s. [192 kbit/s]
    pub audio_bitrate: u64,
    /// Hz: 32000, 44100 or 48000. [48000]
    pub sample_rate: u32,
    /// 1 or 2 (AC-3: up to 6). [2]
    pub audio_channels: u16,
    pub loudness: Loudness,
}

impl Default for ChannelEncode {
    fn default() -> Self {
        ChannelEncode {
            video: VideoFormat::H264,
            width: 1280,
            height: 720,
            fps: 25,
            gop: None,
            video_bitrate: 2_500_000,
            audio: AudioFormat::Aac,
            audio_bitrate: 192_000,
            sample_rate: 48_000,
            audio_channels: 2,
            loudness: Loudness::AtscA85,
        }
    }
}

impl ChannelEncode {
    /// Frames per GOP: `gop`, else one second.
    pub fn gop(&self) -> u32 {
        self.gop.unwrap_or(self.fps)
    }

    /// The profile items of this format are encoded with (PIDs and service aside).
    pub fn profile(&self) -> EncodeProfile {
        let video = match self.video {
            VideoFormat::None => None,
            v => {
                let codec = if v == VideoFormat::Mpeg2 { VideoCodec::Mpeg2 } else { VideoCodec::H264 };
                let mut p = VideoProfile::new(codec, self.width, self.height, self.fps, self.video_bitrate);
                p.gop = self.gop();
                Some(p)
            }
        };
        let audio = AudioProfile {
            codec: match self.audio {
                AudioFormat::Aac => AudioCodec::Aac,
                AudioFormat::Mp2 => AudioCodec::Mp2,
                AudioFormat::Ac3 => AudioCodec::Ac3,
            },
            sample_rate: self.sample_rate,
            channels: self.audio_channels,
            bitrate: self.audio_bitrate,
        };
        let loudness = match self.loudness {
            Loudness::AtscA85 => Some(LoudnessTarget::AtscA85),
            Loudness::EbuR128 => Some(LoudnessTarget::EbuR128),
            Loudness::Off => None,
        };
        EncodeProfile { video, audio, loudness, ts: TsLayout::default() }
    }

    /// The constant rate of this format's items, TS overhead included (bit/s).
    pub fn item_rate(&self) -> u64 {
        headend_actors::encode::max_item_rate(&self.profile())
    }
}

/// Problems in `[node.encode]`.
pub(super) fn node_issues(e: &EncodeNodeConfig, issues: &mut Vec<ConfigIssue>) {
    if e.workers > 64 {
        issues.push(ConfigIssue::OutOfRange { field: "node.encode.workers".into(), value: e.workers as u64, range: "0 (automatic) ..=64" });
    }
    if e.template_check_secs == 0 {
        issues.push(ConfigIssue::OutOfRange { field: "node.encode.template_check_secs".into(), value: 0, range: "a positive number of seconds" });
    }
    if !(1..=300).contains(&e.frame_timeout_secs) {
        issues.push(ConfigIssue::OutOfRange { field: "node.encode.frame_timeout_secs".into(), value: e.frame_timeout_secs, range: "1..=300" });
    }
}

/// Problems in a channel's `[channels.render]` and `[channels.encode]`.
pub(super) fn channel_issues(
    label: &str,
    render: Option<&ChannelRender>,
    encode: Option<&ChannelEncode>,
    has_sync: bool,
    mux_rate: u64,
    issues: &mut Vec<ConfigIssue>,
) {
    let f = |name: &str| format!("{label}.{name}");
    if let Some(r) = render {
        if let Err(reason) = check_template(&r.template) {
            issues.push(ConfigIssue::BadTemplate { field: f("render.template"), template: r.template.clone(), reason });
        }
        match &r.media {
            Some(m) if m.as_os_str().is_empty() => issues.push(ConfigIssue::EmptyPath { field: f("render.media") }),
            None if !has_sync => issues.push(ConfigIssue::RenderWithoutMedia { field: f("render.media") }),
            _ => {}
        }
    }
    let Some(e) = encode else { return };
    if render.is_none() {
        issues.push(ConfigIssue::EncodeWithoutRender { field: f("encode") });
    }
    let even = |field: &str, v: u32, max: u32, issues: &mut Vec<ConfigIssue>| {
        if v < 16 || v > max || !v.is_multiple_of(2) {
            issues.push(ConfigIssue::OutOfRange { field: f(field), value: v.into(), range: if max == 1920 { "an even width 16..=1920" } else { "an even height 16..=1080" } });
        }
    };
    if e.video != VideoFormat::None {
        even("encode.width", e.width, 1920, issues);
        even("encode.height", e.height, 1080, issues);
        if !(1..=60).contains(&e.fps) {
            issues.push(ConfigIssue::OutOfRange { field: f("encode.fps"), value: e.fps.into(), range: "1..=60 (integer frames per second)" });
        }
        if e.gop() == 0 || e.gop() > 10 * e.fps.max(1) {
            issues.push(ConfigIssue::OutOfRange { field: f("encode.gop"), value: e.gop().into(), range: "1..=10 s of frames (e.g. the fps for one I-frame a second)" });
        }
        if !(100_000..=50_000_000).contains(&e.video_bitrate) {
            issues.push(ConfigIssue::OutOfRange { field: f("encode.video_bitrate"), value: e.video_bitrate, range: "100000..=50000000 bit/s" });
        }
    }
    if ![32_000, 44_100, 48_000].contains(&e.sample_rate) {
        issues.push(ConfigIssue::OutOfRange { field: f("encode.sample_rate"), value: e.sample_rate.into(), range: "32000, 44100 or 48000 Hz" });
    }
    let max_channels = if e.audio == AudioFormat::Ac3 { 6 } else { 2 };
    if !(1..=max_channels).contains(&e.audio_channels) {
        issues.push(ConfigIssue::OutOfRange {
            field: f("encode.audio_channels"),
            value: e.audio_channels.into(),
            range: if max_channels == 6 { "1..=6 for AC-3" } else { "1 or 2 (use audio = \"ac3\" for 5.1)" },
        });
    }
    if !(32_000..=640_000).contains(&e.audio_bitrate) {
        issues.push(ConfigIssue::OutOfRange { field: f("encode.audio_bitrate"), value: e.audio_bitrate, range: "32000..=640000 bit/s" });
    }
    // Items are constant-rate TS at `max_item_rate`; the channel adds its own tables.
    if mux_rate > 0 {
        let item_rate = e.item_rate();
        let required = required_mux_rate(item_rate, mux_rate);
        if required > mux_rate {
            issues.push(ConfigIssue::ItemRateTooHigh { field: f("mux_rate"), mux_rate, item_rate, required });
        }
    }
}

/// The mux rate that items of `item_rate` bit/s (TS overhead included) need on a channel
/// running at `mux_rate`: the items plus the channel's own tables, whose share of the
/// output depends on the mux rate.
pub fn required_mux_rate(item_rate: u64, mux_rate: u64) -> u64 {
    let share = headend_actors::playout::probe::table_overhead(headend_actors::ts::MuxRate::new(mux_rate));
    (item_rate as f64 / (1.0 - share)).ceil() as u64
}

/// `default`, `file:///abs/path`, `http(s)://host/...`.
fn check_template(t: &str) -> Result<(), String> {
    if t == "default" {
        return Ok(());
    }
    if let Some(path) = t.strip_prefix("file://") {
        return if path.starts_with('/') { Ok(()) } else { Err("a file URL needs an absolute path: file:///srv/templates/page.html".into()) };
    }
    if let Some(rest) = t.strip_prefix("http://").or_else(|| t.strip_prefix("https://")) {
        return if rest.is_empty() || rest.starts_with('/') { Err("the URL has no host".into()) } else { Ok(()) };
    }
    Err("use \"default\", file:///path/page.html or http(s)://host/page.html".into())
}
