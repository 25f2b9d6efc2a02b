//! HTTP client for the hub's Kubernetes-style REST API.
//!
//! Every command talks to the hub through [`Client`]: JSON in, JSON out, errors
//! as [`ClientError`] carrying the hub's `Status` (or why the hub could not be
//! reached). Watches are newline-delimited JSON streams read by [`WatchStream`].
//! Nothing here knows about tables or command-line flags.
//!
//! Length: over 600 lines because its unit tests included; the code is under
//! 570 lines.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use bramble_api::Status;
use serde_json::Value;
use ureq::http::Response;
use ureq::{Agent, Body, RequestBuilder};

use crate::config::{Ca, Token};

/// Largest response body the client reads (lists of many objects are big).
const MAX_BODY: u64 = 256 * 1024 * 1024;
/// Patience for one ordinary request; watches have no overall limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Content type of a JSON merge patch (RFC 7386).
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// Every write asks for strict field validation: a field the hub does not
/// know is an error naming it, never dropped (the hub's default, as
/// Kubernetes', is to drop it with a warning).
const STRICT: &[(&str, &str)] = &[("fieldValidation", "Strict")];

/// Talks to one hub with one token.
#[derive(Clone)]
pub struct Client {
    agent: Agent,
    base: String,
    token: Option<Token>,
    unauthorized_hint: String,
    /// Where the trusted CA came from (`None`: no CA found), for TLS errors.
    ca_source: Option<String>,
    tls: ureq::tls::TlsConfig,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// The hub answered with a non-2xx status.
    Api {
        status: Box<Status>,
        /// Extra advice (how to supply a token on 401).
        hint: Option<String>,
    },
    /// No connection could be made.
    Unreachable { hub: String, reason: String },
    /// Connected, but the exchange broke or the answer was not what the API promises.
    Protocol { hub: String, reason: String },
    /// Connected, but TLS failed: the hub could not be verified (or does
    /// not speak TLS).
    Untrusted { hub: String, reason: String },
}

impl ClientError {
    /// The hub's `Status`, for errors the hub reported.
    pub fn status(&self) -> Option<&Status> {
        match self {
            ClientError::Api { status, .. } => Some(status),
            _ => None,
        }
    }

