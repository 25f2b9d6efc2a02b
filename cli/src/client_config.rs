//! `bramble config`: prints what another machine needs to use this hub
//! (hub URL, admin token, CA), as the CLI's config file or, with
//! `--kubeconfig`, as a kubeconfig for kubectl. Run on the hub, it takes
//! the token and CA from `DATA_DIR`; a loopback hub URL is replaced by this
//! host's name, which the hub's certificate covers. The output holds the
//! admin token: write it to a file only the user can read.

use std::io::Write;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::args::ConfigArgs;
use crate::context::Context;

#[derive(Serialize)]
struct ClientConfig<'a> {
    hub: &'a str,
    token: &'a str,
    ca: &'a str,
    namespace: &'a str,
}

/// The hub URL another machine uses: `server`, else the current one with
/// a loopback host replaced by `hostname`.
pub fn public_url(current: &str, server: Option<&str>, hostname: &str) -> String {
    if let Some(s) = server {
        return s.trim_end_matches('/').to_string();
    }
    let (scheme, rest) = current.split_once("://").unwrap_or(("https", current));
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    let host = if loopback && !hostname.is_empty() {
        hostname
    } else {
        host
    };
    match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

pub fn run(ctx: &Context, args: &ConfigArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let s = &ctx.settings;
    let Some(token) = &s.token else {
        bail!(
            "no admin token to put in the config: {}",
            s.unauthorized_hint
        );
    };
    let ca = match &s.ca {
        Some(ca) => String::from_utf8(ca.pem.clone())
            .with_context(|| format!("the CA from {} is not PEM text", ca.source))?,
        None if s.hub.starts_with("http://") => String::new(),
        None => bail!(
            "no CA to put in the config: run this on the hub machine (it reads DATA_DIR/ca.crt; \
             --data-dir if it is not {}), or pass --certificate-authority FILE",
            s.data_dir.display()
        ),
    };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let hub = public_url(&s.hub, args.server.as_deref(), &hostname);
    let text = if args.kubeconfig {
        bramble_api::kubeconfig::render(&hub, &ca, &token.value, Some(&s.namespace))
    } else {
        serde_yaml_ng::to_string(&ClientConfig {
            hub: &hub,
            token: &token.value,
            ca: &ca,
            namespace: &s.namespace,
        })?
    };
    out.write_all(text.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_hub_is_named_by_this_host() {
        assert_eq!(
            public_url("https://127.0.0.1:7480", None, "gw"),
            "https://gw:7480"
        );
        assert_eq!(
            public_url("https://10.0.0.2:7480", None, "gw"),
            "https://10.0.0.2:7480"
        );
        assert_eq!(
            public_url(
                "https://127.0.0.1:7480",
                Some("https://hub.lan:7480/"),
                "gw"
            ),
            "https://hub.lan:7480"
        );
        assert_eq!(
            public_url("https://[::1]:7480", None, "gw"),
            "https://gw:7480"
        );
    }
}
