//! Waiting for an observable outcome: the one polling loop of Bramble's
//! tests, used by every crate's tests ([`eventually`], its async twin
//! [`eventually_async`] for tests that run inside tokio, and
//! [`try_eventually`] for callers that add their own evidence to the
//! failure).
//!
//! A deadline turns a hang into a failure that says what was awaited and
//! what the check saw last; it is not a timing assertion (how long the wait
//! took is never checked). The check says what it saw by returning a
//! [`Poll`]: `Err(observation)` is remembered and printed when the deadline
//! passes, `None` and `false` just mean "not yet".
//!
//! Checks run at once, then after 5 ms, 10 ms, ... up to every 100 ms, and
//! never more often than every time the last check took (so a check that
//! spawns `kubectl` uses at most half a core), with a last check at the
//! deadline.

use std::fmt::{self, Display};
use std::time::{Duration, Instant};

/// The first pause between two checks; each next one doubles it, up to
/// [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(5);
/// The longest pause between two checks (unless a check takes longer).
const POLL_MAX: Duration = Duration::from_millis(100);

/// What one check of a wait returns: ready (with a value), or not yet (with
/// what it saw, when it says).
pub trait Poll {
    /// What the wait returns once the check holds.
    type Ready;
    /// `Ok` when the check holds, else what it observed (if anything).
    fn ready(self) -> Result<Self::Ready, Option<String>>;
}

