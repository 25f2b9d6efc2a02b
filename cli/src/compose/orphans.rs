//! Orphans: what `compose up` made for services (and top-level configs and
//! secrets) that the file no longer defines. Docker compose's rule: a
//! service the file still defines is no orphan, whatever its profiles and
//! the services named on the command line. `up` warns with docker's words;
//! `up --remove-orphans` deletes the orphans' Deployments, Jobs, Services
//! (the headless one and `NAME-published`), and the ConfigMaps and Secrets
//! no longer in the file, and waits until their pods are gone. Claims
//! (named volumes, their data) are never orphans: `down -v` deletes them.
//! [`find`] is pure.

use std::collections::BTreeSet;
use std::io::Write;

use serde_json::Value;

use super::down::{KINDS, delete_kind, wait_pods_gone};
use super::plan::{MANAGED_LABEL, MANAGED_VALUE, PROJECT_LABEL, Plan, SERVICE_LABEL};
use crate::context::Context;

/// Kinds `up` makes once per project (from `configs:` and `secrets:`).
const FILE_KINDS: &[(&str, &str)] = &[("v1", "ConfigMap"), ("v1", "Secret")];

/// What the file no longer defines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Orphans {
    /// Services (by their [`SERVICE_LABEL`]).
    pub services: BTreeSet<String>,
    /// ConfigMaps and Secrets: (kind, name).
    pub files: BTreeSet<(String, String)>,
}

impl Orphans {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.files.is_empty()
    }

    /// Docker compose's warning (in its words, with services for
    /// containers) for each sort of orphan.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.services.is_empty() {
            w.push(format!(
                "Found orphan services ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                self.services.iter().cloned().collect::<Vec<_>>().join(" ")
            ));
        }
        if !self.files.is_empty() {
            w.push(format!(
                "Found orphan configs and secrets ([{}]) for this project. If you removed or renamed them in your compose file, you can run this command with the --remove-orphans flag to clean them up.",
                self.files
                    .iter()
                    .map(|(k, n)| format!("{}/{n}", k.to_ascii_lowercase()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        w
    }
}

/// The orphans among `live` objects of a project (each with its `kind`),
/// given the services the file `defined` and the `shared` objects planned.
/// Only objects `up` made (its [`MANAGED_LABEL`]) are considered.
pub fn find(defined: &BTreeSet<String>, shared: &[Value], live: &[(&str, Value)]) -> Orphans {
    let mut o = Orphans::default();
    for (kind, item) in live {
        let labels = &item["metadata"]["labels"];
        if labels[MANAGED_LABEL] != MANAGED_VALUE {
            continue;
        }
        let name = item["metadata"]["name"].as_str().unwrap_or("");
        if let Some(service) = labels[SERVICE_LABEL].as_str() {
            if !defined.contains(service) {
                o.services.insert(service.to_string());
            }
        } else if FILE_KINDS.iter().any(|(_, k)| k == kind)
            && !shared
                .iter()
                .any(|s| s["kind"] == *kind && s["metadata"]["name"] == name)
        {
            o.files.insert((kind.to_string(), name.to_string()));
        }
    }
    o
}

/// The project's objects that may be orphans, each with its kind.
fn live(ctx: &Context, p: &Plan) -> anyhow::Result<Vec<(&'static str, Value)>> {
    let selector = format!("{PROJECT_LABEL}={}", p.project);
    let mut out = Vec::new();
    for (group, kind) in KINDS {
        let r = bramble_api::resource::by_kind(group, kind).expect("a built-in kind");
        let list = match ctx.client.get(
            &r.collection_path(Some(&p.namespace)),
            &[("labelSelector", &selector)],
        ) {
            Ok(l) => l,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        for item in list["items"].as_array().into_iter().flatten() {
            out.push((*kind, item.clone()));
        }
    }
    Ok(out)
}

/// Warns about the orphans of `p`, or (`remove`) deletes them.
pub fn run(ctx: &Context, p: &Plan, remove: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let o = find(&p.defined, &p.shared, &live(ctx, p)?);
    if !remove {
        for w in o.warnings() {
            eprintln!("WARN[0000] {w}");
        }
        return Ok(());
    }
    for s in &o.services {
        let selector = format!("{PROJECT_LABEL}={},{SERVICE_LABEL}={s}", p.project);
        for k in KINDS {
            delete_kind(ctx, &p.namespace, &selector, *k, out)?;
        }
    }
    for (kind, name) in &o.files {
        let r = bramble_api::resource::by_kind("v1", kind).expect("a built-in kind");
        match ctx.client.delete(&r.object_path(Some(&p.namespace), name)) {
            Ok(_) => writeln!(out, "{}/{name} deleted", r.display_name())?,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    for s in &o.services {
        let selector = format!("{PROJECT_LABEL}={},{SERVICE_LABEL}={s}", p.project);
        wait_pods_gone(ctx, &p.namespace, &selector, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str, service: Option<&str>) -> Value {
        let mut labels = json!({PROJECT_LABEL: "shop", MANAGED_LABEL: MANAGED_VALUE});
        if let Some(s) = service {
            labels[SERVICE_LABEL] = s.into();
        }
        json!({"metadata": {"name": name, "labels": labels}})
    }

    #[test]
    fn services_and_files_the_file_no_longer_defines_are_orphans() {
        let defined: BTreeSet<String> = ["web".to_string(), "debug".to_string()].into();
        let shared = vec![json!({"kind": "ConfigMap", "metadata": {"name": "greeting"}})];
        let mut hand_made = obj("worker-x", Some("worker"));
        hand_made["metadata"]["labels"][MANAGED_LABEL] = "someone".into();
        let live = vec![
            ("Deployment", obj("web", Some("web"))),
            // Defined under a profile not enabled now: not an orphan.
            ("Deployment", obj("debug", Some("debug"))),
            ("Deployment", obj("worker", Some("worker"))),
            ("Service", obj("worker", Some("worker"))),
            ("Service", obj("worker-published", Some("worker"))),
            ("Job", obj("migrate", Some("migrate"))),
            ("ConfigMap", obj("greeting", None)),
            ("ConfigMap", obj("old-conf", None)),
            ("Secret", obj("pw", None)),
            ("Deployment", hand_made),
        ];
        let o = find(&defined, &shared, &live);
        assert_eq!(
            o.services,
            BTreeSet::from(["migrate".to_string(), "worker".to_string()])
        );
        assert_eq!(
            o.files,
            BTreeSet::from([
                ("ConfigMap".to_string(), "old-conf".to_string()),
                ("Secret".to_string(), "pw".to_string())
            ])
        );
        assert_eq!(
            o.warnings()[0],
            "Found orphan services ([migrate worker]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up."
        );
        assert!(o.warnings()[1].contains("([configmap/old-conf secret/pw])"));
        assert!(find(&defined, &shared, &live[..2]).is_empty());
    }
}
