//! Scenario tests of the whole decision: filters, scores, batch and message.

use bramble_api::objects::{Node, Pod};
use bramble_images::Platform;
use serde_json::{Value, json};

use super::*;

/// A Ready arm64 node with `cpu` and `memory` allocatable.
fn node(name: &str, cpu: &str, memory: &str) -> Node {
    node_with(name, cpu, memory, json!({}))
}

/// Like [`node`], with `extra` merged into the top level (`spec`, `metadata`)
/// or into `status` (`status`).
fn node_with(name: &str, cpu: &str, memory: &str, extra: Value) -> Node {
    let mut n = json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"architecture": "arm64", "operatingSystem": "linux"}
        }
    });
    merge(&mut n, extra);
    serde_json::from_value(n).unwrap()
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// A pod of one container `app` (image `web:1`) with `spec` merged in.
fn pod(name: &str, spec: Value) -> Pod {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "web:1"}]}
    });
    merge(&mut p["spec"], spec);
    serde_json::from_value(p).unwrap()
}

/// A pod requesting `cpu` and `memory`.
fn sized(name: &str, cpu: &str, memory: &str) -> Pod {
    pod(
        name,
        json!({"containers": [{"name": "app", "image": "web:1",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}),
    )
}

fn bound(mut p: Pod, node: &str) -> Pod {
    p.spec.node_name = Some(node.into());
    p
}

fn no_images() -> ImagePlatforms {
    ImagePlatforms::new()
}

fn place(c: &Cluster, p: &Pod) -> Result<String, String> {
    schedule(c, p, None, &no_images())
        .map(|pl| pl.node)
        .map_err(|e| e.to_string())
}

#[test]
fn six_replicas_spread_two_per_node() {
    let nodes = [
        node("pi-c", "4", "4Gi"),
        node("pi-a", "4", "4Gi"),
        node("pi-b", "4", "4Gi"),
    ];
    for replica in [pod("r", json!({})), sized("r", "100m", "64Mi")] {
        let mut c = Cluster::new(&nodes);
        let pods: Vec<Pod> = (0..6).map(|_| replica.clone()).collect();
        let pending: Vec<PendingPod> = pods
            .iter()
            .map(|pod| PendingPod {
                pod,
                workload: Some("default/Deployment/web"),
                volumes: None,
            })
            .collect();
        let got: Vec<String> = schedule_batch(&mut c, &pending, &no_images())
            .into_iter()
            .map(|r| r.unwrap().node)
            .collect();
        assert_eq!(got, ["pi-a", "pi-b", "pi-c", "pi-a", "pi-b", "pi-c"]);
        for n in ["pi-a", "pi-b", "pi-c"] {
            assert_eq!(c.replicas_on("default/Deployment/web", n), 2);
            assert_eq!(c.pods_on(n), 6 / 3);
        }
    }
}

#[test]
fn spread_counts_bound_replicas_and_beats_least_allocated() {
    // pi-a is emptier, but already has the workload's replica.
    let mut c = Cluster::new(&[node("pi-a", "8", "16Gi"), node("pi-b", "4", "4Gi")]);
    assert!(c.add_pod(&bound(pod("r0", json!({})), "pi-a"), Some("w")));
    let p = pod("r1", json!({}));
    assert_eq!(
        schedule(&c, &p, Some("w"), &no_images()).unwrap().node,
        "pi-b"
    );
    // Without the workload key, least-allocated picks the bigger node.
    assert_eq!(place(&c, &p).unwrap(), "pi-a");
}

#[test]
fn least_allocated_prefers_the_emptier_node() {
    let mut c = Cluster::new(&[node("pi-a", "4", "4Gi"), node("pi-b", "4", "4Gi")]);
    c.add_pod(&bound(sized("big", "2", "2Gi"), "pi-a"), None);
    assert_eq!(place(&c, &sized("p", "500m", "256Mi")).unwrap(), "pi-b");
    assert_eq!(
        c.requested_on("pi-a"),
        Resources {
            cpu_millis: 2000,
            memory_bytes: 2 << 30
        }
    );
}

#[test]
fn ties_go_to_the_first_name_whatever_the_input_order() {
    let c = Cluster::new(&[node("pi-z", "4", "4Gi"), node("pi-m", "4", "4Gi")]);
    assert_eq!(place(&c, &pod("p", json!({}))).unwrap(), "pi-m");
    assert_eq!(c.node_names().collect::<Vec<_>>(), ["pi-m", "pi-z"]);
}

#[test]
fn two_nodes_one_short_of_memory() {
    let mut c = Cluster::new(&[node("pi-a", "4", "1Gi"), node("pi-b", "4", "4Gi")]);
    let p = sized("p", "100m", "2Gi");
    assert_eq!(place(&c, &p).unwrap(), "pi-b");
    // Fill pi-b: now neither fits.
    c.add_pod(&bound(sized("hog", "100m", "3Gi"), "pi-b"), None);
    assert_eq!(
        place(&c, &p).unwrap_err(),
        "0/2 nodes are available: 2 Insufficient memory."
    );
}

#[test]
fn cpu_and_pod_slots_are_checked_and_all_short_resources_reported() {
    let small = node_with(
        "pi-a",
        "1",
        "512Mi",
        json!({"status": {"allocatable": {"pods": "1"}}}),
    );
    let mut c = Cluster::new(&[small]);
    c.add_pod(&bound(pod("other", json!({})), "pi-a"), None);
    assert_eq!(
        place(&c, &sized("p", "2", "1Gi")).unwrap_err(),
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many pods."
    );
}

#[test]
fn init_containers_count_as_their_max_against_free_capacity() {
    let c = Cluster::new(&[node("pi-a", "1500m", "4Gi")]);
    let p = pod(
        "p",
        json!({
            "initContainers": [{"name": "migrate", "image": "web:1",
                "resources": {"requests": {"cpu": "2"}}}],
            "containers": [{"name": "app", "image": "web:1",
                "resources": {"requests": {"cpu": "500m"}}}]
        }),
    );
    assert_eq!(
        place(&c, &p).unwrap_err(),
        "0/1 nodes are available: 1 Insufficient cpu."
    );
}

#[test]
fn finished_and_unbound_pods_hold_nothing() {
    let mut c = Cluster::new(&[node("pi-a", "1", "1Gi")]);
    let mut done = bound(sized("done", "1", "1Gi"), "pi-a");
    done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
    assert!(!c.add_pod(&done, None));
    assert!(!c.add_pod(&sized("pending", "1", "1Gi"), None));
    assert!(!c.add_pod(&bound(sized("elsewhere", "1", "1Gi"), "gone"), None));
    assert_eq!(place(&c, &sized("p", "1", "1Gi")).unwrap(), "pi-a");
}

#[test]
fn not_ready_and_cordoned_nodes_are_skipped() {
    let not_ready = node_with(
        "pi-a",
        "4",
        "4Gi",
        json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
    );
    let cordoned = node_with("pi-b", "4", "4Gi", json!({"spec": {"unschedulable": true}}));
    let c = Cluster::new(&[not_ready, cordoned]);
    assert_eq!(
        place(&c, &pod("p", json!({}))).unwrap_err(),
        "0/2 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable."
    );
    // Tolerating the matching taints lets a pod through, as in Kubernetes.
    let p = pod(
        "p",
        json!({"tolerations": [
            {"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}
        ]}),
    );
    assert_eq!(place(&c, &p).unwrap(), "pi-b");
    let p = pod(
        "p",
        json!({"tolerations": [{"key": TAINT_NOT_READY, "operator": "Exists"}]}),
    );
    assert_eq!(place(&c, &p).unwrap(), "pi-a");
}

#[test]
fn arch_filter_with_a_multi_arch_image() {
    let armv7 = node_with(
        "pi-armv7",
        "4",
        "4Gi",
        json!({"status": {"nodeInfo": {"architecture": "armv7l"}}}),
    );
    let amd64 = node_with(
        "x86",
        "4",
        "4Gi",
        json!({"status": {"nodeInfo": {"architecture": "amd64"}}}),
    );
    let unknown = node_with(
        "mystery",
        "4",
        "4Gi",
        json!({"status": {"nodeInfo": {"architecture": ""}}}),
    );
    let plat = |s: &[&str]| s.iter().map(|p| p.parse::<Platform>().unwrap()).collect();
    let images: ImagePlatforms = [
        ("web:1".to_string(), plat(&["linux/amd64", "linux/arm64"])),
        ("sensor:2".to_string(), plat(&["linux/arm64"])),
    ]
    .into();
    let pick = |c: &Cluster, p: &Pod| {
        schedule(c, p, None, &images)
            .map(|pl| pl.node)
            .map_err(|e| e.to_string())
    };

    let c = Cluster::new(&[armv7.clone(), amd64.clone(), node("pi-arm64", "1", "1Gi")]);
    let web = pod("p", json!({}));
    // amd64 is the emptiest of the two that fit; armv7 is filtered out.
    assert_eq!(pick(&c, &web).unwrap(), "x86");
    let sensor = pod(
        "p",
        json!({"containers": [{"name": "app", "image": "sensor:2"}]}),
    );
    assert_eq!(pick(&c, &sensor).unwrap(), "pi-arm64");

    let c = Cluster::new(&[armv7, amd64]);
    assert_eq!(
        pick(&c, &sensor).unwrap_err(),
        "0/2 nodes are available: 2 node(s) didn't match the platforms of the pod's images (linux/arm64 only)."
    );
    // The pod needs both images: only what they share counts.
    let both = pod(
        "p",
        json!({"initContainers": [{"name": "init", "image": "web:1"}],
               "containers": [{"name": "app", "image": "sensor:2"}]}),
    );
    assert!(pick(&c, &both).unwrap_err().contains("(linux/arm64 only)"));
    // An image the registry does not know, or a node that reports no
    // architecture, passes.
    let c = Cluster::new(&[unknown]);
    assert_eq!(pick(&c, &sensor).unwrap(), "mystery");
    let c = Cluster::new(&[node_with(
        "x86",
        "4",
        "4Gi",
        json!({"status": {"nodeInfo": {"architecture": "amd64"}}}),
    )]);
    let other = pod(
        "p",
        json!({"containers": [{"name": "app", "image": "other:1"}]}),
    );
    assert_eq!(pick(&c, &other).unwrap(), "x86");
}

#[test]
fn taints_and_tolerations() {
    let tainted = |name: &str, taints: Value| {
        node_with(name, "4", "4Gi", json!({"spec": {"taints": taints}}))
    };
    let c = Cluster::new(&[
        tainted(
            "pi-a",
            json!([{"key": "dedicated", "value": "sensors", "effect": "NoSchedule"}]),
        ),
        tainted(
            "pi-b",
            json!([{"key": "maintenance", "effect": "NoExecute"}]),
        ),
        tainted(
            "pi-c",
            json!([{"key": "spot", "effect": "PreferNoSchedule"}]),
        ),
    ]);
    // PreferNoSchedule does not filter.
    assert_eq!(place(&c, &pod("p", json!({}))).unwrap(), "pi-c");

    let only = |names: &[&str]| {
        Cluster::new(
            &c.nodes
                .iter()
                .filter(|n| names.contains(&n.name.as_str()))
                .map(|n| {
                    let taints = serde_json::to_value(&n.taints).unwrap();
                    tainted(&n.name, taints)
                })
                .collect::<Vec<_>>(),
        )
    };
    let ab = only(&["pi-a", "pi-b"]);
    assert_eq!(
        place(&ab, &pod("p", json!({}))).unwrap_err(),
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: sensors}, \
         1 node(s) had untolerated taint {maintenance: }."
    );
    let with = |tols: Value| pod("p", json!({"tolerations": tols}));
    // Equal with the value.
    let eq = with(
        json!([{"key": "dedicated", "operator": "Equal", "value": "sensors", "effect": "NoSchedule"}]),
    );
    assert_eq!(place(&ab, &eq).unwrap(), "pi-a");
    // Wrong value, or wrong effect: not tolerated.
    let wrong_value = with(json!([{"key": "dedicated", "value": "cameras"}]));
    assert!(place(&only(&["pi-a"]), &wrong_value).is_err());
    let wrong_effect =
        with(json!([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]));
    assert!(place(&only(&["pi-a"]), &wrong_effect).is_err());
    // Exists on the key, any value; empty effect matches every effect.
    let exists = with(json!([{"key": "maintenance", "operator": "Exists"}]));
    assert_eq!(place(&ab, &exists).unwrap(), "pi-b");
    // Empty key with Exists tolerates everything.
    let all = with(json!([{"operator": "Exists"}]));
    assert_eq!(place(&ab, &all).unwrap(), "pi-a");
}

#[test]
fn node_selector_and_affinity_operators() {
    let labelled = |name: &str, labels: Value| {
        node_with(name, "4", "4Gi", json!({"metadata": {"labels": labels}}))
    };
    let c = Cluster::new(&[
        labelled("pi-1", json!({"zone": "barn", "cores": "4", "camera": ""})),
        labelled("pi-2", json!({"zone": "field", "cores": "2"})),
        labelled(
            "pi-3",
            json!({"zone": "house", "cores": "8", "legacy": "yes"}),
        ),
    ]);
    let feasible = |spec: Value| -> Vec<String> {
        let p = pod("p", spec);
        let mut out = Vec::new();
        let mut c = c.clone();
        // Collect every feasible node by cordoning the winner each time.
        while let Ok(pl) = schedule(&c, &p, None, &no_images()) {
            out.push(pl.node.clone());
            let i = c.nodes.iter().position(|n| n.name == pl.node).unwrap();
            c.nodes[i].unschedulable = true;
        }
        out.sort();
        out
    };
    let req = |terms: Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": terms}}}})
    };
    let expr = |key: &str, op: &str, values: &[&str]| {
        req(json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]))
    };

    assert_eq!(
        feasible(json!({"nodeSelector": {"zone": "barn"}})),
        ["pi-1"]
    );
    assert_eq!(
        feasible(expr("zone", "In", &["barn", "field"])),
        ["pi-1", "pi-2"]
    );
    assert_eq!(feasible(expr("zone", "NotIn", &["barn"])), ["pi-2", "pi-3"]);
    assert_eq!(feasible(expr("camera", "Exists", &[])), ["pi-1"]);
    assert_eq!(
        feasible(expr("legacy", "DoesNotExist", &[])),
        ["pi-1", "pi-2"]
    );
    assert_eq!(feasible(expr("cores", "Gt", &["2"])), ["pi-1", "pi-3"]);
    assert_eq!(feasible(expr("cores", "Lt", &["8"])), ["pi-1", "pi-2"]);
    // matchFields on metadata.name.
    assert_eq!(
        feasible(req(
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["pi-3"]}]}])
        )),
        ["pi-3"]
    );
    // Terms are ORed, expressions within a term ANDed.
    assert_eq!(
        feasible(req(json!([
            {"matchExpressions": [
                {"key": "cores", "operator": "Gt", "values": ["2"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]},
            {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["pi-1", "pi-3"]}]}
        ]))),
        ["pi-1", "pi-2"]
    );
    // nodeSelector and affinity must both hold.
    let mut both = expr("zone", "In", &["barn", "field"]);
    both["nodeSelector"] = json!({"cores": "2"});
    assert_eq!(feasible(both), ["pi-2"]);

    let p = pod("p", expr("zone", "In", &["moon"]));
    assert_eq!(
        schedule(&c, &p, None, &no_images())
            .unwrap_err()
            .to_string(),
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    );
}

