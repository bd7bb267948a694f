//! The codecs headend encodes with (FFmpeg's encoders).

/// Video codec of an item.
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

/// Audio codec of an item (FFmpeg's native encoders).
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
