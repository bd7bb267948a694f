//! `[node.cluster]`: this node as a member of a Raft cluster. Without the table a node
//! runs standalone, exactly as before: its channels come from the file only.

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::ConfigIssue;

/// `[node.cluster]`: identity, addresses, capacity, Raft timing and security.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Where the node-to-node (Raft) gRPC service listens.
    pub raft_listen: SocketAddr,
    /// `host:port` other nodes reach the Raft service at; default `raft_listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_raft: Option<String>,
    /// Where the admin gRPC API listens.
    pub admin_listen: SocketAddr,
    /// `host:port` clients reach the admin API at; default `admin_listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_admin: Option<String>,
    /// Raft addresses (`host:port`) of existing members to join; empty: the node starts
    /// a cluster of its own (Raft `initialize`).
    #[serde(default)]
    pub seeds: Vec<String>,
    /// Without seeds: `true` initializes a new cluster; `false` waits to be added by an
    /// operator (`AddLearner`). [true]
    #[serde(default = "yes")]
    pub bootstrap: bool,
    /// Relative capacity for placement (channels streamed and encode jobs). [10]
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Interfaces this node can send multicast on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Ipv4Addr>,
    /// Leader heartbeat interval, ms. [40]
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Election timeout range, ms. [100, 200] Each node draws its timeout once, at start.
    /// A follower stands when it has heard nothing from the leader for the leader's lease
    /// (openraft: `election_timeout_max`) plus its own timeout, checked every
    /// `1.5 x heartbeat_ms`: after the leader dies a new one is elected in about
    /// `max + (min..max)` (0.35-0.5 s at the defaults). A follower whose log is shorter than
    /// the other's is refused and waits `2 x election_timeout_max` more, so the other one
    /// wins a round later (about 0.7 s at the defaults).
    #[serde(default = "default_election_min_ms")]
    pub election_timeout_min_ms: u64,
    #[serde(default = "default_election_max_ms")]
    pub election_timeout_max_ms: u64,
    /// A node's lease, ms: a node whose lease lapses is treated as gone. [2000] The leader
    /// renews the lease of every node that answers its Raft heartbeats (within
    /// `election_timeout_max_ms`) once half of it is left, all in one Raft write; a node
    /// writes its own record only to register, when it changed, or when no leader renewed
    /// it and less than a quarter is left. A node that dies is treated as gone between about
    /// `3/8 x lease_ms` and `lease_ms + election_timeout_max_ms` after it died.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// Build a snapshot (and compact the log) every this many entries. [1000]
    #[serde(default = "default_snapshot_logs")]
    pub snapshot_logs: u64,
    /// Mutual TLS for node-to-node RPCs and the admin API (`headend certs` makes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClusterTls>,
    /// File holding the admin API bearer token (also accepted: `HEADEND_ADMIN_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
}

/// `[node.cluster.tls]`: PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTls {
    /// CA certificate every peer and admin client certificate must chain to.
    pub ca: PathBuf,
    /// This node's certificate (server and client).
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

impl ClusterConfig {
    /// The Raft address other nodes use.
    pub fn raft_addr(&self) -> String {
        self.advertise_raft.clone().unwrap_or_else(|| self.raft_listen.to_string())
    }

    /// The admin API address clients use.
    pub fn admin_addr(&self) -> String {
        self.advertise_admin.clone().unwrap_or_else(|| self.admin_listen.to_string())
    }

    /// A cluster config with the defaults, listening on the given addresses.
    pub fn new(raft_listen: SocketAddr, admin_listen: SocketAddr) -> Self {
        ClusterConfig {
            raft_listen,
            advertise_raft: None,
            admin_listen,
            advertise_admin: None,
            seeds: Vec::new(),
            bootstrap: true,
            capacity: default_capacity(),
            interfaces: Vec::new(),
            heartbeat_ms: default_heartbeat_ms(),
            election_timeout_min_ms: default_election_min_ms(),
            election_timeout_max_ms: default_election_max_ms(),
            lease_ms: default_lease_ms(),
            snapshot_logs: default_snapshot_logs(),
            tls: None,
            admin_token_file: None,
        }
    }
}

