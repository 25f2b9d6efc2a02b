//! Creating tar entries under a root directory without ever following a
//! symlink.
//!
//! Every filesystem operation is relative to a directory file descriptor
//! (`openat`, `mkdirat`, `symlinkat`, `linkat`, `mknodat`, ... with
//! `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`). A parent directory is reached by
//! opening one component at a time from the root with
//! `O_DIRECTORY | O_NOFOLLOW`, so a symlink anywhere in an entry's parent path
//! is an error rather than a way out of the root. Symlinks themselves are
//! created exactly as the layer says (targets may be absolute): they are data,
//! only dangerous when followed, which this module never does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags, chmodat, chownat,
    fchmod, fchown, fsetxattr, futimens, linkat, makedev, mkdirat, mknodat, openat, statat,
    symlinkat, unlinkat, utimensat,
};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use super::path::{self, Components, PathProblem};
use super::{UnpackError, UnpackOptions, UnpackStats};

/// Prefix of an OCI whiteout file name.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of whiteout metadata names (AUFS leftovers), ignored except the
/// opaque marker.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The opaque-directory marker.
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
/// The xattr that makes an overlayfs directory opaque (value `y`).
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Metadata of an entry that applies to whatever kind it is.
struct Meta {
    /// Permission bits (`0o7777`), already stripped of setuid/setgid unless kept.
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
}

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

/// An entry being processed: its name as shown in errors and its path.
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

fn timespec(secs: i64, nanos: i64) -> Timespec {
    Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    }
}

fn times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

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

/// Parses a PAX time (`"1700000000.5"`, possibly negative) into a timespec.
fn parse_pax_time(s: &str) -> Option<Timespec> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = int.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let mut nanos: i64 = digits.parse().ok()?;
    let mut secs = secs;
    if int.starts_with('-') && nanos > 0 {
        // -1.5 is one and a half seconds before the epoch.
        secs -= 1;
        nanos = 1_000_000_000 - nanos;
    }
    Some(timespec(secs, nanos))
}

