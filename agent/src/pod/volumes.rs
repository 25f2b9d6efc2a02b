//! A pod's volumes on the node (the env a container gets from ConfigMaps
//! and Secrets is [`super::env`]'s).
//!
//! Each volume is materialized under the pod's directory as
//! `POD_DIR/volumes/<name>` (hostPath excepted: its host path is used as is):
//!
//! | volume                     | on the node                                   |
//! |----------------------------|-----------------------------------------------|
//! | `emptyDir`                 | a directory on disk                           |
//! | `emptyDir` `medium: Memory`| a tmpfs mounted there (`sizeLimit` caps it)   |
//! | `hostPath`                 | the host path (`type` checked/created)        |
//! | `configMap`                | a directory of files (`items`, modes)         |
//! | `secret`                   | a tmpfs mounted by the agent, files written into it — never on disk |
//! | `persistentVolumeClaim`    | the claim's volume directory (`local-path`: made on first use, mode 0777) |
//!
//! configMap and secret files sit in the kubelet's `..data` layout
//! ([`super::atomic_dir`]), so a running pod's volumes can follow changed
//! data in place ([`super::volume_update`]).
//!
//! Containers see them through bind mounts ([`PodVolumes::mounts_for`]),
//! honouring `readOnly` and `subPath` (pinned race-free, [`super::subpath`]); configMap and secret volumes are
//! always read-only, as in Kubernetes. [`PodVolumes::remove`] unmounts the
//! tmpfses and removes the pod's volume directory.
//!
//! ConfigMap and Secret contents come in as plain maps ([`PodInputs`]), from
//! the hub's desired set or the local files.
//!
//! Over 600 lines, kept whole: about 520 are one concept, materializing,
//! mounting and removing the five volume kinds (they share the path checks,
//! tmpfs and error helpers), and the rest its tests.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use bramble_api::objects::container::Container;
use bramble_api::objects::volume::{DEFAULT_MODE, KeyToPath, Volume};
use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};

use super::atomic_dir::{self, VolumeFile};
use super::subpath;
use crate::runtime::MountSpec;

/// Key -> bytes, the data of one ConfigMap or Secret.
pub type DataMap = BTreeMap<String, Vec<u8>>;

/// The ConfigMaps, Secrets and claims' volumes a pod may reference, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInputs {
    pub config_maps: BTreeMap<String, DataMap>,
    pub secrets: BTreeMap<String, DataMap>,
    pub claims: BTreeMap<String, ClaimDir>,
}

/// Where a claim's volume is on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimDir {
    pub path: PathBuf,
    /// A `local-path` volume: the agent makes the directory on first use.
    /// Otherwise an administrator's, which must exist.
    pub provisioned: bool,
}

impl PodInputs {
    /// From inputs keyed `namespace/name` (a node's whole set), those of
    /// namespace `ns` keyed by bare name, as one pod resolves them: a pod
    /// never sees another namespace's ConfigMaps and Secrets.
    pub fn scoped(&self, ns: &str) -> PodInputs {
        let pick = |m: &BTreeMap<String, DataMap>| {
            m.iter()
                .filter_map(|(k, v)| {
                    let (kns, name) = k.split_once('/')?;
                    (kns == ns).then(|| (name.to_string(), v.clone()))
                })
                .collect()
        };
        PodInputs {
            config_maps: pick(&self.config_maps),
            secrets: pick(&self.secrets),
            claims: self
                .claims
                .iter()
                .filter_map(|(k, v)| {
                    let (kns, name) = k.split_once('/')?;
                    (kns == ns).then(|| (name.to_string(), v.clone()))
                })
                .collect(),
        }
    }
}

/// Size of a secret volume's tmpfs when the data is small (it is capped at
/// this or twice the data, whichever is larger).
const SECRET_TMPFS_MIN: u64 = 1 << 20;

