//! `bramble build -t NAME[:TAG] CONTEXT`: check and plan locally (so a
//! Dockerfile error stops it before a byte is sent), pack the context, ask
//! the hub to admit the Build (a dry run, so a bad name or platform stops it
//! too), upload the context unless the registry has it, create the Build
//! and follow it. Progress goes to stderr as `docker build --progress=plain`
//! prints it; `-q` prints only the digest, on stdout.
//!
//! Ctrl-C while following leaves the Build running on the hub (delete it
//! with `bramble delete build NAME` to cancel it).

use std::io::Write;
use std::time::Instant;

use anyhow::{Context as _, bail};
use bramble_api::objects::Build;
use serde_json::{Value, json};

use super::Request;
use super::context_tar::{self, ContextTar};
use super::follow::follow;
use super::render::Numbering;
use super::upload::{Blob, Outcome, Uploader};
use crate::args::BuildArgs;
use crate::context::Context;
use crate::images::{ImageRef, human};

/// `NAME[:TAG]` of `-t` → (`repository`, `tag`).
pub fn image_name(tag: Option<&str>) -> anyhow::Result<(String, String)> {
    let Some(tag) = tag else {
        bail!(
            "bramble build needs -t NAME[:TAG]: the image's name in the hub's registry (or --check to only check)"
        );
    };
    let r = ImageRef::parse(tag)?;
    if r.reference.contains(':') {
        bail!("-t {tag}: a build result is named by a tag, not a digest (e.g. web:1)");
    }
    Ok((r.repo, r.reference))
}

