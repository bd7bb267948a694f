//! Errors of the cluster: [`ClusterError`] for a request (serializable, so a leader's
//! answer crosses a forward unchanged) and [`StartError`] for starting the node.
//! `grpc::error` maps them to gRPC codes, in one place.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

use super::tls::TlsError;

/// Why a cluster request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ClusterError {
    #[error("no leader is known (an election is under way, or fewer than a majority of voters are up); fix: retry in a moment or bring voters back")]
    NoLeader,
    #[error("the write was not committed within {ms} ms (fewer than a majority of voters reachable?); fix: retry once a majority of voters is up (ClusterStatus shows them)")]
    NotCommitted { ms: u64 },
    #[error("cannot forward to the leader {leader} at {addr}: {message}; fix: check that the leader's node.cluster.advertise_raft address is reachable from this node")]
    Forward { leader: String, addr: String, message: String },
    #[error("no member named {0:?}; fix: use a name that ClusterStatus lists")]
    UnknownMember(String),
    #[error("{name:?} is not a learner; fix: add it first with AddLearner (or it is a voter already)")]
    NotALearner { name: String },
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("this write was not accepted by the leader's Raft: {0}")]
    Rejected(String),
    #[error("the Raft node stopped: {0}; fix: see the node's log and restart it")]
    Stopped(String),
}

/// Why the cluster part of a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the Raft store {}: {source}; fix: check node.data_dir (is another headend using it?)", path.display())]
    Store {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot load the Raft state from {}: {message}; fix: restore the directory from a backup or remove it and re-join the cluster", path.display())]
    State { path: PathBuf, message: String },
    #[error("invalid Raft settings: {0}; fix: check node.cluster heartbeat_ms and election_timeout_*_ms")]
    RaftConfig(String),
    #[error("cannot listen on {addr} ({field}): {source}; fix: use a free address")]
    Bind {
        field: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot read the admin token file {}: {source}; fix: check node.cluster.admin_token_file", path.display())]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Raft node failed to start: {0}")]
    Raft(String),
}
