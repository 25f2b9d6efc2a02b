//! The checker against pods written as users write them, with the messages
//! Kubernetes' PodSecurity admission gives for the same pods.

use bramble_api::objects::Pod;
use serde_json::{Value, json};

use super::*;

/// A decoded, defaulted pod named `web` (as the API admits it).
fn pod(metadata: Value, spec: Value) -> Pod {
    let mut meta = json!({"name": "web"});
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), metadata.as_object()) {
        m.extend(extra.clone());
    }
    let admitted = bramble_api::admit(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": meta, "spec": spec}))
    .unwrap();
    serde_json::from_value(admitted.object).unwrap()
}

fn spec_pod(spec: Value) -> Pod {
    pod(json!({}), spec)
}

fn violations(level: Level, p: &Pod, allow: &Allowances<'_>) -> String {
    check(
        level,
        Subject {
            meta: &p.metadata,
            spec: &p.spec,
        },
        allow,
    )
    .to_string()
}

fn baseline(p: &Pod) -> String {
    violations(Level::Baseline, p, &Allowances::default())
}

fn restricted(p: &Pod) -> String {
    violations(Level::Restricted, p, &Allowances::default())
}

/// A pod that passes Restricted.
fn restricted_spec() -> Value {
    json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "busybox:1",
            "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
        "volumes": [{"name": "cfg", "configMap": {"name": "app"}}, {"name": "tmp", "emptyDir": {}},
            {"name": "tls", "secret": {"secretName": "tls"}}]})
}

