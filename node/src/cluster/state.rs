//! The replicated state and the commands that change it. Applying a command is pure and
//! deterministic (no clock, no I/O): every node applying the same log holds the same
//! state. Times (leases) are carried in the commands, set by their proposer.

use headend_actors::playout::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::config::ChannelConfig;

/// Everything the cluster agrees on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Nodes by name: addresses, capacity, interfaces, lease.
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Channels by id.
    pub channels: BTreeMap<String, ChannelRecord>,
    /// Each channel's schedule (epoch, mux rate, items with start packets).
    pub schedules: BTreeMap<String, Schedule>,
    /// Encode jobs by id, with their placement.
    pub encode_jobs: BTreeMap<String, EncodeJob>,
    /// Main, backup and epoch per multicast group (`group:port`).
    pub groups: BTreeMap<String, GroupRoles>,
}

/// A node of the cluster as the state machine knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub raft_addr: String,
    pub admin_addr: String,
    /// `host:port` of the node's HTTP API (HLS is served there).
    #[serde(default)]
    pub http_addr: String,
    /// `host:port` of the node's RTSP server; empty: none.
    #[serde(default)]
    pub rtsp_addr: String,
    /// Relative capacity for placement.
    pub capacity: u32,
    pub interfaces: Vec<Ipv4Addr>,
    /// The node counts as alive until this wall-clock time (Unix ms); renewed by its
    /// heartbeats.
    pub lease_until_ms: u64,
}

impl NodeRecord {
    /// Whether the lease still holds at `now_ms`.
    pub fn alive_at(&self, now_ms: u64) -> bool {
        self.lease_until_ms > now_ms
    }
}

/// Video codec a channel is delivered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    Mpeg2,
    Hevc,
    /// Radio.
    None,
}

/// Audio codec a channel is delivered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    Aac,
    Mp2,
    Ac3,
}

/// Delivery protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Multicast,
    Hls,
    Rtsp,
}

/// The format a content provider requested for a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFormat {
    pub video_codec: VideoCodec,
    pub width: u32,
    pub height: u32,
    pub video_bitrate: u64,
    pub audio_codec: AudioCodec,
    pub audio_bitrate: u64,
}

/// A channel: its configuration (the same type as a `[[channels]]` table) and what was
/// requested for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub config: ChannelConfig,
    #[serde(default)]
    pub genre: String,
    #[serde(default)]
    pub format: Option<StreamFormat>,
    #[serde(default)]
    pub protocol: Protocol,
    /// Custom UI template; empty: the default page.
    #[serde(default)]
    pub template: String,
    /// Log index of the last write (set when applied).
    #[serde(default)]
    pub revision: u64,
}

impl ChannelRecord {
    /// The multicast group key (`group:port`) of the channel.
    pub fn group_key(&self) -> String {
        group_key(self.config.multicast.group, self.config.multicast.port)
    }
}

/// `group:port`, the key of [`ClusterState::groups`].
pub fn group_key(group: Ipv4Addr, port: u16) -> String {
    format!("{group}:{port}")
}

/// Who streams a multicast group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRoles {
    /// The channel sent to the group.
    pub channel: String,
    pub main: Option<String>,
    pub backup: Option<String>,
    /// Bumped each time main changes (fencing).
    pub epoch: u64,
}

/// An encode job and the node it is placed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeJob {
    pub id: String,
    pub channel: String,
    /// The media the job builds; empty: every media file of the channel.
    pub item: String,
    pub node: Option<String>,
}

/// A change of the replicated state: the Raft log's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates or replaces a channel.
    PutChannel(Box<ChannelRecord>),
    /// Deletes a channel with its schedule, group roles and encode jobs.
    DeleteChannel { id: String },
    /// Registers a node or renews its lease (and updates its addresses and capacity).
    NodeHeartbeat(NodeRecord),
    /// Forgets a node (removed from the cluster).
    RemoveNode { name: String },
    /// Sets (or with `None` clears) the roles of a multicast group.
    SetGroupRoles { group: String, roles: Option<GroupRoles> },
    /// Replaces a channel's schedule.
    PutSchedule { channel: String, schedule: Box<Schedule> },
    /// The schedule of a channel as its main streamer extended it; refused unless `node`
    /// is the main of the channel's group at `epoch` (a fenced main cannot overwrite).
    MainSchedule { channel: String, node: String, epoch: u64, schedule: Box<Schedule> },
    /// A backup took over its silent group on the data plane with `epoch`; applied when
    /// `epoch` is newer than the group's (the scheduler then names a new backup).
    TakeOver { group: String, node: String, epoch: u64 },
    /// Creates, replaces or places an encode job.
    PutEncodeJob(EncodeJob),
    RemoveEncodeJob { id: String },
    /// Several commands applied atomically in order (the scheduler's decisions).
    Batch(Vec<Command>),
}

