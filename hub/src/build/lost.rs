//! When a build's node is lost: a node whose `Ready` condition has not been
//! `True` for the node eviction timeout (`--node-eviction-timeout`, the
//! wait after which its pods are evicted too) no longer holds its build
//! jobs; the controller plans each such platform again on another Ready
//! node (the steps the lost node finished and reported are cache hits
//! there only if it pushed them; the rest run again), or fails it saying
//! why. Pure: [`lost_for`] reads the node as stored.

use std::time::{Duration, SystemTime};

use bramble_api::objects::Node;
use bramble_api::objects::common::find_condition;

/// How long `node` has been not Ready (`None`: it is Ready, or its
/// condition carries no time yet).
pub fn lost_for(node: &Node, now: SystemTime) -> Option<Duration> {
    let ready = find_condition(&node.status.as_ref()?.conditions, "Ready")?;
    if ready.status == "True" {
        return None;
    }
    let since = humantime::parse_rfc3339(ready.last_transition_time.as_deref()?).ok()?;
    Some(now.duration_since(since).unwrap_or_default())
}

/// Whether a job on `node` is to be planned elsewhere at `now`.
pub fn is_lost(node: &Node, after: Duration, now: SystemTime) -> bool {
    lost_for(node, now).is_some_and(|d| d >= after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(status: &str, since: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-1"},
            "status": {"conditions": [{"type": "Ready", "status": status,
                "lastTransitionTime": since}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_node_is_lost_once_not_ready_for_the_eviction_timeout() {
        let now = humantime::parse_rfc3339("2026-12-07T12:01:00Z").unwrap();
        let minute = Duration::from_secs(60);
        assert!(!is_lost(&node("True", "2026-12-07T11:00:00Z"), minute, now));
        assert!(!is_lost(
            &node("Unknown", "2026-12-07T12:00:30Z"),
            minute,
            now
        ));
        assert!(is_lost(
            &node("Unknown", "2026-12-07T12:00:00Z"),
            minute,
            now
        ));
        assert!(is_lost(&node("False", "2026-12-07T11:00:00Z"), minute, now));
        assert_eq!(
            lost_for(&node("Unknown", "2026-12-07T12:00:30Z"), now),
            Some(Duration::from_secs(30))
        );
    }
}
