//! Page frames (RGBA with straight alpha, transparent where the page draws nothing)
//! blended over a transcoded video: each page picture is converted once to yuva420p, then
//! every output frame is `page × alpha + video × (1 − alpha)` per plane (chroma with the
//! alpha of the top-left luma sample of its 2×2 block).

use ffmpeg::{format, frame};
use ffmpeg_next as ffmpeg;
use tokio::sync::mpsc::Receiver;

use super::pages::{PageFrames, RgbaConverter};
use crate::encode::EncodeError;
use crate::frame::PageFrame;

/// The page layer over the video.
pub(crate) struct Overlay {
    rx: Receiver<PageFrame>,
    expected: u64,
    converter: RgbaConverter,
    layer: frame::Video,
    out: frame::Video,
}

impl Overlay {
    /// `converter` must convert to `yuva420p`.
    pub fn new(rx: Receiver<PageFrame>, expected: u64, converter: RgbaConverter) -> Self {
        Overlay {
            rx,
            expected,
            converter,
            layer: frame::Video::empty(),
            out: frame::Video::empty(),
        }
    }

    /// The page frame `index` over `base`.
    pub fn compose(
        &mut self,
        index: u64,
        base: &frame::Video,
    ) -> Result<&mut frame::Video, EncodeError> {
        if let Some(f) = PageFrames::receive(&mut self.rx, index, self.expected)? {
            let mut layer = frame::Video::empty();
            self.converter.convert(index, &f, &mut layer)?;
            self.layer = layer;
        }
        // A fresh buffer each time: the encoder may still hold the previous one.
        let mut out = frame::Video::new(format::Pixel::YUV420P, base.width(), base.height());
        blend(base, &self.layer, &mut out);
        self.out = out;
        Ok(&mut self.out)
    }
}

/// `out = layer over base`; all three are the same size, `layer` yuva420p, the others
/// yuv420p.
fn blend(base: &frame::Video, layer: &frame::Video, out: &mut frame::Video) {
    let (w, h) = (base.width() as usize, base.height() as usize);
    let a_stride = layer.stride(3);
    let alpha = layer.data(3);
    for p in 0..3 {
        let (pw, ph, step) = if p == 0 { (w, h, 1) } else { (w / 2, h / 2, 2) };
        let (bs, ls, os) = (base.stride(p), layer.stride(p), out.stride(p));
        let (b, l) = (base.data(p), layer.data(p));
        let o = out.data_mut(p);
        for y in 0..ph {
            let a_row = &alpha[y * step * a_stride..];
            let b_row = &b[y * bs..y * bs + pw];
            let l_row = &l[y * ls..y * ls + pw];
            let o_row = &mut o[y * os..y * os + pw];
            for x in 0..pw {
                let a = u32::from(a_row[x * step]);
                o_row[x] =
                    ((u32::from(l_row[x]) * a + u32::from(b_row[x]) * (255 - a) + 127) / 255) as u8;
            }
        }
    }
}
