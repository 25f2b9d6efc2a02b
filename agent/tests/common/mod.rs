//! Shared parts of the runtime tests and bench: the busybox fixture image
//! for this host's platform unpacked once into a layer cache, and a
//! [`Sandbox`] per test that prepares overlay rootfses in a temp dir, runs
//! containers under a cgroup parent of its own, and on drop (also after a
//! failed assertion) deletes its containers, unmounts and removes its
//! rootfses and removes its cgroup parent.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use bramble_agent::runtime::cgroup::CgroupFiles;
use bramble_agent::runtime::libcontainer::{LibcontainerOptions, LibcontainerRuntime};
use bramble_agent::runtime::{
    ContainerConfig, ContainerHandle, OciBinaryOptions, OciBinaryRuntime, Runtime,
};
use bramble_images::{BlobStore, Compression, Digest, LayerStore, Platform, Rootfs};
use oci_spec::image::ImageConfiguration;

/// The fixture image for this host: its config and its unpacked layers,
/// bottom first.
pub struct Image {
    pub config: ImageConfiguration,
    pub layers: Vec<PathBuf>,
}

/// The busybox image, unpacked once per process into a cache under
/// `target/tmp/` (an agent's layer cache would persist the same way).
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let cache = bramble_tests::workspace_root().join("target/tmp/agent-image-cache");
        let blobs = BlobStore::open(cache.join("blobs")).expect("blob store");
        let layers = LayerStore::open(cache.join("layers")).expect("layer store");
        let multi = bramble_tests::busybox::busybox_image().expect("busybox fixture image");
        let want = Platform::current();
        let img = multi
            .images
            .iter()
            .find(|i| Platform::new(&i.os, &i.arch, i.variant.as_deref()) == want)
            .unwrap_or_else(|| panic!("fixture has no image for {want:?}"));
        let config: ImageConfiguration =
            serde_json::from_slice(&img.config.bytes).expect("image config");
        let diff_ids = config.rootfs().diff_ids().clone();
        assert_eq!(diff_ids.len(), img.layers.len());
        let mut dirs = Vec::new();
        for (layer, diff_id) in img.layers.iter().zip(diff_ids) {
            let digest = blobs.put_bytes(&layer.bytes, None).expect("put layer");
            let diff_id: Digest = diff_id.parse().expect("diff_id");
            let dir = layers
                .ensure(&blobs, &digest, Compression::Gzip, &diff_id)
                .expect("unpack layer");
            dirs.push(dir);
        }
        Image {
            config,
            layers: dirs,
        }
    })
}

/// Which [`Runtime`] backend a [`Sandbox`] runs containers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// youki's libcontainer, in-process.
    Libcontainer,
    /// The OCI runtime binary backend driving `runc` (`BRAMBLE_OCI_RUNTIME`
    /// overrides the binary, e.g. `/usr/bin/crun`).
    Runc,
}

/// A backend plus what the tests inspect of it (paths of its state).
pub trait TestRuntime: Runtime {
    fn cgroup_files(&self, id: &str) -> bramble_agent::runtime::Result<CgroupFiles>;
    fn state_dir(&self, id: &str) -> PathBuf;
    fn bundle_dir(&self, id: &str) -> PathBuf;
}

macro_rules! test_runtime {
    ($t:ty) => {
        impl TestRuntime for $t {
            fn cgroup_files(&self, id: &str) -> bramble_agent::runtime::Result<CgroupFiles> {
                <$t>::cgroup_files(self, id)
            }
            fn state_dir(&self, id: &str) -> PathBuf {
                <$t>::state_dir(self, id)
            }
            fn bundle_dir(&self, id: &str) -> PathBuf {
                <$t>::bundle_dir(self, id)
            }
        }
    };
}
test_runtime!(LibcontainerRuntime);
test_runtime!(OciBinaryRuntime);

/// One test at a time per process: libcontainer clones from this process,
/// and a clone while other threads hold locks (malloc, stdio) is the hazard
/// FINDINGS.md warns about.
static SERIAL: Mutex<()> = Mutex::new(());

