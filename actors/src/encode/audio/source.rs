//! Decoding the audio of a media file (mp3, m4a/aac, flac, wav, ogg, or the sound of a
//! video), frame by frame, with the file named in every error.

use std::path::{Path, PathBuf};

use ffmpeg::{codec, format, frame, media, ChannelLayout, Packet};
use ffmpeg_next as ffmpeg;

use crate::encode::filters::AudioInputDesc;
use crate::encode::EncodeError;

/// Share of undecodable packets beyond which a file is refused as corrupt.
const MAX_BAD_PACKET_SHARE: f64 = 0.05;

/// The decoded audio of one media file.
pub(crate) struct AudioSource {
    path: PathBuf,
    input: format::context::Input,
    decoder: ffmpeg::decoder::Audio,
    stream: usize,
    desc: AudioInputDesc,
    packets: u64,
    bad_packets: u64,
    first_error: Option<String>,
    /// Samples decoded so far (at the source's rate).
    pub samples: u64,
    ended: bool,
}

/// Open `path` for reading, with errors naming it.
pub(crate) fn open_input(path: &Path) -> Result<format::context::Input, EncodeError> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(EncodeError::io("open media", path, e));
    }
    format::input(&path).map_err(|e| EncodeError::MediaOpen {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A decoder for stream `index` of `input`.
pub(crate) fn open_decoder(
    path: &Path,
    input: &format::context::Input,
    index: usize,
) -> Result<ffmpeg::decoder::Opened, EncodeError> {
    let params = input.stream(index).expect("stream exists").parameters();
    let id = params.id();
    let Some(codec) = ffmpeg::decoder::find(id) else {
        return Err(EncodeError::UnsupportedCodec {
            path: path.to_path_buf(),
            codec: format!("{id:?}").to_lowercase(),
        });
    };
    let ctx = codec::context::Context::from_parameters(params).map_err(|e| {
        EncodeError::CorruptMedia {
            path: path.to_path_buf(),
            detail: format!("stream {index} has unusable codec parameters ({e})"),
        }
    })?;
    ctx.decoder()
        .open_as(codec)
        .map_err(|e| EncodeError::CorruptMedia {
            path: path.to_path_buf(),
            detail: format!("the {id:?} decoder refuses stream {index} ({e})"),
        })
}

impl AudioSource {
    /// Open the best audio stream of `path`.
    pub fn open(path: &Path) -> Result<Self, EncodeError> {
        let input = open_input(path)?;
        let stream = input
            .streams()
            .best(media::Type::Audio)
            .ok_or(EncodeError::NoStream {
                path: path.to_path_buf(),
                kind: "audio",
            })?
            .index();
        let decoder =
            open_decoder(path, &input, stream)?
                .audio()
                .map_err(|e| EncodeError::CorruptMedia {
                    path: path.to_path_buf(),
                    detail: format!("stream {stream} is not audio ({e})"),
                })?;
        if decoder.rate() == 0 || decoder.channels() == 0 {
            return Err(EncodeError::CorruptMedia {
                path: path.to_path_buf(),
                detail: format!(
                    "the audio stream declares {} Hz and {} channels",
                    decoder.rate(),
                    decoder.channels()
                ),
            });
        }
        let layout = match decoder.channel_layout() {
            l if l.bits() != 0 && l.channels() == i32::from(decoder.channels()) => l,
            _ => ChannelLayout::default(i32::from(decoder.channels())),
        };
        let desc = AudioInputDesc {
            rate: decoder.rate(),
            format: decoder.format(),
            layout,
        };
        Ok(AudioSource {
            path: path.to_path_buf(),
            input,
            decoder,
            stream,
            desc,
            packets: 0,
            bad_packets: 0,
            first_error: None,
            samples: 0,
            ended: false,
        })
    }

    /// Rate, sample format and layout of the decoded frames.
    pub fn desc(&self) -> AudioInputDesc {
        self.desc
    }

    fn corrupt(&self, detail: String) -> EncodeError {
        EncodeError::CorruptMedia {
            path: self.path.clone(),
            detail,
        }
    }

    fn note_bad_packet(&mut self, e: ffmpeg::Error) {
        self.bad_packets += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("packet {}: {e}", self.packets));
        }
    }

    /// The next decoded frame, with its pts set to the running sample count; `false` at
    /// the end of the stream. Refuses the file when too many packets fail to decode, when
    /// the sound's format changes mid-stream, or when it has no samples.
    pub fn next(&mut self, frame: &mut frame::Audio) -> Result<bool, EncodeError> {
        loop {
            match self.decoder.receive_frame(frame) {
                Ok(()) => {
                    if frame.samples() == 0 {
                        continue;
                    }
                    if frame.rate() != self.desc.rate
                        || frame.format() != self.desc.format
                        || frame.channels() != self.desc.layout.channels() as u16
                    {
                        return Err(self.corrupt(format!(
                            "the audio changes format mid-stream (at sample {}: {} Hz {} ch, was {} Hz {} ch); re-encode it to one format",
                            self.samples,
                            frame.rate(),
                            frame.channels(),
                            self.desc.rate,
                            self.desc.layout.channels()
                        )));
                    }
                    frame.set_channel_layout(self.desc.layout);
                    frame.set_pts(Some(self.samples as i64));
                    self.samples += frame.samples() as u64;
                    return Ok(true);
                }
                Err(ffmpeg::Error::Eof) => return self.finish().map(|()| false),
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                }) => {}
                Err(e) => self.note_bad_packet(e),
            }
            if self.ended {
                // Decoder drained after EOF without reporting Eof.
                return self.finish().map(|()| false);
            }
            self.feed()?;
        }
    }

    /// Send the decoder the next packet of the audio stream (or EOF).
    fn feed(&mut self) -> Result<(), EncodeError> {
        let mut packet = Packet::empty();
        loop {
            match packet.read(&mut self.input) {
                Ok(()) if packet.stream() == self.stream => {
                    self.packets += 1;
                    if let Err(e) = self.decoder.send_packet(&packet) {
                        self.note_bad_packet(e);
                    }
                    self.check_bad_share()?;
                    return Ok(());
                }
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => {
                    self.ended = true;
                    let _ = self.decoder.send_eof();
                    return Ok(());
                }
                Err(e) => {
                    return Err(self.corrupt(format!(
                        "reading failed after {} audio packets ({e})",
                        self.packets
                    )))
                }
            }
        }
    }

    fn check_bad_share(&self) -> Result<(), EncodeError> {
        // Judge after a few packets, so one bad packet at the start of a short file counts.
        if self.bad_packets > 2
            && self.bad_packets as f64 > self.packets as f64 * MAX_BAD_PACKET_SHARE
        {
            return Err(self.corrupt(format!(
                "{} of the first {} audio packets do not decode (first: {})",
                self.bad_packets,
                self.packets,
                self.first_error.as_deref().unwrap_or("?")
            )));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), EncodeError> {
        self.ended = true;
        if self.bad_packets > 0
            && self.bad_packets as f64 > self.packets as f64 * MAX_BAD_PACKET_SHARE
        {
            return Err(self.corrupt(format!(
                "{} of {} audio packets do not decode (first: {})",
                self.bad_packets,
                self.packets,
                self.first_error.as_deref().unwrap_or("?")
            )));
        }
        if self.samples == 0 {
            if self.bad_packets > 0 {
                return Err(self.corrupt(format!(
                    "no audio decodes ({})",
                    self.first_error.as_deref().unwrap_or("?")
                )));
            }
            return Err(EncodeError::EmptyAudio {
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}
