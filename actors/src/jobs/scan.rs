//! Which media of a channel need an item: list the media folder, fingerprint each media
//! file with everything its item is made from, and compare with the items folder.
//!
//! Pure file-system reads (stat and small sidecars), no decoding: cheap enough to run
//! every few seconds. Blocking: call it from `spawn_blocking`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bump when the build (render or encode code) changes what an item looks like, so
/// every item is rebuilt once.
pub const BUILD_VERSION: u32 = 1;

/// Audio files rendered with the channel's page.
pub const AUDIO_EXTENSIONS: &[&str] = &["mp3", "m4a", "aac", "flac", "wav", "ogg", "oga", "opus", "mp2", "ac3"];
/// Video files transcoded to the channel's format.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv", "webm", "mpg", "mpeg", "avi"];

/// What kind of item a media file becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Audio + the channel's page rendered around its metadata.
    Audio,
    /// A video transcoded to the channel's format.
    Video,
}

/// One media file and the fingerprint of the item made from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFile {
    pub path: PathBuf,
    /// Path relative to the media folder, `/`-separated: stable across scans.
    pub rel: String,
    pub kind: MediaKind,
    /// Hex SHA-256 of everything the item is made from (media size and mtime, sidecar,
    /// artwork, template, format, build version).
    pub fingerprint: String,
}

impl MediaFile {
    /// The item's file name: the media's relative path made flat and safe, then the
    /// first 12 hex digits of the fingerprint, so that items sort in media order and a
    /// rebuilt item gets a new name (the old one stays playable until it is replaced).
    pub fn item_name(&self) -> String {
        format!("{}-{}.ts", flat_name(&self.rel), &self.fingerprint[..12])
    }

    /// The short job id: 16 hex digits of the fingerprint.
    pub fn job_id(&self) -> String {
        self.fingerprint[..16].to_string()
    }
}

/// `a/b c.mp3` -> `a_b_c`: ASCII letters, digits, `-` and `_` only, at most 80 chars.
fn flat_name(rel: &str) -> String {
    let stem = match rel.rsplit_once('.') {
        Some((s, ext)) if !ext.contains('/') => s,
        _ => rel,
    };
    let mut out: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(80).collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The media kind by extension, `None` for everything else (sidecars, images, temp files).
pub fn media_kind(path: &Path) -> Option<MediaKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    if AUDIO_EXTENSIONS.contains(&ext.as_str()) {
        Some(MediaKind::Audio)
    } else if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
        Some(MediaKind::Video)
    } else {
        None
    }
}

/// Every media file under `dir` (recursively, hidden names skipped) with its fingerprint,
/// sorted by relative path. `format` is the channel's encode format and template
/// fingerprint, serialised; it is part of every fingerprint. A missing folder is empty
/// (nothing synced yet).
pub fn scan(dir: &Path, format: &str) -> std::io::Result<Vec<MediaFile>> {
    let mut found: Vec<(String, PathBuf, MediaKind)> = Vec::new();
    if !dir.exists() {
        return Ok(Vec::new());
    }
    walk(dir, dir, &mut found, 0)?;
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found
        .into_iter()
        .map(|(rel, path, kind)| {
            let fingerprint = fingerprint(&rel, &path, format);
            MediaFile { path, rel, kind, fingerprint }
        })
        .collect())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf, MediaKind)>, depth: usize) -> std::io::Result<()> {
    if depth > 8 {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(root, &path, out, depth + 1)?;
        } else if ft.is_file() {
            if let Some(kind) = media_kind(&path) {
                let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                out.push((rel, path, kind));
            }
        }
    }
    Ok(())
}

/// SHA-256 over the media's path relative to the media folder (`rel`) and identity
/// (size, mtime), its sidecars and artwork (contents of the small ones, identity of
/// images), the channel format and the build version. The path keeps two files of the
/// same size and mtime (copied together, synced in one second) apart.
pub fn fingerprint(rel: &str, media: &Path, format: &str) -> String {
    let mut h = Sha256::new();
    h.update(BUILD_VERSION.to_le_bytes());
    h.update(format.as_bytes());
    h.update([0]);
    h.update(rel.as_bytes());
    h.update([0]);
    identity(&mut h, media);
    for sidecar in crate::sync::metadata::sidecar_candidates(media, "json") {
        if let Ok(bytes) = fs::read(&sidecar) {
            if bytes.len() <= 1 << 20 {
                h.update(b"sidecar");
                h.update(&bytes);
            }
        }
    }
    for ext in crate::sync::metadata::IMAGE_EXTENSIONS {
        for image in crate::sync::metadata::sidecar_candidates(media, ext) {
            h.update(b"image");
            identity(&mut h, &image);
        }
    }
    hex(&h.finalize())
}

