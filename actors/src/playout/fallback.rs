//! The channel's fallback loop kept in sled (`<state_dir>/fallback.sled`): the last good
//! copy of the configured fallback item. When the configured file is gone or unreadable
//! (a lost share, a bad deploy), the copy is written back beside the state and played, so
//! the fallback does not depend on the file system it came from.

use std::path::{Path, PathBuf};

const TREE: &str = "fallback";
const KEY_BYTES: &[u8] = b"bytes";
const KEY_STAMP: &[u8] = b"stamp";
const KEY_META: &[u8] = b"meta";

/// A channel's stored fallback.
#[derive(Clone)]
pub struct FallbackStore {
    tree: sled::Tree,
}

impl std::fmt::Debug for FallbackStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackStore").finish()
    }
}

/// Size and modification time: a changed file is stored again.
fn stamp(path: &Path) -> Option<Vec<u8>> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some(format!("{}:{mtime}", m.len()).into_bytes())
}

impl FallbackStore {
    /// Opens (or creates) the store in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, sled::Error> {
        std::fs::create_dir_all(state_dir).map_err(sled::Error::Io)?;
        let db = sled::open(state_dir.join("fallback.sled"))?;
        Ok(FallbackStore { tree: db.open_tree(TREE)? })
    }

    /// The fallback to play: `configured` when it is there (stored first when new or
    /// changed and `playable`), else the stored copy written back to `state_dir`.
    pub fn resolve(&self, configured: &Path, state_dir: &Path, playable: impl FnOnce(&Path) -> bool) -> Option<PathBuf> {
        match stamp(configured) {
            Some(s) if playable(configured) => {
                if self.tree.get(KEY_STAMP).ok().flatten().as_deref() != Some(&s[..]) {
                    if let Err(e) = self.store(configured, &s) {
                        tracing::warn!(fallback = %configured.display(), error = %e, "cannot keep a copy of the fallback in sled");
                    }
                }
                Some(configured.to_path_buf())
            }
            _ => self.restore(state_dir),
        }
    }

    fn store(&self, path: &Path, stamp: &[u8]) -> Result<(), String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let meta = std::fs::read(format!("{}.json", path.display())).unwrap_or_default();
        self.tree.insert(KEY_BYTES, bytes).map_err(|e| e.to_string())?;
        self.tree.insert(KEY_META, meta).map_err(|e| e.to_string())?;
        self.tree.insert(KEY_STAMP, stamp).map_err(|e| e.to_string())?;
        self.tree.flush().map_err(|e| e.to_string())?;
        tracing::info!(fallback = %path.display(), "fallback loop stored in sled");
        Ok(())
    }

    /// Writes the stored copy to `<state_dir>/fallback-stored.ts` (once) and returns it.
    fn restore(&self, state_dir: &Path) -> Option<PathBuf> {
        let bytes = self.tree.get(KEY_BYTES).ok().flatten()?;
        let path = state_dir.join("fallback-stored.ts");
        if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(bytes.len() as u64) {
            let tmp = state_dir.join("fallback-stored.ts.tmp");
            std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, &path)).ok()?;
            if let Some(meta) = self.tree.get(KEY_META).ok().flatten().filter(|m| !m.is_empty()) {
                let _ = std::fs::write(format!("{}.json", path.display()), &meta);
            }
            tracing::warn!(fallback = %path.display(), "the configured fallback is gone: playing the copy stored in sled");
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_fallback_outlives_its_file() {
        let state = tempfile::tempdir().unwrap();
        let media = tempfile::tempdir().unwrap();
        let file = media.path().join("loop.ts");
        std::fs::write(&file, vec![0x47u8; 188 * 10]).unwrap();
        std::fs::write(media.path().join("loop.ts.json"), br#"{"title":"Loop"}"#).unwrap();
        let store = FallbackStore::open(state.path()).unwrap();
        assert_eq!(store.resolve(&file, state.path(), |_| true), Some(file.clone()));
        std::fs::remove_file(&file).unwrap();
        let restored = store.resolve(&file, state.path(), |_| true).expect("the stored copy");
        assert_eq!(std::fs::read(&restored).unwrap(), vec![0x47u8; 188 * 10]);
        assert_eq!(std::fs::read_to_string(format!("{}.json", restored.display())).unwrap(), r#"{"title":"Loop"}"#);
        // An unplayable file is neither stored nor played while a good copy exists.
        std::fs::write(&file, b"garbage").unwrap();
        assert_eq!(store.resolve(&file, state.path(), |_| false), Some(restored));
        // Nothing stored, nothing there: no fallback.
        let empty = FallbackStore::open(tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(empty.resolve(&media.path().join("none.ts"), state.path(), |_| true), None);
    }
}
