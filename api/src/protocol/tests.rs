//! Cross-message tests: fixtures shared by the message modules, golden JSON
//! (a rename anywhere breaks these), envelope errors, topic routing and the
//! encoded sizes of realistic payloads.

use std::collections::BTreeMap;

use serde_json::json;

use crate::objects::{ConfigMap, Pod, Secret};

use super::desired::{Desired, Generation};
use bramble_trust::SecretKeys;

use super::envelope::{AgentMessage, HubMessage, Message, ProtocolError, decode, encode};
use super::hello::{Accepted, Cgroups, Hello, HelloAck, HelloAuth, JoinProof, KeysText, Platform};
use super::network::NetworkConfig;
use super::online::Online;
use super::rpc::{LogsCall, PodRef, RpcCall, RpcRequest};
use super::rpc::{RpcChunk, RpcId, RpcResponse, Stream};
use super::status::{ContainerUsage, PodReport, PodUsage, Status, Usage};
use super::topics::{Topic, TopicKind};
use super::wire::{HubKey, Signer, decode_from_agent, decode_from_hub, encode_frame, keys_text};

/// A Raspberry Pi 4 joining with a token.
pub(crate) fn hello() -> Hello {
    Hello {
        node_name: "pi-1".into(),
        session: "5f2c9a".into(),
        agent_version: "0.1.0".into(),
        platform: Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: "v8".into(),
        },
        kernel_version: "6.6.31+rpt-rpi-v8".into(),
        os_image: "Debian GNU/Linux 12 (bookworm)".into(),
        internal_ip: Some("10.77.0.11".into()),
        cpus: 4,
        memory_bytes: 4_124_000_256,
        labels: BTreeMap::from([("room".into(), "attic".into())]),
        cgroups: Cgroups {
            version: 2,
            controllers: vec!["cpu".into(), "cpuset".into(), "io".into(), "pids".into()],
        },
        runtime: "libcontainer".into(),
        features: vec![],
        volumes_dir: None,
        incarnation: 3,
        keys: KeysText {
            signing: "c2lnbmluZy1rZXktb2YtcGktMS0zMi1ieXRlcy0hISE".into(),
            encryption: "ZW5jcnlwdGlvbi1rZXktb2YtcGktMS0zMi1ieXRlcyE".into(),
        },
        auth: HelloAuth::JoinToken(JoinProof {
            id: "abcdef".into(),
            proof: "cHJvb2Y".into(),
        }),
    }
}

/// A Deployment's pod as the hub sends it: defaults applied, no status.
fn pod(i: usize) -> Pod {
    let mut p: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("web-7d9f8b6c5-x2k{i:02}"), "namespace": "default",
            "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5"},
            "uid": format!("3f0c2a1e-8b7d-4c6a-9e5f-0a1b2c3d4e{i:02}"),
            "resourceVersion": "1042", "generation": 1,
            "creationTimestamp": "2025-05-01T10:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                "uid": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": "pi-1",
            "containers": [{
                "name": "web", "image": "registry.local:7480/library/nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80}],
                "env": [{"name": "MODE", "value": "production"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d", "readOnly": true}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80}, "periodSeconds": 5}
            }],
            "volumes": [{"name": "conf", "configMap": {"name": "web-conf"}}]
        }
    }))
    .unwrap();
    p.spec.apply_defaults();
    p
}

fn config_map() -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web-conf", "namespace": "default", "uid": "c1"},
        "data": {"default.conf": "server { listen 80; location / { root /usr/share/nginx/html; } }\n"}
    }))
    .unwrap()
}

/// The desired set of `pi-1` with `n` pods of one Deployment and its ConfigMap.
pub(crate) fn desired(n: usize) -> Desired {
    Desired {
        generation: Generation(42),
        pods: (0..n).map(pod).collect(),
        config_maps: vec![config_map()],
        secrets: vec![],
        network: None,
        volumes: vec![],
        reclaim: vec![],
        builds: vec![],
    }
}

