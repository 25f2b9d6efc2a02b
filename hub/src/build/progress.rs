//! What a node's report says about one platform of a build (pure): the
//! step lines of the status (`[2/3] RUN make`: Pending, Running, cached,
//! done in 1.2 s, failed with exit code 2) and which reported layers the
//! image may use. Only steps of the job count; a layer is accepted for a
//! step that ran, and only if `layer_ok` (the hub's registry holds the
//! blob with that digest and size).

use std::collections::BTreeMap;

use bramble_api::objects::build::BuildStepStatus;
use bramble_api::protocol::{BuildReport, LayerRef};

use super::plan::PlatformPlan;

/// A report read against the plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    pub steps: Vec<BuildStepStatus>,
    /// Layers of steps that ran, by cache key.
    pub layers: BTreeMap<String, LayerRef>,
    /// Steps reported Succeeded with a layer the registry does not hold.
    pub bad_layers: Vec<String>,
}

/// Reads `report` (None: nothing heard yet) for `plan`.
pub fn read(
    plan: &PlatformPlan,
    report: Option<&BuildReport>,
    layer_ok: &dyn Fn(&LayerRef) -> bool,
) -> Progress {
    let by_key: BTreeMap<&str, _> = report
        .map(|r| r.steps.iter().map(|s| (s.key.as_str(), s)).collect())
        .unwrap_or_default();
    let mut out = Progress::default();
    for step in plan.steps() {
        let mut line = BuildStepStatus {
            name: step.name.clone(),
            phase: "Pending".into(),
            ..BuildStepStatus::default()
        };
        if step.cached.is_some() {
            line.phase = "Succeeded".into();
            line.cached = true;
        } else if let Some(r) = by_key.get(step.key.as_str()) {
            line.phase = match r.phase.as_str() {
                "Running" | "Succeeded" | "Failed" => r.phase.clone(),
                _ => "Running".into(),
            };
            line.duration_millis = r.duration_millis;
            line.exit_code = r.exit_code;
            if r.phase == "Succeeded" {
                match &r.layer {
                    Some(l) if layer_ok(l) => {
                        out.layers.insert(step.key.clone(), l.clone());
                    }
                    _ => {
                        line.phase = "Failed".into();
                        out.bad_layers.push(step.name.clone());
                    }
                }
            }
        }
        out.steps.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::{BuildJob, JobBase, JobStage, JobStep, PushGrant, StepReport};
    use bramble_dockerfile::ImageConfig;
    use bramble_dockerfile::plan::{Action, Step};

    fn layer(n: u8) -> LayerRef {
        LayerRef {
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            diff_id: format!("sha256:{}", "0".repeat(64)),
            size: u64::from(n),
            media_type: String::new(),
        }
    }

    fn plan(cached_first: bool) -> PlatformPlan {
        let step = |key: &str, cached: Option<LayerRef>| JobStep {
            key: key.into(),
            name: format!("[{key}] RUN x"),
            step: Step {
                line: 1,
                text: "RUN x".into(),
                args: vec![],
                action: Action::Mkdir {
                    path: "/x".into(),
                    user: String::new(),
                },
            },
            cached,
        };
        PlatformPlan {
            platform: "linux/amd64".into(),
            job: BuildJob {
                uid: "u".into(),
                platform: "linux/amd64".into(),
                build: "default/b".into(),
                context: layer(9),
                context_hidden: vec![],
                images: vec![],
                stages: vec![JobStage {
                    index: 0,
                    base: JobBase::Scratch,
                    steps: vec![
                        step("a", cached_first.then(|| layer(1))),
                        step("b", None),
                        step("c", None),
                    ],
                }],
                grant: PushGrant {
                    repository: String::new(),
                    user: String::new(),
                    password: String::new(),
                },
                source_date_epoch: None,
            },
            layers: vec![],
            config: ImageConfig::default(),
            base_history: vec![],
            chain_steps: vec![],
            source_date_epoch: None,
        }
    }

    #[test]
    fn cached_ran_running_and_unheard_steps() {
        let report = BuildReport {
            uid: "u".into(),
            platform: "linux/amd64".into(),
            phase: "Running".into(),
            message: None,
            steps: vec![
                StepReport {
                    key: "b".into(),
                    phase: "Succeeded".into(),
                    duration_millis: Some(1200),
                    layer: Some(layer(2)),
                    ..StepReport::default()
                },
                StepReport {
                    key: "c".into(),
                    phase: "Running".into(),
                    ..StepReport::default()
                },
                StepReport {
                    key: "not-in-the-job".into(),
                    phase: "Succeeded".into(),
                    layer: Some(layer(3)),
                    ..StepReport::default()
                },
            ],
        };
        let p = read(&plan(true), Some(&report), &|_| true);
        let phases: Vec<(&str, bool)> = p
            .steps
            .iter()
            .map(|s| (s.phase.as_str(), s.cached))
            .collect();
        assert_eq!(
            phases,
            [
                ("Succeeded", true),
                ("Succeeded", false),
                ("Running", false)
            ]
        );
        assert_eq!(p.steps[1].duration_millis, Some(1200));
        assert_eq!(p.layers.keys().collect::<Vec<_>>(), ["b"]);
        let unheard = read(&plan(false), None, &|_| true);
        assert!(unheard.steps.iter().all(|s| s.phase == "Pending"));
    }

    #[test]
    fn a_layer_the_registry_does_not_hold_fails_its_step() {
        let report = BuildReport {
            uid: "u".into(),
            platform: "linux/amd64".into(),
            phase: "Succeeded".into(),
            message: None,
            steps: vec![StepReport {
                key: "b".into(),
                phase: "Succeeded".into(),
                layer: Some(layer(2)),
                ..StepReport::default()
            }],
        };
        let p = read(&plan(true), Some(&report), &|_| false);
        assert_eq!(p.steps[1].phase, "Failed");
        assert!(p.layers.is_empty());
        assert_eq!(p.bad_layers, ["[b] RUN x"]);
    }
}
