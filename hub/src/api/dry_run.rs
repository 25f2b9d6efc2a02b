//! `?dryRun=All` on writes, or `"dryRun": ["All"]` in a delete's
//! `DeleteOptions` (`kubectl apply|create|delete --dry-run=server`,
//! `kubectl diff`): the request goes through everything a real one does —
//! decoding, admission, Pod Security, allocation checks, the store's own
//! refusals — against a [`crate::store::Store::dry_run`] handle, so the answer is
//! what the write would do and nothing is stored.

use axum::http::Method;

use super::AppState;
use super::error::{ApiError, ApiResult};

/// Whether the query asks for a dry run; 400 for a value Kubernetes does
/// not define.
pub fn requested(method: &Method, query: Option<&str>) -> ApiResult<bool> {
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return Ok(false);
    }
    let mut dry = false;
    for (k, v) in form_urlencoded_pairs(query.unwrap_or("")) {
        if k != "dryRun" {
            continue;
        }
        match v.as_str() {
            "All" => dry = true,
            "" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "dryRun={other:?} is not supported: the only dry run is dryRun=All"
                )));
            }
        }
    }
    Ok(dry)
}

/// Whether a `DeleteOptions` body asks for a dry run (`"dryRun": ["All"]`,
/// what `kubectl delete --dry-run=server` sends).
pub fn in_delete_options(options: Option<&serde_json::Value>) -> ApiResult<bool> {
    let Some(list) = options.and_then(|o| o.get("dryRun")) else {
        return Ok(false);
    };
    let values = list.as_array().ok_or_else(|| {
        ApiError::bad_request("DeleteOptions.dryRun must be a list, e.g. [\"All\"]")
    })?;
    let mut dry = false;
    for v in values {
        match v.as_str() {
            Some("All") => dry = true,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "DeleteOptions.dryRun {v} is not supported: the only dry run is \"All\""
                )));
            }
        }
    }
    Ok(dry)
}

/// `key=value` pairs of a query string, percent-decoded.
fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .unwrap_or_else(|_| axum::http::Uri::from_static("/")),
    )
    .map(|axum::extract::Query(pairs)| pairs)
    .unwrap_or_default()
}

/// `st` with its store's writes made dry runs.
pub fn state(st: &AppState) -> AppState {
    AppState {
        store: st.store.dry_run(),
        ..st.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_with_dry_run_all_are_dry() {
        assert!(requested(&Method::POST, Some("dryRun=All&fieldManager=kubectl")).unwrap());
        assert!(requested(&Method::DELETE, Some("dryRun=All")).unwrap());
        assert!(!requested(&Method::PATCH, Some("fieldManager=x")).unwrap());
        assert!(!requested(&Method::GET, Some("dryRun=All")).unwrap());
        assert!(requested(&Method::PUT, Some("dryRun=Some")).is_err());
    }

    #[test]
    fn delete_options_carry_kubectls_dry_run() {
        use serde_json::json;
        assert!(in_delete_options(Some(&json!({"dryRun": ["All"]}))).unwrap());
        assert!(!in_delete_options(Some(&json!({"propagationPolicy": "Background"}))).unwrap());
        assert!(!in_delete_options(None).unwrap());
        assert!(in_delete_options(Some(&json!({"dryRun": "All"}))).is_err());
        assert!(in_delete_options(Some(&json!({"dryRun": ["Some"]}))).is_err());
    }
}
