//! The `COPY`, `ADD` and `WORKDIR` steps of an image build, on this board.
//! Like a `RUN` ([`super::step`]), a step mounts a writable overlay of the
//! layers before it, changes the mounted root, unmounts (also on error) and
//! returns the overlay's upper directory: the step's change, which
//! `bramble_images::layer_diff` turns into its layer.
//!
//! [`copy_step`] follows BuildKit (`dockerfile2llb` + fsutil's copy):
//! sources are matched in a [`CopySource`] (the unpacked build context, of
//! which only the files `.dockerignore` leaves are visible, or the root of
//! an earlier stage or an image) with Go's `filepath.Match` globs; a glob
//! that matches nothing copies nothing, a missing plain path is an error;
//! a source that is a symlink is followed (inside its root), what is inside
//! a copied directory is not. Where each match lands, and when several need
//! a directory destination, is [`super::copy_plan`]'s; finding the
//! sources `copy_sources`'s; the copying itself [`super::copy_tree`]'s;
//! ADD's archives [`super::add_archive`]'s; owners by name are looked up
//! in the destination image ([`crate::image_root::owner`], read by
//! [`crate::image_root::etc_files`]).
//! Heredoc sources are written with their mode. Missing parents of the
//! destination are made 0755 and owned by the `--chown` owner (root
//! without), as BuildKit's `MkdirAll`.
//!
//! [`mkdir_step`] is WORKDIR: the directory and its missing parents, owned
//! by the stage's `USER` as BuildKit makes them.
//!
//! Every destination path is resolved inside the mounted root and every
//! source path inside its root ([`crate::image_root::in_root`]); a source pattern with
//! `..` above its root is refused.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use bramble_dockerfile::plan::{CopyStep, InlineFile, Source};
use bramble_images::{Rootfs, RootfsError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, openat, unlinkat};

use super::add_archive::{ArchiveError, Extracted, extract};
use super::copy_plan::{Dest, ManySources, PatternError, Placement, check_count, place};
use super::copy_sources::{Matched, Sources};
use super::copy_tree::{Copier, TreeError, Visible};
use crate::image_root::etc_files::{EtcFileError, read_etc_file};
use crate::image_root::in_root::{Owner, Root, display, lstat_at, now, set_meta};
use crate::image_root::owner::{OwnerError, OwnerSpec};

/// Where a step's sources are read.
#[derive(Debug, Clone, Copy)]
pub struct CopySource<'a> {
    /// The unpacked build context, or the root of an earlier stage or image.
    pub root: &'a Path,
    /// For the build context: the sorted context-relative paths of the
    /// files (and symlinks) the build may read; anything else under `root`
    /// is invisible. `None`: everything under `root`.
    pub visible: Option<&'a [String]>,
}

/// Why a COPY, ADD or WORKDIR step failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("preparing the step's filesystem: {0}")]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(
        "source {pattern:?} not found in {place}{hint}: check the path (it is relative to the \
         {place}'s root)"
    )]
    NotFound {
        pattern: String,
        place: &'static str,
        hint: &'static str,
    },
    #[error(transparent)]
    ManySources(#[from] ManySources),
    #[error("--chown={spec}: {error}")]
    Owner {
        spec: String,
        #[source]
        error: OwnerError,
    },
    #[error(transparent)]
    EtcFile(#[from] EtcFileError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("ADD {source_path}: {error}")]
    Archive {
        source_path: String,
        #[source]
        error: ArchiveError,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot write the heredoc file {path}: it is a directory in the image (write the \
         destination with a trailing / to create the file inside it)"
    )]
    InlineOverDirectory { path: String },
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: impl Into<String> + 'a,
) -> impl FnOnce(io::Error) -> CopyError + 'a {
    move |source| CopyError::Io {
        op,
        path: path.into(),
        source,
    }
}

fn abs(rel: &Path) -> String {
    format!("/{}", display(rel))
}

