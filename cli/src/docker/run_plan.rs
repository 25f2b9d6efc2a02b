//! What `bramble run` creates (pure): with `--restart always` (the default)
//! a Deployment, with `on-failure` a Job, with `no` a Pod, all named NAME
//! and labelled [`RUN_LABEL`]`=NAME`; for published ports a Service NAME of
//! `type: LoadBalancer` (the hub serves each HOSTPORT and forwards to the
//! container's PORT); for named volumes the PersistentVolumeClaims to create
//! if missing (kept by `bramble rm`, as docker keeps named volumes).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::run_spec::{Proto, Publish, Source, Volume};

/// The label on everything `bramble run` makes (value: the run's name).
pub const RUN_LABEL: &str = "bramble.dev/run";
/// `app.kubernetes.io/managed-by` of what `bramble run` makes.
pub const MANAGED_BY: &str = "bramble-run";
/// Size requested for a named volume `bramble run` creates.
pub const VOLUME_SIZE: &str = "1Gi";

/// How the container is restarted, as `docker run --restart` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Restart {
    /// Always (a Deployment: kept running, replaced when its node fails).
    Always,
    /// Until it succeeds (a Job).
    OnFailure,
    /// Never (a Pod that runs once).
    No,
}

/// Everything `bramble run` was told, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub name: String,
    pub image: String,
    pub publish: Vec<Publish>,
    pub env: Vec<(String, String)>,
    pub volumes: Vec<Volume>,
    pub replicas: i32,
    pub restart: Restart,
    /// (`kubernetes.io/os`, `kubernetes.io/arch`).
    pub platform: Option<(String, String)>,
    pub node: Option<String>,
    pub devices: Vec<String>,
    pub privileged: bool,
    pub entrypoint: Option<String>,
    pub workdir: Option<String>,
    /// Seconds between SIGTERM and SIGKILL when a pod stops (docker's
    /// `--stop-timeout`, 10 by default as there).
    pub stop_timeout: u32,
    /// Arguments to the image's entrypoint (replacing its `CMD`).
    pub command: Vec<String>,
}

/// The objects to create, in order: claims, the workload, the Service.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub claims: Vec<Value>,
    pub workload: Value,
    pub service: Option<Value>,
}

/// Why a run cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("--replicas {0}: only --restart always runs replicas (a Job or Pod runs once)")]
    ReplicasOnce(i32),
    #[error("--replicas {0}: must be 0 or more")]
    NegativeReplicas(i32),
    #[error(
        "-p {a} and -p {b}: both publish port {port}/{proto}; publish each port of the hub once"
    )]
    PublishedTwice {
        a: String,
        b: String,
        port: u16,
        proto: Proto,
    },
}

fn publish_text(p: &Publish) -> String {
    format!("{}:{}/{}", p.host, p.container, p.protocol)
}

/// The objects for `spec` in `namespace`.
pub fn plan(spec: &RunSpec, namespace: &str) -> Result<RunPlan, PlanError> {
    if spec.replicas < 0 {
        return Err(PlanError::NegativeReplicas(spec.replicas));
    }
    if spec.restart != Restart::Always && spec.replicas != 1 {
        return Err(PlanError::ReplicasOnce(spec.replicas));
    }
    let mut seen: BTreeMap<(u16, Proto), &Publish> = BTreeMap::new();
    for p in &spec.publish {
        if let Some(first) = seen.insert((p.host, p.protocol), p) {
            return Err(PlanError::PublishedTwice {
                a: publish_text(first),
                b: publish_text(p),
                port: p.host,
                proto: p.protocol,
            });
        }
    }
    let labels = json!({RUN_LABEL: spec.name});
    let meta = |kind_labels: bool| {
        let mut m = json!({"name": spec.name, "namespace": namespace, "labels": labels.clone()});
        if kind_labels {
            m["labels"]["app.kubernetes.io/managed-by"] = json!(MANAGED_BY);
        }
        m
    };
    let pod_spec = pod_spec(spec);
    let mut template_meta = json!({"labels": labels.clone()});
    if !spec.devices.is_empty() {
        template_meta["annotations"] = json!({
            bramble_api::objects::pod::DEVICES_ANNOTATION: spec.devices.join(",")
        });
    }
    let workload = match spec.restart {
        Restart::Always => json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(true),
            "spec": {
                "replicas": spec.replicas,
                "selector": {"matchLabels": labels.clone()},
                "template": {"metadata": template_meta, "spec": pod_spec},
            }
        }),
        Restart::OnFailure => {
            let mut s = pod_spec;
            s["restartPolicy"] = json!("OnFailure");
            json!({
                "apiVersion": "batch/v1", "kind": "Job", "metadata": meta(true),
                "spec": {"template": {"metadata": template_meta, "spec": s}}
            })
        }
        Restart::No => {
            let mut s = pod_spec;
            s["restartPolicy"] = json!("Never");
            let mut m = meta(true);
            if let Some(a) = template_meta.get("annotations") {
                m["annotations"] = a.clone();
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": s})
        }
    };
    let service = (!spec.publish.is_empty()).then(|| {
        let ports: Vec<Value> = spec
            .publish
            .iter()
            .map(|p| {
                json!({"name": format!("{}-{}", p.protocol, p.host), "port": p.host,
                    "targetPort": p.container, "protocol": p.protocol.k8s()})
            })
            .collect();
        json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta(true),
            "spec": {"type": "LoadBalancer", "selector": labels.clone(), "ports": ports}
        })
    });
    let claims = spec
        .volumes
        .iter()
        .filter_map(|v| match &v.source {
            Source::Named(n) => Some(n),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|n| {
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": n, "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": MANAGED_BY}},
                "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": VOLUME_SIZE}}}
            })
        })
        .collect();
    Ok(RunPlan {
        claims,
        workload,
        service,
    })
}

