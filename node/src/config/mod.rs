//! Node configuration: a versioned, strict TOML file.
//!
//! * `version = 1` is required; other versions are rejected.
//! * Every table denies unknown fields.
//! * `HEADEND_*` environment variables override selected fields (see [`env`]).
//! * [`Config::validate`] collects *all* problems, each naming the file, the
//!   field path (`channels["jazz"].mux_rate`) and the fix.
//! * [`Config::validate_paths`] checks local media paths separately, so a
//!   config can be checked on another machine without the media.
//!
//! The settings structs are plain data; parsing lives in `parse.rs`, env
//! overrides in `env.rs`, validation in `validate.rs`, errors in `error.rs`.

mod cluster;
mod demo;
mod env;
mod error;
mod failover;
mod parse;
mod render;
mod sync;
mod validate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use cluster::{ClusterConfig, ClusterTls};
pub use error::{ConfigError, ConfigErrors, ConfigIssue};
pub use failover::{FailoverConfig, RecorderConfig};
pub use render::{required_mux_rate, AudioFormat, ChannelEncode, ChannelRender, EncodeNodeConfig, Loudness, VideoFormat};
pub use sync::{ChannelSync, SyncConfig, SYNC_SCHEMES};

/// Config file versions this build reads.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

/// Allowed CBR output rates in bit/s.
pub const MUX_RATE_RANGE: std::ops::RangeInclusive<u64> = 500_000..=80_000_000;

/// Share of the mux rate reserved for PSI/SI/PCR and padding overhead, in percent.
pub const MUX_OVERHEAD_PERCENT: u64 = 8;

/// The whole node configuration (`headend.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Config schema version; must be one of [`SUPPORTED_VERSIONS`].
    pub version: u32,
    #[serde(default)]
    pub node: NodeConfig,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    /// Where this config came from (file path or a label); used in error messages.
    #[serde(skip)]
    pub source_name: String,
}

/// `[node]`: settings of this headend node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// `[a-z0-9-]`, 1..=63 chars. Default: sanitized hostname, else `node-1`.
    #[serde(default = "default_node_id")]
    pub id: String,
    /// Cache, items, fallback. Default `./data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// HTTP API listen address. Default `127.0.0.1:8080`.
    #[serde(default = "default_http_listen")]
    pub http_listen: SocketAddr,
    /// RTSP server listen address (channels requested with PROTOCOL_RTSP are served by
    /// their main here); none: no RTSP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtsp_listen: Option<SocketAddr>,
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub encode: EncodeNodeConfig,
    /// `[node.failover]`: takeover timing of this node's backups.
    #[serde(default)]
    pub failover: FailoverConfig,
    /// `[node.recorder]`: recordings of the groups this node backs up.
    #[serde(default)]
    pub recorder: RecorderConfig,
    /// `[node.cluster]`: Raft membership; none = a standalone node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

/// `[[channels]]`: one CBR MPEG-TS service sent to one multicast destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// `[a-z0-9_-]`, 1..=63 chars, unique per node.
    pub id: String,
    /// Display name, non-empty, <= 64 chars, unique per node.
    pub name: String,
    /// DVB SDT service name (<= 64 bytes). `None` means "same as `name`";
    /// use [`ChannelConfig::service_name`] for the effective value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// DVB SDT provider name (<= 64 bytes).
    #[serde(default = "default_provider")]
    pub provider: String,
    /// MPEG program number, 1..=65535, unique per node.
    pub program_number: u16,
    #[serde(default = "one")]
    pub transport_stream_id: u16,
    #[serde(default = "one")]
    pub original_network_id: u16,
    /// CBR output rate in bit/s (whole transport stream).
    pub mux_rate: u64,
    #[serde(default)]
    pub service_type: ServiceType,
    pub multicast: MulticastConfig,
    #[serde(default)]
    pub pids: Pids,
    /// Required unless `render` is set.
    #[serde(default)]
    pub playlist: PlaylistConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<ChannelSync>,
    /// Render this channel's media with an HTML template into items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<ChannelRender>,
    /// Format of the items; default H.264 720p25 + AAC when `render` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encode: Option<ChannelEncode>,
}

