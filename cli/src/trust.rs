//! Node trust from the command line: join tokens (`bramble token create |
//! ls | rm`, `bramble nodes rotate-token`) and node keys (`bramble nodes
//! keys | approve`), through the hub's `/bramble/v2/` admin endpoints.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::args::{NodesCommand, TokenCommand};
use crate::context::Context;
use crate::table::Table;

/// `bramble token ...`.
pub fn token(ctx: &Context, c: &TokenCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    match c {
        TokenCommand::Create {
            ttl,
            uses,
            description,
        } => {
            let mut req = json!({"description": description.clone().unwrap_or_default()});
            if let Some(t) = ttl {
                let d: Duration = (*t).into();
                req["ttlSeconds"] = d.as_secs().max(1).into();
            }
            if let Some(u) = uses {
                req["uses"] = (*u).into();
            }
            let v = ctx
                .client
                .create("/bramble/v2/tokens", &req)
                .context("creating a join token")?;
            writeln!(out, "{}", v["token"].as_str().unwrap_or_default())?;
            Ok(true)
        }
        TokenCommand::Ls => {
            let v = ctx.client.get("/bramble/v2/tokens", &[])?;
            let now = SystemTime::now();
            let mut t = Table::new(
                ["ID", "EXPIRES", "USES LEFT", "DESCRIPTION"]
                    .map(String::from)
                    .to_vec(),
            );
            for tok in v["items"].as_array().into_iter().flatten() {
                t.push(vec![
                    tok["id"].as_str().unwrap_or_default().to_string(),
                    expires(&tok["expires"], now),
                    tok["usesLeft"]
                        .as_u64()
                        .map_or("unlimited".to_string(), |n| n.to_string()),
                    tok["description"].as_str().unwrap_or_default().to_string(),
                ]);
            }
            write!(out, "{}", t.render(true))?;
            Ok(true)
        }
        TokenCommand::Rm { ids } => {
            let mut ok = true;
            for id in ids {
                match ctx.client.delete(&format!("/bramble/v2/tokens/{id}")) {
                    Ok(_) => writeln!(out, "token {id} deleted")?,
                    Err(e) => {
                        eprintln!("{}", crate::render_error(&anyhow::Error::new(e)));
                        ok = false;
                    }
                }
            }
            Ok(ok)
        }
    }
}

/// When a token expires, from its Unix seconds.
fn expires(v: &Value, now: SystemTime) -> String {
    let Some(secs) = v.as_u64() else {
        return "never".into();
    };
    let at = UNIX_EPOCH + Duration::from_secs(secs);
    match at.duration_since(now) {
        Ok(left) => format!("in {}", crate::age::human_duration(left)),
        Err(_) => "expired".into(),
    }
}

/// `bramble nodes ...`.
pub fn nodes(ctx: &Context, c: &NodesCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    match c {
        NodesCommand::RotateToken => {
            let v = ctx
                .client
                .create("/bramble/v2/tokens/cluster/rotate", &json!({}))
                .context("rotating the cluster's join token")?;
            writeln!(out, "{}", v["token"].as_str().unwrap_or_default())?;
            eprintln!(
                "the previous join token is refused from now on; joined nodes are unaffected \
                 (the hub's DATA_DIR/node-token holds the new one)"
            );
            Ok(true)
        }
        NodesCommand::Keys => {
            let v = ctx.client.get("/bramble/v2/nodekeys", &[])?;
            let mut t = Table::new(
                ["NAME", "STATUS", "KEY", "INCARNATION", "TOKEN", "JOINED"]
                    .map(String::from)
                    .to_vec(),
            );
            for n in v["items"].as_array().into_iter().flatten() {
                let fp = n["fingerprint"].as_str().unwrap_or_default();
                t.push(vec![
                    n["name"].as_str().unwrap_or_default().to_string(),
                    if n["approved"] == true {
                        "Approved"
                    } else {
                        "Pending"
                    }
                    .to_string(),
                    format!("sha256:{}", &fp[..fp.len().min(16)]),
                    n["incarnation"].to_string(),
                    n["tokenId"].as_str().unwrap_or_default().to_string(),
                    n["joined"].as_str().unwrap_or_default().to_string(),
                ]);
            }
            write!(out, "{}", t.render(true))?;
            Ok(true)
        }
        NodesCommand::Approve { names } => {
            let mut ok = true;
            for name in names {
                match ctx
                    .client
                    .create(&format!("/bramble/v2/nodekeys/{name}/approve"), &json!({}))
                {
                    Ok(_) => writeln!(out, "node/{name} approved")?,
                    Err(e) => {
                        eprintln!("{}", crate::render_error(&anyhow::Error::new(e)));
                        ok = false;
                    }
                }
            }
            Ok(ok)
        }
    }
}
