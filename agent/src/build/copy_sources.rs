//! The sources of a COPY or ADD, found as BuildKit finds them: a plain
//! path is followed (inside its root) and must exist; a glob is fsutil's
//! `resolveWildcards` (the part before the first wildcard is a directory,
//! entries below it whose path matches are taken in lexical order, a
//! matched directory is not entered, nothing followed while walking) and
//! may match nothing. In the build context only the visible files (and
//! the directories above them) exist.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, OFlags, Stat, fstat};

use super::copy::{CopyError, io_err, is_kind};
use super::copy_plan::SourcePattern;
use super::copy_tree::Visible;
use crate::image_root::in_root::{Root, display, lstat_at};

/// A matched source: its name as matched (what it is called in a
/// directory destination), its real path in the source root and its
/// `stat` (a matched symlink followed).
pub(crate) struct Matched {
    pub name: String,
    pub real: PathBuf,
    pub st: Stat,
}

pub(crate) struct Sources {
    pub root: Root,
    pub visible: Option<Visible>,
    /// "the build context", "the stage", "the image" (messages).
    pub place: &'static str,
}

impl Sources {
    /// Follows `rel` inside the root; `None` if missing or invisible.
    fn resolve(&self, rel: &Path) -> Result<Option<(PathBuf, Stat)>, CopyError> {
        let fd = match self.root.open_at(rel, OFlags::PATH) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(None);
            }
            Err(e) => return Err(io_err("reading the source", display(rel))(e)),
        };
        let real = self
            .root
            .real_rel(&fd)
            .map_err(io_err("reading the source", display(rel)))?;
        let st = fstat(&fd).map_err(|e| io_err("reading the source", display(rel))(e.into()))?;
        let visible = self.visible.as_ref().is_none_or(|v| {
            real.as_os_str().is_empty() || v.allows(&real, is_kind(&st, FileType::Directory))
        });
        Ok(visible.then_some((real, st)))
    }

    fn not_found(&self, pattern: &str) -> CopyError {
        CopyError::NotFound {
            pattern: pattern.to_string(),
            place: self.place,
            hint: if self.visible.is_some() {
                " (or excluded by .dockerignore)"
            } else {
                ""
            },
        }
    }

    /// The sources `pattern` names, in BuildKit's order.
    pub fn matches(&self, pattern: &str) -> Result<Vec<Matched>, CopyError> {
        let p = SourcePattern::parse(pattern)?;
        let base = Path::new(&p.dir);
        let Some((real, st)) = self.resolve(base)? else {
            return Err(self.not_found(pattern));
        };
        if p.glob.is_none() {
            let name = base
                .file_name()
                .map(|n| display(Path::new(n)))
                .unwrap_or_default();
            return Ok(vec![Matched { name, real, st }]);
        }
        let mut out = Vec::new();
        if is_kind(&st, FileType::Directory) {
            self.walk(&p, &real, "", pattern, &mut out)?;
        }
        Ok(out)
    }

    /// fsutil's `resolveWildcards`: the entries under `base` whose path
    /// below it matches the glob, a matched directory not entered.
    fn walk(
        &self,
        p: &SourcePattern,
        base: &Path,
        below: &str,
        pattern: &str,
        out: &mut Vec<Matched>,
    ) -> Result<(), CopyError> {
        let here = base.join(below);
        let dir = self
            .root
            .open_at(&here, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW)
            .map_err(io_err("reading the source directory", display(&here)))?;
        let mut names = Vec::new();
        let read_err =
            |e: rustix::io::Errno| io_err("reading the source directory", display(&here))(e.into());
        for entry in rustix::fs::Dir::read_from(&dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        for name in names {
            let rel = if below.is_empty() {
                name.clone()
            } else {
                format!("{below}/{name}")
            };
            let Some(st) = lstat_at(&dir, OsStr::new(&name))
                .map_err(io_err("reading the source", display(&here.join(&name))))?
            else {
                continue;
            };
            let child = base.join(&rel);
            let is_dir = is_kind(&st, FileType::Directory);
            if self
                .visible
                .as_ref()
                .is_some_and(|v| !v.allows(&child, is_dir))
            {
                continue;
            }
            if p.matches(&rel) {
                let Some((real, st)) = self.resolve(&child)? else {
                    return Err(self.not_found(pattern));
                };
                out.push(Matched { name, real, st });
            } else if is_dir && rel.split('/').count() < p.glob_depth() {
                self.walk(p, base, &rel, pattern, out)?;
            }
        }
        Ok(())
    }
}