/// Runs a COPY or ADD `step` on an overlay of `layers` in `dir` (made if
/// missing: `rootfs`, `upper`, `work` go in it); returns the upper
/// directory. The overlay is unmounted whatever happens.
pub fn copy_step(
    layers: &[PathBuf],
    dir: &Path,
    step: &CopyStep,
    source: &CopySource,
) -> Result<PathBuf, CopyError> {
    with_root(layers, dir, |root| copy_in(root, dir, step, source))
}

/// WORKDIR: makes `path` (absolute) and its missing parents in an overlay
/// of `layers` in `dir`, owned by `user` (`user[:group]`, empty: root);
/// returns the upper directory.
pub fn mkdir_step(
    layers: &[PathBuf],
    dir: &Path,
    path: &str,
    user: &str,
) -> Result<PathBuf, CopyError> {
    with_root(layers, dir, |root| {
        let dst = Root::open(root).map_err(io_err("opening the image root", abs(root)))?;
        let owner = resolve_owner(&dst, user)?;
        dst.mkdir_all(&Dest::parse(path).rel, owner)
            .map_err(io_err("creating the working directory", path))?;
        Ok(())
    })
}

fn with_root(
    layers: &[PathBuf],
    dir: &Path,
    f: impl FnOnce(&Path) -> Result<(), CopyError>,
) -> Result<PathBuf, CopyError> {
    let rootfs = Rootfs::prepare(layers, dir, false)?;
    let result = f(&rootfs.path());
    let unmounted = rootfs.unmount();
    result?;
    unmounted?;
    Ok(rootfs
        .upper()
        .expect("a writable rootfs has an upper directory"))
}

/// The owner for `spec` (`user[:group]`), names looked up in `dst`.
pub(crate) fn resolve_owner(dst: &Root, spec: &str) -> Result<Owner, CopyError> {
    let Some(parsed) = OwnerSpec::parse(spec) else {
        return Ok(None);
    };
    let (need_passwd, need_group) = parsed.needs_files();
    let read = |rel: &'static str, needed: bool| -> Result<Option<String>, CopyError> {
        if !needed {
            return Ok(None);
        }
        Ok(read_etc_file(dst, rel)?)
    };
    let passwd = read("etc/passwd", need_passwd)?;
    let group = read("etc/group", need_group)?;
    parsed
        .resolve(passwd.as_deref(), group.as_deref())
        .map(Some)
        .map_err(|error| CopyError::Owner {
            spec: spec.to_string(),
            error,
        })
}

pub(crate) fn is_kind(st: &Stat, kind: FileType) -> bool {
    FileType::from_raw_mode(st.st_mode as _) == kind
}

