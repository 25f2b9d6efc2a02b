//! Normalization of tar entry paths into components that stay inside the root.
//!
//! A path is split on `/`; empty and `.` components are dropped (so `./a//b/`
//! is `a/b`). A leading `/` (absolute path) and any `..` component are refused
//! outright, never "cleaned": a layer that contains them was not produced by a
//! well-behaved tool, and refusing is the only answer that cannot be tricked.

/// Longest accepted entry path, in bytes (Linux `PATH_MAX` - 1). Also bounds
/// directory depth, and so every walk and recursive removal.
pub(crate) const MAX_PATH_BYTES: usize = 4095;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// Starts with `/`.
    Absolute,
    /// Contains a `..` component.
    ParentDir,
    /// Contains a NUL byte.
    Nul,
    /// Longer than [`MAX_PATH_BYTES`].
    TooLong,
}

/// A normalized relative path: non-empty components without `/`, `.`, `..` or
/// NUL. Empty means the root itself.
pub(crate) type Components = Vec<Vec<u8>>;

/// Normalizes a tar path (see the module docs).
pub(crate) fn normalize(raw: &[u8]) -> Result<Components, PathProblem> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathProblem::TooLong);
    }
    if raw.contains(&0) {
        return Err(PathProblem::Nul);
    }
    if raw.first() == Some(&b'/') {
        return Err(PathProblem::Absolute);
    }
    let mut out = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(PathProblem::ParentDir),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// Human-readable form of raw path bytes for error messages.
pub(crate) fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Joins components back into a display string (`a/b/c`).
pub(crate) fn join(comps: &[Vec<u8>]) -> String {
    display(&comps.join(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Vec<String> {
        normalize(raw.as_bytes())
            .unwrap()
            .iter()
            .map(|c| display(c))
            .collect()
    }

    #[test]
    fn normalizes_dot_and_slashes() {
        assert_eq!(ok("./a//b/./c/"), ["a", "b", "c"]);
        assert_eq!(ok("a"), ["a"]);
        assert!(ok("./").is_empty());
        assert!(ok("").is_empty());
        assert_eq!(ok("...").first().map(String::as_str), Some("..."));
        assert_eq!(ok("a/..b/c.."), ["a", "..b", "c.."]);
    }

    #[test]
    fn refuses_escapes() {
        assert_eq!(normalize(b"/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(normalize(b"../x"), Err(PathProblem::ParentDir));
        assert_eq!(normalize(b"a/../../x"), Err(PathProblem::ParentDir));
        assert_eq!(normalize(b"a/.."), Err(PathProblem::ParentDir));
        assert_eq!(normalize(b"./../x"), Err(PathProblem::ParentDir));
        assert_eq!(normalize(b"a\0b"), Err(PathProblem::Nul));
        assert_eq!(
            normalize("a/".repeat(3000).as_bytes()),
            Err(PathProblem::TooLong)
        );
    }
}
