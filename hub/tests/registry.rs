//! The hub's OCI registry with real clients: skopeo (a registry client written
//! elsewhere), raw distribution-API calls, and a hub killed mid-push.

use std::path::Path;
use std::process::Command;

use bramble_tests::HubProcess;
use bramble_tests::breaking::Breaking;
use bramble_tests::fixtures::{MultiImage, digest, platform_image};

fn hub_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bramble-hub"))
}

fn image() -> MultiImage {
    MultiImage::new(vec![
        platform_image(
            "linux/amd64",
            &[("bin/hello", b"amd64 hello\n", 0o755)],
            &["/bin/hello"],
        ),
        platform_image(
            "linux/arm64",
            &[("bin/hello", b"arm64 hello\n", 0o755)],
            &["/bin/hello"],
        ),
        platform_image(
            "linux/arm/v7",
            &[("bin/hello", b"armv7 hello\n", 0o755)],
            &["/bin/hello"],
        ),
    ])
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Raw<'a> {
    hub: &'a HubProcess,
    agent: ureq::Agent,
}

impl<'a> Raw<'a> {
    fn new(hub: &'a HubProcess) -> Self {
        let agent =
            bramble_tests::agent_trusting(&hub.ca_pem(), std::time::Duration::from_secs(60));
        Raw { hub, agent }
    }
    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.hub.url)
    }
    fn bearer(&self) -> String {
        format!("Bearer {}", self.hub.token)
    }
    fn req(
        &self,
        method: &str,
        p: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(p))
            .header("Authorization", self.bearer());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut resp = self
            .agent
            .run(b.body(body.to_vec()).unwrap())
            .expect("transport");
        let code = resp.status().as_u16();
        let h = resp.headers().clone();
        let body = resp.body_mut().read_to_vec().unwrap_or_default();
        (code, h, body)
    }
    fn push_blob(&self, repo: &str, bytes: &[u8]) -> u16 {
        self.req(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={}", digest(bytes)),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )
        .0
    }
    fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> (u16, String) {
        let (code, h, body) = self.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        );
        let d = h
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (
            code,
            if code == 201 {
                d
            } else {
                String::from_utf8_lossy(&body).into_owned()
            },
        )
    }
}

#[test]
fn skopeo_copies_a_multi_arch_image_in_and_out_with_matching_digests() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(hub_bin(), &dir.path().join("hub"));
    let img = image();
    let archive = dir.path().join("in.tar");
    img.write_archive(&archive, "1.0").unwrap();
    let host = hub.url.trim_start_matches("https://").to_string();
    let creds = format!("bramble:{}", hub.token);
    // skopeo verifies the hub's certificate against the cluster CA alone.
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.crt"), hub.ca_pem()).unwrap();
    let certs = certs.display().to_string();
    skopeo(&[
        "copy",
        "--all",
        "--dest-cert-dir",
        &certs,
        "--dest-creds",
        &creds,
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{host}/demo/hello:1.0"),
    ]);
    // The index arrives unchanged: same digest as built.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        &certs,
        "--creds",
        &creds,
        &format!("docker://{host}/demo/hello:1.0"),
    ]);
    assert_eq!(digest(raw.as_bytes()), img.index.digest());
    let tags = skopeo(&[
        "list-tags",
        "--cert-dir",
        &certs,
        "--creds",
        &creds,
        &format!("docker://{host}/demo/hello"),
    ]);
    assert!(tags.contains("\"1.0\""), "{tags}");
    // And comes back out: an OCI archive holding the same index and blobs.
    let out = dir.path().join("out.tar");
    skopeo(&[
        "copy",
        "--all",
        "--src-cert-dir",
        &certs,
        "--src-creds",
        &creds,
        &format!("docker://{host}/demo/hello:1.0"),
        &format!("oci-archive:{}", out.display()),
    ]);
    let back = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", out.display()),
    ]);
    assert_eq!(digest(back.as_bytes()), img.index.digest());
    // Without credentials the registry says who to ask.
    let denied = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--cert-dir",
            &certs,
            "--no-creds",
            &format!("docker://{host}/demo/hello:1.0"),
        ])
        .output()
        .unwrap();
    assert!(!denied.status.success());
}

