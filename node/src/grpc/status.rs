//! `ClusterStatus`: members, leader, term, log positions, replication lag (the leader's
//! view; a follower reports its own positions) and roles per group.

use headend_proto::admin as pb;
use openraft::ServerState;

use crate::cluster::node::unix_ms;
use crate::cluster::ClusterHandle;

/// The status as this node sees it.
pub fn cluster_status(cluster: &ClusterHandle) -> pb::ClusterStatusReply {
    let m = cluster.raft().metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let last_log_index = m.last_log_index.unwrap_or(0);
    let now = unix_ms();
    let leader_name = m.current_leader.and_then(|id| membership.get_node(&id)).map(|n| n.name.clone()).unwrap_or_default();
    let members = membership
        .nodes()
        .map(|(id, node)| {
            let role = if Some(*id) == m.current_leader {
                "leader"
            } else if membership.voter_ids().any(|v| v == *id) {
                "voter"
            } else {
                "learner"
            };
            let matched = m.replication.as_ref().and_then(|r| r.get(id)).and_then(|l| l.map(|l| l.index));
            let matched = if *id == cluster.id() { m.last_log_index } else { matched };
            let record = cluster.state().read(|s| s.nodes.get(&node.name).cloned());
            pb::Member {
                raft_id: *id,
                name: node.name.clone(),
                raft_addr: node.raft_addr.clone(),
                admin_addr: node.admin_addr.clone(),
                role: role.into(),
                matched_index: matched.unwrap_or(0),
                lag: matched.map_or(0, |i| last_log_index.saturating_sub(i)),
                alive: record.as_ref().is_some_and(|r| r.alive_at(now)),
                capacity: record.as_ref().map_or(0, |r| r.capacity),
                lease_until_unix_ms: record.as_ref().map_or(0, |r| r.lease_until_ms),
            }
        })
        .collect();
    let channel_groups = cluster.state().read(|s| s.channels.values().map(|c| (c.config.id.clone(), c.group_key())).collect());
    pb::ClusterStatusReply {
        node: cluster.me().name.clone(),
        leader: leader_name,
        term: m.current_term,
        last_log_index,
        last_applied: m.last_applied.map_or(0, |l| l.index),
        members,
        groups: super::admin::groups(cluster),
        channel_groups,
        state: match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        }
        .into(),
    }
}