/// The pod spec: one container named after the run.
fn pod_spec(spec: &RunSpec) -> Value {
    let mut c = json!({"name": spec.name, "image": spec.image});
    if let Some(e) = &spec.entrypoint {
        c["command"] = json!([e]);
    }
    if !spec.command.is_empty() {
        c["args"] = json!(spec.command);
    }
    if let Some(w) = &spec.workdir {
        c["workingDir"] = json!(w);
    }
    // Later -e of the same name wins, as in docker.
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in &spec.env {
        env.retain(|(x, _)| x != k);
        env.push((k.clone(), v.clone()));
    }
    if !env.is_empty() {
        c["env"] = json!(
            env.iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect::<Vec<_>>()
        );
    }
    let mut ports: Vec<(u16, Proto)> = spec
        .publish
        .iter()
        .map(|p| (p.container, p.protocol))
        .collect();
    ports.sort();
    ports.dedup();
    if !ports.is_empty() {
        c["ports"] = json!(
            ports
                .iter()
                .map(|(p, proto)| json!({"containerPort": p, "protocol": proto.k8s()}))
                .collect::<Vec<_>>()
        );
    }
    if spec.privileged {
        c["securityContext"] = json!({"privileged": true});
    }
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let name = format!("v{i}");
        volumes.push(match &v.source {
            Source::Named(claim) => {
                json!({"name": name, "persistentVolumeClaim": {"claimName": claim}})
            }
            Source::Host(path) => json!({"name": name, "hostPath": {"path": path}}),
            Source::Anonymous => json!({"name": name, "emptyDir": {}}),
        });
        let mut m = json!({"name": name, "mountPath": v.path});
        if v.read_only {
            m["readOnly"] = json!(true);
        }
        mounts.push(m);
    }
    if !mounts.is_empty() {
        c["volumeMounts"] = json!(mounts);
    }
    let mut s = json!({"containers": [c], "terminationGracePeriodSeconds": spec.stop_timeout});
    if !volumes.is_empty() {
        s["volumes"] = json!(volumes);
    }
    let mut selector = serde_json::Map::new();
    if let Some((os, arch)) = &spec.platform {
        selector.insert("kubernetes.io/os".into(), json!(os));
        selector.insert("kubernetes.io/arch".into(), json!(arch));
    }
    if let Some(n) = &spec.node {
        selector.insert("kubernetes.io/hostname".into(), json!(n));
    }
    if !selector.is_empty() {
        s["nodeSelector"] = Value::Object(selector);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::run_spec::{parse_publish, parse_volume};

    fn spec() -> RunSpec {
        RunSpec {
            name: "web".into(),
            image: "bb:1".into(),
            publish: vec![parse_publish("8080:80").unwrap()],
            env: vec![("A".into(), "1".into()), ("A".into(), "2".into())],
            volumes: vec![
                parse_volume("data:/data").unwrap(),
                parse_volume("/srv:/srv:ro").unwrap(),
                parse_volume("/tmp/x").unwrap(),
            ],
            replicas: 2,
            restart: Restart::Always,
            platform: Some(("linux".into(), "arm64".into())),
            node: Some("pi-1".into()),
            devices: vec!["/dev/ttyUSB0".into()],
            privileged: true,
            entrypoint: None,
            workdir: Some("/data".into()),
            stop_timeout: 10,
            command: vec!["httpd".into(), "-f".into(), "-p".into(), "80".into()],
        }
    }

    #[test]
    fn a_deployment_and_a_load_balancer_for_restart_always() {
        let p = plan(&spec(), "apps").unwrap();
        let d = &p.workload;
        assert_eq!(d["kind"], "Deployment");
        assert_eq!(d["metadata"]["namespace"], "apps");
        assert_eq!(d["metadata"]["labels"][RUN_LABEL], "web");
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["spec"]["selector"]["matchLabels"][RUN_LABEL], "web");
        let t = &d["spec"]["template"];
        assert_eq!(t["metadata"]["labels"][RUN_LABEL], "web");
        assert_eq!(
            t["metadata"]["annotations"]["bramble.dev/devices"],
            "/dev/ttyUSB0"
        );
        let c = &t["spec"]["containers"][0];
        assert_eq!(c["name"], "web");
        assert_eq!(c["args"], json!(["httpd", "-f", "-p", "80"]));
        assert!(c.get("command").is_none(), "the image's entrypoint is kept");
        assert_eq!(c["env"], json!([{"name": "A", "value": "2"}]));
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(c["securityContext"]["privileged"], true);
        assert_eq!(c["workingDir"], "/data");
        assert_eq!(t["spec"]["terminationGracePeriodSeconds"], 10);
        assert_eq!(
            t["spec"]["volumes"],
            json!([{"name": "v0", "persistentVolumeClaim": {"claimName": "data"}},
                   {"name": "v1", "hostPath": {"path": "/srv"}},
                   {"name": "v2", "emptyDir": {}}])
        );
        assert_eq!(
            c["volumeMounts"][1],
            json!({"name": "v1", "mountPath": "/srv", "readOnly": true})
        );
        assert_eq!(
            t["spec"]["nodeSelector"],
            json!({"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64",
                   "kubernetes.io/hostname": "pi-1"})
        );
        let s = p.service.unwrap();
        assert_eq!(s["spec"]["type"], "LoadBalancer");
        assert_eq!(s["spec"]["selector"][RUN_LABEL], "web");
        assert_eq!(
            s["spec"]["ports"],
            json!([{"name": "tcp-8080", "port": 8080, "targetPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(p.claims.len(), 1);
        assert_eq!(p.claims[0]["metadata"]["name"], "data");
        assert_eq!(
            p.claims[0]["spec"]["resources"]["requests"]["storage"],
            VOLUME_SIZE
        );
    }

    #[test]
    fn a_job_for_on_failure_and_a_pod_for_no() {
        let mut s = spec();
        s.replicas = 1;
        s.publish.clear();
        s.entrypoint = Some("/bin/sh".into());
        s.restart = Restart::OnFailure;
        let p = plan(&s, "default").unwrap();
        assert_eq!(p.workload["kind"], "Job");
        assert_eq!(
            p.workload["spec"]["template"]["spec"]["restartPolicy"],
            "OnFailure"
        );
        assert_eq!(
            p.workload["spec"]["template"]["spec"]["containers"][0]["command"],
            json!(["/bin/sh"])
        );
        assert!(p.service.is_none());
        s.restart = Restart::No;
        let p = plan(&s, "default").unwrap();
        assert_eq!(p.workload["kind"], "Pod");
        assert_eq!(p.workload["spec"]["restartPolicy"], "Never");
        assert_eq!(p.workload["metadata"]["labels"][RUN_LABEL], "web");
        assert_eq!(
            p.workload["metadata"]["annotations"]["bramble.dev/devices"],
            "/dev/ttyUSB0"
        );
    }

    #[test]
    fn refusals_say_what_to_change() {
        let mut s = spec();
        s.restart = Restart::No;
        assert_eq!(plan(&s, "d").unwrap_err(), PlanError::ReplicasOnce(2));
        let mut s = spec();
        s.publish.push(parse_publish("8080:81").unwrap());
        assert_eq!(
            plan(&s, "d").unwrap_err().to_string(),
            "-p 8080:80/tcp and -p 8080:81/tcp: both publish port 8080/tcp; publish each port of the hub once"
        );
        s.publish[1] = parse_publish("8080:81/udp").unwrap();
        assert!(
            plan(&s, "d").is_ok(),
            "TCP and UDP of one port are two ports"
        );
    }
}
