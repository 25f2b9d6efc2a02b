//! `bramble images ls|rm|inspect`: the hub's registry as a docker user sees it.

use std::io::Write;

use anyhow::Context as _;
use bramble_images::Digest;
use serde_json::{Value, json};

use crate::args::ImagesCommand;
use crate::context::Context;
use crate::table::Table;

/// `NAME[:TAG]` or `NAME@DIGEST`, with an optional registry host in front
/// (`127.0.0.1:7480/web:1`), which is dropped: the CLI talks to its hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repo: String,
    /// Tag or digest.
    pub reference: String,
}

impl ImageRef {
    pub fn parse(s: &str) -> anyhow::Result<ImageRef> {
        let r = bramble_images::Reference::parse(s)
            .map_err(|e| anyhow::anyhow!("{e} (use NAME:TAG or NAME@sha256:DIGEST, e.g. web:1)"))?;
        Ok(ImageRef {
            repo: r.repository().to_string(),
            reference: r.manifest_reference(),
        })
    }
}

/// Runs an images subcommand.
pub fn run(ctx: &Context, cmd: &ImagesCommand, out: &mut dyn Write) -> anyhow::Result<bool> {
    match cmd {
        ImagesCommand::Ls => ls(ctx, out),
        ImagesCommand::Rm { images } => rm(ctx, images, out),
        ImagesCommand::Inspect { image } => inspect(ctx, image, out),
        ImagesCommand::Import { file, name } => {
            crate::image_load::import(ctx, file, name.as_deref(), false, out)
        }
        ImagesCommand::Push { source, name } => {
            crate::image_load::import(ctx, source, Some(name), true, out)
        }
    }
}

fn manifest(ctx: &Context, repo: &str, reference: &str) -> anyhow::Result<(Digest, Value)> {
    let text = ctx
        .client
        .get_text(&format!("/v2/{repo}/manifests/{reference}"), &[])
        .with_context(|| format!("reading {repo}:{reference} from the hub's registry"))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{repo}:{reference}: manifest is not JSON"))?;
    Ok((Digest::of(text.as_bytes()), v))
}

/// The config of `image` (of its index's first platform: what a container
/// runs is the same on each), from the hub's registry.
pub fn config(ctx: &Context, image: &str) -> anyhow::Result<Value> {
    let r = ImageRef::parse(image)?;
    let (_, mut m) = manifest(ctx, &r.repo, &r.reference)?;
    if let Some(first) = m["manifests"]
        .as_array()
        .and_then(|l| l.iter().find(|d| d["platform"]["os"] != "unknown"))
    {
        let digest = first["digest"].as_str().unwrap_or("").to_string();
        m = manifest(ctx, &r.repo, &digest)?.1;
    }
    let digest = m["config"]["digest"]
        .as_str()
        .with_context(|| format!("{image}: its manifest names no config"))?;
    let text = ctx
        .client
        .get_text(&format!("/v2/{}/blobs/{digest}", r.repo), &[])
        .with_context(|| format!("reading the config of {image} from the hub's registry"))?;
    serde_json::from_str(&text).with_context(|| format!("{image}: its config is not JSON"))
}

fn platform(p: &Value) -> String {
    let mut s = format!(
        "{}/{}",
        p["os"].as_str().unwrap_or("?"),
        p["architecture"].as_str().unwrap_or("?")
    );
    if let Some(v) = p["variant"].as_str() {
        s.push('/');
        s.push_str(v);
    }
    s
}

pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

/// Sum of config and layer sizes of one image manifest.
fn image_size(m: &Value) -> u64 {
    let layers: u64 = m["layers"]
        .as_array()
        .map(|l| l.iter().filter_map(|d| d["size"].as_u64()).sum())
        .unwrap_or(0);
    layers + m["config"]["size"].as_u64().unwrap_or(0)
}

