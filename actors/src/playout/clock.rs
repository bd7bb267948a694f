//! Clocks for pacing. Production paces a wall-clock timeline (the schedule's epoch is
//! wall-clock time) from the monotonic clock, so NTP steps never make it jump.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time source of the pacer, injectable for tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Wall-clock now, nanoseconds since the Unix epoch.
    fn now_unix_ns(&self) -> u64;
    /// Blocks the calling thread until `now_unix_ns() >= t`.
    fn sleep_until_unix_ns(&self, t: u64);
}

/// Wall-clock time anchored once, then advanced by the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    anchor: Instant,
    anchor_unix_ns: u64,
}

impl MonotonicClock {
    pub fn new() -> Self {
        let anchor = Instant::now();
        let anchor_unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        MonotonicClock { anchor, anchor_unix_ns }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_unix_ns(&self) -> u64 {
        self.anchor_unix_ns + self.anchor.elapsed().as_nanos() as u64
    }
    fn sleep_until_unix_ns(&self, t: u64) {
        let target = self.anchor + Duration::from_nanos(t.saturating_sub(self.anchor_unix_ns));
        let now = Instant::now();
        if target > now {
            std::thread::sleep(target - now);
        }
    }
}

/// Wall-clock now in nanoseconds since the Unix epoch.
pub fn unix_now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
