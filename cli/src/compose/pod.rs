//! One Compose service → a pod template: the container (image, command,
//! environment, ports, security, resources, health check as readiness
//! probe) and the pod around it (volumes, devices, placement, host network).
//! Pure: files are read through the caller's reader.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::load::{as_map, scalar};
use super::model::{Command, Device, Healthcheck, Service};
use super::plan::{Ctx, labels_for};
use super::volumes;

/// Parses a compose duration (`1m30s`, `10s`, `500ms`) at `path`.
pub fn duration(s: &str, path: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{path}: {s:?} is not a duration ({e})"))
}

/// Whole seconds, at least 1 (probes count in seconds).
fn secs(s: &Option<String>, path: &str, default: u64) -> Result<u64, String> {
    match s {
        None => Ok(default),
        Some(s) => Ok(duration(s, path)?.as_secs_f64().ceil().max(1.0) as u64),
    }
}

/// `healthcheck` → a readiness probe, or `None` when there is none or it
/// is disabled. Docker marks an unhealthy container and keeps it running,
/// so no liveness probe is made: readiness is what peers and
/// `service_healthy` see. `start_period` only delays "unhealthy", which
/// readiness already reads as "not ready yet".
pub fn probe(h: &Healthcheck, path: &str) -> Result<Option<Value>, String> {
    if h.disable {
        return Ok(None);
    }
    let command = match &h.test {
        None => return Ok(None),
        Some(Command::Shell(s)) => vec!["/bin/sh".to_string(), "-c".into(), s.clone()],
        Some(Command::List(l)) => {
            let l: Vec<String> = l.iter().map(ToString::to_string).collect();
            match l.first().map(String::as_str) {
                Some("NONE") => return Ok(None),
                Some("CMD") if l.len() > 1 => l[1..].to_vec(),
                Some("CMD-SHELL") if l.len() == 2 => {
                    vec!["/bin/sh".into(), "-c".into(), l[1].clone()]
                }
                _ => {
                    return Err(format!(
                        "{path}.test: starts with NONE, CMD (and the command) or CMD-SHELL (and one string)"
                    ));
                }
            }
        }
    };
    let retries = h.retries.unwrap_or(3);
    if retries < 1 {
        return Err(format!("{path}.retries: must be at least 1"));
    }
    Ok(Some(json!({
        "exec": {"command": command},
        "periodSeconds": secs(&h.interval, &format!("{path}.interval"), 30)?,
        "timeoutSeconds": secs(&h.timeout, &format!("{path}.timeout"), 30)?,
        "failureThreshold": retries,
        "successThreshold": 1,
    })))
}

/// Docker's memory units (`512m`, `1g`, `100k`, `1024`, `2gb`) → a
/// Kubernetes quantity; `None` if it is not one.
pub fn memory(s: &str) -> Option<String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let (suffix, shift) = match unit {
        "" => ("", 0),
        "k" => ("Ki", 10),
        "m" => ("Mi", 20),
        "g" => ("Gi", 30),
        "t" => ("Ti", 40),
        _ => return None,
    };
    if let Ok(n) = num.parse::<u64>() {
        return Some(format!("{n}{suffix}"));
    }
    // `1.5g`: in bytes, as docker computes it.
    let f: f64 = num
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite() && *f >= 0.0)?;
    Some(format!("{}", (f * (1u64 << shift) as f64) as u64))
}

fn resources(svc: &Service, path: &str, errs: &mut Vec<String>) -> Value {
    let mut out = Map::new();
    let Some(r) = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()) else {
        return Value::Object(out);
    };
    for (part, set) in [("limits", &r.limits), ("requests", &r.reservations)] {
        let Some(set) = set else { continue };
        let p = format!(
            "{path}.deploy.resources.{}",
            if part == "limits" {
                "limits"
            } else {
                "reservations"
            }
        );
        let mut m = Map::new();
        if let Some(c) = &set.cpus {
            match c.to_string().parse::<f64>() {
                Ok(f) if f > 0.0 => {
                    m.insert(
                        "cpu".into(),
                        format!("{}m", (f * 1000.0).round() as u64).into(),
                    );
                }
                _ => errs.push(format!(
                    "{p}.cpus: {c}: a positive number of CPUs, e.g. 0.5"
                )),
            }
        }
        if let Some(mem) = &set.memory {
            match memory(mem) {
                Some(q) => {
                    m.insert("memory".into(), q.into());
                }
                None => errs.push(format!("{p}.memory: {mem:?}: a size like 512m or 1g")),
            }
        }
        if !m.is_empty() {
            out.insert(part.into(), Value::Object(m));
        }
    }
    Value::Object(out)
}

