//! Probe scheduling and verdicts with Kubernetes semantics.
//!
//! A [`ProbeTracker`] follows one probe of one container instance: it says
//! when the next probe is due and turns single results into a verdict through
//! `successThreshold` / `failureThreshold`. [`ContainerProbes`] combines the
//! three probes: the startup probe holds liveness and readiness until it
//! succeeds, a failed liveness (or startup) verdict asks for a restart, and
//! readiness gives the `ready` flag. Running a probe is [`super::probe_exec`].

use std::time::{Duration, Instant};

use bramble_api::objects::container::Container;
use bramble_api::objects::probe::Probe;
pub use bramble_api::objects::probe::ProbeKind;

/// The timing and thresholds of a probe, with Kubernetes' defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Default for ProbeTiming {
    fn default() -> Self {
        Self {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }
}

impl ProbeTiming {
    /// From the API fields; unset or non-positive values take the defaults
    /// (timeout 1 s, period 10 s, success 1, failure 3, no initial delay).
    pub fn from_probe(p: &Probe) -> Self {
        let d = Self::default();
        let secs = |v: Option<i32>, default: Duration| match v {
            Some(s) if s > 0 => Duration::from_secs(s.unsigned_abs().into()),
            _ => default,
        };
        let count = |v: Option<i32>, default: u32| match v {
            Some(n) if n > 0 => n.unsigned_abs(),
            _ => default,
        };
        Self {
            initial_delay: secs(p.initial_delay_seconds, d.initial_delay),
            period: secs(p.period_seconds, d.period),
            timeout: secs(p.timeout_seconds, d.timeout),
            success_threshold: count(p.success_threshold, d.success_threshold),
            failure_threshold: count(p.failure_threshold, d.failure_threshold),
        }
    }
}

/// The result of running a probe once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
    /// The probe could not be run (agent-side error): ignored, as the kubelet
    /// throws such results away.
    Unknown,
}

/// One probe of one container instance.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    kind: ProbeKind,
    timing: ProbeTiming,
    next_due: Option<Instant>,
    /// The current verdict: `true` = success.
    verdict: bool,
    last: Option<ProbeResult>,
    run: u32,
}

impl ProbeTracker {
    /// A tracker for a container instance started at `started_at`. Until the
    /// thresholds say otherwise, liveness passes and readiness and startup
    /// fail (the kubelet's initial values).
    pub fn new(kind: ProbeKind, timing: ProbeTiming, started_at: Instant) -> Self {
        Self {
            kind,
            timing,
            next_due: Some(started_at + timing.initial_delay),
            verdict: kind == ProbeKind::Liveness,
            last: None,
            run: 0,
        }
    }

    /// Which probe this is.
    pub fn kind(&self) -> ProbeKind {
        self.kind
    }

    /// Its timing.
    pub fn timing(&self) -> ProbeTiming {
        self.timing
    }

    /// When the next probe is due; `None` once it stopped probing (a failed
    /// liveness/startup verdict waits for the restart, a passed startup probe
    /// is done).
    pub fn next_due(&self) -> Option<Instant> {
        self.next_due
    }

    /// Whether a probe should run at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_due.is_some_and(|t| now >= t)
    }

    /// The current verdict (`true` = passing).
    pub fn verdict(&self) -> bool {
        self.verdict
    }

    /// Feeds the result of a probe that ran at `at`. Returns the new verdict
    /// when it changed.
    pub fn record(&mut self, result: ProbeResult, at: Instant) -> Option<bool> {
        self.next_due?;
        self.next_due = Some(at + self.timing.period);
        if result == ProbeResult::Unknown {
            return None;
        }
        if self.last == Some(result) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(result);
            self.run = 1;
        }
        let success = result == ProbeResult::Success;
        let threshold = if success {
            self.timing.success_threshold
        } else {
            self.timing.failure_threshold
        };
        if self.run < threshold {
            return None;
        }
        let changed = self.verdict != success;
        self.verdict = success;
        let stop = match self.kind {
            ProbeKind::Liveness => !success,
            ProbeKind::Startup => true,
            ProbeKind::Readiness => false,
        };
        if stop {
            self.next_due = None;
            self.run = 0;
        }
        changed.then_some(success)
    }

    /// Pushes the next probe to no earlier than `at` (used when the startup
    /// probe releases liveness and readiness).
    fn not_before(&mut self, at: Instant) {
        if let Some(t) = &mut self.next_due {
            *t = (*t).max(at);
        }
    }
}

