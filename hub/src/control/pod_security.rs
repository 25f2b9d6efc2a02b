//! The Pod Security gate on the pods the controllers create: the
//! namespace's enforce level, checked on a workload's template each round,
//! so that a level raised after the workload was admitted stops new pods
//! (Kubernetes' ReplicaSet and DaemonSet controllers fail to create them).

use std::collections::BTreeMap;

use bramble_api::objects::{Namespace, PodTemplateSpec};

use crate::admission::pod_security::{PodSecurityConfig, Subject, Target, evaluate};

/// The namespaces of one snapshot, by name.
pub struct Gate<'a> {
    config: &'a PodSecurityConfig,
    namespaces: BTreeMap<&'a str, &'a Namespace>,
}

impl<'a> Gate<'a> {
    pub fn new(config: &'a PodSecurityConfig, namespaces: &'a [Namespace]) -> Gate<'a> {
        Gate {
            config,
            namespaces: namespaces.iter().map(|n| (n.name(), n)).collect(),
        }
    }

    /// `violates PodSecurity ...` when the enforce level of `namespace`
    /// refuses pods stamped from `template`.
    pub fn refusal(&self, namespace: &str, template: &PodTemplateSpec) -> Option<String> {
        let e = evaluate(
            self.config,
            Target {
                name: namespace,
                meta: self.namespaces.get(namespace).map(|n| &n.metadata),
            },
            Subject {
                meta: &template.metadata,
                spec: &template.spec,
            },
            true,
        );
        e.enforce.map(|f| f.violates())
    }
}
