//! ID3v2.4 tags for now-playing metadata, carried as timed metadata PES (stream_type 0x15)
//! the way HLS players (Apple's "Timed Metadata for HTTP Live Streaming") read it.

use super::packet::{packetize_pes, Pid, TsPacket};
use super::pes::pes_with_pts;
use super::time::Pts;

/// What a now-playing tag says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NowPlayingTag {
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
    /// Free-form media id, written as a TXXX frame with description "media_id".
    pub media_id: String,
}

fn syncsafe(n: usize) -> [u8; 4] {
    assert!(n < 1 << 28, "ID3 size {n} does not fit in 28 bits");
    [(n >> 21) as u8 & 0x7F, (n >> 14) as u8 & 0x7F, (n >> 7) as u8 & 0x7F, n as u8 & 0x7F]
}

fn text_frame(out: &mut Vec<u8>, id: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&syncsafe(body.len() + 1));
    out.extend_from_slice(&[0, 0]);
    out.push(0x03); // UTF-8
    out.extend_from_slice(body);
}

impl NowPlayingTag {
    /// The ID3v2.4 tag bytes. Empty fields are left out; text is capped at 255 bytes per
    /// field on a character boundary.
    pub fn to_id3(&self) -> Vec<u8> {
        let mut frames = Vec::with_capacity(128);
        for (id, v) in [(b"TIT2", &self.title), (b"TPE1", &self.artist), (b"TALB", &self.album), (b"TCON", &self.genre)] {
            if !v.is_empty() {
                text_frame(&mut frames, id, cap(v, 255).as_bytes());
            }
        }
        if !self.media_id.is_empty() {
            let mut body = b"media_id\0".to_vec();
            body.extend_from_slice(cap(&self.media_id, 255).as_bytes());
            text_frame(&mut frames, b"TXXX", &body);
        }
        let mut tag = Vec::with_capacity(10 + frames.len());
        tag.extend_from_slice(b"ID3");
        tag.extend_from_slice(&[0x04, 0x00, 0x00]);
        tag.extend_from_slice(&syncsafe(frames.len()));
        tag.extend_from_slice(&frames);
        tag
    }

    /// The tag as timed-metadata transport packets on `pid` at `pts`.
    pub fn to_packets(&self, pid: Pid, pts: Pts, cc: &mut u8) -> Vec<TsPacket> {
        packetize_pes(pid, &pes_with_pts(0xBD, pts, &self.to_id3()), cc)
    }
}

fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_layout() {
        let t = NowPlayingTag { title: "Song".into(), artist: "Bänd".into(), ..Default::default() };
        let b = t.to_id3();
        assert_eq!(&b[..5], b"ID3\x04\x00");
        let size = ((b[6] as usize) << 21) | ((b[7] as usize) << 14) | ((b[8] as usize) << 7) | b[9] as usize;
        assert_eq!(size, b.len() - 10);
        assert_eq!(&b[10..14], b"TIT2");
        assert_eq!(&b[14..18], &[0, 0, 0, 5]);
        assert_eq!(&b[20..25], b"\x03Song");
        assert_eq!(&b[25..29], b"TPE1");
        assert!(b.windows("Bänd".len()).any(|w| w == "Bänd".as_bytes()));
    }

    #[test]
    fn long_fields_are_capped_on_char_boundaries() {
        let t = NowPlayingTag { title: "é".repeat(200), ..Default::default() };
        let b = t.to_id3();
        let frame_size = b[17] as usize | (b[16] as usize) << 7;
        assert_eq!(frame_size, 1 + 254);
    }

    #[test]
    fn packets_carry_pts() {
        let t = NowPlayingTag { title: "x".repeat(300), ..Default::default() };
        let mut cc = 0;
        let pkts = t.to_packets(Pid::new(0x102), Pts::new(900_000), &mut cc);
        assert_eq!(pkts.len(), 2);
        assert!(pkts[0].pusi());
        let ts = crate::ts::pes::find_timestamps(pkts[0].payload()).unwrap();
        assert_eq!(crate::ts::pes::read_timestamp(&pkts[0].payload()[ts.pts_at.unwrap()..]), Pts::new(900_000));
    }
}
