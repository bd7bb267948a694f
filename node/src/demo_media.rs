//! Demo media for `headend demo`: short songs as WAV files (a melody of sine notes with
//! an envelope, at a different level each, so loudness normalisation has work to do),
//! each with a sidecar JSON carrying title, artist, album and genre, the way a content
//! provider's bucket holds them. Pure computation and file writes.

use std::f64::consts::TAU;
use std::io::Write;
use std::path::Path;

/// One demo song.
#[derive(Debug, Clone, Copy)]
pub struct DemoSong {
    pub file: &'static str,
    pub title: &'static str,
    pub artist: &'static str,
    pub genre: &'static str,
    /// MIDI note numbers of the melody, one per beat.
    pub melody: &'static [u8],
    pub bpm: u32,
    /// Peak level in dBFS.
    pub level_db: f64,
    pub seconds: u32,
}

const SAMPLE_RATE: u32 = 48_000;

/// Writes `song` as 16-bit stereo 48 kHz WAV to `path` (temporary name, then rename).
pub fn write_song(song: &DemoSong, path: &Path) -> std::io::Result<()> {
    let frames = u64::from(song.seconds) * u64::from(SAMPLE_RATE);
    let beat = f64::from(SAMPLE_RATE) * 60.0 / f64::from(song.bpm);
    let amp = 10f64.powf(song.level_db / 20.0) * f64::from(i16::MAX);
    let mut pcm = Vec::with_capacity(frames as usize * 4);
    for n in 0..frames {
        let b = (n as f64 / beat) as usize;
        let note = f64::from(song.melody[b % song.melody.len()]);
        let hz = 440.0 * 2f64.powf((note - 69.0) / 12.0);
        let t_in_beat = (n as f64 - b as f64 * beat) / beat;
        // Attack 5 %, then a decay to 30 % over the beat.
        let env = if t_in_beat < 0.05 { t_in_beat / 0.05 } else { 1.0 - 0.7 * (t_in_beat - 0.05) / 0.95 };
        let t = n as f64 / f64::from(SAMPLE_RATE);
        let bass = 0.35 * (TAU * hz / 2.0 * t).sin();
        let s = (0.65 * (TAU * hz * t).sin() + bass) * env * amp;
        let l = s as i16;
        let r = (s * 0.9) as i16;
        pcm.extend_from_slice(&l.to_le_bytes());
        pcm.extend_from_slice(&r.to_le_bytes());
    }
    let tmp = path.with_extension("wav.part");
    let mut f = std::fs::File::create(&tmp)?;
    let data_len = pcm.len() as u32;
    f.write_all(b"RIFF")?;
    f.write_all(&(36 + data_len).to_le_bytes())?;
    f.write_all(b"WAVEfmt ")?;
    f.write_all(&16u32.to_le_bytes())?;
    f.write_all(&1u16.to_le_bytes())?; // PCM
    f.write_all(&2u16.to_le_bytes())?; // stereo
    f.write_all(&SAMPLE_RATE.to_le_bytes())?;
    f.write_all(&(SAMPLE_RATE * 4).to_le_bytes())?;
    f.write_all(&4u16.to_le_bytes())?;
    f.write_all(&16u16.to_le_bytes())?;
    f.write_all(b"data")?;
    f.write_all(&data_len.to_le_bytes())?;
    f.write_all(&pcm)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes the sidecar `<file>.json` next to the song.
pub fn write_sidecar(song: &DemoSong, dir: &Path, channel: &str) -> std::io::Result<()> {
    let meta = serde_json::json!({
        "media_id": format!("{channel}-{}", song.file.trim_end_matches(".wav")),
        "title": song.title, "artist": song.artist, "album": "headend demo", "genre": song.genre,
    });
    std::fs::write(dir.join(format!("{}.json", song.file)), serde_json::to_vec_pretty(&meta)?)
}

/// The demo songs of a channel.
pub fn songs_for(channel: &str) -> &'static [DemoSong] {
    const ROCK: &[DemoSong] = &[
        DemoSong { file: "01-highway.wav", title: "Highway to Bars", artist: "AC/Test", genre: "Rock", melody: &[52, 55, 57, 59, 57, 55, 52, 50], bpm: 140, level_db: -6.0, seconds: 20 },
        DemoSong { file: "02-smoke.wav", title: "Smoke on the Pattern", artist: "Deep Colour", genre: "Rock", melody: &[43, 46, 48, 43, 46, 49, 48], bpm: 112, level_db: -20.0, seconds: 20 },
        DemoSong { file: "03-sweet.wav", title: "Sweet Child o' Tone", artist: "Sines N' Roses", genre: "Rock", melody: &[62, 74, 69, 67, 79, 69, 78, 69], bpm: 124, level_db: -12.0, seconds: 20 },
    ];
    const JAZZ: &[DemoSong] = &[
        DemoSong { file: "01-blue.wav", title: "Blue in Green Bars", artist: "The Test Pattern Quartet", genre: "Jazz", melody: &[62, 65, 69, 72, 71, 67, 64, 60], bpm: 90, level_db: -14.0, seconds: 20 },
        DemoSong { file: "02-so-what.wav", title: "So What (Tone)", artist: "The Test Pattern Quartet", genre: "Jazz", melody: &[50, 57, 60, 62, 64, 62, 60, 57], bpm: 100, level_db: -8.0, seconds: 20 },
        DemoSong { file: "03-interlude.wav", title: "Radio Interlude", artist: "Audio Only Trio", genre: "Jazz", melody: &[60, 64, 67, 72, 67, 64], bpm: 80, level_db: -24.0, seconds: 20 },
    ];
    if channel.contains("jazz") { JAZZ } else { ROCK }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_and_length() {
        let dir = tempfile::tempdir().unwrap();
        let song = DemoSong { file: "a.wav", title: "A", artist: "B", genre: "C", melody: &[60], bpm: 60, level_db: -6.0, seconds: 1 };
        let p = dir.path().join("a.wav");
        write_song(&song, &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(bytes.len(), 44 + 48_000 * 4);
        let peak = bytes[44..].chunks(2).map(|c| i16::from_le_bytes([c[0], c[1]]).unsigned_abs()).max().unwrap();
        let expected = (10f64.powf(-6.0 / 20.0) * 32767.0) as u16;
        assert!(peak <= expected && peak > expected / 2, "peak {peak} vs {expected}");
    }
}