    /// HTTP status code of an API error.
    pub fn code(&self) -> Option<u16> {
        self.status().map(|s| s.code)
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    /// The object changed since it was read (`409 Conflict` on a write
    /// carrying a resourceVersion).
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// Errors after which talking to the hub again is pointless (no connection,
    /// bad credentials): commands stop instead of repeating them per object.
    pub fn is_fatal(&self) -> bool {
        match self {
            ClientError::Api { status, .. } => status.code == 401,
            _ => true,
        }
    }

    /// The message without the `Error from server (Reason): ` prefix.
    pub fn message(&self) -> String {
        match self {
            ClientError::Api { status, hint } => match hint {
                Some(h) => format!("{}: {h}", status.message),
                None => status.message.clone(),
            },
            other => other.to_string(),
        }
    }

    /// The `Reason` of an API error, e.g. `NotFound`, `Invalid`.
    pub fn reason(&self) -> Option<&str> {
        self.status().map(|s| s.reason.as_str())
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Api { status, .. } => {
                write!(
                    f,
                    "Error from server ({}): {}",
                    reason_or_code(status),
                    self.message()
                )
            }
            ClientError::Untrusted { hub, reason } => {
                write!(f, "cannot trust the hub at {hub}: {reason}")
            }
            ClientError::Unreachable { hub, reason } => write!(
                f,
                "cannot reach the hub at {hub}: {reason} — is bramble-hub running? (set --hub or BRAMBLE_HUB)"
            ),
            ClientError::Protocol { hub, reason } => {
                write!(f, "bad exchange with the hub at {hub}: {reason}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

fn reason_or_code(s: &Status) -> String {
    if s.reason.is_empty() {
        s.code.to_string()
    } else {
        s.reason.clone()
    }
}

/// One event of a watch stream.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub kind: String,
    pub object: Value,
}

/// A running watch: iterate to receive events until the hub closes the stream.
pub struct WatchStream {
    lines: std::io::Lines<BufReader<ureq::BodyReader<'static>>>,
    hub: String,
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("hub", &self.hub)
            .finish()
    }
}

impl Iterator for WatchStream {
    type Item = Result<WatchEvent, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = match self.lines.next()? {
                Ok(l) => l,
                Err(e) => {
                    return Some(Err(ClientError::Protocol {
                        hub: self.hub.clone(),
                        reason: format!("watch stream broke: {e}"),
                    }));
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(parse_event(&line).map_err(|reason| ClientError::Protocol {
                hub: self.hub.clone(),
                reason,
            }));
        }
    }
}

/// Parses one line of a watch stream.
pub fn parse_event(line: &str) -> Result<WatchEvent, String> {
    let v: Value =
        serde_json::from_str(line).map_err(|e| format!("watch event is not JSON ({e}): {line}"))?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("watch event without a type: {line}"))?
        .to_string();
    let object = v.get("object").cloned().unwrap_or(Value::Null);
    Ok(WatchEvent { kind, object })
}

enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Client {
    /// A client for the hub at `base` (e.g. `http://127.0.0.1:7480`).
    /// `unauthorized_hint` is appended to 401 errors.
    /// A client of `base` trusting only `ca` for `https://` (no CA: every
    /// TLS handshake fails, with a hint where to get one).
    pub fn new(
        base: &str,
        token: Option<Token>,
        unauthorized_hint: String,
        ca: Option<&Ca>,
    ) -> Result<Self, bramble_trust::TrustError> {
        let roots = match ca {
            Some(ca) => bramble_trust::tls::pem_certs(&ca.pem)?,
            None => Vec::new(),
        };
        let tls = bramble_trust::tls::ureq_config(&roots);
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("bramble/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.clone())
            .build();
        Ok(Client {
            agent: config.into(),
            base: base.trim_end_matches('/').to_string(),
            token,
            unauthorized_hint,
            ca_source: ca.map(|c| c.source.clone()),
            tls,
        })
    }

    /// The TLS settings of this client (for the registry client).
    pub fn tls(&self) -> &ureq::tls::TlsConfig {
        &self.tls
    }

    /// The hub's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET path?query` → JSON.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        self.json(Method::Get, path, query, None)
    }

    /// `POST` to a collection: creates an object and returns it as stored.
    pub fn create(&self, collection: &str, object: &Value) -> Result<Value, ClientError> {
        self.json(
            Method::Post,
            collection,
            STRICT,
            Some(("application/json", object)),
        )
    }

    /// `POST` with `dryRun=All`: the hub admits (or refuses) the object as
    /// it would a create, and stores nothing.
    pub fn dry_run_create(&self, collection: &str, object: &Value) -> Result<Value, ClientError> {
        let mut q = STRICT.to_vec();
        q.push(("dryRun", "All"));
        self.json(
            Method::Post,
            collection,
            &q,
            Some(("application/json", object)),
        )
    }

    /// `PUT` an object: replaces it and returns it as stored.
    pub fn replace(&self, path: &str, object: &Value) -> Result<Value, ClientError> {
        self.json(
            Method::Put,
            path,
            STRICT,
            Some(("application/json", object)),
        )
    }

    /// `PATCH` an object with a JSON merge patch.
    pub fn merge_patch(&self, path: &str, patch: &Value) -> Result<Value, ClientError> {
        self.json(Method::Patch, path, STRICT, Some((MERGE_PATCH, patch)))
    }

    /// `DELETE` an object; returns what the hub returned (the deleted object).
    pub fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.json(Method::Delete, path, &[], None)
    }

    /// `GET path` → body as text (for `/version`, logs and other plain endpoints).
    pub fn get_text(&self, path: &str, query: &[(&str, &str)]) -> Result<String, ClientError> {
        let mut resp = self.send(Method::Get, path, query, None, Some(REQUEST_TIMEOUT))?;
        let status = resp.status().as_u16();
        let body = self.read_body(&mut resp)?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(self.api_error(status, &body))
        }
    }

