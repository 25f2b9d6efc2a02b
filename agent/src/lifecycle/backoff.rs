//! CrashLoopBackOff: the delay before restarting a container that exited.
//!
//! Kubernetes waits 10 s after the first crash, doubles the wait on every
//! consecutive crash up to 5 min, and forgets the history once a container has
//! run for 10 min without crashing. Time is passed in, so callers (and tests)
//! decide what "now" is.

use std::time::{Duration, Instant};

/// Kubernetes' first restart delay.
pub const INITIAL_DELAY: Duration = Duration::from_secs(10);
/// Kubernetes' cap on the restart delay.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// A container that ran this long without crashing starts over at [`INITIAL_DELAY`].
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// The back-off state of one container (kept across its restarts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    reset_after: Duration,
    /// Delay handed out by the previous crash, `None` before the first one.
    last_delay: Option<Duration>,
    ready_at: Option<Instant>,
    crashes: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::kubernetes()
    }
}

impl Backoff {
    /// 10 s doubling to 5 min, reset after 10 min of running.
    pub const fn kubernetes() -> Self {
        Self::new(INITIAL_DELAY, MAX_DELAY, RESET_AFTER)
    }

    /// A back-off with custom bounds.
    pub const fn new(initial: Duration, max: Duration, reset_after: Duration) -> Self {
        Self {
            initial,
            max,
            reset_after,
            last_delay: None,
            ready_at: None,
            crashes: 0,
        }
    }

    /// Records an exit at `exited_at` of a container that had run for `ran_for`
    /// and returns how long to wait before restarting it. The restart is then
    /// allowed from [`Backoff::ready_at`].
    pub fn next_delay(&mut self, exited_at: Instant, ran_for: Duration) -> Duration {
        if ran_for >= self.reset_after {
            self.reset();
        }
        let delay = match self.last_delay {
            None => self.initial,
            Some(d) => d.saturating_mul(2).min(self.max),
        }
        .min(self.max);
        self.last_delay = Some(delay);
        self.ready_at = Some(exited_at + delay);
        self.crashes = self.crashes.saturating_add(1);
        delay
    }

    /// When the pending restart may happen; `None` if no exit is recorded.
    pub fn ready_at(&self) -> Option<Instant> {
        self.ready_at
    }

    /// Whether a restart may happen at `now` (true when nothing is pending).
    pub fn is_ready(&self, now: Instant) -> bool {
        self.ready_at.is_none_or(|t| now >= t)
    }

    /// Time left at `now` before the restart may happen.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.ready_at
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }

    /// The delay of the last recorded exit (for the `back-off 40s restarting
    /// failed container` message).
    pub fn current_delay(&self) -> Option<Duration> {
        self.last_delay
    }

    /// Consecutive crashes since the last reset.
    pub fn consecutive_crashes(&self) -> u32 {
        self.crashes
    }

    /// Forgets the crash history.
    pub fn reset(&mut self) {
        self.last_delay = None;
        self.ready_at = None;
        self.crashes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn delays_double_from_10s_and_cap_at_5min() {
        let mut b = Backoff::kubernetes();
        let t0 = Instant::now();
        let got: Vec<u64> = (0..7)
            .map(|i| b.next_delay(t0 + secs(i * 1000), secs(1)).as_secs())
            .collect();
        assert_eq!(got, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.consecutive_crashes(), 7);
        assert_eq!(b.current_delay(), Some(secs(300)));
    }

    #[test]
    fn ready_at_is_exit_plus_delay() {
        let mut b = Backoff::kubernetes();
        let t0 = Instant::now();
        assert_eq!(b.ready_at(), None);
        assert!(b.is_ready(t0));
        b.next_delay(t0, secs(3));
        assert_eq!(b.ready_at(), Some(t0 + secs(10)));
        assert!(!b.is_ready(t0 + secs(9)));
        assert_eq!(b.remaining(t0 + secs(4)), secs(6));
        assert!(b.is_ready(t0 + secs(10)));
        assert_eq!(b.remaining(t0 + secs(11)), Duration::ZERO);
        let t1 = t0 + secs(20);
        b.next_delay(t1, secs(5));
        assert_eq!(b.ready_at(), Some(t1 + secs(20)));
    }

    #[test]
    fn ten_minutes_of_running_resets_the_sequence() {
        let mut b = Backoff::kubernetes();
        let t0 = Instant::now();
        for i in 0..4 {
            b.next_delay(t0 + secs(i * 100), secs(1));
        }
        assert_eq!(b.current_delay(), Some(secs(80)));
        // Just under 10 min of running: still growing.
        assert_eq!(b.next_delay(t0 + secs(2000), secs(599)), secs(160));
        // 10 min of running: back to 10 s.
        assert_eq!(b.next_delay(t0 + secs(3000), secs(600)), secs(10));
        assert_eq!(b.consecutive_crashes(), 1);
        assert_eq!(b.next_delay(t0 + secs(3100), secs(1)), secs(20));
    }

    #[test]
    fn custom_bounds_are_respected() {
        let mut b = Backoff::new(secs(1), secs(3), secs(60));
        let t0 = Instant::now();
        let got: Vec<u64> = (0..4)
            .map(|_| b.next_delay(t0, Duration::ZERO).as_secs())
            .collect();
        assert_eq!(got, [1, 2, 3, 3]);
        b.reset();
        assert_eq!(b.ready_at(), None);
        assert_eq!(b.next_delay(t0, Duration::ZERO), secs(1));
    }
}