fn pod_report(i: usize) -> PodReport {
    let started = "2025-05-01T10:00:03Z";
    let conditions: Vec<_> = ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": started}))
        .into();
    let status = serde_json::from_value(json!({
        "phase": "Running",
        "conditions": conditions,
        "hostIP": "192.168.1.21", "hostIPs": [{"ip": "192.168.1.21"}],
        "podIP": format!("10.42.1.{}", i + 2), "podIPs": [{"ip": format!("10.42.1.{}", i + 2)}],
        "startTime": "2025-05-01T10:00:01Z",
        "containerStatuses": [{
            "name": "web", "ready": true, "restartCount": 0, "started": true,
            "image": "registry.local:7480/library/nginx:1.27",
            "imageID": format!("sha256:{}", "a1b2c3d4".repeat(8)),
            "containerID": format!("bramble://{}", "0f1e2d3c".repeat(8)),
            "state": {"running": {"startedAt": started}}
        }],
        "qosClass": "Burstable"
    }))
    .unwrap();
    PodReport {
        namespace: "default".into(),
        name: format!("web-7d9f8b6c5-x2k{i:02}"),
        uid: format!("3f0c2a1e-8b7d-4c6a-9e5f-0a1b2c3d4e{i:02}"),
        status,
        usage: Some(PodUsage {
            cpu_nanos: 123_456_789_012,
            memory_bytes: 23_456_789,
            containers: vec![ContainerUsage {
                name: "web".into(),
                cpu_nanos: 123_456_000_000,
                memory_bytes: 23_400_000,
            }],
        }),
        pulls: Vec::new(),
    }
}

/// A heartbeat of `pi-1` with `n` running pods and their usage.
pub(crate) fn status(n: usize) -> Status {
    Status {
        session: "5f2c9a".into(),
        seq: 1234,
        uptime_millis: 86_400_000,
        observed_generation: Some(Generation(42)),
        desired_rejected: None,
        pods: (0..n).map(pod_report).collect(),
        node_usage: Some(Usage {
            cpu_nanos: 9_876_543_210_000,
            memory_bytes: 812_000_000,
        }),
        usage_sampled_millis: Some(86_399_400),
        rpc_seq: Some(7),
        reclaimed: vec![],
        volume_usage: BTreeMap::new(),
        builds: vec![],
    }
}

