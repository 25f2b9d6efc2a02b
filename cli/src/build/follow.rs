//! Following a Build until it ends: a watch of it
//! (`?watch=true&fieldSelector=metadata.name=NAME`, which starts with the
//! Build as it is), and `GET` every 250 ms (as other CLI waits do) if the
//! watch cannot be opened or ends first. Each change is printed by
//! [`render`]. A hub that cannot be reached for a moment is asked again; a
//! Build deleted meanwhile (cancelled) ends the wait with an error.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use bramble_api::objects::Build;
use serde_json::Value;

use super::render::{Numbering, render};
use crate::client::Client;

/// Between two looks at the Build when polling.
pub const POLL: Duration = Duration::from_millis(250);
/// Failed looks in a row (hub unreachable) before giving up.
const MAX_MISSES: u32 = 40;

/// What was seen of the Build so far, and where its progress goes.
struct Seen<'a> {
    prev: Option<Build>,
    numbers: &'a mut Numbering,
    quiet: bool,
    err: &'a mut dyn Write,
}

impl Seen<'_> {
    /// Prints what changed; the Build if it ended.
    fn see(&mut self, value: Value, what: &str) -> anyhow::Result<Option<Build>> {
        let build: Build = serde_json::from_value(value)
            .with_context(|| format!("{what}: the hub answered with something not a Build"))?;
        if !self.quiet
            && let Some(status) = &build.status
        {
            let before = self.prev.as_ref().and_then(|b| b.status.as_ref());
            for line in render(before, status, self.numbers) {
                writeln!(self.err, "{line}")?;
            }
        }
        if build.finished() {
            return Ok(Some(build));
        }
        self.prev = Some(build);
        Ok(None)
    }
}

/// Follows Build `name` of `collection` until it ends; prints its progress
/// to `err` (unless `quiet`); returns it as it ended.
pub fn follow(
    client: &Client,
    collection: &str,
    name: &str,
    numbers: &mut Numbering,
    quiet: bool,
    err: &mut dyn Write,
) -> anyhow::Result<Build> {
    let path = format!("{collection}/{name}");
    let cancelled = || anyhow::anyhow!("build {name} was deleted before it ended (cancelled)");
    let mut seen = Seen {
        prev: None,
        numbers,
        quiet,
        err,
    };
    let selector = format!("metadata.name={name}");
    if let Ok(events) = client.watch(collection, &[("fieldSelector", &selector)]) {
        for event in events {
            // A broken stream: polling takes over.
            let Ok(event) = event else { break };
            match event.kind.as_str() {
                "ADDED" | "MODIFIED" => {
                    if let Some(done) = seen.see(event.object, &path)? {
                        return Ok(done);
                    }
                }
                "DELETED" => return Err(cancelled()),
                "ERROR" => break,
                _ => {}
            }
        }
    }
    let mut misses = 0;
    loop {
        let value = match client.get(&path, &[]) {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return Err(cancelled()),
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
        if let Some(done) = seen.see(value, &path)? {
            return Ok(done);
        }
        std::thread::sleep(POLL);
    }
}
