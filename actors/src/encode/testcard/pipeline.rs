//! Encoders and the mpegts muxer: pull frames from the source graphs, encode them,
//! interleave the packets by time and write the TS.

use std::path::Path;

use ffmpeg::codec::{self, capabilities::Capabilities};
use ffmpeg::format::{self, Sample};
use ffmpeg::{encoder, filter, frame, picture, ChannelLayout, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::graph;
use super::{
    audio_samples, video_frames, AudioCodec, AudioSpec, EncodeError, TestItemSpec, VideoCodec,
    VideoSpec,
};

/// Packets written per track.
pub(super) struct Counts {
    pub video_frames: u64,
    pub audio_frames: u64,
}

/// The muxer and the path named in its errors.
struct Muxer {
    octx: format::context::Output,
    path: std::path::PathBuf,
}

impl Muxer {
    /// Error mapper for `op`; made before the call so it holds no borrow of the muxer.
    fn err(&self, op: &'static str) -> impl FnOnce(ffmpeg::Error) -> EncodeError {
        let path = self.path.clone();
        move |source| EncodeError::Mux { op, path, source }
    }
}

/// One output stream: its encoder's time base and, after `write_header`, the stream's.
struct Track {
    codec: &'static str,
    stream: usize,
    enc_tb: Rational,
    st_tb: Rational,
    packets: u64,
}

impl Track {
    /// A track whose stream time base is the encoder's until the muxer's header
    /// changes it.
    fn new(codec: &'static str, stream: usize, tb: Rational) -> Self {
        Track { codec, stream, enc_tb: tb, st_tb: tb, packets: 0 }
    }

    /// Write every packet the encoder has ready.
    fn drain(&mut self, enc: &mut encoder::Encoder, mux: &mut Muxer) -> Result<(), EncodeError> {
        let mut pkt = Packet::empty();
        loop {
            match enc.receive_packet(&mut pkt) {
                Ok(()) => {
                    pkt.set_stream(self.stream);
                    pkt.set_position(-1);
                    pkt.rescale_ts(self.enc_tb, self.st_tb);
                    if let Err(e) = pkt.write_interleaved(&mut mux.octx) {
                        return Err(mux.err("write a packet to")(e));
                    }
                    self.packets += 1;
                }
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(source) => {
                    return Err(EncodeError::Encode {
                        codec: self.codec,
                        source,
                    })
                }
            }
        }
    }

    fn flush(&mut self, enc: &mut encoder::Encoder, mux: &mut Muxer) -> Result<(), EncodeError> {
        enc.send_eof().map_err(|source| EncodeError::Encode {
            codec: self.codec,
            source,
        })?;
        self.drain(enc, mux)
    }
}

fn title_metadata(title: &str, artist: &str) -> Dictionary<'static> {
    let mut d = Dictionary::new();
    if !title.is_empty() {
        d.set("title", title);
    }
    if !artist.is_empty() {
        d.set("artist", artist);
    }
    d
}

struct VideoLane {
    enc: encoder::video::Encoder,
    graph: filter::Graph,
    frame: frame::Video,
    track: Track,
    fps: u32,
    sent: u64,
    total: u64,
}

