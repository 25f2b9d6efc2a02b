//! How often a refused message is worth a warning: a revoked board, or
//! someone publishing forgeries every second, must not fill the hub's log.
//! The first refusal per topic node and reason within [`WINDOW`] is a
//! warning (with how many were quieted since), the rest are debug lines.
//! Memory is bounded: at most [`MAX_KEYS`] keys are remembered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One warning per key this often at most.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Keys remembered at most.
pub const MAX_KEYS: usize = 1024;

/// See the module docs.
#[derive(Debug, Default)]
pub struct Quiet {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Quiet {
    /// `Some(quieted since the last warning)` when `key` deserves a warning
    /// at `now`, `None` when it was warned about within [`WINDOW`].
    pub fn warn(&self, key: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, quieted)) = seen.get_mut(key) {
            if now.duration_since(*at) < WINDOW {
                *quieted += 1;
                return None;
            }
            let n = *quieted;
            *at = now;
            *quieted = 0;
            return Some(n);
        }
        if seen.len() >= MAX_KEYS {
            seen.retain(|_, (at, _)| now.duration_since(*at) < WINDOW);
            if seen.len() >= MAX_KEYS {
                return None;
            }
        }
        seen.insert(key.to_string(), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_key_and_window_and_bounded_memory() {
        let q = Quiet::default();
        let t0 = Instant::now();
        assert_eq!(q.warn("pi-1 unknown", t0), Some(0));
        assert_eq!(q.warn("pi-1 unknown", t0 + Duration::from_secs(1)), None);
        assert_eq!(q.warn("pi-1 unknown", t0 + Duration::from_secs(2)), None);
        assert_eq!(q.warn("pi-2 unknown", t0), Some(0));
        assert_eq!(q.warn("pi-1 unknown", t0 + WINDOW), Some(2));
        for i in 0..MAX_KEYS {
            q.warn(&format!("k{i}"), t0);
        }
        assert_eq!(q.warn("one too many", t0), None);
        assert_eq!(
            q.warn("one too many", t0 + WINDOW),
            Some(0),
            "old keys make room"
        );
    }
}
