//! The leader's scheduler: pure decision logic, no I/O and no clock of its own.
//!
//! What the cluster looks like ([`SchedulerInput`]: nodes with capacity and whether their
//! lease holds, the channels with their multicast groups, the current roles, encode jobs)
//! goes in; the commands that fix it come out ([`plan`]): `SetGroupRoles`,
//! `PutEncodeJob` and `RemoveEncodeJob`, which the leader commits as one batch. The leader runs it whenever the
//! state changes and on a timer (leases lapse with time).
//!
//! Rules:
//! * a group's main and backup are on different live nodes;
//! * new roles and jobs go to the live node with the lowest load per unit of capacity
//!   (ties by name, so the result is deterministic);
//! * every rendered channel has one encode job (`render:<channel>`: build the channel's
//!   items from its media), placed like a role on the least loaded live node; the
//!   channel's main and backup copy the items from that node;
//! * healthy assignments never move: only roles on nodes whose lease lapsed (or that left)
//!   are reassigned; a lost main is replaced by its backup, and the group's epoch goes up
//!   each time main changes.

mod placement;

pub use placement::plan;

use std::collections::{BTreeMap, BTreeSet};

use crate::cluster::state::{ClusterState, EncodeJob, GroupRoles};

/// A node as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    pub capacity: u32,
    /// Its lease holds.
    pub alive: bool,
}

/// The scheduler's view of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerInput {
    pub nodes: Vec<NodeView>,
    /// `(channel id, group key)` of every channel.
    pub channels: Vec<(String, String)>,
    /// Current roles by group key.
    pub groups: BTreeMap<String, GroupRoles>,
    /// Channels whose items are rendered and encoded (they need an encode job).
    pub rendered: BTreeSet<String>,
    pub jobs: Vec<EncodeJob>,
}

/// The id of the encode job that builds a rendered channel's items.
pub fn render_job_id(channel: &str) -> String {
    format!("render:{channel}")
}

impl SchedulerInput {
    /// The view of `state` at wall-clock time `now_ms`.
    pub fn from_state(state: &ClusterState, now_ms: u64) -> Self {
        SchedulerInput {
            nodes: state
                .nodes
                .values()
                .map(|n| NodeView { name: n.name.clone(), capacity: n.capacity, alive: n.alive_at(now_ms) })
                .collect(),
            channels: state.channels.values().map(|c| (c.config.id.clone(), c.group_key())).collect(),
            groups: state.groups.clone(),
            rendered: state.channels.values().filter(|c| c.config.render.is_some()).map(|c| c.config.id.clone()).collect(),
            jobs: state.encode_jobs.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests;
