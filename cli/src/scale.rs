//! `bramble scale deployment web --replicas N` (or `statefulset db`): a
//! merge patch of `spec.replicas`, as `kubectl scale` does.

use std::io::Write;

use anyhow::{Context as _, bail};
use bramble_api::ResourceInfo;
use serde_json::json;

use crate::args::ScaleArgs;
use crate::context::Context;
use crate::kinds::resolve_kind;

/// `deployment web` or `deployment/web` → (kind, name).
pub fn target(args: &[String]) -> anyhow::Result<(&'static ResourceInfo, String)> {
    let (kind, name) = match args {
        [one] => match one.split_once('/') {
            Some((k, n)) if !n.is_empty() => (k, n),
            _ => bail!("{one:?}: give the resource as `deployment NAME` or `deployment/NAME`"),
        },
        [k, n] => (k.as_str(), n.as_str()),
        _ => bail!("give the resource as `deployment NAME` or `deployment/NAME`"),
    };
    let r = resolve_kind(kind)?;
    if !matches!(r.kind, "Deployment" | "StatefulSet") {
        bail!(
            "{}: only deployments and statefulsets can be scaled and rolled out here (DaemonSets run one pod per node)",
            r.plural
        );
    }
    Ok((r, name.to_string()))
}

/// `deployment.apps/NAME` as kubectl names the object in its messages.
pub fn display(r: &ResourceInfo, name: &str) -> String {
    format!("{}.{}/{name}", r.kind.to_ascii_lowercase(), r.group)
}

pub fn run(ctx: &Context, a: &ScaleArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    if a.replicas < 0 {
        bail!("--replicas={}: must be 0 or more", a.replicas);
    }
    let (r, name) = target(&a.target)?;
    let path = r.object_path(Some(&ctx.settings.namespace), &name);
    ctx.client
        .merge_patch(&path, &json!({"spec": {"replicas": a.replicas}}))
        .with_context(|| format!("scaling {}/{name}", r.plural))?;
    writeln!(out, "{} scaled", display(r, &name))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_like_kubectl() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(target(&s(&["deploy", "web"])).unwrap().1, "web");
        assert_eq!(target(&s(&["deployment/web"])).unwrap().1, "web");
        assert!(target(&s(&["deployment/"])).is_err());
        let e = target(&s(&["ds", "logs"])).unwrap_err().to_string();
        assert!(e.contains("only deployments"), "{e}");
        let (r, name) = target(&s(&["sts/db"])).unwrap();
        assert_eq!(display(r, &name), "statefulset.apps/db");
    }
}