/// Problems of `[node.cluster]`, each naming the field and the fix.
pub(super) fn issues(c: &ClusterConfig, issues: &mut Vec<ConfigIssue>) {
    let range = |field: &str, value: u64, ok: bool, range: &'static str, issues: &mut Vec<ConfigIssue>| {
        if !ok {
            issues.push(ConfigIssue::OutOfRange { field: format!("node.cluster.{field}"), value, range });
        }
    };
    range("capacity", c.capacity.into(), (1..=10_000).contains(&c.capacity), "1..=10000", issues);
    range("heartbeat_ms", c.heartbeat_ms, (10..=10_000).contains(&c.heartbeat_ms), "10..=10000 ms", issues);
    range(
        "election_timeout_min_ms",
        c.election_timeout_min_ms,
        c.election_timeout_min_ms >= 2 * c.heartbeat_ms,
        "at least twice node.cluster.heartbeat_ms",
        issues,
    );
    range(
        "election_timeout_max_ms",
        c.election_timeout_max_ms,
        c.election_timeout_max_ms > c.election_timeout_min_ms,
        "more than node.cluster.election_timeout_min_ms",
        issues,
    );
    range("lease_ms", c.lease_ms, c.lease_ms >= 4 * c.heartbeat_ms.max(100), "at least 4 x max(heartbeat_ms, 100) ms", issues);
    range("snapshot_logs", c.snapshot_logs, c.snapshot_logs >= 10, "10 or more entries", issues);
    for (i, seed) in c.seeds.iter().enumerate() {
        if !host_port(seed) {
            issues.push(ConfigIssue::BadAddress {
                field: format!("node.cluster.seeds[{i}]"),
                value: seed.clone(),
            });
        }
    }
    for (field, value) in [("advertise_raft", &c.advertise_raft), ("advertise_admin", &c.advertise_admin)] {
        if let Some(v) = value.as_ref().filter(|v| !host_port(v)) {
            issues.push(ConfigIssue::BadAddress { field: format!("node.cluster.{field}"), value: v.clone() });
        }
    }
    if c.raft_listen == c.admin_listen && c.raft_listen.port() != 0 {
        issues.push(ConfigIssue::SameListenAddress { field: "node.cluster.admin_listen".into(), value: c.admin_listen.to_string() });
    }
    if let Some(tls) = &c.tls {
        for (name, path) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
            issues.extend(super::validate::non_empty_path(&format!("node.cluster.tls.{name}"), path));
        }
    }
}

/// `host:port` with a non-empty host and a non-zero port.
fn host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

fn yes() -> bool {
    true
}
fn default_capacity() -> u32 {
    10
}
fn default_heartbeat_ms() -> u64 {
    40
}
fn default_election_min_ms() -> u64 {
    100
}
fn default_election_max_ms() -> u64 {
    200
}
fn default_lease_ms() -> u64 {
    2000
}
fn default_snapshot_logs() -> u64 {
    1000
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    const BASE: &str = "version = 1\n[node]\nid = \"n1\"\n[node.cluster]\nraft_listen = \"127.0.0.1:7001\"\nadmin_listen = \"127.0.0.1:7101\"\n";

    fn parse(extra: &str) -> Result<Config, super::super::ConfigErrors> {
        Config::from_toml_str(&format!("{BASE}{extra}"), "cluster.toml", |_| None)
    }

    #[test]
    fn a_cluster_node_needs_no_channels() {
        let c = parse("").unwrap_or_else(|e| panic!("{e}"));
        let cluster = c.node.cluster.unwrap();
        assert_eq!((cluster.heartbeat_ms, cluster.election_timeout_min_ms, cluster.election_timeout_max_ms), (40, 100, 200));
        assert_eq!(cluster.raft_addr(), "127.0.0.1:7001");
    }

    #[test]
    fn bad_timings_and_seeds_name_their_fields() {
        let e = parse("heartbeat_ms = 100\nelection_timeout_min_ms = 150\nseeds = [\"nohost\"]\n").unwrap_err().to_string();
        assert!(e.contains("node.cluster.election_timeout_min_ms"), "{e}");
        assert!(e.contains("node.cluster.seeds[0]"), "{e}");
    }

    #[test]
    fn unknown_cluster_fields_are_rejected() {
        let e = parse("raft_port = 1\n").unwrap_err().to_string();
        assert!(e.contains("raft_port"), "{e}");
    }
}
