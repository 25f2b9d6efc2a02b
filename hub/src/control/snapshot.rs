//! One consistent-enough read of everything the controllers plan from:
//! typed objects out of the store, plus older hubs' revision records from
//! their `kv_` table. Objects that fail to decode are logged and skipped,
//! never fatal. Each kind is read at its own revision, dependents before
//! their owners (revision records and pods, then ReplicaSets and Jobs,
//! then Deployments, DaemonSets, StatefulSets and CronJobs): an owner the
//! garbage collector finds missing was deleted, not created after its
//! dependents were read.
//!
//! ConfigMaps and Secrets are read by name, only those a pod or an
//! Ingress's TLS references ([`References`]): they are what clusters hold
//! most of, nothing plans from the others, and a round runs after every
//! write. Reading them all made each write cost O(all ConfigMaps) in the
//! control loop (32,000 ConfigMaps: half the hub's create rate, 270 MB RSS).

use std::collections::BTreeSet;

use bramble_api::objects::{
    ConfigMap, CronJob, DaemonSet, Deployment, Endpoints, HorizontalPodAutoscaler, Ingress, Job,
    Namespace, NetworkPolicy, Node, PersistentVolume, PersistentVolumeClaim, Pod, ReplicaSet,
    Secret, Service, StatefulSet, StorageClass,
};
use bramble_api::resource::by_plural;
use bramble_api::{ResourceInfo, Selector};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::controllers::Revision;
use crate::store::{Store, StoreError};

/// The `kv_` table of older hubs' Deployment revision records (key
/// `owner-uid/hash`): read to turn them into ReplicaSets, then emptied.
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
pub fn statefulsets() -> &'static ResourceInfo {
    resource("apps", "v1", "statefulsets")
}
pub fn replicasets() -> &'static ResourceInfo {
    resource("apps", "v1", "replicasets")
}
pub fn jobs() -> &'static ResourceInfo {
    resource("batch", "v1", "jobs")
}
pub fn cronjobs() -> &'static ResourceInfo {
    resource("batch", "v1", "cronjobs")
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
pub fn claims() -> &'static ResourceInfo {
    resource("", "v1", "persistentvolumeclaims")
}
pub fn volumes() -> &'static ResourceInfo {
    resource("", "v1", "persistentvolumes")
}
pub fn storage_classes() -> &'static ResourceInfo {
    resource("storage.k8s.io", "v1", "storageclasses")
}

