//! Answers to the hub's RPC requests, chunk by chunk into a sink (the
//! worker publishes each as it comes). `logs` reads the container's CRI log
//! files (`DATA_DIR/logs/{pod}/{container}.log` and its rotations) with
//! `tailLines` / `sinceSeconds`, then with `follow` streams new lines
//! ([`super::rpc_follow`]); `exec` runs a command in the container the pod
//! record names (`RUN_DIR/pods/{pod}.json`) through the runtime, streaming
//! its output and feeding its stdin ([`super::rpc_exec`]), killed after
//! [`EXEC_TIMEOUT`]; `portForward` connects to a port inside the pod's
//! network namespace and streams both ways ([`super::rpc_portforward`]);
//! `buildLogs` reads (and follows) a build job's kept log
//! ([`super::rpc_build_logs`]);
//! `prepull` answers "not implemented yet"; `cancel` and
//! `stdin` are the worker's (it sets the flag a running request watches, or
//! queues the bytes for its exec) and get no answer.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use bramble_api::objects::pod::Pod;
use bramble_api::protocol::rpc::{ExecCall, LogsCall, PodRef, RpcError, RpcErrorCode, Stream};

use super::rpc_build_logs::build_logs;
use super::rpc_exec::{StdinFeed, exec_stream};
use super::rpc_follow::{Chunker, FollowLimits, RecordWatch, chunks_of, follow};
use super::rpc_portforward::forward;
use crate::logs::follow::{LogFollower, Start};
use bramble_api::protocol::{RpcCall, RpcChunk};

use crate::logs::follow::read_history;
use crate::logs::format::LogLine;
use crate::logs::writer::previous_log;
use crate::pod::record::PodRecord;
use crate::pod::run::pod_id;
use crate::runtime::{ContainerHandle, Runtime};

/// The longest an `exec` may run.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(300);

/// What answering needs from the agent.
#[derive(Clone)]
pub struct RpcContext {
    /// `DATA_DIR/logs`.
    pub logs_dir: PathBuf,
    /// `RUN_DIR/pods`: the pod records.
    pub records_dir: PathBuf,
    /// `DATA_DIR/build-logs`: the logs of build jobs.
    pub build_logs_dir: PathBuf,
    pub runtime: Option<std::sync::Arc<dyn Runtime>>,
    pub follow: FollowLimits,
}

/// Answers `call` into `sink`, the `end` chunk last, stopping early when
/// `sink` refuses a chunk; a follow also ends when `cancel` is set.
/// Nothing for `cancel`.
pub fn answer(
    ctx: &RpcContext,
    call: &RpcCall,
    cancel: &AtomicBool,
    stdin: Option<StdinFeed>,
    sink: &mut dyn FnMut(RpcChunk) -> bool,
) {
    if let RpcCall::Exec(e) = call {
        match exec_target(ctx, e) {
            Ok((runtime, handle)) => exec_stream(runtime, &handle, &e.argv, stdin, cancel, sink),
            Err(end) => {
                sink(end);
            }
        }
        return;
    }
    if let RpcCall::PortForward(p) = call {
        match pod_record(ctx, &p.pod) {
            Ok(record) => forward(record.netns.as_deref(), p, stdin, cancel, sink),
            Err(end) => {
                sink(end);
            }
        }
        return;
    }
    if let RpcCall::BuildLogs(b) = call {
        return build_logs(&ctx.build_logs_dir, b, cancel, ctx.follow, sink);
    }
    if let RpcCall::Logs(l) = call
        && l.follow
        && !l.previous
    {
        return follow_logs(ctx, l, cancel, sink);
    }
    for c in answer_now(ctx, call) {
        if !sink(c) {
            return;
        }
    }
}

