//! Starting a pod ([`RunningPod::start`]): its directories, its network,
//! IPC and UTS namespaces, with [`PodOptions::network`] its `eth0` (a routed
//! veth with the pod's address, `bramble_net::veth`) and `resolv.conf`,
//! its volumes, then every container resolved ([`super::prepare`]) and the
//! first ones launched ([`super::launch`]).
//!
//! The start never waits for a container: it resolves every container
//! (image, env, mounts: errors there fail the start), launches the first
//! init container (or, without init containers, the app containers) and
//! returns. The rest — the next init container, retries of a failed one,
//! the app containers once all init containers completed — is
//! [`RunningPod::tick`]'s (see [`super::supervise`]). On an error
//! everything made so far is removed ([`super::teardown`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bramble_api::objects::pod::Pod;

use super::error::PodError;
use super::netns::PodNetns;
use super::options::{ImageSource, PodAddress, PodDirs, PodOptions, RESOLV_CONF};
use super::prepare::Sources;
use super::run::{RunningPod, grace_period, pod_id};
use super::volumes::{PodInputs, PodVolumes};
use crate::runtime::Runtime;

impl RunningPod {
    /// Sets the pod up and launches its first init container, or its app
    /// containers if it has none, without waiting for any of them; the
    /// following steps are [`RunningPod::tick`]'s (see the module docs).
    /// On an error everything made so far is removed.
    pub fn start(
        runtime: Arc<dyn Runtime>,
        pod: &Pod,
        inputs: &PodInputs,
        images: &dyn ImageSource,
        dirs: &PodDirs,
        options: &PodOptions,
    ) -> Result<RunningPod, PodError> {
        let pod_id = pod_id(pod);
        let mut running = RunningPod {
            runtime,
            dir: dirs.data.join(&pod_id),
            log_dir: dirs.logs.join(&pod_id),
            pod_id,
            netns: None,
            link: None,
            volumes: None,
            containers: Vec::new(),
            failed_init: None,
            spec: pod.spec.clone(),
            restart_policy: pod.spec.restart_policy().parse().unwrap_or_default(),
            grace: grace_period(pod),
            start_time: SystemTime::now(),
            pod: pod.clone(),
            log_pump: options.log_pump.clone(),
            conditions: Vec::new(),
        };
        let src = Sources {
            pod,
            inputs,
            images,
            options,
        };
        match running.set_up(&src, dirs) {
            Ok(()) => Ok(running),
            Err(e) => {
                if let Err(c) = running.tear_down(Duration::ZERO) {
                    tracing::warn!(error = %c, "cleanup after a failed pod start");
                }
                Err(e)
            }
        }
    }

    /// Directories, namespaces, network, volumes, then the containers: all
    /// resolved, the first launched.
    fn set_up(&mut self, src: &Sources, dirs: &PodDirs) -> Result<(), PodError> {
        let pod = src.pod;
        let io_err = |op, path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| PodError::Io {
                pod: pod.name().to_string(),
                op,
                path,
                source,
            }
        };
        for d in [&self.dir, &self.log_dir] {
            std::fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        let netns = PodNetns::create(&dirs.netns, &self.pod_id, &pod_hostname(pod));
        self.netns = Some(netns.map_err(|source| PodError::Netns {
            pod: pod.name().to_string(),
            source,
        })?);
        if let Some(addr) = src.options.network
            && !pod.spec.host_network
        {
            self.connect(pod, addr)?;
            if let Some(dns) = &src.options.dns {
                let text = bramble_dns::pod_resolv_conf(
                    addr.gateway.into(),
                    pod.namespace(),
                    &dns.cluster_domain,
                );
                let path = self.dir.join(RESOLV_CONF);
                std::fs::write(&path, text).map_err(io_err("write", &path))?;
            }
        }
        let volumes = PodVolumes::materialize(&self.dir, &pod.spec.volumes, src.inputs);
        self.volumes = Some(volumes.map_err(|e| PodError::Volume {
            pod: pod.name().to_string(),
            source: Box::new(e),
        })?);
        self.prepare_and_launch(src)
    }

    /// Gives the pod's network namespace `eth0`, a veth with `addr` routed
    /// from the node.
    fn connect(&mut self, pod: &Pod, addr: PodAddress) -> Result<(), PodError> {
        let ns = self.netns.as_ref().expect("the namespace before its link");
        let key = ns.path().to_string_lossy();
        let host_if = bramble_net::veth::host_ifname(&key);
        // Recorded first: a failed create is undone by the tear-down.
        self.link = Some((host_if, addr));
        let link = bramble_net::veth::create(None, ns.path(), &key, addr.ip, addr.gateway);
        link.map(drop).map_err(|source| PodError::Network {
            pod: pod.name().to_string(),
            source,
        })
    }

    /// Resolves every container, init containers first, then launches the
    /// first init container, or all app containers if there is none.
    fn prepare_and_launch(&mut self, src: &Sources) -> Result<(), PodError> {
        let spec = &src.pod.spec;
        let has_init = !spec.init_containers.is_empty();
        for c in &spec.init_containers {
            self.prepare(src, c, true, has_init)?;
        }
        for c in &spec.containers {
            self.prepare(src, c, false, has_init)?;
        }
        let now = Instant::now();
        let first = if has_init {
            0..1
        } else {
            0..self.containers.len()
        };
        for i in first {
            self.create_and_start(i, now)?;
        }
        Ok(())
    }
}

/// The pod's hostname: `spec.hostname`, else the pod's name.
pub(super) fn pod_hostname(pod: &Pod) -> String {
    pod.spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.name().to_string())
}
