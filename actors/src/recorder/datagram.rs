//! What a received datagram carries (pure): TS packets, bare or inside RTP (RFC 3550
//! header with CSRCs, extension and padding; RFC 2250 payload), and where a PAT starts.

use crate::ts::packet::{SYNC_BYTE, TS_PACKET_SIZE};

/// Why a datagram was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDatagram {
    #[error("empty datagram")]
    Empty,
    #[error("RTP header longer than the datagram")]
    ShortRtp,
    #[error("neither TS (0x47) nor RTP version 2")]
    NotTs,
    #[error("payload of {0} bytes is not a whole number of 188-byte packets")]
    Length(usize),
    #[error("packet {0} has no 0x47 sync byte")]
    Sync(usize),
}

/// The transport packets of a datagram: the datagram itself when it starts with a sync
/// byte, else the payload of its RTP header. Always a non-empty whole number of packets,
/// each starting with 0x47.
pub fn ts_payload(datagram: &[u8]) -> Result<&[u8], InvalidDatagram> {
    let payload = match datagram.first() {
        None => return Err(InvalidDatagram::Empty),
        Some(&SYNC_BYTE) => datagram,
        Some(&b) if b >> 6 == 2 => rtp_payload(datagram)?,
        Some(_) => return Err(InvalidDatagram::NotTs),
    };
    if payload.is_empty() || payload.len() % TS_PACKET_SIZE != 0 {
        return Err(InvalidDatagram::Length(payload.len()));
    }
    match payload.chunks_exact(TS_PACKET_SIZE).position(|p| p[0] != SYNC_BYTE) {
        Some(i) => Err(InvalidDatagram::Sync(i)),
        None => Ok(payload),
    }
}

fn rtp_payload(d: &[u8]) -> Result<&[u8], InvalidDatagram> {
    let csrcs = (d[0] & 0x0F) as usize;
    let mut start = 12 + 4 * csrcs;
    if d.len() < start {
        return Err(InvalidDatagram::ShortRtp);
    }
    if d[0] & 0x10 != 0 {
        let ext = d.get(start + 2..start + 4).ok_or(InvalidDatagram::ShortRtp)?;
        start += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = d.len();
    if d[0] & 0x20 != 0 {
        end = end.saturating_sub(d[d.len() - 1] as usize);
    }
    if start > end {
        return Err(InvalidDatagram::ShortRtp);
    }
    Ok(&d[start..end])
}

/// Index of the first packet that starts a PAT section (PID 0 with
/// payload_unit_start_indicator) in a validated payload.
pub fn pat_start(payload: &[u8]) -> Option<usize> {
    payload.chunks_exact(TS_PACKET_SIZE).position(|p| p[1] & 0x5F == 0x40 && p[2] == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u16, pusi: bool) -> Vec<u8> {
        let mut p = vec![0xFF; 188];
        p[0] = 0x47;
        p[1] = (pid >> 8) as u8 | if pusi { 0x40 } else { 0 };
        p[2] = pid as u8;
        p[3] = 0x10;
        p
    }

    fn ts(pids: &[(u16, bool)]) -> Vec<u8> {
        pids.iter().flat_map(|&(pid, pusi)| packet(pid, pusi)).collect()
    }

    #[test]
    fn bare_ts_is_taken_as_is_and_the_pat_found() {
        let d = ts(&[(0x100, true), (0, false), (0, true), (0x1FFF, false)]);
        assert_eq!(ts_payload(&d).unwrap(), &d[..]);
        assert_eq!(pat_start(&d), Some(2), "a PAT continuation packet is not a start");
        assert_eq!(pat_start(&ts(&[(0x100, true), (0x1000, true)])), None, "PID 0x1000 is not PID 0");
    }

    #[test]
    fn rtp_headers_of_every_shape_are_removed() {
        let body = ts(&[(0, true), (0x100, false)]);
        let plain = [&[0x80u8, 33, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7][..], &body].concat();
        assert_eq!(ts_payload(&plain).unwrap(), &body[..]);
        // Two CSRCs, a one-word extension and 3 bytes of padding.
        let mut fancy = vec![0x80 | 0x20 | 0x10 | 2, 33, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7];
        fancy.extend([1, 1, 1, 1, 2, 2, 2, 2]);
        fancy.extend([0xBE, 0xDE, 0, 1, 9, 9, 9, 9]);
        fancy.extend(&body);
        fancy.extend([0, 0, 3]);
        assert_eq!(ts_payload(&fancy).unwrap(), &body[..]);
    }

    #[test]
    fn broken_datagrams_are_refused_with_a_reason() {
        assert_eq!(ts_payload(&[]), Err(InvalidDatagram::Empty));
        assert_eq!(ts_payload(&[0x12; 200]), Err(InvalidDatagram::NotTs));
        assert_eq!(ts_payload(&[0x80, 33, 0]), Err(InvalidDatagram::ShortRtp));
        let mut d = ts(&[(0, true), (1, false)]);
        d.truncate(300);
        assert_eq!(ts_payload(&d), Err(InvalidDatagram::Length(300)));
        let mut d = ts(&[(0, true), (1, false)]);
        d[188] = 0;
        assert_eq!(ts_payload(&d), Err(InvalidDatagram::Sync(1)));
        assert_eq!(ts_payload(&[0x80, 33, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7]), Err(InvalidDatagram::Length(0)));
    }

    #[test]
    fn fuzzed_datagrams_never_panic() {
        let mut x = 0x2545F4914F6CDD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 1500) as usize;
            let d: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8 ^ i as u8).collect();
            if let Ok(p) = ts_payload(&d) {
                assert_eq!(p.len() % 188, 0);
                let _ = pat_start(p);
            }
        }
    }
}
