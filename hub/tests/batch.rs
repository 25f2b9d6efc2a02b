//! `batch/v1` over HTTP against an in-process hub with its control loop:
//! a Job gets its generated selector and its pods (Indexed ones by
//! index), and goes with them; CronJobs are defaulted and their time zones
//! and schedules checked at admission.

use std::collections::BTreeSet;
use std::time::Duration;

use bramble_hub::testing::TestHub;
use bramble_tests::{Client, eventually};
use serde_json::{Value, json};

const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const CRONJOBS: &str = "/apis/batch/v1/namespaces/default/cronjobs";
const PODS: &str = "/api/v1/namespaces/default/pods";

async fn hub() -> (TestHub, Client) {
    let hub = TestHub::start_with_mqtt().await.unwrap();
    let c = Client::with_ca(&hub.url(), hub.token(), hub.ca_pem().as_bytes());
    (hub, c)
}

/// Runs blocking client calls off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn template(restart: Option<&str>) -> Value {
    let mut t = json!({"spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(r) = restart {
        t["spec"]["restartPolicy"] = json!(r);
    }
    t
}

fn job_pods(c: &Client, job: &str) -> Vec<Value> {
    let (_, list) = c.get(&format!(
        "{PODS}?labelSelector=batch.kubernetes.io%2Fjob-name%3D{job}"
    ));
    list["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gets_its_selector_and_its_pods_and_takes_them_along() {
    let (hub, c) = hub().await;
    blocking(move || {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"completions": 3, "parallelism": 2, "completionMode": "Indexed",
                "template": template(Some("Never"))}});
        let (code, j) = c.post(JOBS, &job);
        assert_eq!(code, 201, "{j}");
        let uid = j["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(
            j["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        );
        let labels = &j["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
        assert_eq!(labels["controller-uid"], uid.as_str());
        assert_eq!(j["spec"]["backoffLimit"], 6);

        // No node: the pods wait unscheduled, two at a time, by index.
        let pods = eventually("the Job's first two pods", Duration::from_secs(20), || {
            let p = job_pods(&c, "pi");
            (p.len() == 2).then_some(p)
        });
        let indexes: BTreeSet<&str> = pods
            .iter()
            .map(|p| {
                p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(indexes, BTreeSet::from(["0", "1"]));
        for p in &pods {
            let owner = &p["metadata"]["ownerReferences"][0];
            assert_eq!(
                (owner["apiVersion"].as_str(), owner["kind"].as_str()),
                (Some("batch/v1"), Some("Job"))
            );
            assert_eq!(owner["uid"], uid.as_str());
        }
        let status = eventually("the Job's status", Duration::from_secs(20), || {
            let (_, j) = c.get(&format!("{JOBS}/pi"));
            (j["status"]["active"] == 2).then_some(j["status"].clone())
        });
        assert!(status["startTime"].is_string(), "{status}");

        let (code, v) = c.delete(&format!("{JOBS}/pi"));
        assert_eq!(code, 200, "{v}");
        eventually("the Job's pods collected", Duration::from_secs(20), || {
            job_pods(&c, "pi").is_empty().then_some(())
        });
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_cronjobs_are_checked_and_defaulted_at_admission() {
    let (hub, c) = hub().await;
    blocking(move || {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
            "spec": {"template": template(None)}});
        let (code, v) = c.post(JOBS, &job);
        assert_eq!(code, 422, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains(
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ),
            "{v}"
        );

        let cron = |name: &str, zone: &str| {
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                "spec": {"schedule": "*/5 * * * *", "timeZone": zone,
                    "jobTemplate": {"spec": {"template": template(Some("OnFailure"))}}}})
        };
        let (code, v) = c.post(CRONJOBS, &cron("mars", "Mars/Olympus"));
        assert_eq!(code, 422, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone"),
            "{v}"
        );
        let mut bad = cron("often", "Europe/Paris");
        bad["spec"]["schedule"] = json!("* * *");
        let (code, v) = c.post(CRONJOBS, &bad);
        assert_eq!(code, 422, "{v}");
        assert!(v["message"].as_str().unwrap().contains("spec.schedule"), "{v}");

        let (code, v) = c.post(CRONJOBS, &cron("paris", "Europe/Paris"));
        assert_eq!(code, 201, "{v}");
        let s = &v["spec"];
        assert_eq!(s["concurrencyPolicy"], "Allow");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["successfulJobsHistoryLimit"], 3);
        assert_eq!(s["failedJobsHistoryLimit"], 1);
        let (code, v) = c.get("/apis/batch/v1/cronjobs");
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_security_checks_the_pods_of_jobs_and_cronjobs() {
    let (hub, c) = hub().await;
    blocking(move || {
        let privileged = json!({"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]});
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "root"},
            "spec": {"template": {"spec": privileged}}});
        let (code, v) = c.post(JOBS, &job);
        assert_eq!(code, 403, "{v}");
        assert_eq!(
            v["message"],
            "jobs.batch \"root\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"
        );
        // A CronJob's pods are at spec.jobTemplate.spec.template.
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "root"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": privileged}}}}});
        let (code, v) = c.post(CRONJOBS, &cron);
        assert_eq!(code, 403, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("cronjobs.batch \"root\" is forbidden: violates PodSecurity"),
            "{v}"
        );
    })
    .await;
    hub.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_jobs_pods_are_made_from_cannot_change() {
    let (hub, c) = hub().await;
    blocking(move || {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"suspend": true, "template": template(Some("Never"))}});
        let (code, j) = c.post(JOBS, &job);
        assert_eq!(code, 201, "{j}");
        // A replace without the generated selector is refused.
        let mut bare = job.clone();
        bare["metadata"]["resourceVersion"] = j["metadata"]["resourceVersion"].clone();
        let (code, v) = c.put(&format!("{JOBS}/pi"), &bare);
        assert_eq!(code, 422, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("Job.batch \"pi\" is invalid: spec.selector: Invalid value: null: field is immutable"),
            "{v}"
        );
        // Parallelism may change, and the template while suspended.
        let (code, v) = c.merge_patch(
            &format!("{JOBS}/pi"),
            &json!({"spec": {"parallelism": 3, "template": {"metadata": {"annotations": {"a": "b"}}}}}),
        );
        assert_eq!(code, 200, "{v}");
        let (code, v) = c.merge_patch(&format!("{JOBS}/pi"), &json!({"spec": {"completions": 4}}));
        assert_eq!(code, 422, "{v}");
        assert!(v["message"].as_str().unwrap().contains("spec.completions"), "{v}");
    })
    .await;
    hub.stop().await.unwrap();
}
