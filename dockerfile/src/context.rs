//! The build context: which files of the context directory a build may read
//! (everything `.dockerignore` does not exclude), and which files the CLI
//! sends (those, plus the Dockerfile and the ignore file, as the docker CLI
//! always sends them even if a pattern matches them).
//!
//! As in BuildKit, a `<Dockerfile>.dockerignore` next to the Dockerfile
//! (`app.Dockerfile.dockerignore`) replaces the context's `.dockerignore`.
//! Files ignored stay invisible to COPY/ADD even when they are sent: the
//! Dockerfile itself is only copied by `COPY` if no pattern excludes it.
//! This is the one module with I/O (reading the directory tree).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ignore::{Ignore, IgnoreError};

/// Errors while reading a build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read build context {path}: {source} (check that it exists and is readable)")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {source} (fix the pattern or remove the line)")]
    Ignore { path: PathBuf, source: IgnoreError },
    #[error(
        "the Dockerfile {path} is outside the build context {context} (move it into the context)"
    )]
    DockerfileOutside { path: PathBuf, context: PathBuf },
}

/// A scanned build context.
#[derive(Debug, Clone)]
pub struct Context {
    /// Context-relative `/`-separated paths of the files and symlinks a
    /// build may read, sorted.
    pub files: Vec<String>,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// The ignore file in force, relative to the context, if any.
    pub ignore_file: Option<String>,
}

impl Context {
    /// Scans `dir` with the Dockerfile at `dockerfile` (inside `dir`).
    pub fn scan(dir: &Path, dockerfile: &Path) -> Result<Context, ContextError> {
        let rel_dockerfile = dockerfile
            .strip_prefix(dir)
            .map_err(|_| ContextError::DockerfileOutside {
                path: dockerfile.to_path_buf(),
                context: dir.to_path_buf(),
            })?
            .to_string_lossy()
            .replace('\\', "/");
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(".dockerignore");
        let specific = PathBuf::from(specific);
        let (ignore_path, ignore_rel) = if specific.is_file() {
            (
                Some(specific),
                Some(format!("{rel_dockerfile}.dockerignore")),
            )
        } else if dir.join(".dockerignore").is_file() {
            (
                Some(dir.join(".dockerignore")),
                Some(".dockerignore".to_string()),
            )
        } else {
            (None, None)
        };
        let ignore = match &ignore_path {
            Some(p) => {
                let text = fs::read_to_string(p).map_err(|source| ContextError::Read {
                    path: p.clone(),
                    source,
                })?;
                Ignore::parse(&text).map_err(|source| ContextError::Ignore {
                    path: p.clone(),
                    source,
                })?
            }
            None => Ignore::default(),
        };
        let mut files = Vec::new();
        walk(dir, "", &ignore, &mut files)?;
        files.sort();
        Ok(Context {
            files,
            dockerfile: rel_dockerfile,
            ignore_file: ignore_rel,
        })
    }

    /// The files to send to the builder: [`Context::files`] plus the
    /// Dockerfile and the ignore file, sorted, without duplicates.
    pub fn send_list(&self) -> Vec<String> {
        let mut all = self.files.clone();
        all.push(self.dockerfile.clone());
        all.extend(self.ignore_file.clone());
        all.sort();
        all.dedup();
        all
    }
}

fn walk(dir: &Path, rel: &str, ignore: &Ignore, out: &mut Vec<String>) -> Result<(), ContextError> {
    let read_err = |source| ContextError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type().map_err(read_err)?;
        if kind.is_dir() {
            walk(&entry.path(), &path, ignore, out)?;
        } else if !ignore.is_ignored(&path) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, rel).unwrap();
    }

    #[test]
    fn lists_sorted_files_not_ignored_and_always_sends_build_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "Dockerfile",
            "b.txt",
            "a.txt",
            "logs/x.log",
            "src/main.rs",
            "src/keep.log",
        ] {
            touch(root, f);
        }
        fs::write(
            root.join(".dockerignore"),
            "logs\n**/*.log\n!src/keep.log\nDockerfile\n.dockerignore\n",
        )
        .unwrap();
        let ctx = Context::scan(root, &root.join("Dockerfile")).unwrap();
        assert_eq!(ctx.files, ["a.txt", "b.txt", "src/keep.log", "src/main.rs"]);
        assert_eq!(ctx.ignore_file.as_deref(), Some(".dockerignore"));
        assert_eq!(
            ctx.send_list(),
            [
                ".dockerignore",
                "Dockerfile",
                "a.txt",
                "b.txt",
                "src/keep.log",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["app.Dockerfile", "a.txt", "b.txt"] {
            touch(root, f);
        }
        fs::write(root.join(".dockerignore"), "a.txt\n").unwrap();
        fs::write(root.join("app.Dockerfile.dockerignore"), "b.txt\n").unwrap();
        let ctx = Context::scan(root, &root.join("app.Dockerfile")).unwrap();
        assert!(ctx.files.contains(&"a.txt".to_string()));
        assert!(!ctx.files.contains(&"b.txt".to_string()));
        assert_eq!(
            ctx.ignore_file.as_deref(),
            Some("app.Dockerfile.dockerignore")
        );
    }

    #[test]
    fn bad_ignore_file_and_outside_dockerfile_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "Dockerfile");
        fs::write(root.join(".dockerignore"), "!\n").unwrap();
        let err = Context::scan(root, &root.join("Dockerfile")).unwrap_err();
        assert!(matches!(err, ContextError::Ignore { ref source, .. } if source.line == 1));
        let other = tempfile::tempdir().unwrap();
        let err = Context::scan(root, &other.path().join("Dockerfile")).unwrap_err();
        assert!(matches!(err, ContextError::DockerfileOutside { .. }));
    }
}