/// A test's private world; everything in it is removed on drop.
pub struct Sandbox {
    pub name: String,
    pub runtime: Box<dyn TestRuntime>,
    pub backend: Backend,
    pub cgroup_parent: String,
    rootfses: Mutex<Vec<Rootfs>>,
    handles: Mutex<Vec<ContainerHandle>>,
    tmp: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Sandbox {
    /// A sandbox running containers with the libcontainer backend.
    pub fn new(name: &str) -> Sandbox {
        Sandbox::with_backend(name, Backend::Libcontainer)
    }

    pub fn with_backend(name: &str, backend: Backend) -> Sandbox {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let name = format!("{name}-{}", std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&format!("bramble-agent-{name}-"))
            .tempdir()
            .expect("tempdir");
        let cgroup_parent = format!("bramble-test-{name}");
        let runtime = make_runtime(backend, &tmp.path().join("runtime"), &cgroup_parent);
        Sandbox {
            name,
            runtime,
            backend,
            cgroup_parent,
            rootfses: Mutex::new(Vec::new()),
            handles: Mutex::new(Vec::new()),
            tmp,
            _serial: serial,
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Another runtime instance on the same state directories and cgroup
    /// parent, as a restarted agent would open them.
    pub fn fresh_runtime(&self) -> Box<dyn TestRuntime> {
        make_runtime(
            self.backend,
            &self.tmp.path().join("runtime"),
            &self.cgroup_parent,
        )
    }

    /// A unique container id: `<test>-<pid>-<suffix>`.
    pub fn id(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    /// A config for container `suffix` running `argv` on a fresh overlay
    /// rootfs of the fixture image; logs at `DIR/logs/<id>.out|.err`.
    pub fn config(&self, suffix: &str, argv: &[&str]) -> ContainerConfig {
        let id = self.id(suffix);
        let rootfs = Rootfs::prepare(&image().layers, self.dir().join("rootfs").join(&id), false)
            .expect("prepare rootfs");
        let path = rootfs.path();
        self.rootfses.lock().unwrap().push(rootfs);
        let logs = self.dir().join("logs");
        let mut c = ContainerConfig::new(
            id.clone(),
            path,
            argv.iter().map(|s| s.to_string()).collect(),
            logs.join(format!("{id}.out")),
            logs.join(format!("{id}.err")),
        );
        c.env = vec!["PATH=/bin".into()];
        c
    }

    /// Creates and starts; the container is deleted on drop unless
    /// [`Sandbox::deleted`] says it already was.
    pub fn run(&self, config: &ContainerConfig) -> ContainerHandle {
        let h = self.runtime.create(config).expect("create");
        self.handles.lock().unwrap().push(h.clone());
        self.runtime.start(&h).expect("start");
        h
    }

    /// Marks `h` as deleted by the test itself.
    pub fn deleted(&self, h: &ContainerHandle) {
        self.handles.lock().unwrap().retain(|x| x.id != h.id);
    }

    pub fn stdout(&self, config: &ContainerConfig) -> String {
        std::fs::read_to_string(&config.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self, config: &ContainerConfig) -> String {
        std::fs::read_to_string(&config.stderr_path).unwrap_or_default()
    }

    /// The cgroup files of the sandbox's parent cgroup.
    pub fn parent_cgroup(&self) -> CgroupFiles {
        CgroupFiles::detect(Path::new(&format!("/{}", self.cgroup_parent))).expect("cgroup")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for h in self.handles.lock().unwrap().drain(..) {
            if let Err(e) = self.runtime.delete(&h) {
                eprintln!("sandbox cleanup: deleting {}: {e}", h.id);
            }
        }
        for r in self.rootfses.lock().unwrap().drain(..) {
            if let Err(e) = r.remove() {
                eprintln!("sandbox cleanup: removing rootfs: {e}");
            }
        }
        for (d, e) in self.parent_cgroup().remove_leftovers() {
            eprintln!("sandbox cleanup: removing {}: {e}", d.display());
        }
    }
}

/// A runtime of `backend` keeping its state under `root`.
pub fn make_runtime(backend: Backend, root: &Path, cgroup_parent: &str) -> Box<dyn TestRuntime> {
    let root = root.to_path_buf();
    match backend {
        Backend::Libcontainer => Box::new(
            LibcontainerRuntime::new(LibcontainerOptions {
                root,
                cgroup_parent: cgroup_parent.to_string(),
            })
            .expect("libcontainer runtime"),
        ),
        Backend::Runc => {
            let mut options = OciBinaryOptions::runc(root, cgroup_parent.to_string());
            if let Some(bin) = std::env::var_os("BRAMBLE_OCI_RUNTIME") {
                options.binary = bin.into();
            }
            Box::new(
                OciBinaryRuntime::new(options).expect("OCI binary runtime (is runc installed?)"),
            )
        }
    }
}

/// Whether process `pid` exists (and is not a zombie we forgot to reap).
pub fn process_exists(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok()
}

/// An image source giving the busybox fixture for every image reference.
pub fn fixture_images() -> impl bramble_agent::pod::ImageSource {
    |_: &str| -> Result<bramble_agent::pod::ResolvedImage, String> {
        let img = image();
        Ok(bramble_agent::pod::ResolvedImage {
            layers: img.layers.clone(),
            config: img.config.clone(),
        })
    }
}
