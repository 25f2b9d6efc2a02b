//! The Kubernetes-style HTTP API: routes, auth, and dispatch to handlers.

mod auth;
mod build_log;
mod claims;
mod content;
mod discovery;
mod discovery_v2;
mod dry_run;
mod error;
mod events_v1;
mod eviction;
mod field_manager;
mod field_validation;
mod hub_written;
mod identity;
mod objects;
mod openapi;
mod page;
mod patch;
mod path;
mod pod_rpc;
mod pod_security;
pub mod protobuf;
mod query;
mod rollout;
mod scale;
mod secrets;
mod services;
pub mod spdy;
mod system;
mod table;
mod top;
mod trust;
mod warning;
pub mod watch;
pub mod watch_limit;
mod websocket;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::HubMetrics;
use crate::store::Store;
use error::ApiResult;
pub use error::{ApiError, status_response};
use field_manager::FieldManager;
use path::Target;
use query::ListQuery;

/// Largest request body accepted (Kubernetes uses 3 MiB too).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub token: Arc<str>,
    pub metrics: HubMetrics,
    /// Flips to `true` when the hub shuts down; ends open watches.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The OCI registry served under `/v2/`.
    pub registry: Arc<crate::registry::Registry>,
    /// The agents' live facts; `None` when the hub runs without MQTT.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
    /// The hub's and the nodes' keys (agents pull images with their key;
    /// tokens and approvals); `None` in tests that build a bare state.
    pub identity: Option<Arc<crate::identity::Identity>>,
    /// Calls to agents (logs, exec); `None` without MQTT.
    pub rpc: Option<Arc<crate::rpc::Rpc>>,
    /// The cluster's address plan (ClusterIPs come from its service CIDR).
    pub network: Arc<crate::network::NetworkSettings>,
    /// Held while a Service's ClusterIP and node ports are chosen and stored,
    /// so two creates never pick the same.
    pub allocations: Arc<tokio::sync::Mutex<()>>,
    /// The cluster CA (served at `/cacerts`, endorsed in the identity).
    pub tls: Option<Arc<crate::tls::HubTls>>,
    /// Build jobs' registry credentials; `None` on hubs without builds.
    pub builds: Option<Arc<crate::build::Builds>>,
    /// Open watches per token (`--max-watches-per-token`).
    pub watches: Arc<watch_limit::WatchLimits>,
    /// The key file sealing Secrets at rest (`bramble secrets rotate-key`).
    pub secrets_key: Option<Arc<crate::secrets_key::SecretsKey>>,
    /// Pod Security admission's settings (the namespaces' labels say the rest).
    pub pod_security: Arc<crate::admission::pod_security::PodSecurityConfig>,
    /// How long a watch asking for bookmarks stays quiet before it gets one
    /// (`--watch-bookmark-interval`).
    pub bookmark_every: std::time::Duration,
}

/// Whether `given` is the hub's admin token (constant-time).
pub fn token_matches(st: &AppState, given: &str) -> bool {
    crate::token::constant_time_eq(given.as_bytes(), st.token.as_bytes())
}

/// Builds the router: unauthenticated `/healthz` and `/version`, everything else
/// behind the bearer token.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(system::metrics))
        .route("/openapi/v2", get(openapi::v2::document))
        .route("/openapi/v3", get(openapi::v3::index))
        .route("/openapi/v3/{*path}", get(openapi::v3::document))
        .route("/apis/metrics.k8s.io/v1beta1/nodes", get(top::nodes))
        .route("/apis/metrics.k8s.io/v1beta1/nodes/{name}", get(top::node))
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(top::all_pods))
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
            get(top::pods),
        )
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}",
            get(top::pod),
        )
        .route(
            "/bramble/v2/tokens",
            get(trust::list_tokens).post(trust::create_token),
        )
        .route(
            "/bramble/v2/tokens/cluster/rotate",
            axum::routing::post(trust::rotate_cluster_token),
        )
        .route(
            "/bramble/v2/tokens/{id}",
            axum::routing::delete(trust::delete_token),
        )
        .route("/bramble/v2/nodekeys", get(trust::list_node_keys))
        .route("/bramble/v2/secrets/encryption", get(secrets::status))
        .route(
            "/bramble/v2/secrets/rotate-key",
            axum::routing::post(secrets::rotate_key),
        )
        .route(
            "/bramble/v2/nodekeys/{name}/approve",
            axum::routing::post(trust::approve_node),
        )
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::healthz))
        .route("/version", get(system::version))
        .route("/bramble/v2/identity", get(identity::identity))
        .route("/cacerts", get(identity::cacerts))
        .merge(crate::registry::router(state.clone()))
        .merge(protected)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Logs and counts every request. Never logs bodies (they may hold secrets).
async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let code = resp.status().as_u16();
    st.metrics.request(method.as_str(), code);
    tracing::debug!(%method, path, code, micros = started.elapsed().as_micros() as u64, "request");
    resp
}

