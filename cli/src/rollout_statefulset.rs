//! kubectl's rollout status of a StatefulSet (its `StatefulSetStatusViewer`),
//! word for word: spec update observed, every replica ready, then the
//! partitioned roll out (Bramble defaults `rollingUpdate.partition` to 0, as
//! Kubernetes does, so that is the message of a finished rollout).

use serde_json::Value;

/// `Ok((finished, message))`, or kubectl's error for `OnDelete`.
pub fn progress(sts: &Value) -> Result<(bool, String), String> {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let strategy = &sts["spec"]["updateStrategy"];
    if strategy["type"].as_str().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Err("rollout status is only available for RollingUpdate strategy type".into());
    }
    let s = &sts["status"];
    let observed = int(&s["observedGeneration"]);
    if observed == 0 || int(&sts["metadata"]["generation"]) > observed {
        return Ok((
            false,
            "Waiting for statefulset spec update to be observed...".into(),
        ));
    }
    let replicas = sts["spec"]["replicas"].as_i64();
    if let Some(want) = replicas
        && int(&s["readyReplicas"]) < want
    {
        let missing = want - int(&s["readyReplicas"]);
        return Ok((false, format!("Waiting for {missing} pods to be ready...")));
    }
    let updated = int(&s["updatedReplicas"]);
    if strategy["rollingUpdate"].is_object() {
        if let (Some(want), Some(partition)) =
            (replicas, strategy["rollingUpdate"]["partition"].as_i64())
            && updated < want - partition
        {
            return Ok((
                false,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                    want - partition
                ),
            ));
        }
        return Ok((
            true,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        ));
    }
    let (current, update) = (&s["currentRevision"], &s["updateRevision"]);
    if update != current {
        return Ok((
            false,
            format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {}...",
                update.as_str().unwrap_or("")
            ),
        ));
    }
    Ok((
        true,
        format!(
            "statefulset rolling update complete {} pods at revision {}...",
            int(&s["currentReplicas"]),
            current.as_str().unwrap_or("")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts(generation: i64, partition: Option<i64>, status: Value) -> Value {
        let mut v = json!({"metadata": {"generation": generation},
            "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}}, "status": status});
        if let Some(p) = partition {
            v["spec"]["updateStrategy"]["rollingUpdate"] = json!({"partition": p});
        }
        v
    }

    #[test]
    fn messages_are_kubectls() {
        let msg = |v: &Value| progress(v).unwrap();
        assert_eq!(
            msg(&sts(2, Some(0), json!({"observedGeneration": 1}))),
            (
                false,
                "Waiting for statefulset spec update to be observed...".into()
            )
        );
        assert_eq!(
            msg(&sts(
                1,
                Some(0),
                json!({"observedGeneration": 1, "readyReplicas": 1})
            ))
            .1,
            "Waiting for 2 pods to be ready..."
        );
        let ready = json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1,
            "currentRevision": "db-a", "updateRevision": "db-b", "currentReplicas": 2});
        assert_eq!(
            msg(&sts(1, Some(1), ready.clone())).1,
            "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated..."
        );
        let mut done = ready.clone();
        done["updatedReplicas"] = 3.into();
        assert_eq!(
            msg(&sts(1, Some(0), done)),
            (
                true,
                "partitioned roll out complete: 3 new pods have been updated...".into()
            )
        );
        assert_eq!(
            msg(&sts(1, None, ready)).1,
            "waiting for statefulset rolling update to complete 1 pods at revision db-b..."
        );
        let mut on_delete = sts(1, None, json!({}));
        on_delete["spec"]["updateStrategy"]["type"] = "OnDelete".into();
        assert!(
            progress(&on_delete)
                .unwrap_err()
                .contains("only available for RollingUpdate")
        );
    }
}
