//! RPC over MQTT: the hub publishes a request on `nodes/{node}/rpc/req`; the
//! agent answers on `nodes/{node}/rpc/resp/{id}` with chunks numbered from 0,
//! the last one an `end` carrying the exit code or error. Agents dial out, so
//! this works for nodes behind NAT.
//!
//! Requests are strict (unknown fields refused: an exec must not run with an
//! option silently dropped). Responses are lenient: unknown fields and chunk
//! kinds are ignored, because output is only displayed. Output is cut into
//! chunks of at most [`MAX_OUTPUT_CHUNK_BYTES`] raw bytes so that even the
//! worst JSON escaping (6 bytes per control character) fits one response.
//!
//! Length: over 600 lines because its unit tests included; the code is under
//! 475 lines.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors, index, join};
use crate::names;

use super::envelope::Message;
use super::rpc_stdin::StdinCall;
pub use super::rpc_stdin::{FEATURE_EXEC_STREAM, STDIN_WINDOW_BYTES};

/// Limit of an encoded `rpcRequest`.
pub const MAX_RPC_REQUEST_BYTES: usize = 64 * 1024;
/// Limit of an encoded `rpcResponse`.
pub const MAX_RPC_RESPONSE_BYTES: usize = 128 * 1024;
/// Raw output bytes per `output` chunk (at most 96 KiB once JSON-escaped).
pub const MAX_OUTPUT_CHUNK_BYTES: usize = 16 * 1024;
/// Images per `prepull`.
pub const MAX_PREPULL_IMAGES: usize = 100;

/// A request id, also the last topic level of its responses: 1 to 64 of
/// `[A-Za-z0-9_-]`, chosen unique by the hub (a UUID fits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RpcId(String);

impl RpcId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RpcId(id.to_string()))
        } else {
            Err("must be 1 to 64 characters of letters, digits, '-' or '_'".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RpcId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RpcId::new(&s).map_err(|why| format!("rpc id {s:?}: {why}"))
    }
}

impl From<RpcId> for String {
    fn from(id: RpcId) -> String {
        id.0
    }
}

impl fmt::Display for RpcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `rpcRequest` (hub → agent, QoS 1, not retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RpcRequest {
    pub id: RpcId,
    /// The agent session it is for: an agent refuses requests of another
    /// session (a replay from an earlier run).
    pub session: String,
    /// Numbers the hub's requests to this session; an agent accepts each
    /// number once, and none far below the highest (a replay).
    pub seq: u64,
    pub call: RpcCall,
}

/// What is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RpcCall {
    Logs(LogsCall),
    Exec(ExecCall),
    Prepull(PrepullCall),
    /// Stop a running request (`logs -f` whose client went away, an exec
    /// interrupted); the agent ends it with error `cancelled`.
    Cancel(CancelCall),
    /// Bytes for the stdin of a running exec (see [`super::rpc_stdin`]); no
    /// answer of its own.
    Stdin(StdinCall),
    /// A TCP connection to a port of a pod (`kubectl port-forward`), only
    /// to agents announcing [`FEATURE_PORT_FORWARD`].
    PortForward(PortForwardCall),
    /// The log of a build job run on the node, only to agents announcing
    /// [`FEATURE_BUILD_LOGS`].
    BuildLogs(BuildLogsCall),
}

/// A pod on the node; with `uid`, only that incarnation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// `bramble logs POD [-c C] [-f] [--tail N] [--since D]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsCall {
    pub pod: PodRef,
    /// Required when the pod has more than one container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Keep streaming until the container stops or a `cancel` arrives.
    #[serde(default)]
    pub follow: bool,
    /// Only the last N lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_lines: Option<u64>,
    /// Only lines from the last N seconds (relative: board clocks drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seconds: Option<u64>,
    /// Each line prefixed with its RFC 3339 time and a space (`kubectl logs
    /// --timestamps`). Sent only when `true`, only to agents announcing
    /// [`FEATURE_LOGS_PREVIOUS`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timestamps: bool,
    /// The log of the container's run before the current one (`kubectl
    /// logs --previous`); never followed. Sent like `timestamps`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub previous: bool,
}

/// The `hello.features` entry of agents that keep a container's previous
/// run's log and take `previous` and `timestamps` in `logs`.
pub const FEATURE_LOGS_PREVIOUS: &str = "logsPrevious";

