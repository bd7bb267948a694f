//! The free-space floor, checked before each segment is opened.

use super::error::RecorderError;
use std::path::Path;

/// Free bytes for unprivileged users on the file system holding `dir` (statvfs).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// `Err(DiskFloor)` when `dir`'s file system has less than `floor` bytes free.
pub fn check_floor(dir: &Path, floor: u64) -> Result<(), RecorderError> {
    if floor == 0 {
        return Ok(());
    }
    let free = free_bytes(dir).map_err(RecorderError::io(dir, "read the free space (statvfs)"))?;
    if free < floor {
        return Err(RecorderError::DiskFloor { dir: dir.to_path_buf(), free, floor });
    }
    Ok(())
}
