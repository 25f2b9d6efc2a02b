//! Container logs: CRI-format lines ([`format`](mod@format)) written by a [`LogWriter`]
//! to size-capped, rotated files, and read back by a [`LogFollower`] for
//! `bramble logs [-f]`.
//!
//! Containers write into FIFOs that the agent's [`LogPump`] thread drains
//! into the writers; the FIFOs are opened read-write on both sides, so
//! containers and their logs outlive an agent restart (see [`pump`]).

pub mod follow;
pub mod format;
pub mod pump;
pub mod writer;

pub use follow::{LogFollower, Start, read_history};
pub use format::{LogLine, Reassembler, Stream};
pub use pump::{Fifos, LogPump};
pub use writer::{LogConfig, LogWriter};
