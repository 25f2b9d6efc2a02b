//! Admission tests through [`crate::admit`]: a realistic manifest of every kind
//! admits, shows its defaults, and round-trips through YAML; bad inputs report
//! the exact Kubernetes-style paths.
//!
//! Length: over 600 lines because the objects' unit tests, one block per
//! kind; no code.

use serde_json::{Value, json};

use crate::{Admitted, RESOURCES, admit, parse_documents};

/// Admits every document of a YAML manifest, panicking with the error.
fn admit_yaml(text: &str) -> Vec<Admitted> {
    parse_documents(text, "test.yaml")
        .unwrap()
        .into_iter()
        .map(|doc| admit(doc).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Canonical JSON → YAML → parse_documents → admit gives the same object.
fn assert_round_trips(a: &Admitted) {
    let yaml = serde_yaml_ng::to_string(&a.object).unwrap();
    let docs = parse_documents(&yaml, "roundtrip.yaml").unwrap();
    assert_eq!(docs.len(), 1);
    let again = admit(docs[0].clone()).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(again.object, a.object, "{yaml}");
}

/// The error text of a refused object.
fn admit_err(v: Value) -> String {
    match admit(v) {
        Ok(a) => panic!("admitted: {}", a.object),
        Err(e) => e.to_string(),
    }
}

/// The field paths of a refused object.
fn err_paths(v: Value) -> Vec<String> {
    match admit(v) {
        Ok(a) => panic!("admitted: {}", a.object),
        Err(crate::AdmitError::Invalid { errors, .. }) => {
            errors.0.into_iter().map(|e| e.path).collect()
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: sensor-reader
  namespace: edge
  labels: {app: sensor}
  annotations:
    bramble.dev/devices: /dev/i2c-1,/dev/ttyUSB0
spec:
  nodeSelector:
    kubernetes.io/arch: arm64
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: bramble.dev/site, operator: In, values: [greenhouse]}
  tolerations:
  - {key: dedicated, operator: Equal, value: sensors, effect: NoSchedule}
  securityContext: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}
  initContainers:
  - name: wait-broker
    image: busybox:1.36
    command: [sh, -c, "until nc -z mqtt 1883; do sleep 1; done"]
  containers:
  - name: reader
    image: registry.local:5000/sensor-reader:v1.4
    args: [--bus, /dev/i2c-1]
    ports:
    - {name: metrics, containerPort: 9100}
    env:
    - {name: SITE, value: greenhouse}
    - name: API_TOKEN
      valueFrom: {secretKeyRef: {name: sensor-token, key: token}}
    - name: NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    envFrom:
    - configMapRef: {name: sensor-config}
    resources:
      requests: {cpu: 100m, memory: 32Mi}
      limits: {cpu: 0.5, memory: 64Mi}
    volumeMounts:
    - {name: config, mountPath: /etc/sensor, readOnly: true}
    - {name: data, mountPath: /var/lib/sensor}
    livenessProbe:
      httpGet: {port: metrics, path: /healthz}
      initialDelaySeconds: 5
    readinessProbe:
      tcpSocket: {port: 9100}
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
  volumes:
  - name: config
    configMap: {name: sensor-config, defaultMode: 0444}
  - name: data
    hostPath: {path: /var/lib/sensor, type: DirectoryOrCreate}
"#;

#[test]
fn pod_admits_with_defaults_and_round_trips() {
    let a = &admit_yaml(POD)[0];
    assert_eq!(a.resource.kind, "Pod");
    assert_eq!(a.namespace(), Some("edge"));
    let spec = &a.object["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": "metrics", "scheme": "HTTP"}, "initialDelaySeconds": 5,
               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(c["env"][2]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    // Quantities keep their text; YAML numbers become strings.
    assert_eq!(
        c["resources"]["limits"],
        json!({"cpu": "0.5", "memory": "64Mi"})
    );
    assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 0o444);
    assert!(
        spec.get("hostNetwork").is_none(),
        "false booleans are omitted"
    );
    assert_round_trips(a);

    let pod: super::Pod = serde_json::from_value(a.object.clone()).unwrap();
    assert_eq!(pod.devices(), ["/dev/i2c-1", "/dev/ttyUSB0"]);
    assert_eq!(pod.namespace(), "edge");
    assert_eq!(pod.spec.containers[0].resources.cpu_request_millis(), 100);
}

#[test]
fn lifecycle_in_a_deployment_is_not_supported_with_its_full_path() {
    let err = admit(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "lifecycle": {"preStop": {}}}]}
        }}
    }))
    .unwrap_err();
    let crate::AdmitError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        errors.to_string(),
        "spec.template.spec.containers[0].lifecycle: not supported"
    );
    assert_eq!(
        err.to_string(),
        "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].lifecycle: not supported"
    );
    let status = err.to_status();
    assert_eq!(status.code, 422);
    assert_eq!(
        status.details.unwrap().causes[0].field,
        "spec.template.spec.containers[0].lifecycle"
    );
}

