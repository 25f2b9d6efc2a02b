//! Launching one container of a pod, first run or restart: a fresh overlay
//! rootfs of its image (a restarted container gets a new writable layer, as
//! in Kubernetes), the image's user looked up in it when it is a name
//! (`crate::image_root::etc_files::user_in_root`), its working directory
//! made when the image lacks it, then create and start in
//! the runtime under its container id. A failed attempt leaves nothing in the runtime or mounted.

use std::path::Path;
use std::time::{Instant, SystemTime};

use bramble_images::Rootfs;

use super::error::{ContainerError, PodError};
use super::run::{PodContainer, RunningPod};
use crate::image_root::etc_files::user_in_root;
use crate::image_root::in_root::make_dir_in_root;
use crate::lifecycle::probe::ContainerProbes;
use crate::runtime::{ContainerHandle, Runtime, RuntimeError};

impl RunningPod {
    /// Creates and starts container `i` (first run or a restart, under its
    /// container id) on a fresh overlay rootfs: the previous instance's
    /// rootfs, upper dir included, is removed first, as Kubernetes gives a
    /// restarted container a new writable layer. On an error nothing of the
    /// attempt is left in the runtime or mounted.
    pub(super) fn create_and_start(&mut self, i: usize, now: Instant) -> Result<(), PodError> {
        let pod = self.pod.name().to_string();
        let runtime_id = self.container_id(&self.containers[i].config.id);
        let c = &self.containers[i];
        if !c.life.can_create() {
            return Err(c.life.refuse("create").of(&pod, &c.name));
        }
        let rootfs = self.fresh_rootfs(i)?;
        let c = &mut self.containers[i];
        c.config.rootfs = rootfs.path();
        if let Some(spec) = &c.image_user {
            let user = user_in_root(&rootfs.path(), spec).map_err(|e| {
                if let Err(e) = rootfs.clone().remove() {
                    tracing::warn!(error = %e, "removing the rootfs of a failed create");
                }
                PodError::Container {
                    pod: pod.clone(),
                    container: c.name.clone(),
                    source: Box::new(ContainerError::User(e)),
                }
            })?;
            c.config.uid = user.uid;
            c.config.gid = user.gid;
            c.config.additional_gids = user.additional_gids;
        }
        // A working directory the image lacks is made (root's, 0755), as
        // runc and Docker make it; inside the root, as the container
        // resolves it. A read-only root is left to the runtime.
        let cwd = c.config.cwd.trim_start_matches('/');
        if !cwd.is_empty() && !c.read_only {
            make_dir_in_root(&rootfs.path(), cwd).map_err(|e| {
                if let Err(e) = rootfs.clone().remove() {
                    tracing::warn!(error = %e, "removing the rootfs of a failed create");
                }
                PodError::Container {
                    pod: pod.clone(),
                    container: c.name.clone(),
                    source: Box::new(ContainerError::Workdir {
                        cwd: c.config.cwd.clone(),
                        source: e,
                    }),
                }
            })?;
        }
        c.handle =
            create_in_runtime(&*self.runtime, c, rootfs).map_err(|source| PodError::Runtime {
                pod: pod.clone(),
                container: c.name.clone(),
                source,
            })?;
        c.life.created(now).map_err(|r| r.of(&pod, &c.name))?;
        c.record.set_running(runtime_id, SystemTime::now());
        c.probes = if c.init {
            ContainerProbes::default()
        } else {
            ContainerProbes::for_container(&c.spec, now)
        };
        tracing::debug!(pod = %self.pod_id, container = %c.name,
            restarts = c.record.restart_count, "container started");
        Ok(())
    }

    /// Removes container `i`'s previous rootfs if it has one (a restart:
    /// the last run's log becomes `--previous`), and prepares a new one.
    fn fresh_rootfs(&mut self, i: usize) -> Result<Rootfs, PodError> {
        let pod = self.pod.name();
        let c = &mut self.containers[i];
        let name = c.name.clone();
        let cerr = |source: ContainerError| PodError::Container {
            pod: pod.to_string(),
            container: name.clone(),
            source: Box::new(source),
        };
        if let Some(r) = c.rootfs.take() {
            r.remove()
                .map_err(|e| cerr(ContainerError::RemoveRootfs(e)))?;
            if let Some(pump) = &self.log_pump
                && let Err(e) = pump.new_run(&c.config.id)
            {
                tracing::warn!(pod = %pod, container = %name, error = %e,
                    "keeping the previous run's log");
            }
        }
        let dir = c
            .config
            .rootfs
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| c.config.rootfs.clone());
        Rootfs::prepare(&c.layers, &dir, c.read_only).map_err(|e| {
            if let Err(e) = bramble_images::rootfs::cleanup(&dir) {
                tracing::warn!(error = %e, "removing a half-prepared rootfs");
            }
            cerr(ContainerError::PrepareRootfs(e))
        })
    }
}

/// Creates and starts `c` on `rootfs` (which `c` keeps once created). On an
/// error what was created is deleted and the rootfs removed.
fn create_in_runtime(
    rt: &dyn Runtime,
    c: &mut PodContainer,
    rootfs: Rootfs,
) -> Result<ContainerHandle, RuntimeError> {
    let handle = rt.create(&c.config).inspect_err(|_| {
        if let Err(e) = rootfs.clone().remove() {
            tracing::warn!(error = %e, "removing the rootfs of a failed create");
        }
    })?;
    c.rootfs = Some(rootfs);
    if let Err(e) = rt.start(&handle) {
        match rt.delete(&handle) {
            Ok(_) => {
                if let Some(r) = c.rootfs.take()
                    && let Err(e) = r.remove()
                {
                    tracing::warn!(error = %e, "removing the rootfs of a failed start");
                }
            }
            Err(d) => {
                tracing::warn!(error = %d, "deleting a container that failed to start");
            }
        }
        return Err(e);
    }
    Ok(handle)
}
