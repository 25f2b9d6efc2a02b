//! `/openapi/v3` over real HTTPS: behind the token, an index whose URLs pin
//! each document by hash, documents cached by `ETag` and immutable when
//! pinned, 404 for a group version Bramble does not serve.

use std::path::Path;
use std::time::Duration;

use bramble_tests::{HubProcess, agent_trusting};
use serde_json::Value;

#[test]
fn the_index_points_at_hashed_documents_that_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let agent = agent_trusting(&hub.ca_pem(), Duration::from_secs(10));
    let auth = format!("Bearer {}", hub.token);
    let get = |path: &str, etag: Option<&str>| {
        let mut req = agent
            .get(format!("{}{path}", hub.url))
            .header("Authorization", &auth);
        if let Some(e) = etag {
            req = req.header("If-None-Match", e);
        }
        req.call().unwrap()
    };

    let anonymous = agent.get(format!("{}/openapi/v3", hub.url)).call().unwrap();
    assert_eq!(anonymous.status(), 401);

    let mut index = get("/openapi/v3", None);
    assert_eq!(index.status(), 200);
    let index: Value = index.body_mut().read_json().unwrap();
    let paths = index["paths"].as_object().unwrap();
    let listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        listed,
        [
            "api/v1",
            "apis/apps/v1",
            "apis/autoscaling/v2",
            "apis/events.k8s.io/v1",
            "apis/networking.k8s.io/v1"
        ]
    );

    let url = paths["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
    let mut doc = get(url, None);
    assert_eq!(doc.status(), 200);
    let etag = doc.headers()["etag"].to_str().unwrap().to_string();
    let cache = doc.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.contains("immutable"), "{cache}");
    let body: Value = doc.body_mut().read_json().unwrap();
    assert!(body["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());

    let unpinned = get("/openapi/v3/apis/apps/v1", None);
    assert_eq!(unpinned.status(), 200);
    assert!(
        !unpinned.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(get(url, Some(&etag)).status(), 304);
    assert_eq!(get("/openapi/v3/apis/batch/v1", None).status(), 404);
}
