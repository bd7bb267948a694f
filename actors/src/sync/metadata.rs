//! Metadata of a synced item, from the media's own tags (ID3, Vorbis comments, MP4 tags:
//! all through FFmpeg's metadata API), overridden by a sidecar JSON (`<media>.json` or
//! `<stem>.json`: title, artist, album, genre, artwork, media_id). The content is probed:
//! a file FFmpeg cannot open as audio or video is refused with the reason, whatever its
//! name says. Artwork (the sidecar's `artwork` file, a sidecar image `<media>.jpg/.png`,
//! or an embedded attached picture, in that order) is written next to the media as
//! `<media>.cover.<ext>`.
//!
//! Blocking (file I/O and FFmpeg): call it from `spawn_blocking`.

use ffmpeg::codec::Id;
use ffmpeg::format::stream::Disposition;
use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A content probe that scores this low only matched the file name.
const MIN_PROBE_SCORE: i32 = 26;
/// Packets read looking for audio/video data and an attached picture.
const PACKETS_TO_CHECK: usize = 256;
/// Image extensions a sidecar image may have.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

/// What the catalog records of an item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MediaInfo {
    pub media_id: String,
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
    pub duration_ms: u64,
    /// Container as probed (e.g. `mp3`, `ogg`, `mov,mp4,m4a,3gp,3g2,mj2`).
    pub format: String,
    pub has_audio: bool,
    pub has_video: bool,
    /// `<media>.cover.<ext>` when artwork was found.
    pub artwork: Option<PathBuf>,
    /// Problems that did not refuse the item (a bad sidecar, unreadable artwork).
    pub warnings: Vec<String>,
}

/// The sidecar JSON. Every field is optional; present ones win over the tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Sidecar {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
    /// A file name next to the media.
    pub artwork: Option<String>,
    pub media_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{path}: refused, not playable audio or video: {reason}")]
    NotMedia { path: PathBuf, reason: String },
}