/// `bramble exec POD [-c C] -- CMD...` and `kubectl exec [-i]`: no
/// terminal in v2; stdin only for agents with [`FEATURE_EXEC_STREAM`].
/// Its `Debug` shows how many arguments, never them: a command line may
/// carry a password, and calls are logged.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecCall {
    pub pod: PodRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub argv: Vec<String>,
    /// Must be `false`: a terminal needs resize, which v2 lacks.
    #[serde(default)]
    pub tty: bool,
    /// The process's stdin is a pipe fed by `stdin` calls (else
    /// `/dev/null`). Sent only when `true`, and only to agents announcing
    /// [`FEATURE_EXEC_STREAM`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin: bool,
}

impl std::fmt::Debug for ExecCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecCall")
            .field("pod", &self.pod)
            .field("container", &self.container)
            .field("argv", &format_args!("<{} arguments>", self.argv.len()))
            .field("tty", &self.tty)
            .field("stdin", &self.stdin)
            .finish()
    }
}

/// The `hello.features` entry of agents that keep the logs of the build
/// jobs they ran and take `buildLogs`.
pub const FEATURE_BUILD_LOGS: &str = "buildLogs";

/// `bramble logs build/NAME [--platform P] [-f] [--tail N]`: the log of the
/// job of Build `uid` for `platform` on this node — each step as it
/// started (`#3 [2/4] RUN make`), the output of its process, how it ended
/// (`#3 DONE 1.2s`, `#3 CACHED`, `#3 ERROR: ...`). With `follow`, new
/// output streams until the job ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildLogsCall {
    pub uid: String,
    pub platform: String,
    #[serde(default)]
    pub follow: bool,
    /// Only the last N lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_lines: Option<u64>,
}

/// The `hello.features` entry of agents that take `portForward`.
pub const FEATURE_PORT_FORWARD: &str = "portForward";

/// `kubectl port-forward POD LOCAL:PORT`, one call per connection: the
/// agent connects to `127.0.0.1:port` inside the pod's network namespace
/// (as the kubelet does), so a server listening on the pod's loopback only
/// is reachable too. The bytes from the client come as `stdin` calls (the
/// same window and ordering as an exec's stdin, `eof` when the client
/// stops sending: the agent then shuts down its side of the connection);
/// the bytes from the pod come as `stdout` output chunks; `end` with exit
/// code 0 once the pod closed the connection, or an error (nothing
/// listens, the pod is gone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortForwardCall {
    pub pod: PodRef,
    pub port: u16,
}

/// Pull images ahead of a rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrepullCall {
    pub images: Vec<String>,
}

/// Cancel request `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelCall {
    pub id: RpcId,
}

/// `rpcResponse` (agent → hub, QoS 1, not retained): one chunk of the answer
/// to request `id`. `seq` counts from 0 without gaps; QoS 1 may duplicate a
/// chunk (drop a `seq` already seen) and the hub gives up on a request whose
/// next chunk does not come within its timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcResponse {
    pub id: RpcId,
    pub seq: u64,
    pub chunk: RpcChunk,
}

/// A piece of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RpcChunk {
    /// Output of logs or exec, in order.
    Output {
        stream: Stream,
        data: String,
        #[serde(default, skip_serializing_if = "Encoding::is_utf8")]
        encoding: Encoding,
    },
    /// One image of a prepull, pulled or failed.
    Image {
        image: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An exec's stdin is written to the process up to `offset` bytes
    /// (see [`super::rpc_stdin`]).
    StdinAck { offset: u64 },
    /// The last chunk: an exec's exit code, or why the request failed.
    End {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<RpcError>,
    },
    /// A kind added by a newer agent; skipped.
    #[serde(other)]
    Unknown,
}

/// `stdout` or `stderr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How `data` holds the bytes: UTF-8 text, or base64 when they are not UTF-8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Encoding {
    #[default]
    Utf8,
    Base64,
}

