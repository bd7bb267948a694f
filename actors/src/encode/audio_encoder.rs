//! Opening the audio encoder (aac, mp2 or ac3) and its TS stream: the sample format, rate
//! and channel layout are checked against what the encoder takes.

use ffmpeg::codec::{self, capabilities::Capabilities};
use ffmpeg::format::{self, Sample};
use ffmpeg::{encoder, ChannelLayout, Rational};
use ffmpeg_next as ffmpeg;

use super::mux::{title_metadata, Muxer, Track};
use super::{AudioCodec, AudioProfile, EncodeError};

/// An open audio encoder, its track in the muxer and the frames it takes.
pub(crate) struct AudioEncoder {
    pub enc: encoder::audio::Encoder,
    pub track: Track,
    pub sample_format: Sample,
    pub layout: ChannelLayout,
    /// Samples per frame the encoder takes.
    pub frame_size: u32,
    /// The encoder takes a short last frame (else the last frame must be padded).
    pub small_last: bool,
}

fn list<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// Open the encoder for `a` and add its stream to `mux`.
pub(crate) fn open_audio_encoder(
    mux: &mut Muxer,
    a: &AudioProfile,
    title: &str,
    artist: &str,
) -> Result<AudioEncoder, EncodeError> {
    let name = a.codec.encoder_name();
    let codec = encoder::find_by_name(name).ok_or(EncodeError::EncoderMissing {
        name,
        hint: "use an FFmpeg built with its native audio encoders",
    })?;
    let unsupported = |setting: String, supported: String| EncodeError::Unsupported {
        codec: name,
        setting,
        supported,
    };
    let settings = format!(
        "{} Hz, {} channels, {} bit/s",
        a.sample_rate, a.channels, a.bitrate
    );
    let hint = match a.codec {
        AudioCodec::Aac => "AAC takes about 16-320 kbit/s per channel pair",
        AudioCodec::Mp2 => {
            "MP2 takes 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 or 384 kbit/s"
        }
        AudioCodec::Ac3 => "AC-3 takes 32-640 kbit/s in standard steps, e.g. 192, 384, 448",
    };
    let open_err = |source| EncodeError::EncoderOpen {
        codec: name,
        settings: settings.clone(),
        hint,
        source,
    };
    let caps = codec.audio().map_err(open_err)?;

    let preferred = match a.codec {
        AudioCodec::Aac | AudioCodec::Ac3 => Sample::F32(format::sample::Type::Planar),
        AudioCodec::Mp2 => Sample::I16(format::sample::Type::Packed),
    };
    let sample_format = match caps.formats() {
        Some(mut formats) => {
            let all: Vec<Sample> = formats.by_ref().collect();
            if all.contains(&preferred) {
                preferred
            } else {
                *all.first().unwrap_or(&preferred)
            }
        }
        None => preferred,
    };
    if let Some(rates) = caps.rates() {
        let rates: Vec<i32> = rates.collect();
        if !rates.contains(&(a.sample_rate as i32)) {
            return Err(unsupported(
                format!("sample rate {} Hz", a.sample_rate),
                list(rates.iter()),
            ));
        }
    }
    let layout = ChannelLayout::default(i32::from(a.channels));
    if let Some(layouts) = caps.channel_layouts() {
        let layouts: Vec<ChannelLayout> = layouts.collect();
        if !layouts.contains(&layout) {
            let counts = layouts.iter().map(|l| format!("{} ch", l.channels()));
            return Err(unsupported(
                format!("{} channels", a.channels),
                list(counts),
            ));
        }
    }

    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(open_err)?;
    let tb = Rational::new(1, a.sample_rate as i32);
    enc.set_rate(a.sample_rate as i32);
    enc.set_channel_layout(layout);
    // FFmpeg 5.1 wants the count as well as the layout.
    enc.set_channels(layout.channels());
    enc.set_format(sample_format);
    enc.set_bit_rate(a.bitrate as usize);
    enc.set_time_base(tb);
    let enc = enc.open_as(codec).map_err(open_err)?;
    let cap = codec.capabilities();
    let small_last =
        cap.intersects(Capabilities::SMALL_LAST_FRAME | Capabilities::VARIABLE_FRAME_SIZE);
    let frame_size = match enc.frame_size() {
        0 => 1024,
        n => n,
    };

    let add_err = mux.err("add the audio stream to");
    let mut st = mux.octx.add_stream(codec).map_err(add_err)?;
    st.set_parameters(&enc);
    st.set_time_base(tb);
    st.set_metadata(title_metadata(title, artist));
    let stream = st.index();
    Ok(AudioEncoder {
        enc,
        track: Track::new(name, stream, tb),
        sample_format,
        layout,
        frame_size,
        small_last,
    })
}
