//! A client of the hub's registry (`/v2/`): pull an image for one platform into
//! a node's blob store, and push an image from a blob store.
//!
//! Pulls go by digest once the manifest is resolved, skip every blob the store
//! already has (layers are never downloaded twice), fetch layers in parallel,
//! resume a broken transfer with a `Range` request, and verify every blob before
//! it becomes visible (the [`BlobStore`] guarantees that).

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use crate::blobs::{BlobError, BlobStore};
use crate::digest::{Digest, HashingWriter};
use crate::oci::{self, BlobKind, ManifestOrIndex, OciError};
use crate::platform::{self, Platform, PlatformError};

/// Registry client errors: each names the URL or blob concerned.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{method} {url}: HTTP {code}: {message}")]
    Http {
        method: &'static str,
        url: String,
        code: u16,
        message: String,
    },
    #[error("{method} {url}: {source}")]
    Transport {
        method: &'static str,
        url: String,
        source: Box<ureq::Error>,
    },
    #[error("fetching {digest}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        digest: Digest,
        attempts: u32,
        last: String,
    },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

/// Progress of one blob transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub digest: Digest,
    pub done: u64,
    pub total: u64,
}

/// Pull settings.
pub struct PullOptions<'a> {
    /// Layers fetched at once.
    pub parallel: usize,
    /// Attempts per blob (a broken connection resumes where it stopped).
    pub attempts: u32,
    /// Called as bytes arrive; must be cheap.
    pub progress: Option<&'a (dyn Fn(&Progress) + Sync)>,
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        PullOptions {
            parallel: 3,
            attempts: 5,
            progress: None,
        }
    }
}

/// What a pull produced: the platform's manifest and config, all in the store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The index the reference resolved to, for multi-platform images.
    pub index_digest: Option<Digest>,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// Bytes downloaded (0 when everything was cached).
    pub downloaded: u64,
}

impl PulledImage {
    /// Layer descriptors, bottom first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }
}

/// A client bound to one registry and its credentials.
pub struct RegistryClient {
    base: String,
    /// The `Authorization` header value, if any.
    authorization: Option<String>,
    agent: ureq::Agent,
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

impl RegistryClient {
    /// `base` is `https://host:port` (see [`RegistryClient::with_tls`]) or
    /// `http://host:port`; `token` the hub token (sent as a bearer token).
    pub fn new(base: &str, token: Option<&str>) -> RegistryClient {
        RegistryClient {
            base: base.trim_end_matches('/').to_string(),
            authorization: token.map(|t| format!("Bearer {t}")),
            agent: Self::agent(None),
        }
    }

    fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
        // No CA given: trust none (ureq has no roots of its own here).
        let tls = tls.unwrap_or_else(|| bramble_trust::tls::ureq_config(&[]));
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .tls_config(tls)
            .build()
            .into()
    }

    /// The TLS settings for an `https://` registry: which CA to trust
    /// (`bramble_trust::tls::ureq_config` of the cluster CA). Without them
    /// an `https://` request fails its handshake: there are no default
    /// roots.
    pub fn with_tls(mut self, tls: ureq::tls::TlsConfig) -> RegistryClient {
        self.agent = Self::agent(Some(tls));
        self
    }

    /// Like [`RegistryClient::new`] with basic auth (an agent pulling with
    /// its node key login).
    pub fn with_basic_auth(base: &str, user: &str, password: &str) -> RegistryClient {
        use base64::Engine as _;
        let mut c = RegistryClient::new(base, None);
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        c.authorization = Some(format!("Basic {pair}"));
        c
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth<B>(&self, rb: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(a) => rb.header("Authorization", a),
            None => rb,
        }
    }

