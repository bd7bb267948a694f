//! Failover decisions on the data plane, as pure logic (events in, decisions out; no
//! sockets, no clock): the pacing thread feeds it what it computed and what it heard on
//! the group, and asks before every datagram whether to take over or to stop.
//!
//! * A **backup** computes the same stream as the main (same schedule, same packets) and
//!   matches what it hears against what it computed, so it knows the last datagram the
//!   main sent. When the group has been silent for `takeover_after`, it takes over with
//!   epoch + 1 and first re-sends the datagrams the main did not send: the receiver sees
//!   every packet once, late by the detection time, with continuity counters, PCR and
//!   PTS continuous.
//! * A **main** that hears a source whose stamp outranks its own (a higher epoch) stops
//!   at once and becomes a backup (fencing, e.g. after it was frozen and woke up).

use super::role::{Role, Stamp};
use crate::ts::TsPacket;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Datagrams of a shadow stream kept for matching and re-sending.
pub type Datagram = Vec<TsPacket>;

/// Failover settings of a channel on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverSettings {
    /// This node's tag in stamps ([`super::role::node_tag`]).
    pub node: u32,
    /// Silence on the group after which a backup takes over.
    pub takeover_after: Duration,
    /// How long a backup that never heard the main listens before it may take over
    /// (the main may still be starting).
    pub first_listen: Duration,
    /// How much of the computed stream a backup keeps to re-send after a takeover.
    pub keep: Duration,
}

impl FailoverSettings {
    pub fn new(node: u32) -> Self {
        FailoverSettings {
            node,
            takeover_after: Duration::from_millis(50),
            first_listen: Duration::from_secs(2),
            keep: Duration::from_millis(500),
        }
    }
}

/// What to do before the next datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Stay,
    /// Start sending with `epoch`; first re-send the kept datagrams after the one that
    /// starts at packet `resend_after` (none known: start at the current packet).
    TakeOver { epoch: u64, resend_after: Option<u64> },
    /// Stop sending: `by` outranks us.
    Fence { by: Stamp },
    /// Stop sending: this node is no longer main.
    StandDown,
    /// Stop sending: `source` sends this very stream and this node knows no stamp of it
    /// that it outranks, so `source` took over (e.g. while this node was cut off) and
    /// its stamp has not arrived yet.
    Yield { source: SocketAddr },
}

struct Computed {
    k: u64,
    hash: Option<u64>,
    packets: Datagram,
}

/// A channel's view of its group.
pub struct GroupWatch {
    settings: FailoverSettings,
    started_ns: u64,
    last_heard_ns: Option<u64>,
    /// The highest-ranking stamp heard from another node.
    best_foreign: Option<Stamp>,
    computed: VecDeque<Computed>,
    keep_datagrams: usize,
    heard: VecDeque<u64>,
    /// Start packet of the last datagram both computed here and heard from the group.
    matched: Option<u64>,
    /// Content hashes of the datagrams this node sent lately (as main).
    sent: VecDeque<u64>,
    /// The best stamp heard from each source.
    stamps: HashMap<SocketAddr, Stamp>,
    /// A source heard sending this node's own stream, with no stamp known at the time.
    echo: Option<SocketAddr>,
    /// Recent content heard from sources without a known stamp (a new main ahead of
    /// this one sends a datagram before this node does).
    unknown: VecDeque<(u64, SocketAddr)>,
}

impl std::fmt::Debug for GroupWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWatch")
            .field("last_heard_ns", &self.last_heard_ns)
            .field("best_foreign", &self.best_foreign)
            .field("matched", &self.matched)
            .finish()
    }
}

const HEARD_KEPT: usize = 512;
const UNKNOWN_KEPT: usize = 64;

/// Identity of a datagram's content for matching: a hash of its packets other than
/// null and adaptation-only packets (those carry stamps or nothing that identifies a
/// position). `None` for a datagram with no such packet.
pub fn content_hash(packets: &[TsPacket]) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut any = false;
    for p in packets.iter().filter(|p| !p.is_null() && p.adaptation_field_control() != 0b10) {
        p.as_bytes().hash(&mut h);
        any = true;
    }
    any.then(|| h.finish())
}

