//! ID3v2.3/2.4 tags as carried in timed-metadata PES packets (stream_type 0x15): only
//! the text frames are read.

use super::ParseError;

/// The text frames of one ID3v2 tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Id3Tag {
    /// 3 or 4.
    pub major_version: u8,
    /// Text frames in tag order: (frame id, text). Several values in one frame (v2.4)
    /// are joined with '/'. A TXXX frame is listed as `TXXX:<description>`.
    pub text_frames: Vec<(String, String)>,
}

fn syncsafe(b: &[u8]) -> usize {
    b.iter()
        .take(4)
        .fold(0usize, |acc, &x| (acc << 7) | (x & 0x7F) as usize)
}

fn plain_u32(b: &[u8]) -> usize {
    b.iter()
        .take(4)
        .fold(0usize, |acc, &x| (acc << 8) | x as usize)
}

/// Reverses unsynchronisation: every 0xFF 0x00 becomes 0xFF.
fn resync(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut prev_ff = false;
    for &x in b {
        if !(prev_ff && x == 0) {
            out.push(x);
        }
        prev_ff = x == 0xFF;
    }
    out
}

impl Id3Tag {
    /// Parses the tag at the start of `b` (bytes after the tag are ignored).
    pub fn parse(b: &[u8]) -> Result<Id3Tag, ParseError> {
        let header = super::slice(b, 0, 10, "ID3 header").map_err(|_| ParseError::NotId3)?;
        if &header[..3] != b"ID3" {
            return Err(ParseError::NotId3);
        }
        let major_version = header[3];
        if major_version != 3 && major_version != 4 {
            return Err(ParseError::UnsupportedId3Version(major_version));
        }
        let flags = header[5];
        let size = syncsafe(&header[6..10]);
        let body = super::slice(b, 10, size, "ID3 tag")?;
        // v2.3 unsynchronises the whole tag; v2.4 marks it per frame.
        let resynced;
        let mut body: &[u8] = if major_version == 3 && flags & 0x80 != 0 {
            resynced = resync(body);
            &resynced
        } else {
            body
        };
        if flags & 0x40 != 0 {
            let ext = super::slice(body, 0, 4, "ID3 extended header")?;
            let skip = if major_version == 4 {
                syncsafe(ext)
            } else {
                4 + plain_u32(ext)
            };
            body = super::tail(body, skip, "ID3 extended header")?;
        }
        let mut tag = Id3Tag {
            major_version,
            text_frames: Vec::new(),
        };
        while body.len() >= 10 && body[0] != 0 {
            let id_bytes = &body[..4];
            if !id_bytes
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                break; // garbage or padding that does not start with 0
            }
            let frame_size = if major_version == 4 {
                syncsafe(&body[4..8])
            } else {
                plain_u32(&body[4..8])
            };
            let format = body[9];
            let data = super::slice(body, 10, frame_size, "ID3 frame")?;
            body = &body[10 + frame_size..];
            let id = String::from_utf8_lossy(id_bytes).into_owned();
            if let Some(text) = frame_text(major_version, format, data) {
                if id_bytes[0] == b'T' {
                    tag.push_text(id, text);
                }
            }
        }
        Ok(tag)
    }

    fn push_text(&mut self, id: String, mut values: Vec<String>) {
        if id == "TXXX" {
            let description = if values.is_empty() {
                String::new()
            } else {
                values.remove(0)
            };
            self.text_frames
                .push((format!("TXXX:{description}"), values.join("/")));
        } else {
            self.text_frames.push((id, values.join("/")));
        }
    }

    /// The text of the first frame with this id ("TIT2", "TXXX:media_id", ...).
    pub fn frame(&self, id: &str) -> Option<&str> {
        self.text_frames
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.as_str())
    }
    /// TIT2.
    pub fn title(&self) -> Option<&str> {
        self.frame("TIT2")
    }
    /// TPE1.
    pub fn artist(&self) -> Option<&str> {
        self.frame("TPE1")
    }
    /// TALB.
    pub fn album(&self) -> Option<&str> {
        self.frame("TALB")
    }
    /// TCON.
    pub fn genre(&self) -> Option<&str> {
        self.frame("TCON")
    }
}

/// The strings of a text frame, or `None` when the frame cannot be read (compressed,
/// encrypted, empty).
fn frame_text(major_version: u8, format: u8, data: &[u8]) -> Option<Vec<String>> {
    let (compressed, encrypted) = if major_version == 4 {
        (format & 0x08 != 0, format & 0x04 != 0)
    } else {
        (format & 0x80 != 0, format & 0x40 != 0)
    };
    if compressed || encrypted {
        return None;
    }
    let mut data = data;
    let resynced;
    if major_version == 4 {
        if format & 0x40 != 0 {
            data = data.get(1..)?; // group id
        }
        if format & 0x01 != 0 {
            data = data.get(4..)?; // data length indicator
        }
        if format & 0x02 != 0 {
            resynced = resync(data);
            data = &resynced;
        }
    } else if format & 0x20 != 0 {
        data = data.get(1..)?; // group id
    }
    let (&encoding, text) = data.split_first()?;
    let mut values = match encoding {
        0 => text
            .split(|&c| c == 0)
            .map(|s| s.iter().map(|&c| c as char).collect())
            .collect(),
        1 | 2 => utf16_strings(text, encoding == 2),
        3 => text
            .split(|&c| c == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        _ => return None,
    };
    while values.last().is_some_and(|v: &String| v.is_empty()) && values.len() > 1 {
        values.pop();
    }
    Some(values)
}

/// Null-separated UTF-16 strings; each may start with a BOM (encoding 1), big-endian
/// when it has none.
fn utf16_strings(b: &[u8], big_endian_only: bool) -> Vec<String> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    units
        .split(|&u| u == 0)
        .map(|s| {
            let (swap, s) = match s.first() {
                Some(0xFEFF) if !big_endian_only => (false, &s[1..]),
                Some(0xFFFE) if !big_endian_only => (true, &s[1..]),
                _ => (false, s),
            };
            let iter = s.iter().map(|&u| if swap { u.swap_bytes() } else { u });
            char::decode_utf16(iter)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        })
        .collect()
}
