//! The node report as JSON lines, for `bramble-agent run` (the node loop
//! without a hub): one `{"pod": ID, "status": PodStatus}` line per pod
//! whose status changed, and one `{"pod": ID, "usage": PodUsage}` line per
//! pod each time usage was sampled. Pure: [`ReportLines::lines`] compares
//! with what it printed before; the caller writes.

use std::collections::BTreeMap;
use std::time::Instant;

use bramble_api::objects::pod_status::PodStatus;
use serde_json::{Value, json};

use super::report::NodeReport;

/// What was printed last, to print only changes.
#[derive(Debug, Default)]
pub struct ReportLines {
    statuses: BTreeMap<String, PodStatus>,
    usage_at: Option<Instant>,
}

impl ReportLines {
    /// The lines `report` adds to what was printed before.
    pub fn lines(&mut self, report: &NodeReport) -> Vec<Value> {
        let mut out = Vec::new();
        for (id, pod) in &report.pods {
            if self.statuses.get(id) != Some(&pod.status) {
                self.statuses.insert(id.clone(), pod.status.clone());
                out.push(json!({ "pod": id, "status": pod.status }));
            }
        }
        self.statuses.retain(|id, _| report.pods.contains_key(id));
        if report.usage_at.is_some() && report.usage_at != self.usage_at {
            self.usage_at = report.usage_at;
            for (id, pod) in &report.pods {
                if let Some(usage) = &pod.usage {
                    out.push(json!({ "pod": id, "usage": usage }));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::{ContainerUsage, PodReport, PodUsage};

    fn report(phase: &str, usage: Option<(Instant, u64)>) -> NodeReport {
        let mut r = NodeReport::default();
        r.pods.insert(
            "default_web".into(),
            PodReport {
                namespace: "default".into(),
                name: "web".into(),
                uid: "u1".into(),
                status: PodStatus {
                    phase: Some(phase.into()),
                    ..PodStatus::default()
                },
                usage: usage.map(|(_, bytes)| PodUsage {
                    cpu_nanos: 5,
                    memory_bytes: bytes,
                    containers: vec![ContainerUsage {
                        name: "app".into(),
                        cpu_nanos: 5,
                        memory_bytes: bytes,
                    }],
                }),
                pulls: Vec::new(),
            },
        );
        r.usage_at = usage.map(|(at, _)| at);
        r
    }

    #[test]
    fn prints_a_status_once_per_change() {
        let mut lines = ReportLines::default();
        let out = lines.lines(&report("Pending", None));
        assert_eq!(
            out,
            [json!({"pod": "default_web", "status": {"phase": "Pending"}})]
        );
        assert!(lines.lines(&report("Pending", None)).is_empty());
        let out = lines.lines(&report("Running", None));
        assert_eq!(out[0]["status"]["phase"], "Running");
        assert!(lines.lines(&NodeReport::default()).is_empty());
        // Gone and back: printed again.
        assert_eq!(lines.lines(&report("Running", None)).len(), 1);
    }

    #[test]
    fn prints_usage_once_per_sample() {
        let mut lines = ReportLines::default();
        let at = Instant::now();
        let out = lines.lines(&report("Running", Some((at, 4096))));
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1],
            json!({"pod": "default_web", "usage": {"cpuNanos": 5, "memoryBytes": 4096,
                "containers": [{"name": "app", "cpuNanos": 5, "memoryBytes": 4096}]}})
        );
        assert!(lines.lines(&report("Running", Some((at, 4096)))).is_empty());
        let later = at + std::time::Duration::from_secs(1);
        let out = lines.lines(&report("Running", Some((later, 8192))));
        assert_eq!(
            out,
            [json!({"pod": "default_web", "usage": out[0]["usage"].clone()})]
        );
        assert_eq!(out[0]["usage"]["memoryBytes"], 8192);
    }
}
