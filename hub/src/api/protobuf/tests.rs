//! The decoder against bodies the real kubectl 1.32.4 sent (captured by a
//! recording HTTP server, `testdata/NAME.bin`), compared with the JSON the
//! same kubectl writes for the same object (`--dry-run=client -o json`,
//! `testdata/NAME.json`); and against hand-built broken bodies.

use prost::encoding::{WireType, encode_key, encode_varint};
use serde_json::{Value, json};

use super::schema::{Label, Message, Ty, f};
use super::{ProtoError, decode};

fn fixture(name: &str) -> (Vec<u8>, Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/protobuf/testdata/");
    let bin = std::fs::read(format!("{dir}{name}.bin")).unwrap();
    let json = std::fs::read(format!("{dir}{name}.json")).unwrap();
    (bin, serde_json::from_slice(&json).unwrap())
}

#[test]
fn kubectl_bodies_decode_to_the_json_kubectl_prints() {
    for name in [
        "namespace",
        "configmap",
        "secret",
        "deployment",
        "service",
        "ingress",
    ] {
        let (bin, want) = fixture(name);
        let got = decode(&bin).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn decoded_deployment_has_its_fields() {
    let (bin, _) = fixture("deployment");
    let d = decode(&bin).unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "busybox");
    assert_eq!(c["ports"], json!([{"containerPort": 80}]));
    // Zero non-pointer fields with omitempty (hostPort, protocol,
    // terminationMessagePath, stdin, ...) are absent, as in kubectl's JSON.
    let mut keys: Vec<_> = c.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["image", "name", "ports", "resources"]);
    let admitted = bramble_api::admit(d).expect("the decoded Deployment is admitted");
    assert_eq!(admitted.resource.kind, "Deployment");
}

#[test]
fn secret_data_is_base64_as_in_json() {
    let (bin, _) = fixture("secret");
    let s = decode(&bin).unwrap();
    assert_eq!(s["data"]["user"], "YWRtaW4="); // "admin"
    assert_eq!(s["data"]["pass"], "czNjcjN0"); // "s3cr3t"
}

// ---- hand-built bodies ----

enum E {
    V(u64),
    B(Vec<u8>),
}

