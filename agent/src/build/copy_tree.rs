//! Copying one entry, or a directory's contents, from a source root into
//! the image's root, as fsutil's `copy.Copy` does for BuildKit: files
//! with their data, modes and times; symlinks as links (never followed);
//! fifos and device nodes recreated; hardlinks within one copy kept as
//! hardlinks; an existing file, link or device at a destination name is
//! replaced, an existing directory merged (its mode and times set from the
//! source's, as BuildKit does for directories inside a copied one), and a
//! file over a directory (or a directory over a file) is an error. Owners
//! are the `--chown` owner, else 0:0 for the build context (the docker CLI
//! resets them before sending it), else the source's (an earlier stage or
//! an image, as BuildKit keeps them); `--chmod` replaces every mode.
//!
//! Everything is done with `*at` calls relative to directory descriptors
//! found inside the roots ([`crate::image_root::in_root`]): source entries are looked
//! at with `AT_SYMLINK_NOFOLLOW` and opened with `O_NOFOLLOW`, so a link in
//! a context or a stage to the board's `/etc/shadow` is copied as a link.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, Stat, Timestamps, linkat, mknodat, openat, readlinkat,
    symlinkat, unlinkat,
};

use crate::image_root::in_root::{Owner, Root, display, lstat_at, set_meta};

/// Why an entry could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot copy the directory {source_path} over {dest}, which is not a directory in the \
         image: remove it first (RUN rm) or copy to another path"
    )]
    NotADirectory { source_path: String, dest: String },
    #[error(
        "cannot replace the directory {dest} with the file {source_path}: copy into it \
         ({dest}/) or remove it first"
    )]
    IsADirectory { source_path: String, dest: String },
    #[error("{path} is a socket, which cannot be copied into an image: leave it out")]
    Socket { path: String },
    #[error(
        "the archive has the whiteout entry {path} (`.wh.` names are deletion marks in image \
         layers), which ADD cannot extract: rename it in the archive"
    )]
    Whiteout { path: String },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TreeError + 'a {
    move |source| TreeError::Io {
        op,
        path: format!("/{}", display(path)),
        source,
    }
}

fn errno(e: rustix::io::Errno) -> io::Error {
    e.into()
}

/// The context files a build may read: `files` (sorted, relative) and
/// every directory above one of them.
#[derive(Debug, Default)]
pub struct Visible {
    files: HashSet<String>,
    dirs: HashSet<String>,
}

impl Visible {
    pub fn new(files: &[String]) -> Visible {
        let mut dirs = HashSet::new();
        dirs.insert(String::new());
        for f in files {
            let mut end = 0;
            while let Some(i) = f[end..].find('/') {
                dirs.insert(f[..end + i].to_string());
                end += i + 1;
            }
        }
        Visible {
            files: files.iter().cloned().collect(),
            dirs,
        }
    }

    /// Whether `rel` may be read: a listed file, or a directory holding one.
    pub fn allows(&self, rel: &Path, is_dir: bool) -> bool {
        let rel = display(rel);
        if is_dir {
            self.dirs.contains(&rel)
        } else {
            self.files.contains(&rel)
        }
    }
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode as _) == FileType::Directory
}

