//! Validation: every problem is collected, each with its field path.
//! Field checks are `pub(super)` so env overrides reuse them.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use super::{ChannelConfig, Config, ConfigIssue, NodeConfig, MUX_RATE_RANGE, SUPPORTED_VERSIONS};

const MAX_ID_LEN: usize = 63;
const MAX_NAME_CHARS: usize = 64;
const MAX_DVB_NAME_BYTES: usize = 64;

/// All settings problems, except media path existence.
pub(super) fn collect(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    if !SUPPORTED_VERSIONS.contains(&config.version) {
        issues.push(ConfigIssue::UnsupportedVersion {
            found: config.version.to_string(),
        });
    }
    node(&config.node, &mut issues);
    // A cluster node gets its channels from the cluster.
    if config.channels.is_empty() && config.node.cluster.is_none() {
        issues.push(ConfigIssue::NoChannels);
    }
    let labels = channel_labels(&config.channels);
    for (channel, label) in config.channels.iter().zip(&labels) {
        channel_fields(channel, label, &mut issues);
    }
    uniqueness(&config.channels, &labels, &mut issues);
    issues
}

/// Missing playlist folders, items and fallbacks.
pub(super) fn collect_paths(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let labels = channel_labels(&config.channels);
    for (channel, label) in config.channels.iter().zip(&labels) {
        let playlist = &channel.playlist;
        if let Some(folder) = &playlist.source.folder {
            let field = format!("{label}.playlist.source.folder");
            issues.extend(existing(field, folder, true, false));
        }
        for (i, item) in playlist.source.items.iter().flatten().enumerate() {
            let field = format!("{label}.playlist.source.items[{i}]");
            issues.extend(existing(field, item, false, false));
        }
        if let Some(fallback) = &playlist.fallback {
            let field = format!("{label}.playlist.fallback");
            issues.extend(existing(field, fallback, false, true));
        }
    }
    issues
}

fn existing(field: String, path: &Path, dir: bool, fallback: bool) -> Option<ConfigIssue> {
    if path.as_os_str().is_empty() {
        return None; // reported by `collect`
    }
    let path_buf = path.to_path_buf();
    match std::fs::metadata(path) {
        Err(_) if fallback => Some(ConfigIssue::FallbackNotFound {
            field,
            path: path_buf,
        }),
        Err(_) => Some(ConfigIssue::PathNotFound {
            field,
            path: path_buf,
        }),
        Ok(meta) if dir && !meta.is_dir() => Some(ConfigIssue::WrongPathKind {
            field,
            path: path_buf,
            expected: "directory",
        }),
        Ok(meta) if !dir && !meta.is_file() => Some(ConfigIssue::WrongPathKind {
            field,
            path: path_buf,
            expected: "file",
        }),
        Ok(_) => None,
    }
}

fn node(node: &NodeConfig, issues: &mut Vec<ConfigIssue>) {
    super::render::node_issues(&node.encode, issues);
    super::failover::issues(&node.failover, issues);
    super::failover::recorder_issues(&node.recorder, issues);
    issues.extend(node_id("node.id", &node.id));
    if let Some(cluster) = &node.cluster {
        super::cluster::issues(cluster, issues);
    }
    issues.extend(non_empty_path("node.data_dir", &node.data_dir));
    if !(1..=64).contains(&node.sync.parallel) {
        issues.push(ConfigIssue::OutOfRange { field: "node.sync.parallel".into(), value: node.sync.parallel as u64, range: "1..=64" });
    }
    if node.sync.max_object_bytes == 0 {
        issues.push(ConfigIssue::OutOfRange { field: "node.sync.max_object_bytes".into(), value: 0, range: "a positive size in bytes" });
    }
    if node.sync.bandwidth_bytes_per_second == Some(0) {
        issues.push(ConfigIssue::OutOfRange { field: "node.sync.bandwidth_bytes_per_second".into(), value: 0, range: "a positive rate, or leave it out for no cap" });
    }
}

