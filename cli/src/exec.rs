//! `bramble exec POD [-c C] -- CMD ARGS...`: runs a command in a running
//! container through the hub and the pod's agent (MQTT RPC); prints its
//! stdout and stderr and exits with its exit code. No stdin or terminal.

use std::io::{BufRead, BufReader, Write};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use bramble_api::protocol::RpcChunk;
use bramble_api::protocol::rpc::{Encoding, Stream};
use serde_json::json;

use crate::args::ExecArgs;
use crate::context::Context;
use crate::logs::pod_name;

pub fn run(ctx: &Context, a: &ExecArgs, out: &mut dyn Write) -> anyhow::Result<bool> {
    let name = pod_name(&a.pod)?;
    exec_in(
        ctx,
        &ctx.settings.namespace,
        name,
        a.container.as_deref(),
        &a.command,
        out,
    )
}

/// Runs `command` in pod `name` of `ns` (its `container`, else the first):
/// stdout to `out`, stderr to ours; a non-zero exit code ends this process
/// with it (`compose exec` runs through here too).
pub fn exec_in(
    ctx: &Context,
    ns: &str,
    name: &str,
    container: Option<&str>,
    command: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}/exec");
    let body = ctx.client.stream(
        &path,
        &[],
        Some(&json!({"container": container, "command": command})),
    )?;
    let stderr = std::io::stderr();
    for line in BufReader::new(body).lines() {
        let line = line.context("reading the exec stream")?;
        if line.trim().is_empty() {
            continue;
        }
        let chunk: RpcChunk = serde_json::from_str(&line)
            .with_context(|| format!("the hub sent an unreadable exec chunk: {line}"))?;
        match chunk {
            RpcChunk::Output {
                stream,
                data,
                encoding,
            } => {
                let bytes = match encoding {
                    Encoding::Utf8 => data.into_bytes(),
                    Encoding::Base64 => base64::engine::general_purpose::STANDARD
                        .decode(data.as_bytes())
                        .context("undecodable output chunk")?,
                };
                match stream {
                    Stream::Stdout => {
                        out.write_all(&bytes)?;
                        out.flush()?;
                    }
                    Stream::Stderr => stderr.lock().write_all(&bytes)?,
                }
            }
            RpcChunk::End { exit_code, error } => {
                if let Some(e) = error {
                    bail!("exec in pod {name:?} failed: {}", e.message);
                }
                let code = exit_code.unwrap_or(0);
                if code != 0 {
                    out.flush()?;
                    std::process::exit(code.clamp(1, 255));
                }
                return Ok(true);
            }
            _ => {}
        }
    }
    bail!("the exec stream ended without an exit code (agent or hub went away)")
}
