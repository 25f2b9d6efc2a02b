//! A Job's identity, as Kubernetes' Job registry keeps it: a new Job gets
//! its uid from the hub before it is stored, and unless `manualSelector` is
//! true its selector and pod labels are made from that uid
//! (`bramble_api::objects::Job::generate_selector`; the store keeps a uid
//! already set). Every new Job goes through here: the API's creates and the
//! CronJob controller's. An update may not change what the Job's pods were
//! made from ([`check_update`]).

use bramble_api::field::{FieldError, FieldErrors};
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

/// Kubernetes' immutable fields of a Job on update: `spec.selector`,
/// `spec.completionMode`, `spec.completions` of a NonIndexed Job, and
/// `spec.template` unless the Job is suspended (Kubernetes allows some
/// template changes then; Bramble allows any). Other objects pass.
pub fn check_update(object: &Value, old: &Value) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if object["apiVersion"] != "batch/v1" || object["kind"] != "Job" {
        return errs;
    }
    let (new, old) = (&object["spec"], &old["spec"]);
    let mut immutable = |field: &str| {
        if new[field] != old[field] {
            errs.push(FieldError::invalid(
                format!("spec.{field}"),
                format!("{}: field is immutable", new[field]),
            ));
        }
    };
    immutable("selector");
    immutable("completionMode");
    if new["completionMode"] != "Indexed" {
        immutable("completions");
    }
    if new["suspend"] != true {
        immutable("template");
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_update_keeps_what_the_pods_were_made_from() {
        let old = json!({"apiVersion": "batch/v1", "kind": "Job",
            "spec": {"selector": {"matchLabels": {"a": "1"}}, "completions": 2,
                "completionMode": "NonIndexed", "suspend": false,
                "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let mut new = old.clone();
        new["spec"]["parallelism"] = json!(4);
        assert!(check_update(&new, &old).is_empty());
        new["spec"]["selector"] = Value::Null;
        new["spec"]["completions"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        let errs: Vec<String> = check_update(&new, &old)
            .0
            .iter()
            .map(|e| e.path.clone())
            .collect();
        assert_eq!(errs, ["spec.selector", "spec.completions", "spec.template"]);
        // Suspended: the template may change.
        new["spec"]["suspend"] = json!(true);
        new["spec"]["selector"] = old["spec"]["selector"].clone();
        new["spec"]["completions"] = json!(2);
        assert!(check_update(&new, &old).is_empty());
        let pod = json!({"apiVersion": "v1", "kind": "Pod"});
        assert!(check_update(&pod, &json!({})).is_empty());
    }

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