/// One copy (one source pattern's matches, or an extracted archive).
pub struct Copier<'a> {
    pub src: &'a Root,
    pub dst: &'a Root,
    /// `--chown`'s owner; `None` keeps the source's or resets (below).
    pub owner: Owner,
    /// Sources are the build context: owners become 0:0.
    pub reset_owner: bool,
    pub chmod: Option<u32>,
    /// Only these source paths (the build context after `.dockerignore`).
    pub visible: Option<&'a Visible>,
    /// The source is an extracted archive: a 0/0 character device is a
    /// whiteout the unpacker made of a `.wh.` entry.
    pub archive: bool,
    /// Hardlinked sources already copied: (dev, ino) → destination path.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<'a> Copier<'a> {
    pub fn new(src: &'a Root, dst: &'a Root) -> Copier<'a> {
        Copier {
            src,
            dst,
            owner: None,
            reset_owner: false,
            chmod: None,
            visible: None,
            archive: false,
            links: HashMap::new(),
        }
    }

    /// Whether the source path `rel` may be read.
    pub fn allows(&self, rel: &Path, st: &Stat) -> bool {
        self.visible.is_none_or(|v| v.allows(rel, is_dir(st)))
    }

    #[allow(clippy::unnecessary_cast)]
    fn meta(&self, st: &Stat) -> (Owner, u32, Timestamps) {
        let owner = self.owner.or(Some(if self.reset_owner {
            (0, 0)
        } else {
            (st.st_uid as u32, st.st_gid as u32)
        }));
        let mode = self.chmod.unwrap_or(st.st_mode as u32 & 0o7777);
        let times = Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: st.st_atime as _,
                tv_nsec: st.st_atime_nsec as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: st.st_mtime as _,
                tv_nsec: st.st_mtime_nsec as _,
            },
        };
        (owner, mode, times)
    }

    /// Copies the contents of the source directory `src_rel` (a real path
    /// in the source root) into the destination directory `dst_dir`
    /// (`dst_rel` in the image).
    pub fn contents(
        &mut self,
        src_rel: &Path,
        dst_dir: &OwnedFd,
        dst_rel: &Path,
    ) -> Result<(), TreeError> {
        let src_dir = self
            .src
            .open_at(
                src_rel,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            )
            .map_err(io_err("opening the source directory", src_rel))?;
        let mut names: Vec<OsString> = Vec::new();
        let read_err = io_err("reading the source directory", src_rel);
        let dir = Dir::read_from(&src_dir).map_err(|e| read_err(errno(e)))?;
        for entry in dir {
            let entry =
                entry.map_err(|e| io_err("reading the source directory", src_rel)(errno(e)))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        names.sort();
        for name in names {
            let rel = src_rel.join(&name);
            let Some(st) = lstat_at(&src_dir, &name).map_err(io_err("reading", &rel))? else {
                continue;
            };
            if !self.allows(&rel, &st) {
                continue;
            }
            self.entry(
                &src_dir,
                &name,
                &rel,
                &st,
                dst_dir,
                &name,
                &dst_rel.join(&name),
            )?;
        }
        Ok(())
    }

    /// Copies the source entry `name` of `src_dir` (`st`: its `lstat`) to
    /// `dst_name` in `dst_dir`.
    #[allow(clippy::too_many_arguments, clippy::unnecessary_cast)]
    pub fn entry(
        &mut self,
        src_dir: &OwnedFd,
        name: &OsStr,
        src_rel: &Path,
        st: &Stat,
        dst_dir: &OwnedFd,
        dst_name: &OsStr,
        dst_rel: &Path,
    ) -> Result<(), TreeError> {
        let (owner, mode, times) = self.meta(st);
        let kind = FileType::from_raw_mode(st.st_mode as _);
        let existing = lstat_at(dst_dir, dst_name).map_err(io_err("looking at", dst_rel))?;
        let show = |p: &Path| format!("/{}", display(p));
        if kind == FileType::Directory {
            match existing {
                None => mkdirat_(dst_dir, dst_name, dst_rel)?,
                Some(e) if is_dir(&e) => {}
                Some(_) => {
                    return Err(TreeError::NotADirectory {
                        source_path: display(src_rel),
                        dest: show(dst_rel),
                    });
                }
            }
            let inner = openat(
                dst_dir,
                dst_name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err("opening", dst_rel)(errno(e)))?;
            self.contents(src_rel, &inner, dst_rel)?;
            return set_meta(dst_dir, dst_name, owner, Some(mode), Some(&times))
                .map_err(io_err("setting owner, mode and times of", dst_rel));
        }
        match existing {
            Some(e) if is_dir(&e) => {
                return Err(TreeError::IsADirectory {
                    source_path: display(src_rel),
                    dest: show(dst_rel),
                });
            }
            Some(_) => unlinkat(dst_dir, dst_name, AtFlags::empty())
                .map_err(|e| io_err("replacing", dst_rel)(errno(e)))?,
            None => {}
        }
        match kind {
            FileType::RegularFile => {
                let key = (st.st_dev as u64, st.st_ino as u64);
                if st.st_nlink > 1
                    && let Some(first) = self.links.get(&key)
                {
                    let parent = self
                        .dst
                        .dir(first.parent().unwrap_or(Path::new("")))
                        .map_err(io_err("opening the directory of", first))?;
                    let first_name = first.file_name().unwrap_or_default();
                    return linkat(&parent, first_name, dst_dir, dst_name, AtFlags::empty())
                        .map_err(|e| io_err("hardlinking", dst_rel)(errno(e)));
                }
                self.file(src_dir, name, src_rel, dst_dir, dst_name, dst_rel)?;
                if st.st_nlink > 1 {
                    self.links.insert(key, dst_rel.to_path_buf());
                }
            }
            FileType::Symlink => {
                let target = readlinkat(src_dir, name, Vec::new())
                    .map_err(|e| io_err("reading the link", src_rel)(errno(e)))?;
                symlinkat(target.as_c_str(), dst_dir, dst_name)
                    .map_err(|e| io_err("creating the link", dst_rel)(errno(e)))?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                if self.archive && kind == FileType::CharacterDevice && st.st_rdev == 0 {
                    return Err(TreeError::Whiteout {
                        path: display(src_rel),
                    });
                }
                mknodat(
                    dst_dir,
                    dst_name,
                    kind,
                    Mode::from_raw_mode(0o600),
                    st.st_rdev as _,
                )
                .map_err(|e| io_err("creating the node", dst_rel)(errno(e)))?;
            }
            _ => {
                return Err(TreeError::Socket {
                    path: display(src_rel),
                });
            }
        }
        let mode = (kind != FileType::Symlink).then_some(mode);
        set_meta(dst_dir, dst_name, owner, mode, Some(&times))
            .map_err(io_err("setting owner, mode and times of", dst_rel))
    }

    fn file(
        &self,
        src_dir: &OwnedFd,
        name: &OsStr,
        src_rel: &Path,
        dst_dir: &OwnedFd,
        dst_name: &OsStr,
        dst_rel: &Path,
    ) -> Result<(), TreeError> {
        let from = openat(
            src_dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("opening", src_rel)(errno(e)))?;
        let to = openat(
            dst_dir,
            dst_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err("creating", dst_rel)(errno(e)))?;
        io::copy(&mut File::from(from), &mut File::from(to))
            .map_err(io_err("copying to", dst_rel))?;
        Ok(())
    }
}

fn mkdirat_(dir: &OwnedFd, name: &OsStr, rel: &Path) -> Result<(), TreeError> {
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
        .map_err(|e| io_err("creating the directory", rel)(errno(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_files_and_the_directories_above_them() {
        let v = Visible::new(&["a/b/c.txt".to_string(), "top".to_string()]);
        assert!(v.allows(Path::new("a/b/c.txt"), false));
        assert!(v.allows(Path::new("top"), false));
        assert!(v.allows(Path::new("a"), true));
        assert!(v.allows(Path::new("a/b"), true));
        assert!(v.allows(Path::new(""), true));
        assert!(!v.allows(Path::new("a/b"), false));
        assert!(!v.allows(Path::new("a/b/c.txt"), true));
        assert!(!v.allows(Path::new("a/x"), false));
        assert!(!v.allows(Path::new("ab"), true));
    }
}