fn copy_in(root: &Path, dir: &Path, step: &CopyStep, source: &CopySource) -> Result<(), CopyError> {
    let instruction = if step.add { "ADD" } else { "COPY" };
    let dst = Root::open(root).map_err(io_err("opening the image root", abs(root)))?;
    let owner = resolve_owner(&dst, step.chown.as_deref().unwrap_or(""))?;
    let from_context = step.from == Source::Context;
    let sources = Sources {
        root: Root::open(source.root).map_err(io_err(
            "opening the source root",
            source.root.display().to_string(),
        ))?,
        visible: source.visible.map(Visible::new),
        place: match step.from {
            Source::Context => "the build context",
            Source::Stage(_) => "the stage",
            Source::Image(_) => "the image",
        },
    };
    // Every source is found before anything is written.
    let mut matched = Vec::new();
    for pattern in &step.sources {
        matched.extend(sources.matches(pattern)?);
    }
    let dest = Dest::parse(&step.dest);
    let dest_is_dir = dest.is_dir
        || dst
            .open_at(&dest.rel, OFlags::PATH | OFlags::DIRECTORY)
            .is_ok();
    check_count(
        instruction,
        &step.dest,
        matched.len() + step.inline.len(),
        dest_is_dir,
    )?;
    dst.mkdir_all(dest.ensure_dir(), owner).map_err(io_err(
        "creating the destination directory",
        abs(dest.ensure_dir()),
    ))?;

    let mut copier = Copier::new(&sources.root, &dst);
    copier.owner = owner;
    copier.reset_owner = from_context;
    copier.chmod = step.chmod;
    copier.visible = sources.visible.as_ref();
    for (i, m) in matched.iter().enumerate() {
        if step.add && step.unpack_archives && is_kind(&m.st, FileType::RegularFile) {
            let scratch = dir.join(format!("add-{i}"));
            // A leftover of an interrupted earlier run of this step.
            match std::fs::remove_dir_all(&scratch) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("removing", scratch.display().to_string())(e));
                }
                _ => {}
            }
            if add_archive(&sources.root, &dst, m, &dest, owner, &scratch)? {
                continue;
            }
        }
        match place(is_kind(&m.st, FileType::Directory), &m.name, dest_is_dir) {
            Placement::Contents => {
                let (into, into_rel) = dest_dir(&dst, &dest, owner, &m.real)?;
                copier.contents(&m.real, &into, &into_rel)?;
            }
            Placement::Inside(name) => {
                let (into, into_rel) = dest_dir(&dst, &dest, owner, &m.real)?;
                let (parent, src_name) = source_slot(&sources.root, &m.real)?;
                let name = OsStr::new(&name);
                copier.entry(
                    &parent,
                    src_name,
                    &m.real,
                    &m.st,
                    &into,
                    name,
                    &into_rel.join(name),
                )?;
            }
            Placement::At => {
                // (`None`, the root, is a directory: not placed here.)
                let slot = dst
                    .slot(&dest.rel)
                    .map_err(io_err("resolving the destination", step.dest.clone()))?
                    .ok_or_else(|| TreeError::IsADirectory {
                        source_path: display(&m.real),
                        dest: "/".into(),
                    })?;
                let (parent, src_name) = source_slot(&sources.root, &m.real)?;
                copier.entry(
                    &parent,
                    src_name,
                    &m.real,
                    &m.st,
                    &slot.parent,
                    &slot.name,
                    &slot.rel,
                )?;
            }
        }
    }
    for file in &step.inline {
        write_inline(&dst, file, owner)?;
    }
    Ok(())
}

/// The directory holding the source `real` and its name there.
fn source_slot<'p>(root: &Root, real: &'p Path) -> Result<(OwnedFd, &'p OsStr), CopyError> {
    let parent = real.parent().unwrap_or(Path::new(""));
    let fd = root
        .dir(parent)
        .map_err(io_err("reading the source directory", display(parent)))?;
    Ok((fd, real.file_name().unwrap_or_default()))
}

/// The destination as a directory (made, 0755 and owned by `owner`, if
/// missing) for the source `source`: its descriptor and real path in the
/// image.
fn dest_dir(
    dst: &Root,
    dest: &Dest,
    owner: Owner,
    source: &Path,
) -> Result<(OwnedFd, PathBuf), CopyError> {
    let shown = abs(&dest.rel);
    let fd = if dest.is_dir {
        dst.mkdir_all(&dest.rel, owner)
            .map_err(io_err("creating the destination directory", shown.clone()))?
    } else if let Some(slot) = dst
        .slot(&dest.rel)
        .map_err(io_err("resolving the destination", shown.clone()))?
    {
        match lstat_at(&slot.parent, &slot.name).map_err(io_err("looking at", shown.clone()))? {
            None => {
                rustix::fs::mkdirat(&slot.parent, &slot.name, Mode::from_raw_mode(0o755)).map_err(
                    |e| io_err("creating the destination directory", shown.clone())(e.into()),
                )?;
                set_meta(&slot.parent, &slot.name, owner, Some(0o755), None)
                    .map_err(io_err("setting the owner of", shown.clone()))?;
            }
            Some(st) if is_kind(&st, FileType::Directory) => {}
            Some(_) => {
                return Err(TreeError::NotADirectory {
                    source_path: display(source),
                    dest: abs(&slot.rel),
                }
                .into());
            }
        }
        dst.dir(&slot.rel)
            .map_err(io_err("opening the destination directory", shown.clone()))?
    } else {
        // A link to the image's root.
        dst.dir(Path::new(""))
            .map_err(io_err("opening the destination directory", shown.clone()))?
    };
    let real = dst
        .real_rel(&fd)
        .map_err(io_err("resolving the destination", shown))?;
    Ok((fd, real))
}