/// Handles every `/api` and `/apis` path.
async fn dispatch(State(st): State<AppState>, req: Request) -> Response {
    match handle(&st, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn too_large() -> ApiError {
    ApiError::new(bramble_api::Status::failure(
        413,
        "RequestEntityTooLarge",
        format!("request body is larger than the limit of {MAX_BODY} bytes"),
    ))
}

async fn read_body(body: Body) -> ApiResult<Vec<u8>> {
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| too_large())
}

fn by<'a>(
    fields: &'a field_validation::FieldCheck,
    manager: &'a FieldManager,
) -> objects::Writer<'a> {
    objects::Writer { fields, manager }
}

/// The `Table` a read's `Accept` asks for, if any ([`table::TableRequest::negotiate`]).
fn table_request(
    parts: &axum::http::request::Parts,
    q: &ListQuery,
) -> ApiResult<Option<table::TableRequest>> {
    let accept = parts
        .headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    table::TableRequest::negotiate(accept, q.include_object.as_deref())
}

/// One of the caller's watch slots ([`watch_limit`]).
fn watch_slot(
    st: &AppState,
    parts: &axum::http::request::Parts,
) -> ApiResult<watch_limit::WatchSlot> {
    let caller = parts
        .extensions
        .get::<watch_limit::Caller>()
        .cloned()
        .unwrap_or(watch_limit::Caller {
            token: "anonymous".into(),
        });
    st.watches.acquire(&caller)
}