/// A name for a Build of `repo`, as Kubernetes' `generateName` makes them:
/// the repository's last part, `-` and five random letters and digits
/// (the hub does not implement `generateName`, so the CLI does).
pub fn generate_name(repo: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let last = repo.rsplit('/').next().unwrap_or(repo);
    let base: String = last.chars().take(57).collect();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    let mut r = h.finish();
    let suffix: String = (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect();
    format!("{}-{suffix}", base.trim_end_matches(['-', '.', '_']))
}

/// The Build to create, named `name`.
pub fn build_object(
    name: &str,
    repo: &str,
    tag: &str,
    tar: &context_tar::Packed,
    req: &Request,
    dockerfile: &str,
) -> Value {
    let mut spec = json!({
        "image": format!("{repo}:{tag}"),
        "context": {"digest": tar.digest.to_string(), "size": tar.size},
        "dockerfile": dockerfile,
        "platforms": req.platforms,
    });
    if !req.build_args.is_empty() {
        spec["buildArgs"] = json!(req.build_args);
    }
    if let Some(t) = &req.target {
        spec["target"] = json!(t);
    }
    if req.no_cache {
        spec["noCache"] = json!(true);
    }
    json!({
        "apiVersion": "bramble.dev/v1",
        "kind": "Build",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// Runs `bramble build` against the hub.
pub fn run(
    ctx: &Context,
    args: &BuildArgs,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    if args.output.is_some() {
        bail!("-o json prints the plans of --check: add --check");
    }
    let req = Request::from_args(args, env)?;
    let digest = build(ctx, &req, args.quiet, err)?;
    if args.quiet {
        writeln!(out, "{digest}")?;
    }
    Ok(true)
}

/// Checks, uploads and runs `req` on the hub, in the namespace of `ctx`,
/// printing its progress to `err` (nothing when `quiet`); the image's
/// digest once it succeeded. `compose build` calls it for each service.
pub fn build(
    ctx: &Context,
    req: &Request,
    quiet: bool,
    err: &mut dyn Write,
) -> anyhow::Result<String> {
    let (repo, tag) = image_name(req.tag.as_deref())?;
    let prepared = super::check::prepare(req)?;
    let mut progress = |line: String| -> anyhow::Result<()> {
        if !quiet {
            writeln!(err, "{line}")?;
        }
        Ok(())
    };

    let started = Instant::now();
    progress("#1 [internal] load build context".into())?;
    let ContextTar { file, packed } = context_tar::pack(&prepared.dir, &prepared.context)?;
    for s in &packed.skipped {
        progress(format!(
            "#1 WARNING: {s} is a socket: left out of the context"
        ))?;
    }
    progress(format!(
        "#1 transferring context: {} entries, {}, {}",
        packed.entries,
        human(packed.size),
        packed.digest
    ))?;

    let mut build = build_object(
        &generate_name(&repo),
        &repo,
        &tag,
        &packed,
        req,
        &prepared.context.dockerfile,
    );
    let ns = ctx.settings.namespace.as_str();
    let collection = format!("/apis/bramble.dev/v1/namespaces/{ns}/builds");
    ctx.client
        .dry_run_create(&collection, &build)
        .context("the hub refuses this build")?;

    let uploader = Uploader::new(
        &ctx.settings.hub,
        ctx.settings.token.as_ref().map(|t| t.value.as_str()),
        ctx.client.tls().clone(),
    );
    let blob = Blob {
        path: file.path(),
        digest: &packed.digest,
        size: packed.size,
    };
    // A progress bar on a terminal (indicatif draws nothing elsewhere).
    let bar = (!quiet).then(|| crate::image_load::bar("sending context"));
    if let Some(b) = &bar {
        b.set_length(packed.size);
    }
    let outcome = uploader
        .upload(&repo, blob, &|done| {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        })
        .with_context(|| format!("uploading the build context to the hub's registry ({repo})"))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match outcome {
        Outcome::AlreadyThere => progress(format!(
            "#1 context {} already in the hub's registry: nothing sent",
            packed.digest
        ))?,
        Outcome::Uploaded { sent, resumed } => progress(format!(
            "#1 sent {}{}",
            human(sent),
            match resumed {
                0 => String::new(),
                n => format!(" (resumed {n} times)"),
            }
        ))?,
    }
    progress(format!("#1 DONE {:.1}s", started.elapsed().as_secs_f64()))?;
    drop(file);

    let mut attempts = 0;
    let created = loop {
        match ctx.client.create(&collection, &build) {
            // Another Build has the name drawn: draw again.
            Err(e) if e.is_conflict() && attempts < 5 => {
                attempts += 1;
                build["metadata"]["name"] = json!(generate_name(&repo));
            }
            other => break other.context("creating the Build")?,
        }
    };
    let created: Build = serde_json::from_value(created)
        .context("the hub answered the create with something not a Build")?;
    let name = created.name().to_string();
    progress(format!("build {ns}/{name} created"))?;
    let _cancel =
        super::interrupt::cancel_on_interrupt(&ctx.client, &format!("{collection}/{name}"));
    // One platform: its board's log as it comes (RUN output included);
    // else, or without one, the steps from the Build's status.
    let streamed = if quiet || req.platforms.len() > 1 {
        None
    } else {
        super::output::stream(&ctx.client, &collection, &name, 2, err)?
    };
    let mut numbers = Numbering::starting_at(streamed.unwrap_or(2));
    let ended = follow(
        &ctx.client,
        &collection,
        &name,
        &mut numbers,
        quiet || streamed.is_some(),
        err,
    )?;
    let status = ended.status.clone().unwrap_or_default();
    if ended.phase() == "Failed" {
        let mut why = status
            .message
            .clone()
            .unwrap_or_else(|| "no reason given".into());
        for p in status.platforms.iter().filter(|p| p.phase == "Failed") {
            let on = p
                .node
                .as_ref()
                .map(|n| format!(" on node {n}"))
                .unwrap_or_default();
            let m = p.message.as_deref().unwrap_or("failed");
            why.push_str(&format!("; {}{on}: {m}", p.platform));
        }
        if status.platforms.iter().any(|p| p.node.is_some()) {
            why.push_str(&format!(
                "\n(the whole output: bramble logs build/{name} -n {ns})"
            ));
        }
        bail!("build {ns}/{name} failed: {why}");
    }
    let digest = status.digest.unwrap_or_default();
    if !quiet {
        let n = numbers.take_next();
        writeln!(err, "#{n} exporting to image")?;
        writeln!(err, "#{n} writing image {digest} done")?;
        writeln!(err, "#{n} naming to {repo}:{tag} done")?;
        writeln!(err, "#{n} DONE")?;
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_a_tag_not_a_digest() {
        assert_eq!(
            image_name(Some("team/web:2")).unwrap(),
            ("team/web".into(), "2".into())
        );
        assert_eq!(
            image_name(Some("web")).unwrap(),
            ("web".into(), "latest".into())
        );
        assert!(
            image_name(None)
                .unwrap_err()
                .to_string()
                .contains("-t NAME")
        );
        let pinned = format!("web@sha256:{}", "a".repeat(64));
        assert!(image_name(Some(&pinned)).is_err());
    }

    #[test]
    fn generated_names_take_the_repositorys_last_part() {
        let a = generate_name("team/web");
        assert!(a.starts_with("web-") && a.len() == "web-".len() + 5, "{a}");
        assert!(
            a[4..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{a}"
        );
        let long = generate_name(&"x".repeat(100));
        assert_eq!(long.len(), 57 + 6);
    }
}