/// What the probes ask of the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAction {
    None,
    /// Kill the container; the restart policy decides what follows.
    Restart(ProbeKind),
}

/// The probes of one container instance.
#[derive(Debug, Clone, Default)]
pub struct ContainerProbes {
    pub startup: Option<ProbeTracker>,
    pub liveness: Option<ProbeTracker>,
    pub readiness: Option<ProbeTracker>,
}

impl ContainerProbes {
    /// Trackers for the probes `container` declares, for an instance started
    /// at `started_at`.
    pub fn for_container(container: &Container, started_at: Instant) -> Self {
        let make = |p: &Option<Probe>, kind| {
            p.as_ref()
                .map(|p| ProbeTracker::new(kind, ProbeTiming::from_probe(p), started_at))
        };
        Self {
            startup: make(&container.startup_probe, ProbeKind::Startup),
            liveness: make(&container.liveness_probe, ProbeKind::Liveness),
            readiness: make(&container.readiness_probe, ProbeKind::Readiness),
        }
    }

    /// `started`: no startup probe, or it passed.
    pub fn started(&self) -> bool {
        self.startup.as_ref().is_none_or(ProbeTracker::verdict)
    }

    /// `ready`: started, and no readiness probe or it passes.
    pub fn ready(&self) -> bool {
        self.started() && self.readiness.as_ref().is_none_or(ProbeTracker::verdict)
    }

    /// A restart when the liveness or the startup verdict failed.
    pub fn action(&self) -> ProbeAction {
        let failed = |t: &Option<ProbeTracker>| t.as_ref().is_some_and(|t| !t.verdict());
        if self
            .startup
            .as_ref()
            .is_some_and(|t| t.next_due().is_none())
            && failed(&self.startup)
        {
            ProbeAction::Restart(ProbeKind::Startup)
        } else if failed(&self.liveness) {
            ProbeAction::Restart(ProbeKind::Liveness)
        } else {
            ProbeAction::None
        }
    }

    fn trackers(&self) -> impl Iterator<Item = &ProbeTracker> {
        let gated = !self.started();
        self.startup.iter().chain(
            self.liveness
                .iter()
                .chain(self.readiness.iter())
                .filter(move |_| !gated),
        )
    }

    /// The probes due at `now`, startup first; liveness and readiness wait
    /// for the startup probe.
    pub fn due(&self, now: Instant) -> Vec<ProbeKind> {
        self.trackers()
            .filter(|t| t.is_due(now))
            .map(ProbeTracker::kind)
            .collect()
    }

    /// When the agent should next wake up for these probes.
    pub fn next_wake(&self) -> Option<Instant> {
        self.trackers().filter_map(ProbeTracker::next_due).min()
    }

