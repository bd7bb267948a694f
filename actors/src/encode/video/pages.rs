//! Rendered page frames (packed RGBA from the renderer) to yuv420p with swscale (through
//! the `scale` filter, BT.709 for HD and BT.601 for SD, limited range). A `Repeat` frame
//! re-sends the previous converted picture without converting again.

use ffmpeg::{format, frame, Rational};
use ffmpeg_next as ffmpeg;
use tokio::sync::mpsc::Receiver;

use crate::encode::filters::{FrameGraph, Pulled, VideoInputDesc};
use crate::encode::{ColourMatrix, EncodeError};
use crate::frame::{PageFrame, RgbaFrame};

/// Converts RGBA pictures of one size to another pixel format with swscale.
pub(crate) struct RgbaConverter {
    graph: FrameGraph,
    width: u32,
    height: u32,
}

impl RgbaConverter {
    /// RGBA `width`×`height` to `to` (e.g. "yuv420p", "yuva420p") with `matrix`.
    pub fn new(
        width: u32,
        height: u32,
        fps: u32,
        matrix: ColourMatrix,
        to: &str,
    ) -> Result<Self, EncodeError> {
        let desc = VideoInputDesc {
            width,
            height,
            format: format::Pixel::RGBA,
            time_base: Rational::new(1, fps as i32),
            aspect: Rational::new(1, 1),
        };
        let chain = format!(
            "scale=out_color_matrix={m}:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_inp,format={to}",
            m = matrix.scale_name()
        );
        Ok(RgbaConverter {
            graph: FrameGraph::video("page frame conversion", desc, &chain)?,
            width,
            height,
        })
    }

    /// Check `f` is `width`×`height` RGBA with exactly that many bytes.
    pub fn check(&self, index: u64, f: &RgbaFrame) -> Result<(), EncodeError> {
        if f.width != self.width || f.height != self.height || !f.is_well_formed() {
            return Err(EncodeError::FrameSize {
                index,
                got: format!("{}x{} with {} bytes", f.width, f.height, f.data.len()),
                expected: format!(
                    "{}x{} ({} bytes)",
                    self.width,
                    self.height,
                    self.width as usize * self.height as usize * 4
                ),
            });
        }
        Ok(())
    }

    /// Convert `f` (checked) into `out`.
    pub fn convert(
        &mut self,
        index: u64,
        f: &RgbaFrame,
        out: &mut frame::Video,
    ) -> Result<(), EncodeError> {
        self.check(index, f)?;
        // A new frame each time: the graph takes the pushed frame's buffer.
        let mut rgba = frame::Video::new(format::Pixel::RGBA, self.width, self.height);
        let row = self.width as usize * 4;
        let stride = rgba.stride(0);
        let dst = rgba.data_mut(0);
        for (y, src) in f.data.chunks_exact(row).enumerate() {
            dst[y * stride..y * stride + row].copy_from_slice(src);
        }
        rgba.set_pts(Some(index as i64));
        self.graph.push(&rgba)?;
        match self.graph.pull(out)? {
            Pulled::Frame => Ok(()),
            other => unreachable!("a scale graph returns each frame at once, got {other:?}"),
        }
    }
}

/// Page frames from the renderer, converted to yuv420p.
pub(crate) struct PageFrames {
    rx: Receiver<PageFrame>,
    expected: u64,
    converter: RgbaConverter,
    current: frame::Video,
}

impl PageFrames {
    pub fn new(rx: Receiver<PageFrame>, expected: u64, converter: RgbaConverter) -> Self {
        PageFrames {
            rx,
            expected,
            converter,
            current: frame::Video::empty(),
        }
    }

    /// The next page frame from the renderer (blocking until it arrives): `Some(frame)`
    /// for a new picture, `None` for a repeat.
    pub fn receive(
        rx: &mut Receiver<PageFrame>,
        index: u64,
        expected: u64,
    ) -> Result<Option<std::sync::Arc<RgbaFrame>>, EncodeError> {
        match rx.blocking_recv() {
            Some(PageFrame::New(f)) => Ok(Some(f)),
            Some(PageFrame::Repeat) if index == 0 => Err(EncodeError::FirstFrameRepeat),
            Some(PageFrame::Repeat) => Ok(None),
            None => Err(EncodeError::FramesEnded {
                got: index,
                expected,
            }),
        }
    }

    pub fn next(&mut self, index: u64) -> Result<&mut frame::Video, EncodeError> {
        if let Some(f) = Self::receive(&mut self.rx, index, self.expected)? {
            let mut out = frame::Video::empty();
            self.converter.convert(index, &f, &mut out)?;
            self.current = out;
        }
        Ok(&mut self.current)
    }
}