fn open_video(
    mux: &mut Muxer,
    v: &VideoSpec,
    spec: &TestItemSpec,
    title: &str,
    artist: &str,
) -> Result<VideoLane, EncodeError> {
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
        "{}x{} yuv420p {} fps, {} bit/s (maxrate = bufsize), closed GOP {}",
        v.width, v.height, v.fps, v.bitrate, v.gop
    );
    let hint = "check the size, frame rate and bitrate are within the codec's limits";
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
    // Two B-frames where the GOP has room for them; closed GOPs either way.
    enc.set_max_b_frames(if v.gop >= 4 { 2 } else { 0 });
    enc.set_bit_rate(v.bitrate as usize);
    enc.set_max_bit_rate(v.bitrate as usize);
    enc.set_flags(codec::flag::Flags::CLOSED_GOP);
    let mut opts = Dictionary::new();
    opts.set("bufsize", &v.bitrate.to_string());
    opts.set("threads", "auto");
    match v.codec {
        VideoCodec::H264 => {
            opts.set("preset", "veryfast");
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

    // drawtext reads its text files while the graph is built; `_files` removes them.
    let (graph, _files) = graph::video_graph(v, title, artist, &mux.path)?;
    Ok(VideoLane {
        enc,
        graph,
        frame: frame::Video::empty(),
        track: Track::new(name, stream, tb),
        fps: v.fps,
        sent: 0,
        total: video_frames(spec.duration, v.fps),
    })
}

impl VideoLane {
    fn step(&mut self, mux: &mut Muxer) -> Result<(), EncodeError> {
        let mut out = self.graph.get("out").expect("video graph has its sink");
        out.sink()
            .frame(&mut self.frame)
            .map_err(|source| EncodeError::Encode {
                codec: "testsrc2/drawtext filter graph",
                source,
            })?;
        self.frame.set_pts(Some(self.sent as i64));
        self.frame.set_kind(picture::Type::None);
        self.enc
            .send_frame(&self.frame)
            .map_err(|source| EncodeError::Encode {
                codec: self.track.codec,
                source,
            })?;
        self.sent += 1;
        self.track.drain(&mut self.enc, mux)
    }
}

struct AudioLane {
    enc: encoder::audio::Encoder,
    graph: filter::Graph,
    frame: frame::Audio,
    track: Track,
    rate: u32,
    /// The encoder takes a short last frame (else the last frame is padded with tone).
    small_last: bool,
    sent: u64,
    total: u64,
}

fn list<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn open_audio(
    mux: &mut Muxer,
    a: &AudioSpec,
    spec: &TestItemSpec,
    title: &str,
    artist: &str,
) -> Result<AudioLane, EncodeError> {
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

    let graph = graph::audio_graph(a, sample_format, layout, frame_size)?;
    Ok(AudioLane {
        enc,
        graph,
        frame: frame::Audio::empty(),
        track: Track::new(name, stream, tb),
        rate: a.sample_rate,
        small_last,
        sent: 0,
        total: audio_samples(spec, a.sample_rate),
    })
}

impl AudioLane {
    fn step(&mut self, mux: &mut Muxer) -> Result<(), EncodeError> {
        let mut out = self.graph.get("out").expect("audio graph has its sink");
        out.sink()
            .frame(&mut self.frame)
            .map_err(|source| EncodeError::Encode {
                codec: "sine/aformat filter graph",
                source,
            })?;
        let remaining = self.total - self.sent;
        if self.small_last && remaining < self.frame.samples() as u64 {
            self.frame.set_samples(remaining as usize);
        }
        self.frame.set_pts(Some(self.sent as i64));
        self.enc
            .send_frame(&self.frame)
            .map_err(|source| EncodeError::Encode {
                codec: self.track.codec,
                source,
            })?;
        self.sent += self.frame.samples() as u64;
        self.track.drain(&mut self.enc, mux)
    }
}

/// Encode and mux the item into `tmp` (already created by the caller).
pub(super) fn run(
    spec: &TestItemSpec,
    title: &str,
    artist: &str,
    tmp: &Path,
) -> Result<Counts, EncodeError> {
    let tmp_str = tmp.to_str().ok_or(EncodeError::BadPath {
        path: tmp.to_path_buf(),
        reason: "not valid UTF-8; FFmpeg needs UTF-8 paths",
    })?;
    // "file:" so that a ':' in the path is never read as a protocol name.
    let octx = format::output_as(&format!("file:{tmp_str}"), "mpegts").map_err(|source| {
        EncodeError::Mux {
            op: "open",
            path: tmp.to_path_buf(),
            source,
        }
    })?;
    let mut mux = Muxer {
        octx,
        path: tmp.to_path_buf(),
    };

    let mut meta = Dictionary::new();
    meta.set(
        "service_name",
        if title.is_empty() {
            "headend test item"
        } else {
            title
        },
    );
    meta.set("service_provider", "headend");
    for (k, v) in [("title", title), ("artist", artist)] {
        if !v.is_empty() {
            meta.set(k, v);
        }
    }
    mux.octx.set_metadata(meta);

    let mut video = match &spec.video {
        Some(v) => Some(open_video(&mut mux, v, spec, title, artist)?),
        None => None,
    };
    let mut audio = match &spec.audio {
        Some(a) => Some(open_audio(&mut mux, a, spec, title, artist)?),
        None => None,
    };

    let header_err = mux.err("write the header of");
    mux.octx.write_header().map_err(header_err)?;
    // The muxer picks its own time bases (1/90000) in write_header.
    for track in [
        video.as_mut().map(|v| &mut v.track),
        audio.as_mut().map(|a| &mut a.track),
    ]
    .into_iter()
    .flatten()
    {
        track.st_tb = mux
            .octx
            .stream(track.stream)
            .expect("stream was added")
            .time_base();
    }

    // Feed whichever track is behind in time, so the muxer's interleaving queue stays short.
    loop {
        let v_next = video
            .as_ref()
            .filter(|v| v.sent < v.total)
            .map(|v| (v.sent, u64::from(v.fps)));
        let a_next = audio
            .as_ref()
            .filter(|a| a.sent < a.total)
            .map(|a| (a.sent, u64::from(a.rate)));
        match (v_next, a_next) {
            (None, None) => break,
            (Some((vn, vd)), Some((an, ad)))
                if u128::from(an) * u128::from(vd) < u128::from(vn) * u128::from(ad) =>
            {
                audio.as_mut().expect("audio lane").step(&mut mux)?
            }
            (Some(_), _) => video.as_mut().expect("video lane").step(&mut mux)?,
            (None, Some(_)) => audio.as_mut().expect("audio lane").step(&mut mux)?,
        }
    }
    if let Some(v) = video.as_mut() {
        v.track.flush(&mut v.enc, &mut mux)?;
    }
    if let Some(a) = audio.as_mut() {
        a.track.flush(&mut a.enc, &mut mux)?;
    }
    let trailer_err = mux.err("write the trailer of");
    mux.octx.write_trailer().map_err(trailer_err)?;
    Ok(Counts {
        video_frames: video.map_or(0, |v| v.track.packets),
        audio_frames: audio.map_or(0, |a| a.track.packets),
    })
}
