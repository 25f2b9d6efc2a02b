//! Starting and stopping a hub: config checks first, then the store, the token
//! and the listener; one shutdown path for signals and tests alike.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bramble_api::resource::by_plural;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::metrics::HubMetrics;
use crate::store::{Store, StoreOptions};
use crate::token;

/// Directory of the registry's blobs inside the data directory.
pub const REGISTRY_DIR: &str = "registry";

/// File name of the redb database inside the data directory.
pub const DB_FILE: &str = "state.redb";

/// Hub configuration, validated by [`HubConfig::validate`] before any side effect.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
}

impl HubConfig {
    /// Checks the configuration without touching the disk or the network.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            anyhow::bail!("--data-dir must not be empty");
        }
        if self.data_dir.exists() && !self.data_dir.is_dir() {
            anyhow::bail!(
                "--data-dir {} exists and is not a directory",
                self.data_dir.display()
            );
        }
        Ok(())
    }
}

/// A running hub.
pub struct Hub {
    addr: SocketAddr,
    token: String,
    store: Store,
    stop: watch::Sender<bool>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Hub {
    /// Opens the store, ensures the token and the `default` namespace, binds
    /// and starts serving.
    pub async fn start(config: HubConfig) -> anyhow::Result<Hub> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let token = token::load_or_create(&config.data_dir.join(token::TOKEN_FILE))?;
        let db_path = config.data_dir.join(DB_FILE);
        let store = Store::open(&db_path, StoreOptions::default())
            .with_context(|| format!("opening store {}", db_path.display()))?;
        bootstrap(&store).await?;
        let registry_dir = config.data_dir.join(REGISTRY_DIR);
        let registry = crate::registry::Registry::open(registry_dir.clone(), store.clone())
            .with_context(|| {
                format!("opening the registry blob store {}", registry_dir.display())
            })?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let state = AppState {
            store: store.clone(),
            token: Arc::from(token.as_str()),
            metrics: HubMetrics::new(),
            shutdown: stop_rx.clone(),
            registry: Arc::new(registry),
        };
        let app = router(state);
        let mut graceful = stop_rx;
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = graceful.wait_for(|s| *s).await;
                })
                .await
                .context("serving the API")
        });
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "hub listening");
        Ok(Hub {
            addr,
            token,
            store,
            stop,
            server,
        })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The store (for in-process callers such as tests and controllers).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting, ends watches, finishes in-flight requests (up to
    /// `grace`), then commits queued writes and closes the store.
    pub async fn stop(self, grace: std::time::Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut server = self.server;
        let result = match tokio::time::timeout(grace, &mut server).await {
            Ok(joined) => joined.context("API task panicked")?,
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "requests still running after the grace period; aborting them"
                );
                server.abort();
                Ok(())
            }
        };
        self.store.shutdown().await;
        tracing::info!("hub stopped");
        result
    }
}

/// Creates what a new cluster needs: the `default` namespace.
async fn bootstrap(store: &Store) -> anyhow::Result<()> {
    let namespaces = by_plural("", "v1", "namespaces").expect("registered");
    if store.get(namespaces, None, "default")?.is_none() {
        store
            .create(
                namespaces,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            )
            .await
            .context("creating the default namespace")?;
    }
    Ok(())
}
