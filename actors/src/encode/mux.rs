//! The mpegts muxer (libavformat) and the tracks written into it, shared by the test card
//! and the item encoder.

use std::path::{Path, PathBuf};

use ffmpeg::{encoder, format, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::EncodeError;

/// Service and PID options of the mpegts muxer. `None` keeps FFmpeg's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TsOptions {
    /// `mpegts_pmt_start_pid`.
    pub pmt_pid: Option<u16>,
    /// `mpegts_start_pid`: the first elementary stream's PID; the next streams follow.
    pub start_pid: Option<u16>,
    /// `mpegts_service_id` (program number).
    pub service_id: Option<u16>,
    pub service_name: String,
    pub provider: String,
    pub title: String,
    pub artist: String,
    /// Constant mux rate (bit/s; `muxrate`): null packets fill the gaps and PCRs follow
    /// the byte position exactly. `None`: variable rate (PCRs from the DTS).
    pub mux_rate: Option<u64>,
    /// Most time a packet is sent ahead of its decoding time (`max_delay`).
    pub max_delay: Option<std::time::Duration>,
}

/// Milliseconds between PCRs the muxer writes (`pcr_period`), under TR 101 290's 40.
pub(crate) const PCR_PERIOD_MS: u64 = 20;

/// The muxer and the path named in its errors.
pub(crate) struct Muxer {
    pub octx: format::context::Output,
    pub path: PathBuf,
    header_options: Dictionary<'static>,
}

/// `title` / `artist` tags, the empty ones left out.
pub(crate) fn title_metadata(title: &str, artist: &str) -> Dictionary<'static> {
    let mut d = Dictionary::new();
    if !title.is_empty() {
        d.set("title", title);
    }
    if !artist.is_empty() {
        d.set("artist", artist);
    }
    d
}

impl Muxer {
    /// Open an mpegts muxer writing `path` (which must exist or be creatable).
    pub fn open(path: &Path, ts: &TsOptions) -> Result<Muxer, EncodeError> {
        let path_str = path.to_str().ok_or(EncodeError::BadPath {
            path: path.to_path_buf(),
            reason: "not valid UTF-8; FFmpeg needs UTF-8 paths",
        })?;
        // "file:" so that a ':' in the path is never read as a protocol name.
        let mut octx =
            format::output_as(&format!("file:{path_str}"), "mpegts").map_err(|source| {
                EncodeError::Mux {
                    op: "open",
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let mut meta = title_metadata(&ts.title, &ts.artist);
        meta.set("service_name", &ts.service_name);
        meta.set("service_provider", &ts.provider);
        octx.set_metadata(meta);
        let mut header_options = Dictionary::new();
        for (key, value) in [
            ("mpegts_pmt_start_pid", ts.pmt_pid),
            ("mpegts_start_pid", ts.start_pid),
            ("mpegts_service_id", ts.service_id),
        ] {
            if let Some(v) = value {
                header_options.set(key, &v.to_string());
            }
        }
        if let Some(rate) = ts.mux_rate {
            header_options.set("muxrate", &rate.to_string());
            header_options.set("pcr_period", &PCR_PERIOD_MS.to_string());
        }
        if let Some(d) = ts.max_delay {
            header_options.set("max_delay", &d.as_micros().to_string());
        }
        Ok(Muxer {
            octx,
            path: path.to_path_buf(),
            header_options,
        })
    }

    /// Error mapper for `op`; made before the call so it holds no borrow of the muxer.
    pub fn err(&self, op: &'static str) -> impl FnOnce(ffmpeg::Error) -> EncodeError {
        let path = self.path.clone();
        move |source| EncodeError::Mux { op, path, source }
    }

    /// Write the header, then learn each track's stream time base (the TS muxer sets its
    /// own, 1/90000, in `write_header`).
    pub fn write_header(&mut self, tracks: &mut [&mut Track]) -> Result<(), EncodeError> {
        let header_err = self.err("write the header of");
        let options = std::mem::take(&mut self.header_options);
        self.octx.write_header_with(options).map_err(header_err)?;
        for track in tracks {
            track.st_tb = self
                .octx
                .stream(track.stream)
                .expect("stream was added")
                .time_base();
        }
        Ok(())
    }

    pub fn write_trailer(&mut self) -> Result<(), EncodeError> {
        let trailer_err = self.err("write the trailer of");
        self.octx.write_trailer().map_err(trailer_err)
    }
}

/// One output stream: its encoder's time base and, after `write_header`, the stream's.
pub(crate) struct Track {
    pub codec: &'static str,
    pub stream: usize,
    pub enc_tb: Rational,
    pub st_tb: Rational,
    pub packets: u64,
}

impl Track {
    /// A track whose stream time base is the encoder's until the muxer's header
    /// changes it.
    pub fn new(codec: &'static str, stream: usize, tb: Rational) -> Self {
        Track {
            codec,
            stream,
            enc_tb: tb,
            st_tb: tb,
            packets: 0,
        }
    }

    /// Write one packet (timestamps in the encoder's time base).
    pub fn write(&mut self, mut pkt: Packet, mux: &mut Muxer) -> Result<(), EncodeError> {
        pkt.set_stream(self.stream);
        pkt.set_position(-1);
        pkt.rescale_ts(self.enc_tb, self.st_tb);
        if let Err(e) = pkt.write_interleaved(&mut mux.octx) {
            return Err(mux.err("write a packet to")(e));
        }
        self.packets += 1;
        Ok(())
    }

    /// Write every packet the encoder has ready.
    pub fn drain(
        &mut self,
        enc: &mut encoder::Encoder,
        mux: &mut Muxer,
    ) -> Result<(), EncodeError> {
        drain_encoder(enc, self.codec, |pkt| self.write(pkt, mux))
    }

    /// Flush the encoder and write what it still holds.
    pub fn flush(
        &mut self,
        enc: &mut encoder::Encoder,
        mux: &mut Muxer,
    ) -> Result<(), EncodeError> {
        send_eof(enc, self.codec)?;
        self.drain(enc, mux)
    }
}

/// Signal the end of input to an encoder.
pub(crate) fn send_eof(enc: &mut encoder::Encoder, codec: &'static str) -> Result<(), EncodeError> {
    enc.send_eof()
        .map_err(|source| EncodeError::Encode { codec, source })
}

/// Hand every packet the encoder has ready to `sink`.
pub(crate) fn drain_encoder(
    enc: &mut encoder::Encoder,
    codec: &'static str,
    mut sink: impl FnMut(Packet) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    loop {
        let mut pkt = Packet::empty();
        match enc.receive_packet(&mut pkt) {
            Ok(()) => sink(pkt)?,
            Err(ffmpeg::Error::Other {
                errno: ffmpeg::error::EAGAIN,
            })
            | Err(ffmpeg::Error::Eof) => return Ok(()),
            Err(source) => return Err(EncodeError::Encode { codec, source }),
        }
    }
}
