//! Pod Security at the API: for a write of a Pod, a workload (a kind with
//! a pod template) or a Namespace, reads the namespace and what the write
//! replaces, asks [`crate::admission::pod_security`] and acts on the
//! answer: a violation of the enforce level is a 403 `Forbidden` in
//! Kubernetes' words, the warn level's violations come back as warnings,
//! the audit level's are logged.
//!
//! Unlike Kubernetes, workloads are refused too (Kubernetes admits them
//! with a warning and then fails to create their pods, but Bramble's
//! controllers write pods straight to the store): on create, and on an
//! update that changes the template. A pod update is checked when it
//! changes the spec or the devices annotation (Kubernetes checks only
//! image changes, the only spec change it allows).

use bramble_api::meta::ObjectMeta;
use bramble_api::objects::pod::DEVICES_ANNOTATION;
use bramble_api::objects::{Pod, PodSpec, PodTemplateSpec};
use bramble_api::status::StatusDetails;
use bramble_api::{ResourceInfo, Selector, Status};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::admission::pod_security::{
    self as ps, Evaluation, Subject, Target, existing_pod_warnings, review_namespace,
};
use crate::control::snapshot::{namespaces, pods};
use crate::store::StoreError;

/// `pods`, `deployments.apps`: how Kubernetes names a resource in errors.
pub fn qualified(resource: &ResourceInfo) -> String {
    if resource.group.is_empty() {
        resource.plural.to_string()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// Where objects of `resource` carry their pod template (a JSON pointer):
/// `spec.template`, or a CronJob's `spec.jobTemplate.spec.template`.
pub fn pod_template_at(resource: &ResourceInfo) -> Option<&'static str> {
    match (resource.group, resource.plural) {
        ("apps", "deployments")
        | ("apps", "daemonsets")
        | ("apps", "statefulsets")
        | ("batch", "jobs") => Some("/spec/template"),
        ("batch", "cronjobs") => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

fn decode<'a, T: Deserialize<'a>>(v: &'a Value, what: &str) -> ApiResult<T> {
    T::deserialize(v).map_err(|e| {
        ApiError::new(Status::internal(format!(
            "{what} does not decode for Pod Security admission: {e}"
        )))
    })
}

/// Admits a write of `object` (already admitted by `bramble_api::admit`)
/// replacing `old` (the stored object, for updates); returns the warnings
/// for the client.
pub fn admit_write(
    st: &AppState,
    resource: &'static ResourceInfo,
    object: &Value,
    old: Option<&Value>,
) -> ApiResult<Vec<String>> {
    if resource.group.is_empty() && resource.plural == "namespaces" {
        return admit_namespace(st, object, old);
    }
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    if resource.group.is_empty() && resource.plural == "pods" {
        let pod: Pod = decode(object, "the pod")?;
        if let Some(old) = old {
            let old: Pod = decode(old, "the stored pod")?;
            let devices = |p: &Pod| p.metadata.annotations.get(DEVICES_ANNOTATION).cloned();
            if old.spec == pod.spec && devices(&old) == devices(&pod) {
                return Ok(Vec::new());
            }
        }
        return evaluate(
            st,
            resource,
            namespace,
            name,
            &pod.metadata,
            &pod.spec,
            true,
        );
    }
    if let Some(at) = pod_template_at(resource) {
        let at_template = |o: &'_ Value| o.pointer(at).cloned().unwrap_or(Value::Null);
        let template: PodTemplateSpec = decode(&at_template(object), "the pod template")?;
        let changed = match old {
            Some(old) => {
                let before: PodTemplateSpec = decode(&at_template(old), "the stored pod template")?;
                before != template
            }
            None => true,
        };
        return evaluate(
            st,
            resource,
            namespace,
            name,
            &template.metadata,
            &template.spec,
            changed,
        );
    }
    Ok(Vec::new())
}

/// The stored namespace's metadata; a write into a namespace that does
/// not exist is refused with the store's 404, as Kubernetes' namespace
/// lifecycle admission refuses it before Pod Security runs.
fn namespace_meta(st: &AppState, namespace: &str) -> ApiResult<ObjectMeta> {
    match st.store.get(namespaces(), None, namespace)? {
        Some(ns) => decode(&ns["metadata"], "the namespace"),
        None => Err(StoreError::NamespaceNotFound(namespace.to_string()).into()),
    }
}

fn evaluate(
    st: &AppState,
    resource: &'static ResourceInfo,
    namespace: &str,
    name: &str,
    meta: &ObjectMeta,
    spec: &PodSpec,
    enforce: bool,
) -> ApiResult<Vec<String>> {
    let ns = namespace_meta(st, namespace)?;
    let e: Evaluation = ps::evaluate(
        &st.pod_security,
        Target {
            name: namespace,
            meta: Some(&ns),
        },
        Subject { meta, spec },
        enforce,
    );
    if !e.label_errors.is_empty() {
        tracing::debug!(namespace, errors = %e.label_errors, "PodSecurity namespace labels do not parse; their fallbacks apply");
    }
    if let Some(audit) = &e.audit {
        tracing::info!(
            kind = resource.kind,
            namespace,
            name,
            audit = %audit.would_violate(),
            "pod security audit"
        );
    }
    if let Some(refused) = &e.enforce {
        let status = Status::failure(
            403,
            "Forbidden",
            refused.forbidden(&qualified(resource), name),
        )
        .with_details(StatusDetails {
            name: name.to_string(),
            group: resource.group.to_string(),
            kind: resource.plural.to_string(),
            causes: Vec::new(),
        });
        return Err(ApiError::new(status));
    }
    Ok(e.warn.iter().map(|w| w.would_violate()).collect())
}

/// A Namespace write: its labels and devices annotation checked; a
/// stricter enforce level warns about the pods that break it.
fn admit_namespace(st: &AppState, object: &Value, old: Option<&Value>) -> ApiResult<Vec<String>> {
    let meta: ObjectMeta = decode(&object["metadata"], "the namespace")?;
    let old_meta: Option<ObjectMeta> = old
        .map(|o| decode(&o["metadata"], "the stored namespace"))
        .transpose()?;
    let review = review_namespace(&st.pod_security, &meta, old_meta.as_ref())
        .map_err(|errs| ApiError::new(Status::invalid("Namespace", &meta.name, &errs)))?;
    let mut warnings = review.warnings;
    if let Some(level) = review.recheck {
        let listed = st
            .store
            .list(pods(), Some(&meta.name), &Selector::default())?;
        let existing: Vec<Pod> = listed
            .items
            .iter()
            .filter_map(|p| Pod::deserialize(p).ok())
            .collect();
        warnings.extend(existing_pod_warnings(
            &st.pod_security,
            &meta,
            level,
            &existing,
        ));
    }
    Ok(warnings)
}