fn identity(h: &mut Sha256, path: &Path) {
    match fs::metadata(path) {
        Ok(m) => {
            h.update(m.len().to_le_bytes());
            let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            h.update(mtime.to_le_bytes());
        }
        Err(_) => h.update([0xff]),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The items in `items_dir` (`*.ts`), by file name.
pub fn existing_items(items_dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = fs::read_dir(items_dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "ts") {
                if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
                    out.insert(n.to_string(), p.clone());
                }
            }
        }
    }
    out
}

/// Items in the folder that no current media file makes (the media was removed or
/// changed and its new item is ready): safe to delete. An item whose media changed but
/// whose replacement is not built yet is kept, so the channel keeps the old version on
/// air until the new one exists.
pub fn stale_items(media: &[MediaFile], items: &BTreeMap<String, PathBuf>) -> Vec<PathBuf> {
    let wanted: std::collections::HashSet<String> = media.iter().map(|m| m.item_name()).collect();
    let prefix_of = |name: &str| name.rsplit_once('-').map(|(p, _)| p.to_string());
    // Prefixes whose wanted item exists: older versions of those can go.
    let replaced: std::collections::HashSet<String> =
        media.iter().filter(|m| items.contains_key(&m.item_name())).map(|m| flat_name(&m.rel)).collect();
    let live_prefixes: std::collections::HashSet<String> = media.iter().map(|m| flat_name(&m.rel)).collect();
    items
        .iter()
        .filter(|(name, _)| !wanted.contains(*name))
        .filter(|(name, _)| match prefix_of(name) {
            Some(p) => replaced.contains(&p) || !live_prefixes.contains(&p),
            None => true,
        })
        .map(|(_, p)| p.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_names_are_safe_and_keep_order() {
        assert_eq!(flat_name("rock/01 Song.mp3"), "rock_01_Song");
        assert_eq!(flat_name("../../etc/passwd"), "______etc_passwd");
        assert_eq!(flat_name(".mp3"), "_");
        assert!(flat_name(&"x".repeat(500)).len() <= 80);
    }

    #[test]
    fn scan_finds_media_and_fingerprints_change_with_inputs() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("b.mp3"), b"x").unwrap();
        fs::write(dir.path().join("sub/a.flac"), b"x").unwrap();
        fs::write(dir.path().join("b.mp3.json"), br#"{"title":"B"}"#).unwrap();
        fs::write(dir.path().join("c.mp4"), b"x").unwrap();
        fs::write(dir.path().join(".hidden.mp3"), b"x").unwrap();
        fs::write(dir.path().join("cover.jpg"), b"x").unwrap();
        let found = scan(dir.path(), "fmt").unwrap();
        let rels: Vec<_> = found.iter().map(|m| (m.rel.as_str(), m.kind)).collect();
        assert_eq!(rels, [("b.mp3", MediaKind::Audio), ("c.mp4", MediaKind::Video), ("sub/a.flac", MediaKind::Audio)]);
        let b = found[0].fingerprint.clone();
        assert_eq!(scan(dir.path(), "fmt").unwrap()[0].fingerprint, b, "stable");
        assert_ne!(scan(dir.path(), "other format").unwrap()[0].fingerprint, b, "format is part of it");
        fs::write(dir.path().join("b.mp3.json"), br#"{"title":"B2"}"#).unwrap();
        assert_ne!(scan(dir.path(), "fmt").unwrap()[0].fingerprint, b, "sidecar is part of it");
        assert!(scan(&dir.path().join("missing"), "fmt").unwrap().is_empty());
        // Same size, same mtime, another name: another job.
        let twins = tempfile::tempdir().unwrap();
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for name in ["x.mp3", "y.mp3"] {
            fs::write(twins.path().join(name), b"same").unwrap();
            fs::File::options().write(true).open(twins.path().join(name)).unwrap().set_modified(t).unwrap();
        }
        let both = scan(twins.path(), "fmt").unwrap();
        assert_ne!(both[0].fingerprint, both[1].fingerprint, "the path is part of it");
    }

    #[test]
    fn stale_items_keep_the_old_version_until_the_new_one_exists() {
        let m = |rel: &str, fp: &str| MediaFile { path: rel.into(), rel: rel.into(), kind: MediaKind::Audio, fingerprint: fp.repeat(64) };
        let media = vec![m("a.mp3", "1"), m("b.mp3", "2")];
        let mut items = BTreeMap::new();
        let name = |rel: &str, fp: &str| format!("{}-{}.ts", flat_name(rel), &fp.repeat(12));
        items.insert(name("a.mp3", "0"), PathBuf::from("old-a")); // a changed, new not built yet
        items.insert(name("b.mp3", "0"), PathBuf::from("old-b")); // b changed, new built
        items.insert(name("b.mp3", "2"), PathBuf::from("new-b"));
        items.insert(name("gone.mp3", "9"), PathBuf::from("gone")); // media removed
        let mut stale = stale_items(&media, &items);
        stale.sort();
        assert_eq!(stale, [PathBuf::from("gone"), PathBuf::from("old-b")]);
    }
}