impl GroupWatch {
    /// A watch starting at `now_ns`, keeping `keep_datagrams` computed datagrams.
    pub fn new(settings: FailoverSettings, now_ns: u64, keep_datagrams: usize) -> Self {
        GroupWatch {
            settings,
            started_ns: now_ns,
            last_heard_ns: None,
            best_foreign: None,
            computed: VecDeque::with_capacity(keep_datagrams),
            keep_datagrams: keep_datagrams.max(1),
            heard: VecDeque::with_capacity(HEARD_KEPT),
            matched: None,
            sent: VecDeque::with_capacity(keep_datagrams),
            stamps: HashMap::new(),
            echo: None,
            unknown: VecDeque::with_capacity(UNKNOWN_KEPT),
        }
    }

    /// Before a main sends `packets`: whether a source without a known stamp already
    /// sent them (it is ahead of this node with the same stream: it took over).
    pub fn before_send(&mut self, packets: &[TsPacket]) {
        let Some(h) = content_hash(packets) else { return };
        if self.echo.is_none() {
            self.echo = self.unknown.iter().find(|(u, src)| *u == h && !self.stamps.contains_key(src)).map(|(_, src)| *src);
        }
    }

    /// A datagram this node sent (as main).
    pub fn sent(&mut self, packets: &[TsPacket]) {
        if let Some(h) = content_hash(packets) {
            if self.sent.len() == self.keep_datagrams {
                self.sent.pop_front();
            }
            self.sent.push_back(h);
        }
    }

    /// A datagram computed here, starting at packet `k`.
    pub fn computed(&mut self, k: u64, packets: Datagram) {
        let hash = content_hash(&packets);
        if let Some(h) = hash {
            if self.heard.contains(&h) {
                self.matched = Some(self.matched.map_or(k, |m| m.max(k)));
            }
        }
        if self.computed.len() == self.keep_datagrams {
            self.computed.pop_front();
        }
        self.computed.push_back(Computed { k, hash, packets });
    }

    /// A datagram heard on the group from another source at `now_ns`.
    pub fn heard(&mut self, now_ns: u64, from: SocketAddr, packets: &[TsPacket]) {
        self.last_heard_ns = Some(now_ns);
        for stamp in packets.iter().filter_map(|p| p.private_data()).filter_map(Stamp::from_bytes) {
            if stamp.node == self.settings.node {
                continue;
            }
            if self.best_foreign.is_none_or(|b| stamp.outranks(b)) {
                self.best_foreign = Some(stamp);
            }
            let known = self.stamps.entry(from).or_insert(stamp);
            if stamp.outranks(*known) {
                *known = stamp;
            }
        }
        let Some(h) = content_hash(packets) else { return };
        if !self.stamps.contains_key(&from) {
            if self.echo.is_none() && self.sent.contains(&h) {
                self.echo = Some(from);
            }
            if self.unknown.len() == UNKNOWN_KEPT {
                self.unknown.pop_front();
            }
            self.unknown.push_back((h, from));
        }
        match self.computed.iter().rev().find(|c| c.hash == Some(h)) {
            Some(c) => self.matched = Some(self.matched.map_or(c.k, |m| m.max(c.k))),
            None => {
                if self.heard.len() == HEARD_KEPT {
                    self.heard.pop_front();
                }
                // Heard before it was computed here (the main is a little ahead).
                self.heard.push_back(h);
            }
        }
    }

    /// Whether anything was heard on the group.
    pub fn heard_any(&self) -> bool {
        self.last_heard_ns.is_some()
    }

    /// Whether the group is heard now: something arrived within `takeover_after`.
    pub fn hearing(&self, now_ns: u64) -> bool {
        self.last_heard_ns.is_some_and(|t| now_ns.saturating_sub(t) < self.settings.takeover_after.as_nanos() as u64)
    }

    /// Start packet of the last datagram heard that this node computed too.
    pub fn matched(&self) -> Option<u64> {
        self.matched
    }