#[test]
fn other_unsupported_pod_fields_are_named() {
    let pod = |spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
    assert!(
        admit_err(pod(
            json!({"containers": [{"name": "a", "image": "x"}], "ephemeralContainers": []})
        ))
        .ends_with("spec.ephemeralContainers: not supported")
    );
    assert!(
        admit_err(pod(
            json!({"containers": [{"name": "a", "image": "x"}], "priorityClassName": "high"})
        ))
        .ends_with("spec.priorityClassName: not supported")
    );
    let e = admit_err(pod(json!({"containers": [{"name": "a", "image": "x",
        "env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]}]})));
    assert!(
        e.ends_with("spec.containers[0].env[0].valueFrom.resourceFieldRef: not supported"),
        "{e}"
    );
    assert!(
        admit_err(pod(json!({"containers": [{"name": "a", "image": "x",
        "resources": {"limits": {"cpu": "lots"}}}]})))
        .contains(
            "spec.containers[0].resources.limits.cpu: Invalid value: quantity \"lots\" is not valid"
        )
    );
}

#[test]
fn pod_validation_collects_every_error_with_paths() {
    let paths = err_paths(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "Bad_Name", "annotations": {"bramble.dev/devices": "/etc/passwd"}},
        "spec": {
            "restartPolicy": "Sometimes",
            "containers": [
                {"name": "web", "image": "nginx", "ports": [{"name": "this-name-is-too-long", "containerPort": 80}],
                 "volumeMounts": [{"name": "missing", "mountPath": "/data"}],
                 "resources": {"requests": {"memory": "128Mi"}, "limits": {"memory": "64Mi"}}},
                {"name": "web"},
            ],
            "volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]
        }
    }));
    assert_eq!(
        paths,
        [
            "metadata.name",
            "metadata.annotations[bramble.dev/devices]",
            "spec.volumes[1].name",
            "spec.containers[0].ports[0].name",
            "spec.containers[0].resources.requests[memory]",
            "spec.containers[0].volumeMounts[0].name",
            "spec.containers[1].image",
            "spec.containers[1].name",
            "spec.restartPolicy",
        ]
    );
    assert!(
        admit_err(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})
        )
        .ends_with("spec.containers: Required value")
    );
}

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: sensor-api
  namespace: edge
spec:
  type: NodePort
  selector: {app: sensor}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: metrics, port: 9100, protocol: TCP}
"#;

#[test]
fn service_admits_with_defaults_and_round_trips() {
    let a = &admit_yaml(SERVICE)[0];
    let spec = &a.object["spec"];
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], "http");
    assert_eq!(spec["ports"][1]["targetPort"], 9100);
    assert_round_trips(a);

    let svc = |spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec});
    let a = admit(svc(json!({"ports": [{"port": 53, "protocol": "UDP"}]}))).unwrap();
    assert_eq!(a.object["spec"]["type"], "ClusterIP");
    assert_eq!(
        admit_err(svc(
            json!({"type": "ExternalName", "ports": [{"port": 80}]})
        )),
        "Service \"s\" is invalid: spec.type: Unsupported value: supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\""
    );
    assert_eq!(
        err_paths(svc(
            json!({"ports": [{"port": 80, "nodePort": 30000}, {"port": 80, "targetPort": "Web"}]})
        )),
        [
            "spec.ports[0].name",
            "spec.ports[0].nodePort",
            "spec.ports[1].name",
            "spec.ports[1]",
            "spec.ports[1].targetPort"
        ]
    );
    // Service names are DNS labels.
    let mut dotted = svc(json!({"ports": [{"port": 80}]}));
    dotted["metadata"]["name"] = json!("a.b");
    assert_eq!(err_paths(dotted), ["metadata.name"]);
}

