//! DVB text strings (EN 300 468 annex A) and the MJD/BCD time fields of SI tables.

/// Decodes a DVB text field. The first byte selects the character table when it is
/// below 0x20: 0x15 is UTF-8 and 0x11 is UCS-2 (big-endian); 0x10 0x00 0x01 is
/// ISO 8859-1. Text without a prefix uses the default table, read here as Latin-1
/// (its letters agree with ISO 6937 for plain ASCII). Other tables are decoded lossily:
/// ASCII kept, other bytes replaced with U+FFFD. DVB control codes are dropped except
/// the CR/LF code 0x8A, which becomes a newline.
pub fn decode_dvb_text(b: &[u8]) -> String {
    let Some(&first) = b.first() else {
        return String::new();
    };
    match first {
        0x20..=0xFF => latin1(b),
        0x15 => utf8(&b[1..]),
        0x11 => ucs2(&b[1..]),
        0x10 => match b.get(1..3) {
            Some([0x00, 0x01]) => latin1(&b[3..]),
            _ => lossy(b.get(3..).unwrap_or(&[])),
        },
        0x1F => lossy(b.get(2..).unwrap_or(&[])),
        _ => lossy(&b[1..]),
    }
}

fn control(byte: u8) -> Option<Option<char>> {
    match byte {
        0x8A => Some(Some('\n')),
        0x80..=0x9F => Some(None),
        _ => None,
    }
}

fn latin1(b: &[u8]) -> String {
    b.iter()
        .filter_map(|&c| match control(c) {
            Some(mapped) => mapped,
            None => Some(c as char),
        })
        .collect()
}

fn lossy(b: &[u8]) -> String {
    b.iter()
        .filter_map(|&c| match control(c) {
            Some(mapped) => mapped,
            None if c.is_ascii() => Some(c as char),
            None => Some(char::REPLACEMENT_CHARACTER),
        })
        .collect()
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .filter_map(|c| match c as u32 {
            0xE08A => Some('\n'),
            0xE080..=0xE09F => None,
            _ => Some(c),
        })
        .collect()
}

fn ucs2(b: &[u8]) -> String {
    let units = b.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]));
    char::decode_utf16(units)
        .filter_map(|r| match r {
            Ok('\u{E08A}') => Some('\n'),
            Ok('\u{E080}'..='\u{E09F}') => None,
            Ok(c) => Some(c),
            Err(_) => Some(char::REPLACEMENT_CHARACTER),
        })
        .collect()
}

fn bcd(byte: u8) -> Option<u32> {
    let (hi, lo) = (byte >> 4, byte & 0x0F);
    (hi < 10 && lo < 10).then_some(hi as u32 * 10 + lo as u32)
}

/// hh:mm:ss as six BCD digits, in seconds. `None` for invalid digits.
pub fn bcd_duration_secs(b: [u8; 3]) -> Option<u32> {
    let (h, m, s) = (bcd(b[0])?, bcd(b[1])?, bcd(b[2])?);
    (m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

/// Modified Julian Date (16 bits) followed by BCD hh:mm:ss, as Unix seconds (UTC).
/// `None` when undefined (all ones), before 1970, or not valid BCD.
pub fn mjd_bcd_to_unix(b: [u8; 5]) -> Option<u64> {
    if b == [0xFF; 5] {
        return None;
    }
    let mjd = u16::from_be_bytes([b[0], b[1]]) as u64;
    const UNIX_EPOCH_MJD: u64 = 40_587;
    let days = mjd.checked_sub(UNIX_EPOCH_MJD)?;
    let secs = bcd_duration_secs([b[2], b[3], b[4]])? as u64;
    if secs >= 86_400 {
        return None;
    }
    Some(days * 86_400 + secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(decode_dvb_text(b""), "");
        assert_eq!(decode_dvb_text(b"News"), "News");
        assert_eq!(decode_dvb_text(&[b'C', 0xE9, b'!']), "Cé!");
        let mut utf = vec![0x15];
        utf.extend_from_slice("Bänd ♪".as_bytes());
        assert_eq!(decode_dvb_text(&utf), "Bänd ♪");
        assert_eq!(decode_dvb_text(&[0x11, 0x00, b'A', 0x26, 0x6A]), "A♪");
        assert_eq!(decode_dvb_text(&[0x10, 0x00, 0x01, 0xE9]), "é");
        // ISO 8859-5 (0x01) is not decoded: ASCII survives, the rest is replaced.
        assert_eq!(decode_dvb_text(&[0x01, b'T', 0xB0]), "T\u{FFFD}");
        // Emphasis codes dropped, CR/LF kept.
        assert_eq!(
            decode_dvb_text(&[b'a', 0x86, b'b', 0x87, 0x8A, b'c']),
            "ab\nc"
        );
        // Broken UTF-8 is lossy, never a panic.
        assert_eq!(decode_dvb_text(&[0x15, 0xFF, b'x']), "\u{FFFD}x");
        assert_eq!(decode_dvb_text(&[0x10]), "");
        assert_eq!(decode_dvb_text(&[0x11, 0x00]), "");
    }

    #[test]
    fn mjd_and_bcd() {
        // EN 300 468 annex C example: 93/10/13 12:45:00 is MJD 0xC079.
        let unix = mjd_bcd_to_unix([0xC0, 0x79, 0x12, 0x45, 0x00]).unwrap();
        assert_eq!(unix, 750_516_300);
        assert_eq!(mjd_bcd_to_unix([0xFF; 5]), None);
        assert_eq!(mjd_bcd_to_unix([0xC0, 0x79, 0x1A, 0x00, 0x00]), None);
        assert_eq!(
            mjd_bcd_to_unix([0x00, 0x10, 0x00, 0x00, 0x00]),
            None,
            "before 1970"
        );
        assert_eq!(bcd_duration_secs([0x01, 0x45, 0x30]), Some(6330));
        assert_eq!(bcd_duration_secs([0x00, 0x60, 0x00]), None);
    }
}
