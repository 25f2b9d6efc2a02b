//! `compose build` and the builds of `compose up`: each planned service
//! with `build:` is built by `bramble build`'s own code
//! ([`crate::build::run::build`]), one after another in start order, its
//! progress printed as `bramble build` prints it. `up --build` and
//! `compose build` build every one; `up` alone builds only those whose
//! image is not in the hub's registry yet (docker compose's default) and
//! runs the image that is there otherwise (`pull_policy: build`: always).
//! Each built service's container is then pinned to its image's digest
//! ([`plan::pin_image`]), so `up` rolls out a rebuilt image. The
//! Builds are made in the namespace of `-n`/the context, as `bramble
//! build`'s are.

use std::io::Write;

use anyhow::Context as _;

use bramble_images::Digest;

use super::plan::{self, Plan};
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

/// The digest of `image` (`NAME:TAG`) in the hub's registry, if it is there.
fn in_registry(ctx: &Context, image: &str) -> anyhow::Result<Option<Digest>> {
    let r = ImageRef::parse(image)?;
    match ctx
        .client
        .get_text(&format!("/v2/{}/manifests/{}", r.repo, r.reference), &[])
    {
        Ok(text) => Ok(Some(Digest::of(text.as_bytes()))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e).with_context(|| format!("looking for {image} in the hub's registry")),
    }
}

/// Builds the planned services with `build:` (only those named in
/// `only`, when it names any), as `when` says, and pins each built
/// service's container to its image's digest; the first failure stops it,
/// naming its service.
pub fn run(
    ctx: &Context,
    p: &mut Plan,
    only: &[String],
    when: When,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    for s in &mut p.services {
        let Some(b) = &s.build else { continue };
        if !only.is_empty() && !only.contains(&s.name) {
            continue;
        }
        let mut digest = in_registry(ctx, &b.image)?;
        if when == When::Always || b.always || digest.is_none() {
            writeln!(err, "[+] Building {} ({})", s.name, b.image)?;
            crate::build::run::build(ctx, &b.request, false, err)
                .with_context(|| format!("services.{}: building {} failed", s.name, b.image))?;
            writeln!(err, "[+] Built {} ({})", s.name, b.image)?;
            digest = in_registry(ctx, &b.image)?;
        }
        let Some(digest) = digest else {
            anyhow::bail!(
                "services.{}: {} was built but the hub's registry does not have it",
                s.name,
                b.image
            );
        };
        let image = b.image.clone();
        plan::pin_image(s, &image, &digest.to_string());
    }
    Ok(())
}