/// Why a volume or env var could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume:?}: {what} {name:?} not found")]
    MissingSource {
        volume: String,
        what: &'static str,
        name: String,
    },
    #[error("volume {volume:?}: {what} {name:?} has no key {key:?}")]
    MissingKey {
        volume: String,
        what: &'static str,
        name: String,
        key: String,
    },
    #[error("volume {volume:?}: {reason}")]
    Invalid { volume: String, reason: String },
    #[error("volume {volume:?}: {op} {path}: {source}")]
    Io {
        volume: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("container {container:?}: volumeMount {mount:?}: {reason}")]
    Mount {
        container: String,
        mount: String,
        reason: String,
    },
    #[error("container {container:?}: env {var:?}: {what} {name:?} not found")]
    EnvMissingSource {
        container: String,
        var: String,
        what: &'static str,
        name: String,
    },
    #[error("container {container:?}: env {var:?}: {what} {name:?} has no key {key:?}")]
    EnvMissingKey {
        container: String,
        var: String,
        what: &'static str,
        name: String,
        key: String,
    },
    #[error("container {container:?}: env {var:?}: {reason}")]
    EnvInvalid {
        container: String,
        var: String,
        reason: String,
    },
}

/// One materialized volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Materialized {
    /// What containers bind-mount.
    pub(super) host_path: PathBuf,
    /// configMap and secret volumes are read-only in containers.
    force_read_only: bool,
    /// A tmpfs the agent mounted at `host_path`.
    pub(super) tmpfs: bool,
}

/// A pod's volumes on the node. Remove with [`PodVolumes::remove`].
/// Serializable: the agent's pod record keeps it to adopt the pod.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PodVolumes {
    root: PathBuf,
    pub(super) volumes: BTreeMap<String, Materialized>,
}

