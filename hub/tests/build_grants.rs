//! A build job's registry credential, attacked with curl: it uploads blobs
//! to its Build's repository and reads them back, and nothing else — no
//! manifest or tag written, no other repository, no catalog — and stops
//! working when revoked; a wrong password or a made-up `_build.` user gets
//! nothing. A board holding a job's grant can thus only add blobs, which
//! the hub checks before it writes an image.

use std::path::Path;
use std::process::Command;

use bramble_hub::testing::TestHub;

/// `curl` as `user:password`: the HTTP status.
fn curl(hub: &TestHub, ca: &Path, creds: &str, method: &str, path: &str, body: &[u8]) -> u16 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("body");
    std::fs::write(&data, body).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(ca)
        .args(["-u", creds, "-X", method])
        .args(["-H", "Content-Type: application/octet-stream"])
        .arg("--data-binary")
        .arg(format!("@{}", data.display()))
        .arg(format!("{}{path}", hub.url()))
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_grant_uploads_blobs_to_its_repository_only() {
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, hub.ca_pem()).unwrap();
    let grant = hub.hub().builds().grants.issue("_build.test.0", "team/web");
    let creds = format!("{}:{}", grant.user, grant.password);
    let blob = b"a layer";
    let digest = format!("sha256:{}", bramble_images::Digest::of(blob).hex());
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": 7},
        "layers": []})
    .to_string();
    let c = |creds: &str, method: &str, path: &str, body: &[u8]| {
        let (hub, ca) = (&hub, ca.as_path());
        curl(hub, ca, creds, method, path, body)
    };
    let upload = format!("/v2/team/web/blobs/uploads/?digest={digest}");

    // What the grant is for.
    assert_eq!(c(&creds, "POST", &upload, blob), 201);
    assert_eq!(
        c(&creds, "HEAD", &format!("/v2/team/web/blobs/{digest}"), b""),
        200
    );
    // Everything else.
    let m = manifest.as_bytes();
    assert_eq!(c(&creds, "PUT", "/v2/team/web/manifests/latest", m), 401);
    assert_eq!(
        c(
            &creds,
            "PUT",
            &format!("/v2/team/web/manifests/{digest}"),
            m
        ),
        401
    );
    assert_eq!(c(&creds, "GET", "/v2/team/web/tags/list", b""), 401);
    assert_eq!(
        c(
            &creds,
            "DELETE",
            &format!("/v2/team/web/blobs/{digest}"),
            b""
        ),
        401
    );
    let other = format!("/v2/team/other/blobs/uploads/?digest={digest}");
    assert_eq!(c(&creds, "POST", &other, blob), 401);
    assert_eq!(
        c(
            &creds,
            "GET",
            &format!("/v2/team/other/blobs/{digest}"),
            b""
        ),
        401
    );
    assert_eq!(c(&creds, "GET", "/v2/_catalog", b""), 401);
    assert_eq!(c(&creds, "POST", "/v2/_gc", b""), 401);
    // A wrong password, a made-up grant user, a revoked grant.
    let wrong = format!("{}:{}", grant.user, "0".repeat(64));
    assert_eq!(c(&wrong, "POST", &upload, blob), 401);
    let made_up = format!("_build.other.0:{}", grant.password);
    assert_eq!(c(&made_up, "POST", &upload, blob), 401);
    hub.hub().builds().grants.revoke(&grant.user);
    assert_eq!(c(&creds, "POST", &upload, blob), 401);
    // And nothing of it reached a tag.
    let admin = format!("bramble:{}", hub.token());
    assert_eq!(c(&admin, "GET", "/v2/team/web/manifests/latest", b""), 404);
}
