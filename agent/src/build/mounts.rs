//! A `RUN` step's `--mount`s on this board, as BuildKit gives them:
//! `type=tmpfs` a fresh tmpfs; `type=cache` a directory the board keeps
//! across builds (`DATA_DIR/build-cache/<16 hex digits of the id's
//! sha256>`, shared between concurrent builds as its `sharing` says,
//! [`super::cache_mount`], made with the mount's `mode`/`uid`/`gid` the
//! first time, by default 0755 root); a `type=bind` of the context a view
//! of the files under `source` that the build may read (nothing the
//! context hid, no symlink followed out of it): hard links in the step's
//! own directory, bind-mounted read-only, or for `rw` copies, whose
//! changes are thrown away with the step; a `type=bind` of a stage or an
//! image an overlay of its layers (read-only, or for `rw` with an upper
//! directory thrown away), `source` resolved inside it as the container
//! would resolve it. The hub refuses the other kinds before a job gets
//! here. A `RUN <<EOF` heredoc that starts with `#!` is a script
//! file the step runs ([`inline_files`]): written in the step's directory
//! and bind-mounted read-only at its path under `/dev/pipes/` (in the
//! container's `/dev` tmpfs: never in the layer).

use std::path::{Path, PathBuf};

use std::os::unix::fs::PermissionsExt;

use bramble_dockerfile::plan::{InlineFile, Mount, MountKind, Source};
use bramble_images::Digest;

use bramble_images::Rootfs;
use rustix::fs::OFlags;

use super::cache_mount::{self, Hold, Owner, Sharing};
use crate::image_root::in_root::Root;
use crate::runtime::MountSpec;

/// Why a mount could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("--mount target={target}: {why}")]
    Unsupported { target: String, why: &'static str },
    #[error("--mount target={target}: the tree to mount: {why}")]
    Tree { target: String, why: String },
    #[error("--mount target={target}: source {source:?} is not in {place}: {error}")]
    Missing {
        target: String,
        source: String,
        place: &'static str,
        #[source]
        error: std::io::Error,
    },
    #[error("--mount target={target}: preparing {path}: {source}")]
    Io {
        target: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a step's mounts come from on this board.
pub struct MountSources<'a> {
    /// The board's cache directories.
    pub caches: &'a Path,
    /// The build context, and the files of it the build may read.
    pub context: &'a Path,
    pub visible: &'a [String],
    /// The step's own directory for views and trees.
    pub views: &'a Path,
    /// The unpacked layers of a stage or an image, bottom first.
    pub layers: &'a dyn Fn(&Source) -> Result<Vec<PathBuf>, String>,
}

/// What a step's mounts hold until the step ends: the holds on `locked`
/// and `private` caches, and the trees of stages and images, unmounted
/// when this is dropped.
#[derive(Debug, Default)]
pub struct Held {
    holds: Vec<Hold>,
    trees: Vec<Rootfs>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for t in &self.trees {
            if let Err(e) = t.unmount() {
                tracing::warn!(tree = %t.path().display(), error = %e, "unmounting a build mount's tree");
            }
        }
    }
}

