//! One writer per tar entry type: the layer root, regular files,
//! directories, symlinks, hardlinks and device nodes / fifos.
//!
//! Each writer reaches the entry's parent with [`Extractor::parent`] (no
//! symlink followed, see `dirs.rs`), makes room with
//! [`Extractor::clear_target`], creates the entry relative to the parent fd
//! with exclusive / no-follow flags, then applies owner, mode and mtime to
//! what it created (through its fd, or `*at` with `AT_SYMLINK_NOFOLLOW`).
//! Directory modes and mtimes are deferred to [`Extractor::finish`].
//!
//! What each writer refuses:
//!
//! - a root (`./`) entry that is not a directory;
//! - a symlink without a target or with a NUL in it (targets are otherwise
//!   created as they are, absolute ones included: they are never followed);
//! - a hardlink whose target is absolute or has `..` ([`UnpackError::HardlinkEscape`]),
//!   is invalid, the layer root or the link itself, is not yet unpacked in
//!   this layer, or is not a regular file;
//! - device nodes and fifos unless `allow_devices`;
//! - truncated file data.

use std::fs::File;
use std::io::{self, Read, Write};

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, chmodat, chownat, fchmod, fchown, futimens, linkat, makedev,
    mkdirat, mknodat, openat, statat, symlinkat, utimensat,
};
use rustix::io::Errno;

use super::dirs::DIR_FLAGS;
use super::meta::{Meta, times};
use super::{Ctx, Extractor, Place};
use crate::unpack::UnpackError;
use crate::unpack::path::{self, PathProblem};

