//! `bramble images import|push`: read an OCI archive, OCI layout or
//! `docker save` tar locally (verifying every blob), then push it to the hub's
//! registry, with progress bars on a terminal.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, bail};
use bramble_images::{BlobStore, RegistryClient};
use indicatif::{ProgressBar, ProgressStyle};

use crate::context::Context;
use crate::images::ImageRef;

pub(crate) fn bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The registry client for this CLI's hub and token.
pub fn registry(ctx: &Context) -> RegistryClient {
    RegistryClient::new(
        &ctx.settings.hub,
        ctx.settings.token.as_ref().map(|t| t.value.as_str()),
    )
    .with_tls(ctx.client.tls().clone())
}

/// Imports `file` and pushes each image under its own name(s), or under
/// `name` (which `exactly_one` requires to be the only image).
pub fn import(
    ctx: &Context,
    file: &Path,
    name: Option<&str>,
    exactly_one: bool,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let tmp = tempfile::tempdir().context("creating a scratch blob store")?;
    let store = BlobStore::open(tmp.path())?;
    let reading = bar("reading");
    let report = bramble_images::import(&store, file, |p| {
        reading.set_length(p.bytes_total);
        reading.set_position(p.bytes_done);
    })
    .with_context(|| format!("reading {}", file.display()))?;
    reading.finish_and_clear();
    if report.images.is_empty() {
        bail!("{} holds no image", file.display());
    }
    if (exactly_one || name.is_some()) && report.images.len() > 1 {
        bail!(
            "{} holds {} images; push names one image: import it with `bramble images import` to keep each image's own name",
            file.display(),
            report.images.len()
        );
    }
    let client = registry(ctx);
    for image in &report.images {
        let names: Vec<String> = match name {
            Some(n) => vec![n.to_string()],
            None => image.names.clone(),
        };
        if names.is_empty() {
            bail!(
                "{}: image {} has no name: give one with --name NAME:TAG",
                file.display(),
                image.digest
            );
        }
        for n in names {
            let r = ImageRef::parse(&n)?;
            if r.reference.contains(':') {
                bail!("{n}: push needs a tag, not a digest (e.g. web:1)");
            }
            let pushing = bar(&format!("pushing {}:{}", r.repo, r.reference));
            client
                .push_image(
                    &store,
                    &image.digest,
                    &r.repo,
                    &r.reference,
                    &|done, total| {
                        pushing.set_length(total);
                        pushing.set_position(done);
                    },
                )
                .with_context(|| {
                    format!("pushing {}:{} to the hub's registry", r.repo, r.reference)
                })?;
            pushing.finish_and_clear();
            writeln!(
                out,
                "Loaded image: {}:{} ({})",
                r.repo, r.reference, image.digest
            )?;
        }
    }
    Ok(true)
}
