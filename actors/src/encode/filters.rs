//! A libavfilter graph with one buffer source (`in`) and one sink (`out`): frames are pushed
//! in and pulled out. Used for RGBA → yuv420p conversion (swscale through `scale`),
//! resampling and loudness (swresample through `aresample`, `ebur128`, `volume`,
//! `alimiter`), transcoding (`fps`, `scale`, `pad`) and thumbnails.

use ffmpeg::{filter, format, frame, ChannelLayout, Rational};
use ffmpeg_next as ffmpeg;

use super::EncodeError;

/// What a pull returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pulled {
    Frame,
    /// Push more input first.
    Again,
    /// The graph has been flushed and is empty.
    End,
}

/// A filter graph `in` → chain → `out`.
pub(crate) struct FrameGraph {
    graph: filter::Graph,
    what: &'static str,
    spec: String,
}

/// The `buffer` source's description of a video input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VideoInputDesc {
    pub width: u32,
    pub height: u32,
    pub format: format::Pixel,
    pub time_base: Rational,
    pub aspect: Rational,
}

/// The `abuffer` source's description of an audio input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AudioInputDesc {
    pub rate: u32,
    pub format: format::Sample,
    pub layout: ChannelLayout,
}

impl FrameGraph {
    fn build(
        what: &'static str,
        source: &'static str,
        source_args: &str,
        sink: &'static str,
        chain: &str,
    ) -> Result<Self, EncodeError> {
        let spec = format!("{source}={source_args} -> {chain}");
        let fail = |source| EncodeError::FilterGraph {
            what,
            graph: spec.clone(),
            source,
        };
        let mut graph = filter::Graph::new();
        for name in [source, sink] {
            let f = filter::find(name).ok_or(EncodeError::FilterMissing { name })?;
            let label = if name == source { "in" } else { "out" };
            let args = if name == source { source_args } else { "" };
            graph.add(&f, label, args).map_err(fail)?;
        }
        graph
            .output("in", 0)
            .map_err(fail)?
            .input("out", 0)
            .map_err(fail)?
            .parse(chain)
            .map_err(fail)?;
        graph.validate().map_err(fail)?;
        Ok(FrameGraph { graph, what, spec })
    }

    /// A video graph fed with frames described by `input`.
    pub fn video(
        what: &'static str,
        input: VideoInputDesc,
        chain: &str,
    ) -> Result<Self, EncodeError> {
        let pix = input
            .format
            .descriptor()
            .map(|d| d.name().to_string())
            .unwrap_or_else(|| "rgba".into());
        let aspect = if input.aspect.numerator() > 0 {
            input.aspect
        } else {
            Rational::new(1, 1)
        };
        let args = format!(
            "video_size={}x{}:pix_fmt={pix}:time_base={}/{}:pixel_aspect={}/{}",
            input.width,
            input.height,
            input.time_base.numerator(),
            input.time_base.denominator(),
            aspect.numerator(),
            aspect.denominator(),
        );
        Self::build(what, "buffer", &args, "buffersink", chain)
    }

    /// An audio graph fed with frames described by `input`; `frame_size` makes the sink
    /// return frames of exactly that many samples (the last one may be shorter).
    pub fn audio(
        what: &'static str,
        input: AudioInputDesc,
        chain: &str,
        frame_size: Option<u32>,
    ) -> Result<Self, EncodeError> {
        let args = format!(
            "time_base=1/{rate}:sample_rate={rate}:sample_fmt={fmt}:channel_layout=0x{bits:x}",
            rate = input.rate,
            fmt = input.format.name(),
            bits = input.layout.bits(),
        );
        let mut g = Self::build(what, "abuffer", &args, "abuffersink", chain)?;
        if let Some(n) = frame_size {
            if let Some(mut out) = g.graph.get("out") {
                out.sink().set_frame_size(n);
            }
        }
        Ok(g)
    }

    fn fail(&self, source: ffmpeg::Error) -> EncodeError {
        EncodeError::FilterGraph {
            what: self.what,
            graph: self.spec.clone(),
            source,
        }
    }

    /// Push one frame in.
    pub fn push(&mut self, frame: &frame::Frame) -> Result<(), EncodeError> {
        let r = self
            .graph
            .get("in")
            .expect("graph has its source")
            .source()
            .add(frame);
        r.map_err(|e| self.fail(e))
    }

    /// Signal the end of the input.
    pub fn finish(&mut self) -> Result<(), EncodeError> {
        let r = self
            .graph
            .get("in")
            .expect("graph has its source")
            .source()
            .flush();
        r.map_err(|e| self.fail(e))
    }

    /// Pull one frame out into `into`.
    pub fn pull(&mut self, into: &mut frame::Frame) -> Result<Pulled, EncodeError> {
        let r = self
            .graph
            .get("out")
            .expect("graph has its sink")
            .sink()
            .frame(into);
        match r {
            Ok(()) => Ok(Pulled::Frame),
            Err(ffmpeg::Error::Other {
                errno: ffmpeg::error::EAGAIN,
            }) => Ok(Pulled::Again),
            Err(ffmpeg::Error::Eof) => Ok(Pulled::End),
            Err(e) => Err(self.fail(e)),
        }
    }
}