/// The runtime mounts for `mounts`, from `from`, and what they hold.
pub fn step_mounts(
    mounts: &[Mount],
    from: &MountSources<'_>,
) -> Result<(Vec<MountSpec>, Held), MountError> {
    let mut out = Vec::new();
    let mut held = Held::default();
    for (i, m) in mounts.iter().enumerate() {
        let io = |path: &Path| {
            let (target, path) = (m.target.clone(), path.to_path_buf());
            move |source| MountError::Io {
                target,
                path,
                source,
            }
        };
        match (&m.kind, &m.from) {
            (MountKind::Tmpfs { size }, None) => out.push(MountSpec::Tmpfs {
                destination: m.target.clone(),
                size_bytes: *size,
                mode: m.mode,
                read_only: false,
            }),
            (MountKind::Cache { id, sharing }, None) => {
                let name = Digest::of(id.as_bytes()).to_string();
                let hex = name.trim_start_matches("sha256:");
                let owner = Owner {
                    mode: m.mode.unwrap_or(0o755),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                };
                let (dir, hold) =
                    cache_mount::take(from.caches, &hex[..16], Sharing::parse(sharing), owner)
                        .map_err(io(from.caches))?;
                held.holds.extend(hold);
                out.push(MountSpec::Bind {
                    source: dir,
                    destination: m.target.clone(),
                    read_only: false,
                });
            }
            (MountKind::Bind { readonly }, Some(Source::Context)) => {
                let view = from.views.join(format!("bind-{i}"));
                let source = view_of(from.context, from.visible, &m.source, &view, !*readonly)
                    .map_err(io(&view))?;
                out.push(MountSpec::Bind {
                    source,
                    destination: m.target.clone(),
                    read_only: *readonly,
                });
            }
            (MountKind::Bind { readonly }, Some(tree @ (Source::Stage(_) | Source::Image(_)))) => {
                let layers = (from.layers)(tree).map_err(|why| MountError::Tree {
                    target: m.target.clone(),
                    why,
                })?;
                let dir = from.views.join(format!("tree-{i}"));
                let root = if layers.is_empty() {
                    // An empty stage (scratch, nothing added): an empty tree.
                    let empty = dir.join("empty");
                    std::fs::create_dir_all(&empty).map_err(io(&empty))?;
                    empty
                } else {
                    let tree = Rootfs::prepare(&layers, &dir, *readonly).map_err(|e| {
                        MountError::Tree {
                            target: m.target.clone(),
                            why: e.to_string(),
                        }
                    })?;
                    let path = tree.path();
                    held.trees.push(tree);
                    path
                };
                let source = inside(&root, &m.source).map_err(|e| MountError::Missing {
                    target: m.target.clone(),
                    source: m.source.clone(),
                    place: if matches!(tree, Source::Stage(_)) {
                        "the stage"
                    } else {
                        "the image"
                    },
                    error: e,
                })?;
                out.push(MountSpec::Bind {
                    source,
                    destination: m.target.clone(),
                    read_only: *readonly,
                });
            }
            _ => {
                return Err(MountError::Unsupported {
                    target: m.target.clone(),
                    why: "this kind of mount is not supported by the boards' builder",
                });
            }
        }
    }
    Ok((out, held))
}

/// `source` inside the tree `root`, resolved as the container would
/// resolve it (an absolute symlink from the tree's root, `..` stopping
/// there), as a path with no symlink left to follow.
fn inside(root: &Path, source: &str) -> std::io::Result<PathBuf> {
    let tree = Root::open(root)?;
    let rel = Path::new(source.trim_start_matches('/'));
    let fd = tree.open_at(rel, OFlags::PATH)?;
    Ok(root.join(tree.real_rel(&fd)?))
}

/// The mounts of a step's heredoc scripts, written into `dir`.
pub fn inline_files(files: &[InlineFile], dir: &Path) -> Result<Vec<MountSpec>, MountError> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(format!("script-{i}"));
        let write = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, &f.content))
            .and_then(|()| {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode & 0o7777))
            });
        write.map_err(|source| MountError::Io {
            target: f.path.clone(),
            path: path.clone(),
            source,
        })?;
        out.push(MountSpec::Bind {
            source: path,
            destination: f.path.clone(),
            read_only: true,
        });
    }
    Ok(out)
}

/// Hard-links (or, `private`, copies: the step may change them) the
/// `visible` files of `context` under `source` into `view`; returns what
/// to mount: `view` for a directory, the one file's link for a file.
fn view_of(
    context: &Path,
    visible: &[String],
    source: &str,
    view: &Path,
    private: bool,
) -> std::io::Result<PathBuf> {
    let put = |from: &Path, to: &Path| {
        if private {
            copy_entry(from, to)
        } else {
            // `link` makes a link to a symlink itself: none is followed.
            std::fs::hard_link(from, to)
        }
    };
    let source = source.trim_matches('/');
    let source = source.strip_prefix("./").unwrap_or(source);
    let source = if source == "." { "" } else { source };
    std::fs::create_dir_all(view)?;
    if !source.is_empty() && visible.iter().any(|f| f == source) {
        let link = view.join("file");
        put(&context.join(source), &link)?;
        return Ok(link);
    }
    for f in visible {
        let rel = if source.is_empty() {
            f.as_str()
        } else {
            match f.strip_prefix(source).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => continue,
            }
        };
        let to = view.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        put(&context.join(f), &to)?;
    }
    Ok(view.to_path_buf())
}

