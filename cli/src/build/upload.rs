//! Uploading the context tar to the hub's registry, as the distribution
//! spec describes: `HEAD /v2/<repo>/blobs/<digest>` first (the blob is
//! there already: nothing is sent), else `POST /v2/<repo>/blobs/uploads/`,
//! `PATCH` chunks with `Content-Range`, `PUT ?digest=`.
//!
//! A broken connection is resumed, not restarted: `GET` of the upload's
//! location tells how much the registry kept (`Range: 0-<last byte>`), and
//! the next chunk starts there. [`Uploader::resume`] does the same for an
//! upload another client began. Locations are only followed on the hub's
//! own origin: the token is never sent elsewhere.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bramble_images::Digest;

/// Bytes per `PATCH`.
pub const CHUNK: u64 = 8 * 1024 * 1024;
/// Attempts at one chunk before giving up.
const ATTEMPTS: u32 = 5;
/// `GET` of an upload the registry does not know (yet: it may still be
/// finishing the request that broke) is asked again this often.
const STATUS_ATTEMPTS: u32 = 6;

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The registry had the blob: nothing sent.
    AlreadyThere,
    /// Sent `sent` bytes; `resumed` times a broken upload was continued.
    Uploaded { sent: u64, resumed: u32 },
}

/// The blob to upload: a file, its digest and size.
#[derive(Debug, Clone, Copy)]
pub struct Blob<'a> {
    pub path: &'a Path,
    pub digest: &'a Digest,
    pub size: u64,
}

/// A client of one registry's blob uploads.
pub struct Uploader {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
    chunk: u64,
}

/// How an upload stands on the registry.
enum Status {
    /// It holds this many bytes.
    At(u64),
    /// It does not know the upload (finished, cancelled, or the hub restarted).
    Unknown,
}

impl Uploader {
    /// `base` is the hub's URL; `token` its bearer token; `tls` whom to trust.
    pub fn new(base: &str, token: Option<&str>, tls: ureq::tls::TlsConfig) -> Uploader {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("bramble/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Uploader {
            agent,
            base: base.trim_end_matches('/').to_string(),
            authorization: token.map(|t| format!("Bearer {t}")),
            chunk: CHUNK,
        }
    }

    /// Sends `bytes` per `PATCH` instead of [`CHUNK`].
    pub fn with_chunk(mut self, bytes: u64) -> Uploader {
        self.chunk = bytes.max(1);
        self
    }

