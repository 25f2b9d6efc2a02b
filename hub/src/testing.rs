//! An in-process hub for tests of other crates: a temporary data dir and a
//! listener on 127.0.0.1 port 0.

use std::time::Duration;

use crate::server::{Hub, HubConfig, StartError};

/// Why a [`TestHub`] did not start.
#[derive(Debug, thiserror::Error)]
pub enum TestHubError {
    #[error("creating a temporary data dir: {0}")]
    TempDir(#[source] std::io::Error),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A hub that lives as long as this value; its data dir is removed on drop.
pub struct TestHub {
    hub: Option<Hub>,
    dir: tempfile::TempDir,
}

impl TestHub {
    /// Starts a fresh hub without MQTT (API only).
    pub async fn start() -> Result<TestHub, TestHubError> {
        Self::start_with(None, None).await
    }

    /// Starts a fresh hub with its embedded MQTT broker; every port of the
    /// hub is a loopback port 0 bound by the hub itself.
    pub async fn start_with_mqtt() -> Result<TestHub, TestHubError> {
        Self::start_with(Some(([127, 0, 0, 1], 0).into()), None).await
    }

    /// Starts a fresh hub with the given MQTT settings.
    pub async fn start_with(
        mqtt_listen: Option<std::net::SocketAddr>,
        mqtt_url: Option<String>,
    ) -> Result<TestHub, TestHubError> {
        let dir = tempfile::tempdir().map_err(TestHubError::TempDir)?;
        let with_agents = mqtt_listen.is_some() || mqtt_url.is_some();
        let hub = Hub::start(HubConfig {
            data_dir: dir.path().to_path_buf(),
            listen: ([127, 0, 0, 1], 0).into(),
            mqtt_listen,
            mqtt_url,
            mqtt_ca: None,
            control: Default::default(),
            network: Default::default(),
            // With agents to serve, cluster DNS too (free loopback ports), and the ingress.
            dns: with_agents.then(|| crate::server::DnsConfig {
                listen: ([127, 0, 0, 1], 0).into(),
                upstreams: Vec::new(),
            }),
            ingress: with_agents.then(|| ([127, 0, 0, 1], 0).into()),
            ingress_tls: with_agents.then(|| ([127, 0, 0, 1], 0).into()),
            // Its ports are the Services' own: tested with hub processes
            // on addresses of their own (bramble_tests::ports).
            service_lb: None,
            // Tests keep their traffic on loopback.
            mdns: false,
            pod_routes: false,
            approve_nodes: false,
            mqtt_dynsec: false,
            // HTTPS as by default; plain MQTT, so that protocol tests can
            // speak as any node with a plain client (MQTT over TLS is
            // tested end to end with real agents: tests/tests/cluster.rs).
            ports: crate::server::PortSettings {
                insecure_mqtt: true,
                ..Default::default()
            },
            events: Default::default(),
        })
        .await?;
        Ok(TestHub {
            hub: Some(hub),
            dir,
        })
    }

    /// The running hub.
    pub fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("hub is running")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.hub().url()
    }

    /// The cluster CA (PEM), what clients of [`TestHub::url`] trust.
    pub fn ca_pem(&self) -> String {
        self.hub().tls().ca.pem().to_string()
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
    pub async fn stop(mut self) -> Result<(), std::convert::Infallible> {
        match self.hub.take() {
            Some(h) => h.stop(Duration::from_secs(5)).await,
            None => Ok(()),
        }
    }
}

/// Registers `node` with `keys` (approved, incarnation 1, `session`) as a
/// join would, for tests that speak the protocol as that node.
pub async fn register_node(
    identity: &crate::identity::Identity,
    node: &str,
    keys: &bramble_trust::PublicKeys,
    session: &str,
) {
    identity
        .nodes()
        .put(
            node,
            crate::identity::nodes::NodeRecord {
                signing: keys.signing_text(),
                encryption: keys.encryption_text(),
                incarnation: 1,
                session: session.to_string(),
                approved: true,
                token_id: "tests0".into(),
                joined: "2026-01-01T00:00:00Z".into(),
                architecture: "arm64".into(),
                internal_ip: None,
            },
        )
        .await
        .expect("registering a test node");
}

/// A store in a new redb file `path` holding the `default` Namespace, as a
/// hub's first start leaves it (unit tests against a real store).
pub async fn store_with_default_namespace(path: &std::path::Path) -> crate::store::Store {
    let store = crate::store::Store::open(path, crate::store::StoreOptions::default())
        .expect("opening the test store");
    store
        .create(
            crate::control::snapshot::namespaces(),
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
        )
        .await
        .expect("creating the default namespace");
    store
}
