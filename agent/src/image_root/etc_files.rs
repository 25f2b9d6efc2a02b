//! Reading an image's `/etc/passwd` and `/etc/group` from the board, the
//! image being hostile: the path is resolved inside the image's root
//! ([`Root`]: an `/etc/passwd -> /etc/passwd` or `-> ../../../etc/passwd`
//! symlink reaches the image's file, never the board's), the file is
//! checked to be a regular file before it is opened (a FIFO or a device
//! is never opened, so nothing hangs or is triggered), and it may hold at
//! most [`LIMIT`] bytes. Then the container's user ([`user_in_root`]) is
//! resolved from what was read ([`super::exec_user`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{FileType, OFlags, fstat};

use super::exec_user::{ExecUser, ExecUserError, exec_user};
use super::in_root::Root;

/// The largest `/etc/passwd` or `/etc/group` read (far above a real one).
pub const LIMIT: u64 = 16 << 20;

/// Why the image's file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EtcFileError {
    #[error("the image's /{file} is not a regular file; it is not read")]
    NotRegular { file: &'static str },
    #[error("the image's /{file} has {size} bytes, more than the {LIMIT} read")]
    TooLarge { file: &'static str, size: u64 },
    #[error("reading the image's /{file}: {source}")]
    Io {
        file: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Why a container's user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("opening the container's root {path}: {source}")]
    OpenRoot {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    File(#[from] EtcFileError),
    #[error(transparent)]
    Unknown(#[from] ExecUserError),
}

/// Reads `file` (`etc/passwd` or `etc/group`, relative to the root) inside
/// `root`; `None` when it (or a directory on the way) is missing. Bytes
/// that are not UTF-8 (a comment field in Latin-1) are replaced.
pub fn read_etc_file(root: &Root, file: &'static str) -> Result<Option<String>, EtcFileError> {
    let io = |source: io::Error| EtcFileError::Io { file, source };
    let fd = match root.open_at(Path::new(file), OFlags::PATH) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            return Ok(None);
        }
        Err(e) => return Err(io(e)),
    };
    let st = fstat(&fd).map_err(|e| io(e.into()))?;
    if FileType::from_raw_mode(st.st_mode as _) != FileType::RegularFile {
        return Err(EtcFileError::NotRegular { file });
    }
    if st.st_size as u64 > LIMIT {
        return Err(EtcFileError::TooLarge {
            file,
            size: st.st_size as u64,
        });
    }
    // Opened again by its symlink-free path, not following a last link:
    // the very file checked above (nothing writes the root meanwhile).
    let real = root.real_rel(&fd).map_err(io)?;
    let opened = root
        .open_at(&real, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK)
        .map_err(io)?;
    let mut bytes = Vec::new();
    File::from(opened)
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > LIMIT {
        return Err(EtcFileError::TooLarge {
            file,
            size: bytes.len() as u64,
        });
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The user `spec` (`user[:group]`, see [`exec_user`]) of a container
/// whose root filesystem is mounted at `rootfs`, its names looked up in
/// the image's files. Only reads.
pub fn user_in_root(rootfs: &Path, spec: &str) -> Result<ExecUser, UserError> {
    let root = Root::open(rootfs).map_err(|source| UserError::OpenRoot {
        path: rootfs.display().to_string(),
        source,
    })?;
    let passwd = read_etc_file(&root, "etc/passwd")?;
    let group = read_etc_file(&root, "etc/group")?;
    Ok(exec_user(spec, passwd.as_deref(), group.as_deref())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_with(passwd: impl FnOnce(&Path)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        passwd(&dir.path().join("etc/passwd"));
        dir
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        // `/etc/passwd -> /etc/passwd` on the board would be the board's
        // own file; inside the root it is a loop, an error, never the
        // board's root line.
        let looped = root_with(|p| symlink("/etc/passwd", p).unwrap());
        let e = user_in_root(looped.path(), "root").unwrap_err();
        assert!(matches!(e, UserError::File(EtcFileError::Io { .. })), "{e}");
        // An absolute link to another file of the image is read there.
        let moved = root_with(|p| {
            std::fs::write(p.with_file_name("real"), "app:x:7:8::/:/bin/sh\n").unwrap();
            symlink("/etc/real", p).unwrap();
        });
        let u = user_in_root(moved.path(), "app").unwrap();
        assert_eq!((u.uid, u.gid), (7, 8));
        // `..` stops at the root: this is the image's /etc/group (which it
        // does not have), never the board's, whose lines include root.
        let escape = root_with(|p| symlink("../../../../../../../../etc/group", p).unwrap());
        let e = user_in_root(escape.path(), "root").unwrap_err();
        assert!(
            e.to_string().contains("the image has no /etc/passwd"),
            "{e}"
        );
    }

    #[test]
    fn fifos_and_big_files_are_refused() {
        let fifo = root_with(|p| {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                p,
                FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap()
        });
        let e = user_in_root(fifo.path(), "app").unwrap_err();
        assert!(
            matches!(
                e,
                UserError::File(EtcFileError::NotRegular { file: "etc/passwd" })
            ),
            "{e}"
        );
        let big = root_with(|p| {
            File::create(p).unwrap().set_len(LIMIT + 1).unwrap();
        });
        let e = user_in_root(big.path(), "app").unwrap_err();
        assert!(
            matches!(e, UserError::File(EtcFileError::TooLarge { .. })),
            "{e}"
        );
        // Numeric users need no files at all.
        let none = tempfile::tempdir().unwrap();
        let u = user_in_root(none.path(), "5:6").unwrap();
        assert_eq!((u.uid, u.gid), (5, 6));
    }
}
