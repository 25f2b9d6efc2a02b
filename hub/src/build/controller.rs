//! The build controller: a task that starts each new Build (plans every
//! platform on a node that can build it, or fails it with why), follows
//! the nodes' reports, records their layers in the cache, writes the image
//! when a platform is done and the index and tag when all are, and writes
//! the Build's status as it goes. It wakes on store changes, on reports
//! and every few seconds. Running builds are held in memory: a restarted
//! hub plans them again (the steps already done are cache hits). A
//! platform whose node is lost (see [`super::lost`]) is planned again on
//! another node, or fails saying why.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bramble_api::ResourceInfo;
use bramble_api::objects::Node;
use bramble_api::objects::build::{Build, BuildStatus, BuildStepStatus, PlatformBuildStatus};
use bramble_api::objects::common::find_condition;
use bramble_api::protocol::{BuildJob, FEATURE_BUILD, LayerRef};
use bramble_dockerfile::BuildRequest;
use bramble_images::{Digest, Platform};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::Builds;
use super::bases::{self, BaseImage};
use super::image;
use super::plan::{PlanInput, PlatformPlan, Slot, plan_platform};
use super::progress;
use crate::network::table::has_feature;
use crate::registry::Registry;
use bramble_api::Selector;

use crate::store::{Store, StoreError};

/// How often the controller looks again without a wake-up.
const TICK: Duration = Duration::from_secs(2);

fn builds_resource() -> &'static ResourceInfo {
    bramble_api::resource::by_plural("bramble.dev", "v1", "builds").expect("registered")
}

fn nodes_resource() -> &'static ResourceInfo {
    bramble_api::resource::by_plural("", "v1", "nodes").expect("registered")
}

/// One platform of a running build.
struct Run {
    node: String,
    plan: PlatformPlan,
    /// The registry user of its job (none when everything was cached).
    user: Option<String>,
    /// Cache keys already recorded, with when their layers were made.
    recorded: BTreeMap<String, String>,
    steps: Vec<BuildStepStatus>,
    /// Its manifest, once written.
    manifest: Option<(Digest, u64)>,
    failed: Option<String>,
    platform: Platform,
}

impl Run {
    fn done(&self) -> bool {
        self.manifest.is_some() || self.failed.is_some()
    }
}

/// A build being followed.
struct Active {
    repo: String,
    tag: String,
    start_time: String,
    runs: Vec<Run>,
}

struct Controller {
    store: Store,
    registry: Arc<Registry>,
    builds: Arc<Builds>,
    active: HashMap<String, Active>,
    /// Users of the grants this controller issued and has not revoked.
    issued: BTreeSet<String>,
    /// A node not Ready for this long loses its jobs.
    node_lost_after: Duration,
}

/// What planning a platform reads from a Build, read once per start.
struct Inputs {
    repo: String,
    tag: String,
    df: bramble_dockerfile::Dockerfile,
    ctx: super::context::ContextIndex,
    context_blob: LayerRef,
}

/// Starts the controller; it ends when `shutdown` turns true or the store
/// closes. Jobs of a node not Ready for `node_lost_after` move.
pub fn spawn(
    store: Store,
    registry: Arc<Registry>,
    builds: Arc<Builds>,
    node_lost_after: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = store.changes();
        let mut c = Controller {
            store,
            registry,
            builds,
            active: HashMap::new(),
            issued: BTreeSet::new(),
            node_lost_after,
        };
        loop {
            if *shutdown.borrow() {
                return;
            }
            match c.round().await {
                Err(StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "build round failed; retrying"),
                Ok(()) => {}
            }
            tokio::select! {
                r = changes.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = r {
                        return;
                    }
                }
                _ = c.builds.wake.notified() => {}
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = changes.try_recv() {}
        }
    })
}

fn ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A Build that cannot start, and why.
struct Refused(String);

