//! A whole pod on the libcontainer backend with real containers (root): the
//! issue's acceptance pod — a busybox httpd and a client sharing localhost
//! through the pod's network namespace, a ConfigMap-mounted page, a Secret
//! as env and as a tmpfs-only volume, an init container filling an emptyDir
//! — and that stopping it leaves no mount, namespace file or cgroup.

// statfs field types differ between libcs and architectures.
#![allow(clippy::unnecessary_cast)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use bramble_agent::pod::{PodDirs, PodInputs, PodOptions, RunPhase, RunningPod};
use bramble_agent::runtime::ExitStatus;
use bramble_agent::runtime::cgroup::CgroupFiles;
use bramble_agent::runtime::libcontainer::{LibcontainerOptions, LibcontainerRuntime};
use bramble_api::objects::pod::Pod;

/// One test at a time: libcontainer forks from this process (FINDINGS.md).
static SERIAL: Mutex<()> = Mutex::new(());

fn mountinfo_mentions(dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(d))
        .map(String::from)
        .collect()
}

fn is_mem_fs(p: &Path) -> bool {
    let fs = rustix::fs::statfs(p).unwrap();
    let t = fs.f_type as i64;
    t == libc::TMPFS_MAGIC as i64 || t == libc::OVERLAYFS_SUPER_MAGIC as i64
}

/// Files under `dir` on disk (not descending into tmpfs or overlay mounts;
/// overlay uppers are scanned where they live) that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if is_mem_fs(&d) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file()
                && let Ok(bytes) = std::fs::read(e.path())
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(e.path());
            }
        }
    }
    hits
}

/// Unmounts the test's tmpfs run dir and removes the cgroup parent, also
/// after a failed assertion.
struct Cleanup {
    run: PathBuf,
    cgroup_parent: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.run, rustix::mount::UnmountFlags::DETACH);
        if let Ok(cg) = CgroupFiles::detect(Path::new(&self.cgroup_parent)) {
            for (d, e) in cg.remove_leftovers() {
                eprintln!("cleanup: removing {}: {e}", d.display());
            }
        }
    }
}

#[test]
fn two_containers_share_localhost_with_config_map_secret_and_init() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    let tmp = tempfile::Builder::new()
        .prefix("bramble-pod-run-")
        .tempdir()
        .unwrap();
    // The agent's run dir (runtime state, netns files) is a tmpfs, as
    // /run is on a board; data and logs are on disk.
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    rustix::mount::mount(
        "tmpfs",
        &run,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        c"mode=0700,size=16m",
    )
    .unwrap();
    let cgroup_parent = format!("/bramble-test-pod-{pid}");
    let _cleanup = Cleanup {
        run: run.clone(),
        cgroup_parent: cgroup_parent.clone(),
    };
    let runtime = LibcontainerRuntime::new(LibcontainerOptions {
        root: run.join("runtime"),
        cgroup_parent: cgroup_parent.clone(),
    })
    .unwrap();
    let dirs = PodDirs {
        data: tmp.path().join("data"),
        logs: tmp.path().join("logs"),
        netns: run.join("netns"),
    };

    let secret = format!("s3cret-{pid}-7c1e9a");
    let page = format!("<h1>hello from bramble {pid}</h1>");
    let mut inputs = PodInputs::default();
    inputs.config_maps.insert(
        "site".into(),
        [("index.html".to_string(), page.clone().into_bytes())].into(),
    );
    inputs.secrets.insert(
        "creds".into(),
        [("password".to_string(), secret.clone().into_bytes())].into(),
    );
    let pod_name = format!("web-{pid}");
    let pod: Pod = serde_yaml_ng::from_str(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {pod_name}}}
spec:
  restartPolicy: Never
  volumes:
  - name: www
    configMap: {{name: site}}
  - name: creds
    secret: {{secretName: creds}}
  - name: shared
    emptyDir: {{}}
  initContainers:
  - name: prep
    image: busybox
    command: [sh, -c, "echo from-init > /shared/init.txt"]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  containers:
  - name: server
    image: busybox
    command: [httpd, -f, -p, "8080", -h, /www]
    volumeMounts: [{{name: www, mountPath: /www}}]
    resources: {{limits: {{memory: 64Mi, cpu: 500m}}}}
  - name: client
    image: busybox
    command:
    - sh
    - -c
    - |
      cat /shared/init.txt
      [ "$SECRET" = "$(cat /etc/creds/password)" ] && echo secret-env-matches-file
      echo "host=$(hostname)"
      for i in $(seq 1 50); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done
      exit 1
    env:
    - name: SECRET
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    volumeMounts:
    - {{name: creds, mountPath: /etc/creds}}
    - {{name: shared, mountPath: /shared, readOnly: true}}