impl PodVolumes {
    /// Materializes `volumes` under `pod_dir/volumes/`. On error whatever
    /// was made is removed again.
    pub fn materialize(
        pod_dir: &Path,
        volumes: &[Volume],
        inputs: &PodInputs,
    ) -> Result<PodVolumes, VolumeError> {
        let root = pod_dir.join("volumes");
        let mut made = PodVolumes {
            root: root.clone(),
            volumes: BTreeMap::new(),
        };
        std::fs::create_dir_all(&root).map_err(io_err("", "create", &root))?;
        for v in volumes {
            match made.materialize_one(v, inputs) {
                Ok(m) => {
                    made.volumes.insert(v.name.clone(), m);
                }
                Err(e) => {
                    // A half-made tmpfs volume is not in the map yet.
                    let dir = root.join(&v.name);
                    let _ = unmount(&dir, UnmountFlags::DETACH);
                    if let Err(e2) = made.remove() {
                        tracing::warn!(error = %e2, "cleanup after a failed volume setup");
                    }
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    fn materialize_one(&self, v: &Volume, inputs: &PodInputs) -> Result<Materialized, VolumeError> {
        let name = v.name.as_str();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(VolumeError::Invalid {
                volume: name.into(),
                reason: "the name must be a single path component".into(),
            });
        }
        let dir = self.root.join(name);
        if let Some(h) = &v.host_path {
            return host_path(name, &h.path, h.type_.as_deref().unwrap_or(""));
        }
        if let Some(c) = &v.persistent_volume_claim {
            return claim_dir(name, &c.claim_name, c.read_only == Some(true), inputs);
        }
        mkdir(name, &dir)?;
        if let Some(e) = &v.empty_dir {
            let memory = e.medium.as_deref() == Some("Memory");
            if memory {
                let size = e.size_limit.as_ref().and_then(|q| q.to_bytes().ok());
                mount_tmpfs(name, &dir, size, 0o1777)?;
            } else {
                set_mode(name, &dir, 0o1777)?;
            }
            return Ok(Materialized {
                host_path: dir,
                force_read_only: false,
                tmpfs: memory,
            });
        }
        if let Some(files) = projected_files(v, inputs)? {
            let secret = v.secret.is_some();
            if secret {
                let total: u64 = files.iter().map(|f| f.bytes.len() as u64 + 4096).sum();
                // The tmpfs is mounted before a single byte is written.
                mount_tmpfs(name, &dir, Some((2 * total).max(SECRET_TMPFS_MIN)), 0o755)?;
            } else {
                set_mode(name, &dir, 0o755)?;
            }
            atomic_dir::write_version(&dir, &files, false).map_err(io_err(name, "write", &dir))?;
            return Ok(Materialized {
                host_path: dir,
                force_read_only: true,
                tmpfs: secret,
            });
        }
        Err(VolumeError::Invalid {
            volume: name.into(),
            reason: "no supported source (emptyDir, hostPath, configMap, secret)".into(),
        })
    }

    /// The pod's directory (the volumes are in its `volumes/`).
    fn pod_dir(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    /// Where volume `name` is on the node.
    pub fn host_path(&self, name: &str) -> Option<&Path> {
        self.volumes.get(name).map(|m| m.host_path.as_path())
    }

    /// The runtime mounts for `container`'s `volumeMounts`, in order.
    pub fn mounts_for(&self, container: &Container) -> Result<Vec<MountSpec>, VolumeError> {
        let mut out = Vec::new();
        for (i, vm) in container.volume_mounts.iter().enumerate() {
            let bad = |reason: String| VolumeError::Mount {
                container: container.name.clone(),
                mount: vm.name.clone(),
                reason,
            };
            let m = self
                .volumes
                .get(&vm.name)
                .ok_or_else(|| bad("no such volume in the pod".into()))?;
            if !vm.mount_path.starts_with('/') {
                return Err(bad(format!(
                    "mountPath {:?} must be absolute",
                    vm.mount_path
                )));
            }
            let mut source = m.host_path.clone();
            if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
                if !is_relative_clean(sub) {
                    return Err(bad(format!(
                        "subPath {sub:?} must be relative without '..'"
                    )));
                }
                // Like kubelet: a missing subPath of a writable volume is
                // created as a directory. Opened beneath the volume and
                // pinned by a bind mount of the agent's (see `subpath`).
                // The container's name is a path component of the pinned
                // mount: refused unless it is exactly one (the hub validates
                // names; a desired set is not trusted to).
                if !is_relative_clean(&container.name) || container.name.contains('/') {
                    return Err(bad(format!(
                        "container name {:?} cannot name a directory",
                        container.name
                    )));
                }
                let fd = subpath::open_beneath(&m.host_path, sub, !m.force_read_only)
                    .map_err(|e| bad(e.to_string()))?;
                let pinned = subpath::target(self.pod_dir(), &vm.name, &container.name, i);
                subpath::bind(&fd, &pinned)
                    .map_err(|e| bad(format!("pinning subPath {sub:?}: {e}")))?;
                source = pinned;
            }
            out.push(MountSpec::Bind {
                source,
                destination: vm.mount_path.clone(),
                read_only: vm.read_only || m.force_read_only,
            });
        }
        Ok(out)
    }

    /// Unmounts the tmpfses and removes the volume directory (hostPath
    /// contents are never touched). Idempotent.
    pub fn remove(&self) -> Result<(), VolumeError> {
        let pinned = self.pod_dir().join(subpath::SUBPATHS_DIR);
        subpath::remove_all(self.pod_dir()).map_err(io_err("", "unmount subPaths in", &pinned))?;
        for (name, m) in &self.volumes {
            if m.tmpfs {
                match unmount(&m.host_path, UnmountFlags::DETACH) {
                    Ok(()) => {}
                    Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => {}
                    Err(e) => {
                        return Err(VolumeError::Io {
                            volume: name.clone(),
                            op: "unmount",
                            path: m.host_path.clone(),
                            source: e.into(),
                        });
                    }
                }
            }
        }
        // Never follow into a still-mounted tmpfs or a bind: remove_dir_all
        // does not cross into mounts' contents by itself, so check first.
        if self.root.exists() {
            std::fs::remove_dir_all(&self.root).map_err(io_err("", "remove", &self.root))?;
        }
        Ok(())
    }
}

/// The files a configMap or secret volume shows (none when an optional
/// source is missing); `None` for other volume kinds.
pub(super) fn projected_files(
    v: &Volume,
    inputs: &PodInputs,
) -> Result<Option<Vec<VolumeFile>>, VolumeError> {
    let (what, source, maps, items, mode, optional) = match (&v.config_map, &v.secret) {
        (Some(c), _) => (
            "ConfigMap",
            &c.name,
            &inputs.config_maps,
            &c.items,
            c.default_mode,
            c.optional == Some(true),
        ),
        (None, Some(s)) => (
            "Secret",
            &s.secret_name,
            &inputs.secrets,
            &s.items,
            s.default_mode,
            s.optional == Some(true),
        ),
        (None, None) => return Ok(None),
    };
    match maps.get(source) {
        Some(data) => select_items(&v.name, what, source, data, items, mode, optional).map(Some),
        None if optional => Ok(Some(Vec::new())),
        None => Err(VolumeError::MissingSource {
            volume: v.name.clone(),
            what,
            name: source.clone(),
        }),
    }
}

fn io_err<'a>(
    volume: &'a str,
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        volume: volume.into(),
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn mkdir(volume: &str, dir: &Path) -> Result<(), VolumeError> {
    std::fs::create_dir(dir).map_err(io_err(volume, "create", dir))
}

fn set_mode(volume: &str, path: &Path, mode: u32) -> Result<(), VolumeError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(volume, "chmod", path))
}

fn mount_tmpfs(volume: &str, dir: &Path, size: Option<u64>, mode: u32) -> Result<(), VolumeError> {
    let mut data = format!("mode={mode:o}");
    if let Some(s) = size {
        data.push_str(&format!(",size={s}"));
    }
    let data = std::ffi::CString::new(data).expect("no NUL");
    mount(
        "tmpfs",
        dir,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(|e| VolumeError::Io {
        volume: volume.into(),
        op: "mount a tmpfs on",
        path: dir.to_path_buf(),
        source: e.into(),
    })
}

/// A claim's volume: its directory, made for a `local-path` volume.
fn claim_dir(
    volume: &str,
    claim: &str,
    read_only: bool,
    inputs: &PodInputs,
) -> Result<Materialized, VolumeError> {
    let dir = inputs
        .claims
        .get(claim)
        .ok_or_else(|| VolumeError::MissingSource {
            volume: volume.into(),
            what: "persistentvolumeclaim",
            name: claim.into(),
        })?;
    if dir.provisioned {
        if !dir.path.is_dir() {
            std::fs::create_dir_all(&dir.path).map_err(io_err(volume, "create", &dir.path))?;
            // As k3s' local-path: any container user may write.
            set_mode(volume, &dir.path, 0o777)?;
        }
    } else if !dir.path.is_dir() {
        return Err(VolumeError::Invalid {
            volume: volume.into(),
            reason: format!(
                "the PersistentVolume's path {} is not a directory on this node",
                dir.path.display()
            ),
        });
    }
    Ok(Materialized {
        host_path: dir.path.clone(),
        force_read_only: read_only,
        tmpfs: false,
    })
}

fn host_path(volume: &str, path: &str, type_: &str) -> Result<Materialized, VolumeError> {
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(VolumeError::Invalid {
            volume: volume.into(),
            reason: format!("hostPath {path:?} must be absolute"),
        });
    }
    let meta = std::fs::metadata(&p).ok();
    let want = |ok: bool, what: &str| -> Result<(), VolumeError> {
        if ok {
            Ok(())
        } else {
            Err(VolumeError::Invalid {
                volume: volume.into(),
                reason: format!("hostPath {path:?} is not {what} (type {type_})"),
            })
        }
    };
    match type_ {
        "" => {}
        "DirectoryOrCreate" => {
            if meta.is_none() {
                std::fs::create_dir_all(&p).map_err(io_err(volume, "create", &p))?;
                set_mode(volume, &p, 0o755)?;
            } else {
                want(meta.as_ref().is_some_and(|m| m.is_dir()), "a directory")?;
            }
        }
        "Directory" => want(meta.as_ref().is_some_and(|m| m.is_dir()), "a directory")?,
        "FileOrCreate" => {
            if meta.is_none() {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(io_err(volume, "create", &p))?;
            } else {
                want(meta.as_ref().is_some_and(|m| m.is_file()), "a file")?;
            }
        }
        "File" => want(meta.as_ref().is_some_and(|m| m.is_file()), "a file")?,
        other => {
            use std::os::unix::fs::FileTypeExt;
            let ft = meta.as_ref().map(|m| m.file_type());
            let ok = match other {
                "Socket" => ft.is_some_and(|t| t.is_socket()),
                "CharDevice" => ft.is_some_and(|t| t.is_char_device()),
                "BlockDevice" => ft.is_some_and(|t| t.is_block_device()),
                _ => false,
            };
            want(ok, other)?;
        }
    }
    Ok(Materialized {
        host_path: p,
        force_read_only: false,
        tmpfs: false,
    })
}

/// A relative path of normal components only.
fn is_relative_clean(p: &str) -> bool {
    let p = Path::new(p);
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// The files of the selected keys of `data` (all keys when `items` is
/// empty), with `defaultMode` or the item's `mode`.
#[allow(clippy::too_many_arguments)]
fn select_items(
    volume: &str,
    what: &'static str,
    source: &str,
    data: &DataMap,
    items: &[KeyToPath],
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Vec<VolumeFile>, VolumeError> {
    let default_mode = default_mode.unwrap_or(DEFAULT_MODE) as u32 & 0o777;
    let selected: Vec<(&str, &str, u32)> = if items.is_empty() {
        data.keys()
            .map(|k| (k.as_str(), k.as_str(), default_mode))
            .collect()
    } else {
        let mut v = Vec::new();
        for it in items {
            if !data.contains_key(&it.key) {
                if optional {
                    continue;
                }
                return Err(VolumeError::MissingKey {
                    volume: volume.into(),
                    what,
                    name: source.into(),
                    key: it.key.clone(),
                });
            }
            let mode = it.mode.map(|m| m as u32 & 0o777).unwrap_or(default_mode);
            v.push((it.key.as_str(), it.path.as_str(), mode));
        }
        v
    };
    let mut files = Vec::new();
    for (key, rel, mode) in selected {
        if !is_relative_clean(rel) || rel.starts_with("..") {
            return Err(VolumeError::Invalid {
                volume: volume.into(),
                reason: format!("item path {rel:?} must be relative without '..'"),
            });
        }
        files.push(VolumeFile {
            path: PathBuf::from(rel),
            bytes: data[key].clone(),
            mode,
        });
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn inputs_are_scoped_to_the_pods_namespace() {
        let mut all = PodInputs::default();
        all.config_maps.insert(
            "a/cfg".into(),
            BTreeMap::from([("k".into(), b"A".to_vec())]),
        );
        all.config_maps.insert(
            "b/cfg".into(),
            BTreeMap::from([("k".into(), b"B".to_vec())]),
        );
        all.secrets.insert("b/s".into(), BTreeMap::new());
        let a = all.scoped("a");
        assert_eq!(a.config_maps["cfg"]["k"], b"A");
        assert!(a.secrets.is_empty());
        let b = all.scoped("b");
        assert_eq!(b.config_maps["cfg"]["k"], b"B");
        assert!(b.secrets.contains_key("s"));
    }

    use super::*;

    use crate::pod::test_fixtures::{inputs, pod};

    #[test]
    fn config_map_items_modes_and_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  volumes:
  - name: web
    configMap:
      name: web
      defaultMode: 0o600
      items: [{key: index.html, path: site/index.html}, {key: mode, path: m, mode: 0o444}]
  - name: scratch
    emptyDir: {}
  - name: gone
    configMap: {name: absent, optional: true}
  containers:
  - name: c
    image: busybox
    volumeMounts:
    - {name: web, mountPath: /www, subPath: site}
    - {name: scratch, mountPath: /data, subPath: a/b}
    - {name: gone, mountPath: /gone, readOnly: true}
"#);
        let v = PodVolumes::materialize(dir.path(), &p.spec.volumes, &inputs()).unwrap();
        let web = v.host_path("web").unwrap();
        assert_eq!(
            std::fs::read(web.join("site/index.html")).unwrap(),
            b"<h1>hi</h1>"
        );
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(web.join("site/index.html")), 0o600);
        assert_eq!(mode(web.join("m")), 0o444);
        let mounts = v.mounts_for(&p.spec.containers[0]).unwrap();
        // subPaths are pinned under the pod's volume-subpaths/ (see subpath.rs).
        let pinned = dir.path().join("volume-subpaths");
        assert_eq!(
            mounts[0],
            MountSpec::Bind {
                source: pinned.join("web/c/0"),
                destination: "/www".into(),
                read_only: true,
            }
        );
        assert_eq!(
            std::fs::read(pinned.join("web/c/0/index.html")).unwrap(),
            b"<h1>hi</h1>"
        );
        assert!(
            matches!(&mounts[1], MountSpec::Bind { source, read_only: false, .. }
            if *source == pinned.join("scratch/c/1") && source.is_dir())
        );
        assert!(web.parent().unwrap().join("scratch/a/b").is_dir());
        assert!(matches!(
            &mounts[2],
            MountSpec::Bind {
                read_only: true,
                ..
            }
        ));
        v.remove().unwrap();
        assert!(!dir.path().join("volumes").exists());
        assert!(!pinned.exists());
    }

    #[test]
    fn bad_sub_path_and_missing_sources_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  volumes:
  - {name: scratch, emptyDir: {}}
  containers:
  - name: c
    image: busybox
    volumeMounts:
    - {name: scratch, mountPath: /data, subPath: ../etc}
"#);
        let v = PodVolumes::materialize(dir.path(), &p.spec.volumes, &inputs()).unwrap();
        let err = v.mounts_for(&p.spec.containers[0]).unwrap_err().to_string();
        assert!(err.contains("subPath"), "{err}");
        // A container name that would lead the pinned mount out of the pod's
        // directory (the hub refuses it; the agent does not rely on that).
        let mut escaping = p.spec.containers[0].clone();
        escaping.name = "../../../tmp".into();
        escaping.volume_mounts[0].sub_path = Some("ok".into());
        let err = v.mounts_for(&escaping).unwrap_err().to_string();
        assert!(err.contains("cannot name a directory"), "{err}");
        assert!(!dir.path().join("volumes/scratch/ok").exists());
        v.remove().unwrap();
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  volumes:
  - {name: scratch, emptyDir: {}}
  - name: web
    configMap: {name: web, items: [{key: nokey, path: x}]}
  containers: [{name: c, image: busybox}]
"#);
        let err = PodVolumes::materialize(dir.path(), &p.spec.volumes, &inputs())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ConfigMap \"web\" has no key \"nokey\""),
            "{err}"
        );
        // Nothing left from the volumes made before the failure.
        assert!(!dir.path().join("volumes").exists());
    }

    #[test]
    fn secrets_and_memory_empty_dirs_are_tmpfs() {
        bramble_tests::require_root("tmpfs mounts");
        let dir = tempfile::tempdir().unwrap();
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  volumes:
  - name: creds
    secret: {secretName: creds, defaultMode: 0o400}
  - name: mem
    emptyDir: {medium: Memory, sizeLimit: 1Mi}
  containers: [{name: c, image: busybox}]
"#);
        let v = PodVolumes::materialize(dir.path(), &p.spec.volumes, &inputs()).unwrap();
        for name in ["creds", "mem"] {
            let fs = rustix::fs::statfs(v.host_path(name).unwrap()).unwrap();
            // The field types differ between libcs and architectures.
            #[allow(clippy::unnecessary_cast)]
            let (got, want) = (fs.f_type as i64, libc::TMPFS_MAGIC as i64);
            assert_eq!(got, want, "{name}");
        }
        let pw = v.host_path("creds").unwrap().join("password");
        assert_eq!(std::fs::read(&pw).unwrap(), b"s3cret");
        assert_eq!(
            std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777,
            0o400
        );
        v.remove().unwrap();
        assert!(!dir.path().join("volumes").exists());
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!info.contains(dir.path().to_str().unwrap()));
    }
}
