//! `bramble logs POD [-c C] [-f] [--tail N] [--since D]`: the pod's agent
//! reads its log files and streams them through the hub (MQTT RPC).
//! `bramble logs build/NAME [--platform P] [-f] [--tail N]`: the same for
//! the log the board that ran a build keeps.

use std::io::{Read as _, Write};

use anyhow::bail;

use crate::args::LogsArgs;
use crate::context::Context;

/// What `bramble logs` reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Pod(&'a str),
    Build(&'a str),
}

/// `web-1` or `pod/web-1` (also `pods/`, `po/`) → the pod name.
pub fn pod_name(arg: &str) -> anyhow::Result<&str> {
    match target(arg)? {
        Target::Pod(n) => Ok(n),
        Target::Build(_) => bail!("{arg:?}: give a pod name, e.g. `web-7d4f9` or `pod/web-7d4f9`"),
    }
}

/// `web-1`, `pod/web-1` (also `pods/`, `po/`) or `build/NAME` (`builds/`).
pub fn target(arg: &str) -> anyhow::Result<Target<'_>> {
    match arg.split_once('/') {
        None => Ok(Target::Pod(arg)),
        Some(("pod" | "pods" | "po", n)) if !n.is_empty() => Ok(Target::Pod(n)),
        Some(("build" | "builds", n)) if !n.is_empty() => Ok(Target::Build(n)),
        Some(_) => {
            bail!("{arg:?}: give a pod (`web-7d4f9`, `pod/web-7d4f9`) or a build (`build/NAME`)")
        }
    }
}

pub fn run(ctx: &Context, a: &LogsArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let ns = &ctx.settings.namespace;
    let path = match target(&a.pod)? {
        Target::Pod(name) => {
            if a.platform.is_some() {
                bail!("{name}: --platform is for a build's log (`build/NAME`)");
            }
            format!("/api/v1/namespaces/{ns}/pods/{name}/log")
        }
        Target::Build(name) => {
            if a.container.is_some() || a.since.is_some() {
                bail!(
                    "build/{name}: -c and --since are for pods; a build's log takes -f, --tail and --platform"
                );
            }
            format!("/apis/bramble.dev/v1/namespaces/{ns}/builds/{name}/log")
        }
    };
    let tail = a.tail.filter(|n| *n >= 0).map(|n| n.to_string());
    let since = a
        .since
        .map(|d| std::time::Duration::from(d).as_secs().max(1).to_string());
    let mut q: Vec<(&str, &str)> = Vec::new();
    if let Some(c) = &a.container {
        q.push(("container", c));
    }
    if a.follow {
        q.push(("follow", "true"));
    }
    if let Some(t) = &tail {
        q.push(("tailLines", t));
    }
    if let Some(s) = &since {
        q.push(("sinceSeconds", s));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p));
    }
    let mut body = ctx.client.stream(&path, &q, None)?;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_like_kubectl() {
        assert_eq!(pod_name("web-1").unwrap(), "web-1");
        assert_eq!(pod_name("pod/web-1").unwrap(), "web-1");
        assert!(pod_name("deploy/web").is_err());
        assert!(pod_name("build/web").is_err());
        assert_eq!(target("build/app").unwrap(), Target::Build("app"));
        assert_eq!(target("builds/app").unwrap(), Target::Build("app"));
        assert!(target("build/").is_err());
    }
}