impl Controller {
    async fn round(&mut self) -> Result<(), StoreError> {
        let builds: Vec<Build> = self
            .store
            .list(builds_resource(), None, &Selector::default())?
            .items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let nodes: Vec<Node> = self
            .store
            .list(nodes_resource(), None, &Selector::default())?
            .items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let mut live = BTreeSet::new();
        // Statuses are written after the jobs are handed out, so the
        // dispatcher, woken by the writes, finds them.
        let mut writes: Vec<(&Build, BuildStatus)> = Vec::new();
        for b in &builds {
            let uid = b.metadata.uid.clone().unwrap_or_default();
            if b.finished() || uid.is_empty() {
                continue;
            }
            live.insert(uid.clone());
            if !self.active.contains_key(&uid) {
                match self.start(b, &uid, &nodes) {
                    Ok(a) => {
                        self.active.insert(uid.clone(), a);
                    }
                    Err(Refused(why)) => {
                        let status = BuildStatus {
                            phase: "Failed".into(),
                            message: Some(why),
                            start_time: Some(now()),
                            completion_time: Some(now()),
                            ..BuildStatus::default()
                        };
                        writes.push((b, status));
                        continue;
                    }
                }
            }
            self.move_lost(b, &uid, &nodes);
            self.advance(&uid, &nodes).await;
            let status = self.status_of(&uid);
            let finished = matches!(status.phase.as_str(), "Succeeded" | "Failed");
            writes.push((b, status));
            if finished {
                self.active.remove(&uid);
                live.remove(&uid);
            }
        }
        self.active.retain(|uid, _| live.contains(uid));
        self.publish_jobs();
        for (b, status) in writes {
            self.write_status(b, &status).await?;
        }
        Ok(())
    }

    /// Hands every unfinished run's job to its node; ends the grants of
    /// the others.
    fn publish_jobs(&mut self) {
        let mut jobs: BTreeMap<String, Vec<BuildJob>> = BTreeMap::new();
        let mut users = BTreeSet::new();
        for a in self.active.values() {
            for r in &a.runs {
                let Some(user) = &r.user else { continue };
                if r.done() {
                    continue;
                }
                let Some(grant) = self.builds.grants.get(user) else {
                    continue;
                };
                users.insert(user.clone());
                let mut job = r.plan.job.clone();
                job.grant = grant;
                jobs.entry(r.node.clone()).or_default().push(job);
            }
        }
        for list in jobs.values_mut() {
            list.sort_by(|a, b| (&a.uid, &a.platform).cmp(&(&b.uid, &b.platform)));
        }
        for gone in self.issued.difference(&users) {
            self.builds.grants.revoke(gone);
        }
        self.issued = users;
        self.builds.set_jobs(jobs);
    }

    async fn write_status(&self, b: &Build, status: &BuildStatus) -> Result<(), StoreError> {
        if b.status.as_ref() == Some(status) {
            return Ok(());
        }
        let Some(mut current) = self
            .store
            .get(builds_resource(), Some(b.namespace()), b.name())?
        else {
            return Ok(());
        };
        let status = serde_json::to_value(status).expect("status serializes");
        if current["status"] == status {
            return Ok(());
        }
        current["status"] = status;
        match self.store.update_status(builds_resource(), current).await {
            Ok(_) => Ok(()),
            Err(StoreError::Closed) => Err(StoreError::Closed),
            Err(e) => {
                tracing::debug!(build = %b.name(), error = %e, "build status not written; next round");
                Ok(())
            }
        }
    }

    /// Plans every platform of `b`.
    fn start(&self, b: &Build, uid: &str, nodes: &[Node]) -> Result<Active, Refused> {
        let x = self.inputs(b)?;
        let mut runs = Vec::new();
        for (i, p) in b.spec.platforms.iter().enumerate() {
            match self.plan_run(b, uid, i, p, &x, nodes) {
                Ok(run) => runs.push(run),
                Err(refused) => {
                    // The platforms planned before get no job: end their grants.
                    for user in runs.iter().filter_map(|r: &Run| r.user.as_ref()) {
                        self.builds.grants.revoke(user);
                    }
                    return Err(refused);
                }
            }
        }
        Ok(Active {
            repo: x.repo,
            tag: x.tag,
            start_time: b
                .status
                .as_ref()
                .and_then(|s| s.start_time.clone())
                .unwrap_or_else(now),
            runs,
        })
    }

