//! Ages as kubectl prints them: `5s`, `3m20s`, `4h10m`, `2d4h`, `3y12d`.

use std::time::{Duration, SystemTime};

/// Age of an object created at `timestamp` (RFC 3339) as seen at `now`;
/// `<unknown>` when the timestamp is missing or unreadable.
pub fn age(timestamp: Option<&str>, now: SystemTime) -> String {
    let Some(created) = timestamp.and_then(parse_time) else {
        return "<unknown>".into();
    };
    match now.duration_since(created) {
        Ok(d) => human_duration(d),
        // Clocks of hub and client disagree by a little: treat as "now".
        Err(e) if e.duration() < Duration::from_secs(2) => "0s".into(),
        Err(_) => "<invalid>".into(),
    }
}

/// Parses an RFC 3339 timestamp such as `2026-11-27T22:56:02Z`.
/// A DURATION column (Jobs, Builds): `status.startTime` to
/// `status.completionTime`, or to now while running; empty before start.
pub fn run_duration(o: &serde_json::Value, now: SystemTime) -> String {
    let at = |p: &str| {
        o.pointer(p)
            .and_then(serde_json::Value::as_str)
            .and_then(parse_time)
    };
    match (at("/status/startTime"), at("/status/completionTime")) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.duration_since(s).unwrap_or_default()),
        (Some(s), Some(e)) => human_duration(e.duration_since(s).unwrap_or_default()),
    }
}

pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim()).ok()
}

/// kubectl's `HumanDuration`: two significant units while they matter.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let dy = days % 365;
        return if dy == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dy}d")
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(secs: u64) -> String {
        human_duration(Duration::from_secs(secs))
    }

    #[test]
    fn matches_kubectl_human_duration() {
        assert_eq!(d(0), "0s");
        assert_eq!(d(5), "5s");
        assert_eq!(d(119), "119s");
        assert_eq!(d(120), "2m");
        assert_eq!(d(200), "3m20s");
        assert_eq!(d(600), "10m");
        assert_eq!(d(179 * 60 + 59), "179m");
        assert_eq!(d(3 * 3600), "3h");
        assert_eq!(d(4 * 3600 + 10 * 60), "4h10m");
        assert_eq!(d(8 * 3600 + 59 * 60), "8h");
        assert_eq!(d(47 * 3600), "47h");
        assert_eq!(d(48 * 3600), "2d");
        assert_eq!(d(52 * 3600), "2d4h");
        assert_eq!(d(10 * 86400 + 3600), "10d");
        assert_eq!(d(800 * 86400), "2y70d");
        assert_eq!(d(9 * 365 * 86400), "9y");
    }

    #[test]
    fn ages_from_timestamps() {
        let now = parse_time("2026-11-27T23:00:00Z").unwrap();
        assert_eq!(age(Some("2026-11-27T22:56:02Z"), now), "3m58s");
        assert_eq!(age(Some("2026-11-25T19:00:00Z"), now), "2d4h");
        assert_eq!(age(Some("2026-11-27T22:59:59.5Z"), now), "0s");
        assert_eq!(age(Some("2026-11-27T23:00:01Z"), now), "0s");
        assert_eq!(age(Some("2026-11-28T00:00:00Z"), now), "<invalid>");
        assert_eq!(age(None, now), "<unknown>");
        assert_eq!(age(Some("yesterday"), now), "<unknown>");
    }
}
