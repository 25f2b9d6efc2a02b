//! Resolving one container of a pod into what the runtime needs
//! ([`ContainerConfig`]): its image, env (ConfigMaps, Secrets, field refs),
//! volume mounts and the pod's `resolv.conf`, devices, container id, log
//! outputs (the log pump's FIFOs or a file), limits, security context (the
//! pod's user fields where the container sets none) and seccomp profile. The container is added to the pod not created yet
//! ([`super::launch`] creates it).

use std::path::{Path, PathBuf};

use bramble_api::objects::container::Container;
use bramble_api::objects::pod::Pod;
use bramble_images::{ProcessDefaults, ProcessUser, Rootfs, process_defaults};

use super::env::{PodIps, resolve_env};
use super::error::{ContainerError, PodError};
use super::life::Life;
use super::options::{ImageSource, PodOptions, RESOLV_CONF};
use super::run::{PodContainer, RunningPod, sanitize};
use super::start::pod_hostname;
use super::volumes::{PodInputs, VolumeError};
use crate::lifecycle::probe::ContainerProbes;
use crate::lifecycle::state::{ContainerRecord, WaitingReason};
use crate::runtime::{ContainerConfig, ContainerHandle, DeviceSpec, MAX_ID_LEN, MountSpec};

/// What a pod's containers are resolved from when it starts.
pub(super) struct Sources<'a> {
    pub pod: &'a Pod,
    /// Its ConfigMaps and Secrets.
    pub inputs: &'a PodInputs,
    pub images: &'a dyn ImageSource,
    pub options: &'a PodOptions,
}

impl RunningPod {
    /// Resolves one container (image, env, mounts, devices, log FIFOs) into
    /// its runtime config and adds it, not created yet (see the module docs).
    pub(super) fn prepare(
        &mut self,
        src: &Sources,
        c: &Container,
        init: bool,
        has_init: bool,
    ) -> Result<(), PodError> {
        let (pod, options) = (src.pod, src.options);
        let cerr = |source: ContainerError| PodError::Container {
            pod: pod.name().to_string(),
            container: c.name.clone(),
            source: Box::new(source),
        };
        let image = src
            .images
            .resolve(&c.image)
            .map_err(|reason| PodError::Image {
                pod: pod.name().to_string(),
                container: c.name.clone(),
                image: c.image.clone(),
                reason: Box::new(reason),
            })?;
        let env = resolve_env(pod, c, src.inputs, pod_ips(pod, options))
            .map_err(|e| volume_error(pod, e))?;
        let defaults = process_defaults(&image.config, &with_pod_security(pod, c), &env)
            .map_err(|e| cerr(e.into()))?;
        let image_user = match &defaults.user {
            ProcessUser::Lookup(spec) => Some(spec.clone()),
            ProcessUser::Ids { .. } => None,
        };
        let mounts = self.mounts(pod, c)?;
        let mut devices = Vec::new();
        for d in pod.devices() {
            devices.push(DeviceSpec::from_host(d).map_err(|e| cerr(ContainerError::Device(e)))?);
        }
        let read_only = c
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false);
        let id = self.runtime_id(c).map_err(cerr)?;
        // Where `create_and_start` prepares the rootfs.
        let rootfs_path = Rootfs::existing(self.dir.join("rootfs").join(&c.name), read_only).path();
        let log_path = self.log_dir.join(format!("{}.log", c.name));
        let (out, err) = self.log_outputs(&id, &log_path).map_err(cerr)?;
        let mut cfg = self.config(id.clone(), rootfs_path, defaults, (out, err), pod);
        apply_container(&mut cfg, c, options, read_only);
        cfg.mounts = mounts;
        cfg.devices = devices;
        cfg.seccomp = super::seccomp_profile::policy(pod, c, options.seccomp_dir.as_deref())
            .map_err(|e| cerr(e.into()))?;
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
            image_user,
            layers: image.layers,
            read_only,
            record,
            backoff: options.backoff.clone(),
            probes: ContainerProbes::default(),
        });
        Ok(())
    }

    /// The container's volume mounts, and the pod's `resolv.conf` at
    /// `/etc/resolv.conf` unless the container mounts its own there.
    fn mounts(&self, pod: &Pod, c: &Container) -> Result<Vec<MountSpec>, PodError> {
        let volumes = self.volumes.as_ref().expect("volumes before containers");
        let mut mounts = volumes.mounts_for(c).map_err(|e| volume_error(pod, e))?;
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
        Ok(mounts)
    }

    /// `<pod-id>_<container>`, if the runtime takes an id that long.
    fn runtime_id(&self, c: &Container) -> Result<String, ContainerError> {
        let id = format!("{}_{}", self.pod_id, sanitize(&c.name));
        if id.len() > MAX_ID_LEN {
            return Err(ContainerError::IdTooLong { id });
        }
        Ok(id)
    }

    /// Where container `id` writes stdout and stderr: the log pump's FIFOs
    /// (attached here), or straight into `log_path`.
    fn log_outputs(&self, id: &str, log_path: &Path) -> Result<(PathBuf, PathBuf), ContainerError> {
        match &self.log_pump {
            Some(pump) => match pump.attach(id, log_path) {
                Ok(f) => Ok((f.stdout, f.stderr)),
                Err(e) => Err(ContainerError::AttachLogs(e)),
            },
            None => Ok((log_path.to_path_buf(), log_path.to_path_buf())),
        }
    }

    /// The config of a process of the pod: the image's defaults as the
    /// container spec overrides them, in the pod's namespaces and hostname.
    fn config(
        &self,
        id: String,
        rootfs: PathBuf,
        defaults: ProcessDefaults,
        (out, err): (PathBuf, PathBuf),
        pod: &Pod,
    ) -> ContainerConfig {
        let mut cfg = ContainerConfig::new(id, rootfs, defaults.argv, out, err);
        cfg.env = defaults.env;
        cfg.cwd = defaults.cwd;
        // A name is looked up when the container is created (`launch`).
        if let ProcessUser::Ids { uid, gid } = defaults.user {
            cfg.uid = uid;
            cfg.gid = gid;
        }
        cfg.hostname = Some(pod_hostname(pod));
        cfg.netns_path = self.netns.as_ref().map(|n| n.path().to_path_buf());
        cfg.ipc_path = self.netns.as_ref().map(|n| n.ipc_path());
        cfg.uts_path = self.netns.as_ref().map(|n| n.uts_path());
        cfg
    }
}

