//! One consistent-enough read of everything the controllers plan from:
//! typed objects out of the store, plus revision records from their `kv_`
//! table. Objects that fail to decode are logged and skipped, never fatal.

use bramble_api::objects::{
    ConfigMap, DaemonSet, Deployment, Endpoints, HorizontalPodAutoscaler, Ingress, Namespace,
    NetworkPolicy, Node, Pod, Secret, Service,
};
use bramble_api::resource::by_plural;
use bramble_api::{ResourceInfo, Selector};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::controllers::Revision;
use crate::store::{Store, StoreError};

/// The `kv_` table of Deployment revision records (key `owner-uid/hash`).
pub const REVISIONS_TABLE: &str = "kv_revisions";

/// The resource of `plural` in `group`/`version` (all are registered).
pub fn resource(group: &str, version: &str, plural: &str) -> &'static ResourceInfo {
    by_plural(group, version, plural).expect("registered resource")
}

pub fn pods() -> &'static ResourceInfo {
    resource("", "v1", "pods")
}
pub fn nodes() -> &'static ResourceInfo {
    resource("", "v1", "nodes")
}
pub fn deployments() -> &'static ResourceInfo {
    resource("apps", "v1", "deployments")
}
pub fn daemonsets() -> &'static ResourceInfo {
    resource("apps", "v1", "daemonsets")
}
pub fn configmaps() -> &'static ResourceInfo {
    resource("", "v1", "configmaps")
}
pub fn secrets() -> &'static ResourceInfo {
    resource("", "v1", "secrets")
}
pub fn autoscalers() -> &'static ResourceInfo {
    resource("autoscaling", "v2", "horizontalpodautoscalers")
}
pub fn services() -> &'static ResourceInfo {
    resource("", "v1", "services")
}
pub fn endpoints() -> &'static ResourceInfo {
    resource("", "v1", "endpoints")
}
pub fn ingresses() -> &'static ResourceInfo {
    resource("networking.k8s.io", "v1", "ingresses")
}
pub fn network_policies() -> &'static ResourceInfo {
    resource("networking.k8s.io", "v1", "networkpolicies")
}
pub fn namespaces() -> &'static ResourceInfo {
    resource("", "v1", "namespaces")
}

/// Everything the control loop reads, at one store revision (per kind).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub revision: u64,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    pub deployments: Vec<Deployment>,
    pub daemonsets: Vec<DaemonSet>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoints>,
    pub ingresses: Vec<Ingress>,
    pub network_policies: Vec<NetworkPolicy>,
    pub namespaces: Vec<Namespace>,
    pub revisions: Vec<Revision>,
}

impl Snapshot {
    /// Reads the store.
    pub fn read(store: &Store) -> Result<Snapshot, StoreError> {
        let revision = store.revision()?;
        let mut revisions = Vec::new();
        for (key, bytes) in store.kv_list(REVISIONS_TABLE, "")? {
            match serde_json::from_slice::<Revision>(&bytes) {
                Ok(r) => revisions.push(r),
                Err(e) => tracing::warn!(%key, error = %e, "unreadable revision record skipped"),
            }
        }
        Ok(Snapshot {
            revision,
            pods: typed(store, pods())?,
            nodes: typed(store, nodes())?,
            deployments: typed(store, deployments())?,
            daemonsets: typed(store, daemonsets())?,
            config_maps: typed(store, configmaps())?,
            secrets: typed(store, secrets())?,
            autoscalers: typed(store, autoscalers())?,
            services: typed(store, services())?,
            endpoints: typed(store, endpoints())?,
            ingresses: typed(store, ingresses())?,
            network_policies: typed(store, network_policies())?,
            namespaces: typed(store, namespaces())?,
            revisions,
        })
    }

    /// Pods of namespace `ns`.
    pub fn pods_in(&self, ns: &str) -> Vec<Pod> {
        self.pods
            .iter()
            .filter(|p| p.namespace() == ns)
            .cloned()
            .collect()
    }
}

fn typed<T: DeserializeOwned>(
    store: &Store,
    resource: &'static ResourceInfo,
) -> Result<Vec<T>, StoreError> {
    let list = store.list(resource, None, &Selector::default())?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|v| decode(resource, v))
        .collect())
}

fn decode<T: DeserializeOwned>(resource: &'static ResourceInfo, v: Value) -> Option<T> {
    let name = crate::store::object::name(&v).to_string();
    match serde_json::from_value(v) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(kind = resource.kind, %name, error = %e, "stored object does not decode; skipped by the controllers");
            None
        }
    }
}
