//! The hub's OCI registry: the distribution API under `/v2/` (pull, push with
//! monolithic and chunked uploads and cross-mount, tags, catalog, delete) over a
//! content-addressed blob store on disk, with manifests and tags in redb.

mod auth;
mod blobs;
mod error;
mod gc;
mod manifests;
mod meta;
pub(crate) mod path;
mod platforms;
mod uploads;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use bramble_images::BlobStore;
use serde_json::json;

use crate::api::AppState;
use crate::store::Store;
pub use error::RegistryError;
use error::RegistryResult;
pub use gc::GcReport;
pub use meta::Meta;
use path::Route;

/// An upload in progress.
struct Upload {
    repo: String,
    path: PathBuf,
    size: u64,
}

/// The registry: blobs on disk, metadata in the store.
pub struct Registry {
    pub blobs: BlobStore,
    pub meta: Meta,
    uploads: Mutex<HashMap<String, Upload>>,
    /// Unreferenced blobs younger than this survive a collection.
    pub gc_grace: Duration,
}

impl Registry {
    /// Opens the blob store at `root`.
    pub fn open(root: PathBuf, store: Store) -> Result<Registry, bramble_images::BlobError> {
        Ok(Registry {
            blobs: BlobStore::open(root)?,
            meta: Meta::new(store),
            uploads: Mutex::new(HashMap::new()),
            gc_grace: Duration::from_secs(3600),
        })
    }
}

/// Routes `/v2` and everything below it, behind registry authentication.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v2", axum::routing::any(dispatch))
        .route("/v2/", axum::routing::any(dispatch))
        .route("/v2/{*rest}", axum::routing::any(dispatch))
        .layer(middleware::from_fn_with_state(state, auth::require_token))
}

async fn dispatch(State(st): State<AppState>, req: Request) -> Response {
    let reg = st.registry.clone();
    let resp = handle(&reg, req)
        .await
        .unwrap_or_else(|e| e.into_response());
    let mut resp = resp;
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        axum::http::HeaderValue::from_static("registry/2.0"),
    );
    resp
}

fn check_repo(repo: &str) -> RegistryResult<()> {
    if path::valid_repo(repo) {
        Ok(())
    } else {
        Err(RegistryError::name_invalid(format!(
            "invalid repository name {repo:?}: lowercase letters, digits and . _ - separated by /"
        )))
    }
}

async fn handle(reg: &Arc<Registry>, req: Request) -> RegistryResult<Response> {
    let (parts, body) = req.into_parts();
    let route = path::parse(parts.uri.path()).ok_or_else(|| {
        RegistryError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no registry route {}", parts.uri.path()),
        )
    })?;
    let m = &parts.method;
    let q = uploads::query(&parts.uri);
    match route {
        Route::Base => Ok(axum::Json(json!({})).into_response()),
        Route::Catalog if m == Method::GET => {
            let repos = reg.meta.repositories()?;
            Ok(axum::Json(json!({"repositories": paginate(repos, &q)})).into_response())
        }
        Route::Gc if m == Method::POST => {
            let grace = match q.get("graceSeconds") {
                Some(g) => Duration::from_secs(g.parse().map_err(|_| {
                    RegistryError::new(
                        StatusCode::BAD_REQUEST,
                        "UNSUPPORTED",
                        "graceSeconds must be a number of seconds",
                    )
                })?),
                None => reg.gc_grace,
            };
            let reg = reg.clone();
            let report = tokio::task::spawn_blocking(move || reg.gc(grace))
                .await
                .map_err(RegistryError::internal)??;
            Ok(axum::Json(report).into_response())
        }
        Route::Tags { repo } if m == Method::GET => {
            check_repo(&repo)?;
            let tags: Vec<String> = reg.meta.tags(&repo)?.into_iter().map(|(t, _)| t).collect();
            if tags.is_empty() && !reg.meta.repositories()?.contains(&repo) {
                return Err(RegistryError::name_unknown(&repo));
            }
            Ok(axum::Json(json!({"name": repo, "tags": paginate(tags, &q)})).into_response())
        }
        Route::Manifest { repo, reference } => {
            check_repo(&repo)?;
            match *m {
                Method::GET | Method::HEAD => reg.get_manifest(m, &repo, &reference).await,
                Method::PUT => {
                    reg.put_manifest(&repo, &reference, &parts.headers, body)
                        .await
                }
                Method::DELETE => reg.delete_manifest(&repo, &reference).await,
                _ => Err(RegistryError::unsupported(format!("{m} on a manifest"))),
            }
        }
        Route::Blob { repo, digest } => {
            check_repo(&repo)?;
            match *m {
                Method::GET | Method::HEAD => reg.get_blob(m, &digest, &parts.headers).await,
                _ => Err(RegistryError::unsupported(
                    "blobs are deleted by garbage collection: delete tags or manifests, then POST /v2/_gc",
                )),
            }
        }
        Route::Upload { repo, id } => {
            check_repo(&repo)?;
            match (m.clone(), id) {
                (Method::POST, None) => reg.start_upload(&repo, &q, body).await,
                (Method::PATCH, Some(id)) => {
                    reg.patch_upload(&repo, &id, &parts.headers, body).await
                }
                (Method::PUT, Some(id)) => reg.finish_upload(&repo, &id, &q, body).await,
                (Method::GET, Some(id)) => reg.upload_status(&repo, &id),
                (Method::DELETE, Some(id)) => reg.cancel_upload(&repo, &id),
                _ => Err(RegistryError::unsupported(format!("{m} on uploads"))),
            }
        }
        _ => Err(RegistryError::unsupported(format!(
            "{m} on {}",
            parts.uri.path()
        ))),
    }
}

/// `?n=&last=` pagination of a sorted list.
fn paginate(items: Vec<String>, q: &HashMap<String, String>) -> Vec<String> {
    let start = match q.get("last") {
        Some(last) => items.iter().position(|i| i > last).unwrap_or(items.len()),
        None => 0,
    };
    let n = q
        .get("n")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    items.into_iter().skip(start).take(n).collect()
}