const CONFIG_AND_SECRET: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: sensor-config, namespace: edge}
data:
  SAMPLE_INTERVAL: "5s"
  sensor.yaml: |
    bus: /dev/i2c-1
---
apiVersion: v1
kind: Secret
metadata: {name: sensor-token, namespace: edge}
stringData:
  token: s3cr3t
data:
  ca.crt: LS0tLS1CRUdJTg==
"#;

#[test]
fn configmap_and_secret_admit_and_round_trip() {
    let docs = admit_yaml(CONFIG_AND_SECRET);
    assert_eq!(docs[0].object["data"]["SAMPLE_INTERVAL"], "5s");
    assert_round_trips(&docs[0]);
    let s = &docs[1].object;
    assert_eq!(s["type"], "Opaque");
    assert!(s.get("stringData").is_none());
    assert_eq!(s["data"]["token"], "czNjcjN0");
    assert_eq!(s["data"]["ca.crt"], "LS0tLS1CRUdJTg==");
    assert_round_trips(&docs[1]);

    let err = admit_err(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
        "data": {"password": "not base64!"}}),
    );
    assert_eq!(
        err,
        "Secret \"x\" is invalid: data[password]: Invalid value: \"<secret contents redacted>\": must be base64-encoded"
    );
    assert!(!err.contains("not base64"));
    assert_eq!(
        err_paths(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": "c"}})
        ),
        ["data[tls.key]"]
    );
}

const ENDPOINTS_NODE_NAMESPACE: &str = r#"
apiVersion: v1
kind: Endpoints
metadata: {name: sensor-api, namespace: edge}
subsets:
- addresses:
  - ip: 10.42.1.7
    nodeName: pi-1
    targetRef: {kind: Pod, name: sensor-reader, namespace: edge}
  notReadyAddresses:
  - {ip: 10.42.2.9, nodeName: pi-2}
  ports:
  - {name: http, port: 8080}
  - {name: metrics, port: 9100}
---
apiVersion: v1
kind: Node
metadata:
  name: pi-1
  labels: {kubernetes.io/arch: arm64, bramble.dev/site: greenhouse}
spec:
  podCIDR: 10.42.1.0/24
  podCIDRs: [10.42.1.0/24]
  taints:
  - {key: dedicated, value: sensors, effect: NoSchedule}
status:
  capacity: {cpu: "4", memory: 3906Mi, pods: "110"}
  allocatable: {cpu: 3800m, memory: 3700Mi, pods: "110"}
  conditions:
  - {type: Ready, status: "True", lastHeartbeatTime: "2024-05-01T10:00:00Z", reason: AgentReady}
  addresses:
  - {type: InternalIP, address: 192.168.1.21}
  - {type: Hostname, address: pi-1}
  nodeInfo:
    architecture: arm64
    operatingSystem: linux
    kernelVersion: 6.6.31+rpt-rpi-v8
    osImage: Debian GNU/Linux 12 (bookworm)
    kubeletVersion: bramble-0.1.0
    containerRuntimeVersion: libcontainer://0.4
---
apiVersion: v1
kind: Namespace
metadata: {name: edge, labels: {team: plants}}
"#;

