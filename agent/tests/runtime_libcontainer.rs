//! The shared runtime suite ([`runtime_suite`]) against the libcontainer backend (in-process).

mod common;
mod runtime_suite;

runtime_suite::runtime_suite!(common::Backend::Libcontainer);
