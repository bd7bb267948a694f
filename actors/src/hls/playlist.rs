//! The live media playlist (RFC 8216, version 3): the last `window` segments, their
//! durations, and the media sequence number of the first.

use std::collections::VecDeque;
use std::fmt::Write;

/// One segment of the playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub sequence: u64,
    pub duration_s: f64,
}

impl Segment {
    /// The segment's file name.
    pub fn file_name(&self) -> String {
        format!("{}.ts", self.sequence)
    }
}

/// A sliding live playlist.
#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    window: usize,
    segments: VecDeque<Segment>,
}

impl MediaPlaylist {
    pub fn new(window: usize) -> Self {
        MediaPlaylist { window: window.max(1), segments: VecDeque::new() }
    }

    /// Adds the newest segment; returns the one that left the window, if any.
    pub fn push(&mut self, segment: Segment) -> Option<Segment> {
        self.segments.push_back(segment);
        (self.segments.len() > self.window).then(|| self.segments.pop_front()).flatten()
    }

    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    /// The playlist text.
    pub fn render(&self) -> String {
        let target = self.segments.iter().map(|s| s.duration_s.round() as u64).max().unwrap_or(1).max(1);
        let first = self.segments.front().map_or(0, |s| s.sequence);
        let mut out = String::new();
        let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for s in &self.segments {
            let _ = write!(out, "#EXTINF:{:.3},\n{}\n", s.duration_s, s.file_name());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides_and_the_sequence_follows() {
        let mut p = MediaPlaylist::new(3);
        for n in 0..5u64 {
            let gone = p.push(Segment { sequence: n, duration_s: 2.0 + n as f64 * 0.01 });
            assert_eq!(gone.map(|s| s.sequence), n.checked_sub(3));
        }
        let text = p.render();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n"), "{text}");
        assert!(text.contains("#EXTINF:2.040,\n4.ts\n"), "{text}");
        assert_eq!(text.matches("#EXTINF").count(), 3);
        assert!(!text.contains("#EXT-X-ENDLIST"), "a live playlist has no end");
    }

    #[test]
    fn the_target_duration_is_the_longest_segment_rounded() {
        let mut p = MediaPlaylist::new(5);
        p.push(Segment { sequence: 7, duration_s: 1.9 });
        p.push(Segment { sequence: 8, duration_s: 3.6 });
        assert!(p.render().contains("#EXT-X-TARGETDURATION:4\n"));
    }
}