#[test]
fn host_port_conflicts() {
    let web = |name: &str, port: Value| {
        pod(
            name,
            json!({"containers": [{"name": "app", "image": "web:1", "ports": [port]}]}),
        )
    };
    let mut c = Cluster::new(&[node("pi-a", "4", "4Gi"), node("pi-b", "4", "4Gi")]);
    c.add_pod(
        &bound(
            web("ingress", json!({"containerPort": 80, "hostPort": 80})),
            "pi-a",
        ),
        None,
    );
    let same = web("p", json!({"containerPort": 8080, "hostPort": 80}));
    assert_eq!(place(&c, &same).unwrap(), "pi-b");
    // Another protocol does not conflict: both nodes fit.
    let udp = web(
        "p",
        json!({"containerPort": 80, "hostPort": 80, "protocol": "UDP"}),
    );
    assert_eq!(schedule(&c, &udp, None, &no_images()).unwrap().feasible, 2);

    // In a batch, the second and third copies see the first ones.
    let pods: Vec<Pod> = (0..3)
        .map(|i| {
            web(
                &format!("w{i}"),
                json!({"containerPort": 9000, "hostPort": 9000, "hostIP": "10.0.0.1"}),
            )
        })
        .collect();
    let pending: Vec<PendingPod> = pods
        .iter()
        .map(|pod| PendingPod {
            pod,
            workload: None,
            volumes: None,
        })
        .collect();
    let got: Vec<Result<String, String>> = schedule_batch(&mut c, &pending, &no_images())
        .into_iter()
        .map(|r| r.map(|p| p.node).map_err(|e| e.to_string()))
        .collect();
    assert_eq!(got[0].as_deref(), Ok("pi-b"), "pi-a is fuller");
    assert_eq!(got[1].as_deref(), Ok("pi-a"));
    assert_eq!(
        got[2].as_ref().unwrap_err(),
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    );
    // Another specific IP does not conflict with a specific IP; every address does.
    let other_ip = web(
        "p",
        json!({"containerPort": 9000, "hostPort": 9000, "hostIP": "10.0.0.2"}),
    );
    assert!(place(&c, &other_ip).is_ok());
    let any_ip = web("p", json!({"containerPort": 9000, "hostPort": 9000}));
    assert!(place(&c, &any_ip).is_err());
}

