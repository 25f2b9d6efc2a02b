//! `status` (agent → hub, `nodes/{node}/status`, QoS 1, not retained): the
//! heartbeat. Every status is complete (all pods on the node), so a lost one
//! costs nothing but staleness. Lenient: unknown fields are ignored (a newer
//! agent's extra facts are safe to not read), and `PodStatus` is lenient too.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::names;
use crate::objects::pod_status::PodStatus;

use super::desired::Generation;
use super::envelope::Message;

/// Limit of an encoded `status` (about 1,500 pods with usage).
pub const MAX_STATUS_BYTES: usize = 1024 * 1024;

/// One heartbeat of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The agent session (see `hello`); `seq` restarts with each session.
    pub session: String,
    /// Increases by one per status within a session; duplicates and reordering
    /// (QoS 1 redelivery) are detected with it.
    pub seq: u64,
    /// Monotonic milliseconds since the session started: the time base of the
    /// usage counters, immune to the board's clock (many have no RTC).
    pub uptime_millis: u64,
    /// The newest `desired` generation the agent has accepted and is
    /// converging to; absent before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<Generation>,
    /// Set when the newest `desired` received was refused (bad payload,
    /// invalid pods): the hub records it and stops republishing that generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_rejected: Option<Rejection>,
    /// Every pod the agent runs or knows, desired or not (a pod no longer
    /// desired stays listed until it is stopped).
    #[serde(default)]
    pub pods: Vec<PodReport>,
    /// Whole-node usage, when sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_usage: Option<Usage>,
    /// The session uptime (ms) at which the usage in this status was
    /// sampled: statuses repeat the last sample between samples, and rates
    /// need the sample's own time. Absent: `uptimeMillis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_sampled_millis: Option<u64>,
    /// The highest `rpcRequest.seq` the agent accepted in this session: a
    /// restarted hub numbers its next requests above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_seq: Option<u64>,
    /// The volumes of the applied set's `reclaim` whose directories are
    /// gone (deleted now or before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reclaimed: Vec<String>,
    /// Bytes each `local-path` volume on the node holds, from the last
    /// measurement (about once a minute).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_usage: BTreeMap<String, u64>,
    /// The build jobs of the applied set, and finished ones until they
    /// leave it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<super::build::BuildReport>,
}

/// Why a desired set was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    /// Absent when the payload was too broken to read one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<Generation>,
    pub reason: String,
}

/// A pod's identity on the wire: namespace, name and uid (a pod recreated
/// under the same name is another pod).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// The observed state of one pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodReport {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub status: PodStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<PodUsage>,
    /// The images this pod waited for while they were pulled (none: every
    /// image was on the node), from which the hub records the kubelet's
    /// `Pulling` and `Pulled` events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pulls: Vec<ImagePull>,
}

/// One image a pod waited for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagePull {
    /// As written in the pod spec.
    pub image: String,
    /// How long the pod waited for it; absent while the pull runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis: Option<u64>,
    /// The image's size in bytes (config and layers), once pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Cumulative CPU time and current memory of a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// CPU time consumed since the cgroup was created, in nanoseconds; the hub
    /// derives a rate from two samples and their `uptimeMillis`.
    pub cpu_nanos: u64,
    /// Working set (usage minus inactive file cache), in bytes.
    pub memory_bytes: u64,
}

/// A pod's usage: the pod cgroup's total and each container's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodUsage {
    pub cpu_nanos: u64,
    pub memory_bytes: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerUsage>,
}

/// One container's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_nanos: u64,
    pub memory_bytes: u64,
}

impl PodReport {
    /// The pod's key.
    pub fn key(&self) -> PodKey {
        PodKey {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }
}

impl Message for Status {
    const TYPE: &'static str = "status";
    const MAX_BYTES: usize = MAX_STATUS_BYTES;

    fn validate(&self, _node: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        if self.session.is_empty() {
            errs.push(FieldError::required("session"));
        }
        let mut seen = BTreeSet::new();
        for (i, p) in self.pods.iter().enumerate() {
            let pp = index("pods", i);
            if let Err(why) = names::dns1123_label(&p.namespace) {
                errs.push(FieldError::invalid(
                    join(&pp, "namespace"),
                    format!("{:?}: {why}", p.namespace),
                ));
            }
            if let Err(why) = names::dns1123_subdomain(&p.name) {
                errs.push(FieldError::invalid(
                    join(&pp, "name"),
                    format!("{:?}: {why}", p.name),
                ));
            }
            if p.uid.is_empty() {
                errs.push(FieldError::required(join(&pp, "uid")));
            }
            if !seen.insert((&p.namespace, &p.name, &p.uid)) {
                errs.push(FieldError::duplicate(pp));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::status;
    use crate::protocol::{decode, encode};

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let s = status(3);
        let bytes = encode(&s).unwrap();
        assert_eq!(decode::<Status>("pi-1", &bytes).unwrap(), s);

        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["body"]["temperatureMilliC"] = 51000.into();
        v["body"]["pods"][0]["restartsPending"] = true.into();
        let got: Status = decode("pi-1", v.to_string().as_bytes()).unwrap();
        assert_eq!(got, s);
        assert_eq!(got.pods[1].key().name, "web-7d9f8b6c5-x2k01");
    }

    #[test]
    fn duplicate_and_misnamed_pods_are_refused() {
        let mut s = status(2);
        s.pods[1] = s.pods[0].clone();
        s.pods.push(PodReport {
            namespace: "Bad".into(),
            name: "x".into(),
            ..Default::default()
        });
        let errs = s.validate("pi-1").to_string();
        assert!(errs.contains("pods[1]: Duplicate value"), "{errs}");
        assert!(errs.contains("pods[2].namespace: Invalid value"), "{errs}");
        assert!(errs.contains("pods[2].uid: Required value"), "{errs}");
        let bytes = encode(&s).unwrap();
        assert!(decode::<Status>("pi-1", &bytes).is_err());
    }
}
