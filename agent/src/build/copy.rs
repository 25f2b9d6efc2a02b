//! COPY, ADD and WORKDIR steps of a build on this board (placeholder until
//! the executor lands: every call is refused with a clear error).

use std::path::{Path, PathBuf};

use bramble_dockerfile::plan::CopyStep;

/// Where a COPY reads from.
pub struct CopySource<'a> {
    pub root: &'a Path,
    pub visible: Option<&'a [String]>,
}

/// Why a COPY/ADD/WORKDIR step failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0} is not supported on the boards yet")]
    Unsupported(&'static str),
}

/// Runs a COPY/ADD step; returns the upper directory.
pub fn copy_step(
    _layers: &[PathBuf],
    _dir: &Path,
    _step: &CopyStep,
    _source: &CopySource<'_>,
) -> Result<PathBuf, CopyError> {
    Err(CopyError::Unsupported("COPY"))
}

/// Runs a WORKDIR step; returns the upper directory.
pub fn mkdir_step(
    _layers: &[PathBuf],
    _dir: &Path,
    _path: &str,
    _user: &str,
) -> Result<PathBuf, CopyError> {
    Err(CopyError::Unsupported("WORKDIR"))
}
