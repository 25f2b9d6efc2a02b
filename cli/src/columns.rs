//! Tables of objects as kubectl lays them out: the NAMESPACE column, `kind/`
//! prefixes and `-o wide`, around the columns of
//! [`bramble_api::printing::columns`].

use std::time::SystemTime;

use serde_json::Value;

use crate::table::Table;
pub use bramble_api::printing::columns::{
    cells, headers_of, label_selector, node_address, node_roles, node_status, pod_status,
    service_ports,
};

/// How a table is laid out.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// Add the `-o wide` columns.
    pub wide: bool,
    /// Put a NAMESPACE column first (`-A`).
    pub namespace_column: bool,
    /// Prefix names with `kind/` (when several kinds are printed).
    pub kind_prefix: Option<String>,
    /// The time ages are computed against.
    pub now: SystemTime,
}

/// The header row for `kind` under `opts`.
pub fn headers(kind: &str, opts: &TableOptions) -> Vec<String> {
    let (base, wide) = headers_of(kind);
    let mut out = Vec::new();
    if opts.namespace_column {
        out.push("NAMESPACE".to_string());
    }
    out.extend(base.iter().map(|s| s.to_string()));
    if opts.wide {
        out.extend(wide.iter().map(|s| s.to_string()));
    }
    out
}

/// The row for one object of `kind` under `opts`.
pub fn row(kind: &str, obj: &Value, opts: &TableOptions) -> Vec<String> {
    let (base, wide) = cells(kind, obj, opts.now);
    let mut out = Vec::new();
    if opts.namespace_column {
        out.push(crate::json::namespace(obj).unwrap_or("").to_string());
    }
    let mut base = base;
    if let Some(prefix) = &opts.kind_prefix {
        base[0] = format!("{prefix}/{}", base[0]);
    }
    out.extend(base);
    if opts.wide {
        out.extend(wide);
    }
    out
}

