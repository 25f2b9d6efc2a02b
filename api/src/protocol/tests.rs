//! Cross-message tests: fixtures shared by the message modules, golden JSON
//! (a rename anywhere breaks these), envelope errors, topic routing and the
//! encoded sizes of realistic payloads.

use std::collections::BTreeMap;

use serde_json::json;

use crate::objects::{ConfigMap, Pod, Secret};

use super::desired::{Desired, Generation};
use super::envelope::{
    AgentMessage, HubMessage, Message, ProtocolError, decode, decode_from_agent, decode_from_hub,
    encode,
};
use super::hello::{Cgroups, Hello, HelloAuth, Platform};
use super::network::NetworkConfig;
use super::online::Online;
use super::rpc::{RpcChunk, RpcId, RpcResponse, Stream};
use super::status::{ContainerUsage, PodReport, PodUsage, Status, Usage};

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
        labels: BTreeMap::from([("bramble.dev/room".into(), "attic".into())]),
        cgroups: Cgroups {
            version: 2,
            controllers: vec!["cpu".into(), "cpuset".into(), "io".into(), "pids".into()],
        },
        runtime: "libcontainer".into(),
        features: vec![],
        auth: HelloAuth::JoinToken("K10secret".into()),
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
    }
}

#[test]
fn golden_hello() {
    let bytes = encode(&hello()).unwrap();
    assert!(bytes.starts_with(br#"{"protocol":1,"type":"hello","body":{"#));
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v,
        json!({
            "protocol": 1,
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
                "labels": {"bramble.dev/room": "attic"},
                "cgroups": {"version": 2, "controllers": ["cpu", "cpuset", "io", "pids"]},
                "runtime": "libcontainer",
                "auth": {"joinToken": "K10secret"}
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
    };
    let bytes = encode(&d).unwrap();
    assert!(bytes.starts_with(br#"{"protocol":1,"type":"desired","body":{"generation":7,"#));
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v,
        json!({
            "protocol": 1,
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
    for o in [Online::up("s1"), Online::last_will("s1")] {
        let bytes = encode(&o).unwrap();
        assert_eq!(decode::<Online>("pi-1", &bytes).unwrap(), o);
    }
    assert_eq!(
        encode(&Online::last_will("s1")).unwrap(),
        br#"{"protocol":1,"type":"online","body":{"online":false,"session":"s1"}}"#
    );
}

#[test]
fn version_mismatch_names_both_versions() {
    let p = br#"{"protocol":2,"type":"online","body":{"online":true,"quorum":3}}"#;
    let e = decode::<Online>("pi-1", p).unwrap_err();
    assert!(matches!(
        e,
        ProtocolError::VersionMismatch {
            got: 2,
            supported: 1
        }
    ));
    assert_eq!(
        e.to_string(),
        "payload speaks protocol version 2 but this side speaks protocol version 1: \
         run the same Bramble release on the hub and the agents"
    );
    let e = decode::<Online>("pi-1", br#"{"type":"online","body":{"online":true}}"#).unwrap_err();
    assert!(
        matches!(e, ProtocolError::MissingVersion { supported: 1 }),
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
            br#"{"protocol":1,"type":"status","body":{}}"#,
            "expected a `online` message, got `status`",
        ),
        (br#"{"protocol":1,"body":{"online":true}}"#, "got `(none)`"),
        (
            br#"{"protocol":1,"type":"online","body":{"online":"yes"}}"#,
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
    let p = br#"{"protocol":1,"type":"online","sentAt":"now","body":{"online":true}}"#;
    assert!(decode::<Online>("pi-1", p).unwrap().online);
}

#[test]
fn oversized_payloads_are_refused_before_parsing() {
    let mut p = br#"{"protocol":1,"type":"online","body":{"online":true}}"#.to_vec();
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

#[test]
fn topics_route_messages_and_foreign_topics_are_refused() {
    let (t, m) =
        decode_from_agent("bramble/v1/nodes/pi-1/hello", &encode(&hello()).unwrap()).unwrap();
    assert_eq!(t.node(), "pi-1");
    assert!(matches!(m, AgentMessage::Hello(_)));
    let status_bytes = encode(&status(1)).unwrap();
    let (_, m) = decode_from_agent("bramble/v1/nodes/pi-1/status", &status_bytes).unwrap();
    assert!(matches!(m, AgentMessage::Status(_)));

    // A hello claiming another node than its topic's.
    let e =
        decode_from_agent("bramble/v1/nodes/pi-2/hello", &encode(&hello()).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("must match the node in the topic"),
        "{e}"
    );
    // A status published on the online topic.
    let small = encode(&status(0)).unwrap();
    let e = decode_from_agent("bramble/v1/nodes/pi-1/online", &small).unwrap_err();
    assert!(matches!(e, ProtocolError::WrongType { .. }), "{e}");
    // Hub topics are not accepted from agents, and vice versa.
    let desired_bytes = encode(&desired(1)).unwrap();
    let e = decode_from_agent("bramble/v1/nodes/pi-1/desired", &desired_bytes).unwrap_err();
    assert!(e.to_string().contains("published by the hub"), "{e}");
    let e = decode_from_hub("pi-1", "bramble/v1/nodes/pi-1/status", &status_bytes).unwrap_err();
    assert!(e.to_string().contains("published by agents"), "{e}");
    let e = decode_from_hub("pi-2", "bramble/v1/nodes/pi-1/desired", &desired_bytes).unwrap_err();
    assert!(e.to_string().contains("belongs to another node"), "{e}");
    assert!(matches!(
        decode_from_hub("pi-1", "bramble/v1/nodes/pi-1/desired", &desired_bytes).unwrap(),
        HubMessage::Desired(_)
    ));
    let e = decode_from_agent("bramble/v1/nodes/pi 1/status", &status_bytes).unwrap_err();
    assert!(matches!(e, ProtocolError::Topic(_)), "{e}");

    // A response must be for the request its topic names.
    let resp = RpcResponse {
        id: RpcId::new("r1").unwrap(),
        seq: 0,
        chunk: RpcChunk::output(Stream::Stdout, b"ok\n"),
    };
    let bytes = encode(&resp).unwrap();
    assert!(decode_from_agent("bramble/v1/nodes/pi-1/rpc/resp/r1", &bytes).is_ok());
    let e = decode_from_agent("bramble/v1/nodes/pi-1/rpc/resp/r2", &bytes).unwrap_err();
    assert!(e.to_string().contains("must match the topic's id"), "{e}");
}

/// Encoded sizes of realistic payloads; `BRAMBLE_PRINT_SIZES=1` prints them.
#[test]
fn encoded_sizes_of_twenty_pods_fit_comfortably() {
    let size = |b: Result<Vec<u8>, ProtocolError>| b.unwrap().len();
    let sizes = [
        ("hello", size(encode(&hello()))),
        ("online", size(encode(&Online::last_will("5f2c9a")))),
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
