//! StatefulSets end to end: a real hub, three agents, busybox containers
//! and `local-path` claims. Each pod of a StatefulSet of 3 gets its own
//! claim on its own node and writes its name there; deleting every pod
//! brings each back on its node with its data; scaling to 1 and back to 3
//! finds the data of ordinals 1 and 2 again; `bramble rollout restart`
//! replaces them from the highest ordinal down and `bramble rollout status`
//! follows it; the claims outlive the StatefulSet.
//! `db-1.db.default.svc.cluster.local` resolves to db-1's address from the
//! hub's DNS server and, with `nslookup` inside db-0, from db-0's node's
//! agent.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster, IDLE, is_ready};
use bramble_tests::eventually;
use serde_json::{Value, json};

const STS: &str = "/apis/apps/v1/namespaces/default/statefulsets";
const CLAIMS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";
const PODS: &str = "/api/v1/namespaces/default/pods";
const SERVICES: &str = "/api/v1/namespaces/default/services";

/// StatefulSet `db` of `replicas` busybox pods: each writes its name to
/// its claim `data` once, and appends a line per start.
fn statefulset(replicas: i64) -> Value {
    let script = format!(
        "[ -e /data/name ] || echo $POD_NAME > /data/name; echo start >> /data/starts; {IDLE}"
    );
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "main", "image": "busybox:e2e",
                        "command": ["sh", "-c", script],
                        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}},
                        "readinessProbe": {"exec": {"command": ["test", "-s", "/data/name"]}, "periodSeconds": 1},
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                    }]
                }
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
            }]
        }
    })
}

fn get(c: &Cluster, path: &str) -> Option<Value> {
    let (code, v) = c.client().get(path);
    (code == 200).then_some(v)
}

/// `name → (node, uid, ip)` of the Running and Ready pods of `db`, once
/// exactly `want` are, none terminating.
fn ready(c: &Cluster, want: usize) -> BTreeMap<String, (String, String, String)> {
    eventually(
        format!("{want} Ready pods of db"),
        Duration::from_secs(180),
        || {
            let pods = c.pods("app=db");
            let ok: BTreeMap<String, (String, String, String)> = pods
                .iter()
                .filter(|p| {
                    p["status"]["phase"] == "Running"
                        && is_ready(p)
                        && p["metadata"]["deletionTimestamp"].is_null()
                })
                .map(|p| {
                    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                    (
                        s(&p["metadata"]["name"]),
                        (
                            s(&p["spec"]["nodeName"]),
                            s(&p["metadata"]["uid"]),
                            s(&p["status"]["podIP"]),
                        ),
                    )
                })
                .collect();
            (pods.len() == want && ok.len() == want).then_some(ok)
        },
    )
}

/// The directory of claim `claim`'s volume on its node.
fn volume_dir(c: &Cluster, claim: &str) -> PathBuf {
    let (volume, node) = eventually(
        format!("claim {claim} Bound"),
        Duration::from_secs(60),
        || {
            let v = get(c, &format!("{CLAIMS}/{claim}"))?;
            let name = v["spec"]["volumeName"].as_str()?.to_string();
            let pv = get(c, &format!("/api/v1/persistentvolumes/{name}"))?;
            let node =
                pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"]
                    [0]["values"][0]
                    .as_str()?
                    .to_string();
            (v["status"]["phase"] == "Bound").then_some((name, node))
        },
    );
    let agent = c.agents.iter().find(|a| a.name == node).expect("its node");
    agent.data_dir.join("volumes").join(volume)
}

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The A records the DNS server at `server` gives for `name`.
fn resolve(server: SocketAddr, name: &str) -> Vec<Ipv4Addr> {
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(&q, server).unwrap();
    let mut buf = [0u8; 512];
    let Ok(n) = sock.recv(&mut buf) else {
        return Vec::new();
    };
    let r = &buf[..n];
    let answers = u16::from_be_bytes([r[6], r[7]]);
    // Past the header and the question (echoed as sent).
    let mut i = q.len();
    let mut out = Vec::new();
    for _ in 0..answers {
        // A compressed name pointer (2 bytes), or a name of labels.
        if r[i] & 0xc0 == 0xc0 {
            i += 2;
        } else {
            while r[i] != 0 {
                i += 1 + r[i] as usize;
            }
            i += 1;
        }
        let rtype = u16::from_be_bytes([r[i], r[i + 1]]);
        let len = u16::from_be_bytes([r[i + 8], r[i + 9]]) as usize;
        i += 10;
        if rtype == 1 && len == 4 {
            out.push(Ipv4Addr::new(r[i], r[i + 1], r[i + 2], r[i + 3]));
        }
        i += len;
    }
    out
}

