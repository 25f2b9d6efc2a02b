//! `/openapi/v3` over real HTTPS: behind the token, an index whose URLs pin
//! each document by hash, documents cached by `ETag` and immutable when
//! pinned, 404 for a group version Bramble does not serve. `/openapi/v2` as
//! Swagger 2.0 JSON and as the gnostic protobuf client-go asks for, read
//! back with a protobuf decoder.

use std::path::Path;
use std::time::Duration;

use bramble_tests::{HubProcess, agent_trusting};
use prost::encoding::{WireType, decode_key, decode_varint};
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
            "apis/batch/v1",
            "apis/bramble.dev/v1",
            "apis/events.k8s.io/v1",
            "apis/networking.k8s.io/v1",
            "apis/storage.k8s.io/v1"
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
    assert_eq!(get("/openapi/v3/apis/batch/v9", None).status(), 404);
}

/// The length-delimited fields numbered `n` of one protobuf message (other
/// fields skipped); panics on malformed input.
fn fields(mut buf: &[u8], n: u32) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (number, wire) = decode_key(&mut buf).unwrap();
        match wire {
            WireType::Varint => {
                decode_varint(&mut buf).unwrap();
            }
            WireType::SixtyFourBit => buf = &buf[8..],
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).unwrap() as usize;
                let (value, rest) = buf.split_at(len);
                if number == n {
                    out.push(value);
                }
                buf = rest;
            }
            other => panic!("unexpected wire type {other:?}"),
        }
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn openapi_v2_is_swagger_json_and_gnostic_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let agent = agent_trusting(&hub.ca_pem(), Duration::from_secs(10));
    let auth = format!("Bearer {}", hub.token);
    let get = |accept: &str| {
        agent
            .get(format!("{}/openapi/v2", hub.url))
            .header("Authorization", &auth)
            .header("Accept", accept)
            .call()
            .unwrap()
    };
    let kinds: Vec<String> = bramble_api::resource::served()
        .map(bramble_api::schema::component_name)
        .collect();
    assert!(kinds.contains(&"io.k8s.api.apps.v1.Deployment".to_string()));

    let mut json = get("application/json");
    assert_eq!(json.status(), 200);
    assert_eq!(json.headers()["content-type"], "application/json");
    let doc: Value = json.body_mut().read_json().unwrap();
    assert_eq!(doc["swagger"], "2.0");
    for name in &kinds {
        assert!(
            doc["definitions"][name]["x-kubernetes-group-version-kind"].is_array(),
            "{name}"
        );
    }
    assert!(doc["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"].is_object());

    // client-go's DiscoveryClient.OpenAPISchema().
    let mut proto = get("application/com.github.proto-openapi.spec.v2@v1.0+protobuf");
    assert_eq!(proto.status(), 200);
    assert_eq!(
        proto.headers()["content-type"],
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    let etag = proto.headers()["etag"].to_str().unwrap().to_string();
    let bytes = proto
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_vec()
        .unwrap();
    // Document {1: swagger, 9: Definitions {1: NamedSchema {1: name, 2: Schema}}}.
    assert_eq!(fields(&bytes, 1), [b"2.0"]);
    let definitions = fields(&bytes, 9);
    let named = fields(definitions[0], 1);
    let defined: Vec<String> = named.iter().map(|n| text(fields(n, 1)[0])).collect();
    for name in &kinds {
        assert!(defined.contains(name), "{name} not in {defined:?}");
    }
    // The Deployment's Schema {31: NamedAny {1: name, 2: Any {2: yaml}}}.
    let deployment = named
        .iter()
        .find(|n| text(fields(n, 1)[0]) == "io.k8s.api.apps.v1.Deployment")
        .map(|n| fields(n, 2)[0])
        .unwrap();
    let gvk: Vec<String> = fields(deployment, 31)
        .into_iter()
        .filter(|e| text(fields(e, 1)[0]) == "x-kubernetes-group-version-kind")
        .map(|e| text(fields(fields(e, 2)[0], 2)[0]))
        .collect();
    assert_eq!(gvk, ["- group: apps\n  kind: Deployment\n  version: v1\n"]);

    let cached = agent
        .get(format!("{}/openapi/v2", hub.url))
        .header("Authorization", &auth)
        .header(
            "Accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .header("If-None-Match", &etag)
        .call()
        .unwrap();
    assert_eq!(cached.status(), 304);
    let refused = agent
        .get(format!("{}/openapi/v2", hub.url))
        .header("Authorization", &auth)
        .header("Accept", "application/yaml")
        .call()
        .unwrap();
    assert_eq!(refused.status(), 406);
    let anonymous = agent.get(format!("{}/openapi/v2", hub.url)).call().unwrap();
    assert_eq!(anonymous.status(), 401);
}