#[test]
fn message_for_the_issue_example_and_first_failure_only() {
    let c = Cluster::new(&[
        node("pi-a", "4", "1Gi"),
        node("pi-b", "4", "1Gi"),
        node_with(
            "pi-c",
            "4",
            "1Gi",
            json!({"metadata": {"labels": {"zone": "barn"}}}),
        ),
    ]);
    let p = {
        let mut p = sized("p", "100m", "2Gi");
        p.spec.node_selector.insert("zone".into(), "barn".into());
        p
    };
    // pi-c matches the selector and lacks memory; pi-a and pi-b lack memory
    // too but fail the selector first, and a node reports its first failure.
    assert_eq!(
        place(&c, &p).unwrap_err(),
        "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector."
    );
    let err = schedule(&Cluster::new(&[]), &p, None, &no_images()).unwrap_err();
    assert_eq!(err.nodes, 0);
    assert_eq!(err.to_string(), "no nodes available to schedule pods");
}

#[test]
fn workload_key_is_the_controller_owner() {
    let mut p = pod("web-abc", json!({}));
    assert_eq!(workload_key(&p), None);
    p.metadata.owner_references = serde_json::from_value(json!([
        {"apiVersion": "v1", "kind": "Service", "name": "x", "uid": "1"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "2", "controller": true}
    ]))
    .unwrap();
    assert_eq!(workload_key(&p).as_deref(), Some("default/Deployment/web"));
}

#[test]
fn scores() {
    let c = Cluster::new(&[node("pi-a", "1", "1000Mi")]);
    let n = &c.nodes[0];
    let pod = Resources {
        cpu_millis: 250,
        memory_bytes: 500 << 20,
    };
    // cpu 75 free, memory 50 free.
    assert_eq!(score::least_allocated(n, pod), 62);
    let too_big = Resources {
        cpu_millis: 2000,
        memory_bytes: 0,
    };
    assert_eq!(score::least_allocated(n, too_big), 50);
    assert_eq!(score::spread(0, 0), MAX_NODE_SCORE);
    assert_eq!(score::spread(0, 2), 100);
    assert_eq!(score::spread(1, 2), 50);
    assert_eq!(score::spread(2, 2), 0);
    assert_eq!(
        score::total(62, 50),
        62 * LEAST_ALLOCATED_WEIGHT + 50 * SPREAD_WEIGHT
    );
}