/// What applying a command did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Applied (also the result of Raft's own entries).
    #[default]
    Done,
    /// A new record was created.
    Created,
    /// An existing record was replaced.
    Updated,
    /// The record to delete or change does not exist.
    NotFound,
    /// Refused: the writer's epoch is older than the group's (fenced).
    Stale,
}

impl ClusterState {
    /// Applies `command` written at log `index`.
    pub fn apply(&mut self, index: u64, command: &Command) -> CommandResult {
        match command {
            Command::PutChannel(record) => {
                let mut record = (**record).clone();
                record.revision = index;
                let id = record.config.id.clone();
                let key = record.group_key();
                // A channel moved to another destination leaves its old group.
                self.groups.retain(|k, g| g.channel != id || *k == key);
                match self.channels.insert(id, record) {
                    Some(_) => CommandResult::Updated,
                    None => CommandResult::Created,
                }
            }
            Command::DeleteChannel { id } => {
                if self.channels.remove(id).is_none() {
                    return CommandResult::NotFound;
                }
                self.schedules.remove(id);
                self.groups.retain(|_, g| g.channel != *id);
                self.encode_jobs.retain(|_, j| j.channel != *id);
                CommandResult::Done
            }
            Command::NodeHeartbeat(node) => match self.nodes.insert(node.name.clone(), node.clone()) {
                Some(old) => {
                    // A late heartbeat never shortens a lease.
                    if old.lease_until_ms > node.lease_until_ms {
                        if let Some(n) = self.nodes.get_mut(&node.name) {
                            n.lease_until_ms = old.lease_until_ms;
                        }
                    }
                    CommandResult::Updated
                }
                None => CommandResult::Created,
            },
            Command::RemoveNode { name } => match self.nodes.remove(name) {
                Some(_) => CommandResult::Done,
                None => CommandResult::NotFound,
            },
            Command::SetGroupRoles { group, roles } => match roles {
                // Decided on an older view than a takeover since: the newer epoch stands.
                Some(r) if self.groups.get(group).is_some_and(|g| g.epoch > r.epoch) => CommandResult::Stale,
                Some(r) if self.channels.contains_key(&r.channel) => {
                    match self.groups.insert(group.clone(), r.clone()) {
                        Some(_) => CommandResult::Updated,
                        None => CommandResult::Created,
                    }
                }
                // Decided before the channel was deleted: nothing to do.
                Some(_) => CommandResult::NotFound,
                None => match self.groups.remove(group) {
                    Some(_) => CommandResult::Done,
                    None => CommandResult::NotFound,
                },
            },
            Command::PutSchedule { channel, schedule } => {
                if !self.channels.contains_key(channel) {
                    return CommandResult::NotFound;
                }
                match self.schedules.insert(channel.clone(), (**schedule).clone()) {
                    Some(_) => CommandResult::Updated,
                    None => CommandResult::Created,
                }
            }
            Command::MainSchedule { channel, node, epoch, schedule } => {
                let Some(key) = self.channels.get(channel).map(ChannelRecord::group_key) else {
                    return CommandResult::NotFound;
                };
                match self.groups.get(&key) {
                    Some(g) if g.main.as_deref() == Some(node) && g.epoch == *epoch => {
                        self.schedules.insert(channel.clone(), (**schedule).clone());
                        CommandResult::Updated
                    }
                    _ => CommandResult::Stale,
                }
            }
            Command::TakeOver { group, node, epoch } => match self.groups.get_mut(group) {
                Some(g) if *epoch > g.epoch => {
                    if g.backup.as_deref() == Some(node) {
                        g.backup = None;
                    }
                    g.main = Some(node.clone());
                    g.epoch = *epoch;
                    CommandResult::Updated
                }
                Some(g) if *epoch == g.epoch && g.main.as_deref() == Some(node) => CommandResult::Done,
                Some(_) => CommandResult::Stale,
                None => CommandResult::NotFound,
            },
            Command::PutEncodeJob(job) => match self.encode_jobs.insert(job.id.clone(), job.clone()) {
                Some(_) => CommandResult::Updated,
                None => CommandResult::Created,
            },
            Command::RemoveEncodeJob { id } => match self.encode_jobs.remove(id) {
                Some(_) => CommandResult::Done,
                None => CommandResult::NotFound,
            },
            Command::Batch(commands) => {
                for c in commands {
                    self.apply(index, c);
                }
                CommandResult::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: &str, octet: u8) -> ChannelRecord {
        let config: ChannelConfig = serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "program_number": 1, "mux_rate": 2_000_000,
            "multicast": { "group": format!("239.255.0.{octet}"), "port": 5000 },
            "playlist": { "source": { "folder": "/srv" } },
        }))
        .unwrap();
        ChannelRecord { config, genre: String::new(), format: None, protocol: Protocol::Multicast, template: String::new(), revision: 0 }
    }

    fn roles(channel: &str, main: &str) -> GroupRoles {
        GroupRoles { channel: channel.into(), main: Some(main.into()), backup: None, epoch: 1 }
    }

    #[test]
    fn put_and_delete_channel_cleans_up_its_group_and_schedule() {
        let mut s = ClusterState::default();
        assert_eq!(s.apply(3, &Command::PutChannel(Box::new(channel("a", 1)))), CommandResult::Created);
        assert_eq!(s.channels["a"].revision, 3);
        let key = s.channels["a"].group_key();
        s.apply(4, &Command::SetGroupRoles { group: key.clone(), roles: Some(roles("a", "n1")) });
        assert!(s.groups.contains_key(&key));
        // Moving the channel drops its old group.
        assert_eq!(s.apply(5, &Command::PutChannel(Box::new(channel("a", 2)))), CommandResult::Updated);
        assert!(s.groups.is_empty());
        assert_eq!(s.apply(6, &Command::DeleteChannel { id: "a".into() }), CommandResult::Done);
        assert_eq!(s.apply(7, &Command::DeleteChannel { id: "a".into() }), CommandResult::NotFound);
    }

    #[test]
    fn roles_for_a_deleted_channel_are_ignored() {
        let mut s = ClusterState::default();
        let r = s.apply(1, &Command::SetGroupRoles { group: "239.255.0.1:5000".into(), roles: Some(roles("gone", "n1")) });
        assert_eq!(r, CommandResult::NotFound);
        assert!(s.groups.is_empty());
    }

    #[test]
    fn takeovers_and_main_schedules_are_fenced_by_epoch() {
        let mut s = ClusterState::default();
        s.apply(1, &Command::PutChannel(Box::new(channel("a", 1))));
        let key = s.channels["a"].group_key();
        let r = GroupRoles { channel: "a".into(), main: Some("n1".into()), backup: Some("n2".into()), epoch: 1 };
        s.apply(2, &Command::SetGroupRoles { group: key.clone(), roles: Some(r) });
        let schedule = |n: u64| Box::new(Schedule::new(n, headend_actors::ts::MuxRate::new(2_000_000)));
        let main_schedule = |node: &str, epoch, n| Command::MainSchedule { channel: "a".into(), node: node.into(), epoch, schedule: schedule(n) };
        assert_eq!(s.apply(3, &main_schedule("n1", 1, 10)), CommandResult::Updated);
        assert_eq!(s.apply(4, &main_schedule("n2", 1, 11)), CommandResult::Stale, "only the main writes");
        // n2 takes over: main n2, epoch 2, no backup until the scheduler names one.
        assert_eq!(s.apply(5, &Command::TakeOver { group: key.clone(), node: "n2".into(), epoch: 2 }), CommandResult::Updated);
        assert_eq!(s.groups[&key], GroupRoles { channel: "a".into(), main: Some("n2".into()), backup: None, epoch: 2 });
        assert_eq!(s.apply(6, &Command::TakeOver { group: key.clone(), node: "n2".into(), epoch: 2 }), CommandResult::Done, "idempotent");
        assert_eq!(s.apply(7, &Command::TakeOver { group: key.clone(), node: "n1".into(), epoch: 2 }), CommandResult::Stale);
        // The old main's late schedule is refused; the new main's is taken.
        assert_eq!(s.apply(8, &main_schedule("n1", 1, 12)), CommandResult::Stale);
        assert_eq!(s.apply(9, &main_schedule("n2", 2, 13)), CommandResult::Updated);
        assert_eq!(s.schedules["a"].epoch_unix_ns, 13);
    }

    #[test]
    fn a_late_heartbeat_does_not_shorten_a_lease() {
        let mut s = ClusterState::default();
        let node = |lease| NodeRecord {
            name: "n1".into(),
            raft_addr: "127.0.0.1:1".into(),
            admin_addr: "127.0.0.1:2".into(),
            http_addr: String::new(),
            rtsp_addr: String::new(),
            capacity: 1,
            interfaces: vec![],
            lease_until_ms: lease,
        };
        s.apply(1, &Command::NodeHeartbeat(node(2000)));
        s.apply(2, &Command::NodeHeartbeat(node(1000)));
        assert_eq!(s.nodes["n1"].lease_until_ms, 2000);
    }
}