/// `[channels.multicast]`: UDP multicast output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MulticastConfig {
    /// IPv4 multicast group, not in 224.0.0.0/24.
    pub group: Ipv4Addr,
    /// Destination UDP port, 1..=65535.
    pub port: u16,
    /// Outgoing interface address; `0.0.0.0` = default route.
    #[serde(default = "unspecified")]
    pub interface: Ipv4Addr,
    /// IP_MULTICAST_TTL, 1..=255.
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// IP_MULTICAST_LOOP.
    #[serde(default)]
    pub loopback: bool,
    /// RTP (RFC 2250, payload type 33) encapsulation.
    #[serde(default)]
    pub rtp: bool,
    /// Source address to bind (for SSM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Ipv4Addr>,
    /// Hitless mode in a cluster (SMPTE 2022-7 style): the channel's backup sends the
    /// identical stream to this second group, same port; receivers merge both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hitless_group: Option<Ipv4Addr>,
}

/// `[channels.pids]`: elementary/PSI PIDs, 0x0020..=0x1FFE, all distinct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pids {
    pub pmt: u16,
    pub pcr: u16,
    pub video: u16,
    pub audio: u16,
    /// ID3 timed metadata.
    pub metadata: u16,
}

/// `[channels.playlist]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaylistConfig {
    /// Exactly one of `folder` / `items` must be set (checked by `validate`).
    #[serde(default)]
    pub source: PlaylistSource,
    #[serde(default)]
    pub order: PlayOrder,
    /// Makes `shuffle` reproducible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_seed: Option<u64>,
    /// Played when nothing else is playable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<PathBuf>,
}

/// `source = { folder = "..." }` or `source = { items = [...] }`.
///
/// Kept as two options so that "both" and "neither" are reported by
/// `validate` with a field path; use [`PlaylistSource::kind`] to consume it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaylistSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<PathBuf>>,
}

/// The validated form of a [`PlaylistSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistSourceKind<'a> {
    Folder(&'a Path),
    Items(&'a [PathBuf]),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayOrder {
    #[default]
    Sequential,
    Shuffle,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    #[default]
    Tv,
    Radio,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Config {
    /// Reads `path`, parses it, applies `HEADEND_*` overrides from the process
    /// environment and validates (without checking media paths).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_file(path, false)
    }

    /// Like [`Config::load`], and also checks that media paths exist; every settings and
    /// path problem is reported in one go. (A TOML syntax or schema error still stops
    /// parsing: the file cannot be read further.)
    pub fn load_with_paths(path: &Path) -> Result<Config, ConfigError> {
        Self::load_file(path, true)
    }

    fn load_file(path: &Path, with_paths: bool) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let env = |name: &str| std::env::var(name).ok();
        Ok(Self::build(&text, &path.display().to_string(), env, with_paths)?)
    }

    /// Parses `toml`, applies overrides from `env` and validates (without
    /// checking media paths). `source_name` is used in error messages.
    pub fn from_toml_str(
        toml: &str,
        source_name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        Self::build(toml, source_name, env, false)
    }

    fn build(
        toml: &str,
        source_name: &str,
        env: impl Fn(&str) -> Option<String>,
        with_paths: bool,
    ) -> Result<Config, ConfigErrors> {
        let mut config = parse::parse(toml, source_name)?;
        let mut issues = env::apply_overrides(&mut config, &env);
        issues.extend(validate::collect(&config));
        if with_paths {
            issues.extend(validate::collect_paths(&config));
        }
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors::new(source_name, issues))
        }
    }

    /// Checks the settings (everything except media path existence); reports
    /// every problem found.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        ConfigErrors::check(self.source_label(), validate::collect(self))
    }

    /// Checks that playlist folders, items and fallbacks exist on this machine.
    pub fn validate_paths(&self) -> Result<(), ConfigErrors> {
        ConfigErrors::check(self.source_label(), validate::collect_paths(self))
    }

    /// The embedded demo configuration (see `demo.rs`).
    pub fn demo(data_dir: &Path) -> Config {
        demo::demo(data_dir)
    }

    /// The effective configuration as TOML (for `headend check-config`).
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// Looks a channel up by id.
    pub fn channel(&self, id: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.id == id)
    }

    fn source_label(&self) -> &str {
        if self.source_name.is_empty() {
            "<config>"
        } else {
            &self.source_name
        }
    }
}

