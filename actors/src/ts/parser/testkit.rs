//! Hand-made test streams for the parser and analyzer tests: sections built byte by
//! byte with crc32_mpeg2, so the parse side is tested without the build side.

use crate::ts::crc::crc32_mpeg2;
use crate::ts::packet::TsPacket;

/// A long-form section around `body`, with CRC.
pub(crate) fn long_section(
    table_id: u8,
    ext: u16,
    version: u8,
    number: u8,
    last: u8,
    body: &[u8],
) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![table_id, 0xB0 | ((len >> 8) as u8 & 0x0F), len as u8];
    s.extend_from_slice(&ext.to_be_bytes());
    s.push(0xC1 | ((version & 0x1F) << 1));
    s.push(number);
    s.push(last);
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

pub(crate) fn pat_section(tsid: u16, version: u8, programs: &[(u16, u16)]) -> Vec<u8> {
    let mut body = Vec::new();
    for &(number, pid) in programs {
        body.extend_from_slice(&number.to_be_bytes());
        body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
    }
    long_section(0x00, tsid, version, 0, 0, &body)
}

/// A PMT without descriptors: (stream_type, PID) per stream.
pub(crate) fn pmt_section(
    program: u16,
    version: u8,
    pcr_pid: u16,
    streams: &[(u8, u16)],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&[0xF0, 0x00]);
    for &(stream_type, pid) in streams {
        body.push(stream_type);
        body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
        body.extend_from_slice(&[0xF0, 0x00]);
    }
    long_section(0x02, program, version, 0, 0, &body)
}

fn dvb_text(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        s.as_bytes().to_vec()
    } else {
        let mut v = vec![0x15];
        v.extend_from_slice(s.as_bytes());
        v
    }
}

/// SDT actual with one service_descriptor per service: (service_id, type, provider, name).
pub(crate) fn sdt_section(
    tsid: u16,
    onid: u16,
    version: u8,
    services: &[(u16, u8, &str, &str)],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&onid.to_be_bytes());
    body.push(0xFF);
    for &(sid, service_type, provider, name) in services {
        let (p, n) = (dvb_text(provider), dvb_text(name));
        let mut d = vec![
            0x48,
            (3 + p.len() + n.len()) as u8,
            service_type,
            p.len() as u8,
        ];
        d.extend_from_slice(&p);
        d.push(n.len() as u8);
        d.extend_from_slice(&n);
        body.extend_from_slice(&sid.to_be_bytes());
        body.push(0xFD); // EIT p/f flag
        body.extend_from_slice(&((4u16 << 13) | d.len() as u16).to_be_bytes()); // running
        body.extend_from_slice(&d);
    }
    long_section(0x42, tsid, version, 0, 0, &body)
}

/// An EIT event for [`eit_pf_section`]: (event_id, MJD+BCD start, BCD duration, name, text).
pub(crate) type TestEvent<'a> = (u16, [u8; 5], [u8; 3], &'a str, &'a str);

/// One EIT p/f actual section (`number` 0 present, 1 following) with at most one event.
pub(crate) fn eit_pf_section(
    sid: u16,
    version: u8,
    number: u8,
    event: Option<TestEvent<'_>>,
) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, 0x00, 0x02, 0x01, 0x4E]; // tsid 1, onid 2
    if let Some((id, start, duration, name, text)) = event {
        let (n, t) = (dvb_text(name), dvb_text(text));
        let mut d = vec![
            0x4D,
            (5 + n.len() + t.len()) as u8,
            b'e',
            b'n',
            b'g',
            n.len() as u8,
        ];
        d.extend_from_slice(&n);
        d.push(t.len() as u8);
        d.extend_from_slice(&t);
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&start);
        body.extend_from_slice(&duration);
        body.extend_from_slice(&((4u16 << 13) | d.len() as u16).to_be_bytes());
        body.extend_from_slice(&d);
    }
    long_section(0x4E, sid, version, number, 1, &body)
}

fn timestamp_field(prefix: u8, v: u64) -> [u8; 5] {
    [
        (prefix << 4) | (((v >> 30) as u8 & 0x07) << 1) | 1,
        (v >> 22) as u8,
        (((v >> 15) as u8) << 1) | 1,
        (v >> 7) as u8,
        ((v as u8) << 1) | 1,
    ]
}

/// A PES packet with optional PTS/DTS and PES_packet_length filled in (0 if too long).
pub(crate) fn pes_packet(
    stream_id: u8,
    pts: Option<u64>,
    dts: Option<u64>,
    payload: &[u8],
) -> Vec<u8> {
    let mut opt = Vec::new();
    let flags = match (pts, dts) {
        (Some(p), Some(d)) => {
            opt.extend_from_slice(&timestamp_field(0x3, p));
            opt.extend_from_slice(&timestamp_field(0x1, d));
            0xC0
        }
        (Some(p), None) => {
            opt.extend_from_slice(&timestamp_field(0x2, p));
            0x80
        }
        _ => 0x00,
    };
    let len = 3 + opt.len() + payload.len();
    let mut pes = vec![0, 0, 1, stream_id];
    pes.extend_from_slice(&(if len > 0xFFFF { 0 } else { len as u16 }).to_be_bytes());
    pes.extend_from_slice(&[0x84, flags, opt.len() as u8]);
    pes.extend_from_slice(&opt);
    pes.extend_from_slice(payload);
    pes
}

fn syncsafe(n: usize) -> [u8; 4] {
    [
        (n >> 21) as u8 & 0x7F,
        (n >> 14) as u8 & 0x7F,
        (n >> 7) as u8 & 0x7F,
        n as u8 & 0x7F,
    ]
}

/// An ID3v2.4 tag of UTF-8 text frames.
pub(crate) fn id3_v24(frames: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (id, text) in frames {
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(&syncsafe(text.len() + 1));
        body.extend_from_slice(&[0, 0, 3]);
        body.extend_from_slice(text.as_bytes());
    }
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend_from_slice(&syncsafe(body.len()));
    tag.extend_from_slice(&body);
    tag
}

pub(crate) fn stream_bytes(packets: &[TsPacket]) -> Vec<u8> {
    packets.iter().flat_map(|p| p.0).collect()
}

/// A payload-only packet with `payload` followed by 0xFF stuffing (at most 184 bytes).
pub(crate) fn raw_packet(pid: u16, pusi: bool, cc: u8, payload: &[u8]) -> TsPacket {
    let mut b = [0xFFu8; 188];
    b[0] = 0x47;
    b[1] = (if pusi { 0x40 } else { 0 }) | ((pid >> 8) as u8 & 0x1F);
    b[2] = pid as u8;
    b[3] = 0x10 | (cc & 0x0F);
    let n = payload.len().min(184);
    b[4..4 + n].copy_from_slice(&payload[..n]);
    TsPacket(b)
}

/// A small deterministic PRNG (xorshift64*) for fuzz-style tests.
pub(crate) struct TestRng(u64);

impl TestRng {
    pub(crate) fn new(seed: u64) -> Self {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Between 0 and `max - 1` random bytes.
    pub(crate) fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