#[test]
fn endpoints_node_and_namespace_admit_and_round_trip() {
    let docs = admit_yaml(ENDPOINTS_NODE_NAMESPACE);
    assert_eq!(docs[0].object["subsets"][0]["ports"][1]["protocol"], "TCP");
    assert_eq!(docs[1].object["status"]["allocatable"]["cpu"], "3800m");
    assert_eq!(
        docs[1].object["status"]["nodeInfo"]["architecture"],
        "arm64"
    );
    for d in &docs {
        assert_round_trips(d);
    }
    let node: super::Node = serde_json::from_value(docs[1].object.clone()).unwrap();
    assert!(node.is_ready());
    assert_eq!(
        err_paths(
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-1"},
            "spec": {"taints": [{"key": "a", "effect": "NoWay"}]}})
        ),
        ["spec.taints[0].effect"]
    );
    assert_eq!(
        err_paths(
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
            "subsets": [{"addresses": [{"ip": "10.0.0.256"}], "ports": [{"port": 80}]}]})
        ),
        ["subsets[0].addresses[0].ip"]
    );
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: edge
  labels: {app: web}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1}
  template:
    metadata:
      labels: {app: web, tier: frontend}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 80, name: http}]
        readinessProbe:
          httpGet: {port: http}
        resources:
          requests: {cpu: 50m, memory: 16Mi}
          limits: {memory: 64Mi}
"#;

#[test]
fn deployment_admits_with_defaults_and_round_trips() {
    let a = &admit_yaml(DEPLOYMENT)[0];
    let spec = &a.object["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/"
    );
    // Requests are not defaulted from limits on templates, only on pods.
    assert!(
        pod["containers"][0]["resources"]["requests"]
            .get("memory")
            .is_some()
    );
    assert_round_trips(a);

    let d: super::Deployment = serde_json::from_value(a.object.clone()).unwrap();
    assert_eq!(d.replicas(), 3);
    assert_eq!(d.spec.template.spec.containers[0].name, "nginx");
}

#[test]
fn deployment_selector_and_template_errors() {
    let deploy = |selector: Value, labels: Value, restart: &str, replicas: i32| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": selector, "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": restart, "containers": [{"name": "web", "image": "nginx"}]}}}})
    };
    assert_eq!(
        admit_err(deploy(
            json!({"matchLabels": {"app": "api"}}),
            json!({"app": "web"}),
            "Always",
            1
        )),
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: \
         map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
    );
    assert_eq!(
        err_paths(deploy(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
            "Never",
            -2
        )),
        ["spec.replicas", "spec.template.spec.restartPolicy"]
    );
    let no_selector = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
    assert!(admit_err(no_selector).ends_with("spec.selector: Required value"));
    assert_eq!(
        err_paths(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web"}]}}}})
        ),
        ["spec.template.spec.containers[0].image"]
    );
}

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector:
    matchLabels: {app: node-exporter}
  template:
    metadata:
      labels: {app: node-exporter}
    spec:
      hostNetwork: true
      tolerations:
      - operator: Exists
      containers:
      - name: exporter
        image: prom/node-exporter:v1.8.1
        args: [--path.rootfs=/host]
        ports: [{name: metrics, containerPort: 9100}]
        volumeMounts: [{name: root, mountPath: /host, readOnly: true}]
      volumes:
      - name: root
        hostPath: {path: /}
"#;

#[test]
fn daemonset_admits_with_defaults_and_round_trips() {
    let a = &admit_yaml(DAEMONSET)[0];
    let spec = &a.object["spec"];
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    // hostNetwork: hostPort defaults to containerPort.
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["ports"][0]["hostPort"],
        9100
    );
    assert_round_trips(a);
    assert_eq!(
        err_paths(
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "y"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]}}}})
        ),
        [
            "spec.template.spec.containers[0].ports[0].containerPort",
            "spec.template.metadata.labels"
        ]
    );
}

const HPA: &str = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: edge}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 6
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 70}
  - type: Resource
    resource:
      name: memory
      target: {type: AverageValue, averageValue: 100Mi}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 120
      policies: [{type: Pods, value: 1, periodSeconds: 60}]
"#;

