//! `bramble version`: this client's version and, if reachable, the hub's.

use std::io::Write;

use crate::context::Context;

/// Prints both versions; an unreachable hub is reported but not fatal.
pub fn run(ctx: &Context, out: &mut dyn Write) -> anyhow::Result<bool> {
    writeln!(out, "Client Version: {}", env!("CARGO_PKG_VERSION"))?;
    match ctx.client.get_text("/version", &[]) {
        Ok(text) => {
            let shown = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    ["gitVersion", "version"]
                        .iter()
                        .find_map(|k| v.get(*k).and_then(|s| s.as_str()).map(str::to_string))
                })
                .unwrap_or_else(|| text.trim().to_string());
            writeln!(out, "Hub Version: {shown}")?;
            Ok(true)
        }
        Err(e) => {
            out.flush()?;
            eprintln!("error: {e}");
            Ok(false)
        }
    }
}