fn msg(fields: &[(u32, E)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in fields {
        match v {
            E::V(x) => {
                encode_key(*n, WireType::Varint, &mut out);
                encode_varint(*x, &mut out);
            }
            E::B(b) => {
                encode_key(*n, WireType::LengthDelimited, &mut out);
                encode_varint(b.len() as u64, &mut out);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

fn s(x: &str) -> E {
    E::B(x.as_bytes().to_vec())
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(msg(&[
        (1, E::B(msg(&[(1, s(api_version)), (2, s(kind))]))),
        (2, E::B(raw)),
    ]));
    out
}

/// A Deployment whose one container is `container`.
fn deployment_with(container: Vec<u8>) -> Vec<u8> {
    let pod_spec = msg(&[(2, E::B(container))]);
    let template = msg(&[(2, E::B(pod_spec))]);
    let spec = msg(&[(3, E::B(template))]);
    envelope(
        "apps/v1",
        "Deployment",
        msg(&[(1, E::B(msg(&[(1, s("web"))]))), (2, E::B(spec))]),
    )
}

#[test]
fn a_field_not_in_the_table_names_message_and_field() {
    // Container field 12 is `lifecycle`, which Bramble does not model.
    let body = deployment_with(msg(&[(1, s("app")), (12, E::B(Vec::new()))]));
    let err = decode(&body).unwrap_err();
    assert!(
        matches!(
            err,
            ProtoError::UnsupportedField {
                message: "io.k8s.api.core.v1.Container",
                field: 12
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "protobuf field 12 of io.k8s.api.core.v1.Container is not supported by Bramble; \
         send JSON (kubectl apply -f) instead"
    );
}

#[test]
fn a_kind_not_in_the_table_is_refused() {
    let body = envelope("rbac.authorization.k8s.io/v1", "Role", msg(&[]));
    let err = decode(&body).unwrap_err();
    assert!(
        matches!(&err, ProtoError::UnsupportedKind { api_version, kind }
            if api_version == "rbac.authorization.k8s.io/v1" && kind == "Role"),
        "{err:?}"
    );
}

#[test]
fn a_wrong_magic_or_a_json_body_is_not_an_envelope() {
    let (mut bin, _) = fixture("namespace");
    bin[3] = 1;
    assert!(matches!(decode(&bin), Err(ProtoError::NotEnvelope)));
    assert!(matches!(
        decode(br#"{"kind":"Namespace"}"#),
        Err(ProtoError::NotEnvelope)
    ));
    assert!(matches!(decode(b""), Err(ProtoError::NotEnvelope)));
}

#[test]
fn a_truncated_body_is_malformed_with_its_offset() {
    let (bin, _) = fixture("deployment");
    // Every cut inside the envelope's raw field leaves its length running
    // past the end.
    for cut in [30, 60, 100, bin.len() - 1] {
        match decode(&bin[..cut]) {
            Err(ProtoError::Malformed {
                message, offset, ..
            }) => {
                assert_eq!(message, "io.k8s.apimachinery.pkg.runtime.Unknown");
                assert!(offset <= cut, "offset {offset} past the cut {cut}");
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    // No prefix panics.
    for cut in 0..bin.len() {
        let _ = decode(&bin[..cut]);
    }
}

#[test]
fn a_truncated_inner_message_is_malformed_where_it_is() {
    // A Container whose image claims 200 bytes.
    let mut container = msg(&[(1, s("app"))]);
    encode_key(2, WireType::LengthDelimited, &mut container);
    encode_varint(200, &mut container);
    container.extend_from_slice(b"busybox");
    let err = decode(&deployment_with(container)).unwrap_err();
    assert!(
        matches!(
            err,
            ProtoError::Malformed {
                message: "io.k8s.api.core.v1.Container",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_wrong_wire_type_is_malformed() {
    // Container.name (1) as a varint.
    let err = decode(&deployment_with(msg(&[(1, E::V(7))]))).unwrap_err();
    assert!(
        matches!(
            err,
            ProtoError::Malformed {
                message: "io.k8s.api.core.v1.Container",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn special_types_decode_as_kubernetes_json() {
    // ObjectMeta.creationTimestamp (8), a Service with a named targetPort
    // (IntOrString type 1) and a negative int32 nodePort.
    let meta = msg(&[
        (1, s("web")),
        (8, E::B(msg(&[(1, E::V(1_700_000_000)), (2, E::V(5))]))),
    ]);
    let port = msg(&[
        (3, E::V(80)),
        (4, E::B(msg(&[(1, E::V(1)), (2, E::V(0)), (3, s("http"))]))),
        (5, E::V(-1i64 as u64)),
    ]);
    let body = envelope(
        "v1",
        "Service",
        msg(&[(1, E::B(meta)), (2, E::B(msg(&[(1, E::B(port))])))]),
    );
    let svc = decode(&body).unwrap();
    assert_eq!(svc["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(
        svc["spec"]["ports"][0],
        json!({"port": 80, "targetPort": "http", "nodePort": -1})
    );
}

#[test]
fn resource_quantities_are_strings() {
    // Container.resources (8) {limits (1): {"cpu": Quantity {1: "250m"}}}.
    let entry = msg(&[(1, s("cpu")), (2, E::B(msg(&[(1, s("250m"))])))]);
    let container = msg(&[(1, s("app")), (8, E::B(msg(&[(1, E::B(entry))])))]);
    let d = decode(&deployment_with(container)).unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "250m"}})
    );
}

#[test]
fn delete_options_decode_with_preconditions() {
    let preconditions = msg(&[(2, s("42"))]);
    let body = envelope(
        "v1",
        "DeleteOptions",
        msg(&[
            (1, E::V(0)),
            (2, E::B(preconditions)),
            (4, s("Foreground")),
            (5, s("All")),
        ]),
    );
    assert_eq!(
        decode(&body).unwrap(),
        json!({"kind": "DeleteOptions", "apiVersion": "v1",
               "gracePeriodSeconds": 0, "preconditions": {"resourceVersion": "42"},
               "propagationPolicy": "Foreground", "dryRun": ["All"]})
    );
}

#[test]
fn evictions_decode_with_their_delete_options() {
    let body = envelope(
        "policy/v1",
        "Eviction",
        msg(&[
            (1, E::B(msg(&[(1, s("web-1")), (3, s("default"))]))),
            (2, E::B(msg(&[(1, E::V(30))]))),
        ]),
    );
    assert_eq!(
        decode(&body).unwrap(),
        json!({"kind": "Eviction", "apiVersion": "policy/v1",
               "metadata": {"name": "web-1", "namespace": "default"},
               "deleteOptions": {"gracePeriodSeconds": 30}})
    );
}

static LOOP: Message = Message {
    name: "test.Loop",
    fields: &[f(1, "loop", Ty::Message(&LOOP), Label::Plain)],
};

#[test]
fn nesting_is_capped() {
    let mut m = Vec::new();
    for _ in 0..40 {
        m = msg(&[(1, E::B(m))]);
    }
    let err = super::decode::message(&LOOP, &m, 0, 1).unwrap_err();
    assert!(
        matches!(
            err,
            ProtoError::TooDeep {
                message: "test.Loop"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_recorder_event_decodes_as_its_json() {
    // What a client-go recorder set to protobuf sends: metadata, the
    // involved object, reason, message, source, two times, count, type.
    let time = msg(&[(1, E::V(1_780_000_000))]);
    let body = envelope(
        "v1",
        "Event",
        msg(&[
            (1, E::B(msg(&[(1, s("web.1")), (3, s("default"))]))),
            (
                2,
                E::B(msg(&[(1, s("Pod")), (2, s("default")), (3, s("web"))])),
            ),
            (3, s("Started")),
            (4, s("Started container web")),
            (5, E::B(msg(&[(1, s("kubelet")), (2, s("pi-1"))]))),
            (6, E::B(time.clone())),
            (7, E::B(time)),
            (8, E::V(2)),
            (9, s("Normal")),
        ]),
    );
    let e = decode(&body).unwrap();
    assert_eq!(e["kind"], "Event");
    assert_eq!(e["involvedObject"]["name"], "web");
    assert_eq!(e["source"]["host"], "pi-1");
    assert_eq!(e["count"], 2);
    assert_eq!(e["lastTimestamp"], "2026-05-28T20:26:40Z");
    assert!(e["eventTime"].is_null());
    bramble_api::admit(e).expect("the decoded event is admitted");
}
