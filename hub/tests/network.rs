//! The hub's network plan end to end with scripted agents over the embedded
//! broker: pod CIDRs handed out at join, ClusterIPs and node ports assigned
//! by the API, Endpoints following pod readiness, and each node's desired
//! set carrying routes to the other nodes and the service table; a node's
//! report of addresses outside its pod range is taken without them.

mod mqtt_support;

use bramble_api::protocol::{Desired, HubMessage, TopicKind};
use bramble_api::resource::by_plural;
use bramble_hub::testing::TestHub;
use bramble_tests::Client;
use bramble_tests::eventually_async;
use mqtt_support::{TestAgent, WAIT, create_pod, join_with_network, pod_status};
use serde_json::{Value, json};

const SERVICES: &str = "/api/v1/namespaces/default/services";

/// Reads `agent`'s desired sets until one satisfies `want`.
async fn desired_until(agent: &mut TestAgent, want: impl Fn(&Desired) -> bool) -> Desired {
    loop {
        let (topic, payload) = agent.next_message().await;
        if let Ok(HubMessage::Desired(d)) = agent.open(&topic, &payload, None).map(|m| m.message)
            && want(&d)
        {
            return d;
        }
    }
}

fn endpoints_of(d: &Desired, svc: &str) -> Vec<String> {
    let n = d.network.as_ref().expect("network in the desired set");
    n.services
        .iter()
        .find(|s| s.name == svc)
        .map(|s| {
            s.ports[0]
                .endpoints
                .iter()
                .map(|e| format!("{}:{}", e.ip, e.port))
                .collect()
        })
        .unwrap_or_default()
}

