//! `compose build` and the builds of `compose up`: each planned service
//! with `build:` is built by `bramble build`'s own code
//! ([`crate::build::run::build`]), one after another in start order, its
//! progress printed as `bramble build` prints it. `up --build` and
//! `compose build` build every one; `up` alone builds only those whose
//! image is not in the hub's registry yet (docker compose's default) and
//! runs the image that is there otherwise. The Builds are made in the
//! namespace of `-n`/the context, as `bramble build`'s are.

use std::io::Write;

use anyhow::Context as _;

use super::plan::Plan;
use crate::context::Context;
use crate::images::ImageRef;

/// Which services with `build:` to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Every one (`compose build`, `up --build`).
    Always,
    /// Those whose image the hub's registry lacks (`up`).
    IfMissing,
}

/// Whether the hub's registry has `image` (`NAME:TAG`).
fn in_registry(ctx: &Context, image: &str) -> anyhow::Result<bool> {
    let r = ImageRef::parse(image)?;
    match ctx
        .client
        .get_text(&format!("/v2/{}/manifests/{}", r.repo, r.reference), &[])
    {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e).with_context(|| format!("looking for {image} in the hub's registry")),
    }
}

/// Builds the planned services with `build:` (only those named in
/// `only`, when it names any), as `when` says; the first failure stops
/// it, naming its service.
pub fn run(
    ctx: &Context,
    p: &Plan,
    only: &[String],
    when: When,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    for s in &p.services {
        let Some(b) = &s.build else { continue };
        if !only.is_empty() && !only.contains(&s.name) {
            continue;
        }
        if when == When::IfMissing && in_registry(ctx, &b.image)? {
            continue;
        }
        writeln!(err, "[+] Building {} ({})", s.name, b.image)?;
        crate::build::run::build(ctx, &b.request, false, err)
            .with_context(|| format!("services.{}: building {} failed", s.name, b.image))?;
        writeln!(err, "[+] Built {} ({})", s.name, b.image)?;
    }
    Ok(())
}
