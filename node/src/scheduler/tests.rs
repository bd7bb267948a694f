//! Placement, failure and stability of the scheduler, on hand-made cluster views.

use super::*;
use crate::cluster::state::{Command, EncodeJob, GroupRoles};

fn node(name: &str, capacity: u32, alive: bool) -> NodeView {
    NodeView { name: name.into(), capacity, alive }
}

fn input(nodes: Vec<NodeView>, channels: usize) -> SchedulerInput {
    SchedulerInput {
        nodes,
        channels: (0..channels).map(|i| (format!("ch{i}"), format!("239.255.0.{i}:5000"))).collect(),
        ..Default::default()
    }
}

/// Applies the commands to the input's roles and jobs (what the state machine does).
fn apply(input: &mut SchedulerInput, commands: &[Command]) {
    for c in commands {
        match c {
            Command::SetGroupRoles { group, roles: Some(r) } => {
                input.groups.insert(group.clone(), r.clone());
            }
            Command::SetGroupRoles { group, roles: None } => {
                input.groups.remove(group);
            }
            Command::PutEncodeJob(job) => match input.jobs.iter_mut().find(|j| j.id == job.id) {
                Some(slot) => *slot = job.clone(),
                None => input.jobs.push(job.clone()),
            },
            Command::RemoveEncodeJob { id } => input.jobs.retain(|j| j.id != *id),
            other => panic!("unexpected command {other:?}"),
        }
    }
}

/// Plans and applies until nothing changes; returns all commands issued.
fn settle(input: &mut SchedulerInput) -> Vec<Command> {
    let commands = plan(input);
    apply(input, &commands);
    assert_eq!(plan(input), vec![], "a second pass over its own result must change nothing");
    commands
}

fn roles(input: &SchedulerInput) -> Vec<(Option<String>, Option<String>)> {
    input.groups.values().map(|g| (g.main.clone(), g.backup.clone())).collect()
}

fn count(input: &SchedulerInput, name: &str) -> (usize, usize) {
    let mains = input.groups.values().filter(|g| g.main.as_deref() == Some(name)).count();
    let backups = input.groups.values().filter(|g| g.backup.as_deref() == Some(name)).count();
    (mains, backups)
}

#[test]
fn main_and_backup_go_to_different_nodes_spread_evenly() {
    let mut i = input(vec![node("a", 10, true), node("b", 10, true), node("c", 10, true)], 3);
    settle(&mut i);
    assert_eq!(i.groups.len(), 3);
    for (main, backup) in roles(&i) {
        assert!(main.is_some() && backup.is_some() && main != backup, "{main:?} {backup:?}");
    }
    for n in ["a", "b", "c"] {
        assert_eq!(count(&i, n), (1, 1), "node {n}: {:?}", roles(&i));
    }
    assert!(i.groups.values().all(|g| g.epoch == 1));
}

#[test]
fn capacity_weights_the_balance() {
    let mut i = input(vec![node("big", 30, true), node("small", 10, true)], 8);
    settle(&mut i);
    let (big, small) = (count(&i, "big").0, count(&i, "small").0);
    assert_eq!(big + small, 8);
    assert_eq!((big, small), (6, 2), "mains in proportion to capacity 30:10");
}

#[test]
fn one_node_gets_mains_and_no_backups() {
    let mut i = input(vec![node("a", 10, true)], 2);
    settle(&mut i);
    assert_eq!(roles(&i), vec![(Some("a".into()), None), (Some("a".into()), None)]);
}

#[test]
fn a_lapsed_main_is_replaced_by_its_backup_and_only_its_groups_move() {
    let mut i = input(vec![node("a", 10, true), node("b", 10, true), node("c", 10, true)], 3);
    settle(&mut i);
    let before = i.groups.clone();
    i.nodes[0].alive = false; // "a" lapses
    let commands = settle(&mut i);
    for (key, old) in &before {
        let new = &i.groups[key];
        assert!(new.main.as_deref() != Some("a") && new.backup.as_deref() != Some("a"));
        assert_ne!(new.main, new.backup);
        if old.main.as_deref() == Some("a") {
            assert_eq!(new.main, old.backup, "the backup takes over");
            assert_eq!(new.epoch, old.epoch + 1, "epoch bumps with a new main");
        } else if old.backup.as_deref() != Some("a") {
            assert_eq!(new, old, "healthy group {key} must not move");
        } else {
            assert_eq!((&new.main, new.epoch), (&old.main, old.epoch), "main of {key} stays");
        }
    }
    assert_eq!(commands.len(), 2, "only the two groups that used a: {commands:?}");
}

