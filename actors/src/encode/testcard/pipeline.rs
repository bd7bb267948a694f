//! Encoders and the mpegts muxer: pull frames from the source graphs, encode them,
//! interleave the packets by time and write the TS.

use std::path::Path;

use ffmpeg::{encoder, filter, frame, picture};
use ffmpeg_next as ffmpeg;

use super::graph;
use super::{audio_samples, video_frames, AudioSpec, EncodeError, TestItemSpec, VideoSpec};
use crate::encode::audio_encoder::open_audio_encoder;
use crate::encode::mux::{Muxer, Track, TsOptions};
use crate::encode::video_encoder::open_video_encoder;

/// Packets written per track.
pub(super) struct Counts {
    pub video_frames: u64,
    pub audio_frames: u64,
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
    let opened = open_video_encoder(mux, &v.profile(), title, artist)?;
    // drawtext reads its text files while the graph is built; `_files` removes them.
    let (graph, _files) = graph::video_graph(v, title, artist, &mux.path)?;
    Ok(VideoLane {
        enc: opened.enc,
        graph,
        frame: frame::Video::empty(),
        track: opened.track,
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

fn open_audio(
    mux: &mut Muxer,
    a: &AudioSpec,
    spec: &TestItemSpec,
    title: &str,
    artist: &str,
) -> Result<AudioLane, EncodeError> {
    let opened = open_audio_encoder(mux, &a.profile(), title, artist)?;
    let graph = graph::audio_graph(a, opened.sample_format, opened.layout, opened.frame_size)?;
    Ok(AudioLane {
        enc: opened.enc,
        graph,
        frame: frame::Audio::empty(),
        track: opened.track,
        rate: a.sample_rate,
        small_last: opened.small_last,
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
    let ts = TsOptions {
        service_name: if title.is_empty() {
            "headend test item".into()
        } else {
            title.into()
        },
        provider: "headend".into(),
        title: title.into(),
        artist: artist.into(),
        ..TsOptions::default()
    };
    let mut mux = Muxer::open(tmp, &ts)?;

    let mut video = match &spec.video {
        Some(v) => Some(open_video(&mut mux, v, spec, title, artist)?),
        None => None,
    };
    let mut audio = match &spec.audio {
        Some(a) => Some(open_audio(&mut mux, a, spec, title, artist)?),
        None => None,
    };

    let mut tracks: Vec<&mut Track> = video
        .as_mut()
        .map(|v| &mut v.track)
        .into_iter()
        .chain(audio.as_mut().map(|a| &mut a.track))
        .collect();
    mux.write_header(&mut tracks)?;

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
    mux.write_trailer()?;
    Ok(Counts {
        video_frames: video.map_or(0, |v| v.track.packets),
        audio_frames: audio.map_or(0, |a| a.track.packets),
    })
}
