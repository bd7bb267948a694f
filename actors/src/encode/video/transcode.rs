//! A video file (or a still image) as the item's pictures: decoded, frame-rate converted
//! (`fps`), scaled to the profile's size with the aspect ratio kept and padded with black
//! (`scale`, `pad`), in yuv420p. When the video ends before the sound, its last picture
//! is held; when it is longer, it is cut.

use std::path::{Path, PathBuf};

use ffmpeg::{format, frame, media, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::encode::audio::source::{open_decoder, open_input};
use crate::encode::filters::{FrameGraph, Pulled, VideoInputDesc};
use crate::encode::{ColourMatrix, EncodeError};

/// The largest still image accepted, in pixels per side.
pub const MAX_STILL_SIDE: u32 = 8192;
/// The largest still image file accepted, in bytes.
pub const MAX_STILL_BYTES: u64 = 50 * 1024 * 1024;

/// What the pictures are made to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub matrix: ColourMatrix,
}

/// Decodes and converts a video file or still image.
pub(crate) struct Transcoder {
    path: PathBuf,
    input: format::context::Input,
    decoder: ffmpeg::decoder::Video,
    stream: usize,
    graph: FrameGraph,
    decoded: frame::Video,
    current: frame::Video,
    produced: u64,
    input_done: bool,
    graph_done: bool,
}

impl Transcoder {
    /// Open the best video stream of `path`.
    pub fn video(path: &Path, target: Target) -> Result<Self, EncodeError> {
        Self::open(path, target, true)
    }

    /// Open a still image (PNG, JPEG, ...), refusing images over 8192×8192 or 50 MB.
    pub fn still(path: &Path, target: Target) -> Result<Self, EncodeError> {
        let bytes = std::fs::metadata(path)
            .map_err(|e| EncodeError::io("open image", path, e))?
            .len();
        if bytes > MAX_STILL_BYTES {
            return Err(EncodeError::ImageTooLarge {
                path: path.to_path_buf(),
                detail: format!("{bytes} bytes"),
                limit: "50 MB",
            });
        }
        Self::open(path, target, false)
    }

    fn open(path: &Path, target: Target, moving: bool) -> Result<Self, EncodeError> {
        let input = open_input(path)?;
        let st = input
            .streams()
            .best(media::Type::Video)
            .ok_or(EncodeError::NoStream {
                path: path.to_path_buf(),
                kind: "video",
            })?;
        let stream = st.index();
        let time_base = st.time_base();
        let decoder =
            open_decoder(path, &input, stream)?
                .video()
                .map_err(|e| EncodeError::CorruptMedia {
                    path: path.to_path_buf(),
                    detail: format!("stream {stream} is not video ({e})"),
                })?;
        let (w, h) = (decoder.width(), decoder.height());
        if !moving && (w > MAX_STILL_SIDE || h > MAX_STILL_SIDE) {
            return Err(EncodeError::ImageTooLarge {
                path: path.to_path_buf(),
                detail: format!("{w}x{h} pixels"),
                limit: "8192x8192 pixels",
            });
        }
        if w == 0 || h == 0 || decoder.format() == format::Pixel::None {
            return Err(EncodeError::CorruptMedia {
                path: path.to_path_buf(),
                detail: format!("the picture stream declares {w}x{h} and no pixel format"),
            });
        }
        let desc = VideoInputDesc {
            width: w,
            height: h,
            format: decoder.format(),
            time_base: if time_base.numerator() > 0 {
                time_base
            } else {
                Rational::new(1, 90_000)
            },
            aspect: decoder.aspect_ratio(),
        };
        let (tw, th) = (target.width, target.height);
        let fps = if moving {
            format!("fps=fps={}:round=near,", target.fps)
        } else {
            String::new()
        };
        let chain = format!(
            "{fps}scale=w={tw}:h={th}:force_original_aspect_ratio=decrease:force_divisible_by=2:out_color_matrix={m}:out_range=tv,\
             pad=w={tw}:h={th}:x=(ow-iw)/2:y=(oh-ih)/2:color=black,setsar=1,format=yuv420p",
            m = target.matrix.scale_name()
        );
        let what = if moving {
            "video transcode"
        } else {
            "still image"
        };
        let graph = FrameGraph::video(what, desc, &chain)?;
        Ok(Transcoder {
            path: path.to_path_buf(),
            input,
            decoder,
            stream,
            graph,
            decoded: frame::Video::empty(),
            current: frame::Video::empty(),
            produced: 0,
            input_done: false,
            graph_done: false,
        })
    }

    fn corrupt(&self, detail: String) -> EncodeError {
        EncodeError::CorruptMedia {
            path: self.path.clone(),
            detail,
        }
    }

    /// The next output picture; after the source's last picture, that one again.
    pub fn next(&mut self) -> Result<&mut frame::Video, EncodeError> {
        while !self.graph_done {
            let mut out = frame::Video::empty();
            match self.graph.pull(&mut out)? {
                Pulled::Frame => {
                    self.current = out;
                    self.produced += 1;
                    return Ok(&mut self.current);
                }
                Pulled::End => self.graph_done = true,
                Pulled::Again if self.input_done => self.graph_done = true,
                Pulled::Again => self.feed()?,
            }
        }
        if self.produced == 0 {
            return Err(self.corrupt("no picture decodes".into()));
        }
        Ok(&mut self.current)
    }

    /// Decode more and push what decodes into the graph (or end its input).
    fn feed(&mut self) -> Result<(), EncodeError> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {
                    let pts = self.decoded.timestamp();
                    self.decoded.set_pts(pts);
                    return self.graph.push(&self.decoded);
                }
                Err(ffmpeg::Error::Eof) => {
                    self.input_done = true;
                    return self.graph.finish();
                }
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                }) => {}
                // A damaged picture: the decoder conceals it or drops it.
                Err(_) => {}
            }
            let mut packet = Packet::empty();
            loop {
                match packet.read(&mut self.input) {
                    Ok(()) if packet.stream() == self.stream => {
                        let _ = self.decoder.send_packet(&packet);
                        break;
                    }
                    Ok(()) => {}
                    Err(ffmpeg::Error::Eof) => {
                        let _ = self.decoder.send_eof();
                        break;
                    }
                    Err(e) => {
                        return Err(self.corrupt(format!(
                            "reading the pictures failed after {} frames ({e})",
                            self.produced
                        )))
                    }
                }
            }
        }
    }
}