    /// Feeds a result of probe `kind` run at `at`. Returns the new verdict of
    /// that probe when it changed.
    pub fn record(&mut self, kind: ProbeKind, result: ProbeResult, at: Instant) -> Option<bool> {
        let tracker = match kind {
            ProbeKind::Startup => &mut self.startup,
            ProbeKind::Liveness => &mut self.liveness,
            ProbeKind::Readiness => &mut self.readiness,
        };
        let changed = tracker.as_mut()?.record(result, at);
        if kind == ProbeKind::Startup && changed == Some(true) {
            for t in [&mut self.liveness, &mut self.readiness]
                .into_iter()
                .flatten()
            {
                t.not_before(at);
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProbeResult::{Failure, Success, Unknown};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn timing(initial: u64, period: u64, success: u32, failure: u32) -> ProbeTiming {
        ProbeTiming {
            initial_delay: secs(initial),
            period: secs(period),
            timeout: secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn timing_defaults_follow_kubernetes() {
        let t = ProbeTiming::from_probe(&Probe::default());
        assert_eq!(t, ProbeTiming::default());
        assert_eq!(
            (t.period, t.timeout, t.failure_threshold),
            (secs(10), secs(1), 3)
        );
        let p = Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(2),
            timeout_seconds: Some(0),
            success_threshold: Some(2),
            failure_threshold: Some(1),
            ..Default::default()
        };
        assert_eq!(ProbeTiming::from_probe(&p), timing(5, 2, 2, 1));
    }

    #[test]
    fn first_probe_waits_for_initial_delay_then_every_period() {
        let t0 = Instant::now();
        let mut r = ProbeTracker::new(ProbeKind::Readiness, timing(5, 3, 1, 3), t0);
        assert_eq!(r.next_due(), Some(t0 + secs(5)));
        assert!(!r.is_due(t0 + secs(4)));
        assert!(r.is_due(t0 + secs(5)));
        assert!(!r.verdict(), "readiness starts failing");
        assert_eq!(r.record(Success, t0 + secs(5)), Some(true));
        assert_eq!(r.next_due(), Some(t0 + secs(8)));
        // An agent-side error is thrown away but still reschedules.
        assert_eq!(r.record(Unknown, t0 + secs(8)), None);
        assert!(r.verdict());
        assert_eq!(r.next_due(), Some(t0 + secs(11)));
    }

    #[test]
    fn thresholds_need_consecutive_results() {
        let t0 = Instant::now();
        let mut r = ProbeTracker::new(ProbeKind::Readiness, timing(0, 1, 2, 3), t0);
        assert_eq!(r.record(Success, t0), None);
        assert!(!r.verdict());
        assert_eq!(r.record(Success, t0 + secs(1)), Some(true));
        assert_eq!(r.record(Failure, t0 + secs(2)), None);
        assert_eq!(r.record(Failure, t0 + secs(3)), None);
        // A success in between restarts the failure count.
        assert_eq!(r.record(Success, t0 + secs(4)), None);
        assert_eq!(r.record(Failure, t0 + secs(5)), None);
        assert_eq!(r.record(Failure, t0 + secs(6)), None);
        assert!(r.verdict());
        assert_eq!(r.record(Failure, t0 + secs(7)), Some(false));
        // Readiness keeps probing after failing.
        assert_eq!(r.next_due(), Some(t0 + secs(8)));
    }

    #[test]
    fn liveness_failure_asks_for_restart_and_stops_probing() {
        let t0 = Instant::now();
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "image": "busybox",
            "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 2, "failureThreshold": 2}
        }))
        .unwrap();
        let mut p = ContainerProbes::for_container(&c, t0);
        assert!(p.ready() && p.started(), "no readiness/startup probe");
        assert_eq!(p.action(), ProbeAction::None);
        assert_eq!(p.due(t0), [ProbeKind::Liveness]);
        p.record(ProbeKind::Liveness, Failure, t0);
        assert_eq!(p.action(), ProbeAction::None);
        assert_eq!(p.next_wake(), Some(t0 + secs(2)));
        assert_eq!(
            p.record(ProbeKind::Liveness, Failure, t0 + secs(2)),
            Some(false)
        );
        assert_eq!(p.action(), ProbeAction::Restart(ProbeKind::Liveness));
        assert_eq!(p.next_wake(), None);
        assert!(p.due(t0 + secs(100)).is_empty());
    }

    #[test]
    fn startup_probe_gates_liveness_and_readiness() {
        let t0 = Instant::now();
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "image": "busybox",
            "startupProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1, "failureThreshold": 30},
            "livenessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 10},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}
        }))
        .unwrap();
        let mut p = ContainerProbes::for_container(&c, t0);
        assert!(!p.started() && !p.ready());
        assert_eq!(p.due(t0 + secs(20)), [ProbeKind::Startup]);
        for i in 0..3 {
            assert_eq!(p.record(ProbeKind::Startup, Failure, t0 + secs(i)), None);
        }
        assert_eq!(p.next_wake(), Some(t0 + secs(3)));
        assert_eq!(
            p.record(ProbeKind::Startup, Success, t0 + secs(3)),
            Some(true)
        );
        assert!(p.started());
        assert!(!p.ready(), "readiness has not passed yet");
        // Both released at once, the startup probe is done.
        assert_eq!(
            p.due(t0 + secs(3)),
            [ProbeKind::Liveness, ProbeKind::Readiness]
        );
        assert_eq!(
            p.record(ProbeKind::Readiness, Success, t0 + secs(3)),
            Some(true)
        );
        assert!(p.ready());
        p.record(ProbeKind::Liveness, Success, t0 + secs(3));
        assert_eq!(p.next_wake(), Some(t0 + secs(8)));
        assert_eq!(p.action(), ProbeAction::None);
    }

    #[test]
    fn startup_probe_failure_asks_for_restart() {
        let t0 = Instant::now();
        let mut p = ContainerProbes {
            startup: Some(ProbeTracker::new(
                ProbeKind::Startup,
                timing(0, 1, 1, 2),
                t0,
            )),
            ..Default::default()
        };
        p.record(ProbeKind::Startup, Failure, t0);
        assert_eq!(p.action(), ProbeAction::None);
        p.record(ProbeKind::Startup, Failure, t0 + secs(1));
        assert_eq!(p.action(), ProbeAction::Restart(ProbeKind::Startup));
        assert!(!p.started());
    }
}
