//! Objects as kubectl prints them: columns and cells of each kind, ages,
//! and small JSON accessors. Shared by the hub (server-side `Table`s) and
//! the CLI.

pub mod age;
pub mod batch;
pub mod build;
pub mod columns;
pub mod json;