async fn handle(st: &AppState, req: Request) -> ApiResult<Response> {
    let (mut parts, body) = req.into_parts();
    // Refuse a declared oversize body before reading any of it.
    let declared = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let path = parts.uri.path().to_string();
    let target = path::parse(&path).ok_or_else(|| ApiError::not_found_path(&path))?;
    let method = parts.method.clone();
    let dry;
    let st = if dry_run::requested(&method, parts.uri.query())? {
        dry = dry_run::state(st);
        &dry
    } else {
        st
    };
    let content_type = parts
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let json = |v: serde_json::Value| Ok(axum::Json(v).into_response());
    match target {
        Target::CoreVersions if method == Method::GET => Ok(discovery_v2::answer(
            discovery_v2::Root::Core,
            &parts.headers,
        )),
        Target::GroupList if method == Method::GET => Ok(discovery_v2::answer(
            discovery_v2::Root::Groups,
            &parts.headers,
        )),
        Target::Group(g) if method == Method::GET => match discovery::group(&g) {
            Some(v) => json(v),
            None => Err(ApiError::not_found_path(&path)),
        },
        Target::ResourceList { group, version } if method == Method::GET => {
            json(discovery::resource_list(&group, &version))
        }
        Target::Resource {
            resource,
            namespace,
            name,
        } => {
            let ns = namespace.as_deref();
            let writes = matches!(method, Method::POST | Method::PUT | Method::PATCH);
            if resource.hub_written && writes {
                return Err(hub_written::refuse_write(resource, name.as_deref()));
            }
            match (&method, name.as_deref()) {
                (&Method::GET, None) => {
                    let q = ListQuery::parse(parts.uri.query())?;
                    let table = table_request(&parts, &q)?;
                    if q.is_watch() {
                        let slot = watch_slot(st, &parts)?;
                        watch::watch(st, resource, ns, &q, table, slot)
                    } else {
                        objects::list(st, resource, ns, &q, table)
                    }
                }
                (&Method::GET, Some(n)) => {
                    let table = table_request(&parts, &ListQuery::parse(parts.uri.query())?)?;
                    objects::get(st, resource, ns, n, table)
                }
                (&Method::POST, None) => {
                    let raw = read_body(body).await?;
                    let (body, fields) =
                        field_validation::parse_write(&parts.uri, content_type, &raw)?;
                    let manager = FieldManager::from_request(&parts.uri, &parts.headers)?;
                    objects::create(st, resource, ns, body, by(&fields, &manager)).await
                }
                (&Method::PUT, Some(n)) => {
                    let raw = read_body(body).await?;
                    let (body, fields) =
                        field_validation::parse_write(&parts.uri, content_type, &raw)?;
                    let manager = FieldManager::from_request(&parts.uri, &parts.headers)?;
                    objects::replace(st, resource, ns, n, body, by(&fields, &manager)).await
                }
                (&Method::PATCH, Some(n)) => {
                    let ct = parts
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let raw = read_body(body).await?;
                    let manager = FieldManager::from_request(&parts.uri, &parts.headers)?;
                    if patch::is_apply(&ct) {
                        let config = patch::parse_apply(&raw)?;
                        let fields = field_validation::parse_mode(&parts.uri)?;
                        return objects::apply(st, resource, ns, n, config, by(&fields, &manager))
                            .await;
                    }
                    // Every other patch format is JSON, whatever its Content-Type says.
                    let (body, fields) = field_validation::parse_write(&parts.uri, None, &raw)?;
                    objects::patch(st, resource, ns, n, &ct, body, by(&fields, &manager)).await
                }
                (&Method::DELETE, Some(n)) => {
                    let raw = read_body(body).await?;
                    let opts = if raw.iter().all(u8::is_ascii_whitespace) {
                        None
                    } else {
                        Some(content::decode(content_type, &raw)?)
                    };
                    hub_written::check_propagation(resource, opts.as_ref())?;
                    if resource.hub_written {
                        hub_written::check_delete(st, resource, ns, n)?;
                    }
                    // kubectl sends the dry run of a delete in its DeleteOptions.
                    if dry_run::in_delete_options(opts.as_ref())? {
                        objects::delete(&dry_run::state(st), resource, ns, n, opts).await
                    } else {
                        objects::delete(st, resource, ns, n, opts).await
                    }
                }
                _ => Err(ApiError::method_not_allowed(method.as_str(), &path)),
            }
        }
        Target::Converted {
            resource,
            namespace,
            name,
        } => events_v1::handle(st, &parts, body, resource, namespace, name).await,
        Target::Subresource {
            resource,
            namespace,
            name,
            sub,
        } => match (resource.plural, sub.as_str(), &method) {
            ("builds", "log", &Method::GET) => {
                build_log::log(st, &namespace, &name, parts.uri.query()).await
            }
            ("pods", "log", &Method::GET) => {
                pod_rpc::log(st, &namespace, &name, parts.uri.query()).await
            }
            ("pods", "eviction", &Method::POST) => {
                let body = content::decode(content_type, &read_body(body).await?)?;
                eviction::evict(st, resource, &namespace, &name, body).await
            }
            ("pods", "exec", &Method::GET | &Method::POST) if websocket::is_websocket(&parts) => {
                let parts =
                    std::mem::replace(&mut parts, axum::http::Request::new(()).into_parts().0);
                websocket::exec(st, &namespace, &name, parts).await
            }
            ("pods", "exec", &Method::POST) if websocket::is_other_upgrade(&parts) => {
                websocket::refuse_other_upgrade(st, &namespace, &name, &parts)
            }
            ("pods", "attach", &Method::GET | &Method::POST) if websocket::is_websocket(&parts) => {
                let parts =
                    std::mem::replace(&mut parts, axum::http::Request::new(()).into_parts().0);
                websocket::attach(st, &namespace, &name, parts).await
            }
            ("pods", "attach", &Method::GET | &Method::POST) => {
                websocket::refuse_attach(st, &namespace, &name, &parts)
            }
            ("pods", "portforward", &Method::GET | &Method::POST)
                if websocket::is_websocket(&parts) =>
            {
                let parts =
                    std::mem::replace(&mut parts, axum::http::Request::new(()).into_parts().0);
                websocket::portforward(st, &namespace, &name, parts).await
            }
            ("pods", "portforward", &Method::GET | &Method::POST) => {
                websocket::refuse_portforward(st, &namespace, &name)
            }
            ("pods", "exec", &Method::POST) => {
                let body = objects::parse_body(&read_body(body).await?)?;
                pod_rpc::exec(st, &namespace, &name, body).await
            }
            // `kubectl scale rs`: ReplicaSets are scaled by their Deployment.
            ("replicasets", "scale", _) => Err(hub_written::refuse_write(resource, Some(&name))),
            ("deployments", "revisions", &Method::GET) => rollout::revisions(st, &namespace, &name),
            ("deployments" | "statefulsets", "scale", &Method::GET) => {
                scale::get(st, resource, &namespace, &name)
            }
            ("deployments" | "statefulsets", "scale", &Method::PUT) => {
                let body = content::decode(content_type, &read_body(body).await?)?;
                let manager = FieldManager::from_request(&parts.uri, &parts.headers)?;
                scale::update(st, resource, &namespace, &name, None, body, &manager).await
            }
            ("deployments" | "statefulsets", "scale", &Method::PATCH) => {
                let ct = parts
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let kind = patch::PatchKind::from_content_type(ct)?;
                let body = objects::parse_body(&read_body(body).await?)?;
                let manager = FieldManager::from_request(&parts.uri, &parts.headers)?;
                scale::update(st, resource, &namespace, &name, Some(kind), body, &manager).await
            }
            ("deployments", "rollback", &Method::POST) => {
                let raw = read_body(body).await?;
                let body = if raw.iter().all(u8::is_ascii_whitespace) {
                    serde_json::Value::Null
                } else {
                    objects::parse_body(&raw)?
                };
                rollout::rollback(st, &namespace, &name, body).await
            }
            _ => Err(ApiError::method_not_allowed(method.as_str(), &path)),
        },
        _ => Err(ApiError::method_not_allowed(method.as_str(), &path)),
    }
}
