//! Storage: named volumes → PersistentVolumeClaims on the `local-path`
//! class, bind mounts → `hostPath` (subject to Pod Security), `tmpfs` and
//! anonymous volumes → `emptyDir`, file-based `configs`/`secrets` →
//! ConfigMaps/Secrets mounted one file each (`subPath`) at their targets.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::model::{FileRef, LongVolume, Service, TopFile, VolumeMount};
use super::plan::{Ctx, labels_for, object_name};
use super::pod::is_host_path;

/// The size a claim asks for: Compose volumes have none, and `local-path`
/// does not enforce it.
pub const CLAIM_SIZE: &str = "1Gi";

/// The claim name of top-level volume `key`.
pub fn claim_name(ctx: &Ctx, key: &str) -> String {
    let named = ctx
        .project_model
        .volumes
        .get(key)
        .cloned()
        .flatten()
        .and_then(|v| v.name);
    object_name(named.as_deref().unwrap_or(key))
}

/// PVCs, ConfigMaps and Secrets of the project (not the external ones).
pub fn shared_objects(ctx: &Ctx, errs: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::new();
    let labels = labels_for(ctx.project, None, &Service::default());
    for (key, v) in &ctx.project_model.volumes {
        let v = v.clone().unwrap_or_default();
        let path = format!("volumes.{key}");
        match v.driver.as_deref() {
            None | Some("local") => {}
            Some(d) => {
                errs.push(format!(
                    "{path}.driver: {d:?} not supported (volumes are local-path claims)"
                ));
                continue;
            }
        }
        if v.external {
            continue;
        }
        out.push(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim_name(ctx, key), "labels": labels},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                     "resources": {"requests": {"storage": CLAIM_SIZE}}}
        }));
    }
    for (section, kind) in [("configs", "ConfigMap"), ("secrets", "Secret")] {
        let files = if kind == "ConfigMap" {
            &ctx.project_model.configs
        } else {
            &ctx.project_model.secrets
        };
        for (key, f) in files {
            if f.external {
                continue;
            }
            let path = format!("{section}.{key}");
            let Some(bytes) = file_content(f, ctx, &path, errs) else {
                continue;
            };
            let mut o = json!({"apiVersion": "v1", "kind": kind,
                "metadata": {"name": object_name(f.name.as_deref().unwrap_or(key)), "labels": labels}});
            let k = data_key(key);
            if kind == "Secret" {
                o["data"] = json!({ k: base64::engine::general_purpose::STANDARD.encode(&bytes) });
            } else {
                match String::from_utf8(bytes) {
                    Ok(s) => o["data"] = json!({ k: s }),
                    Err(b) => {
                        o["binaryData"] = json!({ k: base64::engine::general_purpose::STANDARD.encode(b.as_bytes()) })
                    }
                }
            }
            out.push(o);
        }
    }
    out
}

fn file_content(f: &TopFile, ctx: &Ctx, path: &str, errs: &mut Vec<String>) -> Option<Vec<u8>> {
    match (&f.file, &f.content, &f.environment) {
        (Some(file), None, None) => {
            let full = ctx.dir.join(file);
            match (ctx.read)(&full) {
                Ok(b) => Some(b),
                Err(e) => {
                    errs.push(format!("{path}.file: {}: {e}", full.display()));
                    None
                }
            }
        }
        (None, Some(c), None) => Some(c.clone().into_bytes()),
        (None, None, Some(var)) => match ctx.vars.get(var) {
            Some(v) => Some(v.clone().into_bytes()),
            None => {
                errs.push(format!("{path}.environment: variable {var} is not set"));
                None
            }
        },
        _ => {
            errs.push(format!(
                "{path}: give exactly one of file, content, environment (or external: true)"
            ));
            None
        }
    }
}

