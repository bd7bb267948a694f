//! The state machine: [`ClusterState`] in memory, its snapshots on sled (tree
//! `raft_snapshot`, fsynced). After a restart the last snapshot is loaded and openraft
//! re-applies the committed log entries after it, so nothing acknowledged is lost.
//!
//! Readers (the admin API, the scheduler, the heartbeat) use a [`StateReader`]: a read
//! lock held only to copy out what they need, and a watch of the last applied index.

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

use super::{read_err, write_err};
use crate::cluster::state::{ClusterState, CommandResult};
use crate::cluster::types::{ClusterNode, LogId, NodeId, StorageError, TypeConfig};

const META: &[u8] = b"meta";
const DATA: &[u8] = b"data";

/// The applied state: what a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership<NodeId, ClusterNode>,
    pub state: ClusterState,
}

#[derive(Debug)]
struct Shared {
    applied: RwLock<Applied>,
    /// Last applied log index, for watchers.
    changes: watch::Sender<u64>,
}

/// The state machine store handed to openraft.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
    db: sled::Db,
    snapshots: sled::Tree,
    builds: Arc<AtomicU64>,
}

/// Read access to the applied state.
#[derive(Debug, Clone)]
pub struct StateReader {
    shared: Arc<Shared>,
}

impl StateReader {
    /// Runs `f` on the state under the read lock (keep `f` short: copy out).
    pub fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        f(&self.shared.applied.read().unwrap_or_else(|p| p.into_inner()).state)
    }

    /// Index of the last applied log entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        *self.shared.changes.borrow()
    }

    /// A receiver that changes each time entries are applied.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// Waits until entries up to `index` are applied on this node, or `timeout`.
    pub async fn wait_applied(&self, index: u64, timeout: std::time::Duration) -> bool {
        let mut rx = self.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|i| *i >= index)).await.is_ok_and(|r| r.is_ok())
    }
}

impl StateMachineStore {
    /// Opens the snapshot tree of `db` and loads the last snapshot, if any.
    pub fn open(db: &sled::Db) -> Result<Self, StorageError> {
        let snapshots = db.open_tree("raft_snapshot").map_err(|e| read_err(&e))?;
        let applied = match snapshots.get(DATA).map_err(|e| read_err(&e))? {
            Some(data) => serde_json::from_slice::<Applied>(&data).map_err(|e| read_err(&e))?,
            None => Applied::default(),
        };
        let index = applied.last_applied.map_or(0, |l| l.index);
        let (changes, _) = watch::channel(index);
        Ok(StateMachineStore {
            shared: Arc::new(Shared { applied: RwLock::new(applied), changes }),
            db: db.clone(),
            snapshots,
            builds: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A reader of this state machine.
    pub fn reader(&self) -> StateReader {
        StateReader { shared: self.shared.clone() }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.shared.applied.write().unwrap_or_else(|p| p.into_inner())
    }

    async fn store_snapshot(&self, meta: &SnapshotMeta<NodeId, ClusterNode>, data: &[u8]) -> Result<(), StorageError> {
        let meta_bytes = serde_json::to_vec(meta).map_err(|e| write_err(&e))?;
        let mut batch = sled::Batch::default();
        batch.insert(META, meta_bytes);
        batch.insert(DATA, data);
        self.snapshots.apply_batch(batch).map_err(|e| write_err(&e))?;
        self.db.flush_async().await.map_err(|e| write_err(&e))?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (data, last_applied, membership) = {
            let a = self.shared.applied.read().unwrap_or_else(|p| p.into_inner());
            (serde_json::to_vec(&*a).map_err(|e| read_err(&e))?, a.last_applied, a.membership.clone())
        };
        let n = self.builds.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{n}", l.leader_id, l.index),
            None => format!("empty-{n}"),
        };
        let meta = SnapshotMeta { last_log_id: last_applied, last_membership: membership, snapshot_id };
        self.store_snapshot(&meta, &data).await?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership<NodeId, ClusterNode>), StorageError> {
        let a = self.shared.applied.read().unwrap_or_else(|p| p.into_inner());
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        let last = {
            let mut a = self.write();
            for entry in entries {
                a.last_applied = Some(entry.log_id);
                let result = match entry.payload {
                    EntryPayload::Blank => CommandResult::Done,
                    EntryPayload::Normal(command) => a.state.apply(entry.log_id.index, &command),
                    EntryPayload::Membership(m) => {
                        a.membership = StoredMembership::new(Some(entry.log_id), m);
                        CommandResult::Done
                    }
                };
                results.push(result);
            }
            a.last_applied.map_or(0, |l| l.index)
        };
        self.shared.changes.send_replace(last);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, ClusterNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let applied: Applied = serde_json::from_slice(&data)
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), &e)))?;
        self.store_snapshot(meta, &data).await?;
        let index = applied.last_applied.map_or(0, |l| l.index);
        *self.write() = applied;
        self.shared.changes.send_replace(index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let meta = self.snapshots.get(META).map_err(|e| read_err(&e))?;
        let data = self.snapshots.get(DATA).map_err(|e| read_err(&e))?;
        match (meta, data) {
            (Some(meta), Some(data)) => {
                let meta = serde_json::from_slice(&meta).map_err(|e| read_err(&e))?;
                Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(data.to_vec())) }))
            }
            _ => Ok(None),
        }
    }
}
