//! `[node.sync]` (node-wide sync limits) and `[channels.sync]` (where a channel's media
//! come from). Credentials never appear here: they come from the environment and the
//! providers' standard chains.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[node.sync]`: how this node syncs media into its cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Cache folder; default `<data_dir>/cache`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// Re-sync every this many seconds (0 = only `headend sync --once`). [300]
    pub interval_secs: u64,
    /// Transfers in parallel. [4]
    pub parallel: usize,
    /// Objects larger than this are refused. [4 GiB]
    pub max_object_bytes: u64,
    /// Free space that must remain on the cache's file system. [1 GiB]
    pub disk_floor_bytes: u64,
    /// Total bandwidth cap for downloads, bytes per second; none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_second: Option<u64>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            cache_dir: None,
            interval_secs: 300,
            parallel: 4,
            max_object_bytes: 4 << 30,
            disk_floor_bytes: 1 << 30,
            bandwidth_bytes_per_second: None,
        }
    }
}

/// `[channels.sync]`: the channel's media are `<source>/<folder>/...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSync {
    /// `s3://bucket/prefix`, `gs://...`, `az://...`, `https://...` or `file:///path`.
    pub source: String,
    /// Channel or genre folder under the source; default: the channel id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// Non-secret store settings (endpoint, region, allow_http, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Re-sync interval for this channel, seconds; default `node.sync.interval_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
}

/// URL schemes headend can sync from.
pub const SYNC_SCHEMES: [&str; 9] = ["s3", "s3a", "gs", "az", "azure", "abfs", "http", "https", "file"];
