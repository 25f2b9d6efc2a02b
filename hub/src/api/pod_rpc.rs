//! Pod subresources answered by the pod's agent over MQTT RPC:
//! `GET .../pods/{name}/log?container=&follow=&tailLines=&sinceSeconds=&timestamps=&previous=`
//! (plain text, streamed) and `POST .../pods/{name}/exec` with
//! `{"container": "...", "command": [...]}` (newline-delimited JSON chunks:
//! `{"kind":"output","stream":"stdout","data":"..."}` ... then
//! `{"kind":"end","exitCode":N}`).

use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bramble_api::Status;
use bramble_api::protocol::RpcCall;
use bramble_api::protocol::RpcChunk;
use bramble_api::protocol::rpc::{
    Encoding, ExecCall, FEATURE_LOGS_PREVIOUS, LogsCall, PodRef, RpcErrorCode,
};
use bytes::Bytes;
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::control::snapshot::pods;
use crate::network::table::FEATURES_ANNOTATION;
use crate::rpc::RpcStream;

/// How long the agent has to send its first chunk.
const FIRST_CHUNK_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn pod_target(st: &AppState, ns: &str, name: &str) -> ApiResult<(PodRef, String)> {
    let pod = st
        .store
        .get(pods(), Some(ns), name)?
        .ok_or_else(|| ApiError::new(Status::not_found("pods", name)))?;
    let node = pod["spec"]["nodeName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "pod {name:?} is not scheduled to a node yet (see `bramble describe pod {name}`)"
            ))
        })?
        .to_string();
    Ok((
        PodRef {
            namespace: ns.to_string(),
            name: name.to_string(),
            uid: pod["metadata"]["uid"].as_str().map(str::to_string),
        },
        node,
    ))
}

/// Whether `node`'s agent announced `feature` in its hello (kept in the
/// Node's features annotation).
pub(super) fn has_feature(st: &AppState, node: &str, feature: &str) -> ApiResult<bool> {
    let n = st
        .store
        .get(crate::control::snapshot::nodes(), None, node)?;
    Ok(n.as_ref()
        .and_then(|n| n["metadata"]["annotations"][FEATURES_ANNOTATION].as_str())
        .is_some_and(|f| f.split(',').any(|x| x.trim() == feature)))
}

/// Starts the call and waits for its first chunk; an immediate error
/// becomes the HTTP error.
pub(super) async fn start(
    st: &AppState,
    node: &str,
    call: RpcCall,
) -> ApiResult<(RpcStream, RpcChunk)> {
    let (Some(fleet), Some(rpc)) = (&st.fleet, &st.rpc) else {
        return Err(ApiError::new(Status::failure(
            503,
            "ServiceUnavailable",
            "this hub runs without MQTT (no agents): logs and exec are unavailable",
        )));
    };
    let mut stream = rpc
        .call(fleet, node, call)
        .await
        .map_err(|e| ApiError::new(Status::internal(e.to_string())))?;
    let first = tokio::time::timeout(FIRST_CHUNK_TIMEOUT, stream.next()).await;
    let chunk = match first {
        Ok(Some(c)) => c,
        Ok(None) | Err(_) => {
            return Err(ApiError::new(Status::failure(
                504,
                "Timeout",
                format!(
                    "node {node:?} did not answer within {}s: is its agent connected? (see `bramble get nodes`)",
                    FIRST_CHUNK_TIMEOUT.as_secs()
                ),
            )));
        }
    };
    if let RpcChunk::End {
        error: Some(e),
        exit_code: None,
    } = &chunk
    {
        let status = match e.code {
            RpcErrorCode::NotFound => Status::failure(404, "NotFound", e.message.clone()),
            RpcErrorCode::Invalid => Status::bad_request(e.message.clone()),
            _ => Status::internal(e.message.clone()),
        };
        return Err(ApiError::new(status));
    }
    Ok((stream, chunk))
}

/// `GET .../pods/{name}/log`.
pub async fn log(st: &AppState, ns: &str, name: &str, query: Option<&str>) -> ApiResult<Response> {
    let (pod, node) = pod_target(st, ns, name)?;
    let mut call = LogsCall {
        pod,
        ..LogsCall::default()
    };
    for (k, v) in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|kv| kv.split_once('='))
    {
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("{k}={v}: must be a whole number")))
        };
        match k {
            "container" => call.container = Some(v.to_string()),
            "follow" => call.follow = v == "true" || v == "1",
            "tailLines" => call.tail_lines = Some(num(v)?),
            "sinceSeconds" => call.since_seconds = Some(num(v)?),
            "timestamps" => call.timestamps = v == "true" || v == "1",
            "previous" => call.previous = v == "true" || v == "1",
            _ => {}
        }
    }
    if (call.timestamps || call.previous) && !has_feature(st, &node, FEATURE_LOGS_PREVIOUS)? {
        return Err(ApiError::bad_request(format!(
            "node {node:?} runs an agent without --previous and --timestamps for logs: upgrade bramble-agent there"
        )));
    }
    let (stream, first) = start(st, &node, RpcCall::Logs(call)).await?;
    Ok(text_response(first, stream))
}

/// A logs answer as a streamed `text/plain` body: the output chunks' bytes,
/// an error from the agent as a last line.
pub(super) fn text_response(first: RpcChunk, stream: RpcStream) -> Response {
    let body =
        futures_util::stream::unfold((Some(first), stream), |(pending, mut stream)| async move {
            let chunk = match pending {
                Some(c) => c,
                None => stream.next().await?,
            };
            match chunk {
                RpcChunk::Output { data, encoding, .. } => Some((
                    Ok::<Bytes, std::io::Error>(decode(data, encoding)),
                    (None, stream),
                )),
                RpcChunk::End { error: Some(e), .. } => Some((
                    Ok(Bytes::from(format!(
                        "\nerror from the agent: {}\n",
                        e.message
                    ))),
                    (None, stream),
                )),
                RpcChunk::End { .. } => None,
                // Chunk kinds logs never carry: an empty piece, then on.
                _ => Some((Ok(Bytes::new()), (None, stream))),
            }
        });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(body),
    )
        .into_response()
}

fn decode(data: String, encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::Utf8 => Bytes::from(data),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map(Bytes::from)
            .unwrap_or_default(),
    }
}

/// `POST .../pods/{name}/exec`.
pub async fn exec(st: &AppState, ns: &str, name: &str, body: Value) -> ApiResult<Response> {
    let (pod, node) = pod_target(st, ns, name)?;
    let argv: Vec<String> = body["command"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if argv.is_empty() {
        return Err(ApiError::bad_request(
            "command: a command to run is required, e.g. {\"command\": [\"ls\", \"/\"]}",
        ));
    }
    let call = ExecCall {
        pod,
        container: body["container"].as_str().map(str::to_string),
        argv,
        tty: false,
        stdin: false,
    };
    let (stream, first) = start(st, &node, RpcCall::Exec(call)).await?;
    let body = futures_util::stream::unfold(
        (Some(first), stream, false),
        |(pending, mut stream, done)| async move {
            if done {
                return None;
            }
            let chunk = match pending {
                Some(c) => c,
                None => stream.next().await?,
            };
            let end = matches!(chunk, RpcChunk::End { .. });
            let mut line = serde_json::to_vec(&chunk).unwrap_or_default();
            line.push(b'\n');
            Some((
                Ok::<Bytes, std::io::Error>(Bytes::from(line)),
                (None, stream, end),
            ))
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response())
}
