//! The order jobs run in: the item needed soonest first. Pure logic, no I/O.
//!
//! A channel plays its items in media order, so a job's need is its position in its
//! channel's media list. Channels take turns: the first item of every channel comes
//! before the second of any (a channel with nothing on air gets its first item soon),
//! and an operator's "start now" goes before everything.

use std::collections::BTreeMap;

/// Why a job is queued, highest priority first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// Asked for by an operator.
    Operator,
    /// Found by a scan.
    Scan,
}

/// Sort key: urgency, then position in the channel's play order, then channel, then
/// arrival (so equal keys stay first come, first served).
type Key = (Urgency, usize, String, u64);

/// Pending jobs by need. `T` is what the caller keeps per job; jobs are named by id.
#[derive(Debug)]
pub struct JobQueue<T> {
    by_key: BTreeMap<Key, String>,
    jobs: BTreeMap<String, (Key, T)>,
    arrivals: u64,
}

impl<T> Default for JobQueue<T> {
    fn default() -> Self {
        JobQueue { by_key: BTreeMap::new(), jobs: BTreeMap::new(), arrivals: 0 }
    }
}

impl<T> JobQueue<T> {
    /// Queues job `id`, or moves it if it is already queued (its payload is replaced).
    pub fn push(&mut self, id: String, urgency: Urgency, position: usize, channel: &str, job: T) {
        self.remove(&id);
        self.arrivals += 1;
        let key = (urgency, position, channel.to_string(), self.arrivals);
        self.by_key.insert(key.clone(), id.clone());
        self.jobs.insert(id, (key, job));
    }

    /// The most urgent job.
    pub fn pop(&mut self) -> Option<(String, T)> {
        let (_, id) = self.by_key.pop_first()?;
        let (_, job) = self.jobs.remove(&id)?;
        Some((id, job))
    }

    /// Drops a queued job; returns it if it was queued.
    pub fn remove(&mut self, id: &str) -> Option<T> {
        let (key, job) = self.jobs.remove(id)?;
        self.by_key.remove(&key);
        Some(job)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.jobs.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Queued jobs in run order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.by_key.values().map(|id| (id, &self.jobs[id].1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut JobQueue<()>) -> Vec<String> {
        std::iter::from_fn(|| q.pop().map(|(id, _)| id)).collect()
    }

    #[test]
    fn channels_take_turns_by_play_position() {
        let mut q = JobQueue::default();
        for (ch, n) in [("rock", 3), ("jazz", 2)] {
            for i in 0..n {
                q.push(format!("{ch}{i}"), Urgency::Scan, i, ch, ());
            }
        }
        assert_eq!(drain(&mut q), ["jazz0", "rock0", "jazz1", "rock1", "rock2"]);
    }

    #[test]
    fn operator_requests_go_first_and_requeue_moves() {
        let mut q = JobQueue::default();
        q.push("a".into(), Urgency::Scan, 0, "c", ());
        q.push("b".into(), Urgency::Scan, 5, "c", ());
        q.push("b".into(), Urgency::Operator, 5, "c", ());
        assert_eq!(q.len(), 2);
        assert!(q.contains("b"));
        assert_eq!(drain(&mut q), ["b", "a"]);
        assert!(q.is_empty());
    }

    #[test]
    fn remove_drops_a_job() {
        let mut q = JobQueue::default();
        q.push("a".into(), Urgency::Scan, 0, "c", 1);
        q.push("b".into(), Urgency::Scan, 1, "c", 2);
        assert_eq!(q.remove("a"), Some(1));
        assert_eq!(q.remove("a"), None);
        assert_eq!(q.iter().map(|(id, v)| (id.clone(), *v)).collect::<Vec<_>>(), [("b".to_string(), 2)]);
    }
}