impl Poll for bool {
    type Ready = ();
    fn ready(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Poll for Option<T> {
    type Ready = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

/// `Err(observation)`: not yet, and this is what the check saw.
impl<T, E: Display> Poll for Result<T, E> {
    type Ready = T;
    fn ready(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// A wait whose deadline passed.
#[derive(Debug, Clone)]
pub struct TimedOut {
    /// How long it waited.
    pub waited: Duration,
    /// How many times the check ran.
    pub checks: u32,
    /// What the last check that said anything observed.
    pub last: Option<String>,
}

impl Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "after {:?} ({} checks); ", self.waited, self.checks)?;
        match &self.last {
            Some(last) => write!(f, "last observation: {last}"),
            None => write!(f, "the check never held (it reports no observation)"),
        }
    }
}

/// The pauses between checks and the bookkeeping of one wait.
struct Schedule {
    start: Instant,
    deadline: Instant,
    pause: Duration,
    checks: u32,
    last: Option<String>,
}

impl Schedule {
    fn new(deadline: Duration) -> Schedule {
        let start = Instant::now();
        Schedule {
            start,
            deadline: start + deadline,
            pause: POLL_FIRST,
            checks: 0,
            last: None,
        }
    }

    /// Records a check that started at `began` and did not hold; returns
    /// how long to sleep before the next one, or the timeout.
    fn not_yet(&mut self, began: Instant, seen: Option<String>) -> Result<Duration, TimedOut> {
        if seen.is_some() {
            self.last = seen;
        }
        let now = Instant::now();
        if began >= self.deadline {
            return Err(TimedOut {
                waited: now - self.start,
                checks: self.checks,
                last: self.last.take(),
            });
        }
        let pause = self.pause.max(now - began);
        self.pause = (self.pause * 2).min(POLL_MAX);
        // One last check at the deadline.
        Ok(pause.min(self.deadline.saturating_duration_since(now)))
    }
}

/// Runs `check` until it holds or `deadline` passed; `Err` says how long it
/// waited and what the check saw last. For callers that add evidence of
/// their own to the failure (a console, a log); others use [`eventually`].
pub fn try_eventually<P: Poll>(
    deadline: Duration,
    mut check: impl FnMut() -> P,
) -> Result<P::Ready, TimedOut> {
    let mut schedule = Schedule::new(deadline);
    loop {
        let began = Instant::now();
        schedule.checks += 1;
        match check().ready() {
            Ok(v) => return Ok(v),
            Err(seen) => std::thread::sleep(schedule.not_yet(began, seen)?),
        }
    }
}

/// Runs `check` until it holds and returns what it gave; panics naming
/// `what` and the last observation once `deadline` passed.
///
/// ```
/// # use std::time::Duration;
/// let mut n = 0;
/// let seen = bramble_tests::eventually("the third try", Duration::from_secs(5), || {
///     n += 1;
///     if n == 3 { Ok(n) } else { Err(format!("try {n}")) }
/// });
/// assert_eq!(seen, 3);
/// ```
#[track_caller]
pub fn eventually<P: Poll>(
    what: impl Display,
    deadline: Duration,
    check: impl FnMut() -> P,
) -> P::Ready {
    match try_eventually(deadline, check) {
        Ok(v) => v,
        Err(t) => panic!("timed out waiting for {what} {t}"),
    }
}

/// [`try_eventually`] inside tokio: sleeps with tokio's timer, so the tasks
/// of the test's own runtime (the server under test) keep running.
pub async fn try_eventually_async<P: Poll>(
    deadline: Duration,
    mut check: impl AsyncFnMut() -> P,
) -> Result<P::Ready, TimedOut> {
    let mut schedule = Schedule::new(deadline);
    loop {
        let began = Instant::now();
        schedule.checks += 1;
        match check().await.ready() {
            Ok(v) => return Ok(v),
            Err(seen) => tokio::time::sleep(schedule.not_yet(began, seen)?).await,
        }
    }
}

/// [`eventually`] inside tokio (a sync check is written `async || ...`).
pub async fn eventually_async<P: Poll>(
    what: impl Display,
    deadline: Duration,
    check: impl AsyncFnMut() -> P,
) -> P::Ready {
    match try_eventually_async(deadline, check).await {
        Ok(v) => v,
        Err(t) => panic!("timed out waiting for {what} {t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_what_the_check_gave_once_it_holds() {
        let mut n = 0;
        let got = eventually("n to reach 3", Duration::from_secs(10), || {
            n += 1;
            (n == 3).then_some(n * 10)
        });
        assert_eq!((got, n), (30, 3));
    }

    #[test]
    fn a_timeout_names_what_was_awaited_and_the_last_observation() {
        let failure = std::panic::catch_unwind(|| {
            let mut n = 0;
            eventually("the impossible", Duration::from_millis(50), || {
                n += 1;
                Err::<(), _>(format!("seen {n}"))
            })
        })
        .expect_err("the check never holds");
        let message = failure.downcast_ref::<String>().expect("a formatted panic");
        assert!(
            message.starts_with("timed out waiting for the impossible after "),
            "{message}"
        );
        let checks: u32 = message
            .split(" checks)")
            .next()
            .and_then(|s| s.rsplit('(').next())
            .and_then(|n| n.parse().ok())
            .expect("the number of checks");
        assert!(checks >= 2, "{message}");
        assert!(
            message.ends_with(&format!("last observation: seen {checks}")),
            "{message}"
        );
    }

    #[test]
    fn a_silent_check_says_it_never_held() {
        let t = try_eventually(Duration::ZERO, || false).expect_err("never holds");
        assert_eq!(t.checks, 1, "a zero deadline still checks once");
        assert!(
            t.to_string()
                .ends_with("the check never held (it reports no observation)")
        );
    }

    #[test]
    fn the_async_twin_lets_the_runtime_run_what_it_waits_for() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = tokio::sync::watch::channel(0);
            tokio::spawn(async move {
                for i in 1..=3 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    tx.send(i).unwrap();
                }
                // keep the sender until the waiter saw the last value
                tx.closed().await;
            });
            let seen = eventually_async("the third value", Duration::from_secs(10), async || {
                let v = *rx.borrow();
                if v == 3 { Ok(v) } else { Err(v) }
            })
            .await;
            assert_eq!(seen, 3);
        });
    }
}