#[test]
fn placement_is_stable_when_nodes_join() {
    let mut i = input(vec![node("a", 10, true), node("b", 10, true)], 4);
    settle(&mut i);
    let before = i.groups.clone();
    i.nodes.push(node("c", 10, true));
    assert_eq!(plan(&i), vec![], "a new node must not reshuffle healthy assignments");
    // A new channel goes to the idle node.
    i.channels.push(("new".into(), "239.255.1.1:5000".into()));
    settle(&mut i);
    assert_eq!(i.groups["239.255.1.1:5000"].main.as_deref(), Some("c"));
    for (k, g) in &before {
        assert_eq!(&i.groups[k], g);
    }
}

#[test]
fn with_every_lease_lapsed_roles_are_cleared_then_restored() {
    let mut i = input(vec![node("a", 10, true), node("b", 10, true)], 1);
    settle(&mut i);
    let epoch = i.groups.values().next().unwrap().epoch;
    for n in &mut i.nodes {
        n.alive = false;
    }
    settle(&mut i);
    assert_eq!(roles(&i), vec![(None, None)]);
    i.nodes[1].alive = true;
    settle(&mut i);
    let g = i.groups.values().next().unwrap();
    assert_eq!((g.main.as_deref(), g.backup.as_deref()), (Some("b"), None));
    assert_eq!(g.epoch, epoch + 1);
}

#[test]
fn roles_of_a_group_without_channel_are_cleared() {
    let mut i = input(vec![node("a", 10, true)], 0);
    i.groups.insert("239.255.9.9:5000".into(), GroupRoles { channel: "gone".into(), main: Some("a".into()), backup: None, epoch: 3 });
    assert_eq!(plan(&i), vec![Command::SetGroupRoles { group: "239.255.9.9:5000".into(), roles: None }]);
}

#[test]
fn encode_jobs_are_balanced_and_reassigned_from_lapsed_nodes() {
    let mut i = input(vec![node("a", 10, true), node("b", 10, true)], 0);
    i.rendered = (0..4).map(|n| format!("r{n}")).collect();
    settle(&mut i);
    assert_eq!(i.jobs.len(), 4, "one job per rendered channel");
    assert!(i.jobs.iter().all(|j| j.id == render_job_id(&j.channel)));
    let on = |i: &SchedulerInput, n: &str| i.jobs.iter().filter(|j| j.node.as_deref() == Some(n)).count();
    assert_eq!((on(&i, "a"), on(&i, "b")), (2, 2));
    i.nodes[0].alive = false;
    let commands = settle(&mut i);
    assert_eq!(commands.len(), 2, "only a's jobs move");
    assert_eq!(on(&i, "b"), 4);
}

#[test]
fn the_plan_is_deterministic() {
    let i = input(vec![node("c", 10, true), node("a", 10, true), node("b", 10, true)], 5);
    assert_eq!(plan(&i), plan(&i.clone()));
}

#[test]
fn a_channel_that_stops_being_rendered_loses_its_job_and_strays_go() {
    let mut i = input(vec![node("a", 10, true)], 0);
    i.rendered.insert("r".into());
    i.jobs.push(EncodeJob { id: "stray".into(), channel: "gone".into(), item: String::new(), node: Some("a".into()) });
    settle(&mut i);
    assert_eq!(i.jobs, vec![EncodeJob { id: render_job_id("r"), channel: "r".into(), item: String::new(), node: Some("a".into()) }]);
    i.rendered.clear();
    assert_eq!(settle(&mut i), vec![Command::RemoveEncodeJob { id: render_job_id("r") }]);
    assert!(i.jobs.is_empty());
}

#[test]
fn render_jobs_go_to_nodes_with_fewer_jobs_then_less_streaming() {
    // The channel streams from a (main) and b (backup): its job goes to an idle node.
    let mut i = input(vec![node("a", 10, true), node("b", 10, true), node("c", 10, true)], 1);
    settle(&mut i);
    assert_eq!(roles(&i), vec![(Some("a".into()), Some("b".into()))]);
    i.rendered.insert("ch0".into());
    settle(&mut i);
    assert_eq!(i.jobs[0].node.as_deref(), Some("c"));
}
