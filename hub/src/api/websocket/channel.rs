//! Kubernetes' channel framing of `v5.channel.k8s.io` (what kubectl ≥ 1.30
//! speaks for exec): every WebSocket message is binary, its first byte the
//! channel, the rest the data. 0 stdin (client → server), 1 stdout, 2
//! stderr, 3 error (one `metav1.Status` JSON, then the server closes), 4
//! resize (a JSON terminal size). v5 adds the message `[255, channel]`: the
//! sender closed that channel (kubectl's end of stdin). Pure: no I/O.

use serde_json::{Value, json};

/// The subprotocol this hub speaks for exec.
pub const PROTOCOL_V5: &str = "v5.channel.k8s.io";

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` closes `channel`.
pub const CLOSE: u8 = 255;

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Data on `channel` (stdin, or resize).
    Data { channel: u8, data: &'a [u8] },
    /// The client closed `channel`.
    Close { channel: u8 },
}

/// Why a client message is not a channel message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("an empty WebSocket message has no channel byte")]
    Empty,
    #[error("a close message ([255, channel]) must carry exactly one channel, got {0} bytes")]
    BadClose(usize),
}

/// Reads one binary message.
pub fn parse(message: &[u8]) -> Result<Incoming<'_>, FrameError> {
    match message {
        [] => Err(FrameError::Empty),
        [CLOSE, channel] => Ok(Incoming::Close { channel: *channel }),
        [CLOSE, rest @ ..] => Err(FrameError::BadClose(rest.len())),
        [channel, data @ ..] => Ok(Incoming::Data {
            channel: *channel,
            data,
        }),
    }
}

/// The message carrying `data` on `channel`.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(1 + data.len());
    m.push(channel);
    m.extend_from_slice(data);
    m
}

/// The error channel's `Status` for a process that exited with `code`:
/// `Success`, or `Failure` with reason `NonZeroExitCode` and the code in a
/// cause `ExitCode` (client-go reads it with `strconv.ParseUint(_, 10, 8)`,
/// so it is clamped to 0–255).
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    }
    let code = code.clamp(1, 255);
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit code {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The error channel's `Status` for an exec that could not run; kubectl
/// prints `message` and exits with 1.
pub fn failure_status(status: &bramble_api::Status) -> Value {
    let mut v = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    v["status"] = "Failure".into();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_by_their_first_byte() {
        assert_eq!(
            parse(&[STDIN, b'h', b'i']),
            Ok(Incoming::Data {
                channel: STDIN,
                data: b"hi"
            })
        );
        assert_eq!(
            parse(&[STDIN]),
            Ok(Incoming::Data {
                channel: STDIN,
                data: b""
            })
        );
        assert_eq!(
            parse(&[RESIZE, b'{', b'}']),
            Ok(Incoming::Data {
                channel: RESIZE,
                data: b"{}"
            })
        );
        assert_eq!(
            parse(&[CLOSE, STDIN]),
            Ok(Incoming::Close { channel: STDIN })
        );
        assert_eq!(parse(&[]), Err(FrameError::Empty));
        assert_eq!(parse(&[CLOSE]), Err(FrameError::BadClose(0)));
        assert_eq!(parse(&[CLOSE, 0, 1]), Err(FrameError::BadClose(2)));
    }

    #[test]
    fn frames_put_the_channel_first() {
        assert_eq!(frame(STDOUT, b"out\n"), b"\x01out\n");
        assert_eq!(frame(STDERR, b""), [STDERR]);
    }

    #[test]
    fn exit_codes_become_the_status_client_go_decodes() {
        assert_eq!(exit_status(0)["status"], "Success");
        let s = exit_status(3);
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(exit_status(137)["details"]["causes"][0]["message"], "137");
        assert_eq!(exit_status(300)["details"]["causes"][0]["message"], "255");
        assert_eq!(exit_status(-1)["details"]["causes"][0]["message"], "1");
    }

    #[test]
    fn a_failure_keeps_its_message_and_reason() {
        let s = failure_status(&bramble_api::Status::failure(
            404,
            "NotFound",
            "no such pod",
        ));
        assert_eq!(
            (
                s["status"].as_str(),
                s["reason"].as_str(),
                s["message"].as_str()
            ),
            (Some("Failure"), Some("NotFound"), Some("no such pod"))
        );
    }
}