#[test]
fn privileged_allows_everything() {
    let p = pod(
        json!({"annotations": {"bramble.dev/devices": "/dev/ttyUSB0"}}),
        json!({"hostNetwork": true, "containers": [{"name": "app", "image": "x:1",
            "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
    );
    assert_eq!(
        violations(Level::Privileged, &p, &Allowances::default()),
        ""
    );
}

#[test]
fn baseline_refuses_privileged_and_host_path_in_kubernetes_order_and_words() {
    let p = spec_pod(json!({"containers": [{"name": "app", "image": "x:1",
            "securityContext": {"privileged": true},
            "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}));
    assert_eq!(
        baseline(&p),
        "hostPath volumes (volume \"root\"), privileged (container \"app\" must not set securityContext.privileged=true)"
    );
}

#[test]
fn baseline_host_network_host_ports_capabilities_and_seccomp() {
    let p = spec_pod(json!({
    "hostNetwork": true,
    "securityContext": {"seccompProfile": {"type": "Unconfined"}},
    "initContainers": [{"name": "init", "image": "x:1",
        "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}}],
    "containers": [
        {"name": "a", "image": "x:1", "ports": [{"containerPort": 8080}, {"containerPort": 10000}],
         "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_BIND_SERVICE"]},
            "seccompProfile": {"type": "Unconfined"}}},
        {"name": "b", "image": "x:1", "ports": [{"containerPort": 9090}]}
    ]}));
    // hostNetwork defaults every hostPort to its containerPort, as in Kubernetes.
    assert_eq!(
        baseline(&p),
        "non-default capabilities (containers \"init\", \"a\" must not include \"NET_ADMIN\", \"SYS_ADMIN\" in securityContext.capabilities.add), \
         host namespaces (hostNetwork=true), \
         hostPort (containers \"a\", \"b\" use hostPorts 10000, 8080, 9090), \
         seccompProfile (pod and container \"a\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
    let one = spec_pod(json!({"containers": [{"name": "x", "image": "x:1",
        "ports": [{"containerPort": 80, "hostPort": 8080}]}]}));
    assert_eq!(
        baseline(&one),
        "hostPort (container \"x\" uses hostPort 8080)"
    );
    let pod_only = spec_pod(
        json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "x", "image": "x:1"}]}),
    );
    assert_eq!(
        baseline(&pod_only),
        "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
    // What Baseline allows: default capabilities, confined seccomp, root.
    let fine = spec_pod(json!({"securityContext": {"runAsUser": 0},
        "containers": [{"name": "x", "image": "x:1", "ports": [{"containerPort": 80}],
        "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"]},
            "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}}],
        "volumes": [{"name": "t", "emptyDir": {}}]}));
    assert_eq!(baseline(&fine), "");
}

#[test]
fn allowed_host_paths_pass_baseline_only() {
    let p = spec_pod(json!({"containers": [{"name": "app", "image": "x:1"}],
        "volumes": [{"name": "data", "hostPath": {"path": "/srv/data/app"}},
            {"name": "near", "hostPath": {"path": "/srv/database"}}]}));
    let allowed = ["/srv/data".parse::<AllowedHostPath>().unwrap()];
    let allow = Allowances {
        host_paths: &allowed,
        devices: Vec::new(),
    };
    assert_eq!(
        violations(Level::Baseline, &p, &allow),
        "hostPath volumes (volume \"near\")"
    );
    assert!(
        violations(Level::Restricted, &p, &allow).contains(
            "restricted volume types (volumes \"data\", \"near\" use restricted volume type \"hostPath\")"
        ),
        "{}",
        violations(Level::Restricted, &p, &allow)
    );
}

#[test]
fn devices_need_the_namespace_allowance_below_privileged() {
    let p = pod(
        json!({"annotations": {"bramble.dev/devices": "/dev/ttyUSB0"}}),
        restricted_spec(),
    );
    let expected = "host devices (pod must not use \"/dev/ttyUSB0\" via the bramble.dev/devices \
                    annotation; allow it with the namespace annotation bramble.dev/allowed-devices)";
    assert_eq!(baseline(&p), expected);
    assert_eq!(restricted(&p), expected);
    let allow = Allowances {
        host_paths: &[],
        devices: vec!["/dev/ttyUSB0"],
    };
    assert_eq!(violations(Level::Restricted, &p, &allow), "");
}

#[test]
fn restricted_asks_for_everything_a_plain_pod_lacks() {
    let p = spec_pod(json!({"containers": [{"name": "app", "image": "x:1"}]}));
    assert_eq!(baseline(&p), "");
    assert_eq!(
        restricted(&p),
        "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    assert_eq!(restricted(&spec_pod(restricted_spec())), "");
}

#[test]
fn restricted_explicit_settings_and_replaced_baseline_checks() {
    let p = spec_pod(json!({
        "securityContext": {"runAsNonRoot": false, "runAsUser": 0,
            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {"name": "a", "image": "x:1", "securityContext": {"allowPrivilegeEscalation": true,
                "runAsUser": 0, "capabilities": {"drop": ["ALL"], "add": ["SYS_TIME", "CHOWN"]}}},
            {"name": "b", "image": "x:1", "securityContext": {"runAsNonRoot": false, "privileged": true,
                "capabilities": {"drop": ["NET_RAW"]}, "seccompProfile": {"type": "Unconfined"}}}
        ],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}));
    assert_eq!(
        restricted(&p),
        "privileged (container \"b\" must not set securityContext.privileged=true), \
         allowPrivilegeEscalation != false (containers \"a\", \"b\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"b\" must set securityContext.capabilities.drop=[\"ALL\"]; \
         container \"a\" must not include \"CHOWN\", \"SYS_TIME\" in securityContext.capabilities.add), \
         restricted volume types (volume \"root\" uses restricted volume type \"hostPath\"), \
         runAsNonRoot != true (pod and container \"b\" must not set securityContext.runAsNonRoot=false), \
         runAsUser=0 (pod and container \"a\" must not set runAsUser=0), \
         seccompProfile (container \"b\" must not set securityContext.seccompProfile.type to \"Unconfined\")"
    );
    // Set on every container instead of the pod also passes.
    let per_container = spec_pod(json!({"containers": [{"name": "a", "image": "x:1",
        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "Localhost", "localhostProfile": "a.json"}}}]}));
    assert_eq!(restricted(&per_container), "");
}

fn ns(labels: Value, annotations: Value) -> bramble_api::meta::ObjectMeta {
    serde_json::from_value(json!({"name": "apps", "labels": labels, "annotations": annotations}))
        .unwrap()
}

fn eval(
    config: &PodSecurityConfig,
    name: &str,
    ns_meta: &bramble_api::meta::ObjectMeta,
    p: &Pod,
) -> Evaluation {
    evaluate(
        config,
        Target {
            name,
            meta: Some(ns_meta),
        },
        Subject {
            meta: &p.metadata,
            spec: &p.spec,
        },
        true,
    )
}

#[test]
fn evaluation_refuses_with_the_enforce_level_and_warns_only_when_admitted() {
    let config = PodSecurityConfig::default();
    let privileged = spec_pod(json!({"containers": [{"name": "app", "image": "x:1",
        "securityContext": {"privileged": true}}]}));
    let e = eval(&config, "apps", &ns(json!({}), json!({})), &privileged);
    let enforce = e.enforce.as_ref().unwrap();
    assert_eq!(
        enforce.forbidden("pods", "web"),
        "pods \"web\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"app\" must not set securityContext.privileged=true)"
    );
    assert_eq!(e.warn, None);
    assert_eq!(
        e.audit.as_ref().unwrap().policy.to_string(),
        "baseline:latest"
    );
    // enforce=privileged: admitted, and the default warn level still speaks.
    let e = eval(
        &config,
        "apps",
        &ns(
            json!({"pod-security.kubernetes.io/enforce": "privileged"}),
            json!({}),
        ),
        &privileged,
    );
    assert_eq!(e.enforce, None);
    assert_eq!(
        e.warn.unwrap().would_violate(),
        "would violate PodSecurity \"baseline:latest\": privileged (container \"app\" must not set securityContext.privileged=true)"
    );
    // All three privileged: nothing at all.
    let all = ns(
        json!({"pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/warn": "privileged",
            "pod-security.kubernetes.io/audit": "privileged"}),
        json!({}),
    );
    assert_eq!(
        eval(&config, "apps", &all, &privileged),
        Evaluation::default()
    );
    // Exempt namespaces: kube-system and the configured ones.
    let mut config = PodSecurityConfig::default();
    config.exempt_namespaces.insert("lab".into());
    let strict = ns(
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        json!({}),
    );
    assert_eq!(
        eval(&config, "kube-system", &strict, &privileged),
        Evaluation::default()
    );
    assert_eq!(
        eval(&config, "lab", &strict, &privileged),
        Evaluation::default()
    );
    // A warn label on a baseline namespace: admitted with the warning.
    let plain = spec_pod(json!({"containers": [{"name": "app", "image": "x:1"}]}));
    let warn = ns(
        json!({"pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "v1.30"}),
        json!({}),
    );
    let e = eval(&config, "apps", &warn, &plain);
    assert_eq!(e.enforce, None);
    assert!(e.warn.unwrap().would_violate().starts_with(
        "would violate PodSecurity \"restricted:v1.30\": allowPrivilegeEscalation != false ("
    ));
}

#[test]
fn an_invalid_enforce_label_fails_closed() {
    let config = PodSecurityConfig {
        default_level: Level::Privileged,
        ..PodSecurityConfig::default()
    };
    let plain = spec_pod(json!({"containers": [{"name": "app", "image": "x:1"}]}));
    let e = eval(
        &config,
        "apps",
        &ns(
            json!({"pod-security.kubernetes.io/enforce": "strict"}),
            json!({}),
        ),
        &plain,
    );
    assert_eq!(e.enforce.unwrap().policy.to_string(), "restricted:latest");
    assert_eq!(e.label_errors.0.len(), 1);
}

#[test]
fn namespace_writes_are_checked_as_kubernetes_does() {
    let config = PodSecurityConfig::default();
    let bad = ns(
        json!({"pod-security.kubernetes.io/enforce": "strict"}),
        json!({}),
    );
    assert_eq!(
        review_namespace(&config, &bad, None)
            .unwrap_err()
            .to_string(),
        "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
    );
    // An update that keeps the same invalid labels passes; a new error does not.
    let also = ns(
        json!({"pod-security.kubernetes.io/enforce": "strict", "team": "a"}),
        json!({}),
    );
    assert!(review_namespace(&config, &also, Some(&bad)).is_ok());
    assert!(review_namespace(&config, &bad, Some(&ns(json!({}), json!({})))).is_err());
    let devices = ns(
        json!({}),
        json!({"bramble.dev/allowed-devices": "/etc/passwd"}),
    );
    assert!(review_namespace(&config, &devices, None).is_err());

    // Tightening asks for a look at the pods; relaxing does not.
    let base = ns(json!({}), json!({}));
    let strict = ns(
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        json!({}),
    );
    assert_eq!(
        review_namespace(&config, &strict, Some(&base))
            .unwrap()
            .recheck,
        Some(LevelVersion::latest(Level::Restricted))
    );
    assert_eq!(
        review_namespace(&config, &base, Some(&strict)).unwrap(),
        NamespaceReview::default()
    );
    let with_dev = ns(
        json!({}),
        json!({"bramble.dev/allowed-devices": "/dev/i2c-1"}),
    );
    assert!(
        review_namespace(&config, &base, Some(&with_dev))
            .unwrap()
            .recheck
            .is_some()
    );

    // An exempt namespace's labels are admitted and said to be ignored.
    let mut system = strict.clone();
    system.name = "kube-system".into();
    assert_eq!(
        review_namespace(&config, &system, None).unwrap().warnings,
        [
            "namespace \"kube-system\" is exempt from Pod Security, and the policy (enforce=restricted:latest) will be ignored"
        ]
    );
}

#[test]
fn existing_pods_are_named_in_the_warnings() {
    let config = PodSecurityConfig::default();
    let privileged = |name: &str| {
        let mut p = spec_pod(json!({"containers": [{"name": "app", "image": "x:1",
            "securityContext": {"privileged": true}}]}));
        p.metadata.name = name.into();
        p
    };
    let mut host =
        spec_pod(json!({"hostNetwork": true, "containers": [{"name": "app", "image": "x:1"}]}));
    host.metadata.name = "dns".into();
    let fine = spec_pod(json!({"containers": [{"name": "app", "image": "x:1"}]}));
    let pods = [
        privileged("web-2"),
        host,
        privileged("web-1"),
        privileged("web-3"),
        fine,
    ];
    let meta = ns(
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
        json!({}),
    );
    assert_eq!(
        existing_pod_warnings(&config, &meta, LevelVersion::latest(Level::Baseline), &pods),
        [
            "existing pods in namespace \"apps\" violate the new PodSecurity enforce level \"baseline:latest\"",
            "dns: host namespaces",
            "web-1 (and 2 other pods): privileged",
        ]
    );
    assert!(
        existing_pod_warnings(
            &config,
            &meta,
            LevelVersion::latest(Level::Baseline),
            &pods[4..]
        )
        .is_empty()
    );
}
