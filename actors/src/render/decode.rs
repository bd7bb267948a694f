//! Screenshots (base64 PNG from Chromium) to [`RgbaFrame`]s, on a blocking thread, with
//! FFmpeg's PNG decoder; delivers one [`PageFrame`] per output frame to the encoder.

use super::error::RenderError;
use crate::frame::{PageFrame, RgbaFrame};
use base64::Engine;
use ffmpeg_next as ffmpeg;
use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the capture loop hands over for one output frame.
#[derive(Debug)]
pub(crate) enum Shot {
    /// A new picture: base64 of a PNG.
    New(String),
    /// Same picture as the previous frame.
    Repeat,
}

/// Frames the decoder delivered.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Delivered {
    pub(crate) frames: u64,
    pub(crate) new: u64,
}

/// The decoder thread of one attempt: send it shots, join it for the count of frames it
/// delivered (or why it stopped).
pub(crate) struct Decoder {
    pub(crate) shots: mpsc::Sender<Shot>,
    thread: JoinHandle<(Delivered, Option<RenderError>)>,
}

impl Decoder {
    /// Starts a decoder for `width` x `height` frames delivering to `out`.
    pub(crate) fn spawn(width: u32, height: u32, url: String, out: mpsc::Sender<PageFrame>) -> Decoder {
        let (shots, rx) = mpsc::channel(4);
        let thread = tokio::task::spawn_blocking(move || decode_loop(width, height, &url, rx, out));
        Decoder { shots, thread }
    }

    /// Waits for the thread (drop `shots` first, or it waits for more).
    pub(crate) async fn join(self) -> (Delivered, Option<RenderError>) {
        drop(self.shots);
        match self.thread.await {
            Ok(result) => result,
            Err(e) => (Delivered::default(), Some(RenderError::Capture { url: String::new(), frame: 0, reason: format!("decoder thread failed: {e}") })),
        }
    }
}

fn decode_loop(width: u32, height: u32, url: &str, mut rx: mpsc::Receiver<Shot>, out: mpsc::Sender<PageFrame>) -> (Delivered, Option<RenderError>) {
    let mut done = Delivered::default();
    let mut png = PngToRgba::default();
    while let Some(shot) = rx.blocking_recv() {
        let capture_err = |reason: String| RenderError::Capture { url: url.to_string(), frame: done.frames, reason };
        let frame = match shot {
            Shot::Repeat => PageFrame::Repeat,
            Shot::New(b64) => {
                let bytes = match base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()) {
                    Ok(b) => b,
                    Err(e) => return (done, Some(capture_err(format!("screenshot is not base64: {e}")))),
                };
                match png.decode(&bytes) {
                    Ok(f) if f.width == width && f.height == height => PageFrame::New(Arc::new(f)),
                    Ok(f) => return (done, Some(capture_err(format!("screenshot is {}x{}, the job is {width}x{height}", f.width, f.height)))),
                    Err(e) => return (done, Some(capture_err(e))),
                }
            }
        };
        let is_new = matches!(frame, PageFrame::New(_));
        if out.blocking_send(frame).is_err() {
            return (done, Some(RenderError::Cancelled { url: url.to_string() }));
        }
        done.frames += 1;
        done.new += u64::from(is_new);
    }
    (done, None)
}

/// Decodes PNG screenshots (8-bit RGB or RGBA) into packed straight RGBA.
///
/// Each picture gets a fresh FFmpeg decoder: a PNG decoder that already decoded a picture of
/// the same size treats the next one as a P-frame on top of it (FFmpeg 5.1 `pngdec`), which
/// drifts the colours of every later picture. RGB pictures get their alpha from swscale (an
/// exact byte shuffle), kept between pictures of the same size.
#[derive(Default)]
pub(crate) struct PngToRgba {
    scaler: Option<(u32, u32, scaling::Context)>,
}

