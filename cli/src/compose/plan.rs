//! The planner: a loaded Compose project → the Kubernetes objects that run
//! it, in start order, with what each service waits for. Pure (files are
//! read through [`Ctx::read`]); `up` applies the plan.
//!
//! - project → Namespace (its normalised name, `_` → `-`), labelled
//!   [`PROJECT_LABEL`] so `down` and `ps` find what belongs to it;
//! - service → Deployment (or a Job when another service waits for it with
//!   `service_completed_successfully`), a headless Service named after it
//!   (peers reach every port by name, as on a compose network), and, for
//!   published ports, a `NAME-published` Service of type LoadBalancer;
//! - a service with `build:` → its [`BuildSpec`] (built by
//!   [`super::build`] before `up` applies the plan), and it runs the image
//!   the build names ([`pin_image`] pins it to the built digest).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::{Value, json};

use super::build_spec::{self, BuildSpec};
use super::model::{Project, Service};
use super::{keys, ports, volumes};

/// docker compose's own label keys, so tools that know them read ours.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// Marks objects (and the namespace) that `compose up` made.
pub const MANAGED_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_VALUE: &str = "bramble-compose";
/// A Job's template cannot change: `up` replaces a Job whose planned
/// object (hashed into this annotation, as docker compose labels its
/// containers with `com.docker.compose.config-hash`) changed, and leaves
/// it alone otherwise.
pub const CONFIG_HASH: &str = "bramble.dev/compose-config-hash";
/// Suffix of the LoadBalancer Service of a service's published ports.
pub const PUBLISHED_SUFFIX: &str = "-published";

/// What the planner reads besides the model.
pub struct Ctx<'a> {
    pub project: &'a str,
    pub project_model: &'a Project,
    /// Relative paths resolve against it.
    pub dir: &'a Path,
    pub vars: &'a BTreeMap<String, String>,
    pub read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
}

/// What `up` waits for before creating a dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

/// How a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Deployment,
    Job,
    /// `deploy.mode: global`: one pod on every node that may run it.
    DaemonSet,
}

impl Workload {
    /// Its kind as the API names it.
    pub fn kind(self) -> &'static str {
        match self {
            Workload::Deployment => "Deployment",
            Workload::Job => "Job",
            Workload::DaemonSet => "DaemonSet",
        }
    }

    /// Its collection in namespace `ns`.
    pub fn collection(self, ns: &str) -> String {
        match self {
            Workload::Deployment => format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            Workload::Job => format!("/apis/batch/v1/namespaces/{ns}/jobs"),
            Workload::DaemonSet => format!("/apis/apps/v1/namespaces/{ns}/daemonsets"),
        }
    }

    /// Whether its pods run on (restarted when they exit), as a service's.
    pub fn long_running(self) -> bool {
        self != Workload::Job
    }
}

/// One service's objects.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub name: String,
    pub workload: Workload,
    /// The workload first, then its Services.
    pub objects: Vec<Value>,
    /// Dependencies and the condition each must meet first.
    pub waits: Vec<(String, Condition)>,
    /// How its image is built, when it has `build:`.
    pub build: Option<BuildSpec>,
}

/// The plan of a project.
#[derive(Debug, Clone)]
pub struct Plan {
    pub project: String,
    pub namespace: String,
    pub namespace_object: Value,
    /// PVCs, ConfigMaps and Secrets, created before any service.
    pub shared: Vec<Value>,
    /// In start order: every service after what it depends on.
    pub services: Vec<ServicePlan>,
    /// Every service the file defines, whatever its profiles and the
    /// services selected: what is not among them is an orphan.
    pub defined: BTreeSet<String>,
    pub warnings: Vec<String>,
}

/// A Kubernetes object name from a compose name: lower case, `_` and
/// other characters outside `a-z0-9.-` → `-`.
pub fn object_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The namespace of project `name`.
pub fn namespace_of(project: &str) -> String {
    project.replace('_', "-")
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The labels of a project's objects (and a service's, with `service`),
/// with the service's own `labels`.
pub fn labels_for(project: &str, service: Option<&str>, svc: &Service) -> Value {
    let mut l = serde_json::Map::new();
    if let Some(extra) = &svc.labels {
        for (k, v) in super::load::as_map(extra) {
            l.insert(k, super::load::scalar(&v).unwrap_or_default().into());
        }
    }
    l.insert(PROJECT_LABEL.into(), project.into());
    l.insert(MANAGED_LABEL.into(), MANAGED_VALUE.into());
    if let Some(s) = service {
        l.insert(SERVICE_LABEL.into(), s.into());
    }
    Value::Object(l)
}