    /// The decision before the next datagram, for a node holding `role` at `epoch` and
    /// now `sending` or not.
    ///
    /// * Sending as main: stop when a higher rank is heard (fenced).
    /// * Sending, but Raft made this node backup: stand down.
    /// * Shadow as backup: take over with a higher epoch than any heard once the group
    ///   has been silent for `takeover_after` (after the first listen if nothing was
    ///   ever heard). When the source heard last is older than this node's epoch, Raft
    ///   has named a newer main that waits for that source to stop: leave it the first
    ///   turn (twice the silence) so the two never take over at once.
    /// * Shadow, but Raft named this node main: the old main may still send, so wait
    ///   for the group to fall silent, then take over at Raft's epoch; never over a
    ///   source that outranks it.
    pub fn decide(&self, now_ns: u64, sending: bool, role: Role, epoch: u64) -> Decision {
        let me = Stamp { epoch, node: self.settings.node };
        let outranked = self.best_foreign.filter(|by| by.outranks(me));
        let silent_for = |since: u64| now_ns.saturating_sub(since) >= self.settings.takeover_after.as_nanos() as u64;
        match (sending, role) {
            (true, Role::Main) => match outranked {
                Some(by) => Decision::Fence { by },
                // A source sending this very stream: unless its stamp is known and lower,
                // it took over from this node.
                None => match self.echo {
                    Some(source) if self.stamps.get(&source).is_none_or(|s| s.outranks(me)) => Decision::Yield { source },
                    _ => Decision::Stay,
                },
            },
            (true, Role::Backup) => Decision::StandDown,
            (false, Role::Backup) => {
                let silent_since = match self.last_heard_ns {
                    Some(t) => t,
                    None if now_ns.saturating_sub(self.started_ns) >= self.settings.first_listen.as_nanos() as u64 => {
                        self.started_ns
                    }
                    None => return Decision::Stay,
                };
                let stale_source = self.best_foreign.is_some_and(|s| s.epoch < epoch);
                if !silent_for(silent_since) || stale_source && !silent_for(silent_since + self.settings.takeover_after.as_nanos() as u64) {
                    return Decision::Stay;
                }
                let epoch = epoch.max(self.best_foreign.map_or(0, |s| s.epoch)) + 1;
                Decision::TakeOver { epoch, resend_after: self.matched }
            }
            (false, Role::Main) => {
                if outranked.is_some() || self.hearing(now_ns) {
                    return Decision::Stay;
                }
                Decision::TakeOver { epoch, resend_after: self.matched }
            }
        }
    }

    /// The kept datagrams after the one starting at `after`, oldest first.
    pub fn resend_after(&self, after: u64) -> impl Iterator<Item = (u64, &[TsPacket])> {
        self.computed.iter().filter(move |c| c.k > after).map(|c| (c.k, c.packets.as_slice()))
    }

    /// Forgets what was heard (after a takeover, the silence is ours to break).
    pub fn reset_heard(&mut self, now_ns: u64) {
        self.last_heard_ns = None;
        self.started_ns = now_ns;
        self.heard.clear();
        self.echo = None;
    }

