//! Media sync from object storage into the local cache: hostile keys refused (`keys`),
//! the incremental plan (`plan`), the sled catalog (`catalog`), verified atomic
//! transfers (`transfer`) retried with backoff (`retry`), sources opened from URLs
//! (`source`), listings split into media and sidecars (`items`), metadata from tags and
//! sidecars (`metadata`), one sync run (`engine`, telling the node through `report`) and
//! the per-node sync actor (`actor`).

pub mod actor;
pub mod catalog;
pub mod engine;
mod group;
mod items;
pub mod keys;
pub mod metadata;
pub mod plan;
pub mod report;
pub mod retry;
mod sniff;
pub mod source;
pub mod transfer;