fn selector(project: &str, service: &str) -> Value {
    json!({PROJECT_LABEL: project, SERVICE_LABEL: service})
}

fn condition(c: &str, path: &str) -> Result<Condition, String> {
    match c {
        "service_started" => Ok(Condition::Started),
        "service_healthy" => Ok(Condition::Healthy),
        "service_completed_successfully" => Ok(Condition::CompletedSuccessfully),
        o => Err(format!(
            "{path}.condition: {o:?} (service_started, service_healthy or service_completed_successfully)"
        )),
    }
}

fn has_healthcheck(svc: &Service) -> bool {
    svc.healthcheck.as_ref().is_some_and(|h| {
        !h.disable
            && !matches!(&h.test, Some(super::model::Command::List(l)) if l.first().map(ToString::to_string).as_deref() == Some("NONE"))
            && h.test.is_some()
    })
}

/// The services enabled by `profiles` (and those named on the command
/// line, which are enabled whatever their profiles), with every
/// dependency of the selected ones.
pub fn select(
    model: &Project,
    profiles: &[String],
    wanted: &[String],
) -> anyhow::Result<BTreeSet<String>> {
    for w in wanted {
        if !model.services.contains_key(w) {
            bail!("no such service: {w}");
        }
    }
    let enabled = |n: &String, s: &Service| {
        s.profiles.is_empty()
            || s.profiles.iter().any(|p| profiles.contains(p) || p == "*")
            || wanted.contains(n)
    };
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = if wanted.is_empty() {
        model
            .services
            .iter()
            .filter(|(n, s)| enabled(n, s))
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        wanted.to_vec()
    };
    while let Some(n) = todo.pop() {
        if !out.insert(n.clone()) {
            continue;
        }
        if let Some(d) = model.services.get(&n).and_then(|s| s.depends_on.as_ref()) {
            for (dep, _, required) in d.entries() {
                // A dependency starts with its dependent, whatever its profiles.
                match model.services.get(&dep) {
                    Some(_) => todo.push(dep),
                    None if !required => {}
                    None => bail!("service {n:?} depends on undefined service {dep:?}"),
                }
            }
        }
    }
    Ok(out)
}

/// Start order: each service after its dependencies (a cycle is an error).
fn order(model: &Project, selected: &BTreeSet<String>) -> Result<Vec<String>, String> {
    let mut done: Vec<String> = Vec::new();
    let mut visiting = BTreeSet::new();
    fn visit(
        n: &str,
        model: &Project,
        done: &mut Vec<String>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        if done.iter().any(|d| d == n) {
            return Ok(());
        }
        if !visiting.insert(n.to_string()) {
            return Err(format!(
                "services.{n}.depends_on: dependency cycle through {n:?}"
            ));
        }
        if let Some(d) = model.services.get(n).and_then(|s| s.depends_on.as_ref()) {
            for (dep, _, _) in d.entries() {
                if model.services.contains_key(&dep) {
                    visit(&dep, model, done, visiting)?;
                }
            }
        }
        visiting.remove(n);
        done.push(n.to_string());
        Ok(())
    }
    for n in selected {
        visit(n, model, &mut done, &mut visiting)?;
    }
    Ok(done.into_iter().filter(|n| selected.contains(n)).collect())
}

