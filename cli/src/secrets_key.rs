//! `bramble secrets status | rotate-key`: the hub's encryption of Secrets at
//! rest (`DATA_DIR/secrets.key`), through `/bramble/v2/secrets/`.

use std::io::Write;

use anyhow::Context as _;
use serde_json::json;

use crate::args::SecretsCommand;
use crate::context::Context;

/// `bramble secrets ...`.
pub fn run(ctx: &Context, c: &SecretsCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    match c {
        SecretsCommand::Status => {
            let v = ctx
                .client
                .get("/bramble/v2/secrets/encryption", &[])
                .context("reading the hub's secrets encryption status")?;
            if v["enabled"] == true {
                writeln!(out, "Encryption: enabled (AES-256-GCM)")?;
                writeln!(
                    out,
                    "Active key: {}",
                    v["activeKey"].as_str().unwrap_or_default()
                )?;
                writeln!(out, "Keys in file: {}", v["keys"])?;
                let tables: Vec<&str> = v["tables"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str())
                    .collect();
                writeln!(out, "Sealed: {}", tables.join(", "))?;
            } else {
                writeln!(out, "Encryption: disabled")?;
            }
            Ok(true)
        }
        SecretsCommand::RotateKey => {
            let v = ctx
                .client
                .create("/bramble/v2/secrets/rotate-key", &json!({}))
                .context("rotating the hub's secrets encryption key")?;
            writeln!(
                out,
                "secrets encryption key rotated: active key {}, {} values sealed again, {} old key(s) removed",
                v["activeKey"].as_str().unwrap_or_default(),
                v["resealed"],
                v["retired"]
            )?;
            Ok(true)
        }
    }
}
