//! Which Compose keys Bramble honours, which it accepts with a warning
//! because they mean nothing on a fleet, and which it refuses: every key of
//! the document is judged here, by path, before the model is read, so
//! nothing is silently dropped (`services.web.ipc: not supported`).

use serde_yaml_ng::Value;

use super::load::scalar;

/// What Bramble makes of the document's keys.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    /// `path: reason`, one per refused key.
    pub refused: Vec<String>,
    /// One per accepted key that has no effect.
    pub warnings: Vec<String>,
}

const TOP: &[&str] = &["name", "services", "volumes", "configs", "secrets"];
const SERVICE: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "configs",
    "secrets",
    "depends_on",
    "healthcheck",
    "deploy",
    "scale",
    "restart",
    "devices",
    "privileged",
    "read_only",
    "cap_add",
    "cap_drop",
    "user",
    "working_dir",
    "hostname",
    "network_mode",
    "labels",
    "profiles",
    "stop_grace_period",
    "pull_policy",
    "stdin_open",
    "tty",
];
/// Service keys with no meaning on a fleet: accepted, with a warning.
const SERVICE_IGNORED: &[(&str, &str)] = &[
    (
        "container_name",
        "pods are named by Bramble; `compose ps` lists them",
    ),
    (
        "networks",
        "every service of a project shares its namespace's network; peers reach each other by service name",
    ),
    ("links", "services reach each other by name without links"),
    (
        "logging",
        "the agent keeps container logs; read them with `compose logs`",
    ),
    (
        "platform",
        "a node runs the image variant of its own platform",
    ),
    ("init", "the container's process runs as PID 1"),
];
/// The keys of a service's `build` Bramble honours; [`BUILD_REFUSED`]
/// says why some others cannot be.
const BUILD: &[&str] = &[
    "context",
    "dockerfile",
    "args",
    "target",
    "platforms",
    "no_cache",
];
const BUILD_REFUSED: &[(&str, &str)] = &[
    (
        "dockerfile_inline",
        "write the Dockerfile into the context and name it with `dockerfile`",
    ),
    ("tags", "a build names one image: the service's `image`"),
    (
        "ssh",
        "builds run on the boards, which cannot reach this machine's SSH agent",
    ),
    (
        "secrets",
        "builds run on the boards, which get no build secrets",
    ),
    (
        "additional_contexts",
        "a build has one context (the `context` directory)",
    ),
    (
        "cache_from",
        "each board keeps its own layer cache; `no_cache: true` bypasses it",
    ),
    (
        "cache_to",
        "each board keeps its own layer cache; `no_cache: true` bypasses it",
    ),
    (
        "pull",
        "base images come from the hub's registry, as they are there",
    ),
];
const HEALTHCHECK: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "start_interval",
    "disable",
];
const DEPLOY: &[&str] = &[
    "replicas",
    "resources",
    "placement",
    "restart_policy",
    "mode",
    "labels",
];
const DEPLOY_IGNORED: &[(&str, &str)] = &[
    ("update_config", "a Deployment rolls pods one at a time"),
    ("rollback_config", "roll back with `bramble rollout undo`"),
    ("endpoint_mode", "peers reach the service by name"),
];
const PLACEMENT: &[&str] = &["constraints"];
const RESOURCES: &[&str] = &["limits", "reservations"];
const RESOURCE_SET: &[&str] = &["cpus", "memory"];
const TOP_VOLUME: &[&str] = &["driver", "external", "name", "labels"];
const TOP_FILE: &[&str] = &["file", "content", "environment", "external", "name"];
const NETWORK_IGNORED: &[&str] = &["driver", "name", "external", "labels", "attachable"];

/// Judges every key of the merged document.
pub fn check(doc: &Value) -> Verdict {
    let mut v = Verdict::default();
    let Some(top) = doc.as_mapping() else {
        return v;
    };
    for (k, val) in top {
        let key = key_text(k);
        match key.as_str() {
            "version" => v
                .warnings
                .push("version: the attribute `version` is obsolete, it is ignored".into()),
            "networks" => networks(val, &mut v),
            k if k.starts_with("x-") => {}
            k if TOP.contains(&k) => {}
            k => v.refused.push(format!("{k}: not supported")),
        }
    }
    if let Some(services) = doc.get("services").and_then(Value::as_mapping) {
        for (name, svc) in services {
            service(&format!("services.{}", key_text(name)), svc, &mut v);
        }
    }
    for (section, allowed) in [
        ("volumes", TOP_VOLUME),
        ("configs", TOP_FILE),
        ("secrets", TOP_FILE),
    ] {
        if let Some(m) = doc.get(section).and_then(Value::as_mapping) {
            for (name, item) in m {
                keys(
                    &format!("{section}.{}", key_text(name)),
                    item,
                    allowed,
                    &[],
                    &mut v,
                );
            }
        }
    }
    v
}

fn key_text(k: &Value) -> String {
    scalar(k).unwrap_or_else(|| format!("{k:?}"))
}

/// Refuses the keys of `m` at `path` not in `allowed`, warning for `ignored`.
fn keys(path: &str, m: &Value, allowed: &[&str], ignored: &[(&str, &str)], v: &mut Verdict) {
    let Some(m) = m.as_mapping() else { return };
    for k in m.keys() {
        let key = key_text(k);
        if allowed.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        }
        match ignored.iter().find(|(i, _)| *i == key) {
            Some((_, why)) => v.warnings.push(format!("{path}.{key}: ignored: {why}")),
            None => v.refused.push(format!("{path}.{key}: not supported")),
        }
    }
}