/// Copies the file or symlink `from` (a symlink as a symlink: none is
/// followed) to `to`, its mode kept.
fn copy_entry(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.symlink_metadata()?.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn no_layers(from: &Source) -> Result<Vec<PathBuf>, String> {
        Err(format!("no layers in this test: {from:?}"))
    }

    fn sources<'a>(
        caches: &'a Path,
        context: &'a Path,
        visible: &'a [String],
        views: &'a Path,
    ) -> MountSources<'a> {
        MountSources {
            caches,
            context,
            visible,
            views,
            layers: &no_layers,
        }
    }

    fn mount(kind: MountKind, target: &str, source: &str, from: Option<Source>) -> Mount {
        Mount {
            kind,
            target: target.into(),
            source: source.into(),
            from,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    #[test]
    fn a_bind_shows_only_the_visible_files_under_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("context");
        std::fs::create_dir_all(ctx.join("src/sub")).unwrap();
        std::fs::write(ctx.join("src/a.go"), "a").unwrap();
        std::fs::write(ctx.join("src/sub/b.go"), "b").unwrap();
        std::fs::write(ctx.join("Dockerfile"), "hidden").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", ctx.join("src/link")).unwrap();
        let visible: Vec<String> = ["src/a.go", "src/link", "src/sub/b.go"]
            .map(String::from)
            .to_vec();
        let m = [
            mount(
                MountKind::Bind { readonly: true },
                "/src",
                "src",
                Some(Source::Context),
            ),
            mount(
                MountKind::Bind { readonly: true },
                "/all",
                ".",
                Some(Source::Context),
            ),
            mount(
                MountKind::Bind { readonly: true },
                "/a.go",
                "src/a.go",
                Some(Source::Context),
            ),
        ];
        let views = dir.path().join("views");
        let specs = step_mounts(
            &m,
            &sources(&dir.path().join("caches"), &ctx, &visible, &views),
        )
        .unwrap()
        .0;
        let MountSpec::Bind {
            source, read_only, ..
        } = &specs[0]
        else {
            panic!("{specs:?}")
        };
        assert!(read_only);
        assert_eq!(
            std::fs::read_to_string(source.join("sub/b.go")).unwrap(),
            "b"
        );
        let link = source.join("link").symlink_metadata().unwrap();
        assert!(
            link.file_type().is_symlink(),
            "the link itself, not /etc/passwd"
        );
        let MountSpec::Bind { source: all, .. } = &specs[1] else {
            panic!()
        };
        assert!(all.join("src/a.go").exists());
        assert!(!all.join("Dockerfile").exists(), "a hidden file shows");
        let MountSpec::Bind { source: one, .. } = &specs[2] else {
            panic!()
        };
        assert_eq!(std::fs::read_to_string(one).unwrap(), "a");
    }

    #[test]
    fn a_cache_is_one_directory_per_id_kept_across_steps() {
        let dir = tempfile::tempdir().unwrap();
        let caches = dir.path().join("caches");
        let mut m = mount(
            MountKind::Cache {
                id: "/root/.cache".into(),
                sharing: "shared".into(),
            },
            "/root/.cache",
            "",
            None,
        );
        m.mode = Some(0o700);
        m.uid = Some(1000);
        let specs = step_mounts(&[m.clone()], &sources(&caches, dir.path(), &[], dir.path()))
            .unwrap()
            .0;
        let MountSpec::Bind {
            source, read_only, ..
        } = &specs[0]
        else {
            panic!()
        };
        assert!(!read_only);
        let meta = source.metadata().unwrap();
        assert_eq!((meta.mode() & 0o777, meta.uid()), (0o700, 1000));
        std::fs::write(source.join("kept"), "x").unwrap();
        let again = step_mounts(&[m], &sources(&caches, dir.path(), &[], dir.path()))
            .unwrap()
            .0;
        assert_eq!(again, specs, "the same id, the same directory");
        assert!(source.join("kept").exists());
        let tmpfs = mount(
            MountKind::Tmpfs {
                size: Some(1 << 20),
            },
            "/scratch",
            "",
            None,
        );
        assert_eq!(
            step_mounts(&[tmpfs], &sources(&caches, dir.path(), &[], dir.path()))
                .unwrap()
                .0,
            vec![MountSpec::Tmpfs {
                destination: "/scratch".into(),
                size_bytes: Some(1 << 20),
                mode: None,
                read_only: false
            }]
        );
    }
}