impl Encoding {
    fn is_utf8(&self) -> bool {
        *self == Encoding::Utf8
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcError {
    pub code: RpcErrorCode,
    /// For the user: what went wrong and what to do.
    pub message: String,
}

/// A machine-readable class of [`RpcError`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RpcErrorCode {
    /// No such pod, container or image.
    NotFound,
    /// The request was invalid (e.g. `tty: true`, a bad id).
    Invalid,
    /// Ended by a `cancel`.
    Cancelled,
    /// Anything else, including codes a newer agent adds.
    #[default]
    #[serde(other)]
    Failed,
}

impl RpcChunk {
    /// An output chunk of `bytes` (at most [`MAX_OUTPUT_CHUNK_BYTES`]): text
    /// when valid UTF-8, base64 otherwise.
    pub fn output(stream: Stream, bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => RpcChunk::Output {
                stream,
                data: s.to_string(),
                encoding: Encoding::Utf8,
            },
            Err(_) => RpcChunk::Output {
                stream,
                data: STANDARD.encode(bytes),
                encoding: Encoding::Base64,
            },
        }
    }

    /// The bytes of an output chunk; `None` for other chunks or bad base64.
    pub fn output_bytes(&self) -> Option<Vec<u8>> {
        match self {
            RpcChunk::Output {
                data,
                encoding: Encoding::Utf8,
                ..
            } => Some(data.clone().into_bytes()),
            RpcChunk::Output {
                data,
                encoding: Encoding::Base64,
                ..
            } => STANDARD.decode(data).ok(),
            _ => None,
        }
    }
}

/// Cuts `bytes` into output chunks of at most [`MAX_OUTPUT_CHUNK_BYTES`],
/// preferring cuts at UTF-8 character boundaries so text stays text.
pub fn output_chunks(stream: Stream, mut bytes: &[u8]) -> Vec<RpcChunk> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut cut = bytes.len().min(MAX_OUTPUT_CHUNK_BYTES);
        if cut < bytes.len() {
            // Back off over at most 3 continuation bytes (10xxxxxx).
            let boundary = (cut.saturating_sub(3)..=cut)
                .rev()
                .find(|&i| bytes[i] & 0xC0 != 0x80);
            if let Some(b) = boundary.filter(|&b| b > 0) {
                cut = b;
            }
        }
        out.push(RpcChunk::output(stream, &bytes[..cut]));
        bytes = &bytes[cut..];
    }
    out
}

impl Message for RpcRequest {
    const TYPE: &'static str = "rpcRequest";
    const MAX_BYTES: usize = MAX_RPC_REQUEST_BYTES;
    const SEALED: bool = true;

    fn validate(&self, _node: &str) -> FieldErrors {
        let mut errs = FieldErrors::new();
        match &self.call {
            RpcCall::Logs(l) => {
                check_pod(&mut errs, &l.pod);
                check_container(&mut errs, l.container.as_deref());
            }
            RpcCall::Exec(e) => {
                check_pod(&mut errs, &e.pod);
                check_container(&mut errs, e.container.as_deref());
                if e.argv.is_empty() || e.argv[0].is_empty() {
                    errs.push(FieldError::required("call.argv"));
                }
                if e.tty {
                    errs.push(FieldError::invalid(
                        "call.tty",
                        "true: terminals are not supported over MQTT in protocol v2",
                    ));
                }
            }
            RpcCall::Prepull(p) => {
                if p.images.is_empty() {
                    errs.push(FieldError::required("call.images"));
                }
                if p.images.len() > MAX_PREPULL_IMAGES {
                    errs.push(FieldError::invalid(
                        "call.images",
                        format!("must list at most {MAX_PREPULL_IMAGES} images"),
                    ));
                }
                for (i, img) in p.images.iter().enumerate() {
                    if img.trim().is_empty() {
                        errs.push(FieldError::required(index("call.images", i)));
                    }
                }
            }
            RpcCall::Stdin(s) => {
                if let Some((path, why)) = s.problem(&self.id) {
                    errs.push(FieldError::invalid(path, why));
                }
            }
            RpcCall::PortForward(p) => {
                check_pod(&mut errs, &p.pod);
                if p.port == 0 {
                    errs.push(FieldError::invalid(
                        "call.port",
                        "0: must be between 1 and 65535",
                    ));
                }
            }
            RpcCall::BuildLogs(b) => {
                if b.uid.is_empty()
                    || b.uid.len() > 64
                    || !b
                        .uid
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                {
                    errs.push(FieldError::invalid(
                        "call.uid",
                        format!("{:?}: must be a uid (letters, digits, '-')", b.uid),
                    ));
                }
                if let Some(why) = crate::objects::build::check_platform(&b.platform) {
                    errs.push(FieldError::invalid("call.platform", why));
                }
            }
            RpcCall::Cancel(c) => {
                if c.id == self.id {
                    errs.push(FieldError::invalid(
                        "call.id",
                        "must name another request than the cancel itself",
                    ));
                }
            }
        }
        errs
    }
}

