//! Container compute resources: `resources.requests` and `resources.limits`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, join};
use crate::quantity::Quantity;

/// Resource names Bramble accounts for.
pub const RESOURCE_NAMES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// `resources: {requests, limits}`, keyed by `cpu`, `memory`, `ephemeral-storage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "io.k8s.api.core.v1.ResourceRequirements")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
}

impl ResourceRequirements {
    /// Whether neither requests nor limits are set.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }

    /// CPU request in millicores (0 when unset).
    pub fn cpu_request_millis(&self) -> u64 {
        self.requests
            .get("cpu")
            .and_then(|q| q.to_millis().ok())
            .unwrap_or(0)
    }

    /// Memory request in bytes (0 when unset).
    pub fn memory_request_bytes(&self) -> u64 {
        self.requests
            .get("memory")
            .and_then(|q| q.to_bytes().ok())
            .unwrap_or(0)
    }

    /// CPU limit in millicores, if set.
    pub fn cpu_limit_millis(&self) -> Option<u64> {
        self.limits.get("cpu").and_then(|q| q.to_millis().ok())
    }

    /// Memory limit in bytes, if set.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        self.limits.get("memory").and_then(|q| q.to_bytes().ok())
    }

    /// Kubernetes' pod defaulting: a resource with a limit and no request
    /// requests its limit.
    pub fn default_requests_to_limits(&mut self) {
        for (name, limit) in &self.limits {
            self.requests
                .entry(name.clone())
                .or_insert_with(|| limit.clone());
        }
    }

    /// Validates names, representability and `requests <= limits` at `path`.
    pub fn validate(&self, path: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        for (kind, map) in [("requests", &self.requests), ("limits", &self.limits)] {
            for (name, q) in map {
                let p = format!("{}[{name}]", join(path, kind));
                if !RESOURCE_NAMES.contains(&name.as_str()) {
                    errs.push(FieldError::unsupported_value(p, RESOURCE_NAMES));
                    continue;
                }
                let fits = if name == "cpu" {
                    q.to_millis().is_ok()
                } else {
                    q.value().is_ok()
                };
                if !fits {
                    errs.push(FieldError::invalid(
                        p,
                        format!("{:?}: is too large", q.as_str()),
                    ));
                }
            }
        }
        for (name, req) in &self.requests {
            if let Some(limit) = self.limits.get(name)
                && req > limit
            {
                errs.push(FieldError::invalid(
                    format!("{}[{name}]", join(path, "requests")),
                    format!(
                        "{:?}: must be less than or equal to {name} limit of {}",
                        req.as_str(),
                        limit.as_str()
                    ),
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rr(v: serde_json::Value) -> ResourceRequirements {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn accessors_and_defaults() {
        let mut r =
            rr(json!({"requests": {"cpu": "250m"}, "limits": {"cpu": 1, "memory": "128Mi"}}));
        assert!(r.validate("resources").is_empty());
        assert_eq!(r.cpu_request_millis(), 250);
        assert_eq!(r.memory_request_bytes(), 0);
        r.default_requests_to_limits();
        assert_eq!(r.memory_request_bytes(), 128 << 20);
        assert_eq!(r.cpu_request_millis(), 250);
        assert_eq!(r.cpu_limit_millis(), Some(1000));
        assert_eq!(r.memory_limit_bytes(), Some(128 << 20));
    }

    #[test]
    fn requests_above_limits_and_unknown_names() {
        let r = rr(json!({
            "requests": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": 1},
            "limits": {"cpu": "1", "memory": "1024Mi"}
        }));
        let errs = r.validate("resources");
        assert_eq!(errs.0.len(), 2, "{errs}");
        assert_eq!(
            errs.0[0].to_string(),
            "resources.requests[nvidia.com/gpu]: Unsupported value: supported values: \"cpu\", \"memory\", \"ephemeral-storage\""
        );
        assert_eq!(
            errs.0[1].to_string(),
            "resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
        );
    }

    #[test]
    fn unrepresentable_values_are_refused() {
        let r = rr(json!({"limits": {"cpu": "100P"}}));
        assert_eq!(r.validate("r").0[0].path, "r.limits[cpu]");
    }
}