    /// Forgets what was sent (after standing down: a later echo is somebody else's).
    pub fn reset_sent(&mut self) {
        self.sent.clear();
        self.unknown.clear();
        self.echo = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playout::role::node_tag;
    use crate::ts::{Pcr, Pid};

    const MS: u64 = 1_000_000;
    const MAIN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, 1), 40000));
    const OTHER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(127, 0, 0, 3), 40000));

    fn settings() -> FailoverSettings {
        FailoverSettings::new(node_tag("backup"))
    }

    /// A datagram whose content identifies packet `k`.
    fn datagram(k: u64) -> Datagram {
        (0..7)
            .map(|i| {
                let mut p = TsPacket::null();
                p.set_pid(Pid::new(0x100));
                p.set_cc(((k + i) % 16) as u8);
                p.0[10..18].copy_from_slice(&(k + i).to_be_bytes());
                p
            })
            .collect()
    }

    fn stamped(epoch: u64, node: &str) -> Datagram {
        let mut p = TsPacket::pcr_only(Pid::new(0x1FF), Pcr::new(0), 0, false);
        assert!(p.set_private_data(&Stamp { epoch, node: node_tag(node) }.to_bytes()));
        vec![p]
    }

    #[test]
    fn a_backup_takes_over_after_silence_and_resends_what_the_main_missed() {
        let mut w = GroupWatch::new(settings(), 0, 100);
        // The main sends datagrams 0..10 (k = 0, 7, ...); the backup computes the same.
        for i in 0..10u64 {
            let t = i * 4 * MS;
            w.computed(i * 7, datagram(i * 7));
            w.heard(t, MAIN, &datagram(i * 7));
            w.heard(t, MAIN, &stamped(1, "main"));
            assert_eq!(w.decide(t, false, Role::Backup, 1), Decision::Stay);
        }
        assert_eq!(w.matched(), Some(63));
        // The main dies; the backup keeps computing.
        for i in 10..20u64 {
            w.computed(i * 7, datagram(i * 7));
        }
        let last = 9 * 4 * MS;
        assert_eq!(w.decide(last + 49 * MS, false, Role::Backup, 1), Decision::Stay);
        assert_eq!(w.decide(last + 50 * MS, false, Role::Backup, 1), Decision::TakeOver { epoch: 2, resend_after: Some(63) });
        let resent: Vec<u64> = w.resend_after(63).map(|(k, _)| k).collect();
        assert_eq!(resent, (10..20).map(|i| i * 7).collect::<Vec<_>>());
    }

    #[test]
    fn matching_works_when_the_main_is_heard_before_the_backup_computes() {
        let mut w = GroupWatch::new(settings(), 0, 100);
        w.heard(0, MAIN, &datagram(0));
        w.heard(0, MAIN, &datagram(7));
        assert_eq!(w.matched(), None);
        w.computed(0, datagram(0));
        w.computed(7, datagram(7));
        assert_eq!(w.matched(), Some(7));
    }

    #[test]
    fn null_only_datagrams_never_match() {
        let mut w = GroupWatch::new(settings(), 0, 100);
        let nulls = vec![TsPacket::null(); 7];
        w.computed(0, nulls.clone());
        w.heard(0, MAIN, &nulls);
        assert_eq!(w.matched(), None);
        assert!(w.heard_any());
    }

    #[test]
    fn a_backup_that_never_heard_the_main_waits_for_the_first_listen() {
        let w = GroupWatch::new(settings(), 1000 * MS, 10);
        assert_eq!(w.decide(1000 * MS + 1999 * MS, false, Role::Backup, 4), Decision::Stay);
        assert_eq!(w.decide(1000 * MS + 2000 * MS, false, Role::Backup, 4), Decision::TakeOver { epoch: 5, resend_after: None });
    }

    #[test]
    fn a_takeover_outbids_every_epoch_heard() {
        let mut w = GroupWatch::new(settings(), 0, 10);
        w.heard(0, OTHER, &stamped(9, "other"));
        assert_eq!(w.decide(100 * MS, false, Role::Backup, 3), Decision::TakeOver { epoch: 10, resend_after: None });
    }

    #[test]
    fn a_main_is_fenced_only_by_a_higher_rank() {
        let mut w = GroupWatch::new(settings(), 0, 10);
        w.heard(0, MAIN, &stamped(1, "old-main"));
        assert_eq!(w.decide(0, true, Role::Main, 2), Decision::Stay);
        w.heard(MS, OTHER, &stamped(3, "new-main"));
        assert_eq!(w.decide(MS, true, Role::Main, 2), Decision::Fence { by: Stamp { epoch: 3, node: node_tag("new-main") } });
        // Its own stamps never fence it.
        let mut own = GroupWatch::new(settings(), 0, 10);
        own.heard(0, OTHER, &stamped(7, "backup"));
        assert_eq!(own.decide(0, true, Role::Main, 2), Decision::Stay);
    }

    #[test]
    fn a_node_named_main_waits_for_the_old_main_to_fall_silent() {
        let mut w = GroupWatch::new(settings(), 0, 100);
        for i in 0..5u64 {
            w.computed(i * 7, datagram(i * 7));
            w.heard(i * MS, MAIN, &datagram(i * 7));
            w.heard(i * MS, MAIN, &stamped(1, "old-main"));
        }
        // Raft says main at epoch 2, but the old main is still heard: wait in shadow.
        assert_eq!(w.decide(10 * MS, false, Role::Main, 2), Decision::Stay);
        // Silent: take over at Raft's epoch, re-sending what the old main did not send.
        assert_eq!(w.decide(54 * MS, false, Role::Main, 2), Decision::TakeOver { epoch: 2, resend_after: Some(28) });
        // Never over a source that outranks it.
        w.heard(60 * MS, OTHER, &stamped(3, "other"));
        assert_eq!(w.decide(200 * MS, false, Role::Main, 2), Decision::Stay);
        // Nothing heard at all: at once.
        let fresh = GroupWatch::new(settings(), 0, 10);
        assert_eq!(fresh.decide(0, false, Role::Main, 2), Decision::TakeOver { epoch: 2, resend_after: None });
        // Sending, but no longer main: stand down.
        assert_eq!(fresh.decide(0, true, Role::Backup, 2), Decision::StandDown);
    }

    #[test]
    fn a_main_yields_to_an_unknown_source_sending_its_stream_but_not_to_one_it_outranks() {
        // The old main comes back after its link was cut: the new main's stream arrives
        // before any of its stamps.
        let mut old = GroupWatch::new(settings(), 0, 100);
        for i in 0..5u64 {
            old.sent(&datagram(i * 7));
        }
        old.heard(MS, OTHER, &datagram(21));
        assert_eq!(old.decide(MS, true, Role::Main, 1), Decision::Yield { source: OTHER });
        // The new main hears the old one sending the same stream, but knows its stamp
        // (it was its backup): it stays.
        let mut new = GroupWatch::new(settings(), 0, 100);
        new.heard(0, MAIN, &stamped(1, "old-main"));
        for i in 0..5u64 {
            new.sent(&datagram(i * 7));
        }
        new.heard(MS, MAIN, &datagram(21));
        assert_eq!(new.decide(MS, true, Role::Main, 2), Decision::Stay);
        // A new main ahead of this one: its datagram arrives before this node sends the
        // same one, which is then not sent.
        let mut behind = GroupWatch::new(settings(), 0, 100);
        behind.sent(&datagram(0));
        behind.heard(MS, OTHER, &datagram(7));
        assert_eq!(behind.decide(MS, true, Role::Main, 1), Decision::Stay);
        behind.before_send(&datagram(7));
        assert_eq!(behind.decide(MS, true, Role::Main, 1), Decision::Yield { source: OTHER });
        // Another stream (different content) on the group is not an echo.
        let mut other = GroupWatch::new(settings(), 0, 100);
        other.sent(&datagram(0));
        other.heard(MS, OTHER, &datagram(700));
        assert_eq!(other.decide(MS, true, Role::Main, 1), Decision::Stay);
    }

    #[test]
    fn a_backup_leaves_a_silent_stale_main_to_the_main_raft_named() {
        // Raft moved the group to epoch 2 (a named main waits in shadow); the old main at
        // epoch 1 stops. The named main takes over after 50 ms of silence; the backup
        // would only after 100 ms.
        let mut w = GroupWatch::new(settings(), 0, 10);
        w.heard(0, MAIN, &stamped(1, "old-main"));
        assert_eq!(w.decide(60 * MS, false, Role::Backup, 2), Decision::Stay);
        assert_eq!(w.decide(100 * MS, false, Role::Backup, 2), Decision::TakeOver { epoch: 3, resend_after: None });
        // The current main (same epoch) falling silent: the usual 50 ms.
        let mut w = GroupWatch::new(settings(), 0, 10);
        w.heard(0, MAIN, &stamped(2, "main"));
        assert_eq!(w.decide(50 * MS, false, Role::Backup, 2), Decision::TakeOver { epoch: 3, resend_after: None });
    }

    #[test]
    fn the_kept_stream_is_bounded() {
        let mut w = GroupWatch::new(settings(), 0, 3);
        for i in 0..10u64 {
            w.computed(i * 7, datagram(i * 7));
        }
        let kept: Vec<u64> = w.resend_after(0).map(|(k, _)| k).collect();
        assert_eq!(kept, vec![49, 56, 63]);
    }
}
