//! `bramble apply`: create what is missing, replace what exists, report
//! `created`, `configured` or `unchanged` per object.

use std::io::Write;

use serde_json::Value;

use crate::args::ApplyArgs;
use crate::client::{Client, ClientError};
use crate::context::Context;
use crate::manifests::{self, Manifest};

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// After a replace: the hub keeps the resourceVersion when nothing changed,
/// so the same version before and after means `unchanged`. A missing version
/// on either side cannot prove that, so it counts as `configured`.
pub fn decide(before: Option<&str>, after: Option<&str>) -> Outcome {
    match (before, after) {
        (Some(b), Some(a)) if !b.is_empty() && a == b => Outcome::Unchanged,
        _ => Outcome::Configured,
    }
}

/// The object without what the hub writes on its own (`status`, the
/// resourceVersion): a controller updating a status between the GET and the
/// replace must not make an unchanged apply read `configured`.
fn user_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    v
}

/// [`decide`] from the objects: the same resourceVersion, or the same object
/// apart from status and resourceVersion, is `unchanged`.
pub fn decide_objects(before: &Value, after: &Value) -> Outcome {
    match decide(
        crate::json::resource_version(before),
        crate::json::resource_version(after),
    ) {
        Outcome::Configured if user_part(before) == user_part(after) => Outcome::Unchanged,
        o => o,
    }
}

/// The body of the replace: the manifest as written, carrying the
/// `resourceVersion` of the object just read (or none, if it had none), so
/// the replace applies to exactly what [`decide_objects`] compares with: a
/// controller writing in between makes the hub answer `Conflict` instead of
/// an `unchanged` apply reading `configured`.
pub fn replace_body(manifest: &Value, read_version: Option<&str>) -> Value {
    let mut body = manifest.clone();
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        match read_version {
            Some(v) => meta.insert("resourceVersion".into(), v.into()),
            None => meta.remove("resourceVersion"),
        };
    }
    body
}

/// How often a replace is tried again after a controller wrote the object
/// between the read and the replace, as kubectl retries its patch.
const CONFLICT_ATTEMPTS: usize = 5;

/// Applies one object.
pub fn apply_one(client: &Client, m: &Manifest) -> Result<Outcome, ClientError> {
    let path = m.object_path();
    let mut attempt = 1;
    loop {
        let current = match client.get(&path, &[]) {
            Err(e) if e.is_not_found() => {
                client.create(&m.collection_path(), &m.object)?;
                return Ok(Outcome::Created);
            }
            other => other?,
        };
        let body = replace_body(&m.object, crate::json::resource_version(&current));
        match client.replace(&path, &body) {
            Ok(stored) => return Ok(decide_objects(&current, &stored)),
            Err(e) if e.is_conflict() && attempt < CONFLICT_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// kubectl's wording for a failed object.
pub fn failure_message(m: &Manifest, e: &ClientError) -> String {
    match e.status() {
        Some(s) => format!(
            "Error from server ({}): error when applying {:?}: {}",
            s.reason,
            m.source,
            e.message()
        ),
        None => format!("error: error when applying {:?}: {e}", m.source),
    }
}

/// Runs `apply`; returns whether every object succeeded.
pub fn run(ctx: &Context, args: &ApplyArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let mut list = manifests::load_args(&args.filenames, args.recursive, &ctx.settings, "apply")?;
    manifests::sort_for_apply(&mut list);
    let mut ok = true;
    for m in &list {
        match apply_one(&ctx.client, m) {
            Ok(outcome) => writeln!(out, "{} {}", m.display(), outcome.as_str())?,
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                out.flush()?;
                eprintln!("{}", failure_message(m, &e));
                ok = false;
            }
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decides_outcome_from_resource_versions() {
        assert_eq!(decide(Some("12"), Some("12")), Outcome::Unchanged);
        assert_eq!(decide(Some("12"), Some("15")), Outcome::Configured);
        assert_eq!(decide(None, Some("15")), Outcome::Configured);
        assert_eq!(decide(Some("12"), None), Outcome::Configured);
        assert_eq!(decide(Some(""), Some("")), Outcome::Configured);
        assert_eq!(Outcome::Created.as_str(), "created");
    }

    #[test]
    fn a_status_written_meanwhile_is_not_a_change() {
        let before = json!({"metadata": {"name": "d", "resourceVersion": "7"},
            "spec": {"replicas": 2}, "status": {"replicas": 0}});
        let mut after = before.clone();
        after["metadata"]["resourceVersion"] = "9".into();
        after["status"]["replicas"] = 2.into();
        assert_eq!(decide_objects(&before, &after), Outcome::Unchanged);
        after["spec"]["replicas"] = 3.into();
        assert_eq!(decide_objects(&before, &after), Outcome::Configured);
    }

    #[test]
    fn replace_body_carries_the_version_read() {
        let m = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": "9", "labels": {"a": "b"}}, "data": {"k": "v"}});
        let b = replace_body(&m, Some("12"));
        assert_eq!(b["metadata"]["resourceVersion"], "12");
        assert_eq!(b["metadata"]["labels"]["a"], "b");
        assert_eq!(b["data"], m["data"]);
        let b = replace_body(&m, None);
        assert!(b["metadata"].get("resourceVersion").is_none());
    }

    #[test]
    fn failure_message_names_file_and_reason() {
        let mut stdin = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n".as_bytes();
        let m = manifests::load(&[manifests::Source::Stdin], &mut stdin, "default", false)
            .unwrap()
            .remove(0);
        let status = bramble_api::Status::failure(
            422,
            "Invalid",
            "Deployment \"web\" is invalid: spec.replicas: Invalid value: must be >= 0",
        );
        let e = ClientError::Api {
            status: Box::new(status),
            hint: None,
        };
        assert_eq!(
            failure_message(&m, &e),
            "Error from server (Invalid): error when applying \"STDIN\": Deployment \"web\" is invalid: spec.replicas: Invalid value: must be >= 0"
        );
    }
}
