//! The item's thumbnail: one picture scaled to 320 pixels wide, as PNG (FFmpeg's `png`
//! encoder), written atomically.

use std::path::Path;

use ffmpeg::{codec, encoder, format, frame, Rational};
use ffmpeg_next as ffmpeg;

use crate::encode::atomic::AtomicOutput;
use crate::encode::filters::{FrameGraph, Pulled, VideoInputDesc};
use crate::encode::mux::drain_encoder;
use crate::encode::{ColourMatrix, EncodeError};

/// Thumbnail width in pixels (the height keeps the aspect ratio, rounded to even).
pub const THUMBNAIL_WIDTH: u32 = 320;

/// Write `picture` (yuv420p) as a PNG thumbnail to `path`. Returns its size.
pub(crate) fn write_thumbnail(
    picture: &frame::Video,
    matrix: ColourMatrix,
    path: &Path,
) -> Result<u64, EncodeError> {
    let output = AtomicOutput::create(path)?;
    let desc = VideoInputDesc {
        width: picture.width(),
        height: picture.height(),
        format: format::Pixel::YUV420P,
        time_base: Rational::new(1, 25),
        aspect: Rational::new(1, 1),
    };
    let chain = format!(
        "scale=w={THUMBNAIL_WIDTH}:h=-2:in_color_matrix={}:in_range=tv:out_range=pc,format=rgb24",
        matrix.scale_name()
    );
    let mut graph = FrameGraph::video("thumbnail", desc, &chain)?;
    let mut input = picture.clone();
    input.set_pts(Some(0));
    graph.push(&input)?;
    graph.finish()?;
    let mut rgb = frame::Video::empty();
    if graph.pull(&mut rgb)? != Pulled::Frame {
        unreachable!("a scale graph returns its frame after the end of input");
    }

    let name = "png";
    let png = encoder::find(codec::Id::PNG).ok_or(EncodeError::EncoderMissing {
        name,
        hint: "use an FFmpeg built with its native png encoder",
    })?;
    let open_err = |source| EncodeError::EncoderOpen {
        codec: name,
        settings: format!("{}x{} rgb24", rgb.width(), rgb.height()),
        hint: "this is a bug: the thumbnail settings are fixed",
        source,
    };
    let mut enc = codec::context::Context::new_with_codec(png)
        .encoder()
        .video()
        .map_err(open_err)?;
    enc.set_width(rgb.width());
    enc.set_height(rgb.height());
    enc.set_format(format::Pixel::RGB24);
    enc.set_time_base(Rational::new(1, 25));
    let mut enc = enc.open_as(png).map_err(open_err)?;
    let encode_err = |source| EncodeError::Encode {
        codec: name,
        source,
    };
    enc.send_frame(&rgb).map_err(encode_err)?;
    enc.send_eof().map_err(encode_err)?;
    let mut bytes = Vec::new();
    drain_encoder(&mut enc, name, |pkt| {
        bytes.extend_from_slice(pkt.data().unwrap_or_default());
        Ok(())
    })?;
    output.write_all(&bytes)
}
