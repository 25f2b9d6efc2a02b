//! Following a Build until it ends: `GET` of the object every 250 ms (as
//! other CLI waits do), each change printed by [`render`]. A hub that
//! cannot be reached for a moment is asked again; a Build deleted meanwhile
//! (cancelled) ends the wait with an error.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bramble_api::objects::Build;

use super::render::{Numbering, render};
use crate::client::Client;

/// Between two looks at the Build.
pub const POLL: Duration = Duration::from_millis(250);
/// Failed looks in a row (hub unreachable) before giving up.
const MAX_MISSES: u32 = 40;

/// Follows the Build at `path` until it ends; prints its progress to `err`
/// (unless `quiet`); returns it as it ended.
pub fn follow(
    client: &Client,
    path: &str,
    numbers: &mut Numbering,
    quiet: bool,
    err: &mut dyn Write,
) -> anyhow::Result<Build> {
    let mut prev: Option<Build> = None;
    let mut misses = 0;
    loop {
        let value = match client.get(path, &[]) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => {
                bail!("the Build {path} was deleted before it ended (cancelled)")
            }
            Err(e) if e.code().is_none_or(|c| c >= 500) => {
                misses += 1;
                if misses >= MAX_MISSES {
                    return Err(e).context("following the build");
                }
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => return Err(e).context("following the build"),
        };
        misses = 0;
        let build: Build = serde_json::from_value(value)
            .with_context(|| format!("{path}: the hub answered with something not a Build"))?;
        if !quiet && let Some(status) = &build.status {
            let before = prev.as_ref().and_then(|b| b.status.as_ref());
            for line in render(before, status, numbers) {
                writeln!(err, "{line}")?;
            }
        }
        if build.finished() {
            return Ok(build);
        }
        prev = Some(build);
        std::thread::sleep(POLL);
    }
}
