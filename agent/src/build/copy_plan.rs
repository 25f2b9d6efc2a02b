//! The pure rules of COPY and ADD, as BuildKit applies them (its
//! `dockerfile2llb` and `fsutil/copy`): which source paths a pattern names,
//! where each matched source lands, and when several sources need a
//! directory destination. No I/O: [`super::copy`] asks the filesystem what
//! exists and follows these rules.

use std::path::{Component, Path, PathBuf};

use bramble_dockerfile::fnmatch;

/// A source pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error(
        "source {0:?} points outside the build context or stage (`..` above its root): \
         name a path inside it"
    )]
    Escapes(String),
    #[error("source {pattern:?}: {error} (check `[`…`]` pairs and trailing `\\`)")]
    Bad {
        pattern: String,
        error: fnmatch::BadPattern,
    },
}

/// A source pattern, cleaned: `dir` (no wildcards, relative to the source
/// root, `""` for the root) and the wildcard part below it, if any
/// (`src/*.rs` → `src` + `*.rs`), as fsutil's `splitWildcards`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePattern {
    pub dir: String,
    pub glob: Option<String>,
}

impl SourcePattern {
    /// Cleans `pattern` (`./`, `//` and a leading `/` dropped, `a/../b` is
    /// `b`); `..` above the root is refused, as is a malformed glob.
    pub fn parse(pattern: &str) -> Result<SourcePattern, PatternError> {
        let mut parts: Vec<&str> = Vec::new();
        for part in pattern.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(PatternError::Escapes(pattern.to_string()));
                    }
                }
                p => parts.push(p),
            }
        }
        let split = parts
            .iter()
            .position(|p| has_wildcard(p))
            .unwrap_or(parts.len());
        let glob = (split < parts.len()).then(|| parts[split..].join("/"));
        if let Some(g) = &glob {
            fnmatch::matches(g, "").map_err(|error| PatternError::Bad {
                pattern: pattern.to_string(),
                error,
            })?;
        }
        Ok(SourcePattern {
            dir: parts[..split].join("/"),
            glob,
        })
    }

    /// The number of path elements the glob spans (`*/*.rs`: 2).
    pub fn glob_depth(&self) -> usize {
        self.glob.as_deref().map_or(0, |g| g.split('/').count())
    }

    /// Whether the wildcard part matches `rel` (relative to [`Self::dir`]).
    pub fn matches(&self, rel: &str) -> bool {
        match &self.glob {
            Some(g) => fnmatch::matches(g, rel).unwrap_or(false),
            None => rel.is_empty(),
        }
    }
}

/// As fsutil's `containsWildcards`: `*`, `?` or `[` not escaped by `\`.
fn has_wildcard(part: &str) -> bool {
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// A COPY/ADD destination: the path relative to the image root, and
/// whether it was written as a directory (`/app/`, `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub rel: PathBuf,
    pub is_dir: bool,
}

impl Dest {
    /// `dest` is absolute (the planner made it so) and cleaned here as
    /// Go's `path.Clean` would (`..` stops at the root); a trailing `/`
    /// makes it a directory; the root is always one.
    pub fn parse(dest: &str) -> Dest {
        let mut rel = PathBuf::new();
        for c in Path::new(dest).components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::ParentDir => {
                    rel.pop();
                }
                _ => {}
            }
        }
        let is_dir = dest.ends_with('/') || rel.as_os_str().is_empty();
        Dest { rel, is_dir }
    }

    /// The directory that must exist before anything is copied: the
    /// destination itself when it is a directory, its parent otherwise
    /// (fsutil's `ensureDstPath`).
    pub fn ensure_dir(&self) -> &Path {
        if self.is_dir {
            &self.rel
        } else {
            self.rel.parent().unwrap_or(Path::new(""))
        }
    }
}

/// Where one matched source goes, given whether the destination is (or was
/// written as) a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A directory's contents go into the destination (made if missing).
    Contents,
    /// A file (or link, device) goes into the destination directory under
    /// its own name.
    Inside(String),
    /// A file becomes the destination itself.
    At,
}

/// fsutil's `prepareTargetDir` with `CopyDirContents`: a directory source
/// copies its contents; anything else goes inside a directory destination
/// and otherwise becomes the destination.
pub fn place(source_is_dir: bool, source_name: &str, dest_is_dir: bool) -> Placement {
    if source_is_dir {
        Placement::Contents
    } else if dest_is_dir {
        Placement::Inside(source_name.to_string())
    } else {
        Placement::At
    }
}

/// Several sources (after globs are expanded) need a directory
/// destination; Docker's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "when using {instruction} with more than one source file, the destination must be a \
     directory and end with a / ({count} sources for {dest:?}: write {dest:?} with a trailing /)"
)]
pub struct ManySources {
    pub instruction: &'static str,
    pub dest: String,
    pub count: usize,
}

/// Checks that `count` matched sources fit the destination: more than one
/// needs a directory (written with `/` or existing as one).
pub fn check_count(
    instruction: &'static str,
    dest: &str,
    count: usize,
    dest_is_dir: bool,
) -> Result<(), ManySources> {
    if count > 1 && !dest_is_dir {
        return Err(ManySources {
            instruction,
            dest: dest.to_string(),
            count,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_cleaned_split_and_kept_inside() {
        let p = SourcePattern::parse("./src//lib/*.rs").unwrap();
        assert_eq!(p.dir, "src/lib");
        assert_eq!(p.glob.as_deref(), Some("*.rs"));
        assert_eq!(p.glob_depth(), 1);
        assert!(p.matches("a.rs"));
        assert!(!p.matches("a/b.rs"));
        let p = SourcePattern::parse("/a/../b").unwrap();
        assert_eq!((p.dir.as_str(), p.glob), ("b", None));
        assert_eq!(SourcePattern::parse(".").unwrap().dir, "");
        let p = SourcePattern::parse("a/*/c?").unwrap();
        assert_eq!((p.dir.as_str(), p.glob_depth()), ("a", 2));
        // An escaped wildcard is a plain name.
        assert_eq!(SourcePattern::parse("a\\*").unwrap().glob, None);
        assert_eq!(
            SourcePattern::parse("a/../../etc/passwd"),
            Err(PatternError::Escapes("a/../../etc/passwd".into()))
        );
        assert!(matches!(
            SourcePattern::parse("x/[a"),
            Err(PatternError::Bad { .. })
        ));
    }

    #[test]
    fn destinations_and_placements_follow_buildkit() {
        let d = Dest::parse("/app/");
        assert_eq!((d.rel.as_path(), d.is_dir), (Path::new("app"), true));
        assert_eq!(d.ensure_dir(), Path::new("app"));
        let d = Dest::parse("/usr/bin/tool");
        assert!(!d.is_dir);
        assert_eq!(d.ensure_dir(), Path::new("usr/bin"));
        assert!(Dest::parse("/").is_dir);
        assert_eq!(Dest::parse("/a/../../tmp/").rel, Path::new("tmp"));

        assert_eq!(place(true, "src", false), Placement::Contents);
        assert_eq!(place(true, "src", true), Placement::Contents);
        assert_eq!(
            place(false, "a.txt", true),
            Placement::Inside("a.txt".into())
        );
        assert_eq!(place(false, "a.txt", false), Placement::At);
    }

    #[test]
    fn several_sources_need_a_directory() {
        assert!(check_count("COPY", "/app", 1, false).is_ok());
        assert!(check_count("COPY", "/app/", 3, true).is_ok());
        let e = check_count("COPY", "/app", 2, false).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "when using COPY with more than one source file, the destination must be a directory and end with a /"
            ),
            "{e}"
        );
    }
}
