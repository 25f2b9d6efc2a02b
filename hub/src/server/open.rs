//! What a hub keeps in its data directory, opened at start: the admin
//! token, the cluster CA and a serving certificate, the store (its sealed
//! tables' key), the registry, the node identities and the `default`
//! namespace; the directory made private before and after.

use std::sync::Arc;

use bramble_api::resource::by_plural;
use serde_json::json;

use super::{HubConfig, StartError};
use crate::identity::Identity;
use crate::store::{Sealer, Store, StoreOptions};
use crate::{secrets_key, token};

/// The tables sealed with `DATA_DIR/secrets.key`: Secrets and the join
/// tokens' secrets.
const SEALED_TABLES: [&str; 2] = ["secrets", crate::identity::tokens::TOKENS_TABLE];

/// Directory of the registry's blobs inside the data directory.
pub const REGISTRY_DIR: &str = "registry";

/// File name of the redb database inside the data directory.
pub const DB_FILE: &str = "state.redb";

/// What a hub keeps in its data directory, opened: the admin token, the
/// CA and serving certificate, the store (with the sealed tables' key), the
/// registry and the node identities.
pub(super) struct Opened {
    pub(super) token: String,
    pub(super) tls: Arc<crate::tls::HubTls>,
    pub(super) store: Store,
    pub(super) secrets_key: Arc<secrets_key::SecretsKey>,
    pub(super) registry: Arc<crate::registry::Registry>,
    pub(super) identity: Arc<Identity>,
}

/// Makes the data directory private and opens what is in it (creating what
/// is missing).
pub(super) async fn open(config: &HubConfig) -> Result<Opened, StartError> {
    make_private(&config.data_dir, true).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let token = token::load_or_create(&config.data_dir.join(token::TOKEN_FILE))?;
    let tls = start_tls(config)?;
    let db_path = config.data_dir.join(DB_FILE);
    let key_path = config.data_dir.join(secrets_key::SECRETS_KEY_FILE);
    let (keyring, _) = secrets_key::load_or_create(&key_path)?;
    let sealer = Arc::new(Sealer::new(SEALED_TABLES.to_vec(), keyring));
    let store = Store::open(
        &db_path,
        StoreOptions {
            sealer: Some(sealer),
            ..StoreOptions::default()
        },
    )
    .map_err(|source| StartError::Store {
        path: db_path.clone(),
        source,
    })?;
    let secrets_key = Arc::new(secrets_key::SecretsKey::new(key_path));
    // Keys left by a rotation a crash interrupted: everything is sealed
    // under the active key now.
    secrets_key.retire_unused(&store)?;
    bootstrap(&store).await?;
    let registry_dir = config.data_dir.join(REGISTRY_DIR);
    let registry =
        crate::registry::Registry::open(registry_dir.clone(), store.clone()).map_err(|source| {
            StartError::Registry {
                path: registry_dir.clone(),
                source,
            }
        })?;
    let registry = Arc::new(registry);
    let identity = Identity::open(&config.data_dir, store.clone(), config.approve_nodes)
        .await
        .map_err(StartError::Identity)?;
    Ok(Opened {
        token,
        tls,
        store,
        secrets_key,
        registry,
        identity,
    })
}

/// Once every file is in place (the store, the keys, the CA): none may be
/// readable by other users, whoever made it (redb creates its file 0644,
/// inside the already private directory); then the admin kubeconfig for
/// `url` is written. Failures are logged: the hub serves anyway.
pub(super) fn finish_data_dir(
    dir: &std::path::Path,
    url: &str,
    tls: &crate::tls::HubTls,
    token: &str,
) {
    if let Err(e) = make_private(dir, false) {
        tracing::error!(error = %e, "making the data directory private failed");
    }
    if let Err(e) = crate::kubeconfig::write(dir, url, &tls.ca, token) {
        tracing::warn!(error = %e, "writing the kubeconfig failed");
    }
}

/// The cluster CA (created at first start) and a fresh serving certificate;
/// `--insecure-http` is announced on every start.
fn start_tls(config: &HubConfig) -> Result<Arc<crate::tls::HubTls>, StartError> {
    let ca = crate::tls::ClusterCa::load_or_create(&config.data_dir).map_err(StartError::Ca)?;
    let serving =
        crate::tls::ServingCert::new(&ca, config.ports.sans.clone(), config.ports.cert_lifetime)
            .map_err(StartError::ServingCert)?;
    if config.ports.insecure_mqtt && config.mqtt_listen.is_some() {
        tracing::warn!(
            "--insecure-mqtt: the embedded broker speaks plain MQTT; node logins can be \
             replayed by anyone on the network (frames stay signed and sealed). For labs only."
        );
    }
    if config.ports.insecure_http {
        tracing::warn!(
            "--insecure-http: the API and registry speak plain HTTP; the admin token, node \
             logins, Secrets and images cross the network in clear. For labs only."
        );
    }
    Ok(Arc::new(crate::tls::HubTls {
        ca,
        serving: Arc::new(serving),
    }))
}

/// Creates `DATA_DIR` private or makes it so; `found` (before this start
/// wrote anything) warns about what was open.
fn make_private(dir: &std::path::Path, found: bool) -> std::io::Result<()> {
    let changed = crate::data_dir::secure(dir)?;
    if found && !changed.is_empty() {
        tracing::warn!(changed = ?changed, "the data directory was readable by other users; made private");
    } else if !changed.is_empty() {
        tracing::debug!(changed = ?changed, "files of this start made private");
    }
    Ok(())
}

/// Creates what a cluster needs: the `default` namespace, and the
/// `local-path` StorageClass (as k3s does, again on every start if it was
/// deleted).
async fn bootstrap(store: &Store) -> Result<(), StartError> {
    let classes = by_plural("storage.k8s.io", "v1", "storageclasses").expect("registered");
    let class = bramble_api::objects::StorageClass::local_path();
    if store
        .get(classes, None, class.name())
        .map_err(StartError::DefaultStorageClass)?
        .is_none()
    {
        let object = bramble_api::admit(serde_json::to_value(&class).expect("serializes"))
            .expect("the built-in class is valid")
            .object;
        store
            .create(classes, object)
            .await
            .map_err(StartError::DefaultStorageClass)?;
    }
    let namespaces = by_plural("", "v1", "namespaces").expect("registered");
    let existing = store
        .get(namespaces, None, "default")
        .map_err(StartError::DefaultNamespace)?;
    if existing.is_none() {
        store
            .create(
                namespaces,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            )
            .await
            .map_err(StartError::DefaultNamespace)?;
    }
    Ok(())
}