/// `logs` with `follow`: the history, then new lines until the end.
fn follow_logs(
    ctx: &RpcContext,
    call: &LogsCall,
    cancel: &AtomicBool,
    sink: &mut dyn FnMut(RpcChunk) -> bool,
) {
    let (ns, name) = (&call.pod.namespace, &call.pod.name);
    let started = locate(&ctx.logs_dir, call).and_then(|(path, pod_id, container)| {
        let failed = |e: std::io::Error| {
            error(
                RpcErrorCode::Failed,
                format!("reading the logs of {ns}/{name}/{container}: {e}"),
            )
        };
        let follower = LogFollower::open(&path, Start::End).map_err(failed)?;
        let history = follower.history().map_err(failed)?;
        Ok((follower, history, pod_id, container))
    });
    let (follower, history, pod_id, container) = match started {
        Ok(s) => s,
        Err((_, e)) => {
            sink(RpcChunk::End {
                exit_code: None,
                error: Some(e),
            });
            return;
        }
    };
    let mut chunks = select(&history, call, SystemTime::now());
    if chunks.is_empty() {
        // The hub waits a few seconds for a first chunk; a quiet container
        // must not look like an absent agent.
        chunks.push(RpcChunk::output(Stream::Stdout, b""));
    }
    for c in chunks {
        if !sink(c) {
            return;
        }
    }
    tracing::debug!(pod = %pod_id, %container, "following logs");
    let mut watch = RecordWatch {
        path: ctx.records_dir.join(format!("{pod_id}.json")),
        container,
        uid: call.pod.uid.clone(),
    };
    if let Some(end) = follow(
        follower,
        &mut watch,
        cancel,
        ctx.follow,
        call.timestamps,
        sink,
    ) {
        sink(end);
    }
}

/// The chunks answering `call` at once, the `end` chunk last; empty for
/// `cancel`. A follow gets only the history here.
pub fn answer_now(ctx: &RpcContext, call: &RpcCall) -> Vec<RpcChunk> {
    let result = match call {
        RpcCall::Logs(l) => logs(&ctx.logs_dir, l, SystemTime::now()),
        RpcCall::Exec(e) => match exec_target(ctx, e) {
            Ok(_) => Err(failed("exec is answered as a stream")),
            Err(end) => return vec![end],
        },
        RpcCall::PortForward(p) => match pod_record(ctx, &p.pod) {
            Ok(_) => Err(failed("port-forward is answered as a stream")),
            Err(end) => return vec![end],
        },
        RpcCall::BuildLogs(b) => {
            let once = bramble_api::protocol::rpc::BuildLogsCall {
                follow: false,
                ..b.clone()
            };
            let mut chunks = Vec::new();
            build_logs(
                &ctx.build_logs_dir,
                &once,
                &AtomicBool::new(false),
                ctx.follow,
                &mut |c| {
                    chunks.push(c);
                    true
                },
            );
            return chunks;
        }
        RpcCall::Prepull(_) => Err(failed("prepull is not implemented yet by this agent")),
        RpcCall::Cancel(_) | RpcCall::Stdin(_) => return Vec::new(),
    };
    match result {
        Ok(mut chunks) => {
            chunks.push(RpcChunk::End {
                exit_code: None,
                error: None,
            });
            chunks
        }
        Err((mut chunks, error)) => {
            chunks.push(RpcChunk::End {
                exit_code: None,
                error: Some(error),
            });
            chunks
        }
    }
}

type Failure = (Vec<RpcChunk>, RpcError);

fn end_error(code: RpcErrorCode, message: String) -> RpcChunk {
    RpcChunk::End {
        exit_code: None,
        error: Some(RpcError { code, message }),
    }
}

/// The runtime and the container `call` runs in (the pod record's), or the
/// `end` chunk saying why not.
fn exec_target<'c>(
    ctx: &'c RpcContext,
    call: &ExecCall,
) -> Result<(&'c dyn Runtime, ContainerHandle), RpcChunk> {
    let (ns, name) = (&call.pod.namespace, &call.pod.name);
    if call.tty {
        return Err(end_error(
            RpcErrorCode::Invalid,
            "exec with a terminal (tty) is not supported: run it without -t".into(),
        ));
    }
    let Some(runtime) = ctx.runtime.as_deref() else {
        return Err(end_error(
            RpcErrorCode::Failed,
            "this agent has no runtime for exec".into(),
        ));
    };
    let record = pod_record(ctx, &call.pod)?;
    let live = |c: &&crate::pod::record::SavedContainer| !c.init && !c.deleted;
    let container = match &call.container {
        Some(want) => record
            .containers
            .iter()
            .filter(live)
            .find(|c| &c.name == want),
        None => record.containers.iter().find(live),
    };
    match container {
        Some(c) => Ok((runtime, c.handle.clone())),
        None => Err(end_error(
            RpcErrorCode::NotFound,
            format!(
                "container {:?} is not running in pod {ns}/{name}",
                call.container.as_deref().unwrap_or("(first)")
            ),
        )),
    }
}