impl Extractor<'_> {
    /// The layer root itself (`./`): only a directory entry may name it; it
    /// gets the entry's owner now and its mode and mtime at the end.
    pub(super) fn root_dir(
        &mut self,
        ctx: &Ctx<'_>,
        kind: tar::EntryType,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        if !kind.is_dir() {
            return Err(UnpackError::InvalidPath {
                entry: ctx.entry.to_string(),
                reason: "names the layer root but is not a directory",
            });
        }
        if self.chown_needed(meta) {
            let (u, g) = Self::owner(meta);
            fchown(&self.root, u, g).map_err(ctx.io("chown"))?;
        }
        self.defer_dir(Vec::new(), meta);
        Ok(())
    }

    /// A regular file: created exclusively (`O_EXCL | O_NOFOLLOW`), filled
    /// with exactly the entry's size of data.
    pub(super) fn regular<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        e: &mut tar::Entry<'_, R>,
        at: &Place<'_>,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let parent = self.parent(ctx, at.parent)?;
        self.clear_target(ctx, &parent, at.name, false)?;
        let fd = openat(
            &parent,
            at.name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(ctx.io("create file"))?;
        let mut file = File::from(fd);
        let expected = e.size();
        let mut written = 0u64;
        loop {
            let n = match e.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(UnpackError::EntryData {
                        entry: ctx.entry.to_string(),
                        source,
                    });
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(ctx.ioe("write file"))?;
            written += n as u64;
        }
        if written != expected {
            return Err(UnpackError::TruncatedEntry {
                entry: ctx.entry.to_string(),
                written,
                expected,
            });
        }
        if self.chown_needed(meta) {
            let (u, g) = Self::owner(meta);
            fchown(&file, u, g).map_err(ctx.io("chown"))?;
        }
        fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(ctx.io("chmod"))?;
        futimens(&file, &times(meta.mtime)).map_err(ctx.io("set mtime"))?;
        self.stats.files += 1;
        Ok(())
    }

    /// A directory: an existing one is kept (a later entry of the same
    /// directory updates its metadata), anything else in its place removed.
    pub(super) fn directory(
        &mut self,
        ctx: &Ctx<'_>,
        at: &Place<'_>,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let parent = self.parent(ctx, at.parent)?;
        if !self.clear_target(ctx, &parent, at.name, true)? {
            mkdirat(&parent, at.name, Mode::from_raw_mode(0o700))
                .map_err(ctx.io("create directory"))?;
            self.stats.dirs += 1;
        }
        if self.chown_needed(meta) {
            let dir = openat(&parent, at.name, DIR_FLAGS, Mode::empty())
                .map_err(ctx.io("open directory"))?;
            let (u, g) = Self::owner(meta);
            fchown(&dir, u, g).map_err(ctx.io("chown"))?;
        }
        self.defer_dir(at.comps.clone(), meta);
        Ok(())
    }

    /// A symlink, created with the target the layer gives (never followed).
    pub(super) fn symlink<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        e: &tar::Entry<'_, R>,
        at: &Place<'_>,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let target = e
            .link_name_bytes()
            .map(|t| t.into_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| UnpackError::InvalidPath {
                entry: ctx.entry.to_string(),
                reason: "symlink without a target",
            })?;
        if target.contains(&0) {
            return Err(UnpackError::InvalidPath {
                entry: ctx.entry.to_string(),
                reason: "symlink target contains a NUL byte",
            });
        }
        let parent = self.parent(ctx, at.parent)?;
        self.clear_target(ctx, &parent, at.name, false)?;
        symlinkat(target.as_slice(), &parent, at.name).map_err(ctx.io("create symlink"))?;
        if self.chown_needed(meta) {
            let (u, g) = Self::owner(meta);
            chownat(&parent, at.name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(ctx.io("chown symlink"))?;
        }
        utimensat(
            &parent,
            at.name,
            &times(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(ctx.io("set symlink mtime"))?;
        self.stats.symlinks += 1;
        Ok(())
    }

    /// A hardlink to a regular file unpacked earlier in this layer, its
    /// target path normalized as entry paths are (see the module docs).
    pub(super) fn hardlink<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        e: &tar::Entry<'_, R>,
        at: &Place<'_>,
    ) -> Result<(), UnpackError> {
        let raw_target = e
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        let target_display = path::display(&raw_target);
        let refuse = |reason: &'static str| UnpackError::HardlinkTarget {
            entry: ctx.entry.to_string(),
            target: target_display.clone(),
            reason,
        };
        let target = match path::normalize(&raw_target) {
            Ok(t) => t,
            Err(PathProblem::Absolute | PathProblem::ParentDir) => {
                return Err(UnpackError::HardlinkEscape {
                    entry: ctx.entry.to_string(),
                    target: target_display,
                });
            }
            Err(_) => return Err(refuse("is not a valid path")),
        };
        let Some((tname, tparent_comps)) = target.split_last() else {
            return Err(refuse("names the layer root"));
        };
        if &target == at.comps {
            return Err(refuse("is the link itself"));
        }
        let parent = self.parent(ctx, at.parent)?;
        let tparent = self
            .open_dir(ctx.entry, tparent_comps, false)?
            .ok_or_else(|| refuse("does not exist (not yet unpacked in this layer)"))?;
        match statat(&tparent, tname.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {}
            Ok(_) => return Err(refuse("is not a regular file")),
            Err(Errno::NOENT) => {
                return Err(refuse("does not exist (not yet unpacked in this layer)"));
            }
            Err(err) => return Err(ctx.io("inspect hardlink target")(err)),
        }
        self.clear_target(ctx, &parent, at.name, false)?;
        // Clearing may have removed a directory on the target's path.
        let tparent = self
            .open_dir(ctx.entry, tparent_comps, false)?
            .ok_or_else(|| refuse("does not exist (not yet unpacked in this layer)"))?;
        // linkat without AT_SYMLINK_FOLLOW never follows; the target was
        // checked to be a regular file above.
        linkat(
            &tparent,
            tname.as_slice(),
            &parent,
            at.name,
            AtFlags::empty(),
        )
        .map_err(|err| match err {
            Errno::NOENT => refuse("does not exist (not yet unpacked in this layer)"),
            err => ctx.io("create hardlink")(err),
        })?;
        self.stats.hardlinks += 1;
        Ok(())
    }

    /// A character or block device or a fifo (`kind` is one of
    /// [`tar::EntryType::Char`], `Block`, `Fifo`), refused unless
    /// `allow_devices`.
    pub(super) fn node<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        e: &tar::Entry<'_, R>,
        kind: tar::EntryType,
        at: &Place<'_>,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let (ft, what) = match kind {
            tar::EntryType::Char => (FileType::CharacterDevice, "character device"),
            tar::EntryType::Block => (FileType::BlockDevice, "block device"),
            _ => (FileType::Fifo, "fifo"),
        };
        if !self.opts.allow_devices {
            return Err(UnpackError::DeviceRefused {
                entry: ctx.entry.to_string(),
                kind: what,
            });
        }
        let dev = if ft == FileType::Fifo {
            0
        } else {
            let h = e.header();
            let major = h.device_major().map_err(ctx.ioe("read device major"))?;
            let minor = h.device_minor().map_err(ctx.ioe("read device minor"))?;
            makedev(major.unwrap_or(0), minor.unwrap_or(0))
        };
        let parent = self.parent(ctx, at.parent)?;
        self.clear_target(ctx, &parent, at.name, false)?;
        let mode = Mode::from_raw_mode(meta.mode);
        mknodat(&parent, at.name, ft, mode, dev).map_err(ctx.io("create device node"))?;
        if self.chown_needed(meta) {
            let (u, g) = Self::owner(meta);
            chownat(&parent, at.name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(ctx.io("chown device node"))?;
        }
        // The node was just created by us (no symlink can be there).
        chmodat(&parent, at.name, mode, AtFlags::empty()).map_err(ctx.io("chmod device node"))?;
        utimensat(
            &parent,
            at.name,
            &times(meta.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(ctx.io("set device node mtime"))?;
        self.stats.devices += 1;
        Ok(())
    }
}
