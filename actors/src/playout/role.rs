//! A streamer's role on its multicast group and the epoch it holds it at, shared between
//! the pacing thread (which reads it before every datagram and changes it when it takes
//! over or is fenced) and the node's reconciler (which applies the roles Raft decided).
//!
//! The epoch also travels in the stream: every PCR-only packet a streamer sends carries
//! a [`Stamp`] (epoch and node) as adaptation-field private data, so a streamer that
//! hears another source on its group knows which of the two must stop.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a node does with a channel's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends the stream.
    Main,
    /// Computes the same stream without sending it, listens to the group and takes
    /// over when the group falls silent (shadow playout).
    Backup,
}

const MAIN_BIT: u64 = 1 << 63;

/// The role and epoch of one channel on this node, readable without locks.
#[derive(Debug)]
pub struct RoleCell(AtomicU64);

impl RoleCell {
    pub fn new(role: Role, epoch: u64) -> Self {
        RoleCell(AtomicU64::new(encode(role, epoch)))
    }

    pub fn get(&self) -> (Role, u64) {
        decode(self.0.load(Ordering::Acquire))
    }

    /// Sets the role unconditionally (the pacing thread's own decisions).
    pub fn set(&self, role: Role, epoch: u64) {
        self.0.store(encode(role, epoch), Ordering::Release);
    }

    /// Applies a role decided elsewhere (Raft) unless this node already holds a newer
    /// epoch: a decision never takes the stream back in time. Returns whether it applied.
    pub fn apply(&self, role: Role, epoch: u64) -> bool {
        let new = encode(role, epoch);
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let (_, cur_epoch) = decode(cur);
                (epoch >= cur_epoch && cur != new).then_some(new)
            })
            .is_ok()
    }
}

fn encode(role: Role, epoch: u64) -> u64 {
    (epoch & !MAIN_BIT) | if role == Role::Main { MAIN_BIT } else { 0 }
}

fn decode(v: u64) -> (Role, u64) {
    (if v & MAIN_BIT != 0 { Role::Main } else { Role::Backup }, v & !MAIN_BIT)
}

/// The in-band mark of a sender: its epoch and node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub epoch: u64,
    /// A hash of the node's name ([`node_tag`]).
    pub node: u32,
}

const STAMP_MAGIC: &[u8; 4] = b"HDND";
/// Bytes of a stamp in the adaptation field's private data.
pub const STAMP_LEN: usize = 16;

impl Stamp {
    pub fn to_bytes(self) -> [u8; STAMP_LEN] {
        let mut b = [0u8; STAMP_LEN];
        b[..4].copy_from_slice(STAMP_MAGIC);
        b[4..12].copy_from_slice(&self.epoch.to_be_bytes());
        b[12..].copy_from_slice(&self.node.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Stamp> {
        if b.len() != STAMP_LEN || &b[..4] != STAMP_MAGIC {
            return None;
        }
        Some(Stamp {
            epoch: u64::from_be_bytes(b[4..12].try_into().ok()?),
            node: u32::from_be_bytes(b[12..].try_into().ok()?),
        })
    }

    /// Whether a sender with this stamp outranks `other`: the higher epoch wins, and at
    /// equal epochs (two backups that took over at once) the lower node tag.
    pub fn outranks(self, other: Stamp) -> bool {
        (self.epoch, std::cmp::Reverse(self.node)) > (other.epoch, std::cmp::Reverse(other.node))
    }
}

/// The tag of a node in stamps: FNV-1a of its name, never 0.
pub fn node_tag(name: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_cell_round_trips_and_never_goes_back_in_epoch() {
        let c = RoleCell::new(Role::Backup, 3);
        assert_eq!(c.get(), (Role::Backup, 3));
        assert!(c.apply(Role::Main, 3));
        assert_eq!(c.get(), (Role::Main, 3));
        assert!(!c.apply(Role::Main, 3), "no change");
        c.set(Role::Backup, 5);
        assert!(!c.apply(Role::Main, 4), "an older decision is ignored");
        assert_eq!(c.get(), (Role::Backup, 5));
        assert!(c.apply(Role::Main, 6));
        assert_eq!(c.get(), (Role::Main, 6));
    }

    #[test]
    fn stamps_round_trip_and_rank_by_epoch_then_lower_node() {
        let s = Stamp { epoch: 7, node: node_tag("n2") };
        assert_eq!(Stamp::from_bytes(&s.to_bytes()), Some(s));
        assert_eq!(Stamp::from_bytes(b"HDNX0000000000000"), None);
        assert!(Stamp { epoch: 8, node: 9 }.outranks(Stamp { epoch: 7, node: 1 }));
        assert!(Stamp { epoch: 7, node: 1 }.outranks(Stamp { epoch: 7, node: 9 }));
        assert!(!Stamp { epoch: 7, node: 9 }.outranks(Stamp { epoch: 7, node: 9 }));
        assert_ne!(node_tag("n1"), node_tag("n2"));
    }
}
