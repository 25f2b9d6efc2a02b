//! Whole nftables tables, applied atomically: a [`Table`] (family `ip`)
//! becomes one `nft -j -f -` batch — add the table (a no-op if it exists),
//! delete it, add it again with every chain and rule — so the kernel swaps
//! the old content for the new in one transaction and never shows a half
//! table. The batch is nft's JSON (`nft -j -f -`, Debian `nftables`),
//! whose error message is returned when nft refuses it. The tests check
//! every batch built here against the `nftables` crate's schema
//! (`typed`, with a dev-dependency: its deserializers cost the agent ~450 KiB).
//! One table per owner; other tables are never touched.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::NetError;
use crate::netns::run_in;

/// A base chain's hook: `type <kind> hook <hook> priority <prio>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `nat` or `filter`.
    pub kind: &'static str,
    /// `prerouting`, `input`, `forward`, `output`, `postrouting`.
    pub hook: &'static str,
    pub prio: i32,
}

/// A chain and its rules; each rule is a list of nft JSON expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub hook: Option<Hook>,
    pub rules: Vec<Vec<Value>>,
}

impl Chain {
    /// A regular chain (a jump target).
    pub fn regular(name: impl Into<String>) -> Chain {
        Chain {
            name: name.into(),
            hook: None,
            rules: Vec::new(),
        }
    }

    /// A base chain on `hook` (policy accept).
    pub fn base(
        name: impl Into<String>,
        kind: &'static str,
        hook: &'static str,
        prio: i32,
    ) -> Chain {
        Chain {
            name: name.into(),
            hook: Some(Hook { kind, hook, prio }),
            rules: Vec::new(),
        }
    }
}

/// A named set of IPv4 addresses whose elements expire (`flags timeout`),
/// filled by rules (`update @set { ip saddr }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutSet {
    pub name: String,
    pub timeout_seconds: u32,
}

/// One `ip` table as a whole.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub name: String,
    pub sets: Vec<TimeoutSet>,
    pub chains: Vec<Chain>,
}

fn table_obj(name: &str) -> Value {
    json!({"table": {"family": "ip", "name": name}})
}

impl Table {
    /// The atomic replace batch (`{"nftables": [...]}`).
    pub fn batch(&self) -> Value {
        let mut cmds = vec![
            json!({"add": table_obj(&self.name)}),
            json!({"delete": table_obj(&self.name)}),
            json!({"add": table_obj(&self.name)}),
        ];
        for set in &self.sets {
            cmds.push(json!({"add": {"set": {
                "family": "ip", "table": self.name, "name": set.name,
                "type": "ipv4_addr", "flags": ["timeout"], "timeout": set.timeout_seconds,
            }}}));
        }
        for c in &self.chains {
            let mut chain = json!({"family": "ip", "table": self.name, "name": c.name});
            if let Some(h) = &c.hook {
                chain["type"] = json!(h.kind);
                chain["hook"] = json!(h.hook);
                chain["prio"] = json!(h.prio);
                chain["policy"] = json!("accept");
            }
            cmds.push(json!({"add": {"chain": chain}}));
        }
        for c in &self.chains {
            for r in &c.rules {
                cmds.push(json!({"add": {"rule": {
                    "family": "ip", "table": self.name, "chain": c.name, "expr": r,
                }}}));
            }
        }
        json!({ "nftables": cmds })
    }
}

/// Checks `batch` against the `nftables` crate's schema (tests only: the
/// schema's deserializers would add hundreds of KiB to the agent).
#[cfg(test)]
pub(crate) fn typed(
    batch: &Value,
    table: &str,
) -> Result<nftables::schema::Nftables<'static>, NetError> {
    serde_json::from_value(batch.clone()).map_err(|e| NetError::Nft {
        table: table.to_string(),
        reason: format!("not a valid nft JSON batch: {e}"),
    })
}

