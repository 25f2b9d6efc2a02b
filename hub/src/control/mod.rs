//! The control loop: one task that reads the store ([`snapshot`]), runs the
//! pure controller plans (node lifecycle, garbage collection, Deployments
//! and their ReplicaSets, DaemonSets, StatefulSets, Jobs and CronJobs,
//! autoscalers, volumes, Endpoints, the load balancer's Service status),
//! applies their actions ([`applier`]), binds pending pods ([`bind`]) and
//! hands each node its desired set ([`crate::dispatch`]). Workloads whose
//! pods Pod Security now refuses get none ([`pod_security`]).
//! Level-triggered: it wakes on any store change, any change of the agents'
//! live facts, a reconnect of the hub's MQTT client, a change of the load
//! balancer's bind failures (whose ports it tries again each pass), and
//! once a second for the clocks (heartbeats, eviction, rollout and Job
//! deadlines, Jobs' TTLs, CronJob schedules), and every round starts from
//! the store. Events go to the hub's [`Recorder`]: from the applier and the
//! binder as they write, and from [`observed`] for changes between rounds.

pub mod applier;
#[cfg(test)]
mod applier_tests;
pub mod backoff;
pub mod bind;
pub mod failed_action;
pub mod images;
pub mod observed;
pub mod pod_security;
pub mod snapshot;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::admission::pod_security::PodSecurityConfig;
use crate::controllers::endpoints::{EndpointsInput, plan_endpoints};
use crate::controllers::{
    Action, CronJobInput, DaemonSetInput, DeploymentInput, GcInput, HpaInput, JobInput,
    LoadBalancerInput, NodeHealth, NodeLifecycleConfig, PodMetrics, PodRef, StatefulSetInput,
    VolumeInput, plan_cronjob, plan_daemonset, plan_deployment, plan_gc, plan_hpa, plan_job,
    plan_load_balancers, plan_nodes, plan_statefulset, plan_volumes,
};
use crate::dispatch::Dispatcher;
use crate::events::Recorder;
use crate::fleet::{Fleet, NodeLive};
use crate::ingress::{IngressState, RouteTable};
use crate::mdns::Announcement;
use crate::mdns::services::lan_names;
use crate::network::NetworkSettings;
use crate::network::host_network::{self, HostNetwork};
use crate::network::host_routes;
use crate::network::pod_hosts::pod_hosts;
use crate::network::table::ServiceTable;
use crate::registry::Registry;
use crate::service_lb::ServiceLb;
use crate::service_lb::plan::LbPlan;
use crate::store::{Store, StoreError};
use bramble_api::objects::Pod;
use bramble_dns::{DnsServer, Zone};
use snapshot::Snapshot;

/// Timings of the control loop, and the Pod Security settings that the
/// API admits writes with and the controllers' pods must meet.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub lifecycle: NodeLifecycleConfig,
    /// The longest sleep between rounds.
    pub tick: Duration,
    /// `--default-pod-security`, `--pod-security-exempt-namespaces`,
    /// `--allowed-host-paths`.
    pub pod_security: Arc<PodSecurityConfig>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            lifecycle: NodeLifecycleConfig::default(),
            tick: Duration::from_secs(1),
            pod_security: Arc::default(),
        }
    }
}

/// The hub's LAN-facing services fed from the store: DNS names, ingress
/// routes and ingress certificates, refreshed whenever the store changed.
#[derive(Debug, Default)]
pub struct Edge {
    pub dns: Option<Arc<DnsServer>>,
    /// The ingress's listeners (plain and TLS) share it.
    pub ingress: Option<IngressState>,
    /// Program this host's routes to pods and its service table
    /// (`--no-pod-routes` turns it off).
    pub pod_routes: bool,
    /// Programs them (started on the first refresh).
    pub host: Option<HostNetwork>,
    /// The hub's mDNS responder: annotated Services as `<name>.local`.
    pub mdns: Option<Arc<Announcement>>,
    /// The load balancer of `LoadBalancer` Services.
    pub lb: Option<Arc<ServiceLb>>,
}