/// Everything the control loop reads, at one store revision (per kind).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub revision: u64,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    pub replica_sets: Vec<ReplicaSet>,
    pub deployments: Vec<Deployment>,
    pub daemonsets: Vec<DaemonSet>,
    pub jobs: Vec<Job>,
    pub cron_jobs: Vec<CronJob>,
    pub statefulsets: Vec<StatefulSet>,
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoints>,
    pub ingresses: Vec<Ingress>,
    pub network_policies: Vec<NetworkPolicy>,
    pub namespaces: Vec<Namespace>,
    pub revisions: Vec<Revision>,
    pub claims: Vec<PersistentVolumeClaim>,
    pub volumes: Vec<PersistentVolume>,
    pub storage_classes: Vec<StorageClass>,
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
        // Volumes before their claims, claims before the pods using them: a
        // claim the volume controller finds missing was deleted.
        let volumes: Vec<PersistentVolume> = typed(store, volumes())?;
        let claims: Vec<PersistentVolumeClaim> = typed(store, claims())?;
        let pods: Vec<Pod> = typed(store, pods())?;
        let replica_sets: Vec<ReplicaSet> = typed(store, replicasets())?;
        let jobs: Vec<Job> = typed(store, jobs())?;
        let ingresses: Vec<Ingress> = typed(store, ingresses())?;
        let mut refs = References::default();
        for p in &pods {
            refs.add_pod(p);
        }
        for i in &ingresses {
            refs.add_ingress_tls(i);
        }
        Ok(Snapshot {
            revision,
            pods,
            nodes: typed(store, nodes())?,
            replica_sets,
            deployments: typed(store, deployments())?,
            daemonsets: typed(store, daemonsets())?,
            jobs,
            cron_jobs: typed(store, cronjobs())?,
            statefulsets: typed(store, statefulsets())?,
            config_maps: named(store, configmaps(), &refs.config_maps)?,
            secrets: named(store, secrets(), &refs.secrets)?,
            autoscalers: typed(store, autoscalers())?,
            services: typed(store, services())?,
            endpoints: typed(store, endpoints())?,
            ingresses,
            network_policies: typed(store, network_policies())?,
            namespaces: typed(store, namespaces())?,
            revisions,
            claims,
            volumes,
            storage_classes: typed(store, storage_classes())?,
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

    /// Claims of namespace `ns`.
    pub fn claims_in(&self, ns: &str) -> Vec<PersistentVolumeClaim> {
        self.claims
            .iter()
            .filter(|c| c.namespace() == ns)
            .cloned()
            .collect()
    }

    /// ReplicaSets of namespace `ns`.
    pub fn replica_sets_in(&self, ns: &str) -> Vec<ReplicaSet> {
        self.replica_sets
            .iter()
            .filter(|r| r.namespace() == ns)
            .cloned()
            .collect()
    }
}

/// `(namespace, name)` of the ConfigMaps and Secrets objects reference.
#[derive(Debug, Default)]
pub struct References {
    pub config_maps: BTreeSet<(String, String)>,
    pub secrets: BTreeSet<(String, String)>,
}

impl References {
    /// What a pod's spec references: volumes, `env[].valueFrom`,
    /// `envFrom`, `imagePullSecrets` (read off the typed spec: this runs for
    /// every pod in every round).
    pub fn add_pod(&mut self, pod: &Pod) {
        let ns = pod.namespace();
        let key = |name: &str| (ns.to_string(), name.to_string());
        let spec = &pod.spec;
        for v in &spec.volumes {
            if let Some(c) = &v.config_map {
                self.config_maps.insert(key(&c.name));
            }
            if let Some(s) = &v.secret {
                self.secrets.insert(key(&s.secret_name));
            }
        }
        for c in spec.init_containers.iter().chain(&spec.containers) {
            for e in c.env.iter().filter_map(|e| e.value_from.as_ref()) {
                if let Some(r) = &e.config_map_key_ref {
                    self.config_maps.insert(key(&r.name));
                }
                if let Some(r) = &e.secret_key_ref {
                    self.secrets.insert(key(&r.name));
                }
            }
            for e in &c.env_from {
                if let Some(r) = &e.config_map_ref {
                    self.config_maps.insert(key(&r.name));
                }
                if let Some(r) = &e.secret_ref {
                    self.secrets.insert(key(&r.name));
                }
            }
        }
        for s in &spec.image_pull_secrets {
            self.secrets.insert(key(&s.name));
        }
    }

    /// The certificate Secrets of an Ingress's `spec.tls`.
    pub fn add_ingress_tls(&mut self, ingress: &Ingress) {
        let ns = ingress.metadata.namespace_or_default();
        for t in &ingress.spec.tls {
            if let Some(n) = t.secret_name.as_deref().filter(|n| !n.is_empty()) {
                self.secrets.insert((ns.to_string(), n.to_string()));
            }
        }
    }
}

/// The objects of `resource` named in `refs` that exist, in `refs`' order.
fn named<T: DeserializeOwned>(
    store: &Store,
    resource: &'static ResourceInfo,
    refs: &BTreeSet<(String, String)>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::with_capacity(refs.len());
    for (ns, name) in refs {
        if let Some(v) = store.get(resource, Some(ns), name)? {
            out.extend(decode(resource, v));
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;
    use serde_json::json;

    fn names<T>(items: &[T], name: impl Fn(&T) -> String) -> Vec<String> {
        items.iter().map(name).collect()
    }

    #[tokio::test]
    async fn reads_only_the_config_maps_and_secrets_objects_reference() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        store.create(namespaces(), ns).await.unwrap();
        for (ns, name) in [
            ("default", "used"),
            ("default", "env"),
            ("default", "spare"),
        ] {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}});
            store.create(configmaps(), cm).await.unwrap();
        }
        for name in ["cert", "pull", "spare"] {
            let s = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": "default"}, "data": {}});
            store.create(secrets(), s).await.unwrap();
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "containers": [{"name": "c", "image": "busybox",
                    "envFrom": [{"configMapRef": {"name": "env"}}]}],
                "volumes": [{"name": "v", "configMap": {"name": "used"}},
                            {"name": "gone", "configMap": {"name": "missing"}}],
                "imagePullSecrets": [{"name": "pull"}]}});
        store.create(pods(), pod).await.unwrap();
        let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i", "namespace": "default"},
            "spec": {"tls": [{"hosts": ["a.example"], "secretName": "cert"}]}});
        store.create(ingresses(), ingress).await.unwrap();

        let snap = Snapshot::read(&store).unwrap();
        assert_eq!(
            names(&snap.config_maps, |c| c.name().to_string()),
            ["env", "used"]
        );
        assert_eq!(
            names(&snap.secrets, |s| s.metadata.name.clone()),
            ["cert", "pull"]
        );
        assert_eq!(snap.pods.len(), 1);
        assert_eq!(snap.ingresses.len(), 1);
    }
}
