//! kubectl's `create job`, `create cronjob`, `create job --from=cronjob/...`
//! and `get jobs,cronjobs` against a real hub print what they print against
//! a real cluster.

use std::path::Path;

use bramble_tests::HubProcess;
use bramble_tests::kubectl::{Kubectl, words};
use serde_json::Value;

fn kubectl(hub: &HubProcess, args: &[&str]) -> String {
    Kubectl::for_data_dir(&hub.data_dir).ok(args)
}

#[test]
fn kubectl_creates_and_lists_jobs_and_cronjobs() {
    let dir = tempfile::tempdir().unwrap();
    let hub = HubProcess::start(Path::new(env!("CARGO_BIN_EXE_bramble-hub")), dir.path());
    let out = kubectl(
        &hub,
        &["create", "job", "pi", "--image=busybox", "--", "true"],
    );
    assert_eq!(out.trim(), "job.batch/pi created");
    let out = kubectl(
        &hub,
        &[
            "create",
            "cronjob",
            "hello",
            "--image=busybox",
            "--schedule=*/1 * * * *",
            "--",
            "true",
        ],
    );
    assert_eq!(out.trim(), "cronjob.batch/hello created");
    let out = kubectl(&hub, &["create", "job", "manual", "--from=cronjob/hello"]);
    assert_eq!(out.trim(), "job.batch/manual created");

    let t = words(&kubectl(&hub, &["get", "jobs", "-o", "wide"]));
    assert_eq!(
        t[0],
        [
            "NAME",
            "STATUS",
            "COMPLETIONS",
            "DURATION",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let pi = t.iter().find(|r| r[0] == "pi").expect("pi listed");
    assert_eq!(pi[1], "Running");
    assert_eq!(pi[2], "0/1");
    assert!(
        pi.last()
            .unwrap()
            .starts_with("batch.kubernetes.io/controller-uid="),
        "{pi:?}"
    );

    let t = words(&kubectl(&hub, &["get", "cronjobs"]));
    assert_eq!(
        t[0],
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]
    );
    assert_eq!(
        t[1][..8],
        ["hello", "*/1", "*", "*", "*", "*", "<none>", "False"]
    );

    // The manual Job is the CronJob's template, owned by it.
    let manual: Value =
        serde_json::from_str(&kubectl(&hub, &["get", "job", "manual", "-o", "json"])).unwrap();
    assert_eq!(
        manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(manual["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(
        manual["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox"
    );

    let all = kubectl(&hub, &["get", "all"]);
    assert!(all.contains("job.batch/pi"), "{all}");
    assert!(all.contains("cronjob.batch/hello"), "{all}");
}
