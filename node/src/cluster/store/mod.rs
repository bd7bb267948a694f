//! Durable Raft storage on sled (`<data_dir>/raft`): the log ([`log::LogStore`]) and the
//! state machine with its snapshots ([`state_machine::StateMachineStore`]). sled stays
//! behind this module so it could be replaced.

// openraft's `StorageError` is what its storage traits return: large, and not ours to box.
#![allow(clippy::result_large_err)]

pub mod log;
pub mod state_machine;

use openraft::StorageIOError;
use std::path::Path;

use super::types::StorageError;

/// Opens (creating) the node's Raft database under `dir`.
pub fn open_db(dir: &Path) -> Result<sled::Db, sled::Error> {
    sled::Config::new().path(dir).mode(sled::Mode::LowSpace).open()
}

pub(crate) fn read_err(e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::read(e).into()
}

pub(crate) fn write_err(e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::write(e).into()
}