/// ADD of a local archive: extracts it into the destination directory.
/// `false`: not an archive (copy it).
fn add_archive(
    src: &Root,
    dst: &Root,
    m: &Matched,
    dest: &Dest,
    owner: Owner,
    scratch: &Path,
) -> Result<bool, CopyError> {
    let shown = display(&m.real);
    let open = || -> io::Result<File> {
        Ok(File::from(
            src.open_at(&m.real, OFlags::RDONLY | OFlags::NOFOLLOW)?,
        ))
    };
    let archive_err = |error| CopyError::Archive {
        source_path: shown.clone(),
        error,
    };
    let tree = match extract(&open, scratch).map_err(archive_err)? {
        Extracted::NotArchive => return Ok(false),
        Extracted::Tree(t) => t,
    };
    let result = (|| -> Result<(), CopyError> {
        let tree_root =
            Root::open(&tree).map_err(io_err("opening the extracted archive", shown.clone()))?;
        // The destination is a directory, whatever it was written as.
        let as_dir = Dest {
            rel: dest.rel.clone(),
            is_dir: true,
        };
        let (into, into_rel) = dest_dir(dst, &as_dir, owner, &m.real)?;
        let mut copier = Copier::new(&tree_root, dst);
        copier.owner = owner;
        copier.archive = true;
        copier.contents(Path::new(""), &into, &into_rel)?;
        Ok(())
    })();
    let removed = std::fs::remove_dir_all(&tree);
    result?;
    removed.map_err(io_err(
        "removing the extracted archive",
        tree.display().to_string(),
    ))?;
    Ok(true)
}

/// Writes a heredoc source at its path (parents made as for any copy).
fn write_inline(dst: &Root, file: &InlineFile, owner: Owner) -> Result<(), CopyError> {
    let dest = Dest::parse(&file.path);
    let parent = dest.rel.parent().unwrap_or(Path::new(""));
    dst.mkdir_all(parent, owner)
        .map_err(io_err("creating the destination directory", abs(parent)))?;
    let slot = dst
        .slot(&dest.rel)
        .map_err(io_err("resolving the destination", file.path.clone()))?
        .ok_or_else(|| CopyError::InlineOverDirectory {
            path: file.path.clone(),
        })?;
    let shown = abs(&slot.rel);
    match lstat_at(&slot.parent, &slot.name).map_err(io_err("looking at", shown.clone()))? {
        Some(st) if is_kind(&st, FileType::Directory) => {
            return Err(CopyError::InlineOverDirectory { path: shown });
        }
        Some(_) => unlinkat(&slot.parent, &slot.name, AtFlags::empty())
            .map_err(|e| io_err("replacing", shown.clone())(e.into()))?,
        None => {}
    }
    let fd = openat(
        &slot.parent,
        &slot.name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| io_err("creating", shown.clone())(e.into()))?;
    File::from(fd)
        .write_all(file.content.as_bytes())
        .map_err(io_err("writing", shown.clone()))?;
    set_meta(
        &slot.parent,
        &slot.name,
        owner.or(Some((0, 0))),
        Some(file.mode),
        Some(&now()),
    )
    .map_err(io_err("setting owner, mode and times of", shown))
}