/// The container's limits and security context (privileged, capabilities,
/// read-only root).
fn apply_container(cfg: &mut ContainerConfig, c: &Container, options: &PodOptions, ro: bool) {
    cfg.memory_limit_bytes = c.resources.memory_limit_bytes();
    cfg.cpu_limit_millis = c.resources.cpu_limit_millis();
    cfg.pids_limit = options.pids_limit;
    cfg.read_only_root = ro;
    if let Some(sc) = &c.security_context {
        cfg.privileged = sc.privileged.unwrap_or(false);
        if let Some(caps) = &sc.capabilities {
            cfg.capabilities_add = caps.add.clone();
            cfg.capabilities_drop = caps.drop.clone();
        }
    }
}

/// `c` with the pod's `securityContext` user fields where its own are
/// unset (Kubernetes' effective security context: the container's win).
fn with_pod_security(pod: &Pod, c: &Container) -> Container {
    let mut c = c.clone();
    if let Some(psc) = &pod.spec.security_context {
        let sc = c.security_context.get_or_insert_with(Default::default);
        sc.run_as_user = sc.run_as_user.or(psc.run_as_user);
        sc.run_as_group = sc.run_as_group.or(psc.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(psc.run_as_non_root);
    }
    c
}

/// The pod's addresses for env `fieldRef`s: a `hostNetwork` pod's is the
/// node's.
fn pod_ips(pod: &Pod, options: &PodOptions) -> PodIps {
    PodIps {
        pod: match (pod.spec.host_network, options.network) {
            (true, _) => options.host_ip,
            (false, a) => a.map(|a| a.ip),
        },
        host: options.host_ip,
    }
}

fn volume_error(pod: &Pod, e: VolumeError) -> PodError {
    PodError::Volume {
        pod: pod.name().to_string(),
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_user_fields_fill_the_containers_unset_ones() {
        let pod: Pod = serde_yaml_ng::from_str(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  securityContext: {runAsUser: 5, runAsGroup: 6, \
             runAsNonRoot: true}\n  containers:\n  - {name: a, image: x, securityContext: \
             {runAsUser: 7}}\n  - {name: b, image: x}\n",
        )
        .unwrap();
        let sc = |i: usize| with_pod_security(&pod, &pod.spec.containers[i]).security_context;
        let a = sc(0).unwrap();
        assert_eq!(
            (a.run_as_user, a.run_as_group, a.run_as_non_root),
            (Some(7), Some(6), Some(true))
        );
        let b = sc(1).unwrap();
        assert_eq!(
            (b.run_as_user, b.run_as_group, b.run_as_non_root),
            (Some(5), Some(6), Some(true))
        );
    }
}
