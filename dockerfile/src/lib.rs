//! Bramble's Dockerfile front end, shared by the CLI, the hub and the agent:
//! no I/O except [`context`] (which lists a build context directory).
//!
//! - [`parse`]: Dockerfile text → [`Dockerfile`] (instructions with lines and
//!   original text; heredocs, directives, continuations as BuildKit parses them).
//! - [`expand`]: BuildKit's `$VAR` expansion.
//! - [`plan`]: a parsed Dockerfile + build arguments + target + platform →
//!   [`BuildPlan`] (stages in dependency order, resolved steps, image config,
//!   cache keys).
//! - [`ignore`] and [`context`]: `.dockerignore` matching and the list of
//!   context files a build may read; [`fnmatch`] for COPY source globs.

pub mod context;
mod error;
pub mod expand;
mod flags;
pub mod fnmatch;
mod glob;
pub mod ignore;
pub mod instruction;
mod lines;
mod parse;
pub mod plan;
pub mod platform;
mod shell_pattern;
mod words;

pub use error::{Error, ErrorKind, Warning};
pub use instruction::{Dockerfile, Instruction, Kind};
pub use parse::parse;
pub use plan::{BuildPlan, BuildRequest, ImageConfig, plan};
pub use platform::Platform;
