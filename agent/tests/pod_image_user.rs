//! Containers whose image names its `USER` (on each backend, real
//! containers, root): the busybox fixture with one more layer holding an
//! `/etc/passwd` and `/etc/group` runs `USER app` as that user's uid,
//! primary gid and supplementary groups, `USER app:staff` with the named
//! group, and an image whose `/etc/passwd` is an absolute symlink reads
//! the file inside the image. An unknown user, an `/etc/passwd ->
//! /etc/passwd` loop (on the board it would be the board's file, which has
//! `root`) and a FIFO `/etc/passwd` fail the create with a message naming
//! what is wrong, leaving nothing mounted.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bramble_agent::pod::{ImageError, PodInputs, PodOptions, ResolvedImage, RunningPod};
use bramble_api::objects::pod_status::PodStatus;
use common::{Backend, PodEnv, PodGuard, image, mountinfo_mentions};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nappgrp:x:2345:\nstaff:x:3456:app\nvideo:x:44:other,app\n";

/// Extra layers (plain directories, as the layer store keeps them) and the
/// images made of busybox + one of them + a config `User`.
struct Images {
    _dir: tempfile::TempDir,
    /// reference -> (extra layer, config `User`)
    images: BTreeMap<String, (PathBuf, String)>,
}

impl Images {
    fn new() -> Images {
        let dir = tempfile::tempdir().unwrap();
        let layer = |name: &str, make: &dyn Fn(&Path)| {
            let etc = dir.path().join(name).join("etc");
            std::fs::create_dir_all(&etc).unwrap();
            make(&etc);
            dir.path().join(name)
        };
        let named = layer("named", &|etc| {
            std::fs::write(etc.join("passwd"), PASSWD).unwrap();
            std::fs::write(etc.join("group"), GROUP).unwrap();
        });
        let linked = layer("linked", &|etc| {
            std::fs::write(etc.join("passwd.image"), "app:x:4321:5432::/:/bin/sh\n").unwrap();
            std::os::unix::fs::symlink("/etc/passwd.image", etc.join("passwd")).unwrap();
        });
        let looped = layer("looped", &|etc| {
            std::os::unix::fs::symlink("/etc/passwd", etc.join("passwd")).unwrap();
        });
        let fifo = layer("fifo", &|etc| {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                etc.join("passwd"),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap();
        });
        let images = [
            ("app", &named, "app"),
            ("app-staff", &named, "app:staff"),
            ("ghost", &named, "ghost"),
            ("linked", &linked, "app"),
            ("looped", &looped, "root"),
            ("fifo", &fifo, "app"),
        ]
        .into_iter()
        .map(|(r, l, u)| (r.to_string(), (l.clone(), u.to_string())))
        .collect();
        Images { _dir: dir, images }
    }

    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        let (layer, user) = &self.images[reference];
        let base = image();
        let mut config = serde_json::to_value(&base.config).unwrap();
        config["config"]["User"] = user.clone().into();
        Ok(ResolvedImage {
            layers: base.layers.iter().cloned().chain([layer.clone()]).collect(),
            config: serde_json::from_value(config).unwrap(),
            size: 0,
        })
    }
}

fn start(env: &PodEnv, images: &Images, yaml: &str) -> Result<RunningPod, String> {
    let source = |r: &str| images.resolve(r);
    env.start_images(yaml, &PodInputs::default(), &PodOptions::default(), &source)
        .map_err(|e| e.to_string())
}

/// Prints who the process is: busybox `id` (names from the image's
/// files) and the kernel's supplementary groups (`setgroups` sorts them).
const WHO: &str = "id; grep ^Groups: /proc/self/status";

fn ended(s: &PodStatus, names: &[&str]) -> bool {
    names.iter().all(|name| {
        s.container_statuses
            .iter()
            .any(|c| c.name == *name && c.state.as_ref().is_some_and(|st| st.terminated.is_some()))
    })
}

fn named_users_run_with_the_images_ids(backend: Backend) {
    let env = PodEnv::new("user", backend);
    let images = Images::new();
    let pid = std::process::id();
    let yaml = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: user-{pid}}}
spec:
  restartPolicy: Never
  containers:
  - {{name: app, image: app, command: [sh, -c, "{WHO}"]}}
  - {{name: staff, image: app-staff, command: [sh, -c, "{WHO}"]}}
  - {{name: linked, image: linked, command: [sh, -c, "{WHO}"]}}
  - name: override
    image: app
    command: [sh, -c, "{WHO}"]
    securityContext: {{runAsUser: 77, runAsGroup: 88}}
"#
    );
    let mut pod = PodGuard(Some(start(&env, &images, &yaml).expect("start pod")));
    let names = ["app", "staff", "linked", "override"];
    pod.tick_until(Duration::from_secs(30), |s, _| ended(s, &names));
    let p = pod.pod();
    let log = |name: &str| {
        let text = std::fs::read_to_string(&p.container(name).unwrap().log_path).unwrap();
        let groups: Vec<String> = text
            .lines()
            .find_map(|l| l.strip_prefix("Groups:"))
            .unwrap_or_else(|| panic!("no Groups line in {name}'s log: {text}"))
            .split_whitespace()
            .map(String::from)
            .collect();
        (text.lines().next().unwrap_or_default().to_string(), groups)
    };
    let (id, groups) = log("app");
    assert!(id.starts_with("uid=1234(app) gid=2345(appgrp)"), "{id}");
    // The kernel keeps supplementary groups sorted.
    assert_eq!(groups, ["44", "3456"]);
    let (id, groups) = log("staff");
    assert!(id.starts_with("uid=1234(app) gid=3456(staff)"), "{id}");
    assert_eq!(groups, Vec::<String>::new());
    let (id, _) = log("linked");
    assert!(id.starts_with("uid=4321(app) gid=5432"), "{id}");
    let (id, groups) = log("override");
    assert!(id.starts_with("uid=77 gid=88"), "{id}");
    assert_eq!(groups, Vec::<String>::new());
}

fn unknown_and_hostile_passwd_fail_the_create(backend: Backend) {
    let env = PodEnv::new("baduser", backend);
    let images = Images::new();
    let pid = std::process::id();
    for (image, wanted) in [
        (
            "ghost",
            "unable to find user ghost: no matching entries in passwd file (the image's \
             /etc/passwd)",
        ),
        ("looped", "reading the image's /etc/passwd"),
        ("fifo", "the image's /etc/passwd is not a regular file"),
    ] {
        let yaml = format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: bad-{image}-{pid}}}
spec:
  containers:
  - {{name: c, image: {image}, command: [sleep, "100"]}}
"#
        );
        let err = start(&env, &images, &yaml).map(|_| ()).unwrap_err();
        assert!(err.contains(wanted), "{image}: {err}");
        assert!(err.contains("container \"c\""), "{image}: {err}");
        assert_eq!(mountinfo_mentions(&env.dirs.data), Vec::<String>::new());
        assert_eq!(env.container_cgroups(), Vec::<PathBuf>::new());
    }
}

both_backends!(
    named_users_run_with_the_images_ids,
    unknown_and_hostile_passwd_fail_the_create,
);
