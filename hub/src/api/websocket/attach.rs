//! `kubectl attach` over WebSocket (`v5.channel.k8s.io`): the output the
//! container writes from now on, on channels 1 and 2, until it stops (then
//! a `Success` status on channel 3) or the client goes away. It is the
//! agent's log follow with no history (`tailLines=0`): a container's
//! stdout and stderr already go to its log, and the agent keeps them apart.
//!
//! Bramble containers have no stdin and no terminal (`spec.containers[]
//! .stdin`/`tty` are accepted and not acted on), so `kubectl attach -i` or
//! `-t` is refused with a 400 that says to use `kubectl exec -i` instead.

use bramble_api::protocol::rpc::{LogsCall, PodRef};

use super::super::error::{ApiError, ApiResult};
use super::exec::ExecQuery;

/// What `kubectl attach` asks in its query: `container`, and which of
/// `stdin`, `stdout`, `stderr`, `tty`.
pub fn parse(query: Option<&str>) -> ApiResult<ExecQuery> {
    let mut q = ExecQuery::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let yes = || v == "true" || v == "1";
        match &*k {
            "container" if !v.is_empty() => q.container = Some(v.into_owned()),
            "stdin" => q.stdin = yes(),
            "stdout" => q.stdout = yes(),
            "stderr" => q.stderr = yes(),
            "tty" => q.tty = yes(),
            _ => {}
        }
    }
    if q.stdin || q.tty {
        return Err(ApiError::bad_request(
            "stdin, tty: Bramble containers have no stdin or terminal to attach to: run kubectl attach without -i and -t, or kubectl exec -i POD -- COMMAND",
        ));
    }
    Ok(q)
}

/// The agent call that streams what `pod`'s container writes from now on.
pub fn call(pod: PodRef, q: &ExecQuery) -> LogsCall {
    LogsCall {
        pod,
        container: q.container.clone(),
        follow: true,
        tail_lines: Some(0),
        ..LogsCall::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectls_query_parses_and_stdin_or_a_terminal_is_refused() {
        let q = parse(Some(
            "container=main&stdout=true&stderr=true&stdin=false&tty=false",
        ))
        .unwrap();
        assert_eq!(q.container.as_deref(), Some("main"));
        assert!(q.stdout && q.stderr);
        let c = call(PodRef::default(), &q);
        assert!(c.follow);
        assert_eq!(c.tail_lines, Some(0));
        for bad in ["stdin=true&stdout=true", "tty=true&stdout=true"] {
            let e = parse(Some(bad)).unwrap_err();
            assert!(e.0.message.contains("kubectl exec -i"), "{}", e.0.message);
        }
    }
}
