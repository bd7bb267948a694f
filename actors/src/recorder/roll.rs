//! When segments start, are cut and close (pure: times are monotonic nanoseconds from
//! the capture, no I/O).
//!
//! Every segment starts with a PAT packet when the stream has one: a new recording (or
//! one after an idle close) waits up to `pat_wait` for a PAT and drops what comes
//! before; a segment `segment_length` old is cut at the first packet starting a PAT in
//! the next datagrams (the packets of that datagram before the PAT stay in the old
//! segment). A stream without PATs is still recorded: after `pat_wait` the start or cut
//! happens at a datagram boundary. A segment that nothing cuts (the stream stopped) is
//! closed `pat_wait` after it was due.

use std::time::Duration;

/// What to do with one datagram's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Nothing is open and no PAT yet: drop the datagram.
    Discard,
    /// Open a segment and write the packets from index `at`; drop those before.
    Start { at: usize },
    /// Write everything to the open segment.
    Append,
    /// Write packets before `at` to the open segment, close it, open a new one and write
    /// the rest.
    Cut { at: usize },
}

#[derive(Debug, Clone)]
pub struct Roller {
    length_ns: u64,
    pat_wait_ns: u64,
    open_since: Option<u64>,
    waiting_since: Option<u64>,
}

impl Roller {
    pub fn new(segment_length: Duration, pat_wait: Duration) -> Self {
        Roller { length_ns: segment_length.as_nanos() as u64, pat_wait_ns: pat_wait.as_nanos() as u64, open_since: None, waiting_since: None }
    }

    /// A datagram arrived at `now`; `pat_at` is the index of its first packet that starts
    /// a PAT.
    pub fn on_datagram(&mut self, now: u64, pat_at: Option<usize>) -> Placement {
        match self.open_since {
            None => {
                let waiting = *self.waiting_since.get_or_insert(now);
                let at = match pat_at {
                    Some(i) => i,
                    None if now - waiting >= self.pat_wait_ns => 0,
                    None => return Placement::Discard,
                };
                self.open_since = Some(now);
                self.waiting_since = None;
                Placement::Start { at }
            }
            Some(since) => {
                let age = now.saturating_sub(since);
                if age < self.length_ns {
                    return Placement::Append;
                }
                let at = match pat_at {
                    Some(i) => i,
                    None if age >= self.length_ns + self.pat_wait_ns => 0,
                    None => return Placement::Append,
                };
                self.open_since = Some(now);
                Placement::Cut { at }
            }
        }
    }

    /// Nothing arrived for a while: `true` when the open segment is to be closed now.
    pub fn on_idle(&mut self, now: u64) -> bool {
        match self.open_since {
            Some(since) if now.saturating_sub(since) >= self.length_ns + self.pat_wait_ns => {
                self.open_since = None;
                true
            }
            _ => false,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn roller() -> Roller {
        Roller::new(Duration::from_secs(1), Duration::from_millis(500))
    }

    #[test]
    fn a_recording_starts_at_the_first_pat() {
        let mut r = roller();
        assert_eq!(r.on_datagram(0, None), Placement::Discard);
        assert_eq!(r.on_datagram(3 * MS, None), Placement::Discard);
        assert_eq!(r.on_datagram(6 * MS, Some(4)), Placement::Start { at: 4 });
        assert_eq!(r.on_datagram(9 * MS, Some(0)), Placement::Append, "a young segment is not cut");
    }

    #[test]
    fn a_stream_without_pat_is_recorded_after_the_wait() {
        let mut r = roller();
        assert_eq!(r.on_datagram(100 * MS, None), Placement::Discard);
        assert_eq!(r.on_datagram(599 * MS, None), Placement::Discard);
        assert_eq!(r.on_datagram(600 * MS, None), Placement::Start { at: 0 });
        assert_eq!(r.on_datagram(1_600 * MS, None), Placement::Append, "due: waits for a PAT");
        assert_eq!(r.on_datagram(2_100 * MS, None), Placement::Cut { at: 0 }, "no PAT in pat_wait: cut anyway");
        assert_eq!(r.on_datagram(3_099 * MS, Some(2)), Placement::Append);
    }

    #[test]
    fn a_due_segment_is_cut_at_the_pat() {
        let mut r = roller();
        assert_eq!(r.on_datagram(0, Some(0)), Placement::Start { at: 0 });
        assert_eq!(r.on_datagram(999 * MS, Some(3)), Placement::Append);
        assert_eq!(r.on_datagram(1_000 * MS, None), Placement::Append);
        assert_eq!(r.on_datagram(1_040 * MS, Some(5)), Placement::Cut { at: 5 });
        assert_eq!(r.on_datagram(2_039 * MS, Some(5)), Placement::Append, "the new segment's age counts from its cut");
        assert_eq!(r.on_datagram(2_040 * MS, Some(6)), Placement::Cut { at: 6 });
    }

    #[test]
    fn a_stopped_stream_closes_its_segment_and_the_next_waits_for_a_pat() {
        let mut r = roller();
        assert_eq!(r.on_datagram(0, Some(0)), Placement::Start { at: 0 });
        assert!(!r.on_idle(1_499 * MS), "not closed before length + pat_wait");
        assert!(r.on_idle(1_500 * MS));
        assert!(!r.is_open());
        assert!(!r.on_idle(9_000 * MS), "nothing open");
        assert_eq!(r.on_datagram(9_000 * MS, None), Placement::Discard);
        assert_eq!(r.on_datagram(9_010 * MS, Some(1)), Placement::Start { at: 1 });
    }
}