fn channel_sync(c: &ChannelConfig, label: &str, issues: &mut Vec<ConfigIssue>) {
    let Some(sync) = &c.sync else { return };
    let field = format!("{label}.sync.source");
    let scheme = sync.source.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if super::SYNC_SCHEMES.contains(&s.as_str()) => {
            if s == "file" && !sync.source.starts_with("file:///") {
                issues.push(ConfigIssue::BadSyncSource { field, url: sync.source.clone(), reason: "a file URL needs an absolute path".into() });
            }
        }
        Some(s) => issues.push(ConfigIssue::BadSyncSource { field, url: sync.source.clone(), reason: format!("unknown scheme {s:?}") }),
        None => issues.push(ConfigIssue::BadSyncSource { field, url: sync.source.clone(), reason: "not a URL".into() }),
    }
    let allowed = headend_actors::sync::source::ALLOWED_OPTIONS;
    for key in sync.options.keys() {
        if !allowed.contains(&key.as_str()) {
            issues.push(ConfigIssue::BadSyncOption { field: format!("{label}.sync.options.{key}"), key: key.clone(), allowed: allowed.join(", ") });
        }
    }
    if let Some(folder) = &sync.folder {
        if folder.contains('/') || headend_actors::sync::keys::CachePath::from_key(folder).is_err() {
            issues.push(ConfigIssue::BadSyncSource {
                field: format!("{label}.sync.folder"),
                url: folder.clone(),
                reason: "a folder is one plain name (no '/', '..', control characters)".into(),
            });
        }
    }
}

/// `channels["id"]` when the id is valid and unique, else `channels[index]`.
fn channel_labels(channels: &[ChannelConfig]) -> Vec<String> {
    channels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let unique = channels.iter().filter(|o| o.id == c.id).count() == 1;
            if unique && channel_id("", &c.id).is_none() {
                format!("channels[{:?}]", c.id)
            } else {
                format!("channels[{i}]")
            }
        })
        .collect()
}

fn channel_fields(c: &ChannelConfig, label: &str, issues: &mut Vec<ConfigIssue>) {
    channel_sync(c, label, issues);
    super::render::channel_issues(label, c.render.as_ref(), c.encode.as_ref(), c.sync.is_some(), c.mux_rate, issues);
    let f = |name: &str| format!("{label}.{name}");
    issues.extend(channel_id(&f("id"), &c.id));
    if c.name.trim().is_empty() {
        issues.push(ConfigIssue::EmptyName { field: f("name") });
    }
    issues.extend(too_long(
        f("name"),
        c.name.chars().count(),
        MAX_NAME_CHARS,
        "chars",
    ));
    // `service_name` defaults to `name`; a problem of the name is reported once.
    let service_name = c.service_name();
    let name_reported = service_name == c.name
        && (c.name.trim().is_empty() || c.name.chars().count() > MAX_NAME_CHARS);
    if !name_reported {
        if service_name.trim().is_empty() {
            issues.push(ConfigIssue::EmptyName {
                field: f("service_name"),
            });
        }
        issues.extend(too_long(
            f("service_name"),
            service_name.len(),
            MAX_DVB_NAME_BYTES,
            "bytes",
        ));
    }
    issues.extend(too_long(
        f("provider"),
        c.provider.len(),
        MAX_DVB_NAME_BYTES,
        "bytes",
    ));
    if c.program_number == 0 {
        issues.push(ConfigIssue::InvalidProgramNumber {
            field: f("program_number"),
        });
    }
    issues.extend(mux_rate(&f("mux_rate"), c.mux_rate));

    let m = &c.multicast;
    issues.extend(group(&f("multicast.group"), m.group));
    issues.extend(port(&f("multicast.port"), m.port));
    issues.extend(unicast(&f("multicast.interface"), m.interface));
    if let Some(source) = m.source {
        issues.extend(unicast(&f("multicast.source"), source));
    }
    if let Some(h) = m.hitless_group {
        issues.extend(group(&f("multicast.hitless_group"), h));
        if h == m.group {
            issues.push(ConfigIssue::SameHitlessGroup { field: f("multicast.hitless_group") });
        }
    }
    if m.ttl == 0 {
        issues.push(ConfigIssue::ZeroTtl {
            field: f("multicast.ttl"),
        });
    }

    pids(c, label, issues);

    let p = &c.playlist;
    match (&p.source.folder, &p.source.items) {
        (None, None) if c.render.is_some() => {}
        // A synced channel plays its cache folder.
        (None, None) if c.sync.is_some() => {}
        (Some(_), _) | (_, Some(_)) if c.render.is_some() => issues.push(ConfigIssue::RenderedPlaylistSource {
            field: f("playlist.source"),
        }),
        (None, None) => issues.push(ConfigIssue::PlaylistSourceMissing {
            field: f("playlist.source"),
        }),
        (Some(_), Some(_)) => issues.push(ConfigIssue::PlaylistSourceAmbiguous {
            field: f("playlist.source"),
        }),
        (Some(folder), None) => issues.extend(non_empty_path(&f("playlist.source.folder"), folder)),
        (None, Some(items)) if items.is_empty() => issues.push(ConfigIssue::EmptyPlaylist {
            field: f("playlist.source.items"),
        }),
        (None, Some(items)) => {
            for (i, item) in items.iter().enumerate() {
                issues.extend(non_empty_path(
                    &f(&format!("playlist.source.items[{i}]")),
                    item,
                ));
            }
        }
    }
    if let Some(fallback) = &p.fallback {
        issues.extend(non_empty_path(&f("playlist.fallback"), fallback));
    }
}