/// `node.labels.K == V`, `node.platform.arch == aarch64`,
/// `node.platform.os == linux`, `node.hostname == H` → nodeSelector.
pub fn node_selector(
    constraints: &[String],
    path: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut sel = BTreeMap::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = format!("{path}.deploy.placement.constraints[{i}]");
        let Some((lhs, rhs)) = c.split_once("==") else {
            return Err(format!(
                "{p}: {c:?}: only `==` constraints are supported (a nodeSelector matches equal labels)"
            ));
        };
        let (lhs, rhs) = (lhs.trim(), rhs.trim().to_string());
        let (key, value) = match lhs {
            "node.platform.arch" => ("kubernetes.io/arch".to_string(), arch(&rhs)),
            "node.platform.os" => ("kubernetes.io/os".to_string(), rhs),
            "node.hostname" => ("kubernetes.io/hostname".to_string(), rhs),
            l => match l.strip_prefix("node.labels.") {
                Some(k) => (k.to_string(), rhs),
                None => {
                    return Err(format!(
                        "{p}: {lhs:?} not supported: use node.labels.KEY, node.platform.arch, node.platform.os or node.hostname"
                    ));
                }
            },
        };
        sel.insert(key, value);
    }
    Ok(sel)
}

/// `uname -m` names (as Swarm's `node.platform.arch` uses) → GOARCH names
/// (as nodes' `kubernetes.io/arch` label carries).
fn arch(a: &str) -> String {
    match a {
        "x86_64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armv7l" | "armv7" | "armhf" | "armv6l" => "arm",
        other => other,
    }
    .to_string()
}

/// `user: uid[:gid]` → (runAsUser, runAsGroup).
fn user(u: &str, path: &str) -> Result<(i64, Option<i64>), String> {
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let num = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0);
    match (num(uid), gid.map(num)) {
        (Some(uid), None) => Ok((uid, None)),
        (Some(uid), Some(Some(gid))) => Ok((uid, Some(gid))),
        _ => Err(format!(
            "{path}.user: {u:?}: Bramble needs numeric ids (`1000` or `1000:1000`): user names are resolved by the image, which the hub does not read"
        )),
    }
}

fn devices(list: &[Device], path: &str, errs: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let (src, target) = match d {
            Device::Short(s) => {
                let mut parts = s.split(':');
                let src = parts.next().unwrap_or("").to_string();
                (src, parts.next().map(str::to_string))
            }
            Device::Long { source, target, .. } => (source.clone(), target.clone()),
        };
        if target.as_deref().is_some_and(|t| t != src) {
            errs.push(format!(
                "{path}.devices[{i}]: a device appears at its own path on Bramble; mapping {src} to another path is not supported"
            ));
        } else {
            out.push(src);
        }
    }
    out
}

/// The environment: `env_file`s in order, then `environment` (a bare key
/// takes the value from the project's variables, or is left out).
fn environment(svc: &Service, ctx: &Ctx, path: &str, errs: &mut Vec<String>) -> Vec<Value> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let lookup = |k: &str| ctx.vars.get(k).cloned();
    for f in svc.env_file.iter().flat_map(|e| e.to_vec()) {
        let (p, required) = match f {
            super::model::EnvFile::Path(p) => (p, true),
            super::model::EnvFile::Long { path, required } => (path, required),
        };
        let full = ctx.dir.join(&p);
        match (ctx.read)(&full) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                match super::dotenv::parse(&text, &full.display().to_string()) {
                    Ok(pairs) => {
                        for (k, v) in pairs {
                            if let Some(v) = v.or_else(|| lookup(&k)) {
                                env.insert(k, v);
                            }
                        }
                    }
                    Err(e) => errs.push(format!("{path}.env_file: {e}")),
                }
            }
            Err(_) if !required => {}
            Err(e) => errs.push(format!("{path}.env_file: {}: {e}", full.display())),
        }
    }
    if let Some(e) = &svc.environment {
        for (k, v) in as_map(e) {
            match scalar(&v) {
                Some(v) => {
                    env.insert(k, v);
                }
                None => {
                    if let Some(v) = lookup(&k) {
                        env.insert(k, v);
                    }
                }
            }
        }
    }
    env.into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