    fn auth<B>(&self, rb: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(a) => rb.header("Authorization", a),
            None => rb,
        }
    }

    /// Whether `repo` has blob `d`.
    pub fn has_blob(&self, repo: &str, d: &Digest) -> anyhow::Result<bool> {
        let url = format!("{}/v2/{repo}/blobs/{d}", self.base);
        let resp = self
            .auth(self.agent.head(&url))
            .call()
            .with_context(|| format!("HEAD {url}"))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            code => bail!("HEAD {url}: HTTP {code}{}", hint(code)),
        }
    }

    /// Starts an upload in `repo`; its location (an absolute URL).
    pub fn start(&self, repo: &str) -> anyhow::Result<String> {
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let mut resp = self
            .auth(self.agent.post(&url))
            .send_empty()
            .with_context(|| format!("POST {url}"))?;
        match resp.status().as_u16() {
            202 => self.location(&resp, &url),
            code => bail!("POST {url}: HTTP {code}: {}", error_body(&mut resp)),
        }
    }

    /// Sends `blob` to `repo` unless it is there: the whole upload.
    pub fn upload(
        &self,
        repo: &str,
        blob: Blob<'_>,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<Outcome> {
        if self.has_blob(repo, blob.digest)? {
            return Ok(Outcome::AlreadyThere);
        }
        let location = self.start(repo)?;
        self.send_from(repo, &location, 0, blob, progress)
    }

    /// Continues the upload at `location` (begun by any client): asks the
    /// registry how far it got, then sends the rest and finishes it.
    pub fn resume(
        &self,
        repo: &str,
        location: &str,
        blob: Blob<'_>,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<Outcome> {
        let location = self.resolve(location)?;
        match self.status(&location)? {
            Status::At(offset) => {
                let mut out = self.send_from(repo, &location, offset, blob, progress)?;
                if let Outcome::Uploaded { resumed, .. } = &mut out {
                    *resumed += 1;
                }
                Ok(out)
            }
            Status::Unknown => self.upload(repo, blob, progress),
        }
    }

    /// Sends at most `max_chunks` chunks of `blob` from `offset` to the
    /// upload at `location` without finishing it; the upload's new location.
    /// (An interrupted upload, for [`Uploader::resume`] to continue.)
    pub fn send_chunks(
        &self,
        location: &str,
        offset: u64,
        blob: Blob<'_>,
        max_chunks: usize,
    ) -> anyhow::Result<String> {
        let mut location = self.resolve(location)?;
        let mut file = open(blob.path)?;
        let mut at = offset;
        for _ in 0..max_chunks {
            if at >= blob.size {
                break;
            }
            match self.patch(&location, &mut file, at, blob.size)? {
                Patched::To(next, loc) => {
                    at = next;
                    location = loc;
                }
                Patched::Refused(have) => at = have,
                Patched::Broken(e) => return Err(e),
            }
        }
        Ok(location)
    }

    /// Sends `blob` from `offset` on, resuming after broken connections,
    /// then finishes the upload.
    fn send_from(
        &self,
        repo: &str,
        location: &str,
        offset: u64,
        blob: Blob<'_>,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<Outcome> {
        let mut location = location.to_string();
        let mut file = open(blob.path)?;
        let mut at = offset;
        let mut sent = 0u64;
        let mut resumed = 0u32;
        let mut failures = 0u32;
        progress(at);
        while at < blob.size {
            match self.patch(&location, &mut file, at, blob.size)? {
                Patched::To(next, loc) => {
                    sent += next - at;
                    at = next;
                    location = loc;
                    failures = 0;
                    progress(at);
                }
                Patched::Refused(have) => at = have,
                Patched::Broken(e) => {
                    failures += 1;
                    if failures >= ATTEMPTS {
                        return Err(e.context(format!(
                            "uploading the build context: gave up after {ATTEMPTS} broken attempts"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(200 << failures));
                    resumed += 1;
                    match self.status(&location)? {
                        Status::At(have) => at = have,
                        Status::Unknown => {
                            // The registry forgot the upload (a restart):
                            // start over.
                            location = self.start(repo)?;
                            at = 0;
                        }
                    }
                    progress(at);
                }
            }
        }
        self.finish(&location, blob.digest)?;
        Ok(Outcome::Uploaded { sent, resumed })
    }

    /// One `PATCH` from `at`.
    fn patch(
        &self,
        location: &str,
        file: &mut File,
        at: u64,
        size: u64,
    ) -> anyhow::Result<Patched> {
        let len = self.chunk.min(size - at);
        file.seek(SeekFrom::Start(at))
            .context("reading the context tar")?;
        let mut body = Exact {
            inner: file.take(len),
        };
        let sent = self
            .auth(self.agent.patch(location))
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{at}-{}", at + len - 1))
            .header("Content-Length", len.to_string())
            .send(ureq::SendBody::from_reader(&mut body));
        let mut resp = match sent {
            Ok(r) => r,
            // The context tar itself could not be read: no retry helps.
            Err(ureq::Error::Io(e)) if e.get_ref().is_some_and(|i| i.is::<Shrank>()) => {
                return Err(e).context("reading the context tar");
            }
            Err(e) => {
                return Ok(Patched::Broken(
                    anyhow::Error::new(e).context(format!("PATCH {location}")),
                ));
            }
        };
        match resp.status().as_u16() {
            202 => {
                let next = range_end(&resp).unwrap_or(at + len);
                Ok(Patched::To(next, self.location(&resp, location)?))
            }
            // The upload stands elsewhere (a chunk got through before the
            // connection broke): continue from where it stands.
            416 => match range_end(&resp) {
                Some(have) if have != at => Ok(Patched::Refused(have)),
                // `0-0` names both 0 and 1 byte; 0 was refused.
                Some(0) if at == 0 => Ok(Patched::Refused(1)),
                _ => bail!("PATCH {location}: HTTP 416 without a usable Range"),
            },
            code @ 500.. => Ok(Patched::Broken(anyhow::anyhow!(
                "PATCH {location}: HTTP {code}: {}",
                error_body(&mut resp)
            ))),
            code => bail!("PATCH {location}: HTTP {code}: {}", error_body(&mut resp)),
        }
    }

    fn finish(&self, location: &str, d: &Digest) -> anyhow::Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={d}");
        let mut resp = self
            .auth(self.agent.put(&url))
            .send_empty()
            .with_context(|| format!("PUT {url}"))?;
        match resp.status().as_u16() {
            201 => Ok(()),
            code => bail!(
                "finishing the upload of {d}: HTTP {code}: {}",
                error_body(&mut resp)
            ),
        }
    }

    /// How far the upload at `location` got.
    fn status(&self, location: &str) -> anyhow::Result<Status> {
        for attempt in 0..STATUS_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            let mut resp = self
                .auth(self.agent.get(location))
                .call()
                .with_context(|| format!("GET {location}"))?;
            match resp.status().as_u16() {
                204 => return Ok(Status::At(range_end(&resp).unwrap_or(0))),
                404 => continue,
                code => bail!("GET {location}: HTTP {code}: {}", error_body(&mut resp)),
            }
        }
        Ok(Status::Unknown)
    }

    /// The `Location` of `resp` as an absolute URL on the hub's origin.
    fn location(
        &self,
        resp: &ureq::http::Response<ureq::Body>,
        url: &str,
    ) -> anyhow::Result<String> {
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .with_context(|| format!("{url}: the registry answered without a Location"))?;
        self.resolve(loc)
    }

    fn resolve(&self, loc: &str) -> anyhow::Result<String> {
        if loc.starts_with('/') {
            Ok(format!("{}{loc}", self.base))
        } else if loc.starts_with(&format!("{}/", self.base)) {
            Ok(loc.to_string())
        } else {
            bail!(
                "the registry sent the upload to {loc:?}, outside the hub {}: not following it",
                self.base
            )
        }
    }
}

