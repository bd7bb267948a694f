//! Atomic output files: written to `<target>.tmp` beside the target, fsynced, renamed over
//! the target, then the directory fsynced. Until [`AtomicOutput::commit`] the target is
//! untouched; dropping an uncommitted output removes the temporary file.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::EncodeError;

/// A file being written atomically.
#[derive(Debug)]
pub struct AtomicOutput {
    target: PathBuf,
    tmp: Option<PathBuf>,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EncodeError {
    let path = path.to_path_buf();
    move |source| EncodeError::Io { op, path, source }
}

impl AtomicOutput {
    /// Check `target` names a file with a UTF-8 path (FFmpeg needs one) and create its
    /// temporary file, so a plain I/O error (missing directory, permission) names the path.
    pub fn create(target: &Path) -> Result<Self, EncodeError> {
        let bad_path = |reason| EncodeError::BadPath {
            path: target.to_path_buf(),
            reason,
        };
        let Some(s) = target.to_str() else {
            return Err(bad_path("not valid UTF-8; FFmpeg needs UTF-8 paths"));
        };
        if s.contains('\0') || target.file_name().is_none() {
            return Err(bad_path("must name a file"));
        }
        let mut tmp = target.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        File::create(&tmp).map_err(io("create temporary output", &tmp))?;
        Ok(AtomicOutput {
            target: target.to_path_buf(),
            tmp: Some(tmp),
        })
    }

    /// The temporary file to write.
    pub fn tmp_path(&self) -> &Path {
        self.tmp.as_deref().expect("not committed yet")
    }

    /// Fsync the temporary file, rename it over the target and fsync the directory.
    /// Returns the file's size.
    pub fn commit(mut self) -> Result<u64, EncodeError> {
        let tmp = self.tmp.clone().expect("not committed yet");
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io("fsync", &tmp))?;
        fs::rename(&tmp, &self.target).map_err(io("rename temporary output to", &self.target))?;
        self.tmp = None;
        let dir = match self.target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync directory", dir))?;
        Ok(fs::metadata(&self.target)
            .map_err(io("stat", &self.target))?
            .len())
    }

    /// Write `bytes` as the whole file and commit it.
    pub fn write_all(self, bytes: &[u8]) -> Result<u64, EncodeError> {
        fs::write(self.tmp_path(), bytes).map_err(io("write", self.tmp_path()))?;
        self.commit()
    }
}

impl Drop for AtomicOutput {
    fn drop(&mut self) {
        if let Some(p) = self.tmp.take() {
            let _ = fs::remove_file(p);
        }
    }
}
