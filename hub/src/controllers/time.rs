//! RFC 3339 timestamps as the store writes them (`2024-05-01T10:00:00Z`).

use std::time::{Duration, SystemTime};

/// Parses a timestamp; `None` when absent or malformed.
pub(crate) fn parse(ts: Option<&str>) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(ts?).ok()
}

/// Formats `t` to whole seconds.
pub(crate) fn format(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether `since + after <= now` (false when `since` is unknown).
pub(crate) fn elapsed(since: Option<SystemTime>, after: Duration, now: SystemTime) -> bool {
    since.is_some_and(|s| s + after <= now)
}