fn run_nft(netns: Option<&Path>, table: &str, batch: &Value) -> Result<(), NetError> {
    let payload = serde_json::to_vec(batch).map_err(|e| NetError::Nft {
        table: table.to_string(),
        reason: format!("serializing the batch: {e}"),
    })?;
    let fail = |reason: String| NetError::Nft {
        table: table.to_string(),
        reason,
    };
    run_in(netns, move || {
        // Our own spawn (not the crate's helper) to capture nft's stderr.
        let mut child = Command::new("nft")
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "running nft: {e} (install the Debian package `nftables`)"
                ))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&payload)
                .map_err(|e| fail(format!("writing to nft: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for nft: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(format!(
                "nft refused the table: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    })
}

/// Replaces table `table.name` in `netns` (the caller's with `None`)
/// atomically with `table`.
pub fn apply(netns: Option<&Path>, table: &Table) -> Result<(), NetError> {
    run_nft(netns, &table.name, &table.batch())
}

/// Removes table `name` if it exists.
pub fn remove_table(netns: Option<&Path>, name: &str) -> Result<(), NetError> {
    let batch = json!({"nftables": [
        {"add": table_obj(name)},
        {"delete": table_obj(name)},
    ]});
    run_nft(netns, name, &batch)
}

/// `nft -j list table ip NAME` as JSON; `None` if there is no such table.
pub fn list_table(netns: Option<&Path>, name: &str) -> Result<Option<Value>, NetError> {
    run_in(netns, || {
        let out = Command::new("nft")
            .args(["-j", "list", "table", "ip", name])
            .output()
            .map_err(NetError::io("run nft"))?;
        if !out.status.success() {
            return Ok(None);
        }
        serde_json::from_slice(&out.stdout)
            .map(Some)
            .map_err(|e| NetError::Nft {
                table: name.to_string(),
                reason: format!("nft printed invalid JSON: {e}"),
            })
    })
}

/// Expression helpers for rules, in nft's JSON form.
pub mod expr {
    use serde_json::{Value, json};

    /// `left == right` (`op` `==` or `!=`).
    pub fn cmp(op: &str, left: Value, right: Value) -> Value {
        json!({"match": {"op": op, "left": left, "right": right}})
    }

    /// `left == right`.
    pub fn eq(left: Value, right: Value) -> Value {
        cmp("==", left, right)
    }

    /// A header field, e.g. `payload("ip", "daddr")`, `payload("tcp", "dport")`.
    pub fn payload(protocol: &str, field: &str) -> Value {
        json!({"payload": {"protocol": protocol, "field": field}})
    }

    /// `meta KEY`.
    pub fn meta(key: &str) -> Value {
        json!({"meta": {"key": key}})
    }

    /// An address prefix `addr/len`.
    pub fn prefix(addr: impl ToString, len: u8) -> Value {
        json!({"prefix": {"addr": addr.to_string(), "len": len}})
    }

    /// `fib daddr type local`.
    pub fn daddr_local() -> Value {
        eq(
            json!({"fib": {"result": "type", "flags": ["daddr"]}}),
            json!("local"),
        )
    }

    /// `meta mark set meta mark | bit`.
    pub fn set_mark_bit(bit: u32) -> Value {
        json!({"mangle": {"key": meta("mark"), "value": {"|": [meta("mark"), bit]}}})
    }

    /// `meta mark & bit == bit`.
    pub fn has_mark_bit(bit: u32) -> Value {
        eq(json!({"&": [meta("mark"), bit]}), json!(bit))
    }

    /// `jump CHAIN`.
    pub fn jump(chain: &str) -> Value {
        json!({"jump": {"target": chain}})
    }

    /// `update @set { ip saddr }`: adds (or refreshes) the client address.
    pub fn remember_saddr(set: &str) -> Value {
        json!({"set": {"op": "update", "elem": payload("ip", "saddr"), "set": format!("@{set}")}})
    }

    /// `ip saddr @set`.
    pub fn saddr_in(set: &str) -> Value {
        eq(payload("ip", "saddr"), json!(format!("@{set}")))
    }

    /// `numgen random mod N vmap { 0 : jump c0, ... }`.
    pub fn random_vmap(chains: &[String]) -> Value {
        let set: Vec<Value> = chains
            .iter()
            .enumerate()
            .map(|(i, c)| json!([i, {"jump": {"target": c}}]))
            .collect();
        json!({"vmap": {
            "key": {"numgen": {"mode": "random", "mod": chains.len(), "offset": 0}},
            "data": {"set": set},
        }})
    }

    /// `dnat to ADDR:PORT`.
    pub fn dnat(addr: impl ToString, port: u16) -> Value {
        json!({"dnat": {"addr": addr.to_string(), "port": port}})
    }

    /// `masquerade`.
    pub fn masquerade() -> Value {
        json!({"masquerade": null})
    }

    /// `reject with tcp reset` for TCP, ICMP port-unreachable otherwise.
    pub fn reject(l4: &str) -> Value {
        if l4 == "tcp" {
            json!({"reject": {"type": "tcp reset"}})
        } else {
            json!({"reject": {"type": "icmp", "expr": "port-unreachable"}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_replaces_the_whole_table_and_fits_the_schema() {
        let mut pre = Chain::base("prerouting", "nat", "prerouting", -100);
        pre.rules.push(vec![expr::jump("services")]);
        let t = Table {
            name: "bramble".into(),
            chains: vec![Chain::regular("services"), pre],
            ..Table::default()
        };
        let b = t.batch();
        let cmds = b["nftables"].as_array().unwrap();
        assert_eq!(
            cmds[0],
            json!({"add": {"table": {"family": "ip", "name": "bramble"}}})
        );
        assert_eq!(
            cmds[1],
            json!({"delete": {"table": {"family": "ip", "name": "bramble"}}})
        );
        assert_eq!(cmds[2], cmds[0]);
        assert_eq!(cmds[3]["add"]["chain"]["name"], "services");
        assert!(cmds[3]["add"]["chain"].get("hook").is_none());
        assert_eq!(cmds[4]["add"]["chain"]["hook"], "prerouting");
        assert_eq!(cmds[4]["add"]["chain"]["prio"], -100);
        assert_eq!(
            cmds[5]["add"]["rule"]["expr"],
            json!([{"jump": {"target": "services"}}])
        );
        assert_eq!(cmds.len(), 6);
        typed(&b, "bramble").unwrap();
    }
}
