//! Streaming pod subresources over WebSocket, as kubectl ≥ 1.30 speaks
//! them: `GET|POST .../pods/{name}/exec` with `Upgrade: websocket` and the
//! subprotocol `v5.channel.k8s.io` ([`channel`], [`exec`]), `.../attach`
//! with the same ([`attach`]), and
//! `.../pods/{name}/portforward` with `SPDY/3.1+portforward.k8s.io`
//! (SPDY tunnelled in WebSocket, [`portforward`]). The bearer token is
//! checked before (the API's middleware), as for every request.
//!
//! kubectl falls back to a plain SPDY upgrade when the WebSocket one fails.
//! This hub does not take it: such a request gets the same answer as the
//! WebSocket one would have before its upgrade (a missing pod, a bad
//! query), else a 400 saying why, so the user reads the real reason either
//! way.

pub mod attach;
pub mod channel;
pub mod exec;
pub mod portforward;
pub mod stdin;

use axum::extract::FromRequestParts;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use bramble_api::protocol::RpcCall;
use bramble_api::protocol::rpc::{ExecCall, FEATURE_EXEC_STREAM, FEATURE_PORT_FORWARD, PodRef};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::pod_rpc::{has_feature, pod_target};

/// Whether the request asks to switch to WebSocket.
pub fn is_websocket(parts: &Parts) -> bool {
    header_has(parts, header::UPGRADE, "websocket")
}

/// Whether the request asks to switch to another protocol (kubectl's SPDY
/// fallback).
pub fn is_other_upgrade(parts: &Parts) -> bool {
    parts.headers.contains_key(header::UPGRADE) && !is_websocket(parts)
}

fn header_has(parts: &Parts, name: header::HeaderName, token: &str) -> bool {
    parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The exec call the request asks for, checked: the pod is scheduled, the
/// query is complete, and its node's agent can take stdin if asked.
fn exec_call(
    st: &AppState,
    ns: &str,
    name: &str,
    parts: &Parts,
) -> ApiResult<(exec::ExecQuery, String, ExecCall)> {
    let q = exec::ExecQuery::parse(parts.uri.query())?;
    let (pod, node) = pod_target(st, ns, name)?;
    if q.stdin && !has_feature(st, &node, FEATURE_EXEC_STREAM)? {
        return Err(ApiError::bad_request(format!(
            "node {node:?} runs an agent without exec stdin: upgrade bramble-agent there, or run kubectl exec without -i"
        )));
    }
    let call = ExecCall {
        pod,
        container: q.container.clone(),
        argv: q.command.clone(),
        tty: false,
        stdin: q.stdin,
    };
    Ok((q, node, call))
}

/// Switches to WebSocket with `protocol`, which the client must offer
/// (else a 400 naming it, `what` and the client it `needs`), and runs `serve` on the socket.
async fn upgrade<F, Fut>(
    st: &AppState,
    mut parts: Parts,
    protocol: &'static str,
    (what, needs): (&str, &str),
    serve: F,
) -> ApiResult<Response>
where
    F: FnOnce(AppState, WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if !header_has(&parts, header::SEC_WEBSOCKET_PROTOCOL, protocol) {
        return Err(ApiError::bad_request(format!(
            "{what} speaks the WebSocket subprotocol {protocol} only ({needs})"
        )));
    }
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, st)
        .await
        .map_err(|r| ApiError::bad_request(format!("WebSocket upgrade: {}", r.body_text())))?;
    let st = st.clone();
    Ok(upgrade
        .protocols([protocol])
        .on_upgrade(move |socket| serve(st, socket)))
}

/// `pods/{name}/exec` with `Upgrade: websocket`.
pub async fn exec(st: &AppState, ns: &str, name: &str, parts: Parts) -> ApiResult<Response> {
    let (q, node, call) = exec_call(st, ns, name, &parts)?;
    upgrade(
        st,
        parts,
        channel::PROTOCOL_V5,
        ("exec", "kubectl 1.30 or newer"),
        move |st, socket| exec::bridge(st, node, RpcCall::Exec(call), q, socket),
    )
    .await
}

/// `pods/{name}/exec` asking for another upgrade (SPDY): the WebSocket
/// answer's error, or why not.
pub fn refuse_other_upgrade(
    st: &AppState,
    ns: &str,
    name: &str,
    parts: &Parts,
) -> ApiResult<Response> {
    exec_call(st, ns, name, parts)?;
    Err(ApiError::bad_request(format!(
        "this hub speaks exec over WebSocket ({}) only, not SPDY: use kubectl 1.30 or newer, and no proxy that refuses WebSocket upgrades",
        channel::PROTOCOL_V5
    )))
}

/// The pod and node a port-forward goes to, checked: the pod is scheduled
/// and its node's agent forwards ports.
fn portforward_target(st: &AppState, ns: &str, name: &str) -> ApiResult<(PodRef, String)> {
    let (pod, node) = pod_target(st, ns, name)?;
    if !has_feature(st, &node, FEATURE_PORT_FORWARD)? {
        return Err(ApiError::bad_request(format!(
            "node {node:?} runs an agent without port-forward: upgrade bramble-agent there"
        )));
    }
    Ok((pod, node))
}

/// `pods/{name}/portforward` with `Upgrade: websocket`.
pub async fn portforward(st: &AppState, ns: &str, name: &str, parts: Parts) -> ApiResult<Response> {
    let (pod, node) = portforward_target(st, ns, name)?;
    upgrade(
        st,
        parts,
        portforward::PROTOCOL,
        ("port-forward", "kubectl 1.31 or newer"),
        move |st, socket| portforward::session(st, node, pod, socket),
    )
    .await
}

/// `pods/{name}/portforward` without a WebSocket upgrade (kubectl's SPDY
/// fallback, or a plain request): the WebSocket answer's error, or why not.
pub fn refuse_portforward(st: &AppState, ns: &str, name: &str) -> ApiResult<Response> {
    portforward_target(st, ns, name)?;
    Err(ApiError::bad_request(format!(
        "this hub forwards ports over WebSocket ({}) only, not plain SPDY: use kubectl 1.31 or newer, and no proxy that refuses WebSocket upgrades",
        portforward::PROTOCOL
    )))
}

/// `pods/{name}/attach` with `Upgrade: websocket`.
pub async fn attach(st: &AppState, ns: &str, name: &str, parts: Parts) -> ApiResult<Response> {
    let q = attach::parse(parts.uri.query())?;
    let (pod, node) = pod_target(st, ns, name)?;
    let call = attach::call(pod, &q);
    upgrade(
        st,
        parts,
        channel::PROTOCOL_V5,
        ("attach", "kubectl 1.30 or newer"),
        move |st, socket| exec::bridge(st, node, RpcCall::Logs(call), q, socket),
    )
    .await
}

/// `pods/{name}/attach` without a WebSocket upgrade (kubectl's SPDY
/// fallback): the WebSocket answer's error, or why not.
pub fn refuse_attach(st: &AppState, ns: &str, name: &str, parts: &Parts) -> ApiResult<Response> {
    attach::parse(parts.uri.query())?;
    pod_target(st, ns, name)?;
    Err(ApiError::bad_request(format!(
        "this hub attaches over WebSocket ({}) only, not SPDY: use kubectl 1.30 or newer",
        channel::PROTOCOL_V5
    )))
}
