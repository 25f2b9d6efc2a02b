//! The certificate table: host matching, the default certificate, bad
//! Secrets skipped without hurting the others, reuse across revisions.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// A self-signed certificate for `hosts`: (PEM chain, PEM key, DER).
fn cert(hosts: &[&str]) -> (String, String, Vec<u8>) {
    let c =
        rcgen::generate_simple_self_signed(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .unwrap();
    (
        c.cert.pem(),
        c.signing_key.serialize_pem(),
        c.cert.der().to_vec(),
    )
}

fn secret(name: &str, type_: &str, data: &[(&str, &str)]) -> Secret {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), json!(STANDARD.encode(v))))
        .collect();
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"}, "type": type_, "data": data}))
    .unwrap()
}

fn tls_secret(name: &str, c: &(String, String, Vec<u8>)) -> Secret {
    secret(
        name,
        TLS_SECRET_TYPE,
        &[("tls.crt", &c.0), ("tls.key", &c.1)],
    )
}

fn ingress(name: &str, created: &str, tls: serde_json::Value) -> Ingress {
    serde_json::from_value(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": {"tls": tls, "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}))
    .unwrap()
}

fn der(t: &SniTable, name: Option<&str>) -> Option<Vec<u8>> {
    t.lookup(name).map(|c| c.cert[0].to_vec())
}

#[test]
fn exact_then_wildcard_then_the_oldest_certificate() {
    let (a, w, b) = (cert(&["a.test"]), cert(&["*.site.test"]), cert(&["b.test"]));
    let certs = Certificates::new();
    assert!(certs.table().lookup(Some("a.test")).is_none(), "none yet");
    let problems = certs.update(
        &[
            ingress(
                "newer",
                "2026-01-02T00:00:00Z",
                json!([{"hosts": ["b.test", "a.test"], "secretName": "b"}]),
            ),
            ingress(
                "older",
                "2026-01-01T00:00:00Z",
                json!([{"hosts": ["A.test"], "secretName": "a"},
                       {"hosts": ["*.site.test"], "secretName": "w"}]),
            ),
        ],
        &[
            tls_secret("a", &a),
            tls_secret("w", &w),
            tls_secret("b", &b),
        ],
    );
    assert!(problems.is_empty(), "{problems:?}");
    let t = certs.table();
    assert_eq!(
        der(&t, Some("a.test")),
        Some(a.2.clone()),
        "older wins a.test"
    );
    assert_eq!(der(&t, Some("A.TEST.")), Some(a.2.clone()));
    assert_eq!(der(&t, Some("b.test")), Some(b.2.clone()));
    assert_eq!(der(&t, Some("x.site.test")), Some(w.2.clone()));
    // One label only; other names and no SNI get the first certificate.
    assert_eq!(der(&t, Some("x.y.site.test")), Some(a.2.clone()));
    assert_eq!(der(&t, Some("site.test")), Some(a.2.clone()));
    assert_eq!(der(&t, Some("other")), Some(a.2.clone()));
    assert_eq!(der(&t, None), Some(a.2.clone()));
    assert_eq!(t.hosts(), 3);
}

#[test]
fn bad_secrets_are_skipped_and_the_others_served() {
    let (good, other) = (cert(&["ok.test"]), cert(&["other.test"]));
    let secrets = [
        tls_secret("good", &good),
        secret("no-key", TLS_SECRET_TYPE, &[("tls.crt", &good.0)]),
        secret(
            "opaque",
            "Opaque",
            &[("tls.crt", &good.0), ("tls.key", &good.1)],
        ),
        secret(
            "not-pem",
            TLS_SECRET_TYPE,
            &[("tls.crt", "hello"), ("tls.key", &good.1)],
        ),
        secret(
            "mismatch",
            TLS_SECRET_TYPE,
            &[("tls.crt", &good.0), ("tls.key", &other.1)],
        ),
    ];
    let tls = json!([
        {"hosts": ["1.test"], "secretName": "no-key"},
        {"hosts": ["2.test"], "secretName": "opaque"},
        {"hosts": ["3.test"], "secretName": "not-pem"},
        {"hosts": ["4.test"], "secretName": "mismatch"},
        {"hosts": ["5.test"], "secretName": "missing"},
        {"hosts": ["ok.test"], "secretName": "good"},
    ]);
    let certs = Certificates::new();
    let problems = certs.update(
        &[ingress("web", "2026-01-01T00:00:00Z", tls.clone())],
        &secrets,
    );
    let errors: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.secret.as_str(), p.error.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            ("default/no-key", "data has no \"tls.key\""),
            (
                "default/opaque",
                "type is \"Opaque\", not \"kubernetes.io/tls\""
            ),
            ("default/not-pem", "tls.crt has no PEM CERTIFICATE block"),
            (
                "default/mismatch",
                "tls.key does not match the certificate in tls.crt"
            ),
            ("default/missing", "Secret not found"),
        ]
    );
    assert!(problems.iter().all(|p| p.ingress == "default/web"));
    // The next revision finds the same problems: remembered as warned.
    let warned = |c: &Certificates| c.memory.lock().unwrap().warned.len();
    assert_eq!(warned(&certs), 5);
    let again = certs.update(
        &[ingress("web", "2026-01-01T00:00:00Z", tls.clone())],
        &secrets,
    );
    assert_eq!(again, problems);
    assert_eq!(warned(&certs), 5);
    let t = certs.table();
    assert_eq!(der(&t, Some("ok.test")), Some(good.2.clone()));
    assert_eq!(der(&t, Some("1.test")), Some(good.2), "the default");
}

#[test]
fn unchanged_secrets_are_not_loaded_again() {
    let (a, b) = (cert(&["a.test"]), cert(&["a.test"]));
    let ing = [ingress(
        "web",
        "2026-01-01T00:00:00Z",
        json!([{"hosts": ["a.test"], "secretName": "a"}]),
    )];
    let certs = Certificates::new();
    certs.update(&ing, &[tls_secret("a", &a)]);
    let first = certs.table().lookup(Some("a.test")).unwrap().clone();
    certs.update(&ing, &[tls_secret("a", &a)]);
    let again = certs.table().lookup(Some("a.test")).unwrap().clone();
    assert!(Arc::ptr_eq(&first, &again), "reused");
    certs.update(&ing, &[tls_secret("a", &b)]);
    assert_eq!(der(&certs.table(), Some("a.test")), Some(b.2), "replaced");
    // Without Ingresses or Secrets: no certificate at all.
    certs.update(&[], &[]);
    assert!(certs.table().is_empty());
    assert!(certs.table().lookup(None).is_none());
}
