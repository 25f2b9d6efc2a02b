//! Back-off for the control loop's failed actions, per action (its
//! description names the object and what is done to it), as client-go's
//! per-item rate limiter does for a workqueue: an action that failed is not
//! tried again before its delay — 1 s, doubling with each failure in a row
//! up to 5 min — while every other action goes on; one that succeeds, or
//! is planned no more, is forgotten. Pure: the caller says what time it is.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The first delay after a failure.
pub const FIRST: Duration = Duration::from_secs(1);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(300);

/// Failed actions and when each may be tried again.
#[derive(Debug, Default)]
pub struct Backoff {
    failing: BTreeMap<String, (u32, Instant)>,
}

impl Backoff {
    /// Whether `key` must wait at `now`.
    pub fn waits(&self, key: &str, now: Instant) -> bool {
        self.failing.get(key).is_some_and(|(_, at)| now < *at)
    }

    /// `key` failed at `now`: the delay before it is tried again.
    pub fn failed(&mut self, key: &str, now: Instant) -> Duration {
        let failures = self.failing.get(key).map_or(0, |(n, _)| *n);
        let delay = FIRST
            .checked_mul(1u32.checked_shl(failures).unwrap_or(u32::MAX))
            .unwrap_or(MAX)
            .min(MAX);
        self.failing
            .insert(key.to_string(), (failures.saturating_add(1), now + delay));
        delay
    }

    /// `key` succeeded: forgotten.
    pub fn succeeded(&mut self, key: &str) {
        self.failing.remove(key);
    }

    /// Keeps only the keys `planned` still holds (a plan that no longer
    /// asks for an action forgets its failures).
    pub fn retain(&mut self, planned: &std::collections::BTreeSet<String>) {
        self.failing.retain(|k, _| planned.contains(k));
    }

    /// How many actions are waiting.
    pub fn len(&self) -> usize {
        self.failing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_up_to_the_cap_and_success_forgets() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(!b.waits("create pod a", t0));
        let delays: Vec<u64> = (0..12)
            .map(|_| b.failed("create pod a", t0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert!(b.waits("create pod a", t0 + Duration::from_secs(299)));
        assert!(!b.waits("create pod a", t0 + MAX));
        assert!(!b.waits("create pod b", t0), "others go on");
        b.succeeded("create pod a");
        assert!(!b.waits("create pod a", t0));
        assert_eq!(b.failed("create pod a", t0), FIRST, "from the start again");
        b.retain(&std::collections::BTreeSet::new());
        assert!(b.is_empty());
    }
}
