//! Media sync from object storage into the local cache (in progress: key safety and the
//! sync plan are here; transfers, the catalog and the sync actor follow).

pub mod catalog;
pub mod keys;
pub mod plan;
pub mod transfer;
