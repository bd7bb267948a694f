//! Config error types. Every [`ConfigIssue`] names the field path and the fix;
//! [`ConfigErrors`] adds the file name and displays one issue per line.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use super::{MUX_RATE_RANGE, SUPPORTED_VERSIONS};

/// Error of [`Config::load`](super::Config::load).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {source}; fix: check the path and its permissions", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
}

/// All problems found in one config source. Displays one `file: issue` per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// File path (or label, e.g. `<demo>`) the config came from.
    pub file: String,
    pub issues: Vec<ConfigIssue>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigIssue {
    #[error("version: missing; fix: add `version = 1` at the top of the file (this build reads config version {})", versions())]
    MissingVersion,
    #[error("version: unsupported config version {found}; fix: this build reads config version {}, convert the file or upgrade headend", versions())]
    UnsupportedVersion { found: String },
    #[error(
        "line {line}, column {column}: {}{message}; fix: correct the TOML at that position",
        prefix(field)
    )]
    Parse {
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    #[error("line {line}, column {column}: {field}: {message}; fix: remove or rename the field (see deploy/examples/headend.toml for the accepted keys)")]
    UnknownField {
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    #[error("line {line}, column {column}: {field}: {message}; fix: add the field")]
    MissingField {
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    #[error("{field}: invalid id {value:?} ({reason}); fix: use 1..=63 characters from {allowed}")]
    InvalidId {
        field: String,
        value: String,
        reason: String,
        allowed: &'static str,
    },
    #[error("{field}: must not be empty; fix: set a display name")]
    EmptyName { field: String },
    #[error("{field}: too long ({len} {unit}, max {max}); fix: shorten it")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
        unit: &'static str,
    },
    #[error("{field}: {group} is not an IPv4 multicast address; fix: use a group in 224.0.0.0/4, preferably administratively scoped such as 239.255.x.x")]
    NotMulticast { field: String, group: Ipv4Addr },
    #[error("{field}: {group} is in 224.0.0.0/24, the link-local control block; fix: use an administratively scoped group such as 239.255.x.x")]
    ReservedMulticast { field: String, group: Ipv4Addr },
    #[error("{field}: {addr} is not a unicast interface address; fix: use the IPv4 address of a local interface (0.0.0.0 = default route)")]
    InvalidUnicastAddress { field: String, addr: Ipv4Addr },
    #[error("{field}: port 0 is not allowed; fix: use a UDP port in 1..=65535")]
    InvalidPort { field: String },
    #[error("{field}: {url:?} cannot be synced from: {reason}; fix: use s3://bucket/prefix, gs://, az://, https:// or file:///absolute/path")]
    BadSyncSource { field: String, url: String, reason: String },
    #[error("{field}: {key:?} is a credential or not a store setting; fix: credentials come only from the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*); allowed options are {allowed}")]
    BadSyncOption { field: String, key: String, allowed: String },
    #[error("{field}: {value} is out of range; fix: use {range}")]
    OutOfRange { field: String, value: u64, range: &'static str },
    #[error("{field}: ttl 0 would never leave the host; fix: use 1..=255 (1 = local subnet only)")]
    ZeroTtl { field: String },
    #[error("{field}: the hitless group is the channel's own group; fix: name the second path's group (another multicast address, same port)")]
    SameHitlessGroup { field: String },
    #[error("{field}: program number 0 is reserved for the NIT; fix: use 1..=65535")]
    InvalidProgramNumber { field: String },
    #[error("{field}: mux rate {value} bit/s is out of range; fix: use {}..={} bit/s", MUX_RATE_RANGE.start(), MUX_RATE_RANGE.end())]
    MuxRateOutOfRange { field: String, value: u64 },
    #[error("{field}: mux rate {mux_rate} bit/s is too low for items peaking at {peak_item_rate} bit/s; fix: raise it to at least {required} bit/s (payload + 8 % PSI/SI/PCR overhead) or re-encode the items")]
    MuxRateTooLow {
        field: String,
        mux_rate: u64,
        peak_item_rate: u64,
        required: u64,
    },
    #[error("{field}: mux rate {mux_rate} bit/s is too low for items of this channel's [channels.encode] format, which run at {item_rate} bit/s; fix: raise mux_rate to at least {required} bit/s (items plus the channel's PSI/SI/PCR) or lower encode.video_bitrate / encode.audio_bitrate")]
    ItemRateTooHigh { field: String, mux_rate: u64, item_rate: u64, required: u64 },
    #[error("{field}: PID {pid:#06x} is reserved (0x0000..=0x001F are PSI/SI, 0x1FFF is null packets); fix: use 0x0020..=0x1FFE")]
    ReservedPid { field: String, pid: u16 },
    #[error("{field}: PID {pid:#06x} is out of range; fix: use 0x0020..=0x1FFE")]
    PidOutOfRange { field: String, pid: u16 },
    #[error("{field}: PID {pid:#06x} is also used by {other}; fix: give each PID of a channel a distinct value")]
    DuplicatePid {
        field: String,
        other: String,
        pid: u16,
    },
    #[error(
        "{field}: duplicate channel id {id:?} (also {first}); fix: give each channel a unique id"
    )]
    DuplicateChannelId {
        field: String,
        id: String,
        first: String,
    },
    #[error("{field}: duplicate channel name {name:?} (also {first}); fix: give each channel a unique name")]
    DuplicateChannelName {
        field: String,
        name: String,
        first: String,
    },
    #[error("{field}: duplicate program number {program_number} (also {first}); fix: give each channel a unique program_number")]
    DuplicateProgramNumber {
        field: String,
        program_number: u16,
        first: String,
    },
    #[error("{field}: channels {first:?} and {second:?} both send to {destination}; fix: give each channel its own multicast group:port")]
    DuplicateDestination {
        field: String,
        destination: SocketAddrV4,
        first: String,
        second: String,
    },
    #[error("channels: no channel configured; fix: add at least one [[channels]] table (see deploy/examples/headend.toml)")]
    NoChannels,
    #[error("{field}: no playlist source; fix: set `source = {{ folder = \"/path\" }}` or `source = {{ items = [\"/a.ts\"] }}`")]
    PlaylistSourceMissing { field: String },
    #[error("{field}: both `folder` and `items` are set; fix: keep exactly one of them")]
    PlaylistSourceAmbiguous { field: String },
    #[error("{field}: the items list is empty; fix: list at least one item or use `folder`")]
    EmptyPlaylist { field: String },
    #[error("{field}: {value:?} is not a host:port address; fix: use host:port such as 127.0.0.1:7001")]
    BadAddress { field: String, value: String },
    #[error("{field}: {value} is also node.cluster.raft_listen; fix: give the admin API its own port (for example raft on :7000, admin on :7001)")]
    SameListenAddress { field: String, value: String },
    #[error("{field}: empty path; fix: set a path")]
    EmptyPath { field: String },
    #[error("{field}: template {template:?} is not usable: {reason}")]
    BadTemplate { field: String, template: String, reason: String },
    #[error("{field}: [channels.encode] without [channels.render]; fix: add [channels.render] (template = \"default\") or remove [channels.encode]")]
    EncodeWithoutRender { field: String },
    #[error("{field}: no media to render; fix: set render.media to a folder of audio/video files or give the channel a [channels.sync] source")]
    RenderWithoutMedia { field: String },
    #[error("{field}: a rendered channel plays the items it encodes; fix: remove playlist.source (keep order and fallback)")]
    RenderedPlaylistSource { field: String },
    #[error("{field}: {} does not exist; fix: create it or correct the path", path.display())]
    PathNotFound { field: String, path: PathBuf },
    #[error("{field}: fallback {} does not exist; fix: create it or correct the path", path.display())]
    FallbackNotFound { field: String, path: PathBuf },
    #[error("{field}: {} is not a {expected}; fix: point it at a {expected}", path.display())]
    WrongPathKind {
        field: String,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("environment variable {var}={value:?}: {reason}")]
    InvalidEnvOverride {
        var: String,
        value: String,
        reason: String,
    },
}

fn versions() -> String {
    let list: Vec<String> = SUPPORTED_VERSIONS.iter().map(u32::to_string).collect();
    list.join(", ")
}

fn prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

impl ConfigErrors {
    pub fn new(file: impl Into<String>, issues: Vec<ConfigIssue>) -> Self {
        ConfigErrors {
            file: file.into(),
            issues,
        }
    }

    /// `Ok(())` if `issues` is empty.
    pub fn check(file: &str, issues: Vec<ConfigIssue>) -> Result<(), Self> {
        if issues.is_empty() {
            Ok(())
        } else {
            Err(Self::new(file, issues))
        }
    }

    pub fn len(&self) -> usize {
        self.issues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigIssue> {
        self.issues.iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigIssue;
    type IntoIter = std::slice::Iter<'a, ConfigIssue>;

    fn into_iter(self) -> Self::IntoIter {
        self.issues.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {issue}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