#[test]
fn hpa_admits_with_defaults_and_round_trips() {
    let a = &admit_yaml(HPA)[0];
    let spec = &a.object["spec"];
    assert_eq!(spec["minReplicas"], 1);
    assert_eq!(
        spec["metrics"][1]["resource"]["target"]["averageValue"],
        "100Mi"
    );
    assert_eq!(spec["behavior"]["scaleDown"]["selectPolicy"], "Max");
    assert_eq!(
        spec["behavior"]["scaleUp"]["policies"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_round_trips(a);
    let hpa = |min: i32, max: i32| {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": min, "maxReplicas": max}})
    };
    assert_eq!(
        admit_err(hpa(3, 2)),
        "HorizontalPodAutoscaler.autoscaling \"h\" is invalid: spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
    );
    let a = admit(hpa(2, 2)).unwrap();
    assert_eq!(
        a.object["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
}

const INGRESS_AND_POLICY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: edge
spec:
  ingressClassName: bramble
  tls:
  - hosts: [greenhouse.local]
    secretName: greenhouse-tls
  rules:
  - host: greenhouse.local
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port: {number: 80}
      - path: /api
        pathType: Prefix
        backend:
          service:
            name: sensor-api
            port: {name: http}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sensor-api, namespace: edge}
spec:
  podSelector:
    matchLabels: {app: sensor}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
    - ipBlock: {cidr: 192.168.1.0/24, except: [192.168.1.1/32]}
    ports:
    - {port: 9100}
    - {port: http}
  egress:
  - to:
    - ipBlock: {cidr: 10.0.0.0/8}
    ports:
    - {protocol: UDP, port: 53}
    - {port: 30000, endPort: 32767}
"#;

#[test]
fn ingress_and_network_policy_admit_and_round_trip() {
    let docs = admit_yaml(INGRESS_AND_POLICY);
    assert_eq!(
        docs[0].object["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["port"]["name"],
        "http"
    );
    let np = &docs[1].object["spec"];
    assert_eq!(np["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["ingress"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(np["egress"][0]["ports"][0]["protocol"], "UDP");
    for d in &docs {
        assert_round_trips(d);
    }
    assert_eq!(
        err_paths(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
            "spec": {"rules": [{"http": {"paths": [{"path": "api", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
        ),
        ["spec.rules[0].http.paths[0].path"]
    );
    assert_eq!(
        err_paths(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/40"}}]}]}})
        ),
        ["spec.ingress[0].from[0].ipBlock.cidr"]
    );
}

/// What `kubectl create ... --dry-run=client -o yaml` prints: null timestamps,
/// empty `resources`, `strategy` and `status` objects.
const KUBECTL_GENERATED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: nginx
        name: nginx
        resources: {}
status: {}
---
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    run: web
  name: web
spec:
  containers:
  - image: nginx
    name: web
    resources: {}
  dnsPolicy: ClusterFirst
  restartPolicy: Always
status: {}
---
apiVersion: v1
kind: Service
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  ports:
  - name: 80-8080
    port: 80
    protocol: TCP
    targetPort: 8080
  selector:
    app: web
  type: ClusterIP
status:
  loadBalancer: {}
---
apiVersion: v1
data:
  a: Yg==
kind: Secret
metadata:
  creationTimestamp: null
  name: x
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  creationTimestamp: null
  name: simple
spec:
  rules:
  - host: foo.com
    http:
      paths:
      - backend:
          service:
            name: svc1
            port:
              number: 443
        path: /bar
        pathType: Exact
status:
  loadBalancer: {}
"#;

#[test]
fn kubectl_generated_manifests_admit() {
    let docs = admit_yaml(KUBECTL_GENERATED);
    let kinds: Vec<&str> = docs.iter().map(|a| a.resource.kind).collect();
    assert_eq!(kinds, ["Deployment", "Pod", "Service", "Secret", "Ingress"]);
    assert_eq!(docs[0].object["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(
        docs[0].object["metadata"]
            .get("creationTimestamp")
            .is_none()
    );
    assert_eq!(docs[3].object["type"], "Opaque");
    for d in &docs {
        assert_round_trips(d);
    }
}

/// A minimal valid manifest of `kind`.
fn minimal(kind: &str) -> Value {
    let template = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let selector = json!({"matchLabels": {"app": "a"}});
    let body = match kind {
        "Pod" => json!({"spec": {"containers": [{"name": "c", "image": "i"}]}}),
        "Service" => json!({"spec": {"ports": [{"port": 80}]}}),
        "ConfigMap" | "Secret" | "Endpoints" | "Node" | "Namespace" => json!({}),
        "Deployment" | "DaemonSet" | "ReplicaSet" => {
            json!({"spec": {"selector": selector, "template": template}})
        }
        "StatefulSet" => {
            json!({"spec": {"selector": selector, "template": template, "serviceName": "a"}})
        }
        "HorizontalPodAutoscaler" => {
            json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 2}})
        }
        "Ingress" => {
            json!({"spec": {"defaultBackend": {"service": {"name": "a", "port": {"number": 80}}}}})
        }
        "NetworkPolicy" => json!({"spec": {"podSelector": {}}}),
        "Event" => json!({"involvedObject": {"kind": "Pod", "name": "a"}}),
        "PersistentVolumeClaim" => {
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        }
        "PersistentVolume" => {
            json!({"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                            "hostPath": {"path": "/srv/a"}}})
        }
        "StorageClass" => json!({"provisioner": "kubernetes.io/no-provisioner"}),
        "Job" => json!({"spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "i"}]}}}}),
        "CronJob" => json!({"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template":
            {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i"}]}}}}}}),
        "Build" => json!({"spec": {"image": "web:1", "platforms": ["linux/arm64"],
            "context": {"digest": format!("sha256:{}", "0".repeat(64)), "size": 10}}}),
        other => panic!("no minimal manifest for {other}"),
    };
    let mut v = body;
    let r = RESOURCES.iter().find(|r| r.kind == kind).unwrap();
    v["apiVersion"] = json!(r.api_version());
    v["kind"] = json!(kind);
    v["metadata"] = json!({"name": "a"});
    v
}

#[test]
fn every_registered_kind_is_admitted() {
    for r in RESOURCES {
        let a = admit(minimal(r.kind)).unwrap_or_else(|e| panic!("{}: {e}", r.kind));
        assert_eq!(a.resource.kind, r.kind);
        assert_eq!(a.name(), "a");
        assert_round_trips(&a);
        // Every kind refuses unknown top-level fields.
        let mut extra = minimal(r.kind);
        extra["bogus"] = json!(1);
        assert!(
            admit_err(extra).ends_with("bogus: not supported"),
            "{}",
            r.kind
        );
    }
}

#[test]
fn admission_is_idempotent() {
    // Admitting canonical output again changes nothing (the hub re-admits on update).
    for text in [
        POD,
        SERVICE,
        CONFIG_AND_SECRET,
        DEPLOYMENT,
        DAEMONSET,
        HPA,
        INGRESS_AND_POLICY,
    ] {
        for a in admit_yaml(text) {
            let again = admit(a.object.clone()).unwrap();
            assert_eq!(again.object, a.object);
        }
    }
}

#[test]
fn every_invalid_field_is_reported_in_one_error_as_kubernetes_aggregates_them() {
    let err = crate::admit(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "Bad_Name"},
        "spec": {"replicas": -2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx",
                "resources": {"limits": {"memory": "lots"}}}]}
        }}
    }))
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Deployment.apps \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{text}"
    );
    assert!(
        text.contains(", spec.replicas: Invalid value: -2: must be greater than or equal to 0"),
        "{text}"
    );
    assert!(
        text.contains(", spec.template.spec.containers[0].resources.limits.memory: Invalid value: quantity \"lots\" is not valid"),
        "{text}"
    );
    let status = err.to_status();
    let details = status.details.expect("details");
    assert_eq!(
        (details.kind.as_str(), details.group.as_str()),
        ("Deployment", "apps")
    );
    assert_eq!(details.causes.len(), 3, "{:?}", details.causes);
}
