//! Recognises the common audio containers by their first bytes, so FFmpeg can be told the
//! demuxer instead of running every one of its ~350 probes on each synced file (half the
//! cost of reading a small item's metadata). Content only, never the name: a file that
//! does not match a signature here exactly is probed by FFmpeg as before.

use std::io::Read;
use std::path::Path;

/// Bytes read from the start of a file: enough for every signature below.
const HEAD: usize = 16;

/// The FFmpeg demuxer for `path`'s content, when its signature leaves no doubt.
pub fn demuxer(path: &Path) -> Option<&'static std::ffi::CStr> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = [0u8; HEAD];
    file.read_exact(&mut head).ok()?;
    match &head {
        [b'O', b'g', b'g', b'S', 0, ..] => Some(c"ogg"),
        [b'f', b'L', b'a', b'C', ..] => Some(c"flac"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => Some(c"wav"),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some(c"mov"),
        [b'I', b'D', b'3', major, _, flags, ..] if (2..=4).contains(major) => {
            // An ID3v2 tag, then the first MPEG audio frame (Layer I-III: ADTS AAC after
            // a tag is left to FFmpeg).
            let size = syncsafe(&head[6..10])? + 10 + if flags & 0x10 != 0 { 10 } else { 0 };
            let mut frame = [0u8; 4];
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(u64::from(size))).ok()?;
            file.read_exact(&mut frame).ok()?;
            mpeg_audio_frame(&frame).then_some(c"mp3")
        }
        _ => None,
    }
}

/// An ID3v2 size: four bytes of seven bits each.
fn syncsafe(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &x| (x < 0x80).then_some((acc << 7) | u32::from(x)))
}

/// A valid MPEG audio (Layer I, II or III) frame header.
fn mpeg_audio_frame(h: &[u8; 4]) -> bool {
    let sync = h[0] == 0xFF && h[1] & 0xE0 == 0xE0;
    let version = (h[1] >> 3) & 0b11; // 01 is reserved
    let layer = (h[1] >> 1) & 0b11; // 00 is reserved (and ADTS)
    let bitrate = h[2] >> 4; // 1111 is invalid
    let rate = (h[2] >> 2) & 0b11; // 11 is reserved
    sync && version != 0b01 && layer != 0b00 && bitrate != 0b1111 && rate != 0b11
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(bytes: &[u8]) -> Option<&'static str> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no-extension");
        std::fs::write(&p, bytes).unwrap();
        demuxer(&p).map(|c| c.to_str().unwrap())
    }

    fn id3(tag_body: usize, after: &[u8]) -> Vec<u8> {
        let n = tag_body as u32;
        let size = [(n >> 21) as u8 & 0x7F, (n >> 14) as u8 & 0x7F, (n >> 7) as u8 & 0x7F, n as u8 & 0x7F];
        let mut v = vec![b'I', b'D', b'3', 4, 0, 0];
        v.extend(size);
        v.extend(vec![0u8; tag_body]);
        v.extend(after);
        v.extend([0u8; 32]);
        v
    }

    #[test]
    fn signatures_name_the_demuxer_and_anything_else_is_left_to_ffmpeg() {
        let mp3_frame = [0xFF, 0xFB, 0x90, 0x64];
        assert_eq!(sniffed(&id3(300, &mp3_frame)), Some("mp3"));
        // ADTS AAC after an ID3 tag, a bad frame, a tag size that is not syncsafe.
        assert_eq!(sniffed(&id3(300, &[0xFF, 0xF1, 0x50, 0x80])), None);
        assert_eq!(sniffed(&id3(300, b"JUNK")), None);
        let mut bad = id3(0, &mp3_frame);
        bad[6] = 0x80;
        assert_eq!(sniffed(&bad), None);
        assert_eq!(sniffed(b"OggS\0\x02rest of the page..."), Some("ogg"));
        assert_eq!(sniffed(b"fLaC\0\0\0\x22streaminfo......"), Some("flac"));
        assert_eq!(sniffed(b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0"), Some("wav"));
        assert_eq!(sniffed(b"\0\0\0\x20ftypM4A \0\0\0\0"), Some("mov"));
        // A bare MPEG stream, text, an image, too short: FFmpeg probes them.
        for other in [&mp3_frame[..], b"just some text, not media", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"Ogg"] {
            assert_eq!(sniffed(other), None, "{other:?}");
        }
    }

    #[test]
    fn real_files_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        for (name, codec, expected) in
            [("a.mp3", "libmp3lame", "mp3"), ("b.ogg", "libvorbis", "ogg"), ("c.m4a", "aac", "mov"), ("d.flac", "flac", "flac"), ("e.wav", "pcm_s16le", "wav")]
        {
            let out = dir.path().join(name);
            let status = std::process::Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", codec])
                .arg(&out)
                .status()
                .expect("ffmpeg CLI");
            assert!(status.success());
            assert_eq!(demuxer(&out).map(|c| c.to_str().unwrap()), Some(expected), "{name}");
        }
    }
}