fn ls(ctx: &Context, out: &mut dyn Write) -> anyhow::Result<bool> {
    let catalog = ctx
        .client
        .get("/v2/_catalog", &[])
        .context("listing the hub's registry")?;
    let mut table = Table::new(
        ["REPOSITORY", "TAG", "DIGEST", "PLATFORMS", "SIZE"]
            .map(String::from)
            .to_vec(),
    );
    for repo in catalog["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let tags = ctx.client.get(&format!("/v2/{repo}/tags/list"), &[])?;
        for tag in tags["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let (digest, m) = manifest(ctx, repo, tag)?;
            let (platforms, size) = match m["manifests"].as_array() {
                Some(children) => {
                    let mut names = Vec::new();
                    let mut size = 0;
                    for c in children {
                        if c["platform"]["os"] == "unknown" {
                            continue;
                        }
                        names.push(platform(&c["platform"]));
                        if let Some(d) = c["digest"].as_str()
                            && let Ok((_, child)) = manifest(ctx, repo, d)
                        {
                            size += image_size(&child);
                        }
                    }
                    (names.join(","), size)
                }
                None => ("-".to_string(), image_size(&m)),
            };
            let short = digest.hex()[..12].to_string();
            table.push(vec![
                repo.to_string(),
                tag.to_string(),
                short,
                platforms,
                human(size),
            ]);
        }
    }
    write!(out, "{}", table.render(true))?;
    Ok(true)
}

fn rm(ctx: &Context, images: &[String], out: &mut dyn Write) -> anyhow::Result<bool> {
    let mut ok = true;
    for image in images {
        let r = ImageRef::parse(image)?;
        let result = (|| -> anyhow::Result<()> {
            let (digest, _) = manifest(ctx, &r.repo, &r.reference)?;
            ctx.client
                .delete(&format!("/v2/{}/manifests/{}", r.repo, r.reference))?;
            writeln!(out, "Untagged: {}:{}", r.repo, r.reference)?;
            let tags = ctx
                .client
                .get(&format!("/v2/{}/tags/list", r.repo), &[])
                .unwrap_or(Value::Null);
            let still_tagged = tags["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|t| manifest(ctx, &r.repo, t).is_ok_and(|(d, _)| d == digest));
            if !still_tagged
                && ctx
                    .client
                    .delete(&format!("/v2/{}/manifests/{digest}", r.repo))
                    .is_ok()
            {
                writeln!(out, "Deleted: {digest}")?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            eprintln!("error: {image}: {e:#}");
            ok = false;
        }
    }
    let report = ctx.client.create("/v2/_gc", &Value::Null)?;
    if report["deleted"].as_u64().unwrap_or(0) > 0 {
        writeln!(
            out,
            "Freed {} in {} blobs",
            human(report["freedBytes"].as_u64().unwrap_or(0)),
            report["deleted"]
        )?;
    }
    Ok(ok)
}

fn inspect(ctx: &Context, image: &str, out: &mut dyn Write) -> anyhow::Result<bool> {
    let r = ImageRef::parse(image)?;
    let (digest, m) = manifest(ctx, &r.repo, &r.reference)?;
    let mut doc = json!({
        "name": format!("{}:{}", r.repo, r.reference),
        "digest": digest.to_string(),
        "mediaType": m["mediaType"],
    });
    if m.get("manifests").is_some() {
        doc["index"] = m;
    } else {
        if let Some(cd) = m["config"]["digest"].as_str() {
            let text = ctx
                .client
                .get_text(&format!("/v2/{}/blobs/{cd}", r.repo), &[])?;
            doc["config"] = serde_json::from_str(&text).unwrap_or(Value::String(text));
        }
        doc["manifest"] = m;
    }
    writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let p = |s| ImageRef::parse(s).unwrap();
        assert_eq!(
            p("web:1"),
            ImageRef {
                repo: "web".into(),
                reference: "1".into()
            }
        );
        assert_eq!(
            p("web"),
            ImageRef {
                repo: "web".into(),
                reference: "latest".into()
            }
        );
        assert_eq!(
            p("127.0.0.1:7480/team/web:2"),
            ImageRef {
                repo: "team/web".into(),
                reference: "2".into()
            }
        );
        let pinned = format!("localhost/web@sha256:{}", "a".repeat(64));
        assert_eq!(p(&pinned).reference, format!("sha256:{}", "a".repeat(64)));
        assert!(ImageRef::parse(":1").is_err());
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human(999), "999B");
        assert_eq!(human(1_500_000), "1.5MB");
        assert_eq!(
            image_size(&json!({"config": {"size": 10}, "layers": [{"size": 5}, {"size": 7}]})),
            22
        );
    }
}