#[test]
fn distribution_api_pull_push_ranges_tags_catalog_delete_gc() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(hub_bin(), dir.path());
    let r = Raw::new(&hub);
    assert_eq!(r.req("GET", "/v2/", &[], b"").0, 200);
    let img = image();
    let one = &img.images[0];

    // A manifest whose blobs were not pushed is refused.
    let (code, body) = r.push_manifest("web", "1", &one.manifest.media_type, &one.manifest.bytes);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("MANIFEST_BLOB_UNKNOWN"), "{body}");

    // Monolithic push of the config; chunked push of the layer.
    assert_eq!(r.push_blob("web", &one.config.bytes), 201);
    let layer = &one.layers[0].bytes;
    let (code, h, _) = r.req("POST", "/v2/web/blobs/uploads/", &[], b"");
    assert_eq!(code, 202);
    let loc = h.get("location").unwrap().to_str().unwrap().to_string();
    let half = layer.len() / 2;
    let (code, h, _) = r.req(
        "PATCH",
        &loc,
        &[("Content-Range", &format!("0-{}", half - 1))],
        &layer[..half],
    );
    assert_eq!(code, 202);
    assert_eq!(h.get("range").unwrap(), &format!("0-{}", half - 1));
    // A chunk that does not continue where the upload stands is refused.
    assert_eq!(
        r.req("PATCH", &loc, &[("Content-Range", "5-9")], b"xxxxx")
            .0,
        416
    );
    let (code, _, _) = r.req("PATCH", &loc, &[], &layer[half..]);
    assert_eq!(code, 202);
    let (code, _, body) = r.req(
        "PUT",
        &format!("{loc}?digest={}", "sha256:".to_string() + &"0".repeat(64)),
        &[],
        b"",
    );
    assert_eq!(
        code,
        400,
        "a wrong digest is refused: {}",
        String::from_utf8_lossy(&body)
    );
    // The failed finish ended the session; the layer is not visible.
    assert_eq!(
        r.req(
            "HEAD",
            &format!("/v2/web/blobs/{}", one.layers[0].digest()),
            &[],
            b""
        )
        .0,
        404
    );
    assert_eq!(r.push_blob("web", layer), 201);

    let (code, mdigest) =
        r.push_manifest("web", "1", &one.manifest.media_type, &one.manifest.bytes);
    assert_eq!(code, 201, "{mdigest}");
    assert_eq!(mdigest, one.manifest.digest());

    // Pull by tag and by digest.
    let (code, h, body) = r.req("GET", "/v2/web/manifests/1", &[], b"");
    assert_eq!(code, 200);
    assert_eq!(body, one.manifest.bytes);
    assert_eq!(
        h.get("content-type").unwrap(),
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        r.req("HEAD", &format!("/v2/web/manifests/{mdigest}"), &[], b"")
            .0,
        200
    );
    assert_eq!(r.req("GET", "/v2/web/manifests/2", &[], b"").0, 404);

    // Blob ranges.
    let blob = format!("/v2/web/blobs/{}", one.layers[0].digest());
    let (code, h, body) = r.req("GET", &blob, &[("Range", "bytes=3-9")], b"");
    assert_eq!(code, 206);
    assert_eq!(body, &layer[3..10]);
    assert_eq!(
        h.get("content-range").unwrap().to_str().unwrap(),
        format!("bytes 3-9/{}", layer.len())
    );
    let (code, _, body) = r.req("GET", &blob, &[], b"");
    assert_eq!((code, body.as_slice()), (200, layer.as_slice()));
    assert_eq!(
        r.req(
            "GET",
            &blob,
            &[("Range", &format!("bytes={}-", layer.len()))],
            b""
        )
        .0,
        416
    );

    // Cross-mount into another repository.
    let (code, _, _) = r.req(
        "POST",
        &format!(
            "/v2/other/blobs/uploads/?mount={}&from=web",
            one.layers[0].digest()
        ),
        &[],
        b"",
    );
    assert_eq!(code, 201);

    // Tags and catalog.
    let (_, _, body) = r.req("GET", "/v2/web/tags/list", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["1"]));
    let (_, _, body) = r.req("GET", "/v2/_catalog", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["web"]));

    // Delete the manifest; GC with no grace then frees its blobs.
    assert_eq!(
        r.req("DELETE", &format!("/v2/web/manifests/{mdigest}"), &[], b"")
            .0,
        202
    );
    assert_eq!(r.req("GET", "/v2/web/manifests/1", &[], b"").0, 404);
    assert!(hub.url.starts_with("https://"));
}

