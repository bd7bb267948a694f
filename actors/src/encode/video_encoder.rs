//! Opening the video encoder (libx264 or mpeg2video) and its TS stream.

use ffmpeg::{codec, color, encoder, format, Dictionary, Rational};
use ffmpeg_next as ffmpeg;

use super::mux::{title_metadata, Muxer, Track};
use super::{EncodeError, VideoCodec, VideoProfile};

/// Colour matrix of the encoded pictures (signalled in the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourMatrix {
    /// ITU-R BT.709 (HD).
    Bt709,
    /// ITU-R BT.601 (SD, 625-line primaries).
    Bt601,
}

impl ColourMatrix {
    /// BT.709 above 576 lines, BT.601 for SD.
    pub fn for_height(height: u32) -> Self {
        if height > 576 {
            ColourMatrix::Bt709
        } else {
            ColourMatrix::Bt601
        }
    }

    /// The name libswscale's `scale` filter takes (`out_color_matrix`).
    pub fn scale_name(self) -> &'static str {
        match self {
            ColourMatrix::Bt709 => "bt709",
            ColourMatrix::Bt601 => "bt601",
        }
    }
}

/// B-frames between reference frames: two where the GOP has room for them. A closed
/// MPEG-2 GOP cannot end on B-frames (they would refer to the next GOP), and
/// `mpeg2video` then starts the next GOP early; so for MPEG-2 the count is chosen to make
/// (gop − 1) a multiple of (B-frames + 1), keeping an I frame exactly every `gop` frames.
/// x264 keeps `keyint` exactly by itself.
fn b_frames(codec: VideoCodec, gop: u32) -> usize {
    if gop < 4 {
        return 0;
    }
    match codec {
        VideoCodec::H264 => 2,
        VideoCodec::Mpeg2 => [2, 1]
            .into_iter()
            .find(|b| (gop - 1).is_multiple_of(b + 1))
            .unwrap_or(0) as usize,
    }
}

/// An open video encoder and its track in the muxer.
pub(crate) struct VideoEncoder {
    pub enc: encoder::video::Encoder,
    pub track: Track,
}

/// Open the encoder for `v` (yuv420p, closed GOP, VBV max rate = bitrate, colour
/// signalled per [`VideoProfile::colour`]) and add its stream to `mux`.
pub(crate) fn open_video_encoder(
    mux: &mut Muxer,
    v: &VideoProfile,
    title: &str,
    artist: &str,
) -> Result<VideoEncoder, EncodeError> {
    let name = v.codec.encoder_name();
    let codec = encoder::find_by_name(name).ok_or(EncodeError::EncoderMissing {
        name,
        hint: match v.codec {
            VideoCodec::H264 => {
                "use an FFmpeg built with --enable-libx264 (Debian's libavcodec59 is)"
            }
            VideoCodec::Mpeg2 => "use an FFmpeg built with its native mpeg2video encoder",
        },
    })?;
    let settings = format!(
        "{}x{} yuv420p {} fps, {} bit/s (maxrate), VBV buffer {} bit, closed GOP {}",
        v.width,
        v.height,
        v.fps,
        v.bitrate,
        v.vbv_buffer(),
        v.gop
    );
    let hint = "check the size, frame rate, bitrate and preset are within the codec's limits";
    let open_err = |source| EncodeError::EncoderOpen {
        codec: name,
        settings: settings.clone(),
        hint,
        source,
    };
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(open_err)?;
    let tb = Rational::new(1, v.fps as i32);
    enc.set_width(v.width);
    enc.set_height(v.height);
    enc.set_format(format::Pixel::YUV420P);
    enc.set_time_base(tb);
    enc.set_frame_rate(Some(Rational::new(v.fps as i32, 1)));
    enc.set_aspect_ratio(Rational::new(1, 1));
    enc.set_gop(v.gop);
    enc.set_max_b_frames(b_frames(v.codec, v.gop));
    enc.set_bit_rate(v.bitrate as usize);
    enc.set_max_bit_rate(v.bitrate as usize);
    enc.set_flags(codec::flag::Flags::CLOSED_GOP);
    {
        let (space, primaries, trc) = match v.colour() {
            ColourMatrix::Bt709 => (
                color::Space::BT709,
                color::Primaries::BT709,
                color::TransferCharacteristic::BT709,
            ),
            ColourMatrix::Bt601 => (
                color::Space::BT470BG,
                color::Primaries::BT470BG,
                color::TransferCharacteristic::BT709,
            ),
        };
        enc.set_colorspace(space);
        enc.set_color_primaries(primaries);
        enc.set_color_transfer_characteristic(trc);
        enc.set_color_range(color::Range::MPEG);
    }
    let mut opts = Dictionary::new();
    opts.set("bufsize", &v.vbv_buffer().to_string());
    opts.set("threads", "auto");
    match v.codec {
        VideoCodec::H264 => {
            opts.set("preset", &v.preset);
            if let Some(tune) = &v.tune {
                opts.set("tune", tune);
            }
            let g = v.gop;
            opts.set(
                "x264-params",
                &format!("keyint={g}:min-keyint={g}:scenecut=0:open-gop=0:nal-hrd=vbr:aud=1"),
            );
        }
        // mpeg2video refuses closed GOPs with scene-change detection on.
        VideoCodec::Mpeg2 => opts.set("sc_threshold", "1000000000"),
    }
    let enc = enc.open_as_with(codec, opts).map_err(open_err)?;

    let add_err = mux.err("add the video stream to");
    let mut st = mux.octx.add_stream(codec).map_err(add_err)?;
    st.set_parameters(&enc);
    st.set_time_base(tb);
    st.set_avg_frame_rate(Rational::new(v.fps as i32, 1));
    st.set_rate(Rational::new(v.fps as i32, 1));
    st.set_metadata(title_metadata(title, artist));
    let stream = st.index();
    Ok(VideoEncoder {
        enc,
        track: Track::new(name, stream, tb),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpeg2_b_frames_fit_the_gop() {
        assert_eq!(b_frames(VideoCodec::Mpeg2, 25), 2); // I + 8 × BBP
        assert_eq!(b_frames(VideoCodec::Mpeg2, 12), 0); // 11 is neither 3k nor 2k
        assert_eq!(b_frames(VideoCodec::Mpeg2, 15), 1); // I + 7 × BP
        assert_eq!(b_frames(VideoCodec::H264, 12), 2);
        assert_eq!(b_frames(VideoCodec::H264, 3), 0);
    }

    #[test]
    fn colour_matrix_follows_the_height() {
        assert_eq!(ColourMatrix::for_height(720), ColourMatrix::Bt709);
        assert_eq!(ColourMatrix::for_height(576), ColourMatrix::Bt601);
    }
}
