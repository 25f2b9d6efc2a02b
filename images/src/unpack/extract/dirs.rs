//! Reaching and clearing places below the root without following a symlink:
//! the path-safety half of extraction.
//!
//! A directory is opened one component at a time from the root fd with
//! `O_DIRECTORY | O_NOFOLLOW`, so a symlink (or any non-directory) anywhere
//! on an entry's parent path is an error naming that component, never a way
//! out of the root. Whatever is in the way of a new entry is inspected with
//! `AT_SYMLINK_NOFOLLOW` and removed without following symlinks either.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, mkdirat, openat, statat, unlinkat};
use rustix::io::Errno;

use super::{Ctx, Extractor};
use crate::unpack::UnpackError;
use crate::unpack::path;

/// Flags for opening a directory below the root: never through a symlink.
pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn file_type_name(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Fifo => "a fifo",
        FileType::Socket => "a socket",
        FileType::Unknown => "an unknown file type",
    }
}

/// Removes `name` in `parent`, recursively if it is a directory, never
/// following symlinks. Depth is bounded by the path-length limit.
pub(super) fn remove_tree_at(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let st = statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(unlinkat(parent, name, AtFlags::empty())?);
    }
    let dir = openat(parent, name, DIR_FLAGS, Mode::empty())?;
    let mut names = Vec::new();
    for ent in Dir::read_from(&dir)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_tree_at(dir.as_fd(), &n)?;
    }
    Ok(unlinkat(parent, name, AtFlags::REMOVEDIR)?)
}

impl Extractor<'_> {
    /// Opens the directory at `comps` below the root, one component at a time
    /// without following symlinks; missing directories are created (mode
    /// 0755) when `create` is set. `entry` names the tar entry for errors.
    pub(super) fn open_dir(
        &mut self,
        entry: &str,
        comps: &[Vec<u8>],
        create: bool,
    ) -> Result<Option<OwnedFd>, UnpackError> {
        let ctx = Ctx { entry };
        if let Some((c, fd)) = &self.cache
            && c.as_slice() == comps
        {
            return fd.try_clone().map(Some).map_err(ctx.ioe("duplicate fd"));
        }
        let mut cur = self.root.try_clone().map_err(ctx.ioe("duplicate fd"))?;
        for (i, comp) in comps.iter().enumerate() {
            let mut created = false;
            let next = loop {
                match openat(&cur, comp.as_slice(), DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => break fd,
                    Err(Errno::NOENT) if create && !created => {
                        match mkdirat(&cur, comp.as_slice(), Mode::from_raw_mode(0o755)) {
                            Ok(()) | Err(Errno::EXIST) => created = true,
                            Err(e) => return Err(ctx.io("create parent directory")(e)),
                        }
                        self.stats.dirs += 1;
                    }
                    Err(Errno::NOENT) => return Ok(None),
                    Err(Errno::LOOP | Errno::NOTDIR) => {
                        let component = path::join(&comps[..=i]);
                        let st = statat(&cur, comp.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(ctx.io("inspect parent"))?;
                        let ft = FileType::from_raw_mode(st.st_mode);
                        return Err(if ft == FileType::Symlink {
                            UnpackError::SymlinkInPath {
                                entry: entry.to_string(),
                                component,
                            }
                        } else {
                            UnpackError::ParentNotDirectory {
                                entry: entry.to_string(),
                                component,
                                found: file_type_name(ft),
                            }
                        });
                    }
                    Err(e) => return Err(ctx.io("open parent directory")(e)),
                }
            };
            cur = next;
        }
        let copy = cur.try_clone().map_err(ctx.ioe("duplicate fd"))?;
        self.cache = Some((comps.to_vec(), copy));
        Ok(Some(cur))
    }

    /// The parent directory of an entry, created if missing.
    pub(super) fn parent(
        &mut self,
        ctx: &Ctx<'_>,
        comps: &[Vec<u8>],
    ) -> Result<OwnedFd, UnpackError> {
        self.open_dir(ctx.entry, comps, true)?
            .ok_or_else(|| ctx.io("open parent directory")(Errno::NOENT))
    }

    /// Makes room for a new entry at `parent/name`: nothing to do if nothing is
    /// there; an existing directory is kept when the new entry is a directory
    /// (returns `true`); anything else is removed.
    pub(super) fn clear_target(
        &mut self,
        ctx: &Ctx<'_>,
        parent: &OwnedFd,
        name: &[u8],
        new_is_dir: bool,
    ) -> Result<bool, UnpackError> {
        match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(ctx.io("inspect existing entry")(e)),
            Ok(st) => {
                let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                if is_dir && new_is_dir {
                    return Ok(true);
                }
                // Whatever the cache holds may be (below) what is removed.
                self.cache = None;
                remove_tree_at(parent.as_fd(), name).map_err(ctx.ioe("replace existing entry"))?;
                Ok(false)
            }
        }
    }
}
