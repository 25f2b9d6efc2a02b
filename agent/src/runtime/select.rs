//! Which backend the agent's `--runtime` flag names.
//!
//! - `libcontainer`: the in-process runtime ([`super::libcontainer`]); the
//!   default of 64-bit builds. libcontainer 0.7 does not compile for 32-bit
//!   targets, so 32-bit (armv7) builds do not have it.
//! - `auto`: the first of [`AUTO_CANDIDATES`] found in `PATH`; the default
//!   of 32-bit builds.
//! - anything else: an OCI runtime binary, by name (looked up in `PATH`)
//!   or path ([`super::OciBinaryRuntime`]).
//!
//! A value that selects nothing is a [`SelectError`] saying what to install
//! or pass instead.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The in-process runtime exists in this build (64-bit targets only).
pub const HAS_LIBCONTAINER: bool = cfg!(target_pointer_width = "64");

/// `--runtime`'s default: `libcontainer` where it is built, else `auto`.
pub const DEFAULT: &str = if HAS_LIBCONTAINER {
    "libcontainer"
} else {
    "auto"
};

/// The OCI runtime binaries `auto` looks for in `PATH`, in this order.
pub const AUTO_CANDIDATES: [&str; 2] = ["crun", "runc"];

/// The backend a `--runtime` value selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The in-process libcontainer runtime.
    #[cfg(target_pointer_width = "64")]
    Libcontainer,
    /// An OCI runtime binary: a name looked up in `PATH`, or a path.
    Binary(PathBuf),
}

impl Backend {
    /// The `--runtime` value standing for this backend (`libcontainer`, or
    /// the binary), as reported to the hub.
    pub fn flag(&self) -> String {
        match self {
            #[cfg(target_pointer_width = "64")]
            Backend::Libcontainer => "libcontainer".to_string(),
            Backend::Binary(b) => b.display().to_string(),
        }
    }
}

/// Why `--runtime` selects no backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// `libcontainer` in a 32-bit build (see [`HAS_LIBCONTAINER`]).
    #[error(
        "--runtime libcontainer: this bramble-agent is a 32-bit build, which has no \
         in-process runtime; use --runtime auto (crun or runc from PATH), crun, runc or \
         the path of an OCI runtime binary"
    )]
    NoLibcontainer,
    /// `auto` found none of [`AUTO_CANDIDATES`]; `path` is `PATH` (`None`:
    /// unset).
    #[error(
        "--runtime auto: neither {} is an executable in PATH ({}); install one \
         (`apt install crun` or `apt install runc`) or pass its path with --runtime",
        AUTO_CANDIDATES.join(" nor "),
        .path.as_deref().unwrap_or("unset")
    )]
    NotInPath { path: Option<String> },
    #[error("--runtime: empty value")]
    Empty,
}

/// The backend `flag` selects, `auto` resolved against `path` (the value
/// of `PATH`).
pub fn choose(flag: &str, path: Option<&OsStr>) -> Result<Backend, SelectError> {
    match flag {
        #[cfg(target_pointer_width = "64")]
        "libcontainer" => Ok(Backend::Libcontainer),
        #[cfg(not(target_pointer_width = "64"))]
        "libcontainer" => Err(SelectError::NoLibcontainer),
        "auto" => find_in_path(&AUTO_CANDIDATES, path)
            .map(Backend::Binary)
            .ok_or_else(|| SelectError::NotInPath {
                path: path.map(|p| p.to_string_lossy().into_owned()),
            }),
        "" => Err(SelectError::Empty),
        other => Ok(Backend::Binary(PathBuf::from(other))),
    }
}

/// The first of `names` that is an executable file in a directory of
/// `path` (directories in order, then names in order within each).
pub fn find_in_path(names: &[&str], path: Option<&OsStr>) -> Option<PathBuf> {
    let path = path?;
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .find_map(|dir| {
            names
                .iter()
                .map(|n| dir.join(n))
                .find(|candidate| is_executable(candidate))
        })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn touch(dir: &Path, name: &str, mode: u32) {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn path_of(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).unwrap()
    }

    #[test]
    fn auto_takes_the_first_executable_candidate_in_path_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        touch(a.path(), "crun", 0o644); // not executable: skipped
        touch(a.path(), "runc", 0o755);
        touch(b.path(), "crun", 0o755);
        let path = path_of(&[a.path(), b.path()]);
        assert_eq!(
            choose("auto", Some(&path)).unwrap(),
            Backend::Binary(a.path().join("runc"))
        );
        let path = path_of(&[b.path(), a.path()]);
        assert_eq!(
            choose("auto", Some(&path)).unwrap(),
            Backend::Binary(b.path().join("crun"))
        );
    }

    #[test]
    fn auto_without_a_runtime_names_what_to_install() {
        let empty = tempfile::tempdir().unwrap();
        let path = path_of(&[empty.path()]);
        let err = choose("auto", Some(&path)).unwrap_err();
        assert!(matches!(err, SelectError::NotInPath { .. }), "{err}");
        let err = err.to_string();
        assert!(err.contains("apt install crun"), "{err}");
        assert!(err.contains("runc"), "{err}");
        let err = choose("auto", None).unwrap_err();
        assert_eq!(err, SelectError::NotInPath { path: None });
        assert!(err.to_string().contains("unset"), "{err}");
    }

    #[test]
    fn names_and_paths_are_binaries() {
        assert_eq!(
            choose("runc", None).unwrap(),
            Backend::Binary(PathBuf::from("runc"))
        );
        let b = choose("/usr/bin/crun", None).unwrap();
        assert_eq!(b.flag(), "/usr/bin/crun");
        assert_eq!(choose("", None), Err(SelectError::Empty));
    }

    #[test]
    fn libcontainer_exactly_where_it_is_built() {
        let chosen = choose("libcontainer", None);
        assert_eq!(chosen.is_ok(), HAS_LIBCONTAINER);
        if let Ok(b) = chosen {
            assert_eq!(b.flag(), "libcontainer");
            assert_eq!(DEFAULT, "libcontainer");
        } else {
            let err = chosen.unwrap_err();
            assert_eq!(err, SelectError::NoLibcontainer);
            assert!(err.to_string().contains("32-bit"), "{err}");
            assert_eq!(DEFAULT, "auto");
        }
    }
}