/// Plans the selected services of a project whose document passed
/// [`keys::check`]. All refusals are collected and returned together.
pub fn plan(doc: &serde_yaml_ng::Value, ctx_in: PlanInput<'_>) -> anyhow::Result<Plan> {
    let verdict = keys::check(doc);
    if !verdict.refused.is_empty() {
        bail!(
            "{} cannot run on Bramble:\n  {}",
            ctx_in.project,
            verdict.refused.join("\n  ")
        );
    }
    let model: Project = serde_yaml_ng::from_value(doc.clone())
        .map_err(|e| anyhow::anyhow!("reading the compose model: {e}"))?;
    let selected = select(&model, ctx_in.profiles, ctx_in.services)?;
    let ctx = Ctx {
        project: ctx_in.project,
        project_model: &model,
        dir: ctx_in.dir,
        vars: ctx_in.vars,
        read: ctx_in.read,
    };
    let mut errs = Vec::new();
    let mut warnings = verdict.warnings;
    let names = order(&model, &selected).map_err(|e| anyhow::anyhow!(e))?;
    // Services others wait on to complete run as Jobs.
    let mut waited_on: BTreeMap<String, Condition> = BTreeMap::new();
    let mut services = Vec::new();
    for n in &names {
        let svc = &model.services[n];
        let mut waits = Vec::new();
        if let Some(d) = &svc.depends_on {
            for (dep, cond, _) in d.entries() {
                if !selected.contains(&dep) {
                    continue;
                }
                match condition(&cond, &format!("services.{n}.depends_on.{dep}")) {
                    Ok(Condition::Healthy) if !has_healthcheck(&model.services[&dep]) => errs.push(format!(
                        "services.{n}.depends_on.{dep}: condition service_healthy, but {dep} has no healthcheck"
                    )),
                    Ok(c) => {
                        if c == Condition::CompletedSuccessfully {
                            waited_on.insert(dep.clone(), c);
                        }
                        waits.push((dep, c));
                    }
                    Err(e) => errs.push(e),
                }
            }
        }
        services.push((n.clone(), waits));
    }
    let mut plans = Vec::new();
    let mut object_names = BTreeSet::new();
    for (n, waits) in services {
        let svc = &model.services[&n];
        let path = format!("services.{n}");
        if !is_dns_label(&n) {
            errs.push(format!(
                "{path}: {n:?} is not a DNS label (a-z, 0-9, `-`, starting with a letter): peers reach a service by its name, so rename it (e.g. {:?})",
                object_name(&n).replace('.', "-")
            ));
            continue;
        }
        if svc.image.is_none() && svc.build.is_none() {
            errs.push(format!("{path}: has neither image nor build"));
            continue;
        }
        let build = build_spec::resolve(ctx.project, &n, svc, ctx.dir, ctx.vars, &mut errs);
        // A built service runs the image its build names.
        let built;
        let svc = match &build {
            Some(b) if svc.image.is_none() => {
                built = Service {
                    image: Some(b.image.clone()),
                    ..svc.clone()
                };
                &built
            }
            _ => svc,
        };
        let global = svc
            .deploy
            .as_ref()
            .and_then(|d| d.mode.as_deref())
            .is_some_and(|m| m == "global");
        let workload = match (waited_on.contains_key(&n), global) {
            (true, true) => {
                errs.push(format!(
                    "{path}.deploy.mode: global: a service others wait for with service_completed_successfully runs once, as a Job, not on every node"
                ));
                Workload::Job
            }
            (true, false) => Workload::Job,
            (false, true) => Workload::DaemonSet,
            (false, false) => Workload::Deployment,
        };
        let template = super::pod::template(&n, svc, &ctx, &mut errs);
        warnings.extend(volumes::relative_bind_warnings(&n, svc, ctx.dir));
        let mut objects = vec![workload_object(
            &n,
            svc,
            workload,
            template,
            &ctx,
            &mut errs,
            &mut warnings,
        )];
        let cports = ports::container_ports(svc, &path, &mut Vec::new());
        let peer_ports = ports::peer_ports(&cports);
        let mut peer = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": n, "labels": labels_for(ctx.project, Some(&n), svc)},
            "spec": {"clusterIP": "None", "selector": selector(ctx.project, &n)}
        });
        // Without ports the name still resolves: DNS answers a headless
        // Service's ready addresses.
        if !peer_ports.is_empty() {
            peer["spec"]["ports"] = peer_ports.into();
        }
        objects.push(peer);
        let published = ports::published_ports(svc, &path, &mut errs);
        if !published.is_empty() {
            let lb = format!("{n}{PUBLISHED_SUFFIX}");
            objects.push(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": lb, "labels": labels_for(ctx.project, Some(&n), svc)},
                "spec": {"type": "LoadBalancer", "selector": selector(ctx.project, &n), "ports": published}
            }));
        }
        for o in &objects {
            let key = (
                o["kind"].as_str().unwrap_or("").to_string(),
                o["metadata"]["name"].as_str().unwrap_or("").to_string(),
            );
            if !object_names.insert(key.clone()) {
                errs.push(format!(
                    "{path}: its {} {:?} has the name of another service's",
                    key.0, key.1
                ));
            }
        }
        plans.push(ServicePlan {
            name: n.clone(),
            workload,
            objects,
            waits,
            build,
        });
    }
    let shared = volumes::shared_objects(&ctx, &mut errs);
    if !errs.is_empty() {
        errs.dedup();
        bail!(
            "{} cannot run on Bramble:\n  {}",
            ctx.project,
            errs.join("\n  ")
        );
    }
    let namespace = namespace_of(ctx.project);
    if !is_dns_label(&namespace) && !namespace.starts_with(|c: char| c.is_ascii_digit()) {
        bail!(
            "project name {:?} does not make a namespace name: give one with -p (a-z, 0-9, `-`)",
            ctx.project
        );
    }
    let mut ns_labels = labels_for(ctx.project, None, &Service::default());
    if let Some(m) = ns_labels.as_object_mut() {
        m.retain(|k, _| k == PROJECT_LABEL || k == MANAGED_LABEL);
    }
    let namespace_object = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": ns_labels}});
    let set_ns = |o: &mut Value| o["metadata"]["namespace"] = namespace.clone().into();
    let mut shared = shared;
    shared.iter_mut().for_each(set_ns);
    for p in &mut plans {
        p.objects.iter_mut().for_each(set_ns);
    }
    Ok(Plan {
        project: ctx.project.to_string(),
        namespace,
        namespace_object,
        shared,
        services: plans,
        defined: model.services.keys().cloned().collect(),
        warnings,
    })
}

