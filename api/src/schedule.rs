//! CronJob schedules: standard 5-field cron syntax or a descriptor
//! (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`,
//! `@hourly`), evaluated in an IANA time zone (UTC without one), as
//! Kubernetes' CronJob controller reads `spec.schedule` and `spec.timeZone`.
//! Parsing is the `croner` crate's (Vixie cron semantics: day-of-month and
//! day-of-week are OR-ed when both are restricted); it also accepts `L`,
//! `#` and `W`, which Kubernetes refuses, but not `@every`.
//! Only with the `cron` feature (the hub's).

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Why a schedule or time zone is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unparseable schedule {schedule:?}: {reason}")]
    Syntax { schedule: String, reason: String },
    #[error("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")]
    TimeZoneInSchedule,
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
}

const DESCRIPTORS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// A parsed `schedule` in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

/// Parses an IANA time zone name (`Europe/Paris`; `UTC`, `Etc/UTC`).
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}

impl Schedule {
    /// Parses `schedule` for `time_zone` (UTC when `None`).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let s = schedule.trim();
        if s.starts_with("TZ=") || s.starts_with("CRON_TZ=") {
            return Err(ScheduleError::TimeZoneInSchedule);
        }
        let syntax = |reason: String| ScheduleError::Syntax {
            schedule: schedule.to_string(),
            reason,
        };
        if s.starts_with('@') {
            if !DESCRIPTORS.contains(&s.to_ascii_lowercase().as_str()) {
                return Err(syntax(format!("unrecognized descriptor: {s}")));
            }
        } else if s.split_whitespace().count() != 5 {
            return Err(syntax(format!(
                "expected exactly 5 fields, found {}",
                s.split_whitespace().count()
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(s)
            .map_err(|e| syntax(e.to_string()))?;
        let zone = match time_zone {
            Some(z) => parse_time_zone(z)?,
            None => Tz::UTC,
        };
        Ok(Schedule { cron, zone })
    }

    /// The latest scheduled time in `(after, until]`, if any, and how many
    /// there were (capped at `cap`: Kubernetes stops counting at 100).
    pub fn most_recent(
        &self,
        after: SystemTime,
        until: SystemTime,
        cap: usize,
    ) -> (Option<SystemTime>, usize) {
        let Some(until_z) = to_zoned(until, self.zone) else {
            return (None, 0);
        };
        let Ok(latest) = self.cron.find_previous_occurrence(&until_z, true) else {
            return (None, 0);
        };
        let latest = from_zoned(&latest);
        if latest <= after {
            return (None, 0);
        }
        // Count from `after` forward, to tell one missed run from many.
        let mut count = 0;
        if let Some(mut t) = to_zoned(after, self.zone) {
            while count < cap {
                match self.cron.find_next_occurrence(&t, false) {
                    Ok(n) if from_zoned(&n) <= until => {
                        count += 1;
                        t = n;
                    }
                    _ => break,
                }
            }
        }
        (Some(latest), count.max(1))
    }

    /// The first scheduled time after `t`.
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        let z = to_zoned(t, self.zone)?;
        self.cron
            .find_next_occurrence(&z, false)
            .ok()
            .map(|n| from_zoned(&n))
    }
}

fn to_zoned(t: SystemTime, zone: Tz) -> Option<DateTime<Tz>> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    let secs = i64::try_from(d.as_secs()).ok()?;
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|u| u.with_timezone(&zone))
}

fn from_zoned(t: &DateTime<Tz>) -> SystemTime {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn five_fields_or_a_descriptor() {
        assert!(Schedule::parse("*/1 * * * *", None).is_ok());
        assert!(Schedule::parse("@hourly", None).is_ok());
        assert!(Schedule::parse("0 0 * * MON", Some("Europe/Paris")).is_ok());
        assert!(matches!(
            Schedule::parse("0 * * * * *", None),
            Err(ScheduleError::Syntax { .. })
        ));
        assert!(matches!(
            Schedule::parse("61 * * * *", None),
            Err(ScheduleError::Syntax { .. })
        ));
        assert!(matches!(
            Schedule::parse("@fortnightly", None),
            Err(ScheduleError::Syntax { .. })
        ));
        assert_eq!(
            Schedule::parse("TZ=UTC 0 * * * *", None).unwrap_err(),
            ScheduleError::TimeZoneInSchedule
        );
        assert_eq!(
            Schedule::parse("0 * * * *", Some("Mars/Olympus")).unwrap_err(),
            ScheduleError::UnknownTimeZone("Mars/Olympus".into())
        );
    }

    #[test]
    fn the_most_recent_time_and_how_many_were_missed() {
        let s = Schedule::parse("*/5 * * * *", None).unwrap();
        // 00:00 .. 00:17 after 00:01: 05, 10, 15.
        let (t, n) = s.most_recent(at(60), at(17 * 60), 100);
        assert_eq!((t, n), (Some(at(15 * 60)), 3));
        // Nothing in (00:15, 00:17].
        assert_eq!(s.most_recent(at(15 * 60), at(17 * 60), 100), (None, 0));
        assert_eq!(s.next_after(at(15 * 60)), Some(at(20 * 60)));
    }

    #[test]
    fn the_time_zone_moves_the_hour() {
        // 09:00 in Paris (winter, UTC+1) is 08:00 UTC.
        let s = Schedule::parse("0 9 * * *", Some("Europe/Paris")).unwrap();
        let (t, _) = s.most_recent(at(0), at(86_400), 100);
        assert_eq!(t, Some(at(8 * 3600)));
    }
}