/// A ConfigMap/Secret key from a compose name (`[-._a-zA-Z0-9]`).
fn data_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The pod volumes and the container's mounts of one service.
pub fn for_service(
    name: &str,
    svc: &Service,
    ctx: &Ctx,
    errs: &mut Vec<String>,
) -> (Vec<Value>, Vec<Value>) {
    let path = format!("services.{name}");
    let mut vols = Vec::new();
    let mut mounts = Vec::new();
    let add = |source: Map<String, Value>,
               mount: Value,
               vols: &mut Vec<Value>,
               mounts: &mut Vec<Value>| {
        let vname = format!("v{}", vols.len());
        let mut v = Value::Object(source);
        v["name"] = vname.clone().into();
        vols.push(v);
        let mut m = mount;
        m["name"] = vname.into();
        mounts.push(m);
    };
    for (i, v) in svc.volumes.iter().enumerate() {
        let p = format!("{path}.volumes[{i}]");
        let (kind, source, target, read_only) = match v {
            VolumeMount::Short(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                let (src, tgt, mode) = match parts.as_slice() {
                    [t] => (None, *t, ""),
                    [s, t] => (Some(*s), *t, ""),
                    [s, t, m] => (Some(*s), *t, *m),
                    _ => {
                        errs.push(format!("{p}: {s:?} is not SOURCE:TARGET[:MODE]"));
                        continue;
                    }
                };
                let ro = mode.split(',').any(|m| m == "ro");
                let kind = match src {
                    None => "anonymous",
                    Some(s) if is_host_path(s) => "bind",
                    Some(_) => "volume",
                };
                (
                    kind.to_string(),
                    src.map(str::to_string),
                    tgt.to_string(),
                    ro,
                )
            }
            VolumeMount::Long(l) => {
                let LongVolume {
                    type_,
                    source,
                    target,
                    read_only,
                    tmpfs,
                    ..
                } = &**l;
                if type_ == "tmpfs" {
                    let mut ed = json!({"medium": "Memory"});
                    if let Some(size) = tmpfs.as_ref().and_then(|t| t.size.as_ref()) {
                        match super::pod::memory(&size.to_string()) {
                            Some(q) => ed["sizeLimit"] = q.into(),
                            None => errs.push(format!("{p}.tmpfs.size: {size}: a size like 64m")),
                        }
                    }
                    let mut src = Map::new();
                    src.insert("emptyDir".into(), ed);
                    add(src, json!({"mountPath": target}), &mut vols, &mut mounts);
                    continue;
                }
                (type_.clone(), source.clone(), target.clone(), *read_only)
            }
        };
        let mut src = Map::new();
        match (kind.as_str(), source) {
            ("anonymous", _) | ("volume", None) => {
                src.insert("emptyDir".into(), json!({}));
            }
            ("volume", Some(s)) => {
                if !ctx.project_model.volumes.contains_key(&s) {
                    errs.push(format!("{p}: service {name:?} refers to undefined volume {s:?}: declare it under the top-level `volumes:`"));
                    continue;
                }
                src.insert(
                    "persistentVolumeClaim".into(),
                    json!({"claimName": claim_name(ctx, &s)}),
                );
            }
            ("bind", Some(s)) => {
                let host = if let Some(rest) = s.strip_prefix("~/") {
                    match ctx.vars.get("HOME") {
                        Some(h) => format!("{h}/{rest}"),
                        None => {
                            errs.push(format!("{p}: {s:?}: HOME is not set"));
                            continue;
                        }
                    }
                } else {
                    ctx.dir.join(&s).display().to_string()
                };
                src.insert("hostPath".into(), json!({"path": normalize(&host)}));
            }
            (other, _) => {
                errs.push(format!(
                    "{p}.type: {other:?} not supported (volume, bind, tmpfs)"
                ));
                continue;
            }
        }
        let mut m = json!({"mountPath": target});
        if read_only {
            m["readOnly"] = true.into();
        }
        add(src, m, &mut vols, &mut mounts);
    }
    for t in svc.tmpfs.iter().flat_map(|t| t.to_vec()) {
        let target = t.split(':').next().unwrap_or("").to_string();
        let mut src = Map::new();
        src.insert("emptyDir".into(), json!({"medium": "Memory"}));
        add(src, json!({"mountPath": target}), &mut vols, &mut mounts);
    }
    for (section, refs) in [("configs", &svc.configs), ("secrets", &svc.secrets)] {
        for (i, r) in refs.iter().enumerate() {
            let p = format!("{path}.{section}[{i}]");
            let key = r.source();
            let top = if section == "configs" {
                &ctx.project_model.configs
            } else {
                &ctx.project_model.secrets
            };
            let Some(f) = top.get(key) else {
                errs.push(format!(
                    "{p}: {section} {key:?} is not declared under the top-level `{section}:`"
                ));
                continue;
            };
            let target = match (section, r.target()) {
                ("configs", None) => format!("/{key}"),
                (_, None) => format!("/run/secrets/{key}"),
                ("secrets", Some(t)) if !t.starts_with('/') => format!("/run/secrets/{t}"),
                (_, Some(t)) => t.to_string(),
            };
            let obj = object_name(f.name.as_deref().unwrap_or(key));
            let k = data_key(key);
            let mut item = json!({"key": k, "path": k});
            if let FileRef::Long { mode: Some(m), .. } = r {
                let digits = m.to_string();
                match i32::from_str_radix(digits.trim_start_matches("0o"), 8) {
                    Ok(mode) if (0..=0o777).contains(&mode) => item["mode"] = mode.into(),
                    _ => errs.push(format!("{p}.mode: {m}: an octal file mode like 0440")),
                }
            }
            let mut src = Map::new();
            if section == "configs" {
                src.insert("configMap".into(), json!({"name": obj, "items": [item]}));
            } else {
                src.insert("secret".into(), json!({"secretName": obj, "items": [item]}));
            }
            add(
                src,
                json!({"mountPath": target, "subPath": k, "readOnly": true}),
                &mut vols,
                &mut mounts,
            );
        }
    }
    (vols, mounts)
}

/// Warnings for bind mounts with relative paths: compose resolves them
/// against the project directory, and the result is a path on the board
/// that runs the pod, which has no copy of this machine's files.
pub fn relative_bind_warnings(name: &str, svc: &Service, dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for (i, v) in svc.volumes.iter().enumerate() {
        let src = match v {
            VolumeMount::Short(s) => s.split(':').next().filter(|_| s.contains(':')),
            VolumeMount::Long(l) if l.type_ == "bind" => l.source.as_deref(),
            VolumeMount::Long(_) => None,
        };
        if let Some(s) = src.filter(|s| s.starts_with('.')) {
            out.push(format!(
                "services.{name}.volumes[{i}]: {s} is {} on the board that runs the pod, not on this machine",
                normalize(&dir.join(s).display().to_string())
            ));
        }
    }
    out
}

/// `/a/./b/../c` → `/a/c` (the hub refuses `..` in a hostPath).
fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}