fn argv(c: &Option<Command>, path: &str, errs: &mut Vec<String>) -> Option<Vec<String>> {
    let c = c.as_ref()?;
    match c.argv() {
        Some(v) => Some(v),
        None => {
            errs.push(format!("{path}: a quote is never closed"));
            None
        }
    }
}

/// The pod template of service `name`.
pub fn template(name: &str, svc: &Service, ctx: &Ctx, errs: &mut Vec<String>) -> Value {
    let path = format!("services.{name}");
    let image = svc.image.clone().unwrap_or_default();
    let mut c = Map::new();
    c.insert("name".into(), name.into());
    c.insert("image".into(), image.into());
    if let Some(e) = argv(&svc.entrypoint, &format!("{path}.entrypoint"), errs) {
        c.insert("command".into(), json!(e));
    }
    if let Some(a) = argv(&svc.command, &format!("{path}.command"), errs) {
        c.insert("args".into(), json!(a));
    }
    if let Some(w) = &svc.working_dir {
        c.insert("workingDir".into(), w.clone().into());
    }
    let env = environment(svc, ctx, &path, errs);
    if !env.is_empty() {
        c.insert("env".into(), env.into());
    }
    let ports: Vec<Value> = super::ports::container_ports(svc, &path, errs);
    if !ports.is_empty() {
        c.insert("ports".into(), ports.into());
    }
    let res = resources(svc, &path, errs);
    if res.as_object().is_some_and(|m| !m.is_empty()) {
        c.insert("resources".into(), res);
    }
    if let Some(h) = &svc.healthcheck {
        match probe(h, &format!("{path}.healthcheck")) {
            Ok(Some(p)) => {
                c.insert("readinessProbe".into(), p);
            }
            Ok(None) => {}
            Err(e) => errs.push(e),
        }
    }
    let mut sc = Map::new();
    if svc.privileged {
        sc.insert("privileged".into(), true.into());
    }
    if svc.read_only {
        sc.insert("readOnlyRootFilesystem".into(), true.into());
    }
    if !svc.cap_add.is_empty() || !svc.cap_drop.is_empty() {
        let strip = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .map(|c| c.trim_start_matches("CAP_").to_string())
                .collect()
        };
        sc.insert(
            "capabilities".into(),
            json!({"add": strip(&svc.cap_add), "drop": strip(&svc.cap_drop)}),
        );
    }
    if let Some(u) = &svc.user {
        match user(&u.to_string(), &path) {
            Ok((uid, gid)) => {
                sc.insert("runAsUser".into(), uid.into());
                if let Some(g) = gid {
                    sc.insert("runAsGroup".into(), g.into());
                }
            }
            Err(e) => errs.push(e),
        }
    }
    if !sc.is_empty() {
        c.insert("securityContext".into(), Value::Object(sc));
    }
    match svc.pull_policy.as_deref() {
        None => {}
        Some("always") => {
            c.insert("imagePullPolicy".into(), "Always".into());
        }
        Some("never") => {
            c.insert("imagePullPolicy".into(), "Never".into());
        }
        Some("missing" | "if_not_present") => {
            c.insert("imagePullPolicy".into(), "IfNotPresent".into());
        }
        // `up` builds the image each time (see `compose::build`).
        Some("build") if svc.build.is_some() => {}
        Some(other) => errs.push(format!(
            "{path}.pull_policy: {other:?} not supported (always, never, missing, if_not_present; build with a build section)"
        )),
    }
    if svc.stdin_open {
        c.insert("stdin".into(), true.into());
    }
    if svc.tty {
        c.insert("tty".into(), true.into());
    }
    let (vols, mounts) = volumes::for_service(name, svc, ctx, errs);
    if !mounts.is_empty() {
        c.insert("volumeMounts".into(), mounts.into());
    }

    let mut spec = Map::new();
    spec.insert("containers".into(), json!([Value::Object(c)]));
    if !vols.is_empty() {
        spec.insert("volumes".into(), vols.into());
    }
    if let Some(h) = &svc.hostname {
        spec.insert("hostname".into(), h.clone().into());
    }
    match svc.network_mode.as_deref() {
        None | Some("bridge" | "default") => {}
        Some("host") => {
            spec.insert("hostNetwork".into(), true.into());
        }
        Some(other) => errs.push(format!(
            "{path}.network_mode: {other:?} not supported (host, or leave it out)"
        )),
    }
    if let Some(p) = svc.deploy.as_ref().and_then(|d| d.placement.as_ref()) {
        match node_selector(&p.constraints, &path) {
            Ok(sel) if !sel.is_empty() => {
                spec.insert("nodeSelector".into(), json!(sel));
            }
            Ok(_) => {}
            Err(e) => errs.push(e),
        }
    }
    if let Some(g) = &svc.stop_grace_period {
        match duration(g, &format!("{path}.stop_grace_period")) {
            Ok(d) => {
                spec.insert("terminationGracePeriodSeconds".into(), d.as_secs().into());
            }
            Err(e) => errs.push(e),
        }
    }
    let mut meta = json!({"labels": labels_for(ctx.project, Some(name), svc)});
    let devs = devices(&svc.devices, &path, errs);
    if !devs.is_empty() {
        meta["annotations"] =
            json!({ bramble_api::objects::pod::DEVICES_ANNOTATION: devs.join(",") });
    }
    json!({"metadata": meta, "spec": Value::Object(spec)})
}

