//! What the CLI's hub tests share (`mod support;` in `cli_e2e.rs` and
//! `build_upload.rs`): [`Env`], an in-process hub on its own runtime
//! (temporary data dir, 127.0.0.1 port 0) with a temporary HOME and work
//! directory, and the `bramble` binary run against it with a scrubbed
//! environment. A test file adds the helpers only it needs in an `impl Env`
//! of its own.
//!
//! `support/compose.rs` is not a child of this module: the compose tests
//! include it alone (`mod support { pub mod compose; }`), so neither side
//! compiles helpers it does not use.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use bramble_hub::testing::TestHub;

/// A running hub plus the runtime that serves it; stops the hub on drop.
pub struct Env {
    rt: tokio::runtime::Runtime,
    hub: Option<TestHub>,
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Env {
    pub fn start() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let hub = rt.block_on(TestHub::start()).expect("test hub starts");
        Env {
            rt,
            hub: Some(hub),
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    pub fn hub(&self) -> &TestHub {
        self.hub.as_ref().unwrap()
    }

    /// The binary with only the variables we choose: the hub URL, and the
    /// hub's data dir, so the token is found the way it is on the hub machine.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bramble"));
        c.env_clear()
            .env("HOME", self.home.path())
            .env("BRAMBLE_HUB", self.hub().url())
            .env("BRAMBLE_DATA_DIR", self.hub().data_dir())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Writes `text` to `rel` under the work directory (parents made) and
    /// returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.work.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(h) = self.hub.take() {
            let _ = self.rt.block_on(h.stop());
        }
    }
}
