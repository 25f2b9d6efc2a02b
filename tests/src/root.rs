//! Tests that need root (network namespaces, mounts, containers) fail
//! without it, with one message that says so: they never pass silently.
//! CI runs as root (`.ci/run`, `scripts/test`).

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    geteuid() == 0
}

/// Panics unless this process runs as root; `needs` says what for (such as
/// "network namespaces" or "containers").
#[track_caller]
pub fn require_root(needs: &str) {
    assert!(
        is_root(),
        "this test needs root (it creates {needs}): run it as root, as CI does"
    );
}

#[allow(unsafe_code)]
fn geteuid() -> libc::uid_t {
    // SAFETY: geteuid(2) always succeeds and touches no memory of ours.
    unsafe { libc::geteuid() }
}