enum Patched {
    /// Accepted: the upload holds this many bytes, at this location.
    To(u64, String),
    /// Refused: the upload holds this many bytes.
    Refused(u64),
    /// The connection broke (or the registry failed): ask how far it got.
    Broken(anyhow::Error),
}

/// The number of bytes a `Range: 0-<last>` header says the upload holds
/// (`0-0` is read as none).
fn range_end(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("range")?.to_str().ok()?;
    parse_range(v)
}

fn parse_range(v: &str) -> Option<u64> {
    let (start, end) = v.trim().trim_start_matches("bytes=").split_once('-')?;
    let end: u64 = end.parse().ok()?;
    match (start.parse::<u64>().ok()?, end) {
        (0, 0) => Some(0),
        (0, e) => Some(e + 1),
        _ => None,
    }
}

fn open(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("opening the context tar {}", path.display()))
}

fn error_body(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v["errors"].get(0)?;
            Some(format!(
                "{}: {}",
                e["code"].as_str()?,
                e["message"].as_str().unwrap_or("")
            ))
        })
        .unwrap_or(body)
}

fn hint(code: u16) -> &'static str {
    match code {
        401 => " (the hub refused the token: check BRAMBLE_TOKEN or --token)",
        _ => "",
    }
}

/// A chunk reader that fails with [`Shrank`] if the file ends early.
struct Exact<R> {
    inner: std::io::Take<R>,
}

/// The context tar ended before its size: something truncated it.
#[derive(Debug, thiserror::Error)]
#[error("the context tar ended before its size: it was changed while being uploaded")]
struct Shrank;

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.limit() == 0 {
            return Ok(0);
        }
        match self.inner.read(buf)? {
            0 => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, Shrank)),
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_count_bytes_held() {
        assert_eq!(parse_range("0-0"), Some(0));
        assert_eq!(parse_range("0-9"), Some(10));
        assert_eq!(parse_range("bytes=0-1023"), Some(1024));
        assert_eq!(parse_range("5-9"), None);
        assert_eq!(parse_range("nonsense"), None);
    }

    #[test]
    fn locations_stay_on_the_hub() {
        let u = Uploader::new(
            "https://127.0.0.1:7480/",
            Some("t"),
            bramble_trust::tls::ureq_config(&[]),
        );
        assert_eq!(
            u.resolve("/v2/web/blobs/uploads/1").unwrap(),
            "https://127.0.0.1:7480/v2/web/blobs/uploads/1"
        );
        assert_eq!(
            u.resolve("https://127.0.0.1:7480/v2/x").unwrap(),
            "https://127.0.0.1:7480/v2/x"
        );
        assert!(u.resolve("https://evil.example/v2/x").is_err());
        assert!(u.resolve("https://127.0.0.1:74800/v2/x").is_err());
    }
}
