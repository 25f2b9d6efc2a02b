//! Aggregated discovery with the real kubectl: it asks `/api` and `/apis`
//! for `apidiscovery.k8s.io/v2` and, answered so, makes no request per
//! group version; what `kubectl api-resources -o wide` lists from it is
//! exactly what the plain discovery documents say (names, short names,
//! group versions, scope, kinds, verbs, categories), and a client that asks
//! for plain JSON still gets those.

use std::collections::BTreeSet;
use std::path::Path;

use bramble_tests::HubProcess;
use bramble_tests::kubectl::Kubectl;
use serde_json::Value;

/// What kubectl 1.32 sends to `/api` and `/apis`.
const KUBECTL_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

/// The rows of a kubectl table, cut at its header's column offsets.
fn rows(table: &str) -> (Vec<String>, BTreeSet<Vec<String>>) {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let mut starts: Vec<usize> = Vec::new();
    let mut names = Vec::new();
    let mut in_word = false;
    for (i, c) in header.char_indices() {
        if c != ' ' && !in_word {
            starts.push(i);
        }
        in_word = c != ' ';
    }
    for (n, s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(header.len());
        names.push(header[*s..end].trim().to_string());
    }
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            starts
                .iter()
                .enumerate()
                .map(|(n, s)| {
                    let end = starts.get(n + 1).copied().unwrap_or(l.len()).min(l.len());
                    l.get(*s..end).unwrap_or("").trim().to_string()
                })
                .collect()
        })
        .collect();
    (names, rows)
}

/// The rows `api-resources -o wide` would print from the plain documents.
fn expected_rows(hub: &HubProcess) -> BTreeSet<Vec<String>> {
    let c = hub.client();
    let mut gvs = vec!["/api/v1".to_string()];
    let (code, groups) = c.get("/apis");
    assert_eq!(code, 200);
    assert_eq!(
        groups["kind"], "APIGroupList",
        "plain JSON asked, plain answered"
    );
    for g in groups["groups"].as_array().unwrap() {
        gvs.push(format!(
            "/apis/{}",
            g["preferredVersion"]["groupVersion"].as_str().unwrap()
        ));
    }
    let join = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let mut out = BTreeSet::new();
    for path in gvs {
        let (code, list) = c.get(&path);
        assert_eq!(code, 200, "{path}");
        assert_eq!(list["kind"], "APIResourceList");
        for r in list["resources"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap();
            if name.contains('/') {
                continue;
            }
            out.insert(vec![
                name.to_string(),
                join(&r["shortNames"]),
                list["groupVersion"].as_str().unwrap().to_string(),
                r["namespaced"].to_string(),
                r["kind"].as_str().unwrap().to_string(),
                join(&r["verbs"]),
                join(&r["categories"]),
            ]);
        }
    }
    out
}

#[test]
fn kubectl_reads_aggregated_discovery_in_two_requests_and_lists_the_same_resources() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());

    // The aggregated answer, as kubectl asks for it.
    let c = hub.client();
    for path in ["/api", "/apis"] {
        let resp = c
            .agent
            .get(format!("{}{path}", c.base))
            .header("Authorization", &format!("Bearer {}", c.token))
            .header("Accept", KUBECTL_ACCEPT)
            .call()
            .unwrap();
        assert_eq!(
            resp.headers()["content-type"],
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let v: Value = resp.into_body().read_json().unwrap();
        assert_eq!(v["kind"], "APIGroupDiscoveryList");
        assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2");
        assert!(!v["items"].as_array().unwrap().is_empty(), "{path}: {v}");
    }

    // kubectl: /api and /apis, nothing per group version.
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let out = Kubectl::for_data_dir(&hub.data_dir).run(
        &[
            "api-resources",
            "-o",
            "wide",
            "-v=6",
            "--cache-dir",
            cache_dir,
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let requests: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" GET https://"))
        .filter_map(|l| l.split(" GET ").nth(1))
        .filter_map(|l| l.split('?').next())
        .collect();
    let paths: Vec<&str> = requests
        .iter()
        .map(|u| &u[u.find("://").unwrap() + 3..])
        .map(|hostpath| &hostpath[hostpath.find('/').unwrap()..])
        .collect();
    assert_eq!(paths, ["/api", "/apis"], "{stderr}");

    // ...and lists exactly what the plain documents say.
    let (header, listed) = rows(&stdout);
    assert_eq!(
        header,
        [
            "NAME",
            "SHORTNAMES",
            "APIVERSION",
            "NAMESPACED",
            "KIND",
            "VERBS",
            "CATEGORIES"
        ]
    );
    let expected = expected_rows(&hub);
    assert_eq!(listed, expected);
    assert!(
        listed
            .iter()
            .any(|r| r[0] == "deployments" && r[2] == "apps/v1")
    );

    // The typed commands find their subresources through it too.
    let kubectl = Kubectl::for_data_dir(&hub.data_dir);
    kubectl.ok(&["create", "deployment", "web", "--image=nginx:1.27"]);
    kubectl.ok(&["scale", "deployment", "web", "--replicas=2"]);
    let scaled = kubectl.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(scaled, "2");
}