/// The SHA-256 of an object's JSON (keys in order), in hex.
pub fn config_hash(o: &Value) -> String {
    let bytes = serde_json::to_vec(o).expect("JSON values serialise");
    bramble_images::digest::Digest::of(&bytes).hex().to_string()
}

/// Pins a built service's container to its image's `digest` in the hub's
/// registry (`NAME:TAG@DIGEST`): a rebuilt image changes the pod template,
/// so `up` rolls the pods out again (docker compose recreates a container
/// whose image changed) and boards run the new image rather than the one
/// they hold under the tag; an unchanged image leaves them alone. A Job's
/// [`CONFIG_HASH`] is computed again over it.
pub fn pin_image(s: &mut ServicePlan, image: &str, digest: &str) {
    let w = &mut s.objects[0];
    w["spec"]["template"]["spec"]["containers"][0]["image"] = format!("{image}@{digest}").into();
    if s.workload == Workload::Job {
        if let Some(m) = w["metadata"].as_object_mut() {
            m.remove("annotations");
        }
        let hash = config_hash(w);
        w["metadata"]["annotations"] = json!({ CONFIG_HASH: hash });
    }
}

/// The planner's inputs beside the document.
pub struct PlanInput<'a> {
    pub project: &'a str,
    pub dir: &'a Path,
    pub vars: &'a BTreeMap<String, String>,
    pub profiles: &'a [String],
    /// Services named on the command line (empty: all enabled ones).
    pub services: &'a [String],
    pub read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
}

/// Reads a file from disk (the planner's reader outside tests).
pub fn read_file(p: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(PathBuf::from(p))
}