/// A table of `items`, all of `kind`.
pub fn table(kind: &str, items: &[Value], opts: &TableOptions) -> Table {
    let mut t = Table::new(headers(kind, opts));
    for item in items {
        t.push(row(kind, item, opts));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(wide: bool) -> TableOptions {
        TableOptions {
            wide,
            namespace_column: false,
            kind_prefix: None,
            now: crate::age::parse_time("2026-11-27T23:00:00Z").unwrap(),
        }
    }

    const T: &str = "2026-11-27T22:55:00Z";

    #[test]
    fn pod_rows_cope_with_empty_status() {
        let fresh = json!({"metadata": {"name": "web-1", "creationTimestamp": T},
                           "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let running = json!({"metadata": {"name": "web-2", "namespace": "prod", "creationTimestamp": T},
            "spec": {"nodeName": "pi-1", "containers": [{"name": "a"}]},
            "status": {"phase": "Running", "podIP": "10.42.0.7",
                       "containerStatuses": [{"ready": true, "restartCount": 3, "state": {"running": {}}}]}});
        let t = table("Pod", &[fresh, running.clone()], &opts(true));
        assert_eq!(
            t.render(true),
            "\
NAME    READY   STATUS    RESTARTS   AGE   IP          NODE     NOMINATED NODE   READINESS GATES
web-1   0/2     Pending   0          5m    <none>      <none>   <none>           <none>
web-2   1/1     Running   3          5m    10.42.0.7   pi-1     <none>           <none>
"
        );
        let all_ns = TableOptions {
            namespace_column: true,
            kind_prefix: Some("pod".into()),
            ..opts(false)
        };
        assert_eq!(
            table("Pod", &[running], &all_ns).render(true),
            "NAMESPACE   NAME        READY   STATUS    RESTARTS   AGE\nprod        pod/web-2   1/1     Running   3          5m\n"
        );
    }

    #[test]
    fn pod_status_prefers_container_reasons() {
        let crash = json!({"status": {"phase": "Running", "containerStatuses": [
            {"ready": false, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&crash), "CrashLoopBackOff");
        let done = json!({"status": {"phase": "Succeeded", "containerStatuses": [
            {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}});
        assert_eq!(pod_status(&done), "Completed");
        let killed = json!({"status": {"phase": "Failed", "containerStatuses": [
            {"state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(pod_status(&killed), "Signal:9");
        let init = json!({"spec": {"initContainers": [{}, {}]}, "status": {"phase": "Pending",
            "initContainerStatuses": [{"state": {"terminated": {"exitCode": 0}}}, {"state": {"running": {}}}]}});
        assert_eq!(pod_status(&init), "Init:1/2");
        let deleting =
            json!({"metadata": {"deletionTimestamp": T}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&deleting), "Terminating");
    }

    #[test]
    fn deployment_and_service_rows() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": T},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            row("Deployment", &d, &opts(true)),
            ["web", "2/3", "3", "2", "5m", "web", "nginx:1.27", "app=web"]
        );
        let empty = json!({"metadata": {"name": "new"}});
        assert_eq!(
            row("Deployment", &empty, &opts(false)),
            ["new", "0/1", "0", "0", "<unknown>"]
        );

        let svc = json!({"metadata": {"name": "web", "creationTimestamp": T},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.10", "selector": {"app": "web"},
                     "ports": [{"port": 80, "nodePort": 30080}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            row("Service", &svc, &opts(true)),
            [
                "web",
                "NodePort",
                "10.43.0.10",
                "<none>",
                "80:30080/TCP,53/UDP",
                "5m",
                "app=web"
            ]
        );
        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(row("Service", &lb, &opts(false))[3], "<pending>");
        assert_eq!(row("Service", &lb, &opts(false))[4], "<none>");
    }

    #[test]
    fn node_rows() {
        let n = json!({"metadata": {"name": "pi-1", "creationTimestamp": "2026-11-25T19:00:00Z",
                "labels": {"node-role.kubernetes.io/edge": "", "kubernetes.io/arch": "arm64"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "pi-1"}, {"type": "InternalIP", "address": "192.168.1.20"}],
                "nodeInfo": {"architecture": "arm64", "kubeletVersion": "bramble-0.1.0",
                    "kernelVersion": "6.6.31", "osImage": "Debian 12", "containerRuntimeVersion": "libcontainer"}}});
        assert_eq!(
            row("Node", &n, &opts(true)),
            [
                "pi-1",
                "Ready,SchedulingDisabled",
                "edge",
                "2d4h",
                "bramble-0.1.0",
                "192.168.1.20",
                "<none>",
                "Debian 12",
                "6.6.31",
                "libcontainer",
                "arm64"
            ]
        );
        let bare = json!({"metadata": {"name": "pi-2"}});
        assert_eq!(
            row("Node", &bare, &opts(false)),
            ["pi-2", "Unknown", "<none>", "<unknown>", "<none>"]
        );
    }

    #[test]
    fn other_kinds() {
        let o = opts(false);
        let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": T}, "data": {"a": "1", "b": "2"}});
        assert_eq!(row("ConfigMap", &cm, &o), ["cfg", "2", "5m"]);
        let s = json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(row("Secret", &s, &o)[1..3], ["kubernetes.io/tls", "2"]);
        let ns = json!({"metadata": {"name": "site"}});
        assert_eq!(row("Namespace", &ns, &o)[1], "Active");
        let ep = json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [
            {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}], "ports": [{"port": 80}]}]});
        assert_eq!(
            row("Endpoints", &ep, &o)[1],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
        );
        assert_eq!(row("Endpoints", &ns, &o)[1], "<none>");
        let ing = json!({"metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.local"}, {}], "tls": [{}]}});
        assert_eq!(
            row("Ingress", &ing, &o)[1..5],
            ["<none>", "a.local,*", "", "80, 443"]
        );
        let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["db", "cache"]}]}}});
        assert_eq!(row("NetworkPolicy", &np, &o)[1], "tier in (db,cache)");
        let hpa = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 2}});
        assert_eq!(
            row("HorizontalPodAutoscaler", &hpa, &o)[1..6],
            ["Deployment/web", "cpu: <unknown>/50%", "1", "5", "2"]
        );
        let ds = json!({"metadata": {"name": "agent"}, "spec": {"template": {"spec": {"nodeSelector": {"arch": "arm64"}}}}});
        assert_eq!(
            row("DaemonSet", &ds, &o)[1..7],
            ["0", "0", "0", "0", "0", "arch=arm64"]
        );
        assert_eq!(headers("Widget", &o), ["NAME", "AGE"]);
    }
}