/// The record of `pod` on this node (that incarnation if `uid` is set),
/// or the `end` chunk saying it is not here.
pub(super) fn pod_record(ctx: &RpcContext, pod: &PodRef) -> Result<PodRecord, RpcChunk> {
    let (ns, name) = (&pod.namespace, &pod.name);
    let mut p = Pod::default();
    p.metadata.name = name.clone();
    p.metadata.namespace = Some(ns.clone());
    let path = ctx.records_dir.join(format!("{}.json", pod_id(&p)));
    let Some(record) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<PodRecord>(&b).ok())
    else {
        return Err(end_error(
            RpcErrorCode::NotFound,
            format!("pod {ns}/{name} is not running on this node"),
        ));
    };
    if pod
        .uid
        .as_ref()
        .is_some_and(|u| record.pod.metadata.uid.as_ref() != Some(u))
    {
        return Err(end_error(
            RpcErrorCode::NotFound,
            format!("pod {ns}/{name} on this node is another incarnation (uid differs)"),
        ));
    }
    Ok(record)
}

fn failed(message: &str) -> Failure {
    error(RpcErrorCode::Failed, message.to_string())
}

fn error(code: RpcErrorCode, message: String) -> Failure {
    (Vec::new(), RpcError { code, message })
}

/// The log file, pod id and container a `logs` call names.
fn locate(logs_dir: &Path, call: &LogsCall) -> Result<(PathBuf, String, String), Failure> {
    let (ns, name) = (&call.pod.namespace, &call.pod.name);
    let mut pod = Pod::default();
    pod.metadata.name = name.clone();
    pod.metadata.namespace = Some(ns.clone());
    let id = pod_id(&pod);
    let dir = logs_dir.join(&id);
    let not_found = || {
        error(
            RpcErrorCode::NotFound,
            format!("pod {ns}/{name} has no logs on this node"),
        )
    };
    let containers: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|_| not_found())?
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".log").map(str::to_string)
        })
        .collect();
    let container = match &call.container {
        Some(c) if containers.contains(c) => c.clone(),
        Some(c) => {
            return Err(error(
                RpcErrorCode::NotFound,
                format!("container {c:?} not found in pod {ns}/{name}"),
            ));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(error(
                RpcErrorCode::Invalid,
                format!(
                    "pod {ns}/{name} has several containers: name one of {}",
                    containers.join(", ")
                ),
            ));
        }
    };
    if call.previous {
        let path = previous_log(&dir.join(format!("{container}.log")));
        if !path.exists() {
            return Err(error(
                RpcErrorCode::NotFound,
                format!("previous terminated container {container:?} in pod {ns}/{name} not found"),
            ));
        }
        return Ok((path, id, container));
    }
    Ok((dir.join(format!("{container}.log")), id, container))
}

fn logs(logs_dir: &Path, call: &LogsCall, now: SystemTime) -> Result<Vec<RpcChunk>, Failure> {
    let (path, _, container) = locate(logs_dir, call)?;
    let lines = read_history(&path).map_err(|e| {
        error(
            RpcErrorCode::Failed,
            format!(
                "reading the logs of {}/{}/{container}: {e}",
                call.pod.namespace, call.pod.name
            ),
        )
    })?;
    Ok(select(&lines, call, now))
}

