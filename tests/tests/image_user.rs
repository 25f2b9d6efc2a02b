//! Images whose config names the user (`User: app`, `app:staff`), end to
//! end: the busybox fixture with one more layer holding an `/etc/passwd`
//! and `/etc/group` is pushed to the real hub's registry, pods run it on
//! the real agent as that user (uid, primary gid, supplementary groups
//! from the image's files), and a pod whose image names a user the image
//! does not have waits in `CreateContainerError` with runc's message.

use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::fixtures::{Blob, Entry, MultiImage, PlatformImage, layer_of, push};
use serde_json::{Value, json};

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/:/bin/sh\n";
const GROUP: &[u8] = b"root:x:0:\nappgrp:x:2345:\nstaff:x:3456:app\nvideo:x:44:other,app\n";

/// `img` with `layer` on top and `User: user` in its config.
fn with_user(img: &PlatformImage, layer: &(Blob, String), user: &str) -> PlatformImage {
    let mut cfg: Value = serde_json::from_slice(&img.config.bytes).unwrap();
    cfg["config"]["User"] = user.into();
    cfg["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(layer.1.clone().into());
    let config = Blob {
        media_type: img.config.media_type.clone(),
        bytes: serde_json::to_vec(&cfg).unwrap(),
    };
    let mut manifest: Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
    manifest["config"] = config.descriptor();
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(layer.0.descriptor());
    PlatformImage {
        config,
        layers: img
            .layers
            .iter()
            .cloned()
            .chain([layer.0.clone()])
            .collect(),
        manifest: Blob {
            media_type: img.manifest.media_type.clone(),
            bytes: serde_json::to_vec(&manifest).unwrap(),
        },
        ..img.clone()
    }
}

fn push_with_user(c: &Cluster, repo: &str, user: &str) {
    let busybox = bramble_tests::busybox::busybox_image().expect("busybox fixture image");
    let layer = layer_of(&[
        Entry::File("etc/passwd", PASSWD, 0o644),
        Entry::File("etc/group", GROUP, 0o644),
    ]);
    let image = MultiImage::new(
        busybox
            .images
            .iter()
            .map(|i| with_user(i, &layer, user))
            .collect(),
    );
    push(&c.hub.url, &c.hub.token, &c.hub.ca_pem(), repo, "1", &image).expect("pushing the image");
}

fn pod(c: &Cluster, name: &str, image: &str) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": image,
            "command": ["sh", "-c", "id; grep ^Groups: /proc/self/status"]}]}});
    let (code, v) = c.client().post("/api/v1/namespaces/default/pods", &pod);
    assert_eq!(code, 201, "{v}");
}

/// The pod's log once it ended.
fn logs_of(c: &Cluster, name: &str) -> String {
    let path = format!("/api/v1/namespaces/default/pods/{name}");
    let p = bramble_tests::try_eventually(Duration::from_secs(60), || {
        let (_, p) = c.client().get(&path);
        matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(p)
    })
    .unwrap_or_else(|e| {
        let (_, p) = c.client().get(&path);
        panic!("{e}: {p}")
    });
    let (_, logs) = c.cli(&["logs", name]);
    assert_eq!(p["status"]["phase"], "Succeeded", "{logs}\n{p}");
    logs
}

#[test]
fn pods_run_as_the_user_the_image_names() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    push_with_user(&c, "demo/app", "app");
    push_with_user(&c, "demo/staff", "app:staff");
    push_with_user(&c, "demo/ghost", "ghost");
    pod(&c, "app", "demo/app:1");
    pod(&c, "staff", "demo/staff:1");
    pod(&c, "ghost", "demo/ghost:1");

    let logs = logs_of(&c, "app");
    assert!(logs.contains("uid=1234(app) gid=2345(appgrp)"), "{logs}");
    // Supplementary groups, as the kernel keeps them (sorted).
    assert!(logs.contains("Groups:\t44 3456"), "{logs:?}");
    let logs = logs_of(&c, "staff");
    assert!(logs.contains("uid=1234(app) gid=3456(staff)"), "{logs}");

    let message = bramble_tests::try_eventually(Duration::from_secs(60), || {
        let (_, p) = c.client().get("/api/v1/namespaces/default/pods/ghost");
        let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        (waiting["reason"] == "CreateContainerError").then(|| waiting["message"].to_string())
    })
    .unwrap_or_else(|e| {
        let (_, p) = c.client().get("/api/v1/namespaces/default/pods/ghost");
        panic!("{e}: {p}")
    });
    assert!(
        message.contains(
            "unable to find user ghost: no matching entries in passwd file (the image's \
             /etc/passwd)"
        ),
        "{message}"
    );
}
