//! Secret values never reach the hub's log, even at the most verbose level and
//! when a Secret is refused.

use std::path::Path;

use bramble_tests::HubProcess;
use serde_json::json;

#[test]
fn secret_values_are_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start_with_log(
        Path::new(env!("CARGO_BIN_EXE_bramble-hub")),
        dir.path(),
        "trace",
    );
    let c = hub.client();
    let path = "/api/v1/namespaces/default/secrets";
    let plain = "hunter2-plaintext-marker";
    let good = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                      "stringData": {"password": plain}});
    let (code, created) = c.post(path, &good);
    assert_eq!(code, 201, "{created}");
    let encoded = created["data"]["password"].as_str().unwrap().to_string();
    // Refused: invalid base64 in data, and an unsupported field next to a value.
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"},
                     "data": {"password": "!!not-base64-marker!!"}});
    assert_eq!(c.post(path, &bad).0, 422);
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad2"},
                     "stringData": {"password": plain}, "extra": plain});
    assert_eq!(
        c.post(&format!("{path}?fieldValidation=Strict"), &bad).0,
        400
    );
    // Dropped with a warning (the default), which names the field, not its value.
    let (code, warned) = c.post(path, &bad);
    assert_eq!(code, 201, "{warned}");
    assert!(warned.get("extra").is_none(), "{warned}");
    let (code, patched) = c.merge_patch(
        &format!("{path}/db"),
        &json!({"stringData": {"other": plain}}),
    );
    assert_eq!(code, 200, "{patched}");
    assert_eq!(c.get(&format!("{path}/db")).0, 200);
    // A last request whose log line marks that everything above was logged.
    assert_eq!(
        c.get("/api/v1/namespaces/default/configmaps/end-of-test-marker")
            .0,
        404
    );
    bramble_tests::eventually(
        "the hub to log the marker request",
        std::time::Duration::from_secs(10),
        || hub.log().contains("end-of-test-marker"),
    );
    let log = hub.log();
    assert!(log.contains("created"), "the log was captured:\n{log}");
    for secret in [plain, encoded.as_str(), "not-base64-marker"] {
        assert!(
            !log.contains(secret),
            "{secret:?} appeared in the hub log:\n{log}"
        );
    }
}