    /// Plans again, elsewhere, each unfinished platform of `uid` whose node
    /// is lost; a platform no other node can take fails.
    fn move_lost(&mut self, b: &Build, uid: &str, nodes: &[Node]) {
        let now = SystemTime::now();
        let Some(a) = self.active.get(uid) else {
            return;
        };
        let lost: Vec<(usize, String)> = a
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.done())
            .filter(|(_, r)| {
                nodes.iter().any(|n| {
                    n.metadata.name == r.node && super::lost::is_lost(n, self.node_lost_after, now)
                })
            })
            .map(|(i, r)| (i, r.node.clone()))
            .collect();
        if lost.is_empty() {
            return;
        }
        let inputs = self.inputs(b);
        for (i, node) in lost {
            let planned = match (&inputs, b.spec.platforms.get(i)) {
                (Ok(x), Some(p)) => self.plan_run(b, uid, i, p, x, nodes),
                (Err(Refused(why)), _) => Err(Refused(why.clone())),
                (_, None) => Err(Refused("the Build's platforms changed".into())),
            };
            let secs = self.node_lost_after.as_secs();
            let Some(a) = self.active.get_mut(uid) else {
                return;
            };
            match planned {
                Ok(run) => {
                    tracing::info!(build = %b.name(), %node, to = %run.node, "build moved off a lost node");
                    a.runs[i] = run;
                }
                Err(Refused(why)) => {
                    a.runs[i].failed = Some(format!(
                        "node {node} has not been Ready for {secs}s and no other node can take the build: {why}"
                    ));
                }
            }
        }
    }

    /// Reads what planning needs: the context and its Dockerfile.
    fn inputs(&self, b: &Build) -> Result<Inputs, Refused> {
        let (repo, tag) = b.repository_and_tag();
        let digest: Digest = b
            .spec
            .context
            .digest
            .parse()
            .map_err(|e| Refused(format!("spec.context.digest: {e}")))?;
        let path = self.registry.blobs.path(&digest);
        if !self.registry.blobs.has(&digest) {
            return Err(Refused(format!(
                "the build context {digest} is not in the hub's registry (bramble build uploads it; run it again)"
            )));
        }
        let ctx =
            super::context::read(&path, b.dockerfile()).map_err(|e| Refused(e.to_string()))?;
        let df = bramble_dockerfile::parse(&ctx.dockerfile)
            .map_err(|e| Refused(format!("{}: {e}", b.dockerfile())))?;
        let context_blob = LayerRef {
            digest: digest.to_string(),
            diff_id: digest.to_string(),
            size: u64::try_from(b.spec.context.size).unwrap_or(0),
            media_type: "application/x-tar".into(),
        };
        Ok(Inputs {
            repo: repo.to_string(),
            tag: tag.to_string(),
            df,
            ctx,
            context_blob,
        })
    }

    fn plan_run(
        &self,
        b: &Build,
        uid: &str,
        index: usize,
        platform: &str,
        x: &Inputs,
        nodes: &[Node],
    ) -> Result<Run, Refused> {
        let (df, ctx, context_blob) = (&x.df, &x.ctx, &x.context_blob);
        let dp = bramble_dockerfile::Platform::parse(platform)
            .map_err(|e| Refused(format!("{platform}: {e}")))?;
        let ip: Platform = platform
            .parse()
            .map_err(|e| Refused(format!("{platform}: {e}")))?;
        let mut request = BuildRequest::new(dp);
        request.build_args = b.spec.build_args.clone();
        request.target = b.spec.target.clone();
        let dockerfile_err =
            |e: bramble_dockerfile::Error| Refused(format!("{}:{e}", b.dockerfile()));
        let mut images: BTreeMap<String, BaseImage> = BTreeMap::new();
        for r in bramble_dockerfile::plan::required_images(df, &request).map_err(dockerfile_err)? {
            let base =
                bases::resolve(&self.registry, &r, &ip).map_err(|e| Refused(e.to_string()))?;
            request.base_images.insert(r.clone(), base.config.clone());
            images.insert(r, base);
        }
        let plan = bramble_dockerfile::plan(df, &request).map_err(dockerfile_err)?;
        for r in &plan.images {
            if !images.contains_key(r) {
                let img =
                    bases::resolve(&self.registry, r, &ip).map_err(|e| Refused(e.to_string()))?;
                images.insert(r.clone(), img);
            }
        }
        let candidates: Vec<&Node> = nodes
            .iter()
            .filter(|n| ready(n) && has_feature(n, FEATURE_BUILD))
            .filter(|n| {
                crate::scheduler::platform::node_platform(n).is_some_and(|np| np.accepts(&ip))
            })
            .collect();
        if candidates.is_empty() {
            let mut can: BTreeMap<String, Vec<&str>> = BTreeMap::new();
            for n in nodes
                .iter()
                .filter(|n| ready(n) && has_feature(n, FEATURE_BUILD))
            {
                if let Some(np) = crate::scheduler::platform::node_platform(n) {
                    can.entry(np.to_string())
                        .or_default()
                        .push(n.metadata.name.as_str());
                }
            }
            let which = if can.is_empty() {
                "no Ready node runs builds".to_string()
            } else {
                format!(
                    "platforms that can build: {}",
                    can.iter()
                        .map(|(p, ns)| format!("{p} ({})", ns.join(", ")))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(Refused(format!(
                "no Ready node can build {platform}: {which}; builds run natively, so join a board of {platform} or build for another --platform"
            )));
        }
        let input = PlanInput {
            uid,
            build: &format!("{}/{}", b.namespace(), b.name()),
            platform: &dp_string(platform),
            plan: &plan,
            context: ctx,
            context_blob: context_blob.clone(),
            images: &images,
            no_cache: b.spec.no_cache,
        };
        let mut best: Option<(usize, String, PlatformPlan)> = None;
        for n in candidates {
            let name = n.metadata.name.clone();
            let p = plan_platform(&input, &|key| super::cache::get(&self.store, &name, key))
                .map_err(|e| Refused(e.to_string()))?;
            let hits = p.steps().filter(|s| s.cached.is_some()).count();
            if best.as_ref().is_none_or(|(h, _, _)| hits > *h) {
                best = Some((hits, name, p));
            }
        }
        let (_, node, plan) = best.expect("a candidate");
        let user = (!plan.all_cached()).then(|| {
            let user = format!("{}{uid}.{index}", super::grants::USER_PREFIX);
            self.builds.grants.issue(&user, b.repository_and_tag().0);
            user
        });
        Ok(Run {
            node,
            steps: Vec::new(),
            plan,
            user,
            recorded: BTreeMap::new(),
            manifest: None,
            failed: None,
            platform: ip,
        })
    }

    /// Reads the reports of a build's runs; writes what is finished.
    async fn advance(&mut self, uid: &str, nodes: &[Node]) {
        let Some(a) = self.active.get_mut(uid) else {
            return;
        };
        let single = a.runs.len() == 1;
        for run in &mut a.runs {
            if run.done() {
                continue;
            }
            if !nodes.iter().any(|n| n.metadata.name == run.node) {
                run.failed = Some(format!("node {} was deleted", run.node));
                continue;
            }
            let report = self.builds.report_of(&run.node, uid, &run.plan.platform);
            let blobs = &self.registry.blobs;
            let layer_ok = |l: &LayerRef| {
                l.digest
                    .parse::<Digest>()
                    .ok()
                    .and_then(|d| blobs.size(&d).ok().flatten())
                    == Some(l.size)
            };
            let p = progress::read(&run.plan, report.as_ref(), &layer_ok);
            run.steps = p.steps.clone();
            let made = now();
            let new: Vec<(String, super::cache::Entry)> = p
                .layers
                .iter()
                .filter(|(k, _)| !run.recorded.contains_key(*k))
                .map(|(k, l)| {
                    let entry = super::cache::Entry {
                        layer: l.clone(),
                        created: made.clone(),
                    };
                    (k.clone(), entry)
                })
                .collect();
            if let Err(e) = super::cache::put(&self.store, &run.node, &new).await {
                tracing::warn!(error = %e, "build cache not recorded");
            } else {
                run.recorded
                    .extend(new.into_iter().map(|(k, e)| (k, e.created)));
            }
            if let Some(step) = p.bad_layers.first() {
                run.failed = Some(format!(
                    "{step}: node {} reported a layer the hub's registry does not hold",
                    run.node
                ));
                continue;
            }
            if let Some(r) = report.as_ref().filter(|r| r.phase == "Failed") {
                run.failed = Some(format!(
                    "{} on {}: {}",
                    run.plan.platform,
                    run.node,
                    r.message
                        .clone()
                        .unwrap_or_else(|| "the build failed".into())
                ));
                continue;
            }
            let finished =
                run.plan.all_cached() || report.as_ref().is_some_and(|r| r.phase == "Succeeded");
            if !finished {
                continue;
            }
            let layers: Option<Vec<LayerRef>> = run
                .plan
                .layers
                .iter()
                .map(|s| match s {
                    Slot::Known(l) => Some(l.clone()),
                    Slot::Step(k) => p.layers.get(k).cloned(),
                })
                .collect();
            let Some(layers) = layers else {
                run.failed = Some(format!(
                    "{} on {}: the node finished without reporting every layer",
                    run.plan.platform, run.node
                ));
                continue;
            };
            match write_image(
                &self.registry,
                &a.repo,
                (single).then_some(a.tag.as_str()),
                run,
                &layers,
            )
            .await
            {
                Ok(m) => run.manifest = Some(m),
                Err(e) => run.failed = Some(format!("writing the image: {e}")),
            }
        }
        let all_done = a.runs.iter().all(|r| r.manifest.is_some());
        if all_done && !single && a.runs.iter().all(|r| r.manifest.is_some()) {
            // Several platforms: an index, tagged.
            let list: Vec<(Digest, u64, Platform)> = a
                .runs
                .iter()
                .map(|r| {
                    let (d, s) = r.manifest.clone().expect("all done");
                    (d, s, r.platform.clone())
                })
                .collect();
            let doc = image::index(&list);
            match image::store(
                &self.registry,
                &a.repo,
                &doc,
                image::OCI_INDEX,
                Some(&a.tag),
            )
            .await
            {
                Ok(_) => {}
                Err(e) => {
                    if let Some(r) = a.runs.first_mut() {
                        r.failed = Some(format!("writing the image index: {e}"));
                        r.manifest = None;
                    }
                }
            }
        }
    }

    fn status_of(&self, uid: &str) -> BuildStatus {
        let Some(a) = self.active.get(uid) else {
            return BuildStatus::default();
        };
        let failed: Vec<&str> = a.runs.iter().filter_map(|r| r.failed.as_deref()).collect();
        let all_done = a.runs.iter().all(|r| r.manifest.is_some());
        let phase = if !failed.is_empty() {
            "Failed"
        } else if all_done {
            "Succeeded"
        } else {
            "Running"
        };
        let digest = if all_done && failed.is_empty() {
            self.registry
                .meta
                .tag(&a.repo, &a.tag)
                .ok()
                .flatten()
                .map(|d| d.to_string())
        } else {
            None
        };
        BuildStatus {
            phase: phase.into(),
            message: (!failed.is_empty()).then(|| failed.join("; ")),
            start_time: Some(a.start_time.clone()),
            completion_time: (phase != "Running").then(now),
            digest,
            platforms: a
                .runs
                .iter()
                .map(|r| PlatformBuildStatus {
                    platform: r.plan.platform.clone(),
                    node: Some(r.node.clone()),
                    phase: if r.failed.is_some() {
                        "Failed".into()
                    } else if r.manifest.is_some() {
                        "Succeeded".into()
                    } else {
                        "Running".into()
                    },
                    message: r.failed.clone(),
                    digest: r.manifest.as_ref().map(|(d, _)| d.to_string()),
                    steps: if r.steps.is_empty() {
                        progress::read(&r.plan, None, &|_| false).steps
                    } else {
                        r.steps.clone()
                    },
                })
                .collect(),
        }
    }
}

fn dp_string(platform: &str) -> String {
    bramble_dockerfile::Platform::parse(platform)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| platform.to_string())
}

