//! `compose run [--rm] [-d] [--name N] [-e K[=V]]… [--entrypoint E] [-w DIR]
//! [-l K=V]… [-T] [--no-deps] SERVICE [--] [CMD ARGS…]`: a one-off pod of
//! the service, as docker compose runs a one-off container. Its
//! dependencies are brought up first as `up` would (unless `--no-deps`)
//! and their conditions met; the pod runs the service's template with
//! `restartPolicy: Never` and what the flags change ([`Change`]): given,
//! CMD as its `args` (replacing the service's `command`, the entrypoint
//! kept, as docker does), `--entrypoint` as its `command` (shell-split; the
//! image's CMD dropped unless CMD is given, as docker does), `-e` added to
//! (or replacing in) its environment, `-w` its working directory, `-l`
//! labels. Its log is followed on stdout (what `up` prints goes to
//! stderr), and its exit code is `bramble`'s; `--rm` deletes it afterwards;
//! `-d` prints the pod's name and leaves it running.
//!
//! The pod is labelled [`ONEOFF_LABEL`] and [`RUN_OF_LABEL`] (the service),
//! not with the service's label: like docker's one-off containers it gets
//! no share of the service's name (its headless Service does not select
//! it), `exec`, `stop`, `start` and `restart` leave it alone, and `down`
//! deletes it. No stdin or terminal (`-T` is accepted). [`one_off_pod`]
//! is pure.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::plan::{Plan, SERVICE_LABEL, ServicePlan};
use crate::context::Context;

/// docker compose's label of one-off containers (value `True`).
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
/// The service a one-off pod runs.
pub const RUN_OF_LABEL: &str = "bramble.dev/compose-run-of";

/// How long the pod may take to start running.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// What `compose run` was asked.
pub struct Request<'a> {
    pub service: &'a str,
    pub rm: bool,
    pub detach: bool,
    pub no_deps: bool,
    pub timeout: Duration,
    pub name: Option<String>,
    pub change: Change,
}