fn check_pod(errs: &mut FieldErrors, pod: &PodRef) {
    if let Err(why) = names::dns1123_label(&pod.namespace) {
        errs.push(FieldError::invalid(
            "call.pod.namespace",
            format!("{:?}: {why}", pod.namespace),
        ));
    }
    if let Err(why) = names::dns1123_subdomain(&pod.name) {
        errs.push(FieldError::invalid(
            "call.pod.name",
            format!("{:?}: {why}", pod.name),
        ));
    }
}

fn check_container(errs: &mut FieldErrors, container: Option<&str>) {
    if let Some(c) = container
        && let Err(why) = names::dns1123_label(c)
    {
        errs.push(FieldError::invalid(
            join("call", "container"),
            format!("{c:?}: {why}"),
        ));
    }
}

impl Message for RpcResponse {
    const TYPE: &'static str = "rpcResponse";
    const MAX_BYTES: usize = MAX_RPC_RESPONSE_BYTES;
    const SEALED: bool = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ProtocolError, decode, encode};

    fn pod() -> PodRef {
        PodRef {
            namespace: "default".into(),
            name: "web-0".into(),
            uid: Some("0b4c".into()),
        }
    }

    #[test]
    fn an_exec_call_prints_no_argument() {
        let call = RpcCall::Exec(ExecCall {
            pod: pod(),
            container: None,
            argv: vec!["sh".into(), "-c".into(), "PASSWORD=hunter2 run".into()],
            tty: false,
            stdin: false,
        });
        let text = format!("{call:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("\"sh\""),
            "{text}"
        );
        assert!(text.contains("<3 arguments>"), "{text}");
    }

    fn req(call: RpcCall) -> RpcRequest {
        RpcRequest {
            id: RpcId::new("r1").unwrap(),
            session: "s1".into(),
            seq: 1,
            call,
        }
    }

    #[test]
    fn every_request_round_trips() {
        let calls = [
            RpcCall::Logs(LogsCall {
                pod: pod(),
                container: Some("web".into()),
                follow: true,
                tail_lines: Some(100),
                since_seconds: Some(600),
                timestamps: true,
                previous: true,
            }),
            RpcCall::Exec(ExecCall {
                pod: pod(),
                container: None,
                argv: vec!["cat".into(), "/etc/hostname".into()],
                tty: false,
                stdin: false,
            }),
            RpcCall::Prepull(PrepullCall {
                images: vec!["hub:7480/web:2".into()],
            }),
            RpcCall::Cancel(CancelCall {
                id: RpcId::new("r0").unwrap(),
            }),
            RpcCall::PortForward(PortForwardCall {
                pod: pod(),
                port: 8080,
            }),
        ];
        for call in calls {
            let r = req(call);
            let bytes = encode(&r).unwrap();
            assert_eq!(decode::<RpcRequest>("pi-1", &bytes).unwrap(), r);
        }
    }

    #[test]
    fn requests_are_strict_and_validated() {
        let v = serde_json::json!({"protocol": 2, "type": "rpcRequest", "body": {"id": "r1",
            "call": {"kind": "exec", "pod": {"namespace": "default", "name": "w"}, "argv": ["sh"], "terminalSize": 80}}});
        let e = decode::<RpcRequest>("pi-1", v.to_string().as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `terminalSize`"),
            "{e}"
        );

        let v = serde_json::json!({"protocol": 2, "type": "rpcRequest", "body": {"id": "r1",
            "call": {"kind": "reboot"}}});
        let e = decode::<RpcRequest>("pi-1", v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown variant `reboot`"), "{e}");

        let v = serde_json::json!({"protocol": 2, "type": "rpcRequest", "body": {"id": "a/b",
            "call": {"kind": "prepull", "images": ["x"]}}});
        let e = decode::<RpcRequest>("pi-1", v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("rpc id \"a/b\""), "{e}");

        let r = req(RpcCall::Exec(ExecCall {
            pod: PodRef::default(),
            container: Some("Web".into()),
            argv: vec![],
            tty: true,
            stdin: false,
        }));
        let e = decode::<RpcRequest>("pi-1", &encode(&r).unwrap()).unwrap_err();
        let ProtocolError::Invalid { errors, .. } = e else {
            panic!()
        };
        let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "call.pod.namespace",
                "call.pod.name",
                "call.container",
                "call.argv",
                "call.tty"
            ]
        );

        let r = req(RpcCall::PortForward(PortForwardCall {
            pod: pod(),
            port: 0,
        }));
        let e = decode::<RpcRequest>("pi-1", &encode(&r).unwrap()).unwrap_err();
        assert!(e.to_string().contains("call.port"), "{e}");

        let good = BuildLogsCall {
            uid: "5de2aecb-801f".into(),
            platform: "linux/arm/v7".into(),
            follow: true,
            tail_lines: None,
        };
        let r = req(RpcCall::BuildLogs(good.clone()));
        assert_eq!(
            decode::<RpcRequest>("pi-1", &encode(&r).unwrap()).unwrap(),
            r
        );
        let r = req(RpcCall::BuildLogs(BuildLogsCall {
            uid: "../x".into(),
            platform: "linux/../../etc".into(),
            ..good
        }));
        let e = decode::<RpcRequest>("pi-1", &encode(&r).unwrap()).unwrap_err();
        let ProtocolError::Invalid { errors, .. } = e else {
            panic!()
        };
        let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["call.uid", "call.platform"]);
    }

    #[test]
    fn every_chunk_round_trips_and_unknown_kinds_are_skipped() {
        let id = RpcId::new("r1").unwrap();
        let chunks = [
            RpcChunk::output(Stream::Stdout, b"hello\n"),
            RpcChunk::output(Stream::Stderr, &[0xff, 0x00, 0x41]),
            RpcChunk::Image {
                image: "web:2".into(),
                digest: Some("sha256:ab".into()),
                error: None,
            },
            RpcChunk::End {
                exit_code: Some(3),
                error: None,
            },
            RpcChunk::End {
                exit_code: None,
                error: Some(RpcError {
                    code: RpcErrorCode::NotFound,
                    message: "container \"db\" not found in pod default/web-0".into(),
                }),
            },
        ];
        for (seq, chunk) in chunks.into_iter().enumerate() {
            let r = RpcResponse {
                id: id.clone(),
                seq: seq as u64,
                chunk,
            };
            let bytes = encode(&r).unwrap();
            assert_eq!(decode::<RpcResponse>("pi-1", &bytes).unwrap(), r);
        }
        assert_eq!(
            RpcChunk::output(Stream::Stderr, &[0xff, 0]).output_bytes(),
            Some(vec![0xff, 0])
        );
        let v = serde_json::json!({"protocol": 2, "type": "rpcResponse",
            "body": {"id": "r1", "seq": 9, "chunk": {"kind": "progress", "percent": 40}, "x": 1}});
        let r: RpcResponse = decode("pi-1", v.to_string().as_bytes()).unwrap();
        assert_eq!(r.chunk, RpcChunk::Unknown);
        let v = serde_json::json!({"protocol": 2, "type": "rpcResponse",
            "body": {"id": "r1", "seq": 9, "chunk": {"kind": "end", "error": {"code": "quota", "message": "m"}}}});
        let r: RpcResponse = decode("pi-1", v.to_string().as_bytes()).unwrap();
        assert!(matches!(
            r.chunk,
            RpcChunk::End {
                error: Some(RpcError {
                    code: RpcErrorCode::Failed,
                    ..
                }),
                ..
            }
        ));
    }

    #[test]
    fn output_is_chunked_within_limits_at_char_boundaries() {
        // 3-byte characters never split; worst-case escaping still fits.
        let text = "é€".repeat(10_000);
        let chunks = output_chunks(Stream::Stdout, text.as_bytes());
        let mut back = Vec::new();
        for c in &chunks {
            assert!(matches!(
                c,
                RpcChunk::Output {
                    encoding: Encoding::Utf8,
                    ..
                }
            ));
            back.extend(c.output_bytes().unwrap());
        }
        assert_eq!(back, text.as_bytes());
        assert_eq!(chunks.len(), text.len().div_ceil(MAX_OUTPUT_CHUNK_BYTES));

        let controls = vec![0x01u8; MAX_OUTPUT_CHUNK_BYTES * 2];
        for c in output_chunks(Stream::Stdout, &controls) {
            let r = RpcResponse {
                id: RpcId::new("r1").unwrap(),
                seq: u64::MAX,
                chunk: c,
            };
            assert!(encode(&r).is_ok());
        }
        assert!(output_chunks(Stream::Stdout, b"").is_empty());
    }
}
