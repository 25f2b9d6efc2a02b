//! `bramble logs POD [-c C] [-f] [--tail N] [--since D]`: the pod's agent
//! reads its log files and streams them through the hub (MQTT RPC).

use std::io::{Read as _, Write};

use anyhow::bail;

use crate::args::LogsArgs;
use crate::context::Context;

/// `web-1` or `pod/web-1` (also `pods/`, `po/`) → the pod name.
pub fn pod_name(arg: &str) -> anyhow::Result<&str> {
    match arg.split_once('/') {
        None => Ok(arg),
        Some(("pod" | "pods" | "po", n)) if !n.is_empty() => Ok(n),
        Some(_) => bail!("{arg:?}: give a pod name, e.g. `web-7d4f9` or `pod/web-7d4f9`"),
    }
}

pub fn run(ctx: &Context, a: &LogsArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let name = pod_name(&a.pod)?;
    let path = format!(
        "/api/v1/namespaces/{}/pods/{name}/log",
        ctx.settings.namespace
    );
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
    }
}
