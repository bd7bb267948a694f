//! A cluster of 3 `headend run` processes on 127.0.0.1-3, observed through the admin API:
//! election, kill -9 of the leader (a new leader, writes continue, roles move off the dead
//! node), a minority that cannot commit, durability of acknowledged writes after kill -9
//! of every node (with snapshots and log compaction), and membership changes.
//!
//! The channels requested here (groups 239.255.211.x, empty media folders) are really
//! played by their main and backup (the slate), as in production; the assertions are
//! about the control plane.

use headend_cluster_tests::cluster::ClusterBuilder;
use headend_proto::admin as pb;
use headend_cluster_tests::wait_for;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(15);

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn three_nodes_elect_a_leader_agree_on_state_and_place_every_group() {
    let c = ClusterBuilder::new(3).start();
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    let follower = (leader + 1) % 3;
    // Writes through the leader and through a follower (forwarded).
    c.request_stream(leader, "alpha", 1).expect("write on the leader");
    c.request_stream(follower, "bravo", 2).expect("write on a follower is forwarded");
    c.request_stream((leader + 2) % 3, "charlie", 3).expect("write on the other follower");
    // A follower answers its own write at once (read-your-writes on the node asked).
    assert!(c.channel_ids(follower).unwrap().contains(&"bravo".to_string()));
    c.wait_channels(&ids(&["alpha", "bravo", "charlie"]), CONVERGE);
    // Every node reports the same roles; each group has a main and a different backup,
    // and the three mains are on three nodes.
    let roles = wait_for(CONVERGE, "every group placed, the same on every node", || {
        let per_node: Vec<Vec<(String, String, String)>> = (0..3)
            .map(|i| {
                c.channels(i)
                    .ok()
                    .map(|cs| cs.into_iter().map(|ch| ch.roles.unwrap_or_default()).map(|r| (r.group, r.main, r.backup)).collect())
            })
            .collect::<Option<_>>()?;
        let placed = per_node[0].len() == 3 && per_node[0].iter().all(|(_, m, b)| !m.is_empty() && !b.is_empty());
        (placed && per_node.iter().all(|r| *r == per_node[0])).then(|| per_node[0].clone())
    });
    for (group, main, backup) in &roles {
        assert_ne!(main, backup, "group {group}");
    }
    let mains: BTreeSet<&String> = roles.iter().map(|(_, m, _)| m).collect();
    assert_eq!(mains.len(), 3, "one main per node: {roles:?}");
}

#[test]
fn killing_the_leader_elects_a_new_one_and_writes_continue() {
    let mut c = ClusterBuilder::new(3).start();
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    c.request_stream(leader, "before", 10).expect("write");
    let dead = c.nodes[leader].name.clone();
    wait_for(CONVERGE, "the group placed", || {
        c.channels(leader).ok()?.first()?.roles.as_ref().filter(|r| !r.main.is_empty() && !r.backup.is_empty()).map(|_| ())
    });
    let t0 = Instant::now();
    c.kill(leader);
    let rest: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let new_leader = c.wait_leader(&rest, Duration::from_secs(10));
    let took = t0.elapsed();
    assert_ne!(new_leader, leader);
    assert!(took < Duration::from_secs(3), "a new leader took {took:?}");
    eprintln!("new leader {} after {took:?}", c.nodes[new_leader].name);
    // Writes continue, through either survivor.
    c.request_stream(rest[0], "after-1", 11).expect("write after failover");
    c.request_stream(rest[1], "after-2", 12).expect("write after failover");
    c.wait_channels(&ids(&["after-1", "after-2", "before"]), CONVERGE);
    // The dead node's lease lapses: no group keeps it as main or backup.
    wait_for(CONVERGE, &format!("roles moved off {dead}"), || {
        let cs = c.channels(rest[0]).ok()?;
        cs.iter()
            .all(|ch| ch.roles.as_ref().is_some_and(|r| !r.main.is_empty() && r.main != dead && r.backup != dead && r.main != r.backup))
            .then_some(())
    });
    // The old leader comes back as a follower and catches up.
    c.start(leader);
    c.wait_channels(&ids(&["after-1", "after-2", "before"]), CONVERGE);
    let s = c.status(leader).unwrap();
    assert_eq!(s.state, "follower");
}

#[test]
fn a_minority_cannot_commit() {
    let mut c = ClusterBuilder::new(3).start();
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    c.request_stream(leader, "kept", 20).expect("write");
    c.wait_channels(&ids(&["kept"]), CONVERGE);
    // Keep the leader, kill both followers: it can no longer reach a majority.
    for i in (0..3).filter(|i| *i != leader) {
        c.kill(i);
    }
    let e = c.request_stream(leader, "lost", 21).expect_err("a minority must not acknowledge a write");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert_eq!(c.channel_ids(leader).unwrap(), ids(&["kept"]), "nothing applied without a majority");
    // One follower back: a majority again, writes succeed.
    let back = (leader + 1) % 3;
    c.start(back);
    let l = c.wait_leader(&[leader, back], CONVERGE);
    c.request_stream(l, "after-quorum", 22).expect("write with a majority");
    let have = c.channel_ids(back).unwrap();
    assert!(have.contains(&"after-quorum".to_string()) && have.contains(&"kept".to_string()), "{have:?}");
}