impl PngToRgba {
    pub(crate) fn decode(&mut self, png: &[u8]) -> Result<RgbaFrame, String> {
        static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
        INIT.get_or_init(|| ffmpeg::init().map_err(|e| e.to_string())).clone()?;
        let codec = ffmpeg::decoder::find(ffmpeg::codec::Id::PNG).ok_or("FFmpeg has no PNG decoder")?;
        let mut decoder = ffmpeg::codec::context::Context::new_with_codec(codec)
            .decoder()
            .video()
            .map_err(|e| format!("opening FFmpeg's PNG decoder: {e}"))?;
        decoder.send_packet(&ffmpeg::Packet::copy(png)).map_err(|e| format!("PNG decoder refused the screenshot: {e}"))?;
        let mut picture = ffmpeg::frame::Video::empty();
        decoder.receive_frame(&mut picture).map_err(|e| format!("PNG decoder gave no picture: {e}"))?;
        let (w, h) = (picture.width(), picture.height());
        match picture.format() {
            Pixel::RGBA => Ok(packed(&picture)),
            Pixel::RGB24 => {
                if !matches!(&self.scaler, Some((sw, sh, _)) if (*sw, *sh) == (w, h)) {
                    let scaler = scaling::Context::get(Pixel::RGB24, w, h, Pixel::RGBA, w, h, scaling::Flags::POINT | scaling::Flags::BITEXACT)
                        .map_err(|e| format!("swscale RGB24 to RGBA: {e}"))?;
                    self.scaler = Some((w, h, scaler));
                }
                let (_, _, scaler) = self.scaler.as_mut().expect("just set");
                let mut rgba = ffmpeg::frame::Video::empty();
                scaler.run(&picture, &mut rgba).map_err(|e| format!("swscale RGB24 to RGBA: {e}"))?;
                Ok(packed(&rgba))
            }
            other => Err(format!("screenshot has pixel format {other:?}, expected 8-bit RGB or RGBA")),
        }
    }
}

/// Rows of an RGBA frame without their padding.
fn packed(frame: &ffmpeg::frame::Video) -> RgbaFrame {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (stride, src) = (frame.stride(0), frame.data(0));
    let mut data = Vec::with_capacity(w * h * 4);
    for row in 0..h {
        data.extend_from_slice(&src[row * stride..row * stride + w * 4]);
    }
    RgbaFrame { width: w as u32, height: h as u32, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of one colour (8-bit RGB or RGBA), "Up"-filtered rows, stored deflate blocks.
    fn png_of(w: u32, h: u32, px: &[u8]) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let body = [kind, data].concat();
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&body).to_be_bytes());
        }
        let mut raw = Vec::new();
        for y in 0..h {
            raw.push(2); // Up: first row relative to zeros, the others repeat it.
            for _ in 0..w {
                raw.extend(px.iter().map(|&c| if y == 0 { c } else { 0 }));
            }
        }
        let mut z = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
        for (i, block) in blocks.iter().enumerate() {
            z.push(u8::from(i + 1 == blocks.len()));
            z.extend_from_slice(&(block.len() as u16).to_le_bytes());
            z.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
            z.extend_from_slice(block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in &raw {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let mut ihdr = [w.to_be_bytes(), h.to_be_bytes()].concat();
        ihdr.extend_from_slice(&[8, if px.len() == 4 { 6 } else { 2 }, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &z);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn successive_pictures_decode_exactly() {
        // The same size again and again, as a job's screenshots are.
        let mut png = PngToRgba::default();
        for (k, colour) in [[255u8, 0, 0], [10, 200, 30], [255, 0, 0], [0, 0, 0]].iter().enumerate() {
            let f = png.decode(&png_of(64, 32, colour)).unwrap();
            assert_eq!((f.width, f.height), (64, 32));
            assert!(f.is_well_formed());
            for (x, y) in [(0, 0), (63, 0), (0, 31), (40, 20)] {
                assert_eq!(f.pixel(x, y), [colour[0], colour[1], colour[2], 255], "picture {k} at ({x}, {y})");
            }
        }
        let f = png.decode(&png_of(8, 8, &[1, 2, 3, 0])).unwrap();
        assert_eq!(f.pixel(7, 7), [1, 2, 3, 0], "alpha kept");
        let f = png.decode(&png_of(33, 7, &[9, 8, 7])).unwrap();
        assert_eq!((f.width, f.pixel(32, 6)), (33, [9, 8, 7, 255]), "odd sizes, new scaler");
        assert!(png.decode(b"not a png").is_err());
    }
}
