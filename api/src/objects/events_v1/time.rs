//! `metav1.MicroTime`, the type of `eventTime` and `series.lastObservedTime`:
//! RFC 3339 with microseconds, written in UTC (`2026-12-06T20:12:26.123456Z`);
//! and `metav1.Time`, the `deprecated*Timestamp`s': whole seconds
//! (`2026-12-06T20:12:26Z`). Clients send other offsets (the Python client
//! writes `+00:00`); the hub stores what Kubernetes would re-encode.

use std::time::{Duration, SystemTime};

use super::Event;

/// `text` (RFC 3339, `Z` or `±hh:mm`, any fraction) as an instant,
/// truncated to microseconds as a MicroTime keeps it.
pub fn instant(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (local, offset_secs) = split_offset(text)?;
    if !local.contains('T') && !local.contains('t') {
        return None;
    }
    let t = humantime::parse_rfc3339_weak(local).ok()?;
    let t = if offset_secs >= 0 {
        t.checked_sub(Duration::from_secs(offset_secs.unsigned_abs()))?
    } else {
        t.checked_add(Duration::from_secs(offset_secs.unsigned_abs()))?
    };
    let since = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    let micros = since.as_micros();
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::new(
                (micros / 1_000_000) as u64,
                ((micros % 1_000_000) * 1000) as u32,
            ),
    )
}

/// `text` as a MicroTime in UTC; `None` when it is not an RFC 3339 time.
pub fn micro_time(text: &str) -> Option<String> {
    instant(text).map(|t| humantime::format_rfc3339_micros(t).to_string())
}

/// `text` as a Time (whole seconds) in UTC; `None` when it is not an RFC
/// 3339 time.
pub fn time(text: &str) -> Option<String> {
    instant(text).map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

/// Rewrites the event's times in UTC; a value that is not a time is left
/// as it is (for validation to refuse, where it checks).
pub fn normalize(event: &mut Event) {
    for t in [
        &mut event.deprecated_first_timestamp,
        &mut event.deprecated_last_timestamp,
    ] {
        if let Some(utc) = t.as_deref().and_then(time) {
            *t = Some(utc);
        }
    }
    if let Some(t) = event.event_time.as_deref().and_then(micro_time) {
        event.event_time = Some(t);
    }
    if let Some(s) = &mut event.series
        && let Some(t) = micro_time(&s.last_observed_time)
    {
        s.last_observed_time = t;
    }
}

/// The local part and the offset east of UTC in seconds.
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Some((local, 0));
    }
    let at = text.len().checked_sub(6)?;
    let (local, offset) = text.split_at_checked(at)?;
    let bytes = offset.as_bytes();
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if bytes[3] != b':' {
        return None;
    }
    let hours: i64 = offset[1..3].parse().ok()?;
    let minutes: i64 = offset[4..6].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((local, sign * (hours * 3600 + minutes * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_fractions_become_utc_microseconds() {
        assert_eq!(
            micro_time("2026-01-02T03:04:05Z").as_deref(),
            Some("2026-01-02T03:04:05.000000Z")
        );
        assert_eq!(
            micro_time("2026-01-02T03:04:05.1234567+00:00").as_deref(),
            Some("2026-01-02T03:04:05.123456Z")
        );
        assert_eq!(
            micro_time("2026-01-02T03:04:05+02:30").as_deref(),
            Some("2026-01-02T00:34:05.000000Z")
        );
        assert_eq!(
            micro_time("2026-01-02T23:00:00-01:00").as_deref(),
            Some("2026-01-03T00:00:00.000000Z")
        );
        assert_eq!(
            instant("2026-01-02T03:04:05.000000Z"),
            instant("2026-01-02T03:04:05+00:00")
        );
        assert_eq!(
            time("2026-01-02T03:04:05.9+00:00").as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
    }

    #[test]
    fn what_is_not_a_time_is_none() {
        for bad in [
            "",
            "yesterday",
            "2026-01-02",
            "2026-01-02T03:04:05+2",
            "12:00:00Z",
        ] {
            assert_eq!(micro_time(bad), None, "{bad}");
        }
    }
}