    /// `GET collection?watch=true&...`: a stream of events. Pass
    /// `resourceVersion` in `query` to start after a list.
    pub fn watch(
        &self,
        collection: &str,
        query: &[(&str, &str)],
    ) -> Result<WatchStream, ClientError> {
        let mut q = vec![("watch", "true")];
        q.extend_from_slice(query);
        let mut resp = self.send(Method::Get, collection, &q, None, None)?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = self.read_body(&mut resp)?;
            return Err(self.api_error(status, &body));
        }
        let reader = resp.into_body().into_with_config().limit(u64::MAX).reader();
        Ok(WatchStream {
            lines: BufReader::new(reader).lines(),
            hub: self.base.clone(),
        })
    }

    /// `GET` or `POST` (with a JSON body) whose answer is read as it
    /// arrives (logs, exec): the body as a reader, or the hub's error.
    pub fn stream(
        &self,
        path: &str,
        query: &[(&str, &str)],
        post: Option<&Value>,
    ) -> Result<Box<dyn std::io::Read + Send>, ClientError> {
        let mut resp = match post {
            Some(v) => self.send(
                Method::Post,
                path,
                query,
                Some((
                    "application/json",
                    serde_json::to_vec(v).unwrap_or_default(),
                )),
                None,
            )?,
            None => self.send(Method::Get, path, query, None, None)?,
        };
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = self.read_body(&mut resp)?;
            return Err(self.api_error(status, &body));
        }
        Ok(Box::new(
            resp.into_body().into_with_config().limit(u64::MAX).reader(),
        ))
    }

    fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(&str, &Value)>,
    ) -> Result<Value, ClientError> {
        let body = body.map(|(ct, v)| (ct, serde_json::to_vec(v).unwrap_or_default()));
        let mut resp = self.send(method, path, query, body, Some(REQUEST_TIMEOUT))?;
        let status = resp.status().as_u16();
        let text = self.read_body(&mut resp)?;
        if !(200..300).contains(&status) {
            return Err(self.api_error(status, &text));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Protocol {
            hub: self.base.clone(),
            reason: format!("{path} answered with something that is not JSON ({e})"),
        })
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
        timeout: Option<Duration>,
    ) -> Result<Response<Body>, ClientError> {
        let url = format!("{}{}", self.base, path);
        let result = match method {
            Method::Get => self.prepare(self.agent.get(&url), query, timeout).call(),
            Method::Delete => self.prepare(self.agent.delete(&url), query, timeout).call(),
            Method::Post | Method::Put | Method::Patch => {
                let rb = match method {
                    Method::Post => self.agent.post(&url),
                    Method::Put => self.agent.put(&url),
                    _ => self.agent.patch(&url),
                };
                let (ct, bytes) = body.unwrap_or(("application/json", Vec::new()));
                self.prepare(rb, query, timeout)
                    .content_type(ct)
                    .send(&bytes[..])
            }
        };
        let resp = result.map_err(|e| self.transport_error(e))?;
        crate::warnings::print(&resp);
        Ok(resp)
    }

    fn prepare<B>(
        &self,
        mut rb: RequestBuilder<B>,
        query: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> RequestBuilder<B> {
        for (k, v) in query {
            rb = rb.query(k, v);
        }
        rb = rb.header("Accept", "application/json");
        if let Some(t) = &self.token {
            rb = rb.header("Authorization", format!("Bearer {}", t.value));
        }
        rb.config().timeout_global(timeout).build()
    }

    fn read_body(&self, resp: &mut Response<Body>) -> Result<String, ClientError> {
        resp.body_mut()
            .with_config()
            .limit(MAX_BODY)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.transport_error(e))
    }

    /// Turns a non-2xx answer into an error, using the `Status` body when there is one.
    fn api_error(&self, code: u16, body: &str) -> ClientError {
        let registry = serde_json::from_str::<Value>(body).ok().and_then(|v| {
            let e = v["errors"].get(0)?;
            Some((
                e["code"].as_str()?.to_string(),
                e["message"].as_str()?.to_string(),
            ))
        });
        let mut status = match serde_json::from_str::<Status>(body) {
            Ok(s) if s.kind == "Status" || !s.message.is_empty() => s,
            // The registry's `{"errors":[{code, message}]}`.
            _ if registry.is_some() => {
                let (reason, message) = registry.unwrap_or_default();
                Status::failure(code, &reason, message)
            }
            _ => {
                let text = body.trim();
                let message = if text.is_empty() {
                    format!("the hub answered HTTP {code} with no details")
                } else {
                    text.chars().take(500).collect()
                };
                Status::failure(code, default_reason(code), message)
            }
        };
        if status.code == 0 {
            status.code = code;
        }
        if status.reason.is_empty() {
            status.reason = default_reason(code).to_string();
        }
        let hint = (code == 401).then(|| self.unauthorized_hint.clone());
        ClientError::Api {
            status: Box::new(status),
            hint,
        }
    }

    /// Why TLS with the hub failed, with the fix.
    fn tls_error(&self, e: &rustls::Error) -> String {
        match &self.ca_source {
            Some(source) => bramble_trust::tls::explain(e, source),
            None => format!(
                "{}; no CA to check the hub's certificate with: pass --certificate-authority \
                 FILE (the hub's DATA_DIR/ca.crt), or use the config `bramble config` prints on \
                 the hub",
                bramble_trust::tls::explain(e, "nowhere")
            ),
        }
    }

    fn transport_error(&self, e: ureq::Error) -> ClientError {
        let hub = self.base.clone();
        let tls = match &e {
            ureq::Error::Rustls(t) => Some(t),
            ureq::Error::Io(io) => bramble_trust::tls::failure(io),
            _ => None,
        };
        if let Some(t) = tls {
            return ClientError::Untrusted {
                reason: self.tls_error(t),
                hub,
            };
        }
        match e {
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => ClientError::Unreachable {
                    hub,
                    reason: "connection refused".into(),
                },
                std::io::ErrorKind::TimedOut => ClientError::Unreachable {
                    hub,
                    reason: "connection timed out".into(),
                },
                std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                    ClientError::Unreachable {
                        hub,
                        reason: "no route to host".into(),
                    }
                }
                _ => ClientError::Protocol {
                    hub,
                    reason: io.to_string(),
                },
            },
            ureq::Error::HostNotFound => ClientError::Unreachable {
                hub,
                reason: "host not found".into(),
            },
            ureq::Error::ConnectionFailed => ClientError::Unreachable {
                hub,
                reason: "connection failed".into(),
            },
            ureq::Error::Timeout(t) => ClientError::Protocol {
                hub,
                reason: format!("no answer in time ({t})"),
            },
            other => ClientError::Protocol {
                hub,
                reason: other.to_string(),
            },
        }
    }
}

