//! ConfigMap and Secret changes reaching running pods, as in Kubernetes:
//! the files of their configMap/secret volumes are rewritten in place
//! through [`super::atomic_dir`] (containers see the old or the new
//! version, never a mix); env vars and subPath mounts keep what the
//! container started with. A source that went missing keeps the old files.

use std::collections::BTreeSet;

use bramble_api::objects::volume::Volume;
use rustix::mount::{MountFlags, mount_remount};

use super::atomic_dir::{self, VolumeFile};
use super::run::RunningPod;
use super::volumes::{PodInputs, PodVolumes, VolumeError, projected_files};

/// What [`PodVolumes::update_projected`] did to one volume.
#[derive(Debug, PartialEq, Eq)]
pub enum VolumeUpdate {
    /// New content written.
    Rewritten,
    /// Made by an older agent without the `..data` layout: left alone
    /// (the pod gets the new content when it is restarted).
    OldLayout,
}

impl PodVolumes {
    /// Rewrites the configMap and secret volumes among `volumes` whose
    /// content in `inputs` differs from what they show. Old versions are
    /// kept for volumes in `sub_path` (a subPath bind still shows one).
    /// Unchanged volumes are not listed.
    pub fn update_projected(
        &self,
        volumes: &[Volume],
        inputs: &PodInputs,
        sub_path: &BTreeSet<String>,
    ) -> Vec<(String, Result<VolumeUpdate, VolumeError>)> {
        let mut out = Vec::new();
        for v in volumes {
            let Some(m) = self.volumes.get(&v.name) else {
                continue;
            };
            let files = match projected_files(v, inputs) {
                Ok(Some(f)) => f,
                Ok(None) => continue,
                Err(e) => {
                    out.push((v.name.clone(), Err(e)));
                    continue;
                }
            };
            let io = |op: &'static str| {
                let (volume, path) = (v.name.clone(), m.host_path.clone());
                move |source: std::io::Error| VolumeError::Io {
                    volume,
                    op,
                    path,
                    source,
                }
            };
            let r = match atomic_dir::read_current(&m.host_path) {
                Err(e) => Err(io("read")(e)),
                Ok(None) => Ok(Some(VolumeUpdate::OldLayout)),
                Ok(Some(cur)) if cur == files => Ok(None),
                Ok(Some(_)) => (|| {
                    if m.tmpfs {
                        grow_tmpfs(&m.host_path, &files).map_err(io("grow the tmpfs"))?;
                    }
                    let keep_old = sub_path.contains(&v.name);
                    atomic_dir::write_version(&m.host_path, &files, keep_old)
                        .map_err(io("update"))?;
                    Ok(Some(VolumeUpdate::Rewritten))
                })(),
            };
            match r {
                Ok(Some(u)) => out.push((v.name.clone(), Ok(u))),
                Ok(None) => {}
                Err(e) => out.push((v.name.clone(), Err(e))),
            }
        }
        out
    }
}

/// Remounts a secret tmpfs larger when the new version (written next to
/// the old one) might not fit.
fn grow_tmpfs(dir: &std::path::Path, files: &[VolumeFile]) -> std::io::Result<()> {
    let need: u64 = files.iter().map(|f| f.bytes.len() as u64 + 4096).sum();
    let fs = rustix::fs::statfs(dir)?;
    // The field types differ between libcs and architectures.
    #[allow(clippy::unnecessary_cast)]
    let (size, free) = (
        fs.f_blocks as u64 * fs.f_bsize as u64,
        fs.f_bavail as u64 * fs.f_bsize as u64,
    );
    if free >= 2 * need {
        return Ok(());
    }
    let data = format!("size={}", size + 2 * need);
    mount_remount(dir, MountFlags::NOSUID | MountFlags::NODEV, data.as_str())?;
    Ok(())
}

