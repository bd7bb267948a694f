//! Writes to the cluster and how the leader carries them out: state commands through
//! the Raft log, and membership changes (add learner, promote, remove, join).

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use super::error::ClusterError;
use super::state::{Command, CommandResult};
use super::types::{raft_id, ClusterNode, HeadendRaft, NodeId};

/// A write, as a follower forwards it to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    /// A change of the replicated state.
    Command(Command),
    /// Adds a node as a learner (waits until it has caught up).
    AddLearner(ClusterNode),
    /// Makes a learner a voter.
    Promote { name: String },
    /// Removes a voter or learner, and its node record.
    Remove { name: String },
    /// A starting node asks to be a member: added as a learner, then promoted.
    Join(ClusterNode),
}

/// A committed write: its log index and what applying it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub index: u64,
    pub result: CommandResult,
}

/// The leader's answer could not be given here: the write belongs to another node.
#[derive(Debug)]
pub(crate) enum LocalError {
    /// This node is not the leader (any more).
    NotLeader,
    Failed(ClusterError),
}

type WriteResult = Result<openraft::raft::ClientWriteResponse<super::types::TypeConfig>, RaftError<NodeId, ClientWriteError<NodeId, ClusterNode>>>;

fn outcome(r: WriteResult) -> Result<Outcome, LocalError> {
    match r {
        Ok(resp) => Ok(Outcome { index: resp.log_id.index, result: resp.data }),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err(LocalError::NotLeader),
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            Err(LocalError::Failed(ClusterError::Membership(e.to_string())))
        }
        Err(RaftError::Fatal(e)) => Err(LocalError::Failed(ClusterError::Stopped(e.to_string()))),
    }
}

/// Members as the leader's committed-or-not membership config has them:
/// `(voters, all nodes)`.
fn members(raft: &HeadendRaft) -> (BTreeSet<NodeId>, BTreeMap<NodeId, ClusterNode>) {
    let m = raft.metrics().borrow().membership_config.clone();
    let voters = m.membership().voter_ids().collect();
    let nodes = m.membership().nodes().map(|(id, n)| (*id, n.clone())).collect();
    (voters, nodes)
}

fn id_of(raft: &HeadendRaft, name: &str) -> Result<NodeId, ClusterError> {
    let (_, nodes) = members(raft);
    nodes.iter().find(|(_, n)| n.name == name).map(|(id, _)| *id).ok_or_else(|| ClusterError::UnknownMember(name.into()))
}

/// Carries out `proposal` on this node, which must be the leader.
pub(crate) async fn execute(raft: &HeadendRaft, proposal: Proposal) -> Result<Outcome, LocalError> {
    match proposal {
        Proposal::Command(command) => outcome(raft.client_write(command).await),
        Proposal::AddLearner(node) => outcome(raft.add_learner(raft_id(&node.name), node, true).await),
        Proposal::Promote { name } => {
            let id = id_of(raft, &name).map_err(LocalError::Failed)?;
            let (voters, _) = members(raft);
            if voters.contains(&id) {
                return Err(LocalError::Failed(ClusterError::NotALearner { name }));
            }
            outcome(raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true).await)
        }
        Proposal::Remove { name } => {
            let id = id_of(raft, &name).map_err(LocalError::Failed)?;
            let (voters, _) = members(raft);
            let change = if voters.contains(&id) {
                ChangeMembers::RemoveVoters(BTreeSet::from([id]))
            } else {
                ChangeMembers::RemoveNodes(BTreeSet::from([id]))
            };
            // Forget the node's record first, while this node surely still leads: when the
            // node removed is the leader itself, it stops leading once the new membership
            // commits, and a write after that would wait for a leader it no longer knows.
            let forgotten = outcome(raft.client_write(Command::RemoveNode { name }).await)?;
            let changed = outcome(raft.change_membership(change, false).await)?;
            Ok(Outcome { index: changed.index, result: forgotten.result })
        }
        Proposal::Join(node) => {
            let id = raft_id(&node.name);
            let (voters, nodes) = members(raft);
            if voters.contains(&id) && nodes.get(&id) == Some(&node) {
                let index = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
                return Ok(Outcome { index, result: CommandResult::Done });
            }
            if nodes.get(&id) != Some(&node) {
                outcome(raft.add_learner(id, node, true).await)?;
            }
            if voters.contains(&id) {
                let index = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
                return Ok(Outcome { index, result: CommandResult::Done });
            }
            outcome(raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true).await)
        }
    }
}
