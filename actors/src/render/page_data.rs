//! The item metadata a page receives (`window.headend.item`), passed as data, never as HTML.

use super::error::RenderError;
use base64::Engine;
use serde::Serialize;
use std::io::Read;
use std::path::Path;

/// Largest image (artwork, logo) a page accepts, in bytes of its `data:` URL.
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;

/// Metadata of the item being rendered, serialised to JSON for the page as
/// `window.headend.item` (field names as here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PageData {
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
    pub duration_ms: u64,
    /// Artwork as a `data:image/...` URL ([`PageData::artwork_from_file`]), or none.
    pub artwork: Option<String>,
    /// The channel's name.
    pub channel: String,
    /// The channel's logo as a `data:image/...` URL, or none.
    pub logo: Option<String>,
    pub media_id: String,
}

impl PageData {
    /// Reads an image file into a `data:` URL, refusing files over [`MAX_IMAGE_BYTES`] and
    /// anything that is not a PNG, JPEG, GIF, WebP or SVG image (sniffed from the content).
    pub fn artwork_from_file(path: &Path) -> Result<String, RenderError> {
        let what = format!("image file {}", path.display());
        let unusable = |reason: String| RenderError::ImageUnusable { what: what.clone(), reason };
        let file = std::fs::File::open(path).map_err(|e| unusable(e.to_string()))?;
        let len = file.metadata().map_err(|e| unusable(e.to_string()))?.len();
        // base64 grows the data by 4/3.
        let limit_raw = MAX_IMAGE_BYTES / 4 * 3;
        if len > limit_raw {
            return Err(RenderError::ImageTooLarge { what, size: len, limit: limit_raw });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(limit_raw + 1).read_to_end(&mut bytes).map_err(|e| unusable(e.to_string()))?;
        if bytes.len() as u64 > limit_raw {
            return Err(RenderError::ImageTooLarge { what, size: bytes.len() as u64, limit: limit_raw });
        }
        Self::image_data_url(&bytes, &what)
    }

    /// A `data:` URL of image bytes (PNG, JPEG, GIF, WebP or SVG, sniffed); `what` names the
    /// image in errors.
    pub fn image_data_url(bytes: &[u8], what: &str) -> Result<String, RenderError> {
        let mime = sniff_image(bytes).ok_or_else(|| RenderError::ImageUnusable {
            what: what.to_string(),
            reason: "its content is not a known image format".into(),
        })?;
        let url = format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes));
        check_image_url(&url, what)?;
        Ok(url)
    }

    /// Checks the images of a job: data URLs of images, under the size limit.
    pub(crate) fn validate(&self) -> Result<(), RenderError> {
        if let Some(url) = &self.artwork {
            check_image_url(url, &format!("the artwork of media {}", self.media_id))?;
        }
        if let Some(url) = &self.logo {
            check_image_url(url, &format!("the logo of channel {}", self.channel))?;
        }
        Ok(())
    }
}

fn check_image_url(url: &str, what: &str) -> Result<(), RenderError> {
    if url.len() as u64 > MAX_IMAGE_BYTES {
        return Err(RenderError::ImageTooLarge { what: what.to_string(), size: url.len() as u64, limit: MAX_IMAGE_BYTES });
    }
    if !url.starts_with("data:image/") {
        return Err(RenderError::ImageUnusable {
            what: what.to_string(),
            reason: "it is not a data:image/ URL (images reach the page as data, never fetched)".into(),
        });
    }
    Ok(())
}

fn sniff_image(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        let head = String::from_utf8_lossy(&b[..b.len().min(512)]).to_ascii_lowercase();
        (head.trim_start().starts_with("<svg") || (head.contains("<?xml") && head.contains("<svg"))).then_some("image/svg+xml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_and_limits() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        assert!(PageData::image_data_url(png, "x").unwrap().starts_with("data:image/png;base64,"));
        assert!(PageData::image_data_url(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x").unwrap().starts_with("data:image/svg+xml"));
        assert_eq!(PageData::image_data_url(b"hello", "x").unwrap_err().kind(), "image_unusable");
        let data = PageData { artwork: Some("https://evil.test/a.png".into()), ..Default::default() };
        assert_eq!(data.validate().unwrap_err().kind(), "image_unusable");
        let big = format!("data:image/png;base64,{}", "A".repeat(MAX_IMAGE_BYTES as usize));
        let data = PageData { artwork: Some(big), ..Default::default() };
        assert_eq!(data.validate().unwrap_err().kind(), "image_too_large");
    }
}