/// Writes one platform's config and manifest (tagged when it is the only one).
async fn write_image(
    registry: &Registry,
    repo: &str,
    tag: Option<&str>,
    run: &Run,
    layers: &[LayerRef],
) -> Result<(Digest, u64), image::StoreImageError> {
    // Each step's layer is as old as the cache says (or as this run made
    // it); the image is as old as its newest layer. An image of cached
    // layers is so the same image, digest and all, every time it is built.
    let step_times: Vec<String> = run
        .plan
        .chain_steps
        .iter()
        .map(|s| match run.plan.source_date_epoch {
            Some(_) => image::created(run.plan.source_date_epoch),
            None => s
                .created
                .clone()
                .or_else(|| run.recorded.get(&s.key).cloned())
                .unwrap_or_else(now),
        })
        .collect();
    let base_created = run
        .plan
        .base_history
        .iter()
        .filter_map(|h| h["created"].as_str())
        .max()
        .map(str::to_string);
    let created = match run.plan.source_date_epoch {
        Some(_) => image::created(run.plan.source_date_epoch),
        None => step_times
            .iter()
            .max()
            .cloned()
            .or(base_created)
            .unwrap_or_else(now),
    };
    let mut history: Vec<Value> = run.plan.base_history.clone();
    history.extend(
        run.plan
            .chain_steps
            .iter()
            .zip(&step_times)
            .map(|(s, t)| image::history_entry(&s.text, t)),
    );
    let config = image::config(&run.platform, &run.plan.config, layers, &history, &created);
    let (cd, cs) = image::store_config(registry, &config)?;
    let manifest = image::manifest(&cd, cs, layers);
    image::store(registry, repo, &manifest, image::OCI_MANIFEST, tag).await
}
