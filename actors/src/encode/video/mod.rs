//! The item's pictures, as yuv420p frames at the profile's size, one per output frame:
//! rendered page frames (`pages.rs`), a transcoded video or a still image
//! (`transcode.rs`), page frames blended over either (`blend.rs`), and the thumbnail
//! (`thumbnail.rs`).

pub(crate) mod blend;
pub(crate) mod pages;
pub(crate) mod thumbnail;
pub(crate) mod transcode;

use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use crate::encode::EncodeError;

/// Where an item's pictures come from.
pub(crate) enum Pictures {
    Pages(pages::PageFrames),
    Transcode(transcode::Transcoder),
    Overlaid(transcode::Transcoder, blend::Overlay),
}

impl Pictures {
    /// The picture of output frame `index` (called with 0, 1, 2, ...).
    pub fn next(&mut self, index: u64) -> Result<&mut frame::Video, EncodeError> {
        match self {
            Pictures::Pages(p) => p.next(index),
            Pictures::Transcode(t) => t.next(),
            Pictures::Overlaid(t, o) => {
                let base = t.next()?;
                o.compose(index, base)
            }
        }
    }
}
