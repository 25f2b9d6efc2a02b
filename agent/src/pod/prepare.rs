//! Resolving one container of a pod into what the runtime needs
//! ([`ContainerConfig`]): its image, env (ConfigMaps, Secrets, field refs),
//! volume mounts and the pod's `resolv.conf`, devices, container id, log
//! outputs (the log pump's FIFOs or a file), limits, security context and
//! seccomp profile. The container is added to the pod not created yet
//! ([`super::launch`] creates it).

use bramble_api::objects::container::Container;
use bramble_api::objects::pod::Pod;
use bramble_images::{Rootfs, process_defaults};

use super::error::PodError;
use super::life::Life;
use super::options::{ImageSource, PodOptions, RESOLV_CONF};
use super::run::{PodContainer, RunningPod, sanitize};
use super::start::pod_hostname;
use super::volumes::{PodInputs, PodIps, resolve_env};
use crate::lifecycle::probe::ContainerProbes;
use crate::lifecycle::state::{ContainerRecord, WaitingReason};
use crate::runtime::{ContainerConfig, ContainerHandle, DeviceSpec, MAX_ID_LEN, MountSpec};

impl RunningPod<'_> {
    /// Resolves one container (image, env, mounts, devices, log FIFOs) into
    /// its runtime config and adds it, not created yet (see the module docs).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare(
        &mut self,
        pod: &Pod,
        c: &Container,
        init: bool,
        has_init: bool,
        inputs: &PodInputs,
        images: &dyn ImageSource,
        options: &PodOptions,
    ) -> Result<(), PodError> {
        let pod_name = pod.name().to_string();
        let cerr = |reason: String| PodError::Container {
            pod: pod_name.clone(),
            container: c.name.clone(),
            reason,
        };
        let image = images.resolve(&c.image).map_err(|reason| PodError::Image {
            pod: pod_name.clone(),
            container: c.name.clone(),
            image: c.image.clone(),
            reason,
        })?;
        let volumes = self.volumes.as_ref().expect("volumes before containers");
        let ips = PodIps {
            pod: match (pod.spec.host_network, options.network) {
                (true, _) => options.host_ip,
                (false, a) => a.map(|a| a.ip),
            },
            host: options.host_ip,
        };
        let env = resolve_env(pod, c, inputs, ips).map_err(|e| PodError::Volume {
            pod: pod_name.clone(),
            source: Box::new(e),
        })?;
        let defaults = process_defaults(&image.config, c, &env).map_err(|e| cerr(e.to_string()))?;
        let mut mounts = volumes.mounts_for(c).map_err(|e| PodError::Volume {
            pod: pod_name.clone(),
            source: Box::new(e),
        })?;
        let resolv = self.dir.join(RESOLV_CONF);
        let user_resolv = c
            .volume_mounts
            .iter()
            .any(|m| m.mount_path.trim_end_matches('/') == "/etc/resolv.conf");
        if resolv.is_file() && !user_resolv {
            mounts.push(MountSpec::Bind {
                source: resolv,
                destination: "/etc/resolv.conf".into(),
                read_only: true,
            });
        }
        let mut devices = Vec::new();
        for d in pod.devices() {
            devices.push(DeviceSpec::from_host(d).map_err(|e| cerr(e.to_string()))?);
        }
        let read_only = c
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false);
        let id = format!("{}_{}", self.pod_id, sanitize(&c.name));
        if id.len() > MAX_ID_LEN {
            return Err(cerr(format!(
                "container id {id:?} is longer than {MAX_ID_LEN} bytes"
            )));
        }
        // Where `create_and_start` prepares the rootfs.
        let rootfs_path = Rootfs::existing(self.dir.join("rootfs").join(&c.name), read_only).path();
        let log_path = self.log_dir.join(format!("{}.log", c.name));
        let (out, err) = match &self.log_pump {
            Some(pump) => match pump.attach(&id, &log_path) {
                Ok(f) => (f.stdout, f.stderr),
                Err(e) => return Err(cerr(format!("attaching the log FIFOs: {e}"))),
            },
            None => (log_path.clone(), log_path.clone()),
        };
        let mut cfg = ContainerConfig::new(id.clone(), rootfs_path, defaults.argv, out, err);
        cfg.env = defaults.env;
        cfg.cwd = defaults.cwd;
        cfg.uid = defaults.uid;
        cfg.gid = defaults.gid;
        cfg.hostname = Some(pod_hostname(pod));
        cfg.memory_limit_bytes = c.resources.memory_limit_bytes();
        cfg.cpu_limit_millis = c.resources.cpu_limit_millis();
        cfg.pids_limit = options.pids_limit;
        cfg.read_only_root = read_only;
        cfg.netns_path = self.netns.as_ref().map(|n| n.path().to_path_buf());
        cfg.ipc_path = self.netns.as_ref().map(|n| n.ipc_path());
        cfg.uts_path = self.netns.as_ref().map(|n| n.uts_path());
        cfg.mounts = mounts;
        cfg.devices = devices;
        if let Some(sc) = &c.security_context {
            cfg.privileged = sc.privileged.unwrap_or(false);
            if let Some(caps) = &sc.capabilities {
                cfg.capabilities_add = caps.add.clone();
                cfg.capabilities_drop = caps.drop.clone();
            }
        }
        cfg.seccomp =
            super::seccomp_profile::policy(pod, c, options.seccomp_dir.as_deref()).map_err(cerr)?;
        let mut record = ContainerRecord::new(&c.name, &c.image);
        if has_init {
            record.set_waiting(WaitingReason::PodInitializing, None);
        }
        self.containers.push(PodContainer {
            name: c.name.clone(),
            init,
            handle: ContainerHandle { id, pid: 0 },
            log_path,
            life: Life::NotCreated,
            rootfs: None,
            spec: c.clone(),
            config: cfg,
            layers: image.layers,
            read_only,
            record,
            backoff: options.backoff.clone(),
            probes: ContainerProbes::default(),
        });
        Ok(())
    }
}
