//! PES headers: locating and rewriting PTS/DTS in place (for timestamp rebasing when
//! splicing), and writing the small PES packets headend originates (ID3 metadata).

use super::time::Pts;

/// Byte offsets of the timestamps inside a PES header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesTimestamps {
    pub stream_id: u8,
    /// Offset of the 5-byte PTS field from the start of the PES packet.
    pub pts_at: Option<usize>,
    pub dts_at: Option<usize>,
}

/// Whether PES packets of `stream_id` carry the optional header (all but
/// program_stream_map, padding, private_stream_2, ECM, EMM, DSMCC, H.222.1 type E and
/// the directory; ISO/IEC 13818-1 2.4.3.7).
pub fn has_optional_header(stream_id: u8) -> bool {
    !matches!(stream_id, 0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF)
}

/// Finds the PTS/DTS fields of the PES packet that starts at `pes[0]`. `None` when the
/// bytes do not start a PES packet or the header does not fit in `pes`.
pub fn find_timestamps(pes: &[u8]) -> Option<PesTimestamps> {
    if pes.len() < 9 || pes[0..3] != [0, 0, 1] {
        return None;
    }
    let stream_id = pes[3];
    if !has_optional_header(stream_id) {
        return Some(PesTimestamps { stream_id, pts_at: None, dts_at: None });
    }
    if pes[6] & 0xC0 != 0x80 {
        return None;
    }
    let flags = pes[7] >> 6;
    let header_len = pes[8] as usize;
    let need = match flags {
        0b10 => 5,
        0b11 => 10,
        _ => 0,
    };
    if header_len < need || pes.len() < 9 + need {
        return None;
    }
    Some(PesTimestamps {
        stream_id,
        pts_at: (flags & 0b10 != 0).then_some(9),
        dts_at: (flags == 0b11).then_some(14),
    })
}

/// Reads a 5-byte PTS/DTS field (marker bits are not enforced).
pub fn read_timestamp(b: &[u8]) -> Pts {
    let v = (((b[0] >> 1) & 0x07) as u64) << 30
        | (b[1] as u64) << 22
        | ((b[2] >> 1) as u64) << 15
        | (b[3] as u64) << 7
        | (b[4] >> 1) as u64;
    Pts::new(v)
}

/// Writes a 5-byte PTS/DTS field, keeping the 4-bit prefix already there.
pub fn write_timestamp(b: &mut [u8], ts: Pts) {
    let v = ts.ticks();
    let prefix = b[0] & 0xF0;
    b[0] = prefix | (((v >> 30) as u8 & 0x07) << 1) | 1;
    b[1] = (v >> 22) as u8;
    b[2] = (((v >> 15) as u8) << 1) | 1;
    b[3] = (v >> 7) as u8;
    b[4] = ((v as u8) << 1) | 1;
}

/// A PES packet with a PTS only and the data-alignment flag, as used for timed metadata
/// (stream_id 0xBD, private_stream_1).
pub fn pes_with_pts(stream_id: u8, pts: Pts, payload: &[u8]) -> Vec<u8> {
    let len = 3 + 5 + payload.len();
    let mut pes = Vec::with_capacity(9 + 5 + payload.len());
    pes.extend_from_slice(&[0, 0, 1, stream_id]);
    pes.extend_from_slice(&(len.min(0xFFFF) as u16).to_be_bytes());
    pes.push(0x84); // '10', data_alignment_indicator
    pes.push(0x80); // PTS only
    pes.push(5);
    let mut ts = [0x20u8, 0, 0, 0, 0];
    write_timestamp(&mut ts, pts);
    pes.extend_from_slice(&ts);
    pes.extend_from_slice(payload);
    pes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::time::PTS_WRAP;

    #[test]
    fn timestamp_roundtrip_keeps_prefix() {
        for v in [0, 1, 90_000, PTS_WRAP - 1, 0x1_2345_6789 % PTS_WRAP] {
            let mut b = [0x31u8, 0, 0, 0, 0];
            write_timestamp(&mut b, Pts::new(v));
            assert_eq!(b[0] & 0xF0, 0x30);
            assert_eq!(read_timestamp(&b), Pts::new(v));
        }
    }

    #[test]
    fn finds_pts_and_dts() {
        let mut pes = pes_with_pts(0xE0, Pts::new(1234), b"abc");
        let t = find_timestamps(&pes).unwrap();
        assert_eq!(t.stream_id, 0xE0);
        assert_eq!(t.pts_at, Some(9));
        assert_eq!(t.dts_at, None);
        assert_eq!(read_timestamp(&pes[9..14]), Pts::new(1234));
        // Turn it into a PTS+DTS header.
        pes[7] = 0xC0;
        pes[8] = 10;
        pes.splice(14..14, [0x11, 0, 1, 0, 1]);
        let t = find_timestamps(&pes).unwrap();
        assert_eq!(t.dts_at, Some(14));
        assert_eq!(find_timestamps(&pes[..12]), None, "header cut short");
        assert_eq!(find_timestamps(b"\0\0\x02\xE0\0\0\x80\x80\x05"), None);
        let padding = [0, 0, 1, 0xBE, 0, 2, 0xFF, 0xFF, 0xFF];
        assert_eq!(find_timestamps(&padding).unwrap().pts_at, None);
    }
}