"#
    ))
    .unwrap();

    let images = common::fixture_images();
    let mut running = RunningPod::start(
        &runtime,
        &pod,
        &inputs,
        &images,
        &dirs,
        &PodOptions {
            pids_limit: Some(64),
            ..Default::default()
        },
    )
    .expect("start pod");
    assert_eq!(running.failed_init(), None);
    let netns = running.netns_path().unwrap().to_path_buf();
    let pod_dir = running.dir().to_path_buf();
    assert!(netns.exists());

    let status = running
        .wait_container("client", Some(Duration::from_secs(30)))
        .unwrap();
    let client_log =
        std::fs::read_to_string(&running.container("client").unwrap().log_path).unwrap_or_default();
    let server_log =
        std::fs::read_to_string(&running.container("server").unwrap().log_path).unwrap_or_default();
    assert_eq!(
        status,
        Some(ExitStatus::Code(0)),
        "client log:\n{client_log}\nserver log:\n{server_log}"
    );
    assert!(client_log.contains(&page), "{client_log}");
    assert!(client_log.contains("from-init"), "{client_log}");
    assert!(
        client_log.contains("secret-env-matches-file"),
        "{client_log}"
    );
    assert!(
        client_log.contains(&format!("host={pod_name}")),
        "{client_log}"
    );
    running.poll().unwrap();
    // The server still runs, so the pod does too.
    assert_eq!(running.phase(), RunPhase::Running);

    // The secret is on a tmpfs and in no file on disk.
    let secret_dir = running.volumes().unwrap().host_path("creds").unwrap();
    let fs = rustix::fs::statfs(secret_dir).unwrap();
    let fs_type = fs.f_type as i64;
    assert_eq!(fs_type, libc::TMPFS_MAGIC as i64);
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("password")).unwrap(),
        secret
    );
    for d in [&dirs.data, &dirs.logs] {
        let hits = files_containing(d, secret.as_bytes());
        assert!(hits.is_empty(), "secret found on disk in {hits:?}");
    }

    let ended = running.stop(Duration::from_secs(2)).expect("stop pod");
    let names: Vec<&str> = ended.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["prep", "server", "client"]);
    assert_eq!(ended[0].1, ExitStatus::Code(0));
    assert_eq!(ended[2].1, ExitStatus::Code(0));

    // Nothing left: mounts, namespace file, pod dir, cgroups.
    assert_eq!(mountinfo_mentions(&pod_dir), Vec::<String>::new());
    assert!(!netns.exists());
    assert_eq!(mountinfo_mentions(&run.join("netns")), Vec::<String>::new());
    assert!(!pod_dir.exists());
    let cg = CgroupFiles::detect(Path::new(&cgroup_parent)).unwrap();
    let leftovers: Vec<PathBuf> = cg
        .existing_dirs()
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    assert_eq!(leftovers, Vec::<PathBuf>::new(), "container cgroups left");
}

#[test]
fn failing_init_container_fails_the_pod_and_starts_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    let tmp = tempfile::Builder::new()
        .prefix("bramble-pod-init-")
        .tempdir()
        .unwrap();
    let cgroup_parent = format!("/bramble-test-podinit-{pid}");
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let _cleanup = Cleanup {
        run: run.clone(),
        cgroup_parent: cgroup_parent.clone(),
    };
    let runtime = LibcontainerRuntime::new(LibcontainerOptions {
        root: run.join("runtime"),
        cgroup_parent,
    })
    .unwrap();
    let dirs = PodDirs {
        data: tmp.path().join("data"),
        logs: tmp.path().join("logs"),
        netns: run.join("netns"),
    };
    let pod: Pod = serde_yaml_ng::from_str(&format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: initfail-{pid}}}
spec:
  restartPolicy: Never
  initContainers:
  - {{name: boom, image: busybox, command: [sh, -c, "echo init-failed; exit 7"]}}
  containers:
  - {{name: app, image: busybox, command: [sleep, "100"]}}
"#
    ))
    .unwrap();
    let images = common::fixture_images();
    let mut running = RunningPod::start(
        &runtime,
        &pod,
        &PodInputs::default(),
        &images,
        &dirs,
        &PodOptions::default(),
    )
    .unwrap();
    assert_eq!(running.failed_init(), Some(("boom", ExitStatus::Code(7))));
    assert_eq!(running.phase(), RunPhase::Failed);
    assert!(running.container("app").is_none());
    running.poll().unwrap();
    let log = std::fs::read_to_string(&running.container("boom").unwrap().log_path).unwrap();
    assert_eq!(log, "init-failed\n");
    let pod_dir = running.dir().to_path_buf();
    running.stop(Duration::from_secs(1)).unwrap();
    assert!(!pod_dir.exists());
    assert_eq!(mountinfo_mentions(tmp.path()), Vec::<String>::new());
}
