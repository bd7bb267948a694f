//! Why an encode (a test item or a channel item) failed. Every message names the file,
//! codec, filter or setting, and the fix; [`EncodeError::kind`] gives a short stable name
//! for counting.

use std::path::PathBuf;

use ffmpeg_next as ffmpeg;

/// An encode failed. "The job was wrong" (bad settings, bad media, bad frames) is told
/// apart from "this node is broken" (missing encoder, disk error) by [`EncodeError::is_input_error`].
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The settings (profile, test item spec or job) are not encodable.
    #[error("invalid encode settings: {0}")]
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

    /// The media file is not something FFmpeg can open (not media, truncated header).
    #[error("cannot open media {}: {reason}; check the file is a complete audio/video file (mp3, m4a, flac, wav, ogg, mp4, mkv, ts)", path.display())]
    MediaOpen { path: PathBuf, reason: String },
    /// The media file has no stream of the kind needed.
    #[error("media {} has no {kind} stream; give a file with {kind} (for audio: mp3, m4a/aac, flac, wav, ogg or a video with sound)", path.display())]
    NoStream { path: PathBuf, kind: &'static str },
    /// No decoder for the media's codec in this FFmpeg build.
    #[error("media {} uses codec `{codec}`, which this FFmpeg build cannot decode; convert it (e.g. to FLAC or AAC) or install an FFmpeg with that decoder", path.display())]
    UnsupportedCodec { path: PathBuf, codec: String },
    /// The media decodes with errors (corrupt or truncated data).
    #[error("media {} is corrupt: {detail}; replace the file with an intact copy", path.display())]
    CorruptMedia { path: PathBuf, detail: String },
    /// The audio has no samples at all.
    #[error("media {} has no audio samples (zero length); give a file with sound", path.display())]
    EmptyAudio { path: PathBuf },
    /// A still image is too large to be used.
    #[error("image {} is {detail}, over the limit of {limit}; scale the image down (e.g. to the channel's resolution)", path.display())]
    ImageTooLarge {
        path: PathBuf,
        detail: String,
        limit: &'static str,
    },
    /// A page frame does not have the channel's size (or its data is not width × height × 4).
    #[error("page frame {index} is {got}, the channel needs {expected} RGBA; render at the channel's resolution")]
    FrameSize {
        index: u64,
        got: String,
        expected: String,
    },
    /// The first page frame was `Repeat` (there is nothing to repeat).
    #[error("page frame 0 is a Repeat; the renderer must send the first frame as New")]
    FirstFrameRepeat,
    /// The renderer stopped before sending every announced frame.
    #[error("the renderer ended after {got} of {expected} page frames; the render failed or was stopped (see the render error)")]
    FramesEnded { got: u64, expected: u64 },
    /// The job was cancelled.
    #[error("encode cancelled")]
    Cancelled,
    /// An encode thread panicked.
    #[error("encode thread for the {what} panicked; this is a bug, report it with the media file")]
    ThreadPanicked { what: &'static str },
}

impl EncodeError {
    /// An I/O error of `op` on `path`.
    pub fn io(op: &'static str, path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        EncodeError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A short stable name of the kind of failure, for counting (metrics, job records).
    pub fn kind(&self) -> &'static str {
        match self {
            EncodeError::InvalidSpec(_) => "invalid_settings",
            EncodeError::BadPath { .. } => "bad_path",
            EncodeError::Io { .. } => "io",
            EncodeError::Init(_) => "ffmpeg_init",
            EncodeError::EncoderMissing { .. } => "encoder_missing",
            EncodeError::FilterMissing { .. } => "filter_missing",
            EncodeError::FontMissing { .. } => "font_missing",
            EncodeError::Unsupported { .. } => "unsupported_setting",
            EncodeError::EncoderOpen { .. } => "encoder_open",
            EncodeError::FilterGraph { .. } => "filter_graph",
            EncodeError::Encode { .. } => "encode",
            EncodeError::Mux { .. } => "mux",
            EncodeError::MediaOpen { .. } => "media_open",
            EncodeError::NoStream { .. } => "no_stream",
            EncodeError::UnsupportedCodec { .. } => "unsupported_codec",
            EncodeError::CorruptMedia { .. } => "corrupt_media",
            EncodeError::EmptyAudio { .. } => "empty_audio",
            EncodeError::ImageTooLarge { .. } => "image_too_large",
            EncodeError::FrameSize { .. } => "frame_size",
            EncodeError::FirstFrameRepeat => "first_frame_repeat",
            EncodeError::FramesEnded { .. } => "frames_ended",
            EncodeError::Cancelled => "cancelled",
            EncodeError::ThreadPanicked { .. } => "panic",
        }
    }

    /// Whether the job itself was wrong (its settings, media or frames): retrying the same
    /// job fails the same way. Otherwise the node (FFmpeg build, disk) is at fault, or the
    /// job was cancelled.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            EncodeError::InvalidSpec(_)
                | EncodeError::BadPath { .. }
                | EncodeError::Unsupported { .. }
                | EncodeError::EncoderOpen { .. }
                | EncodeError::MediaOpen { .. }
                | EncodeError::NoStream { .. }
                | EncodeError::UnsupportedCodec { .. }
                | EncodeError::CorruptMedia { .. }
                | EncodeError::EmptyAudio { .. }
                | EncodeError::ImageTooLarge { .. }
                | EncodeError::FrameSize { .. }
                | EncodeError::FirstFrameRepeat
                | EncodeError::FramesEnded { .. }
        )
    }
}