impl Edge {
    fn refresh(&mut self, snap: &Snapshot, network: &NetworkSettings) {
        let needs_table = self.pod_routes
            || self.dns.is_some()
            || self.ingress.is_some()
            || self.mdns.is_some()
            || self.lb.is_some();
        if !needs_table {
            return;
        }
        let table = ServiceTable::build(&snap.services, &snap.endpoints);
        if self.pod_routes {
            let local = host_routes::local_addresses(&snap.nodes);
            let want = host_network::wanted(&snap.nodes, &table.0, network.service_cidr, |ip| {
                local.contains(&ip)
            });
            self.host.get_or_insert_with(HostNetwork::start).set(want);
        }
        if let Some(mdns) = &self.mdns {
            let (names, problems) = lan_names(&snap.services, &snap.nodes, &table.0);
            mdns.set_services(names, problems);
        }
        if let Some(dns) = &self.dns {
            let hosts = pod_hosts(&snap.services, &snap.endpoints);
            dns.set_zone(Zone::build(&network.cluster_domain, &table.0).with_hosts(&hosts));
        }
        if let Some(lb) = &self.lb {
            lb.set(LbPlan::build(&snap.services).backends(&table));
        }
        if let Some(ingress) = &self.ingress {
            // Routes and certificates from the same snapshot, swapped together.
            ingress.set_table(RouteTable::build(&snap.ingresses, &table));
            ingress.set_certificates(&snap.ingresses, &snap.secrets);
        }
    }
}

/// Rounds in a row that may write before the loop yields to a sleep: a plan
/// that never converges must not spin.
const MAX_BUSY_ROUNDS: usize = 20;

/// Starts the loop; it ends when `shutdown` turns true or the store closes.
pub fn spawn(
    store: Store,
    fleet: Arc<Fleet>,
    config: ControlConfig,
    parts: Parts,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(run(store, fleet, config, parts, shutdown))
}

/// What the loop drives besides the store.
pub struct Parts {
    /// Hands each node its desired set.
    pub dispatcher: Dispatcher,
    /// Image platforms for scheduling.
    pub registry: Option<Arc<Registry>>,
    /// DNS, ingress, host routes, mDNS.
    pub edge: Edge,
    /// Where the controllers' and the scheduler's events go.
    pub events: Recorder,
}

async fn run(
    store: Store,
    fleet: Arc<Fleet>,
    config: ControlConfig,
    parts: Parts,
    mut shutdown: watch::Receiver<bool>,
) {
    let Parts {
        mut dispatcher,
        registry,
        mut edge,
        events,
    } = parts;
    let mut observed = observed::Observed::default();
    let network = dispatcher.network().clone();
    let mut edge_revision = None;
    let started = SystemTime::now();
    let mut changes = store.changes();
    let mut live = fleet.changes();
    let mut connections = fleet.connections();
    let mut images = images::ImageCache::new(registry);
    let mut hpa_history = HashMap::new();
    let mut backoff = backoff::Backoff::default();
    let lb = edge.lb.clone();
    let mut lb_changes = lb.as_ref().map(|l| l.changes());
    let mut busy = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let world = World {
            store: &store,
            fleet: &fleet,
            config: &config,
            started,
            lb: lb.as_deref(),
        };
        let (wrote, settled) =
            match round(&world, &mut images, &mut hpa_history, &mut backoff, &events).await {
                Ok((w, snap)) => {
                    for o in observed.observe(&snap, SystemTime::now()) {
                        events.record_occurrence(o);
                    }
                    (w, Some(snap))
                }
                Err(e) if e.store_closed() => return,
                Err(e) => {
                    tracing::warn!(error = %e, "control round failed; retrying");
                    (0, None)
                }
            };
        if wrote > 0 && busy < MAX_BUSY_ROUNDS {
            busy += 1;
            continue;
        }
        if busy >= MAX_BUSY_ROUNDS {
            tracing::warn!(rounds = busy, "controllers keep writing; pausing a tick");
        }
        busy = 0;
        // Dispatch from the settled state: the round's own snapshot when it
        // wrote nothing (later writes wake the loop again).
        let snap = match settled.filter(|_| wrote == 0) {
            Some(s) => Ok(s),
            None => Snapshot::read(&store),
        };
        match snap {
            Ok(snap) => {
                if edge_revision != Some(snap.revision) {
                    edge_revision = Some(snap.revision);
                    edge.refresh(&snap, &network);
                }
                let conn = *connections.borrow_and_update();
                dispatcher.round(&snap, &fleet, conn, Instant::now()).await;
            }
            Err(e) => tracing::warn!(error = %e, "reading the store for dispatch failed"),
        }
        if let Some(lb) = &lb {
            lb.retry();
        }
        tokio::select! {
            r = changes.recv() => {
                if let Err(broadcast::error::RecvError::Closed) = r {
                    return;
                }
            }
            _ = live.changed() => {}
            _ = connections.changed() => {}
            _ = changed(&mut lb_changes) => {}
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(config.tick) => {}
        }
        // Let a burst of writes (an apply of many objects) land first.
        tokio::time::sleep(Duration::from_millis(2)).await;
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = changes.try_recv() {}
    }
}