/// What the flags of `compose run` change in the service's container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// CMD ARGS: the container's `args`.
    pub command: Vec<String>,
    /// `-e`: set in the container's environment, in order.
    pub env: Vec<(String, String)>,
    /// `--entrypoint`, split: the container's `command`.
    pub entrypoint: Option<Vec<String>>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-l`.
    pub labels: Vec<(String, String)>,
}

impl Change {
    /// From the flags; `-e KEY` takes KEY's value from `lookup` (this
    /// shell's environment) and is left out when unset, as docker does.
    pub fn parse(
        command: &[String],
        env: &[String],
        entrypoint: Option<&str>,
        workdir: Option<&str>,
        labels: &[String],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Change> {
        let mut vars = Vec::new();
        for e in env {
            match e.split_once('=') {
                Some(("", _)) => bail!("-e {e}: the variable has no name (use -e KEY=VAL)"),
                Some((k, v)) => vars.push((k.to_string(), v.to_string())),
                None => {
                    if let Some(v) = lookup(e) {
                        vars.push((e.clone(), v));
                    }
                }
            }
        }
        let entrypoint = match entrypoint {
            None => None,
            Some(e) => Some(shlex::split(e).ok_or_else(|| {
                anyhow::anyhow!("--entrypoint {e:?}: unbalanced quotes (quote it as a shell would)")
            })?),
        };
        let labels = labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => bail!("-l {l}: a label is KEY=VAL"),
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Change {
            command: command.to_vec(),
            env: vars,
            entrypoint,
            workdir: workdir.map(str::to_string),
            labels,
        })
    }
}

/// The one-off pod `name` of service `s` in plan `p`, with `change`.
pub fn one_off_pod(p: &Plan, s: &ServicePlan, name: &str, change: &Change) -> Value {
    let template = &s.objects[0]["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if let Some(m) = labels.as_object_mut() {
        m.remove(SERVICE_LABEL);
        for (k, v) in &change.labels {
            m.insert(k.clone(), v.clone().into());
        }
        m.insert(ONEOFF_LABEL.into(), "True".into());
        m.insert(RUN_OF_LABEL.into(), s.name.clone().into());
    }
    let mut spec = template["spec"].clone();
    spec["restartPolicy"] = "Never".into();
    let c = &mut spec["containers"][0];
    if let Some(e) = &change.entrypoint {
        c["command"] = json!(e);
        if let Some(m) = c.as_object_mut() {
            m.remove("args");
        }
    }
    if !change.command.is_empty() {
        c["args"] = json!(change.command);
    }
    if let Some(w) = &change.workdir {
        c["workingDir"] = w.clone().into();
    }
    for (k, v) in &change.env {
        let mut env: Vec<Value> = c["env"].as_array().cloned().unwrap_or_default();
        env.retain(|e| e["name"] != k.as_str());
        env.push(json!({"name": k, "value": v}));
        c["env"] = Value::Array(env);
    }
    let mut metadata = json!({"name": name, "namespace": p.namespace, "labels": labels});
    if let Some(a) = template["metadata"].get("annotations") {
        metadata["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// `SERVICE-run-` and 6 hex digits, as docker names `PROJECT-SERVICE-run-…`.
fn pod_name(service: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = nanos ^ std::process::id().rotate_left(16);
    // A pod's name is its hostname: at most 63 characters.
    let service: String = service.chars().take(52).collect();
    format!("{service}-run-{:06x}", n & 0xff_ffff)
}

fn terminated(pod: &Value) -> Option<i64> {
    pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"].as_i64()
}

pub fn run(
    ctx: &Context,
    mut p: Plan,
    r: &Request<'_>,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let Some(at) = p.services.iter().position(|s| s.name == r.service) else {
        bail!("no such service: {}", r.service);
    };
    let s = p.services.remove(at);
    if r.no_deps {
        p.services.clear();
    }
    let mut progress = std::io::stderr();
    // The namespace, claims, configs and the dependencies, as `up`.
    super::up::run(ctx, &p, r.timeout, false, &mut progress)?;
    if !r.no_deps {
        super::up::wait_dependencies(ctx, &p, &s, r.timeout, &mut progress)?;
    }
    let name = r.name.clone().unwrap_or_else(|| pod_name(&s.name));
    let pod = one_off_pod(&p, &s, &name, &r.change);
    let path = format!("/api/v1/namespaces/{}/pods/{name}", p.namespace);
    ctx.client
        .create(&format!("/api/v1/namespaces/{}/pods", p.namespace), &pod)
        .with_context(|| format!("services.{}: creating its one-off pod", s.name))?;
    if r.detach {
        writeln!(out, "{name}")?;
        return Ok(true);
    }
    let code = follow(ctx, &path, &name, out);
    if r.rm {
        match ctx.client.delete(&path) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e).context(format!("deleting pod {name} (--rm)")),
        }
    }
    let code = code?;
    if code != 0 {
        out.flush()?;
        std::process::exit(code.clamp(1, 255) as i32);
    }
    Ok(true)
}

/// Waits until pod `name` runs, streams its log to `out`, and returns its
/// exit code.
fn follow(ctx: &Context, path: &str, name: &str, out: &mut dyn Write) -> anyhow::Result<i64> {
    let start = Instant::now();
    loop {
        let pod = ctx.client.get(path, &[])?;
        if let Some(why) = crate::docker::run::cannot_start(&pod) {
            bail!("pod {name} cannot start: {why}");
        }
        let state = &pod["status"]["containerStatuses"][0]["state"];
        if state.get("running").is_some() || state.get("terminated").is_some() {
            break;
        }
        if start.elapsed() > START_TIMEOUT {
            bail!(
                "pod {name} did not start within {}s (bramble describe pod {name} says why)",
                START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // The follow ends when the container has exited.
    let body = ctx
        .client
        .stream(&format!("{path}/log"), &[("follow", "true")], None)?;
    for line in BufReader::new(body).lines() {
        let line = line.context("reading the log")?;
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    let start = Instant::now();
    loop {
        let pod = ctx.client.get(path, &[])?;
        if let Some(code) = terminated(&pod) {
            return Ok(code);
        }
        if start.elapsed() > START_TIMEOUT {
            bail!("pod {name}: its log ended but it has not finished");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::plan::{PROJECT_LABEL, Workload};

    #[test]
    fn a_one_off_pod_runs_the_template_once_with_the_command_and_no_service_label() {
        let template = json!({"metadata": {"labels": {PROJECT_LABEL: "shop", SERVICE_LABEL: "web"},
                                           "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "web", "image": "busybox", "command": ["sh"], "args": ["-c", "httpd"]}]}});
        let s = ServicePlan {
            name: "web".into(),
            workload: Workload::Deployment,
            objects: vec![json!({"kind": "Deployment", "spec": {"template": template}})],
            waits: Vec::new(),
            build: None,
        };
        let p = Plan {
            project: "shop".into(),
            namespace: "shop".into(),
            namespace_object: json!({}),
            shared: Vec::new(),
            services: Vec::new(),
            defined: Default::default(),
            warnings: Vec::new(),
        };
        let change = |command: &[&str]| Change {
            command: command.iter().map(|w| w.to_string()).collect(),
            ..Change::default()
        };
        let pod = one_off_pod(&p, &s, "web-run-1", &change(&["-c", "echo hi"]));
        assert_eq!(pod["metadata"]["name"], "web-run-1");
        assert_eq!(pod["metadata"]["namespace"], "shop");
        assert_eq!(
            pod["metadata"]["labels"],
            json!({PROJECT_LABEL: "shop", ONEOFF_LABEL: "True", RUN_OF_LABEL: "web"})
        );
        assert_eq!(pod["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["sh"]), "the entrypoint stays");
        assert_eq!(c["args"], json!(["-c", "echo hi"]));
        let own = one_off_pod(&p, &s, "web-run-2", &change(&[]));
        assert_eq!(own["spec"]["containers"][0]["args"], json!(["-c", "httpd"]));
        assert!(pod_name("web").starts_with("web-run-"));

        let shell = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let flags = Change::parse(
            &[],
            &["MODE=test".into(), "HOME".into(), "UNSET".into()],
            Some("python3 -m 'my tool'"),
            Some("/srv"),
            &["team=a".into()],
            &shell,
        )
        .unwrap();
        let pod = one_off_pod(&p, &s, "web-run-3", &flags);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["python3", "-m", "my tool"]));
        assert!(
            c.get("args").is_none(),
            "the service's args go with its entrypoint: {c}"
        );
        assert_eq!(c["workingDir"], "/srv");
        assert_eq!(
            c["env"],
            json!([{"name": "MODE", "value": "test"}, {"name": "HOME", "value": "/root"}])
        );
        assert_eq!(pod["metadata"]["labels"]["team"], "a");
        let bad = |env: &[&str], ep: Option<&str>, labels: &[&str]| {
            let s = |l: &[&str]| l.iter().map(|w| w.to_string()).collect::<Vec<_>>();
            Change::parse(&[], &s(env), ep, None, &s(labels), &shell)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(&["=x"], None, &[]).contains("no name"));
        assert!(bad(&[], Some("sh -c 'x"), &[]).contains("unbalanced quotes"));
        assert!(bad(&[], None, &["novalue"]).contains("KEY=VAL"));
    }
}