fn init_ffmpeg() -> Result<(), ffmpeg::Error> {
    static INIT: OnceLock<Result<(), ffmpeg::Error>> = OnceLock::new();
    *INIT.get_or_init(|| {
        ffmpeg::init()?;
        ffmpeg::log::set_level(ffmpeg::log::Level::Error);
        Ok(())
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `<media>.<ext>` then `<stem>.<ext>` (e.g. `song.mp3.json`, `song.json`).
pub fn sidecar_candidates(media: &Path, ext: &str) -> [PathBuf; 2] {
    [with_suffix(media, &format!(".{ext}")), media.with_extension(ext)]
}

/// Where an item's artwork goes.
pub fn cover_path(media: &Path, ext: &str) -> PathBuf {
    with_suffix(media, &format!(".cover.{ext}"))
}

/// Reads an item's metadata and writes its artwork next to it.
pub fn read_media_info(path: &Path) -> Result<MediaInfo, MetadataError> {
    read_media_info_as(path, path)
}

/// [`read_media_info`] of the media that will be at `path`, whose bytes are in `content`
/// for now (a download not yet under its name). The content is probed by what it holds
/// alone; sidecars and artwork are those of `path`.
pub fn read_media_info_as(content: &Path, path: &Path) -> Result<MediaInfo, MetadataError> {
    let refuse = |reason: String| MetadataError::NotMedia { path: path.into(), reason };
    init_ffmpeg().map_err(|e| refuse(format!("FFmpeg failed to initialise: {e}")))?;
    let (mut ictx, sniffed) = open(content).map_err(|e| refuse(format!("FFmpeg cannot open it: {e}")))?;
    let format = ictx.format().name().to_string();
    if !sniffed && ictx.probe_score() < MIN_PROBE_SCORE {
        return Err(refuse(format!("the content is not recognised (format {format:?} guessed from the file name only)")));
    }
    if format == "image2" || format.ends_with("_pipe") {
        return Err(refuse(format!("it is a still image ({format})")));
    }
    let mut info = MediaInfo { format, ..Default::default() };
    let mut pic_streams = Vec::new();
    let mut media_streams = Vec::new();
    for s in ictx.streams() {
        let medium = s.parameters().medium();
        if s.disposition().contains(Disposition::ATTACHED_PIC) {
            pic_streams.push((s.index(), s.parameters().id()));
        } else if matches!(medium, Type::Audio | Type::Video) {
            info.has_audio |= medium == Type::Audio;
            info.has_video |= medium == Type::Video;
            media_streams.push(s.index());
        }
    }
    if media_streams.is_empty() {
        return Err(refuse("no audio or video stream".into()));
    }
    // Tags: the container's, then the streams' (Ogg keeps Vorbis comments per stream).
    let mut tags: Vec<(String, String)> = ictx.metadata().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for s in ictx.streams().filter(|s| media_streams.contains(&s.index())) {
        tags.extend(s.metadata().iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    let tag = |names: &[&str]| -> String {
        names
            .iter()
            .find_map(|n| tags.iter().find(|(k, v)| k.eq_ignore_ascii_case(n) && !v.trim().is_empty()))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    info.title = tag(&["title"]);
    info.artist = tag(&["artist", "album_artist", "performer"]);
    info.album = tag(&["album"]);
    info.genre = tag(&["genre"]);
    info.duration_ms = duration_ms(&ictx);

    // Demux a little: the content must carry audio/video data; pick up an attached picture.
    let mut embedded: Option<(Vec<u8>, &str)> = None;
    let mut media_packets = 0usize;
    for (stream, packet) in ictx.packets().take(PACKETS_TO_CHECK) {
        if let Some((_, id)) = pic_streams.iter().find(|(i, _)| *i == stream.index()) {
            if embedded.is_none() {
                if let (Some(data), Some(ext)) = (packet.data(), image_ext(*id)) {
                    embedded = Some((data.to_vec(), ext));
                }
            }
        } else if media_streams.contains(&stream.index()) && packet.size() > 0 {
            media_packets += 1;
        }
        if media_packets > 0 && (embedded.is_some() || pic_streams.is_empty()) {
            break;
        }
    }
    if media_packets == 0 {
        return Err(refuse("no audio or video data could be read".into()));
    }

    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let sidecar = read_sidecar(path, &mut info.warnings);
    let pick = |side: &Option<String>, tag: String| side.clone().filter(|s| !s.trim().is_empty()).unwrap_or(tag);
    info.title = pick(&sidecar.title, std::mem::take(&mut info.title));
    if info.title.is_empty() {
        info.title = stem.clone();
    }
    info.artist = pick(&sidecar.artist, std::mem::take(&mut info.artist));
    info.album = pick(&sidecar.album, std::mem::take(&mut info.album));
    info.genre = pick(&sidecar.genre, std::mem::take(&mut info.genre));
    info.media_id = pick(&sidecar.media_id, stem);
    info.artwork = artwork(path, &sidecar, embedded, &mut info.warnings);
    Ok(info)
}

/// Opens `path` for its tags and streams, saying whether its content's signature chose
/// the demuxer (see `sniff`; otherwise FFmpeg probed it). Demuxers read the tags, the
/// streams and, for most formats, the duration from the file's header; the stream-info
/// pass, which opens decoders and decodes frames, runs only when the header leaves a
/// stream's codec or the duration unknown (a CBR MP3 without an Info frame, MPEG-TS, raw
/// streams).
///
/// ffmpeg-next's `format::input` always probes and runs the stream-info pass, hence the
/// FFI calls.
#[allow(unsafe_code)]
fn open(path: &Path) -> Result<(ffmpeg::format::context::Input, bool), ffmpeg::Error> {
    use ffmpeg::ffi;
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| ffmpeg::Error::InvalidData)?;
    let signature = super::sniff::demuxer(path);
    // SAFETY: av_find_input_format gets a NUL-terminated name and returns a static
    // demuxer or null; avformat_open_input gets a null context pointer to fill, that
    // demuxer (or null: probe) and a NUL-terminated path; on success the context is owned
    // by `Input`, which closes it when dropped.
    unsafe {
        let sniffed = signature.map_or(std::ptr::null(), |name| ffi::av_find_input_format(name.as_ptr()));
        let mut ps = std::ptr::null_mut();
        let mut r = ffi::avformat_open_input(&mut ps, c_path.as_ptr(), sniffed as _, std::ptr::null_mut());
        let forced = r == 0 && !sniffed.is_null();
        if r != 0 && !sniffed.is_null() {
            // The demuxer the signature named refused the file: let FFmpeg probe it.
            ps = std::ptr::null_mut();
            r = ffi::avformat_open_input(&mut ps, c_path.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut());
        }
        if r != 0 {
            return Err(ffmpeg::Error::from(r));
        }
        let mut ictx = ffmpeg::format::context::Input::wrap(ps);
        let known = |s: &ffmpeg::format::stream::Stream| s.parameters().medium() != Type::Unknown && s.parameters().id() != Id::None;
        let settled = ictx.nb_streams() > 0 && ictx.streams().all(|s| known(&s)) && duration_ms(&ictx) > 0;
        if !settled {
            let r = ffi::avformat_find_stream_info(ictx.as_mut_ptr(), std::ptr::null_mut());
            if r < 0 {
                return Err(ffmpeg::Error::from(r));
            }
        }
        Ok((ictx, forced))
    }
}

fn duration_ms(ictx: &ffmpeg::format::context::Input) -> u64 {
    let d = ictx.duration();
    if d > 0 {
        return (d as u64) / 1000;
    }
    ictx.streams().filter(|s| s.duration() > 0).map(|s| (s.duration() as f64 * f64::from(s.time_base()) * 1000.0) as u64).max().unwrap_or(0)
}

fn image_ext(id: Id) -> Option<&'static str> {
    match id {
        Id::MJPEG => Some("jpg"),
        Id::PNG => Some("png"),
        Id::BMP => Some("bmp"),
        Id::GIF => Some("gif"),
        Id::WEBP => Some("webp"),
        _ => None,
    }
}

/// The sidecar JSON of `media` (`<media>.json`, else `<stem>.json`); all fields empty
/// when there is none, with a warning when one exists but does not parse.
pub fn read_sidecar(media: &Path, warnings: &mut Vec<String>) -> Sidecar {
    for c in sidecar_candidates(media, "json") {
        let Ok(text) = std::fs::read_to_string(&c) else { continue };
        match serde_json::from_str::<Sidecar>(&text) {
            Ok(s) => return s,
            Err(e) => warnings.push(format!("sidecar {} ignored: {e}", c.display())),
        }
    }
    Sidecar::default()
}

/// Sidecar `artwork` file, then a sidecar image, then the embedded picture.
fn artwork(media: &Path, sidecar: &Sidecar, embedded: Option<(Vec<u8>, &str)>, warnings: &mut Vec<String>) -> Option<PathBuf> {
    let dir = media.parent().unwrap_or(Path::new("."));
    let ext_of = |p: &Path| p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    let mut files = Vec::new();
    if let Some(name) = &sidecar.artwork {
        // Only a plain file name next to the media: nothing else is read.
        let plain = Path::new(name).components().count() == 1 && !name.contains(['/', '\\']) && name != ".." && name != ".";
        if plain {
            files.push(dir.join(name));
        } else {
            warnings.push(format!("sidecar artwork {name:?} ignored: give a file name next to the media"));
        }
    }
    for ext in IMAGE_EXTENSIONS {
        files.extend(sidecar_candidates(media, ext));
    }
    for f in files {
        let Some(ext) = ext_of(&f).filter(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) else { continue };
        if let Ok(bytes) = std::fs::read(&f) {
            let ext = if ext == "jpeg" { "jpg".to_string() } else { ext };
            return write_cover(media, &ext, &bytes, warnings);
        }
    }
    let (bytes, ext) = embedded?;
    write_cover(media, ext, &bytes, warnings)
}

/// Writes the cover beside the media: temporary file, rename.
fn write_cover(media: &Path, ext: &str, bytes: &[u8], warnings: &mut Vec<String>) -> Option<PathBuf> {
    let target = cover_path(media, ext);
    let temp = super::transfer::temp_path(&target);
    let result = std::fs::write(&temp, bytes).and_then(|_| std::fs::rename(&temp, &target));
    match result {
        Ok(()) => Some(target),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            warnings.push(format!("artwork {} not written: {e}", target.display()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn ffmpeg(args: &[&str], out: &Path) {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .arg(out)
            .status()
            .expect("ffmpeg CLI (deploy/install-deps.sh installs it)");
        assert!(status.success(), "ffmpeg {args:?}");
    }

    const SINE: [&str; 4] = ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"];

    #[test]
    fn tags_come_through_for_id3_vorbis_and_mp4() {
        let dir = tempfile::tempdir().unwrap();
        for (name, codec) in [("a.mp3", "libmp3lame"), ("b.ogg", "libvorbis"), ("c.m4a", "aac"), ("d.flac", "flac")] {
            let out = dir.path().join(name);
            let mut args = SINE.to_vec();
            args.extend([
                "-c:a",
                codec,
                "-metadata",
                "title=Song",
                "-metadata",
                "artist=Band",
                "-metadata",
                "album=LP",
                "-metadata",
                "genre=Rock",
            ]);
            ffmpeg(&args, &out);
            let info = read_media_info(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (info.title.as_str(), info.artist.as_str(), info.album.as_str(), info.genre.as_str()),
                ("Song", "Band", "LP", "Rock"),
                "{name}"
            );
            assert!((900..1200).contains(&info.duration_ms), "{name}: {}", info.duration_ms);
            assert!(info.has_audio && !info.has_video && info.artwork.is_none(), "{name}: {info:?}");
            assert_eq!(info.media_id, name.split('.').next().unwrap());
        }
    }

    /// Files whose header leaves the duration or the streams open go through FFmpeg's
    /// stream-info pass: a CBR MP3 without an Info frame, MPEG-TS; WAV says it all.
    #[test]
    fn duration_is_found_when_the_header_does_not_say() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &[&str]); 3] = [
            ("noinfo.mp3", &["-c:a", "libmp3lame", "-b:a", "128k", "-write_xing", "0"]),
            ("audio.ts", &["-c:a", "mp2", "-b:a", "192k"]),
            ("plain.wav", &["-c:a", "pcm_s16le"]),
        ];
        for (name, codec) in cases {
            let out = dir.path().join(name);
            let mut args = SINE.to_vec();
            args.extend(codec);
            ffmpeg(&args, &out);
            let info = read_media_info(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!((850..1250).contains(&info.duration_ms), "{name}: {} ms", info.duration_ms);
            assert!(info.has_audio, "{name}: {info:?}");
        }
    }

    #[test]
    fn sidecar_wins_and_artwork_is_extracted_or_copied() {
        let dir = tempfile::tempdir().unwrap();
        let pic = dir.path().join("pic.png");
        ffmpeg(&["-f", "lavfi", "-i", "color=red:s=16x16", "-frames:v", "1"], &pic);
        let song = dir.path().join("song.mp3");
        let mut args = SINE.to_vec();
        args.extend(["-i", pic.to_str().unwrap(), "-map", "0", "-map", "1", "-c:a", "libmp3lame", "-c:v", "png"]);
        args.extend([
            "-disposition:v",
            "attached_pic",
            "-id3v2_version",
            "3",
            "-metadata",
            "title=Tagged",
            "-metadata",
            "artist=Tag Artist",
        ]);
        ffmpeg(&args, &song);
        let info = read_media_info(&song).unwrap();
        assert_eq!(info.title, "Tagged");
        let cover = info.artwork.clone().expect("embedded picture");
        assert_eq!(cover, dir.path().join("song.mp3.cover.png"));
        assert!(std::fs::read(&cover).unwrap().starts_with(b"\x89PNG"));
        // A sidecar JSON and a sidecar image win.
        std::fs::write(dir.path().join("song.mp3.json"), r#"{"title":"From Sidecar","media_id":"m-1","genre":"Jazz"}"#).unwrap();
        std::fs::write(dir.path().join("song.jpg"), b"\xff\xd8\xff not really a jpeg").unwrap();
        let info = read_media_info(&song).unwrap();
        assert_eq!(
            (info.title.as_str(), info.artist.as_str(), info.genre.as_str(), info.media_id.as_str()),
            ("From Sidecar", "Tag Artist", "Jazz", "m-1")
        );
        assert_eq!(info.artwork, Some(dir.path().join("song.mp3.cover.jpg")));
        // A sidecar naming a path outside the folder is ignored with a warning.
        std::fs::write(dir.path().join("song.mp3.json"), r#"{"artwork":"../../etc/passwd"}"#).unwrap();
        let info = read_media_info(&song).unwrap();
        assert!(info.warnings.iter().any(|w| w.contains("../../etc/passwd")), "{:?}", info.warnings);
        // A broken sidecar is reported, the tags still apply.
        std::fs::write(dir.path().join("song.mp3.json"), "{not json").unwrap();
        let info = read_media_info(&song).unwrap();
        assert_eq!(info.title, "Tagged");
        assert!(info.warnings.iter().any(|w| w.contains("song.mp3.json")), "{:?}", info.warnings);
    }

    #[test]
    fn content_is_probed_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake.mp3");
        std::fs::write(&fake, "this is a text file pretending to be an mp3\n".repeat(100)).unwrap();
        let e = read_media_info(&fake).unwrap_err().to_string();
        assert!(e.contains("fake.mp3") && e.contains("refused"), "{e}");
        let image = dir.path().join("still.mp4");
        ffmpeg(&["-f", "lavfi", "-i", "color=blue:s=16x16", "-frames:v", "1", "-f", "image2", "-c:v", "png"], &image);
        let e = read_media_info(&image).unwrap_err().to_string();
        assert!(e.contains("still image"), "{e}");
        // An mp3 named .ogg is still read (by its content).
        let song = dir.path().join("song.ogg");
        let mut args = SINE.to_vec();
        args.extend(["-c:a", "libmp3lame", "-f", "mp3", "-metadata", "title=Disguised"]);
        ffmpeg(&args, &song);
        let info = read_media_info(&song).unwrap();
        assert_eq!((info.format.as_str(), info.title.as_str()), ("mp3", "Disguised"));
        let empty = dir.path().join("empty.mp3");
        std::fs::write(&empty, b"").unwrap();
        assert!(read_media_info(&empty).is_err());
    }
}
