//! What the compose tests share (`compose_e2e.rs`, `compose_build.rs`, as
//! `mod support { pub mod compose; }`): [`Project`], a project directory
//! with a unique project name on a [`Cluster`], run through `bramble compose
//! -f FILE -p NAME`, and taken down with its volumes on drop; and
//! [`curl`], one request to a published port.

use std::path::PathBuf;

use bramble_tests::cluster::{Cluster, unique};

/// A project directory; `compose down -v` on drop, so a failing test
/// leaves no namespace behind (the cluster's drop then stops the agent).
pub struct Project<'a> {
    pub c: &'a Cluster,
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl<'a> Project<'a> {
    /// A project named `unique(prefix)` whose `compose.yaml` is `compose`.
    pub fn new(c: &'a Cluster, prefix: &str, compose: &str) -> Self {
        let p = Project {
            c,
            dir: tempfile::tempdir().expect("tempdir"),
            name: unique(prefix),
        };
        p.write("compose.yaml", compose);
        p
    }

    /// Writes `text` to `rel` in the project directory (parents made).
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("compose.yaml")
    }

    /// `bramble compose -f FILE -p NAME ARGS...`: (success, output).
    pub fn compose(&self, args: &[&str]) -> (bool, String) {
        let file = self.file().display().to_string();
        let mut all = vec!["compose", "-f", &file, "-p", &self.name];
        all.extend_from_slice(args);
        self.c.cli(&all)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.compose(args);
        assert!(ok, "compose {args:?} failed:\n{out}");
        out
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v"]);
    }
}

/// `curl -sS --max-time 5 URL` (a published port, from this host): what it
/// printed if it succeeded, else what it printed on stderr.
pub fn curl(url: &str) -> Result<String, String> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", url])
        .output()
        .expect("running curl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
