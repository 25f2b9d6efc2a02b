//! `v1 Node`: a board running the Bramble agent. The spec (pod CIDR, taints,
//! cordon) is user- and hub-writable; the status is reported by the agent.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::admit::Object;
use crate::cidr::Cidr;
use crate::field::{FieldError, FieldErrors, index, join};
use crate::meta::ObjectMeta;
use crate::names;
use crate::quantity::Quantity;

use super::common::{Condition, check_enum, find_condition, is_false};

/// Taint effects.
pub const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `v1 Node`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Node")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
}

/// `spec` of a Node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeSpec")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    #[serde(rename = "podCIDR", default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    #[serde(rename = "podCIDRs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
    /// Cordoned: no new pods are scheduled here.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unschedulable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
}

/// `{key, value, effect, timeAdded}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.Taint")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default)]
    pub effect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

/// `status` of a Node, written by the hub from agent reports. Lenient: unknown
/// fields are dropped rather than refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeStatus")
)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_info: Option<NodeSystemInfo>,
}

/// `{type: InternalIP|ExternalIP|Hostname, address}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeAddress")
)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddress {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub address: String,
}

/// What the agent reports about the board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.NodeSystemInfo")
)]
#[serde(rename_all = "camelCase")]
pub struct NodeSystemInfo {
    #[serde(
        rename = "machineID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub machine_id: String,
    #[serde(
        rename = "systemUUID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub system_uuid: String,
    #[serde(rename = "bootID", default, skip_serializing_if = "String::is_empty")]
    pub boot_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_runtime_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubelet_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_proxy_version: String,
    /// `linux`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operating_system: String,
    /// `arm64`, `arm`, `amd64`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
}

impl Node {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, "Ready"))
            .is_some_and(Condition::is_true)
    }

    /// Allocatable quantity of a resource (`cpu`, `memory`), if reported.
    pub fn allocatable(&self, resource: &str) -> Option<&Quantity> {
        self.status.as_ref()?.allocatable.get(resource)
    }
}

impl Object for Node {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::new();
        let s = &self.spec;
        let mut cidrs = Vec::new();
        if let Some(c) = s.pod_cidr.as_deref().filter(|c| !c.is_empty()) {
            match c.parse::<Cidr>() {
                Ok(_) => cidrs.push(c),
                Err(e) => errs.push(FieldError::invalid("spec.podCIDR", e.to_string())),
            }
        }
        for (i, c) in s.pod_cidrs.iter().enumerate() {
            if let Err(e) = c.parse::<Cidr>() {
                errs.push(FieldError::invalid(
                    index("spec.podCIDRs", i),
                    e.to_string(),
                ));
            }
        }
        if let (Some(first), Some(pc)) = (s.pod_cidrs.first(), cidrs.first())
            && first != pc
        {
            errs.push(FieldError::invalid(
                "spec.podCIDRs",
                format!("{first:?}: the first entry must match `podCIDR` {pc:?}"),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, t) in s.taints.iter().enumerate() {
            let tp = index("spec.taints", i);
            if t.key.is_empty() {
                errs.push(FieldError::required(join(&tp, "key")));
            } else if let Err(why) = names::label_key(&t.key) {
                errs.push(FieldError::invalid(
                    join(&tp, "key"),
                    format!("{:?}: {why}", t.key),
                ));
            }
            if let Some(v) = &t.value
                && let Err(why) = names::label_value(v)
            {
                errs.push(FieldError::invalid(
                    join(&tp, "value"),
                    format!("{v:?}: {why}"),
                ));
            }
            if t.effect.is_empty() {
                errs.push(FieldError::required(join(&tp, "effect")));
            } else {
                check_enum(&mut errs, &join(&tp, "effect"), &t.effect, TAINT_EFFECTS);
            }
            if !seen.insert((t.key.as_str(), t.effect.as_str())) {
                errs.push(FieldError::duplicate(tp));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_is_lenient_and_accessors_work() {
        let n: Node = crate::decode::decode(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-1"},
            "status": {
                "capacity": {"cpu": "4", "memory": "3906Mi"},
                "allocatable": {"cpu": "3800m", "memory": "3700Mi"},
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"architecture": "arm64", "operatingSystem": "linux", "kernelVersion": "6.6", "futureField": 1},
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
            }
        }))
        .unwrap();
        assert!(n.is_ready());
        assert_eq!(n.allocatable("cpu").unwrap().to_millis().unwrap(), 3800);
        assert_eq!(
            n.status
                .as_ref()
                .unwrap()
                .node_info
                .as_ref()
                .unwrap()
                .architecture,
            "arm64"
        );
        assert!(n.validate().is_empty());
    }

    #[test]
    fn taints_and_cidrs_are_checked() {
        let n: Node = crate::decode::decode(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-1"},
            "spec": {
                "podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.2.0/24", "bad"],
                "taints": [
                    {"key": "dedicated", "value": "sensors", "effect": "NoSchedule"},
                    {"key": "dedicated", "effect": "NoSchedule"},
                    {"key": "x", "effect": "Sometimes"},
                    {"effect": "NoExecute"}
                ]
            }
        }))
        .unwrap();
        let errs = n.validate();
        let paths: Vec<&str> = errs.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.podCIDRs[1]",
                "spec.podCIDRs",
                "spec.taints[1]",
                "spec.taints[2].effect",
                "spec.taints[3].key"
            ]
        );
    }
}
