//! `bramble top nodes|pods`: CPU and memory from the hub's resource metrics
//! API (the agents' usage reports), with kubectl's columns.

use std::io::Write;

use anyhow::bail;
use bramble_api::quantity::Quantity;
use serde_json::Value;

use crate::context::Context;

fn parse(v: &Value, f: fn(&Quantity) -> Option<u64>) -> u64 {
    v.as_str()
        .and_then(|s| Quantity::parse(s).ok())
        .and_then(|q| f(&q))
        .unwrap_or(0)
}

fn millis(v: &Value) -> u64 {
    parse(v, |q| q.to_millis().ok())
}

fn bytes(v: &Value) -> u64 {
    parse(v, |q| q.to_bytes().ok())
}

fn mib(b: u64) -> String {
    format!("{}Mi", b / (1024 * 1024))
}

pub fn run(ctx: &Context, what: &str, all: bool, out: &mut dyn Write) -> anyhow::Result<bool> {
    match what {
        "nodes" | "node" | "no" => {
            let list = ctx.client.get("/apis/metrics.k8s.io/v1beta1/nodes", &[])?;
            let nodes = ctx.client.get("/api/v1/nodes", &[])?;
            let alloc = |name: &str, key: &str| {
                nodes["items"]
                    .as_array()
                    .and_then(|a| a.iter().find(|n| n["metadata"]["name"] == name))
                    .map(|n| n["status"]["allocatable"][key].clone())
                    .unwrap_or(Value::Null)
            };
            let rows: Vec<Vec<String>> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    let name = i["metadata"]["name"].as_str().unwrap_or("").to_string();
                    let cpu = millis(&i["usage"]["cpu"]);
                    let mem = bytes(&i["usage"]["memory"]);
                    let cpu_cap = millis(&alloc(&name, "cpu")).max(1);
                    let mem_cap = bytes(&alloc(&name, "memory")).max(1);
                    vec![
                        name,
                        format!("{cpu}m"),
                        format!("{}%", cpu * 100 / cpu_cap),
                        mib(mem),
                        format!("{}%", mem * 100 / mem_cap),
                    ]
                })
                .collect();
            print(
                out,
                &["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
                rows,
                "nodes",
            )
        }
        "pods" | "pod" | "po" => {
            let path = if all {
                "/apis/metrics.k8s.io/v1beta1/pods".to_string()
            } else {
                format!(
                    "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods",
                    ctx.settings.namespace
                )
            };
            let list = ctx.client.get(&path, &[])?;
            let mut rows: Vec<Vec<String>> = list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    let mut row = Vec::new();
                    if all {
                        row.push(
                            i["metadata"]["namespace"]
                                .as_str()
                                .unwrap_or("")
                                .to_string(),
                        );
                    }
                    row.push(i["metadata"]["name"].as_str().unwrap_or("").to_string());
                    row.push(format!("{}m", millis(&i["usage"]["cpu"])));
                    row.push(mib(bytes(&i["usage"]["memory"])));
                    row
                })
                .collect();
            rows.sort();
            let headers: &[&str] = if all {
                &["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
            } else {
                &["NAME", "CPU(cores)", "MEMORY(bytes)"]
            };
            print(out, headers, rows, "pods")
        }
        other => bail!("{other:?}: `bramble top` shows `nodes` or `pods`"),
    }
}

fn print(
    out: &mut dyn Write,
    headers: &[&str],
    rows: Vec<Vec<String>>,
    what: &str,
) -> anyhow::Result<bool> {
    if rows.is_empty() {
        writeln!(
            out,
            "error: metrics not available yet for {what} (agents report usage every few seconds)"
        )?;
        return Ok(false);
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for r in &rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(true)
}
