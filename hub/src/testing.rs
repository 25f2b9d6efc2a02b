//! An in-process hub for tests of other crates: a temporary data dir and a
//! listener on 127.0.0.1 port 0.

use std::time::Duration;

use crate::server::{Hub, HubConfig};

/// A hub that lives as long as this value; its data dir is removed on drop.
pub struct TestHub {
    hub: Option<Hub>,
    dir: tempfile::TempDir,
}

impl TestHub {
    /// Starts a fresh hub.
    pub async fn start() -> anyhow::Result<TestHub> {
        let dir = tempfile::tempdir()?;
        let hub = Hub::start(HubConfig {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse()?,
        })
        .await?;
        Ok(TestHub {
            hub: Some(hub),
            dir,
        })
    }

    fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("hub is running")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.hub().addr())
    }

    /// The admin token.
    pub fn token(&self) -> &str {
        self.hub().token()
    }

    /// The hub's data directory (holds `token` and `state.redb`).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the hub cleanly.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        match self.hub.take() {
            Some(h) => h.stop(Duration::from_secs(5)).await,
            None => Ok(()),
        }
    }
}