#[test]
fn golden_hello() {
    let bytes = encode(&hello()).unwrap();
    assert!(bytes.starts_with(br#"{"protocol":2,"type":"hello","body":{"#));
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v,
        json!({
            "protocol": 2,
            "type": "hello",
            "body": {
                "nodeName": "pi-1",
                "session": "5f2c9a",
                "agentVersion": "0.1.0",
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                "kernelVersion": "6.6.31+rpt-rpi-v8",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "internalIP": "10.77.0.11",
                "cpus": 4,
                "memoryBytes": 4_124_000_256u64,
                "labels": {"room": "attic"},
                "cgroups": {"version": 2, "controllers": ["cpu", "cpuset", "io", "pids"]},
                "runtime": "libcontainer",
                "incarnation": 3,
                "keys": {"signing": "c2lnbmluZy1rZXktb2YtcGktMS0zMi1ieXRlcy0hISE",
                    "encryption": "ZW5jcnlwdGlvbi1rZXktb2YtcGktMS0zMi1ieXRlcyE"},
                "auth": {"joinToken": {"id": "abcdef", "proof": "cHJvb2Y"}}
            }
        })
    );
}

#[test]
fn golden_desired() {
    let mut pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "sensor", "namespace": "iot", "uid": "u-1"},
        "spec": {"nodeName": "pi-1", "containers": [{"name": "read", "image": "sensor:1",
            "envFrom": [{"configMapRef": {"name": "sensor-conf"}}]}],
            "imagePullSecrets": [{"name": "regcred"}]}
    }))
    .unwrap();
    pod.spec.restart_policy = Some("Always".into());
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "iot"},
        "data": {".dockerconfigjson": "e30="}
    }))
    .unwrap();
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "sensor-conf", "namespace": "iot"}, "data": {"BUS": "i2c-1"}
    }))
    .unwrap();
    let d = Desired {
        generation: Generation(7),
        pods: vec![pod],
        config_maps: vec![cm],
        secrets: vec![secret],
        network: Some(NetworkConfig {
            pod_cidr: Some("10.42.1.0/24".into()),
            ..NetworkConfig::default()
        }),
        volumes: vec![],
        reclaim: vec![],
        builds: vec![],
    };
    let bytes = encode(&d).unwrap();
    assert!(bytes.starts_with(br#"{"protocol":2,"type":"desired","body":{"generation":7,"#));
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v,
        json!({
            "protocol": 2,
            "type": "desired",
            "body": {
                "generation": 7,
                "pods": [{
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "sensor", "namespace": "iot", "uid": "u-1"},
                    "spec": {
                        "containers": [{"name": "read", "image": "sensor:1",
                            "envFrom": [{"configMapRef": {"name": "sensor-conf"}}]}],
                        "restartPolicy": "Always",
                        "nodeName": "pi-1",
                        "imagePullSecrets": [{"name": "regcred"}]
                    }
                }],
                "configMaps": [{"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "sensor-conf", "namespace": "iot"}, "data": {"BUS": "i2c-1"}}],
                "secrets": [{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                    "metadata": {"name": "regcred", "namespace": "iot"},
                    "data": {".dockerconfigjson": "e30="}}],
                "network": {"podCIDR": "10.42.1.0/24"}
            }
        })
    );
    assert_eq!(decode::<Desired>("pi-1", &bytes).unwrap(), d);
}

#[test]
fn online_round_trips() {
    for o in [Online::up("s1", 1), Online::last_will("s1", 2)] {
        let bytes = encode(&o).unwrap();
        assert_eq!(decode::<Online>("pi-1", &bytes).unwrap(), o);
    }
    assert_eq!(
        encode(&Online::last_will("s1", 2)).unwrap(),
        br#"{"protocol":2,"type":"online","body":{"online":false,"session":"s1","connection":2}}"#
    );
}

#[test]
fn version_mismatch_names_both_versions() {
    let p = br#"{"protocol":3,"type":"online","body":{"online":true,"quorum":3}}"#;
    let e = decode::<Online>("pi-1", p).unwrap_err();
    assert!(matches!(
        e,
        ProtocolError::VersionMismatch {
            got: 3,
            supported: 2
        }
    ));
    assert_eq!(
        e.to_string(),
        "payload speaks protocol version 3 but this side speaks protocol version 2: \
         run the same Bramble release on the hub and the agents"
    );
    let e = decode::<Online>("pi-1", br#"{"type":"online","body":{"online":true}}"#).unwrap_err();
    assert!(
        matches!(e, ProtocolError::MissingVersion { supported: 2 }),
        "{e}"
    );
}

#[test]
fn garbage_and_wrong_types_are_refused() {
    let cases: [(&[u8], &str); 6] = [
        (b"not json", "not a Bramble message"),
        (b"[1,2]", "not a Bramble message"),
        (
            br#"{"protocol":"1","type":"online"}"#,
            "not a Bramble message",
        ),
        (
            br#"{"protocol":2,"type":"status","body":{}}"#,
            "expected a `online` message, got `status`",
        ),
        (br#"{"protocol":2,"body":{"online":true}}"#, "got `(none)`"),
        (
            br#"{"protocol":2,"type":"online","body":{"online":"yes"}}"#,
            "invalid `online` message at `body.online`",
        ),
    ];
    for (payload, want) in cases {
        let e = decode::<Online>("pi-1", payload).unwrap_err().to_string();
        assert!(
            e.contains(want),
            "{}: {e}",
            String::from_utf8_lossy(payload)
        );
    }
    // Advisory envelope keys are ignored.
    let p = br#"{"protocol":2,"type":"online","sentAt":"now","body":{"online":true}}"#;
    assert!(decode::<Online>("pi-1", p).unwrap().online);
}

#[test]
fn oversized_payloads_are_refused_before_parsing() {
    let mut p = br#"{"protocol":2,"type":"online","body":{"online":true}}"#.to_vec();
    p.resize(Online::MAX_BYTES + 1, b' ');
    let e = decode::<Online>("pi-1", &p).unwrap_err();
    assert!(
        matches!(
            e,
            ProtocolError::TooLarge {
                size: 1025,
                limit: 1024,
                ..
            }
        ),
        "{e}"
    );
    // Garbage that large is refused for its size, not its content.
    let e = decode::<Online>("pi-1", &vec![b'x'; 4096]).unwrap_err();
    assert!(matches!(e, ProtocolError::TooLarge { .. }), "{e}");

    let mut cm = config_map();
    cm.data.insert("big".into(), "x".repeat(Desired::MAX_BYTES));
    let mut d = desired(1);
    d.config_maps = vec![cm];
    let e = encode(&d).unwrap_err();
    assert!(e.to_string().starts_with("`desired` payload of "), "{e}");
    assert!(
        e.to_string().contains("exceeds the limit of 4194304 bytes"),
        "{e}"
    );
}

fn topic(node: &str, kind: TopicKind) -> Topic {
    Topic::new(node, kind).unwrap()
}

/// A node's hello, signed with its `keys`.
fn signed_hello(node: &SecretKeys) -> (Hello, Vec<u8>) {
    let mut h = hello();
    h.keys = keys_text(node.public());
    let frame = encode_frame(node, &topic("pi-1", TopicKind::Hello), &h, None).unwrap();
    (h, frame)
}

#[test]
fn the_hub_believes_only_frames_signed_by_the_registered_key() {
    let (hub, node, other) = (
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
    );
    let registered = |_: &str| Some(node.public().clone());
    let unknown = |_: &str| None;
    let t = |kind| topic("pi-1", kind).to_string();
    // A first join: the hello is verified against the key it carries.
    let (h, frame) = signed_hello(&node);
    let got = decode_from_agent(&t(TopicKind::Hello), &frame, &hub, unknown).unwrap();
    assert_eq!(got.signer, Signer::Claimed(Box::new(node.public().clone())));
    assert_eq!(got.message, AgentMessage::Hello(Box::new(h.clone())));
    // Once registered, the same hello is the registered key's.
    let got = decode_from_agent(&t(TopicKind::Hello), &frame, &hub, registered).unwrap();
    assert_eq!(got.signer, Signer::Registered);
    // A hello carrying the node's key but signed by another is refused.
    let forged = encode_frame(&other, &topic("pi-1", TopicKind::Hello), &h, None).unwrap();
    let e = decode_from_agent(&t(TopicKind::Hello), &forged, &hub, unknown).unwrap_err();
    assert!(e.to_string().contains("is signed by key"), "{e}");
    // A hello copied to another node's topic is refused there.
    let e = decode_from_agent(
        &topic("pi-2", TopicKind::Hello).to_string(),
        &frame,
        &hub,
        unknown,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("must match the node in the topic"),
        "{e}"
    );

    let s = encode_frame(&node, &topic("pi-1", TopicKind::Status), &status(1), None).unwrap();
    let got = decode_from_agent(&t(TopicKind::Status), &s, &hub, registered).unwrap();
    assert!(matches!(got.message, AgentMessage::Status(_)));
    // Status of an unknown node, or signed by another key: refused.
    let e = decode_from_agent(&t(TopicKind::Status), &s, &hub, unknown).unwrap_err();
    assert!(matches!(e, ProtocolError::UnknownNode { .. }), "{e}");
    let forged = encode_frame(&other, &topic("pi-1", TopicKind::Status), &status(1), None).unwrap();
    let e = decode_from_agent(&t(TopicKind::Status), &forged, &hub, registered).unwrap_err();
    assert!(e.to_string().contains("is signed by key"), "{e}");
    // Protocol 1's plain JSON is named as such.
    let e = decode_from_agent(
        &t(TopicKind::Status),
        &encode(&status(1)).unwrap(),
        &hub,
        registered,
    )
    .unwrap_err();
    assert!(e.to_string().contains("plain JSON from protocol 1"), "{e}");
    // Even under the same key, a frame copied to another topic fails.
    let e = decode_from_agent(
        &topic("pi-2", TopicKind::Status).to_string(),
        &s,
        &hub,
        registered,
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");
    // A status published on the online topic.
    let e = decode_from_agent(
        &t(TopicKind::Online),
        &encode_frame(&node, &topic("pi-1", TopicKind::Online), &status(0), None).unwrap(),
        &hub,
        registered,
    )
    .unwrap_err();
    assert!(matches!(e, ProtocolError::WrongType { .. }), "{e}");

    // Responses travel sealed to the hub, for the request their topic names.
    let resp = RpcResponse {
        id: RpcId::new("r1").unwrap(),
        seq: 0,
        chunk: RpcChunk::output(Stream::Stdout, b"ok\n"),
    };
    let rt = topic("pi-1", TopicKind::RpcResponse(RpcId::new("r1").unwrap()));
    let sealed = encode_frame(&node, &rt, &resp, Some(hub.public())).unwrap();
    assert!(!sealed.windows(2).any(|w| w == b"ok"));
    assert!(decode_from_agent(&rt.to_string(), &sealed, &hub, registered).is_ok());
    let e = decode_from_agent(&rt.to_string(), &sealed, &other, registered).unwrap_err();
    assert!(e.to_string().contains("sealed to another key"), "{e}");
    let clear = bramble_trust::frame::sign(&node, &rt.to_string(), &encode(&resp).unwrap());
    let e = decode_from_agent(&rt.to_string(), &clear, &hub, registered).unwrap_err();
    assert!(e.to_string().contains("arrived in clear"), "{e}");
    let r2 = topic("pi-1", TopicKind::RpcResponse(RpcId::new("r2").unwrap()));
    let sealed = encode_frame(&node, &r2, &resp, Some(hub.public())).unwrap();
    let e = decode_from_agent(&r2.to_string(), &sealed, &hub, registered).unwrap_err();
    assert!(e.to_string().contains("must match the topic's id"), "{e}");
    // Hub topics are not accepted from agents.
    let e = decode_from_agent(&t(TopicKind::Desired), &s, &hub, registered).unwrap_err();
    assert!(e.to_string().contains("published by the hub"), "{e}");
    let e = decode_from_agent("bramble/v2/nodes/pi 1/status", &s, &hub, registered).unwrap_err();
    assert!(matches!(e, ProtocolError::Topic(_)), "{e}");
}

#[test]
fn an_agent_believes_only_its_pinned_hub_and_reads_only_its_own_seals() {
    let (hub, node, rogue) = (
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
        SecretKeys::generate().unwrap(),
    );
    let pinned = HubKey::Pinned(hub.public());
    let dt = topic("pi-1", TopicKind::Desired);
    let d = encode_frame(&hub, &dt, &desired(1), Some(node.public())).unwrap();
    let got = decode_from_hub("pi-1", &dt.to_string(), &d, pinned, &node).unwrap();
    assert!(matches!(got.message, HubMessage::Desired(_)));
    // Another node cannot open it; a rogue hub cannot sign one.
    let other = SecretKeys::generate().unwrap();
    assert!(decode_from_hub("pi-1", &dt.to_string(), &d, pinned, &other).is_err());
    let forged = encode_frame(&rogue, &dt, &desired(1), Some(node.public())).unwrap();
    let e = decode_from_hub("pi-1", &dt.to_string(), &forged, pinned, &node).unwrap_err();
    assert!(e.to_string().contains("is signed by key"), "{e}");
    // Before joining only a helloAck is read, from the hub the token names.
    let at = topic("pi-1", TopicKind::HelloAck);
    let ack = |keys: &SecretKeys| {
        HelloAck::Accepted(Accepted {
            session: "s1".into(),
            hub: keys_text(keys.public()),
            ..Accepted::default()
        })
    };
    let expected = HubKey::Expected(hub.public().fingerprint());
    let good = encode_frame(&hub, &at, &ack(&hub), None).unwrap();
    let got = decode_from_hub("pi-1", &at.to_string(), &good, expected, &node).unwrap();
    assert_eq!(&got.hub, hub.public());
    let e = decode_from_hub("pi-1", &dt.to_string(), &d, expected, &node).unwrap_err();
    assert!(matches!(e, ProtocolError::NotJoined), "{e}");
    let bad = encode_frame(&rogue, &at, &ack(&rogue), None).unwrap();
    let e = decode_from_hub("pi-1", &at.to_string(), &bad, expected, &node).unwrap_err();
    assert!(matches!(e, ProtocolError::HubKeyMismatch { .. }), "{e}");
    // A rogue signing an ack that names the real hub's keys fails the signature.
    let bad = encode_frame(&rogue, &at, &ack(&hub), None).unwrap();
    assert!(decode_from_hub("pi-1", &at.to_string(), &bad, expected, &node).is_err());
    // Requests are sealed; replies to agents' topics are refused.
    let rt = topic("pi-1", TopicKind::RpcRequest);
    let req = RpcRequest {
        id: RpcId::new("r1").unwrap(),
        session: "s1".into(),
        seq: 1,
        call: RpcCall::Logs(LogsCall {
            pod: PodRef {
                namespace: "default".into(),
                name: "web".into(),
                uid: None,
            },
            ..LogsCall::default()
        }),
    };
    let r = encode_frame(&hub, &rt, &req, Some(node.public())).unwrap();
    assert!(matches!(
        decode_from_hub("pi-1", &rt.to_string(), &r, pinned, &node)
            .unwrap()
            .message,
        HubMessage::RpcRequest(_)
    ));
    let st = topic("pi-1", TopicKind::Status);
    let s = encode_frame(&node, &st, &status(1), None).unwrap();
    let e = decode_from_hub("pi-1", &st.to_string(), &s, pinned, &node).unwrap_err();
    assert!(e.to_string().contains("published by agents"), "{e}");
    let e = decode_from_hub("pi-2", &dt.to_string(), &d, pinned, &node).unwrap_err();
    assert!(e.to_string().contains("belongs to another node"), "{e}");
}

/// Encoded sizes of realistic payloads; `BRAMBLE_PRINT_SIZES=1` prints them.
#[test]
fn encoded_sizes_of_twenty_pods_fit_comfortably() {
    let size = |b: Result<Vec<u8>, ProtocolError>| b.unwrap().len();
    let sizes = [
        ("hello", size(encode(&hello()))),
        ("online", size(encode(&Online::last_will("5f2c9a", 1)))),
        ("status, 1 pod", size(encode(&status(1)))),
        ("status, 20 pods", size(encode(&status(20)))),
        ("desired, 1 pod", size(encode(&desired(1)))),
        ("desired, 20 pods", size(encode(&desired(20)))),
    ];
    if std::env::var_os("BRAMBLE_PRINT_SIZES").is_some() {
        for (what, n) in sizes {
            eprintln!("{what}: {n} bytes");
        }
    }
    // Budgets: well under the limits, and a jump here is worth a look.
    assert!(sizes[3].1 < 24 * 1024, "{sizes:?}");
    assert!(sizes[5].1 < 40 * 1024, "{sizes:?}");
}