impl RunningPod {
    /// Brings the pod's configMap and secret volumes up to `inputs` (see
    /// the module docs); logs and returns what changed.
    pub fn update_volumes(
        &self,
        inputs: &PodInputs,
    ) -> Vec<(String, Result<VolumeUpdate, VolumeError>)> {
        let Some(volumes) = &self.volumes else {
            return Vec::new();
        };
        let sub_path: BTreeSet<String> = self
            .spec
            .init_containers
            .iter()
            .chain(&self.spec.containers)
            .flat_map(|c| &c.volume_mounts)
            .filter(|m| m.sub_path.as_deref().is_some_and(|s| !s.is_empty()))
            .map(|m| m.name.clone())
            .collect();
        let out = volumes.update_projected(&self.spec.volumes, inputs, &sub_path);
        for (volume, r) in &out {
            match r {
                Ok(VolumeUpdate::Rewritten) => {
                    tracing::info!(pod = %self.pod_id, %volume, "volume updated in place")
                }
                Ok(VolumeUpdate::OldLayout) => tracing::debug!(pod = %self.pod_id, %volume,
                    "volume predates in-place updates; it changes when the pod restarts"),
                Err(error) => tracing::warn!(pod = %self.pod_id, %volume, %error,
                    "updating a volume failed; it keeps its previous content"),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::objects::pod::Pod;

    fn volumes(yaml: &str) -> Vec<Volume> {
        let p: Pod = serde_yaml_ng::from_str(yaml).unwrap();
        p.spec.volumes
    }

    fn inputs(index: &str) -> PodInputs {
        let mut i = PodInputs::default();
        i.config_maps.insert(
            "web".into(),
            [("index.html".to_string(), index.as_bytes().to_vec())].into(),
        );
        i
    }

    #[test]
    fn changed_config_maps_are_rewritten_and_missing_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let vols = volumes(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  volumes:
  - {name: web, configMap: {name: web}}
  - {name: opt, configMap: {name: later, optional: true}}
  - {name: scratch, emptyDir: {}}
  containers: [{name: c, image: busybox}]
"#,
        );
        let v = PodVolumes::materialize(dir.path(), &vols, &inputs("v1")).unwrap();
        let web = v.host_path("web").unwrap().to_path_buf();
        assert_eq!(std::fs::read(web.join("index.html")).unwrap(), b"v1");
        let none = BTreeSet::new();
        assert!(v.update_projected(&vols, &inputs("v1"), &none).is_empty());

        let mut next = inputs("v2");
        next.config_maps
            .insert("later".into(), [("k".to_string(), b"x".to_vec())].into());
        let got = v.update_projected(&vols, &next, &none);
        let names: Vec<_> = got
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_ref().ok()))
            .collect();
        assert_eq!(
            names,
            [
                ("web", Some(&VolumeUpdate::Rewritten)),
                ("opt", Some(&VolumeUpdate::Rewritten))
            ]
        );
        assert_eq!(std::fs::read(web.join("index.html")).unwrap(), b"v2");
        assert_eq!(
            std::fs::read(v.host_path("opt").unwrap().join("k")).unwrap(),
            b"x"
        );

        // The ConfigMap deleted: an error, the files stay.
        let got = v.update_projected(&vols, &PodInputs::default(), &none);
        assert!(matches!(&got[0], (n, Err(VolumeError::MissingSource { .. })) if n == "web"));
        assert_eq!(std::fs::read(web.join("index.html")).unwrap(), b"v2");
        v.remove().unwrap();
    }

    #[test]
    fn secret_tmpfs_grows_for_a_larger_version() {
        bramble_tests::require_root("tmpfs mounts");
        let dir = tempfile::tempdir().unwrap();
        let vols = volumes(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  volumes:
  - {name: creds, secret: {secretName: creds}}
  containers: [{name: c, image: busybox}]
"#,
        );
        let secret = |bytes: Vec<u8>| {
            let mut i = PodInputs::default();
            i.secrets
                .insert("creds".into(), [("key".to_string(), bytes)].into());
            i
        };
        let v = PodVolumes::materialize(dir.path(), &vols, &secret(b"small".to_vec())).unwrap();
        let big = vec![7u8; 3 << 20];
        let got = v.update_projected(&vols, &secret(big.clone()), &BTreeSet::new());
        assert!(
            matches!(&got[..], [(_, Ok(VolumeUpdate::Rewritten))]),
            "{got:?}"
        );
        let path = v.host_path("creds").unwrap().join("key");
        assert_eq!(std::fs::read(path).unwrap(), big);
        v.remove().unwrap();
    }
}