fn service(path: &str, svc: &Value, v: &mut Verdict) {
    match svc.get("build") {
        // A built image is built for the service's `platform`.
        Some(b) => {
            let ignored: Vec<_> = SERVICE_IGNORED
                .iter()
                .copied()
                .filter(|(k, _)| *k != "platform")
                .collect();
            let mut allowed = SERVICE.to_vec();
            allowed.push("platform");
            keys(path, svc, &allowed, &ignored, v);
            build(&format!("{path}.build"), b, v);
        }
        None => keys(path, svc, SERVICE, SERVICE_IGNORED, v),
    }
    if let Some(h) = svc.get("healthcheck") {
        keys(&format!("{path}.healthcheck"), h, HEALTHCHECK, &[], v);
    }
    if let Some(d) = svc.get("deploy") {
        let dp = format!("{path}.deploy");
        keys(&dp, d, DEPLOY, DEPLOY_IGNORED, v);
        if let Some(p) = d.get("placement") {
            keys(&format!("{dp}.placement"), p, PLACEMENT, &[], v);
        }
        if let Some(r) = d.get("resources") {
            keys(&format!("{dp}.resources"), r, RESOURCES, &[], v);
            for part in RESOURCES {
                if let Some(s) = r.get(part) {
                    keys(&format!("{dp}.resources.{part}"), s, RESOURCE_SET, &[], v);
                }
            }
        }
    }
    if let Some(net) = svc.get("networks").and_then(Value::as_mapping) {
        for (name, opts) in net {
            keys(
                &format!("{path}.networks.{}", key_text(name)),
                opts,
                &["aliases"],
                &[],
                v,
            );
        }
    }
}

/// The long form of `build`: what [`BUILD`] lacks is refused, with
/// [`BUILD_REFUSED`]'s reason when it has one.
fn build(path: &str, b: &Value, v: &mut Verdict) {
    let Some(m) = b.as_mapping() else { return };
    for k in m.keys() {
        let key = key_text(k);
        if BUILD.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        }
        match BUILD_REFUSED.iter().find(|(r, _)| *r == key) {
            Some((_, why)) => v
                .refused
                .push(format!("{path}.{key}: not supported: {why}")),
            None => v.refused.push(format!("{path}.{key}: not supported")),
        }
    }
}

/// Networks with the default drivers are the namespace's one network;
/// custom drivers and address plans are refused.
fn networks(val: &Value, v: &mut Verdict) {
    let Some(m) = val.as_mapping() else { return };
    for (name, net) in m {
        let path = format!("networks.{}", key_text(name));
        let driver = net
            .get("driver")
            .and_then(Value::as_str)
            .unwrap_or("bridge");
        if !matches!(driver, "bridge" | "overlay" | "default") {
            v.refused.push(format!(
                "{path}.driver: {driver:?} not supported (a project has one network)"
            ));
        }
        if let Some(opts) = net.as_mapping() {
            for k in opts.keys() {
                let key = key_text(k);
                if !NETWORK_IGNORED.contains(&key.as_str()) && !key.starts_with("x-") {
                    v.refused.push(format!("{path}.{key}: not supported"));
                }
            }
        }
        v.warnings.push(format!(
            "{path}: ignored: the project's namespace is its network"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_keys_are_named_by_path_and_fleet_keys_warn() {
        let doc: Value = serde_yaml_ng::from_str(
            "version: '3'\nservices:\n  web:\n    image: x\n    ipc: host\n    container_name: w\n    x-note: 1\n    deploy:\n      placement: {preferences: []}\n    healthcheck: {test: [CMD, 'true'], bogus: 1}\nnetworks:\n  front: {}\n  dns: {ipam: {config: []}}\nsecrets:\n  s: {file: a, template_driver: golang}\nx-common: {}\n",
        )
        .unwrap();
        let v = check(&doc);
        assert_eq!(
            v.refused,
            [
                "networks.dns.ipam: not supported",
                "services.web.ipc: not supported",
                "services.web.healthcheck.bogus: not supported",
                "services.web.deploy.placement.preferences: not supported",
                "secrets.s.template_driver: not supported",
            ]
        );
        assert!(
            v.warnings.iter().any(|w| w.starts_with("version:")),
            "{:?}",
            v.warnings
        );
        assert!(
            v.warnings
                .iter()
                .any(|w| w.starts_with("services.web.container_name: ignored"))
        );
        assert!(
            v.warnings
                .iter()
                .any(|w| w.starts_with("networks.front: ignored"))
        );
    }

    #[test]
    fn build_keys_bramble_cannot_honour_are_refused_with_why() {
        let doc: Value = serde_yaml_ng::from_str(
            "services:\n  web:\n    platform: linux/arm64\n    build:\n      context: .\n      args: [A=1]\n      no_cache: true\n      dockerfile_inline: FROM x\n      ssh: [default]\n      shm_size: 2g\n      x-note: 1\n  db:\n    image: x\n    platform: linux/arm64\n",
        )
        .unwrap();
        let v = check(&doc);
        assert_eq!(
            v.refused,
            [
                "services.web.build.dockerfile_inline: not supported: write the Dockerfile into the context and name it with `dockerfile`",
                "services.web.build.ssh: not supported: builds run on the boards, which cannot reach this machine's SSH agent",
                "services.web.build.shm_size: not supported",
            ]
        );
        // `platform` is what a build is for; without a build it warns.
        assert_eq!(
            v.warnings,
            ["services.db.platform: ignored: a node runs the image variant of its own platform"]
        );
    }
}
