//! Video frames passed from the renderer to the encoder.
//!
//! The renderer (`render/`) produces one [`PageFrame`] per output frame time; the encoder
//! (`encode/`) consumes them on its blocking thread (`Receiver::blocking_recv`). A page
//! that did not change between two frame times yields [`PageFrame::Repeat`], so a mostly
//! static page costs one capture, one conversion and one copy per change, not per frame.

use std::sync::Arc;

/// One frame as packed RGBA, 8 bits per channel, rows top to bottom, no row padding
/// (`data.len() == width * height * 4`). Alpha is straight (not premultiplied); opaque
/// pages have alpha 255 everywhere, overlay pages are transparent where nothing is drawn.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbaFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbaFrame {
    /// A frame of one colour.
    pub fn filled(width: u32, height: u32, rgba: [u8; 4]) -> Self {
        let px = width as usize * height as usize;
        let mut data = Vec::with_capacity(px * 4);
        for _ in 0..px {
            data.extend_from_slice(&rgba);
        }
        RgbaFrame { width, height, data }
    }

    /// The pixel at (x, y) as `[r, g, b, a]`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [self.data[i], self.data[i + 1], self.data[i + 2], self.data[i + 3]]
    }

    /// Whether `data` has exactly `width * height * 4` bytes.
    pub fn is_well_formed(&self) -> bool {
        self.data.len() == self.width as usize * self.height as usize * 4
    }
}

impl std::fmt::Debug for RgbaFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbaFrame({}x{}, {} bytes)", self.width, self.height, self.data.len())
    }
}

/// What the renderer delivers for one output frame time.
#[derive(Debug, Clone)]
pub enum PageFrame {
    /// The page changed: this is the new picture.
    New(Arc<RgbaFrame>),
    /// Identical to the previous frame (the first frame is never `Repeat`).
    Repeat,
}