    fn fail(
        method: &'static str,
        url: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> ClientError {
        let code = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v["errors"].get(0)?;
                Some(format!(
                    "{}: {}",
                    e["code"].as_str()?,
                    e["message"].as_str().unwrap_or("")
                ))
            })
            .unwrap_or(body);
        ClientError::Http {
            method,
            url: url.to_string(),
            code,
            message,
        }
    }

    fn transport(method: &'static str, url: &str, e: ureq::Error) -> ClientError {
        ClientError::Transport {
            method,
            url: url.to_string(),
            source: Box::new(e),
        }
    }

    /// Fetches a manifest or index: its digest, media type and bytes.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Digest, String, Vec<u8>), ClientError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .auth(self.agent.get(&url))
            .header("Accept", ACCEPT)
            .call()
            .map_err(|e| Self::transport("GET", &url, e))?;
        if resp.status().as_u16() != 200 {
            return Err(Self::fail("GET", &url, resp));
        }
        let media_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut resp = resp;
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| Self::transport("GET", &url, e))?;
        Ok((Digest::of(&bytes), media_type, bytes))
    }

    /// Downloads blob `d` of `repo` into `store` unless it is there already.
    /// A broken connection resumes from the bytes received (`Range`); the blob
    /// is verified before it becomes visible. Concurrent fetches of one blob
    /// (threads or processes) take turns on an `flock` and the later ones
    /// find it stored. Returns the bytes downloaded.
    pub fn fetch_blob(
        &self,
        repo: &str,
        d: &Digest,
        size: Option<u64>,
        store: &BlobStore,
        opts: &PullOptions<'_>,
    ) -> Result<u64, ClientError> {
        if store.has(d) {
            return Ok(0);
        }
        // One download of a blob at a time: fetches of the same blob (images
        // sharing a layer, pulled at once) would write the same partial file
        // and install each other's bytes. The later ones find it there.
        let lock_path = store.tmp_dir().join(format!("partial-{}.lock", d.hex()));
        let lock_err = |source| ClientError::Io {
            what: format!("locking {}", lock_path.display()),
            source,
        };
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_err)?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| lock_err(e.into()))?;
        if store.has(d) {
            return Ok(0);
        }
        let partial = store.tmp_dir().join(format!("partial-{}", d.hex()));
        let url = self.url(&format!("/v2/{repo}/blobs/{d}"));
        let mut downloaded = 0u64;
        let mut last = String::new();
        // Hash while receiving; a prefix left by an earlier try is hashed once.
        let mut hasher = HashingWriter::new(io::sink());
        if let Ok(f) = std::fs::File::open(&partial) {
            io::copy(&mut io::BufReader::new(f), &mut hasher).map_err(|source| {
                ClientError::Io {
                    what: format!("reading {}", partial.display()),
                    source,
                }
            })?;
        }
        for attempt in 0..opts.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100 * (1 << attempt.min(5))));
            }
            let have = hasher.len();
            if size.is_some_and(|s| have >= s) {
                break;
            }
            let mut rb = self.auth(self.agent.get(&url));
            if have > 0 {
                rb = rb.header("Range", format!("bytes={have}-"));
            }
            let mut resp = match rb.call() {
                Ok(r) => r,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let (append, start) = match resp.status().as_u16() {
                206 => (true, have),
                200 => {
                    hasher = HashingWriter::new(io::sink());
                    (false, 0)
                }
                416 if have > 0 => {
                    // What we have may already be the whole blob.
                    break;
                }
                _ => return Err(Self::fail("GET", &url, resp)),
            };
            let total = size.unwrap_or_else(|| {
                resp.headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|n| n + start)
                    .unwrap_or(0)
            });
            let io_err = |source| ClientError::Io {
                what: format!("writing {}", partial.display()),
                source,
            };
            let mut file = OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(&partial)
                .map_err(io_err)?;
            let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
            let mut buf = vec![0u8; 256 * 1024];
            let mut done = start;
            let result = loop {
                match reader.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        file.write_all(&buf[..n]).map_err(io_err)?;
                        hasher.write_all(&buf[..n]).map_err(io_err)?;
                        done += n as u64;
                        downloaded += n as u64;
                        if let Some(p) = opts.progress {
                            p(&Progress {
                                digest: d.clone(),
                                done,
                                total,
                            });
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            match result {
                Ok(()) if size.is_none_or(|s| done >= s) => break,
                Ok(()) => last = format!("connection closed after {done} of {total} bytes"),
                Err(e) => last = e.to_string(),
            }
            tracing::debug!(digest = %d, attempt, done, error = %last, "blob transfer broken; resuming");
        }
        let (actual, have) = hasher.finish();
        if size.is_some_and(|s| have < s) {
            let _ = std::fs::remove_file(&partial);
            return Err(ClientError::Exhausted {
                digest: d.clone(),
                attempts: opts.attempts,
                last,
            });
        }
        if &actual != d {
            let _ = std::fs::remove_file(&partial);
            return Err(BlobError::DigestMismatch {
                expected: d.clone(),
                actual,
                len: have,
            }
            .into());
        }
        store.install_hashed(&partial, d)?;
        Ok(downloaded)
    }

    /// Pulls `repo:reference` for `platform` into `store`: resolves an index to
    /// the platform's manifest, then fetches config and layers it lacks.
    pub fn pull(
        &self,
        repo: &str,
        reference: &str,
        want: &Platform,
        store: &BlobStore,
        opts: &PullOptions<'_>,
    ) -> Result<PulledImage, ClientError> {
        let (top, media_type, bytes) = self.get_manifest(repo, reference)?;
        let name = format!("{repo}:{reference}");
        let (doc, _) = oci::parse_manifest(&bytes, Some(&media_type), &name)?;
        store.put_bytes(&bytes, Some(&top))?;
        let (index_digest, manifest_digest, manifest) = match doc {
            ManifestOrIndex::Manifest(m) => (None, top, m),
            ManifestOrIndex::Index(index) => {
                let desc = platform::select(&index, want).map_err(|e| e.for_image(&name))?;
                let child = oci::descriptor_digest(&desc, &name)?;
                let (d, mt, bytes) = self.get_manifest(repo, &child.to_string())?;
                if d != child {
                    return Err(BlobError::DigestMismatch {
                        expected: child,
                        actual: d,
                        len: bytes.len() as u64,
                    }
                    .into());
                }
                store.put_bytes(&bytes, Some(&d))?;
                match oci::parse_manifest(&bytes, Some(&mt), &name)?.0 {
                    ManifestOrIndex::Manifest(m) => (Some(top), d, m),
                    ManifestOrIndex::Index(_) => {
                        return Err(ClientError::Http {
                            method: "GET",
                            url: self.url(&format!("/v2/{repo}/manifests/{d}")),
                            code: 200,
                            message: "nested indexes are not supported for pulls".into(),
                        });
                    }
                }
            }
        };
        let config_digest = oci::descriptor_digest(manifest.config(), &name)?;
        let mut downloaded = self.fetch_blob(
            repo,
            &config_digest,
            Some(manifest.config().size()),
            store,
            opts,
        )?;
        let config: ImageConfiguration = serde_json::from_slice(&store.read(&config_digest)?)
            .map_err(|e| OciError::Json {
                what: format!("config {config_digest} of {name}"),
                source: e,
            })?;
        platform::check_config(&config, want).map_err(|e| e.for_image(&name))?;
        // Layers in parallel: a shared queue, `parallel` workers.
        let queue: Mutex<Vec<(Digest, u64)>> = Mutex::new(
            manifest
                .layers()
                .iter()
                .map(|l| Ok((oci::descriptor_digest(l, &name)?, l.size())))
                .collect::<Result<Vec<_>, OciError>>()?,
        );
        let results: Mutex<Vec<Result<u64, ClientError>>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..opts.parallel.max(1) {
                s.spawn(|| {
                    loop {
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                        let Some((d, size)) = next else { break };
                        let r = self.fetch_blob(repo, &d, Some(size), store, opts);
                        results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    }
                });
            }
        });
        for r in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            downloaded += r?;
        }
        Ok(PulledImage {
            index_digest,
            manifest_digest,
            manifest,
            config_digest,
            config,
            downloaded,
        })
    }

    /// Whether the registry has blob `d`.
    pub fn has_blob(&self, repo: &str, d: &Digest) -> Result<bool, ClientError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{d}"));
        let resp = self
            .auth(self.agent.head(&url))
            .call()
            .map_err(|e| Self::transport("HEAD", &url, e))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(Self::fail("HEAD", &url, resp)),
        }
    }

    /// Uploads blob `d` from `store` in one request, streamed from disk.
    pub fn push_blob(
        &self,
        repo: &str,
        store: &BlobStore,
        d: &Digest,
        progress: &dyn Fn(u64),
    ) -> Result<(), ClientError> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}"));
        let file = store.open_blob(d)?;
        let mut reader = Counting {
            inner: file,
            done: 0,
            progress,
        };
        let resp = self
            .auth(self.agent.post(&url))
            .content_type("application/octet-stream")
            .send(ureq::SendBody::from_reader(&mut reader))
            .map_err(|e| Self::transport("POST", &url, e))?;
        match resp.status().as_u16() {
            201 => Ok(()),
            _ => Err(Self::fail("POST", &url, resp)),
        }
    }

    /// Uploads a manifest or index under `reference` (a tag or its digest).
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), ClientError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .auth(self.agent.put(&url))
            .content_type(media_type)
            .send(bytes)
            .map_err(|e| Self::transport("PUT", &url, e))?;
        match resp.status().as_u16() {
            201 => Ok(()),
            _ => Err(Self::fail("PUT", &url, resp)),
        }
    }

    /// Pushes the image whose top manifest or index is `top` (in `store`) as
    /// `repo:tag`: blobs the registry lacks, then child manifests, then the top.
    /// `progress(done, total)` counts blob bytes. Returns the bytes uploaded.
    pub fn push_image(
        &self,
        store: &BlobStore,
        top: &Digest,
        repo: &str,
        tag: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<u64, ClientError> {
        let refs = oci::reachable_blobs(store, top)?;
        let total: u64 = refs
            .iter()
            .filter(|r| r.kind != BlobKind::Manifest)
            .map(|r| r.size)
            .sum();
        let mut done = 0u64;
        let mut uploaded = 0u64;
        for r in &refs {
            if r.kind == BlobKind::Manifest {
                let bytes = store.read(&r.digest)?;
                let reference = if &r.digest == top {
                    tag.to_string()
                } else {
                    r.digest.to_string()
                };
                self.push_manifest(repo, &reference, &r.media_type, &bytes)?;
                continue;
            }
            if !self.has_blob(repo, &r.digest)? {
                let base = done;
                self.push_blob(repo, store, &r.digest, &|n| progress(base + n, total))?;
                uploaded += r.size;
            }
            done += r.size;
            progress(done, total);
        }
        Ok(uploaded)
    }
}

/// A reader that reports how much was read.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    progress: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done);
        Ok(n)
    }
}
