//! Creating tar entries under a root directory without ever following a
//! symlink: the [`Extractor`], which takes one tar entry at a time and hands
//! it to the writer for its type.
//!
//! Every filesystem operation is relative to a directory file descriptor
//! (`openat`, `mkdirat`, `symlinkat`, `linkat`, `mknodat`, ... with
//! `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`). A parent directory is reached by
//! opening one component at a time from the root with
//! `O_DIRECTORY | O_NOFOLLOW`, so a symlink anywhere in an entry's parent path
//! is an error rather than a way out of the root. Symlinks themselves are
//! created exactly as the layer says (targets may be absolute): they are data,
//! only dangerous when followed, which this module never does.
//!
//! [`Extractor::entry`] normalizes the entry's path (absolute paths, `..`,
//! NUL and over-long paths are refused, see `path.rs`), reads its metadata
//! (`meta.rs`), and dispatches: the layer root, then whiteouts by name
//! (`whiteout.rs`), then one writer per tar type (`writers.rs`); unknown
//! types are refused. Reaching and clearing places below the root is
//! `dirs.rs`. Directory modes and mtimes are applied last, by
//! [`Extractor::finish`].

mod dirs;
mod meta;
mod whiteout;
mod writers;

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, Timespec, fchmod, futimens};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use self::meta::{Meta, times};
use self::whiteout::WHITEOUT_PREFIX;
use super::path::{self, Components, PathProblem};
use super::{UnpackError, UnpackOptions, UnpackStats};

pub use self::whiteout::OVERLAY_OPAQUE_XATTR;

/// Directory metadata applied after every entry is in place (creating a
/// child changes a directory's mtime; a read-only mode could block children).
struct Deferred {
    comps: Components,
    mode: u32,
    mtime: Timespec,
}

/// Unpacks entries one at a time under `root`.
pub(crate) struct Extractor<'o> {
    root: OwnedFd,
    opts: &'o UnpackOptions,
    /// Owner of the files this process creates; chown is skipped when equal.
    me: (u32, u32),
    /// The last parent directory resolved, by components.
    cache: Option<(Components, OwnedFd)>,
    deferred: Vec<Deferred>,
    deferred_index: HashMap<Components, usize>,
    pub(crate) stats: UnpackStats,
    buf: Vec<u8>,
}

/// An entry being processed: its name as shown in errors.
struct Ctx<'a> {
    entry: &'a str,
}

impl Ctx<'_> {
    fn io(&self, op: &'static str) -> impl FnOnce(Errno) -> UnpackError + '_ {
        move |e| UnpackError::Entry {
            entry: self.entry.to_string(),
            op,
            source: e.into(),
        }
    }

    fn ioe(&self, op: &'static str) -> impl FnOnce(io::Error) -> UnpackError + '_ {
        move |e| UnpackError::Entry {
            entry: self.entry.to_string(),
            op,
            source: e,
        }
    }
}

/// Where an entry below the root goes.
struct Place<'a> {
    /// Its whole normalized path (not empty).
    comps: &'a Components,
    /// The components of its parent directory.
    parent: &'a [Vec<u8>],
    /// Its last component.
    name: &'a [u8],
}

/// The normalized components of entry path `raw`, or the error refusing it
/// (shown as `entry`).
fn components(raw: &[u8], entry: &str) -> Result<Components, UnpackError> {
    path::normalize(raw).map_err(|p| match p {
        PathProblem::Absolute => UnpackError::AbsolutePath {
            entry: entry.to_string(),
        },
        PathProblem::ParentDir => UnpackError::PathTraversal {
            entry: entry.to_string(),
        },
        PathProblem::Nul => UnpackError::InvalidPath {
            entry: entry.to_string(),
            reason: "contains a NUL byte",
        },
        PathProblem::TooLong => UnpackError::InvalidPath {
            entry: entry.to_string(),
            reason: "longer than 4095 bytes",
        },
    })
}

impl<'o> Extractor<'o> {
    /// An extractor writing under `root` (an open directory).
    pub(crate) fn new(root: OwnedFd, opts: &'o UnpackOptions) -> Extractor<'o> {
        let me = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        Extractor {
            root,
            opts,
            me,
            cache: None,
            deferred: Vec::new(),
            deferred_index: HashMap::new(),
            stats: UnpackStats::default(),
            buf: vec![0; 128 * 1024],
        }
    }

    /// Unpacks one entry: checks its path, reads its metadata and hands it
    /// to the writer for what it is (see the module docs).
    pub(crate) fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = e.path_bytes().into_owned();
        let entry = path::display(&raw);
        let ctx = Ctx { entry: &entry };
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.stats.entries += 1;
        let comps = components(&raw, &entry)?;
        let meta = self.meta(&ctx, e)?;

        let Some((name, parent)) = comps.split_last() else {
            return self.root_dir(&ctx, kind, &meta);
        };
        // Whiteouts, converted to overlayfs form, whatever their type.
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(&ctx, parent, name, target, &meta);
        }
        let at = Place {
            comps: &comps,
            parent,
            name,
        };
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => self.regular(&ctx, e, &at, &meta),
            T::Directory => self.directory(&ctx, &at, &meta),
            T::Symlink => self.symlink(&ctx, e, &at, &meta),
            T::Link => self.hardlink(&ctx, e, &at),
            T::Char | T::Block | T::Fifo => self.node(&ctx, e, kind, &at, &meta),
            other => Err(UnpackError::UnsupportedEntryType {
                entry,
                kind: format!("{other:?}"),
            }),
        }
    }

    fn chown_needed(&self, m: &Meta) -> bool {
        self.opts.apply_owners && (m.uid, m.gid) != self.me
    }

    fn owner(m: &Meta) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
    }

    /// Records directory `comps`'s mode and mtime for [`Extractor::finish`];
    /// a later entry for the same directory replaces them.
    fn defer_dir(&mut self, comps: Components, m: &Meta) {
        let d = Deferred {
            comps,
            mode: m.mode,
            mtime: m.mtime,
        };
        match self.deferred_index.get(&d.comps) {
            Some(&i) => self.deferred[i] = d,
            None => {
                self.deferred_index
                    .insert(d.comps.clone(), self.deferred.len());
                self.deferred.push(d);
            }
        }
    }

    /// Applies deferred directory modes and mtimes, deepest / latest first.
    pub(crate) fn finish(&mut self) -> Result<(), UnpackError> {
        self.cache = None;
        let deferred = std::mem::take(&mut self.deferred);
        for d in deferred.iter().rev() {
            let entry = path::join(&d.comps);
            let ctx = Ctx { entry: &entry };
            // A directory later replaced by another kind of entry is skipped.
            let dir = match self.open_dir(&entry, &d.comps, false) {
                Ok(Some(fd)) => fd,
                Ok(None)
                | Err(UnpackError::SymlinkInPath { .. })
                | Err(UnpackError::ParentNotDirectory { .. }) => continue,
                Err(e) => return Err(e),
            };
            fchmod(&dir, Mode::from_raw_mode(d.mode)).map_err(ctx.io("chmod directory"))?;
            futimens(&dir, &times(d.mtime)).map_err(ctx.io("set directory mtime"))?;
        }
        self.cache = None;
        Ok(())
    }
}
