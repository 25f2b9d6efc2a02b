//! A subPath cannot be swapped out of its volume between the agent's check
//! and the runtime's mount (CVE-2017-1002101): while a thread keeps
//! exchanging the subPath directory with a symlink to `/` (as another
//! container writing the same emptyDir could), the agent resolves the
//! volumeMount again and again and each result is bind-mounted the way a
//! runtime mounts it; what gets mounted is always the volume's directory,
//! never the host's root. Needs root (mounts); cleans up on failure too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bramble_agent::pod::{PodInputs, PodVolumes};
use bramble_agent::runtime::MountSpec;
use bramble_api::objects::container::Container;
use bramble_api::objects::volume::Volume;
use rustix::fs::{CWD, RenameFlags, renameat_with};
use rustix::mount::{UnmountFlags, mount_bind, unmount};

/// Unmounts `probe` and removes the volumes whatever happens.
struct Cleanup {
    volumes: Option<PodVolumes>,
    probe: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = unmount(&self.probe, UnmountFlags::DETACH);
        if let Some(v) = self.volumes.take() {
            v.remove().expect("removing the pod's volumes");
        }
    }
}

/// Exchanges the subPath directory and the symlink to `/`.
fn swap(vol: &Path) {
    renameat_with(
        CWD,
        vol.join("sub"),
        CWD,
        vol.join("alt"),
        RenameFlags::EXCHANGE,
    )
    .unwrap();
}

fn inode(p: &Path) -> (u64, u64) {
    let m = std::fs::metadata(p).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn a_subpath_swapped_for_a_symlink_to_root_never_mounts_the_root() {
    bramble_tests::require_root("mounts");
    let tmp = tempfile::tempdir().unwrap();
    let pod_dir = tmp.path().join("pod");
    let volumes: Vec<Volume> =
        serde_json::from_value(serde_json::json!([{"name": "data", "emptyDir": {}}])).unwrap();
    let container: Container = serde_json::from_value(serde_json::json!({
        "name": "app", "image": "busybox",
        "volumeMounts": [{"name": "data", "mountPath": "/data", "subPath": "sub"}]
    }))
    .unwrap();
    let v = PodVolumes::materialize(&pod_dir, &volumes, &PodInputs::default()).unwrap();
    let probe = tmp.path().join("probe");
    std::fs::create_dir(&probe).unwrap();
    let guard = Cleanup {
        volumes: Some(v),
        probe: probe.clone(),
    };
    let vol = pod_dir.join("volumes/data");
    std::fs::create_dir(vol.join("sub")).unwrap();
    std::os::unix::fs::symlink("/", vol.join("alt")).unwrap();
    let real = inode(&vol.join("sub"));
    let root = inode(Path::new("/"));
    let resolve_and_mount = || -> Option<(u64, u64)> {
        let mounts = guard
            .volumes
            .as_ref()
            .unwrap()
            .mounts_for(&container)
            .ok()?;
        let MountSpec::Bind { source, .. } = &mounts[0] else {
            panic!("{mounts:?}")
        };
        // What the runtime does with the source, a moment later.
        mount_bind(source, &probe).ok()?;
        let seen = inode(&probe);
        unmount(&probe, UnmountFlags::DETACH).unwrap();
        Some(seen)
    };
    // Both states on their own: the directory is mounted, the symlink refused.
    assert_eq!(resolve_and_mount(), Some(real), "the subPath directory");
    swap(&vol);
    assert_eq!(
        resolve_and_mount(),
        None,
        "a subPath that is a symlink to /"
    );
    swap(&vol);

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, vol) = (stop.clone(), vol.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                swap(&vol);
                swaps += 1;
            }
            swaps
        })
    };
    let (mut mounted, mut refused, mut escaped) = (0, 0, 0);
    for _ in 0..3000 {
        match resolve_and_mount() {
            None => refused += 1,
            Some(seen) if seen == root => escaped += 1,
            Some(seen) => {
                assert_eq!(seen, real, "mounted something else");
                mounted += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("mounted {mounted}, refused {refused}, escaped {escaped}, swaps {swaps}");
    assert_eq!(escaped, 0, "the host's root was mounted {escaped} times");
    // The swaps ran while the agent resolved (how the resolutions fell
    // between the two states is the scheduler's business).
    assert!(swaps > 0, "the swapper never ran");
    drop(guard);
    assert!(!pod_dir.join("volume-subpaths").exists());
}