#[test]
fn acknowledged_writes_survive_kill_9_of_every_node() {
    // Small snapshot interval: snapshots are built and the log is compacted on the way.
    // The writes are 30 renames of one channel (each a committed entry): the replicated
    // channels of these nodes really stream (main and backup), and 30 of them at once
    // would measure a debug build's muxing on two cores, not Raft.
    let mut c = ClusterBuilder::new(3).snapshot_logs(10).start();
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    c.request_stream(leader, "durable", 100).expect("create");
    let mut last = None;
    for k in 0..30usize {
        let i = (leader + k) % 3;
        let mut a = c.admin(i);
        let mut ch = c.block_on(a.get_channel(pb::ChannelRef { id: "durable".into() })).expect("get").into_inner();
        ch.name = format!("Durable {k}");
        ch.service_name = String::new();
        let updated = c.block_on(a.update_channel(ch)).expect("write").into_inner();
        last = Some((updated.name, updated.revision));
    }
    let (name, revision) = last.unwrap();
    // Every acknowledged write is on the leader; kill everything before followers
    // necessarily applied the last ones.
    for i in 0..3 {
        c.kill(i);
    }
    let snapshots = (0..3).filter(|i| c.log(*i).contains("snapshot")).count();
    eprintln!("{snapshots} nodes logged snapshot activity");
    for i in 0..3 {
        c.start(i);
    }
    c.wait_leader(&[0, 1, 2], CONVERGE);
    for i in 0..3 {
        let ch = wait_for(CONVERGE, "the last acknowledged write on every node", || {
            c.channels(i).ok()?.into_iter().find(|ch| ch.id == "durable" && ch.revision >= revision)
        });
        assert_eq!(ch.name, name, "node {i}");
    }
    // And the log was compacted: the status still reports a consistent applied index.
    let s = c.status(0).unwrap();
    assert!(s.last_applied >= 30, "applied {}", s.last_applied);
}

#[test]
fn membership_add_learner_promote_and_remove() {
    let mut c = ClusterBuilder::new(3).start();
    let leader = c.wait_leader(&[0, 1, 2], CONVERGE);
    c.request_stream(leader, "before-join", 30).expect("write");
    // A fourth node that waits to be added.
    let n4 = c.add_node(false, false);
    c.start(n4);
    assert!(c.status(n4).unwrap().members.is_empty(), "an uninitialized node has no members");
    let follower = (leader + 1) % 3;
    let mut a = c.admin(follower);
    let (name, raft, admin) = (c.nodes[n4].name.clone(), c.nodes[n4].raft.to_string(), c.nodes[n4].admin.to_string());
    let s = c
        .block_on(a.add_learner(headend_proto::admin::AddLearnerRequest { name: name.clone(), raft_addr: raft, admin_addr: admin }))
        .expect("add learner through a follower")
        .into_inner();
    assert_eq!(s.members.iter().find(|m| m.name == name).map(|m| m.role.as_str()), Some("learner"));
    // The learner has the state.
    wait_for(CONVERGE, "the learner to hold the channel", || {
        c.channel_ids(n4).ok().filter(|i| i.contains(&"before-join".to_string())).map(|_| ())
    });
    // Promote, then remove the first node.
    let s = c.block_on(a.promote_voter(headend_proto::admin::MemberRef { name: name.clone() })).expect("promote").into_inner();
    assert_eq!(s.members.iter().filter(|m| m.role != "learner").count(), 4, "{s:?}");
    let e = c.block_on(a.promote_voter(headend_proto::admin::MemberRef { name: name.clone() })).expect_err("already a voter");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = c.block_on(a.remove_member(headend_proto::admin::MemberRef { name: "nobody".into() })).expect_err("unknown member");
    assert_eq!(e.code(), tonic::Code::NotFound);
    let removed = c.nodes[0].name.clone();
    let asked = if follower == 0 { 2 } else { follower };
    let mut a = c.admin(asked);
    c.block_on(a.remove_member(headend_proto::admin::MemberRef { name: removed.clone() })).expect("remove");
    let rest: Vec<usize> = vec![1, 2, n4];
    c.wait_leader(&rest, CONVERGE);
    let s = wait_for(CONVERGE, "membership without the removed node", || {
        let s = c.status(n4).ok()?;
        (!s.members.iter().any(|m| m.name == removed) && s.members.len() == 3).then_some(s)
    });
    assert!(s.members.iter().all(|m| m.role != "learner"), "{s:?}");
    c.kill(0);
    let l = c.wait_leader(&rest, CONVERGE);
    c.request_stream(l, "after-remove", 31).expect("write without the removed node");
}