impl ChannelConfig {
    /// Smallest mux rate (bit/s) that carries items peaking at
    /// `peak_item_rate_bps` of payload: payload + 8 % for PSI/SI/PCR overhead,
    /// rounded up. The playout engine knows item rates and does the full check
    /// (see [`ChannelConfig::check_mux_rate_for`]).
    pub const fn min_mux_rate_for(peak_item_rate_bps: u64) -> u64 {
        let total = peak_item_rate_bps as u128 * (100 + MUX_OVERHEAD_PERCENT) as u128;
        let rate = total.div_ceil(100);
        if rate > u64::MAX as u128 {
            u64::MAX
        } else {
            rate as u64
        }
    }

    /// [`ConfigIssue::MuxRateTooLow`] if this channel's `mux_rate` cannot carry
    /// items peaking at `peak_item_rate_bps`.
    pub fn check_mux_rate_for(&self, peak_item_rate_bps: u64) -> Result<(), ConfigIssue> {
        let required = Self::min_mux_rate_for(peak_item_rate_bps);
        if self.mux_rate >= required {
            return Ok(());
        }
        Err(ConfigIssue::MuxRateTooLow {
            field: format!("channels[{:?}].mux_rate", self.id),
            mux_rate: self.mux_rate,
            peak_item_rate: peak_item_rate_bps,
            required,
        })
    }

    /// Effective DVB service name (`service_name`, else `name`).
    pub fn service_name(&self) -> &str {
        self.service_name.as_deref().unwrap_or(&self.name)
    }

    /// Multicast destination `group:port`.
    pub fn destination(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.multicast.group, self.multicast.port)
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: default_node_id(),
            data_dir: default_data_dir(),
            http_listen: default_http_listen(),
            rtsp_listen: None,
            log_format: LogFormat::default(),
            sync: SyncConfig::default(),
            encode: EncodeNodeConfig::default(),
            failover: FailoverConfig::default(),
            recorder: RecorderConfig::default(),
            cluster: None,
        }
    }
}

impl Pids {
    /// `(field name, value)` pairs, in declaration order.
    pub fn named(&self) -> [(&'static str, u16); 5] {
        [
            ("pmt", self.pmt),
            ("pcr", self.pcr),
            ("video", self.video),
            ("audio", self.audio),
            ("metadata", self.metadata),
        ]
    }
}

impl Default for Pids {
    fn default() -> Self {
        Pids {
            pmt: 0x1000,
            pcr: 0x01FF,
            video: 0x0100,
            audio: 0x0101,
            metadata: 0x0102,
        }
    }
}

impl PlaylistSource {
    /// `Some` when exactly one of `folder` / `items` is set.
    pub fn kind(&self) -> Option<PlaylistSourceKind<'_>> {
        match (&self.folder, &self.items) {
            (Some(folder), None) => Some(PlaylistSourceKind::Folder(folder)),
            (None, Some(items)) => Some(PlaylistSourceKind::Items(items)),
            _ => None,
        }
    }
}

impl ServiceType {
    /// DVB `service_type` for the SDT service descriptor (EN 300 468 table 87).
    pub const fn dvb_service_type(self) -> u8 {
        match self {
            ServiceType::Tv => 0x01,
            ServiceType::Radio => 0x02,
        }
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?}; expected \"text\" or \"json\""
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// The hostname turned into a valid node id, or `node-1`.
pub fn default_node_id() -> String {
    let raw = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let host = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let id: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    if id.is_empty() || id.chars().all(|c| c == '-') {
        "node-1".to_owned()
    } else {
        id
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_provider() -> String {
    "headend".to_owned()
}

fn default_ttl() -> u8 {
    16
}

fn one() -> u16 {
    1
}

fn unspecified() -> Ipv4Addr {
    Ipv4Addr::UNSPECIFIED
}
