//! [`plan`]: the placement rules of the scheduler (see the module docs).

use std::collections::{BTreeMap, BTreeSet};

use super::{render_job_id, SchedulerInput};
use crate::cluster::state::{Command, EncodeJob, GroupRoles};

/// What a node carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Main,
    Backup,
    Job,
}

/// Per live node: capacity and what it carries.
#[derive(Debug, Default)]
struct Load {
    capacity: f64,
    mains: f64,
    backups: f64,
    jobs: f64,
}

impl Load {
    fn count(&self, role: Role) -> f64 {
        match role {
            Role::Main => self.mains,
            Role::Backup => self.backups,
            Role::Job => self.jobs,
        }
    }

    /// Streaming work: a backup (shadow playout) weighs half a main.
    fn streams(&self) -> f64 {
        self.mains + 0.5 * self.backups
    }
}

/// The live nodes' loads.
struct Loads<'a>(BTreeMap<&'a str, Load>);

impl<'a> Loads<'a> {
    fn new(input: &'a SchedulerInput) -> Self {
        Loads(
            input
                .nodes
                .iter()
                .filter(|n| n.alive)
                .map(|n| (n.name.as_str(), Load { capacity: f64::from(n.capacity.max(1)), ..Load::default() }))
                .collect(),
        )
    }

    fn alive(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn add(&mut self, name: &str, role: Role) {
        if let Some(l) = self.0.get_mut(name) {
            match role {
                Role::Main => l.mains += 1.0,
                Role::Backup => l.backups += 1.0,
                Role::Job => l.jobs += 1.0,
            }
        }
    }

    /// The live node, other than `exclude`, with the fewest `role`s per capacity once it
    /// takes one more; then the least streaming work per capacity; then by name.
    fn pick(&mut self, exclude: Option<&str>, role: Role) -> Option<String> {
        let best = self
            .0
            .iter()
            .filter(|(n, _)| Some(**n) != exclude)
            .map(|(n, l)| (*n, (l.count(role) + 1.0) / l.capacity, l.streams() / l.capacity))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.2.total_cmp(&b.2)).then(a.0.cmp(b.0)))
            .map(|(n, _, _)| n.to_owned())?;
        self.add(&best, role);
        Some(best)
    }
}

/// The commands that bring the roles and encode jobs of `input` in line with the rules.
/// Empty when nothing needs to change.
pub fn plan(input: &SchedulerInput) -> Vec<Command> {
    let mut commands = Vec::new();
    let mut loads = Loads::new(input);

    // Pass 1: keep what is healthy and count its load.
    let mut kept = Vec::new();
    for (channel, key) in &input.channels {
        let current = input.groups.get(key).filter(|g| g.channel == *channel);
        let alive = |n: &Option<String>| n.clone().filter(|n| loads.alive(n));
        let mut main = current.and_then(|g| alive(&g.main));
        let mut backup = current.and_then(|g| alive(&g.backup)).filter(|b| Some(b) != main.as_ref());
        if main.is_none() {
            main = backup.take();
        }
        if let Some(m) = &main {
            loads.add(m, Role::Main);
        }
        if let Some(b) = &backup {
            loads.add(b, Role::Backup);
        }
        kept.push((channel, key, current, main, backup));
    }

    // Pass 2: fill the holes, in channel order.
    for (channel, key, current, mut main, mut backup) in kept {
        if main.is_none() {
            main = loads.pick(backup.as_deref(), Role::Main);
        }
        if backup.is_none() {
            backup = loads.pick(main.as_deref(), Role::Backup);
        }
        let mut epoch = current.map_or(0, |g| g.epoch);
        if main.is_some() && main != current.and_then(|g| g.main.clone()) {
            epoch += 1;
        }
        let roles = GroupRoles { channel: channel.clone(), main, backup, epoch };
        if current != Some(&roles) {
            commands.push(Command::SetGroupRoles { group: key.clone(), roles: Some(roles) });
        }
    }
    let wanted: BTreeSet<&str> = input.channels.iter().map(|(_, k)| k.as_str()).collect();
    for key in input.groups.keys().filter(|k| !wanted.contains(k.as_str())) {
        commands.push(Command::SetGroupRoles { group: key.clone(), roles: None });
    }

    // Encode jobs: one per rendered channel; the others go.
    let mut jobs: Vec<EncodeJob> = Vec::new();
    for job in &input.jobs {
        if input.rendered.contains(&job.channel) && job.id == render_job_id(&job.channel) {
            jobs.push(job.clone());
        } else {
            commands.push(Command::RemoveEncodeJob { id: job.id.clone() });
        }
    }
    for channel in &input.rendered {
        let id = render_job_id(channel);
        if !jobs.iter().any(|j| j.id == id) {
            jobs.push(EncodeJob { id, channel: channel.clone(), item: String::new(), node: None });
        }
    }
    // Kept where their node lives, else to the least loaded live node.
    for job in &jobs {
        if let Some(n) = job.node.as_deref().filter(|n| loads.alive(n)) {
            loads.add(n, Role::Job);
        }
    }
    let unplaced: Vec<&EncodeJob> = jobs.iter().filter(|j| !j.node.as_deref().is_some_and(|n| loads.alive(n))).collect();
    for job in unplaced {
        let node = loads.pick(None, Role::Job);
        let known = input.jobs.iter().any(|j| j.id == job.id);
        if node != job.node || !known {
            commands.push(Command::PutEncodeJob(EncodeJob { node, ..job.clone() }));
        }
    }
    commands
}
