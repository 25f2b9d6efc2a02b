//! The env a container gets ([`resolve_env`]): `envFrom` ConfigMaps and
//! Secrets, then `env` values, `configMapKeyRef`/`secretKeyRef`s and
//! `fieldRef`s (pod metadata, node name, the pod's and the node's
//! addresses, labels and annotations).

use bramble_api::objects::container::Container;
use bramble_api::objects::env::{EnvFromSource, EnvVar, KeySelector};
use bramble_api::objects::pod::Pod;

use super::volumes::{DataMap, PodInputs, VolumeError};

/// The addresses `fieldRef`s to `status.podIP` and `status.hostIP` read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodIps {
    /// The pod's own address (the node's, for a `hostNetwork` pod).
    pub pod: Option<std::net::Ipv4Addr>,
    /// The node's address.
    pub host: Option<std::net::Ipv4Addr>,
}

/// Builds a container's env from `envFrom` then `env` (later entries
/// override earlier ones by name), resolving ConfigMap/Secret keys from
/// `inputs` and `fieldRef`s from `pod` and its addresses `ips`. A missing
/// source or key is an error naming it, unless marked `optional`.
pub fn resolve_env(
    pod: &Pod,
    container: &Container,
    inputs: &PodInputs,
    ips: PodIps,
) -> Result<Vec<(String, String)>, VolumeError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: String, v: String| match env.iter_mut().find(|(n, _)| *n == k) {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    for from in &container.env_from {
        for (k, v) in env_from(&container.name, from, inputs)? {
            set(k, v);
        }
    }
    for e in &container.env {
        if let Some(value) = env_value(pod, &container.name, e, inputs, ips)? {
            set(e.name.clone(), value);
        }
    }
    Ok(env)
}

/// The variables of one `envFrom` source of container `cname` (none from
/// a missing `optional` one).
fn env_from(
    cname: &str,
    from: &EnvFromSource,
    inputs: &PodInputs,
) -> Result<Vec<(String, String)>, VolumeError> {
    let prefix = from.prefix.clone().unwrap_or_default();
    let (what, r, maps) = match (&from.config_map_ref, &from.secret_ref) {
        (Some(r), _) => ("ConfigMap", r, &inputs.config_maps),
        (None, Some(r)) => ("Secret", r, &inputs.secrets),
        (None, None) => return Ok(Vec::new()),
    };
    let Some(data) = maps.get(&r.name) else {
        if r.optional == Some(true) {
            return Ok(Vec::new());
        }
        return Err(VolumeError::EnvMissingSource {
            container: cname.to_string(),
            var: format!("envFrom {what} {}", r.name),
            what,
            name: r.name.clone(),
        });
    };
    let mut vars = Vec::with_capacity(data.len());
    for (k, v) in data {
        let value = String::from_utf8(v.clone()).map_err(|_| VolumeError::EnvInvalid {
            container: cname.to_string(),
            var: format!("{prefix}{k}"),
            reason: format!("{what} {:?} key {k:?} is not UTF-8", r.name),
        })?;
        vars.push((format!("{prefix}{k}"), value));
    }
    Ok(vars)
}

/// The value of `env` entry `e` of container `cname`; `None` leaves the
/// variable as it is (a missing `optional` reference, or no source).
fn env_value(
    pod: &Pod,
    cname: &str,
    e: &EnvVar,
    inputs: &PodInputs,
    ips: PodIps,
) -> Result<Option<String>, VolumeError> {
    let Some(from) = &e.value_from else {
        return Ok(Some(e.value.clone().unwrap_or_default()));
    };
    match (&from.config_map_key_ref, &from.secret_key_ref) {
        (Some(sel), _) => key_ref(cname, &e.name, ("ConfigMap", &inputs.config_maps), sel),
        (None, Some(sel)) => key_ref(cname, &e.name, ("Secret", &inputs.secrets), sel),
        (None, None) => match &from.field_ref {
            Some(f) => field_ref(pod, cname, &e.name, &f.field_path, ips).map(Some),
            None => Ok(None),
        },
    }
}