/// The whole messages of CRI `lines` newer than `sinceSeconds`, the last
/// `tailLines` of them, as output chunks (consecutive lines of one stream
/// share chunks).
fn select(lines: &[String], call: &LogsCall, now: SystemTime) -> Vec<RpcChunk> {
    let since = call
        .since_seconds
        .and_then(|s| now.checked_sub(Duration::from_secs(s)));
    let mut chunker = Chunker::with_timestamps(call.timestamps);
    let mut messages = Vec::new();
    for l in lines {
        let Some(line) = LogLine::parse(l) else {
            continue;
        };
        if let (Some(since), Some(t)) = (since, line.time())
            && t < since
        {
            continue;
        }
        messages.extend(chunker.messages(std::slice::from_ref(l)));
    }
    if let Some(n) = call.tail_lines {
        let skip = messages.len().saturating_sub(n as usize);
        messages.drain(..skip);
    }
    chunks_of(&messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bramble_api::protocol::rpc::PodRef;

    fn ctx(dir: &Path) -> RpcContext {
        RpcContext {
            logs_dir: dir.to_path_buf(),
            records_dir: dir.join("none"),
            build_logs_dir: dir.join("build-logs"),
            runtime: None,
            follow: FollowLimits::default(),
        }
    }

    fn call(container: Option<&str>, tail: Option<u64>, since: Option<u64>) -> RpcCall {
        RpcCall::Logs(LogsCall {
            pod: PodRef {
                namespace: "default".into(),
                name: "web".into(),
                uid: None,
            },
            container: container.map(str::to_string),
            follow: false,
            tail_lines: tail,
            since_seconds: since,
            timestamps: false,
            previous: false,
        })
    }

    fn text(chunks: &[RpcChunk]) -> String {
        chunks
            .iter()
            .filter_map(|c| c.output_bytes())
            .map(|b| String::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn logs_from_cri_files() {
        let dir = tempfile::tempdir().unwrap();
        let pod_dir = dir.path().join("default_web");
        std::fs::create_dir_all(&pod_dir).unwrap();
        let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        std::fs::write(
            pod_dir.join("main.log"),
            format!(
                "2020-01-01T00:00:00.000000000Z stdout F old\n\
                 {now} stdout P hel\n{now} stdout F lo\n{now} stderr F oops\n"
            ),
        )
        .unwrap();
        let all = answer_now(&ctx(dir.path()), &call(None, None, None));
        assert_eq!(text(&all), "old\nhello\noops\n");
        assert!(matches!(
            all.last(),
            Some(RpcChunk::End { error: None, .. })
        ));
        let recent = answer_now(&ctx(dir.path()), &call(Some("main"), None, Some(600)));
        assert_eq!(text(&recent), "hello\noops\n");
        let tail = answer_now(&ctx(dir.path()), &call(None, Some(1), None));
        assert_eq!(text(&tail), "oops\n");

        let missing = answer_now(&ctx(dir.path()), &call(Some("db"), None, None));
        let Some(RpcChunk::End { error: Some(e), .. }) = missing.last() else {
            panic!("{missing:?}")
        };
        assert_eq!(e.code, RpcErrorCode::NotFound);
        assert!(e.message.contains("\"db\" not found"), "{e:?}");
        let RpcCall::Logs(mut l) = call(None, None, None) else {
            unreachable!()
        };
        l.pod.name = "nope".into();
        let none = answer_now(&ctx(dir.path()), &RpcCall::Logs(l));
        assert!(
            matches!(none.last(), Some(RpcChunk::End { error: Some(e), .. }) if e.code == RpcErrorCode::NotFound)
        );
    }

    #[test]
    fn follow_sends_the_history_then_ends_on_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let pod_dir = dir.path().join("default_web");
        std::fs::create_dir_all(&pod_dir).unwrap();
        let now = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        std::fs::write(
            pod_dir.join("main.log"),
            format!("{now} stdout F one\n{now} stdout F two\n"),
        )
        .unwrap();
        let RpcCall::Logs(mut l) = call(None, Some(1), None) else {
            unreachable!()
        };
        l.follow = true;
        let cancelled = AtomicBool::new(true);
        let run = |l: &LogsCall| {
            let mut got = Vec::new();
            answer(
                &ctx(dir.path()),
                &RpcCall::Logs(l.clone()),
                &cancelled,
                None,
                &mut |c| {
                    got.push(c);
                    true
                },
            );
            got
        };
        let got = run(&l);
        assert_eq!(text(&got), "two\n");
        assert!(
            matches!(got.last(), Some(RpcChunk::End { error: Some(e), .. }) if e.code == RpcErrorCode::Cancelled),
            "{got:?}"
        );
        // Nothing to send yet: an empty first chunk all the same.
        l.tail_lines = Some(0);
        let got = run(&l);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].output_bytes(), Some(Vec::new()));
    }
}
