//! The shared runtime suite ([`runtime_suite`]) against the OCI runtime binary backend driving `runc` (`BRAMBLE_OCI_RUNTIME`
//! names another binary, e.g. `crun`).

mod common;
mod runtime_suite;

runtime_suite::runtime_suite!(common::Backend::Runc);
