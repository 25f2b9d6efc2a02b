//! Service addresses at write time: a created or replaced Service gets its
//! ClusterIP and node ports here ([`crate::network::service_ips`]), under
//! one lock held until the write is stored, so concurrent creates never
//! share an address.

use bramble_api::{FieldError, FieldErrors, ResourceInfo, Selector, Status};
use serde_json::Value;
use tokio::sync::MutexGuard;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::network::service_ips;

/// For a Service write: fills its addresses from the cluster's others and
/// returns the lock to hold until the write is done. Other kinds: `None`.
pub async fn prepare<'a>(
    st: &'a AppState,
    resource: &'static ResourceInfo,
    object: &mut Value,
) -> ApiResult<Option<MutexGuard<'a, ()>>> {
    if !resource.group.is_empty() || resource.plural != "services" {
        return Ok(None);
    }
    let guard = st.allocations.lock().await;
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let all = st.store.list(resource, None, &Selector::default())?;
    let (current, others): (Vec<Value>, Vec<Value>) = all.items.into_iter().partition(|s| {
        s["metadata"]["name"] == name.as_str()
            && s["metadata"]["namespace"].as_str().unwrap_or("default") == ns
    });
    service_ips::assign(&st.network, object, current.first(), &others).map_err(|e| {
        let mut errs = FieldErrors::new();
        errs.push(FieldError::invalid(e.path, e.reason));
        ApiError::new(Status::invalid("Service", &name, &errs))
    })?;
    Ok(Some(guard))
}