#[test]
fn a_hub_killed_mid_push_shows_no_partial_blob_and_the_push_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = HubProcess::start(hub_bin(), dir.path());
    let layer = vec![7u8; 256 * 1024];
    let d = digest(&layer);
    {
        let r = Raw::new(&hub);
        let (code, h, _) = r.req("POST", "/v2/big/blobs/uploads/", &[], b"");
        assert_eq!(code, 202);
        let loc = h.get("location").unwrap().to_str().unwrap().to_string();
        assert_eq!(r.req("PATCH", &loc, &[], &layer[..100_000]).0, 202);
    }
    hub.kill9();
    let hub = HubProcess::start(hub_bin(), dir.path());
    let r = Raw::new(&hub);
    assert_eq!(
        r.req("HEAD", &format!("/v2/big/blobs/{d}"), &[], b"").0,
        404
    );
    let tmp = dir.path().join("registry/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "no upload leftovers after restart"
    );
    let blobs = dir.path().join("registry/blobs/sha256");
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        0,
        "no partial blob visible"
    );
    assert_eq!(r.push_blob("big", &layer), 201);
    let (code, _, body) = r.req("GET", &format!("/v2/big/blobs/{d}"), &[], b"");
    assert_eq!((code, body.len()), (200, layer.len()));
}

#[test]
fn a_patch_broken_off_mid_body_is_resumed_from_the_upload_status() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(hub_bin(), dir.path());
    let r = Raw::new(&hub);
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (code, h, _) = r.req("POST", "/v2/ctx/blobs/uploads/", &[], b"");
    assert_eq!(code, 202);
    let loc = h.get("location").unwrap().to_str().unwrap().to_string();
    let broken_after = 2_000_000;
    let mut body = Breaking {
        data: &blob,
        left: broken_after,
    };
    let sent = r
        .agent
        .patch(r.url(&loc))
        .header("Authorization", r.bearer())
        .send(ureq::SendBody::from_reader(&mut body));
    assert!(sent.is_err(), "the PATCH broke off: {sent:?}");
    // Once the hub saw the break, GET tells how much of the body it kept
    // (the upload is busy until then).
    let kept = bramble_tests::eventually(
        "the upload's status",
        std::time::Duration::from_secs(20),
        || {
            let (code, h, _) = r.req("GET", &loc, &[], b"");
            let range = h.get("range")?.to_str().ok()?.to_string();
            (code == 204).then_some(())?;
            let last: usize = range.strip_prefix("0-")?.parse().ok()?;
            Some(last + 1)
        },
    );
    assert!(kept > 1 && kept <= broken_after, "kept {kept}");
    // Every byte it counted is in the upload: the rest from there makes
    // the blob, whose digest the finish verifies.
    let (code, _, _) = r.req(
        "PATCH",
        &loc,
        &[("Content-Range", &format!("{kept}-{}", blob.len() - 1))],
        &blob[kept..],
    );
    assert_eq!(code, 202);
    let d = digest(&blob);
    let (code, _, body) = r.req("PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let (code, _, back) = r.req("GET", &format!("/v2/ctx/blobs/{d}"), &[], b"");
    assert_eq!((code, back == blob), (200, true));
}