/// The value of key reference `sel` of variable `var` into the ConfigMaps
/// or Secrets (`what`, `maps`); `None` for a missing `optional` one.
fn key_ref(
    cname: &str,
    var: &str,
    (what, maps): (&'static str, &std::collections::BTreeMap<String, DataMap>),
    sel: &KeySelector,
) -> Result<Option<String>, VolumeError> {
    let optional = sel.optional == Some(true);
    let Some(data) = maps.get(&sel.name) else {
        if optional {
            return Ok(None);
        }
        return Err(VolumeError::EnvMissingSource {
            container: cname.to_string(),
            var: var.to_string(),
            what,
            name: sel.name.clone(),
        });
    };
    let Some(bytes) = data.get(&sel.key) else {
        if optional {
            return Ok(None);
        }
        return Err(VolumeError::EnvMissingKey {
            container: cname.to_string(),
            var: var.to_string(),
            what,
            name: sel.name.clone(),
            key: sel.key.clone(),
        });
    };
    let value = String::from_utf8(bytes.clone()).map_err(|_| VolumeError::EnvInvalid {
        container: cname.to_string(),
        var: var.to_string(),
        reason: format!("{what} {:?} key {:?} is not UTF-8", sel.name, sel.key),
    })?;
    Ok(Some(value))
}

/// The value of `fieldRef` `path` of variable `var`.
fn field_ref(
    pod: &Pod,
    cname: &str,
    var: &str,
    path: &str,
    ips: PodIps,
) -> Result<String, VolumeError> {
    let value = match path {
        "metadata.name" => pod.name().to_string(),
        "metadata.namespace" => pod.namespace().to_string(),
        "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod.spec.node_name.clone().unwrap_or_default(),
        "spec.serviceAccountName" => pod.spec.service_account_name.clone().unwrap_or_default(),
        "status.podIP" | "status.podIPs" => ips.pod.map(|ip| ip.to_string()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => ips.host.map(|ip| ip.to_string()).unwrap_or_default(),
        other => label_or_annotation(pod, other).ok_or_else(|| VolumeError::EnvInvalid {
            container: cname.to_string(),
            var: var.to_string(),
            reason: format!("unsupported fieldRef {other:?}"),
        })?,
    };
    Ok(value)
}

/// The value of `metadata.labels['KEY']` / `metadata.annotations['KEY']`
/// (empty when the pod has none under that key), if `path` is one.
fn label_or_annotation(pod: &Pod, path: &str) -> Option<String> {
    let (map, rest) = if let Some(rest) = path.strip_prefix("metadata.labels['") {
        (&pod.metadata.labels, rest)
    } else {
        (
            &pod.metadata.annotations,
            path.strip_prefix("metadata.annotations['")?,
        )
    };
    let key = rest.strip_suffix("']")?;
    Some(map.get(key).cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pod::test_fixtures::{inputs, pod};

    #[test]
    fn env_resolves_values_refs_and_env_from_in_order() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: ns1}
spec:
  containers:
  - name: c
    image: busybox
    envFrom:
    - configMapRef: {name: web}
      prefix: CM_
    env:
    - {name: A, value: "1"}
    - name: PW
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: CM_mode
      valueFrom: {configMapKeyRef: {name: web, key: index.html}}
    - name: OPT
      valueFrom: {secretKeyRef: {name: nope, key: x, optional: true}}
    - name: POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
"#);
        let env = resolve_env(&p, &p.spec.containers[0], &inputs(), PodIps::default()).unwrap();
        assert_eq!(
            env,
            vec![
                ("CM_index.html".to_string(), "<h1>hi</h1>".to_string()),
                ("CM_mode".into(), "<h1>hi</h1>".into()),
                ("A".into(), "1".into()),
                ("PW".into(), "s3cret".into()),
                ("POD".into(), "p1".into()),
            ]
        );
    }

    #[test]
    fn env_field_refs_read_addresses_labels_and_annotations() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: web}, annotations: {team: edge}}
spec:
  containers:
  - name: c
    image: busybox
    env:
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: TEAM, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['team']"}}}
    - {name: NONE, valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}}
"#);
        let ips = PodIps {
            pod: Some([10, 42, 1, 7].into()),
            host: Some([192, 168, 1, 21].into()),
        };
        let env = resolve_env(&p, &p.spec.containers[0], &inputs(), ips).unwrap();
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("POD_IP", "10.42.1.7"),
                ("HOST_IP", "192.168.1.21"),
                ("APP", "web"),
                ("TEAM", "edge"),
                ("NONE", ""),
            ]
        );
        let unknown = resolve_env(&p, &p.spec.containers[0], &inputs(), PodIps::default()).unwrap();
        assert_eq!(
            unknown[0],
            ("POD_IP".to_string(), String::new()),
            "no address yet"
        );
    }

    #[test]
    fn env_missing_key_names_it() {
        let p = pod(r#"
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  containers:
  - name: c
    image: busybox
    env:
    - name: PW
      valueFrom: {secretKeyRef: {name: creds, key: token}}
"#);
        let err = resolve_env(&p, &p.spec.containers[0], &inputs(), PodIps::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"token\"") && err.contains("creds") && err.contains("PW"),
            "{err}"
        );
        let mut none = inputs();
        none.secrets.clear();
        let err = resolve_env(&p, &p.spec.containers[0], &none, PodIps::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Secret \"creds\" not found"), "{err}");
    }
}
