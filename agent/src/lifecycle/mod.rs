//! Pod lifecycle logic without I/O: pure functions from (state, observed, now)
//! to decisions. The reconciler plans with these and then applies the plan
//! through the runtime.
//!
//! - [`backoff`]: CrashLoopBackOff delays.
//! - [`state`]: container states and their `containerStatuses[]` shape.
//! - [`restart`]: `restartPolicy` decisions, init-container sequencing.
//! - [`phase`]: pod phase and conditions, as the kubelet computes them.
//! - [`probe`]: probe scheduling and verdicts; [`probe_exec`] runs one probe.

pub mod backoff;
pub mod phase;
pub mod probe;
pub mod probe_exec;
pub mod restart;
pub mod state;
