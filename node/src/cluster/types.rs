//! The openraft type configuration: node ids, the member record Raft stores, and the
//! command/result types of the replicated state machine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Cursor;

use super::state::{Command, CommandResult};

openraft::declare_raft_types!(
    /// headend's Raft types: the state machine's [`Command`] and [`CommandResult`], members
    /// described by [`ClusterNode`], `u64` node ids (see [`raft_id`]).
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        Node = ClusterNode,
);

/// Raft node id.
pub type NodeId = u64;
/// The Raft handle of a headend node.
pub type HeadendRaft = openraft::Raft<TypeConfig>;
/// A log id of this cluster's log.
pub type LogId = openraft::LogId<NodeId>;
/// Errors of storage calls.
pub type StorageError = openraft::StorageError<NodeId>;

/// A member as Raft's membership config holds it: its name and where to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// The node's `node.id`.
    pub name: String,
    /// `host:port` of its Raft (cluster) gRPC service.
    pub raft_addr: String,
    /// `host:port` of its admin API.
    pub admin_addr: String,
}

impl fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.raft_addr)
    }
}

/// The Raft id of a node name: FNV-1a 64 of the name, so every node derives the same
/// id from a name without coordination (and 0 is never used).
pub fn raft_id(name: &str) -> NodeId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn raft_ids_are_stable_and_distinct() {
        assert_eq!(super::raft_id("n1"), super::raft_id("n1"));
        assert_ne!(super::raft_id("n1"), super::raft_id("n2"));
        assert_ne!(super::raft_id(""), 0);
    }
}
