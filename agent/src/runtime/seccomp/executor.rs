//! libcontainer's last step in the container's init (and in an exec'd
//! process), with seccomp: `validate` (before the start signal) compiles
//! the spec's `linux.seccomp` and fails the create if it cannot; `exec`
//! installs it, the very last thing before `execve`, after capabilities
//! were dropped and `no_new_privs` set, as runc does.

use std::sync::OnceLock;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;
use seccompiler::BpfProgram;

use super::bpf;

/// [`DefaultExecutor`] plus the spec's seccomp filter.
#[derive(Clone, Default)]
pub struct SeccompExecutor {
    programs: OnceLock<Vec<BpfProgram>>,
}

impl Executor for SeccompExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)?;
        if let Some(section) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            let programs = bpf::compile(section)
                .map_err(|e| ExecutorValidationError::ArgValidationError(e.to_string()))?;
            let _ = self.programs.set(programs);
        }
        Ok(())
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(programs) = self.programs.get() {
            bpf::install(programs).map_err(|e| ExecutorError::Other(e.to_string()))?;
        }
        DefaultExecutor {}.exec(spec)
    }
}