fn pids(c: &ChannelConfig, label: &str, issues: &mut Vec<ConfigIssue>) {
    let mut seen: Vec<(String, u16)> = Vec::new();
    let configured = c.pids.named().iter().map(|(n, p)| (n.to_string(), *p)).collect();
    check_pids(configured, label, &mut seen, issues);
    // Playout gives each codec family of a role its own PID: the role's PID for H.264 /
    // AAC, +0x10 for MPEG-2 video / MPEG audio, +0x20 for HEVC / AC-3. Those must be
    // free too (checked for bases that are valid themselves).
    let mut derived = Vec::new();
    for (role, base, families) in [("video", c.pids.video, ["MPEG-2 video", "HEVC"]), ("audio", c.pids.audio, ["MPEG audio", "AC-3"])] {
        if !seen.iter().any(|(n, p)| n == role && *p == base) {
            continue;
        }
        for (n, family) in families.iter().enumerate() {
            derived.push((format!("{role} (+{:#x} for {family})", 0x10 * (n + 1)), base.saturating_add(0x10 * (n as u16 + 1))));
        }
    }
    check_pids(derived, label, &mut seen, issues);
}

fn check_pids(pids: Vec<(String, u16)>, label: &str, seen: &mut Vec<(String, u16)>, issues: &mut Vec<ConfigIssue>) {
    for (name, pid) in pids {
        let field = format!("{label}.pids.{name}");
        if pid <= 0x001F || pid == 0x1FFF {
            issues.push(ConfigIssue::ReservedPid { field, pid });
        } else if pid > 0x1FFE {
            issues.push(ConfigIssue::PidOutOfRange { field, pid });
        } else if let Some((other, _)) = seen.iter().find(|(_, p)| *p == pid) {
            issues.push(ConfigIssue::DuplicatePid { field, other: format!("{label}.pids.{other}"), pid });
        } else {
            seen.push((name, pid));
        }
    }
}

