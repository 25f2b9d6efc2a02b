//! `bramble images` against an in-process hub whose registry holds a pushed
//! multi-arch image.

use std::process::{Command, Output};

use bramble_hub::testing::TestHub;
use bramble_tests::fixtures::{self, MultiImage, platform_image};

fn bramble(hub: &TestHub, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bramble"))
        .args(args)
        .env("BRAMBLE_HUB", hub.url())
        .env("BRAMBLE_TOKEN", hub.token())
        .env("BRAMBLE_DATA_DIR", hub.data_dir())
        .env("XDG_CONFIG_HOME", hub.data_dir().join("no-config"))
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_inspect_rm_a_multi_arch_image() {
    let hub = TestHub::start().await.unwrap();
    let img = MultiImage::new(vec![
        platform_image("linux/amd64", &[("bin/a", b"amd64", 0o755)], &["/bin/a"]),
        platform_image("linux/arm64", &[("bin/a", b"arm64", 0o755)], &["/bin/a"]),
    ]);
    let (url, token, ca) = (hub.url(), hub.token().to_string(), hub.ca_pem());
    let pushed = img.clone();
    tokio::task::spawn_blocking(move || {
        fixtures::push(&url, &token, ca.as_bytes(), "demo/web", "1", &pushed)
    })
    .await
    .unwrap()
    .unwrap();
    let hub_ref = &hub;
    let (ls, inspect, rm, again, missing) = tokio::task::block_in_place(|| {
        (
            bramble(hub_ref, &["images", "ls"]),
            bramble(hub_ref, &["images", "inspect", "demo/web:1"]),
            bramble(hub_ref, &["images", "rm", "demo/web:1"]),
            bramble(hub_ref, &["images", "ls"]),
            bramble(hub_ref, &["images", "rm", "demo/web:1"]),
        )
    });
    assert!(ls.status.success(), "{ls:?}");
    let out = text(&ls);
    let row = out
        .lines()
        .find(|l| l.starts_with("demo/web"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("linux/amd64,linux/arm64"), "{row}");
    assert!(
        row.contains(&img.index.digest()["sha256:".len().."sha256:".len() + 12]),
        "{row}"
    );

    let doc: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(doc["digest"], img.index.digest());
    assert_eq!(doc["index"]["manifests"].as_array().unwrap().len(), 2);

    assert!(rm.status.success(), "{rm:?}");
    assert!(text(&rm).contains("Untagged: demo/web:1"), "{}", text(&rm));
    assert!(
        text(&rm).contains(&format!("Deleted: {}", img.index.digest())),
        "{}",
        text(&rm)
    );
    assert!(!text(&again).contains("demo/web"), "{}", text(&again));
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("MANIFEST_UNKNOWN"),
        "{missing:?}"
    );
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_an_archive_and_push_a_layout() {
    let hub = TestHub::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let img = MultiImage::new(vec![
        platform_image("linux/amd64", &[("bin/a", b"amd64", 0o755)], &["/bin/a"]),
        platform_image("linux/arm64", &[("bin/a", b"arm64", 0o755)], &["/bin/a"]),
    ]);
    let archive = dir.path().join("app.tar");
    img.write_archive(&archive, "1.0").unwrap();
    let layout = dir.path().join("layout");
    img.write_layout(&layout, "1.0").unwrap();
    let hub_ref = &hub;
    let (a, b, ls, bad) = tokio::task::block_in_place(|| {
        (
            bramble(
                hub_ref,
                &[
                    "images",
                    "import",
                    archive.to_str().unwrap(),
                    "--name",
                    "demo/app:2",
                ],
            ),
            bramble(
                hub_ref,
                &["images", "push", layout.to_str().unwrap(), "other/app:3"],
            ),
            bramble(hub_ref, &["images", "ls"]),
            bramble(
                hub_ref,
                &[
                    "images",
                    "import",
                    dir.path().join("missing.tar").to_str().unwrap(),
                ],
            ),
        )
    });
    assert!(a.status.success(), "{a:?}");
    assert!(
        text(&a).contains(&format!(
            "Loaded image: demo/app:2 ({})",
            img.index.digest()
        )),
        "{}",
        text(&a)
    );
    assert!(b.status.success(), "{b:?}");
    let out = text(&ls);
    assert!(
        out.lines()
            .any(|l| l.starts_with("demo/app") && l.contains("linux/amd64,linux/arm64")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("other/app") && l.contains(" 3 ")),
        "{out}"
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("missing.tar"),
        "{bad:?}"
    );
    hub.stop().await.unwrap();
}
