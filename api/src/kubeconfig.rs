//! A kubeconfig for kubectl and the Kubernetes clients: one cluster (the
//! hub's URL and its CA), one user (a bearer token), one context, as k3s
//! writes `k3s.yaml`. The hub writes one for its own machine; `bramble
//! config --kubeconfig` prints one for another.

use base64::Engine;

/// The kubeconfig's text. `server` is `https://HOST:PORT`; `ca_pem` the
/// cluster CA; `namespace` the context's default namespace, if any.
pub fn render(server: &str, ca_pem: &str, token: &str, namespace: Option<&str>) -> String {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let namespace = namespace
        .map(|n| format!("    namespace: {n}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: bramble\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_data}\n\
         users:\n\
         - name: bramble-admin\n  user:\n    token: {token}\n\
         contexts:\n\
         - name: bramble\n  context:\n    cluster: bramble\n    user: bramble-admin\n{namespace}\
         current-context: bramble\n\
         preferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_server_the_ca_the_token_and_the_namespace() {
        let text = render("https://127.0.0.1:7480", "PEM", "t0ken", Some("site"));
        let v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:7480"
        );
        assert_eq!(v["users"][0]["user"]["token"], "t0ken");
        assert_eq!(v["contexts"][0]["context"]["namespace"], "site");
        assert_eq!(v["current-context"], "bramble");
        let ca = v["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(ca)
                .unwrap(),
            b"PEM"
        );
        let plain: serde_json::Value =
            serde_yaml_ng::from_str(&render("https://h:1", "PEM", "t", None)).unwrap();
        assert!(plain["contexts"][0]["context"]["namespace"].is_null());
    }
}