/// Removes `name` in `parent`, recursively if it is a directory, never
/// following symlinks. Depth is bounded by the path-length limit.
pub(crate) fn remove_tree_at(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
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

    /// Opens the directory at `comps` below the root, one component at a time
    /// without following symlinks; missing directories are created (mode
    /// 0755) when `create` is set. `entry` names the tar entry for errors.
    fn open_dir(
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

    /// Makes room for a new entry at `parent/name`: nothing to do if nothing is
    /// there; an existing directory is kept when the new entry is a directory
    /// (returns `true`); anything else is removed.
    fn clear_target(
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

    fn chown_needed(&self, m: &Meta) -> bool {
        self.opts.apply_owners && (m.uid, m.gid) != self.me
    }

    fn owner(m: &Meta) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
    }

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

    fn meta<R: Read>(&self, ctx: &Ctx<'_>, e: &mut tar::Entry<'_, R>) -> Result<Meta, UnpackError> {
        let h = e.header();
        let bad = |what: &'static str| {
            move |err: io::Error| UnpackError::Entry {
                entry: ctx.entry.to_string(),
                op: what,
                source: err,
            }
        };
        let mut mode = h.mode().map_err(bad("read mode"))? & 0o7777;
        if !self.opts.keep_setuid {
            mode &= !0o6000;
        }
        // Like Go's archive/tar, a blank numeric field reads as 0.
        let blank = |f: &[u8]| f.iter().all(|&b| b == 0 || b == b' ');
        let old = h.as_old();
        let or_blank = |r: io::Result<u64>, field: &[u8]| match r {
            Err(_) if blank(field) => Ok(0),
            r => r,
        };
        let mut uid = or_blank(h.uid(), &old.uid).map_err(bad("read uid"))?;
        let mut gid = or_blank(h.gid(), &old.gid).map_err(bad("read gid"))?;
        let mtime = or_blank(h.mtime(), &old.mtime).map_err(bad("read mtime"))?;
        let mut mtime = timespec(i64::try_from(mtime).unwrap_or(i64::MAX), 0);
        if let Some(exts) = e.pax_extensions().map_err(bad("read pax extensions"))? {
            for ext in exts {
                let ext = ext.map_err(bad("read pax extensions"))?;
                let (Ok(k), Ok(v)) = (ext.key(), ext.value()) else {
                    continue;
                };
                match k {
                    "uid" => uid = v.parse().unwrap_or(uid),
                    "gid" => gid = v.parse().unwrap_or(gid),
                    "mtime" => mtime = parse_pax_time(v).unwrap_or(mtime),
                    _ => {}
                }
            }
        }
        let id = |v: u64, what: &'static str| {
            u32::try_from(v).map_err(|_| UnpackError::Entry {
                entry: ctx.entry.to_string(),
                op: what,
                source: io::Error::new(io::ErrorKind::InvalidData, format!("{v} is out of range")),
            })
        };
        Ok(Meta {
            mode,
            uid: id(uid, "uid")?,
            gid: id(gid, "gid")?,
            mtime,
        })
    }

    /// Unpacks one entry.
    pub(crate) fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = e.path_bytes().into_owned();
        let entry = path::display(&raw);
        let ctx = Ctx { entry: &entry };
        let kind = e.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        self.stats.entries += 1;
        let comps = path::normalize(&raw).map_err(|p| match p {
            PathProblem::Absolute => UnpackError::AbsolutePath {
                entry: entry.clone(),
            },
            PathProblem::ParentDir => UnpackError::PathTraversal {
                entry: entry.clone(),
            },
            PathProblem::Nul => UnpackError::InvalidPath {
                entry: entry.clone(),
                reason: "contains a NUL byte",
            },
            PathProblem::TooLong => UnpackError::InvalidPath {
                entry: entry.clone(),
                reason: "longer than 4095 bytes",
            },
        })?;
        let meta = self.meta(&ctx, e)?;

        let Some((name, parent_comps)) = comps.split_last() else {
            // The root itself (`./`): only a directory makes sense.
            if !kind.is_dir() {
                return Err(UnpackError::InvalidPath {
                    entry,
                    reason: "names the layer root but is not a directory",
                });
            }
            if self.chown_needed(&meta) {
                let (u, g) = Self::owner(&meta);
                fchown(&self.root, u, g).map_err(ctx.io("chown"))?;
            }
            self.defer_dir(Vec::new(), &meta);
            return Ok(());
        };

        // Whiteouts, converted to overlayfs form.
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            let parent = self
                .open_dir(&entry, parent_comps, true)?
                .ok_or_else(|| ctx.io("open parent directory")(Errno::NOENT))?;
            if name.as_slice() == WHITEOUT_OPAQUE {
                fsetxattr(&parent, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(ctx.io("set trusted.overlay.opaque (needs CAP_SYS_ADMIN)"))?;
                self.stats.opaque_dirs += 1;
                return Ok(());
            }
            if name.starts_with(WHITEOUT_META_PREFIX) {
                return Ok(());
            }
            if target.is_empty() || target == b"." || target == b".." {
                return Err(UnpackError::InvalidPath {
                    entry,
                    reason: "whiteout of an invalid name",
                });
            }
            // A file of the same layer wins over its whiteout (OCI: whiteouts
            // apply to lower layers only).
            match statat(&parent, target, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => return Ok(()),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(ctx.io("inspect whiteout target")(e)),
            }
            mknodat(&parent, target, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(ctx.io("create overlay whiteout (0/0 char device; needs CAP_MKNOD)"))?;
            if self.chown_needed(&meta) {
                let (u, g) = Self::owner(&meta);
                chownat(&parent, target, u, g, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(ctx.io("chown whiteout"))?;
            }
            self.stats.whiteouts += 1;
            return Ok(());
        }

        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                let parent = self.parent(&ctx, parent_comps)?;
                self.clear_target(&ctx, &parent, name, false)?;
                let fd = openat(
                    &parent,
                    name.as_slice(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
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
                                entry: entry.clone(),
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
                        entry,
                        written,
                        expected,
                    });
                }
                if self.chown_needed(&meta) {
                    let (u, g) = Self::owner(&meta);
                    fchown(&file, u, g).map_err(ctx.io("chown"))?;
                }
                fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(ctx.io("chmod"))?;
                futimens(&file, &times(meta.mtime)).map_err(ctx.io("set mtime"))?;
                self.stats.files += 1;
            }
            T::Directory => {
                let parent = self.parent(&ctx, parent_comps)?;
                if !self.clear_target(&ctx, &parent, name, true)? {
                    mkdirat(&parent, name.as_slice(), Mode::from_raw_mode(0o700))
                        .map_err(ctx.io("create directory"))?;
                    self.stats.dirs += 1;
                }
                if self.chown_needed(&meta) {
                    let dir = openat(&parent, name.as_slice(), DIR_FLAGS, Mode::empty())
                        .map_err(ctx.io("open directory"))?;
                    let (u, g) = Self::owner(&meta);
                    fchown(&dir, u, g).map_err(ctx.io("chown"))?;
                }
                self.defer_dir(comps.clone(), &meta);
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| UnpackError::InvalidPath {
                        entry: entry.clone(),
                        reason: "symlink without a target",
                    })?;
                if target.contains(&0) {
                    return Err(UnpackError::InvalidPath {
                        entry,
                        reason: "symlink target contains a NUL byte",
                    });
                }
                let parent = self.parent(&ctx, parent_comps)?;
                self.clear_target(&ctx, &parent, name, false)?;
                symlinkat(target.as_slice(), &parent, name.as_slice())
                    .map_err(ctx.io("create symlink"))?;
                if self.chown_needed(&meta) {
                    let (u, g) = Self::owner(&meta);
                    chownat(&parent, name.as_slice(), u, g, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(ctx.io("chown symlink"))?;
                }
                utimensat(
                    &parent,
                    name.as_slice(),
                    &times(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(ctx.io("set symlink mtime"))?;
                self.stats.symlinks += 1;
            }
            T::Link => self.hardlink(&ctx, e, &comps)?,
            T::Char | T::Block | T::Fifo => {
                let (ft, what) = match kind {
                    T::Char => (FileType::CharacterDevice, "character device"),
                    T::Block => (FileType::BlockDevice, "block device"),
                    _ => (FileType::Fifo, "fifo"),
                };
                if !self.opts.allow_devices {
                    return Err(UnpackError::DeviceRefused { entry, kind: what });
                }
                let dev = if ft == FileType::Fifo {
                    0
                } else {
                    let h = e.header();
                    let major = h.device_major().map_err(ctx.ioe("read device major"))?;
                    let minor = h.device_minor().map_err(ctx.ioe("read device minor"))?;
                    makedev(major.unwrap_or(0), minor.unwrap_or(0))
                };
                let parent = self.parent(&ctx, parent_comps)?;
                self.clear_target(&ctx, &parent, name, false)?;
                mknodat(
                    &parent,
                    name.as_slice(),
                    ft,
                    Mode::from_raw_mode(meta.mode),
                    dev,
                )
                .map_err(ctx.io("create device node"))?;
                if self.chown_needed(&meta) {
                    let (u, g) = Self::owner(&meta);
                    chownat(&parent, name.as_slice(), u, g, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(ctx.io("chown device node"))?;
                }
                // The node was just created by us (no symlink can be there).
                chmodat(
                    &parent,
                    name.as_slice(),
                    Mode::from_raw_mode(meta.mode),
                    AtFlags::empty(),
                )
                .map_err(ctx.io("chmod device node"))?;
                utimensat(
                    &parent,
                    name.as_slice(),
                    &times(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(ctx.io("set device node mtime"))?;
                self.stats.devices += 1;
            }
            other => {
                return Err(UnpackError::UnsupportedEntryType {
                    entry,
                    kind: format!("{other:?}"),
                });
            }
        }
        Ok(())
    }

    /// The parent directory of an entry, created if missing.
    fn parent(&mut self, ctx: &Ctx<'_>, comps: &[Vec<u8>]) -> Result<OwnedFd, UnpackError> {
        self.open_dir(ctx.entry, comps, true)?
            .ok_or_else(|| ctx.io("open parent directory")(Errno::NOENT))
    }

    fn hardlink<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        e: &tar::Entry<'_, R>,
        comps: &Components,
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
        if &target == comps {
            return Err(refuse("is the link itself"));
        }
        let (name, parent_comps) = comps
            .split_last()
            .ok_or_else(|| refuse("link names the layer root"))?;
        let parent = self.parent(ctx, parent_comps)?;
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
        self.clear_target(ctx, &parent, name, false)?;
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
            name.as_slice(),
            AtFlags::empty(),
        )
        .map_err(|err| match err {
            Errno::NOENT => refuse("does not exist (not yet unpacked in this layer)"),
            err => ctx.io("create hardlink")(err),
        })?;
        self.stats.hardlinks += 1;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = parse_pax_time("1700000000.25").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1_700_000_000, 250_000_000));
        let t = parse_pax_time("12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        let t = parse_pax_time("-1.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (-2, 500_000_000));
        assert!(parse_pax_time("x").is_none());
        assert!(parse_pax_time("1.x").is_none());
    }
}
