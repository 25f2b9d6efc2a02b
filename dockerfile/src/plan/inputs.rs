//! What a COPY/ADD step reads from the build context: its sources matched
//! against the context's file list (Go `filepath.Match` globs, a directory
//! selecting everything under it), so the caller can hash exactly those
//! files for [`super::cache_key`]. A source that matches nothing is an
//! error, as in BuildKit.

use super::step::{Action, Source, Step};
use crate::fnmatch;
use crate::{Error, ErrorKind};

/// The context files (sorted, from `context_files`) that `step` reads.
/// Empty for steps that read no context files (RUN, WORKDIR, `--from`).
pub fn context_inputs<'a>(step: &Step, context_files: &'a [String]) -> Result<Vec<&'a str>, Error> {
    let Action::Copy(copy) = &step.action else {
        return Ok(Vec::new());
    };
    if copy.from != Source::Context {
        return Ok(Vec::new());
    }
    let mut out: Vec<&str> = Vec::new();
    for src in &copy.sources {
        let matched = fnmatch::select(src, context_files).map_err(|e| {
            Error::new(
                ErrorKind::Syntax,
                step.line,
                format!("COPY source {src:?}: {e}"),
            )
            .hint("check `[`…`]` pairs and trailing `\\` in the pattern")
        })?;
        if matched.is_empty() {
            return Err(Error::new(
                ErrorKind::Request,
                step.line,
                format!("{src:?} not found in the build context"),
            )
            .hint("check the path relative to the context directory and that .dockerignore does not exclude it"));
        }
        out.extend(matched);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}