fn uniqueness(channels: &[ChannelConfig], labels: &[String], issues: &mut Vec<ConfigIssue>) {
    let mut ids: HashMap<&str, &str> = HashMap::new();
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut programs: HashMap<u16, &str> = HashMap::new();
    let mut destinations: HashMap<_, &ChannelConfig> = HashMap::new();
    for (c, label) in channels.iter().zip(labels) {
        if let Some(first) = ids.insert(&c.id, label) {
            ids.insert(&c.id, first);
            issues.push(ConfigIssue::DuplicateChannelId {
                field: format!("{label}.id"),
                id: c.id.clone(),
                first: first.to_owned(),
            });
        }
        if let Some(first) = names.insert(&c.name, label) {
            names.insert(&c.name, first);
            issues.push(ConfigIssue::DuplicateChannelName {
                field: format!("{label}.name"),
                name: c.name.clone(),
                first: first.to_owned(),
            });
        }
        if let Some(first) = programs.insert(c.program_number, label) {
            programs.insert(c.program_number, first);
            issues.push(ConfigIssue::DuplicateProgramNumber {
                field: format!("{label}.program_number"),
                program_number: c.program_number,
                first: first.to_owned(),
            });
        }
        if let Some(first) = destinations.insert(c.destination(), c) {
            destinations.insert(c.destination(), first);
            issues.push(ConfigIssue::DuplicateDestination {
                field: format!("{label}.multicast"),
                destination: c.destination(),
                first: first.id.clone(),
                second: c.id.clone(),
            });
        }
    }
}

pub(super) fn node_id(field: &str, value: &str) -> Option<ConfigIssue> {
    id(field, value, "[a-z0-9-]", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
}

pub(super) fn channel_id(field: &str, value: &str) -> Option<ConfigIssue> {
    id(field, value, "[a-z0-9_-]", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
    })
}

fn id(
    field: &str,
    value: &str,
    allowed: &'static str,
    ok: fn(char) -> bool,
) -> Option<ConfigIssue> {
    let reason = if value.is_empty() {
        "empty".to_owned()
    } else if value.chars().count() > MAX_ID_LEN {
        format!("{} characters", value.chars().count())
    } else if let Some(bad) = value.chars().find(|c| !ok(*c)) {
        format!("character {bad:?} not allowed")
    } else {
        return None;
    };
    Some(ConfigIssue::InvalidId {
        field: field.to_owned(),
        value: value.to_owned(),
        reason,
        allowed,
    })
}

fn too_long(field: String, len: usize, max: usize, unit: &'static str) -> Option<ConfigIssue> {
    (len > max).then_some(ConfigIssue::TooLong {
        field,
        len,
        max,
        unit,
    })
}

pub(super) fn mux_rate(field: &str, value: u64) -> Option<ConfigIssue> {
    (!MUX_RATE_RANGE.contains(&value)).then(|| ConfigIssue::MuxRateOutOfRange {
        field: field.to_owned(),
        value,
    })
}

pub(super) fn group(field: &str, group: Ipv4Addr) -> Option<ConfigIssue> {
    let field = field.to_owned();
    if !group.is_multicast() {
        Some(ConfigIssue::NotMulticast { field, group })
    } else if group.octets()[..3] == [224, 0, 0] {
        Some(ConfigIssue::ReservedMulticast { field, group })
    } else {
        None
    }
}

pub(super) fn port(field: &str, port: u16) -> Option<ConfigIssue> {
    (port == 0).then(|| ConfigIssue::InvalidPort {
        field: field.to_owned(),
    })
}

pub(super) fn unicast(field: &str, addr: Ipv4Addr) -> Option<ConfigIssue> {
    (addr.is_multicast() || addr.is_broadcast()).then(|| ConfigIssue::InvalidUnicastAddress {
        field: field.to_owned(),
        addr,
    })
}

pub(super) fn non_empty_path(field: &str, path: &Path) -> Option<ConfigIssue> {
    path.as_os_str().is_empty().then(|| ConfigIssue::EmptyPath {
        field: field.to_owned(),
    })
}