fn workload_object(
    n: &str,
    svc: &Service,
    workload: Workload,
    mut template: Value,
    ctx: &Ctx,
    errs: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Value {
    let path = format!("services.{n}");
    let restart = svc
        .restart
        .clone()
        .or_else(|| {
            svc.deploy
                .as_ref()
                .and_then(|d| d.restart_policy.as_ref())
                .and_then(|r| r.condition.clone())
                .map(|c| match c.as_str() {
                    "any" => "always".to_string(),
                    "none" => "no".to_string(),
                    o => o.replace('_', "-"),
                })
        })
        .unwrap_or_else(|| "no".into());
    let (policy, attempts) = match restart.split_once(':') {
        Some(("on-failure", n)) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => ("on-failure", Some(n)),
            _ => {
                errs.push(format!(
                    "{path}.restart: {restart:?}: on-failure[:MAX_RETRIES]"
                ));
                ("on-failure", None)
            }
        },
        _ => (restart.as_str(), None),
    };
    if !matches!(policy, "no" | "always" | "unless-stopped" | "on-failure") {
        errs.push(format!(
            "{path}.restart: {restart:?} (no, always, on-failure[:N], unless-stopped)"
        ));
    }
    let labels = labels_for(ctx.project, Some(n), svc);
    let deploy_labels = svc.deploy.as_ref().and_then(|d| d.labels.as_ref());
    let mut meta_labels = labels.clone();
    if let Some(dl) = deploy_labels {
        for (k, v) in super::load::as_map(dl) {
            meta_labels[k] = super::load::scalar(&v).unwrap_or_default().into();
        }
    }
    match workload {
        Workload::Job => {
            template["spec"]["restartPolicy"] = if policy == "on-failure" {
                "OnFailure"
            } else {
                "Never"
            }
            .into();
            let backoff = match (policy, attempts) {
                ("on-failure", Some(n)) => n,
                ("on-failure", None) => 6,
                _ => 0,
            };
            let mut job = json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": n, "labels": meta_labels},
                "spec": {"backoffLimit": backoff, "template": template}});
            let hash = config_hash(&job);
            job["metadata"]["annotations"] = json!({ CONFIG_HASH: hash });
            job
        }
        Workload::Deployment | Workload::DaemonSet => {
            if svc
                .restart
                .as_deref()
                .is_some_and(|r| r == "no" || r.starts_with("on-failure"))
            {
                warnings.push(format!(
                    "{path}.restart: {restart:?}: a service runs as a {}, whose pods are restarted when they exit (a service that others wait for with service_completed_successfully runs once, as a Job)",
                    workload.kind()
                ));
            }
            if let Some(mode) = svc
                .deploy
                .as_ref()
                .and_then(|d| d.mode.as_deref())
                .filter(|m| !matches!(*m, "replicated" | "global"))
            {
                errs.push(format!(
                    "{path}.deploy.mode: {mode:?} not supported (replicated, global)"
                ));
            }
            if workload == Workload::DaemonSet {
                if svc.deploy.as_ref().and_then(|d| d.replicas).is_some() || svc.scale.is_some() {
                    errs.push(format!(
                        "{path}.deploy.replicas: a global service runs one pod on every node: remove replicas (or scale), or use mode: replicated"
                    ));
                }
                return json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": n, "labels": meta_labels},
                    "spec": {"selector": {"matchLabels": selector(ctx.project, n)},
                             "template": template}});
            }
            let replicas = svc
                .deploy
                .as_ref()
                .and_then(|d| d.replicas)
                .or(svc.scale)
                .unwrap_or(1);
            if replicas < 0 {
                errs.push(format!("{path}.deploy.replicas: must not be negative"));
            }
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": n, "labels": meta_labels},
                "spec": {"replicas": replicas, "selector": {"matchLabels": selector(ctx.project, n)},
                         "template": template}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(workload: Workload, object: Value) -> ServicePlan {
        ServicePlan {
            name: "web".into(),
            workload,
            objects: vec![object],
            waits: Vec::new(),
            build: None,
        }
    }

    #[test]
    fn pinning_the_image_changes_the_container_and_a_jobs_hash() {
        let template = json!({"spec": {"containers": [{"name": "web", "image": "p-web:latest"}]}});
        let mut d = service(
            Workload::Deployment,
            json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": template}}),
        );
        pin_image(&mut d, "p-web:latest", "sha256:1");
        assert_eq!(
            d.objects[0]["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "web", "image": "p-web:latest@sha256:1"})
        );

        let mut job =
            json!({"kind": "Job", "metadata": {"name": "web"}, "spec": {"template": template}});
        let before = config_hash(&job);
        job["metadata"]["annotations"] = json!({ CONFIG_HASH: before });
        let mut j = service(Workload::Job, job);
        pin_image(&mut j, "p-web:latest", "sha256:1");
        let first = j.objects[0]["metadata"]["annotations"][CONFIG_HASH].clone();
        assert_ne!(first, json!(before), "the digest is part of the hash");
        let mut again = j.clone();
        pin_image(&mut again, "p-web:latest", "sha256:1");
        assert_eq!(
            again.objects[0]["metadata"]["annotations"][CONFIG_HASH],
            first
        );
        pin_image(&mut again, "p-web:latest", "sha256:2");
        assert_ne!(
            again.objects[0]["metadata"]["annotations"][CONFIG_HASH],
            first
        );
    }
}