/// The hub's DNS address, from its log line `DNS serving addr=...`.
fn hub_dns(c: &Cluster) -> SocketAddr {
    eventually("the hub's DNS address", Duration::from_secs(10), || {
        c.hub
            .proc
            .log()
            .lines()
            .find(|l| l.contains("DNS serving"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.parse().ok())
    })
}

#[test]
fn statefulset_pods_keep_their_names_nodes_and_data() {
    let c = Cluster::start(Broker::Embedded, 3, &[]);
    c.push_busybox("busybox", "e2e");
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 80}]}});
    let (code, v) = c.client().post(SERVICES, &service);
    assert_eq!(code, 201, "{v}");
    let (code, v) = c.client().post(STS, &statefulset(3));
    assert_eq!(code, 201, "{v}");

    // Three pods, created in order, each on its own node with its claim.
    let first = ready(&c, 3);
    let names: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    let created = |n: &str| {
        get(&c, &format!("{PODS}/{n}")).unwrap()["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(created("db-0") <= created("db-1") && created("db-1") <= created("db-2"));
    let nodes: std::collections::BTreeSet<&str> = first.values().map(|v| v.0.as_str()).collect();
    assert_eq!(nodes.len(), 3, "spread over the 3 nodes: {first:?}");
    let dirs: BTreeMap<String, PathBuf> = names
        .iter()
        .map(|n| (n.to_string(), volume_dir(&c, &format!("data-{n}"))))
        .collect();
    for (n, dir) in &dirs {
        eventually(
            format!("{n} wrote its name"),
            Duration::from_secs(30),
            || (read(dir, "name") == *n).then_some(()),
        );
    }
    let pod = get(&c, &format!("{PODS}/db-1")).unwrap();
    assert_eq!(pod["spec"]["hostname"], "db-1");
    assert_eq!(pod["spec"]["subdomain"], "db");
    assert_eq!(
        pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "db-1"
    );
    let (ok, out) = c.cli(&["get", "sts"]);
    assert!(ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().take(2).eq(["db", "3/3"])),
        "{out}"
    );

    // db-1's name resolves to its address (the hub's DNS server).
    let dns = hub_dns(&c);
    let ip: Ipv4Addr = first["db-1"].2.parse().expect("db-1 has an address");
    eventually("db-1.db resolves", Duration::from_secs(30), || {
        (resolve(dns, "db-1.db.default.svc.cluster.local") == [ip]).then_some(())
    });
    // And inside db-0, from its node's agent (db-1 runs on another node).
    eventually("db-1.db resolves in db-0", Duration::from_secs(30), || {
        let (ok, out) = c.cli(&[
            "exec",
            "db-0",
            "--",
            "busybox",
            "nslookup",
            "db-1.db.default.svc.cluster.local",
        ]);
        (ok && out.contains(&ip.to_string())).then_some(())
    });

    // Every pod deleted: each comes back on its node, with its data.
    for n in &names {
        let (code, v) = c.client().delete(&format!("{PODS}/{n}"));
        assert!(code == 200 || code == 202, "{code} {v}");
    }
    let second = eventually("every pod replaced", Duration::from_secs(180), || {
        let now = ready(&c, 3);
        now.iter().all(|(n, v)| v.1 != first[n].1).then_some(now)
    });
    for n in &names {
        assert_eq!(second[*n].0, first[*n].0, "{n} on the node of its volume");
        let dir = &dirs[*n];
        assert_eq!(read(dir, "name"), *n, "{n}'s data");
        eventually(
            format!("{n} started twice"),
            Duration::from_secs(30),
            || (read(dir, "starts").lines().count() == 2).then_some(()),
        );
    }

    // Scale to 1 and back to 3: the claims of 1 and 2 stayed, and their data.
    // A merge patch, as `kubectl scale` sends: a get-and-put could meet the
    // controller's status write in between (409, stale resourceVersion).
    let scale = |n: i64| {
        let (code, v) = c
            .client()
            .merge_patch(&format!("{STS}/db"), &json!({"spec": {"replicas": n}}));
        assert_eq!(code, 200, "{v}");
    };
    scale(1);
    ready(&c, 1);
    for n in ["db-1", "db-2"] {
        let claim = get(&c, &format!("{CLAIMS}/data-{n}")).expect("the claim is kept");
        assert_eq!(claim["status"]["phase"], "Bound");
        assert_eq!(read(&dirs[n], "name"), n);
    }
    scale(3);
    let third = ready(&c, 3);
    for n in ["db-1", "db-2"] {
        assert_eq!(third[n].0, first[n].0, "{n} back on its node");
        assert_eq!(read(&dirs[n], "name"), n);
        eventually(
            format!("{n} started again"),
            Duration::from_secs(30),
            || (read(&dirs[n], "starts").lines().count() == 3).then_some(()),
        );
    }
    let status = eventually("the status caught up", Duration::from_secs(30), || {
        let s = get(&c, &format!("{STS}/db"))?["status"].clone();
        (s["readyReplicas"] == 3).then_some(s)
    });
    assert_eq!(
        status["currentRevision"], status["updateRevision"],
        "{status}"
    );
    assert_eq!(status["updatedReplicas"], 3, "{status}");

    // `rollout restart`: a new template, pods replaced from the highest
    // ordinal down, each on its node with its data; `rollout status` waits.
    let (ok, out) = c.cli(&["rollout", "restart", "statefulset/db"]);
    assert!(ok && out.contains("statefulset.apps/db restarted"), "{out}");
    let (ok, out) = c.cli(&["rollout", "status", "statefulset/db", "--timeout", "5m"]);
    assert!(ok, "{out}");
    assert!(
        out.trim_end()
            .ends_with("partitioned roll out complete: 3 new pods have been updated..."),
        "{out}"
    );
    let restarted = ready(&c, 3);
    for n in &names {
        assert_ne!(restarted[*n].1, third[*n].1, "{n} replaced");
        assert_eq!(restarted[*n].0, first[*n].0, "{n} on its node");
        assert_eq!(read(&dirs[*n], "name"), *n);
    }
    assert!(created("db-2") <= created("db-1") && created("db-1") <= created("db-0"));

    // Deleting the StatefulSet takes its pods, not its claims.
    let (code, v) = c.client().delete(&format!("{STS}/db"));
    assert_eq!(code, 200, "{v}");
    eventually("the pods collected", Duration::from_secs(90), || {
        c.pods("app=db").is_empty().then_some(())
    });
    for n in &names {
        assert!(
            get(&c, &format!("{CLAIMS}/data-{n}")).is_some(),
            "data-{n} kept"
        );
        let (code, v) = c.client().delete(&format!("{CLAIMS}/data-{n}"));
        assert_eq!(code, 200, "{v}");
    }
    for dir in dirs.values() {
        eventually(
            "the volume's directory deleted",
            Duration::from_secs(90),
            || (!dir.exists()).then_some(()),
        );
    }
}