/// Whether `p` (relative to the project) names a path on this machine.
pub fn is_host_path(p: &str) -> bool {
    p.starts_with('/') || p.starts_with('.') || p.starts_with('~') || Path::new(p).is_absolute()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_constraints() {
        assert_eq!(memory("512m").as_deref(), Some("512Mi"));
        assert_eq!(memory("1G").as_deref(), Some("1Gi"));
        assert_eq!(memory("2gb").as_deref(), Some("2Gi"));
        assert_eq!(memory("1024").as_deref(), Some("1024"));
        assert_eq!(memory("1.5G").as_deref(), Some("1610612736"));
        assert_eq!(memory("lots"), None);
        let sel = node_selector(
            &[
                "node.labels.room == attic".into(),
                "node.platform.arch==aarch64".into(),
            ],
            "services.s",
        )
        .unwrap();
        assert_eq!(sel["room"], "attic");
        assert_eq!(sel["kubernetes.io/arch"], "arm64");
        let e = node_selector(&["node.role != manager".into()], "services.s").unwrap_err();
        assert!(
            e.starts_with("services.s.deploy.placement.constraints[0]:"),
            "{e}"
        );
    }

    #[test]
    fn healthchecks_become_readiness_probes() {
        let h: Healthcheck = serde_yaml_ng::from_str(
            "test: ['CMD-SHELL', 'wget -q localhost']\ninterval: 1m30s\ntimeout: 500ms\nretries: 5",
        )
        .unwrap();
        let p = probe(&h, "services.w.healthcheck").unwrap().unwrap();
        assert_eq!(
            p["exec"]["command"],
            json!(["/bin/sh", "-c", "wget -q localhost"])
        );
        assert_eq!(p["periodSeconds"], 90);
        assert_eq!(p["timeoutSeconds"], 1);
        assert_eq!(p["failureThreshold"], 5);
        let h: Healthcheck = serde_yaml_ng::from_str("test: [CMD, pg_isready, -U, x]").unwrap();
        let p = probe(&h, "x").unwrap().unwrap();
        assert_eq!(p["exec"]["command"], json!(["pg_isready", "-U", "x"]));
        let h: Healthcheck = serde_yaml_ng::from_str("test: [CMD]\n").unwrap();
        assert!(probe(&h, "x").is_err());
        let h: Healthcheck = serde_yaml_ng::from_str("disable: true").unwrap();
        assert!(probe(&h, "x").unwrap().is_none());
    }
}
