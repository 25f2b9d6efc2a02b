//! The real `kubectl` (Debian's package) run as a user runs it: only
//! `KUBECONFIG` set, pointing at a hub's `DATA_DIR/kubeconfig.yaml`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// kubectl bound to one kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// kubectl for the hub whose data directory is `data_dir`.
    pub fn for_data_dir(data_dir: &Path) -> Kubectl {
        Kubectl {
            kubeconfig: data_dir.join("kubeconfig.yaml"),
        }
    }

    /// A command with `KUBECONFIG` set and `args`, to adjust before running.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig).args(args);
        c
    }

    /// Runs `kubectl ARGS`, with `stdin` (empty when `None`) as its input.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is installed (scripts/test installs it)");
        let mut input = child.stdin.take().expect("piped stdin");
        input
            .write_all(stdin.unwrap_or_default())
            .expect("kubectl reads its stdin");
        drop(input);
        child.wait_with_output().expect("kubectl ran")
    }

    /// Runs `kubectl ARGS` and returns its stdout; panics with both outputs
    /// when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// The whitespace-separated words of each line of a table kubectl printed.
pub fn words(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}
