//! `GET /apis/bramble.dev/v1/namespaces/{ns}/builds/{name}/log?platform=&follow=&tailLines=`
//! (`bramble logs build/NAME`): the log of one platform's job of a Build,
//! which the node that ran it keeps (see `docs/building.md`), read over
//! MQTT RPC and streamed as plain text, as a pod's log is. A Build of one
//! platform needs no `platform`; one of several names them in its error.
//! A platform whose every step came from the cache never ran on a board:
//! its log is written here, from its status ([`cached_log`]).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bramble_api::Status;
use bramble_api::objects::build::{Build, PlatformBuildStatus};
use bramble_api::protocol::RpcCall;
use bramble_api::protocol::rpc::{BuildLogsCall, FEATURE_BUILD_LOGS};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::pod_rpc::{has_feature, start, text_response};

/// See the module docs.
pub async fn log(st: &AppState, ns: &str, name: &str, query: Option<&str>) -> ApiResult<Response> {
    let mut platform = None;
    let mut call = BuildLogsCall::default();
    let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes());
    for (k, v) in pairs {
        match k.as_ref() {
            "platform" => platform = Some(v.into_owned()),
            "follow" => call.follow = v == "true" || v == "1",
            "tailLines" => {
                call.tail_lines = Some(v.parse().map_err(|_| {
                    ApiError::bad_request(format!("tailLines={v}: must be a whole number"))
                })?)
            }
            _ => {}
        }
    }
    let resource = bramble_api::resource::by_plural("bramble.dev", "v1", "builds")
        .expect("builds are registered");
    let raw = st
        .store
        .get(resource, Some(ns), name)?
        .ok_or_else(|| ApiError::new(Status::not_found("builds", name)))?;
    let build: Build = serde_json::from_value(raw)
        .map_err(|e| ApiError::new(Status::internal(format!("build {ns}/{name}: {e}"))))?;
    let uid = build.metadata.uid.clone().unwrap_or_default();
    let platforms = &build.spec.platforms;
    let chosen = match platform {
        Some(p) if platforms.contains(&p) => p,
        Some(p) => {
            return Err(ApiError::bad_request(format!(
                "build {name:?} does not build {p}; it builds {}",
                platforms.join(", ")
            )));
        }
        None if platforms.len() == 1 => platforms[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "build {name:?} builds {}: choose one with --platform",
                platforms.join(", ")
            )));
        }
    };
    let status = build
        .status
        .as_ref()
        .and_then(|s| s.platforms.iter().find(|p| p.platform == chosen));
    if let Some(text) = status.and_then(cached_log) {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let node = status
        .and_then(|p| p.node.clone())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "build {name:?} has not started on a node for {chosen} yet (see `bramble get build {name}`)"
            ))
        })?;
    if !has_feature(st, &node, FEATURE_BUILD_LOGS)? {
        return Err(ApiError::bad_request(format!(
            "node {node:?} runs an agent that keeps no build logs: upgrade bramble-agent there"
        )));
    }
    call.uid = uid;
    call.platform = chosen;
    let (stream, first) = start(st, &node, RpcCall::BuildLogs(call)).await?;
    Ok(text_response(first, stream))
}

/// The log of a platform that succeeded with every step from the cache,
/// as a board would have written it; `None` for any other.
pub fn cached_log(p: &PlatformBuildStatus) -> Option<String> {
    if p.phase != "Succeeded" || !p.steps.iter().all(|s| s.cached) {
        return None;
    }
    let mut text = String::new();
    for (i, step) in p.steps.iter().enumerate() {
        let n = i + 1;
        text.push_str(&format!("#{n} {}\n#{n} CACHED\n", step.name));
    }
    text.push_str("DONE 0.0s\n");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::objects::build::BuildStepStatus;

    fn step(name: &str, cached: bool) -> BuildStepStatus {
        BuildStepStatus {
            name: name.into(),
            phase: "Succeeded".into(),
            cached,
            ..BuildStepStatus::default()
        }
    }

    #[test]
    fn only_a_platform_built_from_the_cache_alone_gets_its_log_here() {
        let mut p = PlatformBuildStatus {
            platform: "linux/arm64".into(),
            phase: "Succeeded".into(),
            steps: vec![step("[2/3] COPY . /", true), step("[3/3] RUN make", true)],
            ..PlatformBuildStatus::default()
        };
        assert_eq!(
            cached_log(&p).unwrap(),
            "#1 [2/3] COPY . /\n#1 CACHED\n#2 [3/3] RUN make\n#2 CACHED\nDONE 0.0s\n"
        );
        p.steps[1].cached = false;
        assert_eq!(cached_log(&p), None, "a step ran: the board has the log");
        p.steps[1].cached = true;
        p.phase = "Running".into();
        assert_eq!(cached_log(&p), None);
    }
}