/// Resolves when `rx` has a new value; never without one.
async fn changed<T>(rx: &mut Option<watch::Receiver<T>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Why a round failed: reading the store, an action, or binding a pod.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Apply(#[from] applier::ActionFailed),
}

impl RoundError {
    /// The store is shutting down: the loop ends.
    fn store_closed(&self) -> bool {
        matches!(
            self,
            RoundError::Store(StoreError::Closed)
                | RoundError::Apply(applier::ActionFailed {
                    source: applier::ApplyError::Store(StoreError::Closed),
                    ..
                })
        )
    }
}

/// What a round reads besides the store's objects.
struct World<'a> {
    store: &'a Store,
    fleet: &'a Fleet,
    config: &'a ControlConfig,
    /// When the loop started (agents not heard from since get a grace).
    started: SystemTime,
    lb: Option<&'a ServiceLb>,
}

/// One planning round; returns how many writes it made.
async fn round(
    world: &World<'_>,
    images: &mut images::ImageCache,
    hpa_history: &mut HashMap<String, Vec<(SystemTime, i32)>>,
    backoff: &mut backoff::Backoff,
    events: &Recorder,
) -> Result<(usize, Snapshot), RoundError> {
    let World {
        store,
        fleet,
        config,
        started,
        lb,
    } = *world;
    let snap = Snapshot::read(store)?;
    let now = SystemTime::now();
    let images = &images.for_round(&snap, Instant::now());
    let live = fleet.snapshot();
    let running: Vec<Vec<PodRef>> = snap
        .nodes
        .iter()
        .map(|n| {
            live.get(n.name())
                .map(|l| l.running.clone())
                .unwrap_or_default()
        })
        .collect();
    let health: Vec<NodeHealth<'_>> = snap
        .nodes
        .iter()
        .zip(&running)
        .map(|(n, running)| match live.get(n.name()) {
            // Known agent: what it last said.
            Some(l) => NodeHealth {
                node: n,
                last_heartbeat: l.last_heartbeat.or(Some(started)),
                online: l.online,
                running,
            },
            // Not heard from since the hub started: give it the grace.
            None => NodeHealth {
                node: n,
                last_heartbeat: Some(started),
                online: true,
                running,
            },
        })
        .collect();
    let mut actions = plan_nodes(&config.lifecycle, &health, &snap.pods, now);
    let gate = pod_security::Gate::new(&config.pod_security, &snap.namespaces);
    actions.extend(plan_gc(GcInput {
        pods: &snap.pods,
        replica_sets: &snap.replica_sets,
        deployments: &snap.deployments,
        daemonsets: &snap.daemonsets,
        jobs: &snap.jobs,
        cron_jobs: &snap.cron_jobs,
        statefulsets: &snap.statefulsets,
        revisions: &snap.revisions,
    }));
    for d in &snap.deployments {
        let ns = d.metadata.namespace_or_default();
        let pods = snap.pods_in(ns);
        let replica_sets = snap.replica_sets_in(ns);
        let refused = gate.refusal(ns, &d.spec.template);
        actions.extend(plan_deployment(DeploymentInput {
            deployment: d,
            pods: &pods,
            replica_sets: &replica_sets,
            revisions: &snap.revisions,
            refused: refused.as_deref(),
            now,
        }));
    }
    for ds in &snap.daemonsets {
        let ns = ds.metadata.namespace_or_default();
        let pods = snap.pods_in(ns);
        let refused = gate.refusal(ns, &ds.spec.template);
        actions.extend(plan_daemonset(DaemonSetInput {
            daemonset: ds,
            nodes: &snap.nodes,
            pods: &pods,
            images,
            refused: refused.as_deref(),
            now,
        }));
    }
    // Pods by namespace, read once for every Job (a CronJob keeps several).
    let mut job_namespaces: BTreeMap<&str, Vec<Pod>> = BTreeMap::new();
    for job in &snap.jobs {
        let ns = job.metadata.namespace_or_default();
        let pods = job_namespaces.entry(ns).or_insert_with(|| snap.pods_in(ns));
        let refused = gate.refusal(ns, &job.spec.template);
        actions.extend(plan_job(JobInput {
            job,
            pods,
            refused: refused.as_deref(),
            now,
        }));
    }
    for cron_job in &snap.cron_jobs {
        let ns = cron_job.metadata.namespace_or_default();
        let jobs: Vec<_> = snap
            .jobs
            .iter()
            .filter(|j| j.namespace() == ns)
            .cloned()
            .collect();
        actions.extend(plan_cronjob(CronJobInput {
            cron_job,
            jobs: &jobs,
            now,
        }));
    }
    for sts in &snap.statefulsets {
        let ns = sts.metadata.namespace_or_default();
        let pods = snap.pods_in(ns);
        let claims = snap.claims_in(ns);
        let refused = gate.refusal(ns, &sts.spec.template);
        actions.extend(plan_statefulset(StatefulSetInput {
            statefulset: sts,
            pods: &pods,
            claims: &claims,
            refused: refused.as_deref(),
            now,
        }));
    }
    actions.extend(autoscale(&snap, &live, hpa_history, now));
    let reclaimed: BTreeMap<String, std::collections::BTreeSet<String>> = live
        .iter()
        .filter(|(_, l)| !l.reclaimed.is_empty())
        .map(|(n, l)| (n.clone(), l.reclaimed.clone()))
        .collect();
    let volume_usage: BTreeMap<String, BTreeMap<String, u64>> = live
        .iter()
        .filter(|(_, l)| !l.volume_usage.is_empty())
        .map(|(n, l)| (n.clone(), l.volume_usage.clone()))
        .collect();
    actions.extend(plan_volumes(VolumeInput {
        claims: &snap.claims,
        volumes: &snap.volumes,
        classes: &snap.storage_classes,
        pods: &snap.pods,
        nodes: &snap.nodes,
        reclaimed: &reclaimed,
        usage: &volume_usage,
        now,
    }));
    actions.extend(plan_endpoints(EndpointsInput {
        services: &snap.services,
        pods: &snap.pods,
        endpoints: &snap.endpoints,
    }));
    if let Some(lb) = lb {
        actions.extend(plan_load_balancers(LoadBalancerInput {
            services: &snap.services,
            plan: &LbPlan::build(&snap.services),
            failures: &lb.failures(),
            ingress: lb.ingress(),
            nodes: &snap.nodes,
            now,
        }));
    }
    let mut wrote = applier::apply(store, actions, events, backoff, Instant::now()).await?;
    if wrote == 0 {
        wrote += bind::schedule_pending(store, &snap, images, events).await?;
    }
    Ok((wrote, snap))
}

