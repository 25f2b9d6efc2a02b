//! A new Job's identity, as Kubernetes' Job registry gives it before the
//! Job is stored: the hub picks its uid, and unless `manualSelector` is
//! true its selector and pod labels are made from that uid
//! (`bramble_api::objects::Job::generate_selector`). The store keeps a uid
//! already set. Every new Job goes through here: the API's creates and the
//! CronJob controller's.

use bramble_api::objects::Job;
use serde_json::Value;

/// Gives the admitted new Job `object` a uid and its generated selector and
/// labels; any other object is left as it is.
pub fn give_identity(object: &mut Value) -> Result<(), serde_json::Error> {
    if object["apiVersion"] != "batch/v1" || object["kind"] != "Job" {
        return Ok(());
    }
    let mut job: Job = serde_json::from_value(object.clone())?;
    job.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
    job.generate_selector();
    *object = serde_json::to_value(&job)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_job_gets_a_uid_and_the_selector_made_from_it() {
        let mut job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl"}]}}}});
        give_identity(&mut job).unwrap();
        let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(uid.len(), 36);
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "pi"
        );
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        give_identity(&mut pod).unwrap();
        assert!(pod["metadata"].get("uid").is_none());
    }
}