/// The A records of `name` from the DNS server at `server` (over UDP).
fn resolve(server: std::net::SocketAddr, name: &str) -> Vec<String> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut q = Message::new();
    q.set_id(1)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    sock.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).unwrap();
    Message::from_vec(&buf[..n])
        .unwrap()
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_cidrs_cluster_ips_endpoints_and_desired_network() {
    mqtt_support::init_logs();
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let h = hub.hub();
    let addr = h.mqtt_addr().unwrap();
    let store = h.store().clone();
    let token = h.join_token().to_string();
    let (url, admin, ca) = (hub.url(), hub.token().to_string(), hub.ca_pem());
    let client = || Client::with_ca(&url, &admin, ca.as_bytes());

    // Pod CIDRs in join order; the Node objects say them and the LAN address.
    let (mut n1, cidr1) = join_with_network(addr, &token, "n1", "10.77.0.11").await;
    let (n2, cidr2) = join_with_network(addr, &token, "n2", "10.77.0.12").await;
    assert_eq!(
        (cidr1.as_str(), cidr2.as_str()),
        ("10.42.0.0/26", "10.42.0.64/26")
    );
    let node = store
        .get(by_plural("", "v1", "nodes").unwrap(), None, "n2")
        .unwrap()
        .unwrap();
    assert_eq!(node["spec"]["podCIDR"], "10.42.0.64/26");
    assert_eq!(
        node["status"]["addresses"][0],
        json!({"type": "InternalIP", "address": "10.77.0.12"})
    );

    // ClusterIPs and node ports from the API; kept on apply, clashes refused.
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    let c2 = client();
    let svc2 = svc.clone();
    let (code, created) = blocking(move || c2.post(SERVICES, &svc2)).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["clusterIP"], "10.43.0.11");
    assert_eq!(created["spec"]["ports"][0]["nodePort"], 30000);
    let c2 = client();
    let (code, replaced) = blocking(move || c2.put(&format!("{SERVICES}/web"), &svc)).await;
    assert_eq!(code, 200, "{replaced}");
    assert_eq!(replaced["spec"]["clusterIP"], "10.43.0.11");
    assert_eq!(replaced["spec"]["ports"][0]["nodePort"], 30000);
    let clash = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "other"},
        "spec": {"clusterIP": "10.43.0.11", "ports": [{"port": 80}]}});
    let c2 = client();
    let (code, st) = blocking(move || c2.post(SERVICES, &clash)).await;
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"].as_str().unwrap().contains("spec.clusterIP")
            && st["message"]
                .as_str()
                .unwrap()
                .contains("already allocated"),
        "{st}"
    );

    // Ready pods on both nodes become the endpoints (named port resolved).
    let uid1 = create_pod(&store, "web-1", "n1", 8080).await;
    let uid2 = create_pod(&store, "web-2", "n2", 8080).await;
    n1.publish(
        TopicKind::Status,
        &pod_status(1, "web-1", &uid1, "10.42.0.2", true),
    )
    .await;
    n2.publish(
        TopicKind::Status,
        &pod_status(1, "web-2", &uid2, "10.42.0.66", true),
    )
    .await;
    let d = desired_until(&mut n1, |d| {
        d.network.is_some() && endpoints_of(d, "web").len() == 2
    })
    .await;
    let net = d.network.as_ref().unwrap();
    assert_eq!(net.pod_cidr.as_deref(), Some("10.42.0.0/26"));
    assert_eq!(net.service_cidr.as_deref(), Some("10.43.0.0/16"));
    assert_eq!(net.routes.len(), 1);
    assert_eq!(
        (net.routes[0].cidr.as_str(), net.routes[0].via.as_str()),
        ("10.42.0.64/26", "10.77.0.12")
    );
    assert_eq!(
        endpoints_of(&d, "web"),
        ["10.42.0.2:8080", "10.42.0.66:8080"]
    );
    assert_eq!(net.services[0].ports[0].node_port, Some(30000));
    let eps_path = "/api/v1/namespaces/default/endpoints/web";
    let c2 = client();
    let (code, eps) = blocking(move || c2.get(eps_path)).await;
    assert_eq!(code, 200, "{eps}");
    assert_eq!(eps["subsets"][0]["addresses"].as_array().unwrap().len(), 2);

    // The hub's DNS answers the Service's name with its ClusterIP.
    let dns = h.dns_addr().expect("DNS served");
    let ips = blocking(move || resolve(dns, "web.default.svc.cluster.local.")).await;
    assert_eq!(ips, ["10.43.0.11"]);

    // A pod turning unready leaves the rotation; its address is kept aside.
    n2.publish(
        TopicKind::Status,
        &pod_status(2, "web-2", &uid2, "10.42.0.66", false),
    )
    .await;
    let d = desired_until(&mut n1, |d| endpoints_of(d, "web").len() == 1).await;
    assert_eq!(endpoints_of(&d, "web"), ["10.42.0.2:8080"]);
    let c2 = client();
    let eps: Value = eventually_async("the not-ready address in Endpoints", WAIT, async || {
        let (_, eps) = c2.get(eps_path);
        eps["subsets"][0]["notReadyAddresses"]
            .is_array()
            .then_some(eps)
    })
    .await;
    assert_eq!(
        eps["subsets"][0]["notReadyAddresses"][0]["ip"],
        "10.42.0.66"
    );

    // A hostile node names addresses that are not its pods': the hub's own
    // loopback, then n1's range. The status is taken without them, so no
    // Endpoints (and no ingress, load balancer or DNS) points there.
    for (seq, ip) in [(3, "127.0.0.1"), (4, "10.42.0.9")] {
        n2.publish(
            TopicKind::Status,
            &pod_status(seq, "web-2", &uid2, ip, true),
        )
        .await;
        let c2 = client();
        eventually_async(format!("web-2 ready without {ip}"), WAIT, async || {
            let (_, pod) = c2.get("/api/v1/namespaces/default/pods/web-2");
            let ready = pod["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (ready && pod["status"]["podIP"].is_null()).then_some(())
        })
        .await;
        let c2 = client();
        let (_, eps) = blocking(move || c2.get(eps_path)).await;
        assert!(!eps.to_string().contains(ip), "{ip} in {eps}");
    }

    // Deleting the Service deletes its Endpoints and its table entry.
    let c2 = client();
    let (code, _) = blocking(move || c2.delete(&format!("{SERVICES}/web"))).await;
    assert_eq!(code, 200);
    desired_until(&mut n1, |d| {
        d.network.as_ref().is_some_and(|n| n.services.is_empty())
    })
    .await;
    let c2 = client();
    eventually_async("the Endpoints to go", WAIT, async || {
        (c2.get(eps_path).0 == 404).then_some(())
    })
    .await;
}