/// Longest stabilization window kept in the autoscalers' history.
const HPA_HISTORY: Duration = Duration::from_secs(3600);

/// Plans every HorizontalPodAutoscaler from the agents' usage, keeping each
/// one's recommendations for its stabilization windows.
fn autoscale(
    snap: &Snapshot,
    live: &BTreeMap<String, NodeLive>,
    history: &mut HashMap<String, Vec<(SystemTime, i32)>>,
    now: SystemTime,
) -> Vec<Action> {
    let metrics: HashMap<String, PodMetrics> = live
        .values()
        .flat_map(|l| l.pod_metrics.iter().map(|(k, m)| (k.clone(), *m)))
        .collect();
    let mut actions = Vec::new();
    history.retain(|k, _| {
        snap.autoscalers
            .iter()
            .any(|h| h.metadata.key().to_string() == *k)
    });
    for h in &snap.autoscalers {
        let key = h.metadata.key().to_string();
        let target = &h.spec.scale_target_ref;
        let deployment = snap.deployments.iter().find(|d| {
            target.kind == "Deployment"
                && d.metadata.namespace_or_default() == h.namespace()
                && d.metadata.name == target.name
        });
        let pods = snap.pods_in(h.namespace());
        let replica_sets = snap.replica_sets_in(h.namespace());
        let past = history.entry(key).or_default();
        let plan = plan_hpa(HpaInput {
            hpa: h,
            deployment,
            pods: &pods,
            replica_sets: &replica_sets,
            metrics: &metrics,
            history: past,
            now,
        });
        if let Some(r) = plan.recommendation {
            // One entry per second is plenty for windows counted in seconds.
            let recent = past.last().is_some_and(|(t, last)| {
                *last == r && now.duration_since(*t).unwrap_or_default() < Duration::from_secs(1)
            });
            if !recent {
                past.push((now, r));
            }
            past.retain(|(t, _)| *t + HPA_HISTORY > now);
        }
        actions.extend(plan.actions);
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::applier::{ActionFailed, ApplyError};
    use super::*;

    fn failed(e: StoreError) -> RoundError {
        RoundError::Apply(ActionFailed {
            action: "create pod default/a".into(),
            source: ApplyError::Store(e),
        })
    }

    #[test]
    fn a_closing_store_ends_the_loop_wherever_the_round_met_it() {
        assert!(RoundError::Store(StoreError::Closed).store_closed());
        assert!(failed(StoreError::Closed).store_closed());
        let gone = StoreError::NotFound {
            resource: snapshot::pods(),
            name: "a".into(),
        };
        assert!(!failed(gone).store_closed());
        assert!(
            !RoundError::Store(StoreError::Gone {
                requested: 1,
                oldest: 2
            })
            .store_closed()
        );
        assert_eq!(
            failed(StoreError::Closed).to_string(),
            "applying create pod default/a: the store is shutting down"
        );
    }
}