/// The Kubernetes reason for an HTTP code, when the hub sent none.
fn default_reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Serves one canned HTTP response on a local port and returns what it received.
    fn one_shot(response: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            // Read the request head (and any small body that came with it).
            loop {
                let n = sock.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                if n == 0 || got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            sock.write_all(response.as_bytes()).unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn sends_token_and_decodes_status_errors() {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"deployments.apps \"web\" not found","reason":"NotFound","code":404}"#;
        let resp: &'static str = Box::leak(
            format!(
                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let (url, h) = one_shot(resp);
        let token = Token {
            value: "s3cret".into(),
            source: crate::config::TokenSource::Flag,
        };
        let c = Client::new(&url, Some(token), "hint".into(), None).unwrap();
        let e = c
            .get(
                "/apis/apps/v1/namespaces/default/deployments/web",
                &[("labelSelector", "app=web,tier in (a,b)")],
            )
            .unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): deployments.apps \"web\" not found"
        );
        let req = h.join().unwrap();
        assert!(
            req.contains("authorization: Bearer s3cret")
                || req.contains("Authorization: Bearer s3cret"),
            "{req}"
        );
        assert!(req.contains("labelSelector=app%3Dweb%2Ctier"), "{req}");
    }

    #[test]
    fn unauthorized_carries_the_hint_and_plain_bodies_become_status() {
        let (url, h) = one_shot(
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope",
        );
        let c = Client::new(&url, None, "pass --token".into(), None).unwrap();
        let e = c.get("/api/v1/pods", &[]).unwrap_err();
        h.join().unwrap();
        assert!(e.is_fatal());
        assert_eq!(
            e.to_string(),
            "Error from server (Unauthorized): nope: pass --token"
        );
    }

    #[test]
    fn connection_refused_names_the_hub() {
        // Bind then drop to get a port that is (almost certainly) closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let e = Client::new(&url, None, String::new(), None)
            .unwrap()
            .get("/api/v1/pods", &[])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot reach the hub at {url}: connection refused — is bramble-hub running? (set --hub or BRAMBLE_HUB)"
            )
        );
    }

    #[test]
    fn parses_watch_events() {
        let e = parse_event(r#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"#).unwrap();
        assert_eq!(e.kind, "ADDED");
        assert_eq!(e.object["metadata"]["name"], "a");
        assert!(parse_event("{}").is_err());
        assert!(parse_event("nope").is_err());
    }

    #[test]
    fn streams_watch_lines() {
        let (url, h) = one_shot(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n\
             {\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n\n\
             {\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n",
        );
        let c = Client::new(&url, None, String::new(), None).unwrap();
        let events: Vec<_> = c
            .watch(
                "/api/v1/namespaces/default/pods",
                &[("resourceVersion", "7")],
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let req = h.join().unwrap();
        assert!(
            req.starts_with("GET /api/v1/namespaces/default/pods?watch=true&resourceVersion=7 "),
            "{req}"
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].kind, "DELETED");
    }
}
