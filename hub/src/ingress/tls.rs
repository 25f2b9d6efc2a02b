//! TLS for the ingress (`--ingress-tls-listen`), as Kubernetes Ingress
//! `spec.tls` specifies: each entry names a `kubernetes.io/tls` Secret in
//! the Ingress's namespace (`data["tls.crt"]`, `data["tls.key"]`, base64
//! PEM) for some hosts. [`SniTable`] maps the hosts to those certificates:
//! the exact host, then a one-label `*.example.com`, else the first
//! certificate (oldest Ingress first, like ingress-nginx's default
//! certificate); with no certificate at all the handshake fails.
//! [`Certificates`] is the rustls resolver: the control loop swaps a new
//! table into it together with the route table, so new handshakes use new
//! certificates and open connections keep theirs. A Secret that cannot be
//! used is skipped with one warning per distinct problem; the others are
//! served.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bramble_api::objects::{Ingress, Secret};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::routes::oldest_first;

/// The Secret type an Ingress's certificate must have.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The only application protocol offered (the proxy speaks HTTP/1).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Certificates by the host names clients ask for (SNI).
#[derive(Default)]
pub struct SniTable {
    /// Lowercase host names.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` stored as `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// For clients without SNI or a host no entry names.
    default: Option<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for SniTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniTable")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("wildcard", &self.wildcard.keys().collect::<Vec<_>>())
            .field("default", &self.default.is_some())
            .finish()
    }
}

impl SniTable {
    /// The certificate for `server_name` (any case): exact, then wildcard,
    /// then the default; `None` only when there is no certificate at all.
    pub fn lookup(&self, server_name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let found = server_name
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .and_then(|n| {
                self.exact.get(&n).or_else(|| {
                    n.split_once('.')
                        .and_then(|(label, rest)| (!label.is_empty()).then_some(rest))
                        .and_then(|rest| self.wildcard.get(rest))
                })
            });
        found.or(self.default.as_ref())
    }

    /// Whether the table has no certificate.
    pub fn is_empty(&self) -> bool {
        self.default.is_none()
    }

    /// How many host names (exact and wildcard) have a certificate.
    pub fn hosts(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    fn add(&mut self, host: &str, cert: &Arc<CertifiedKey>) {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        // The first (oldest) entry for a host wins.
        match host.strip_prefix("*.") {
            Some(suffix) => self.wildcard.entry(suffix.to_string()),
            None => self.exact.entry(host),
        }
        .or_insert_with(|| cert.clone());
    }
}

/// Why one `spec.tls` entry was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    /// `namespace/name` of the Ingress.
    pub ingress: String,
    /// `namespace/name` of the Secret (empty when the entry names none).
    pub secret: String,
    pub error: String,
}

/// A Secret's certificate as loaded, reused while its data stays the same.
struct Loaded {
    type_: String,
    crt: Option<String>,
    key: Option<String>,
    result: Result<Arc<CertifiedKey>, String>,
}

impl Loaded {
    fn is_for(&self, s: &Secret) -> bool {
        self.type_ == s.type_()
            && self.crt.as_ref() == s.data.get("tls.crt")
            && self.key.as_ref() == s.data.get("tls.key")
    }
}

/// What the builds remember between revisions.
#[derive(Default)]
struct Memory {
    /// By (namespace, name) of the Secret.
    loaded: HashMap<(String, String), Loaded>,
    /// Problems already warned about (warned again only after they went away).
    warned: HashSet<Problem>,
}

/// The ingress's certificate resolver: the current [`SniTable`], replaced
/// whole by [`Certificates::update`].
pub struct Certificates {
    table: RwLock<Arc<SniTable>>,
    memory: Mutex<Memory>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("table", &self.table())
            .finish()
    }
}

impl Default for Certificates {
    fn default() -> Self {
        Certificates::new()
    }
}

impl Certificates {
    /// No certificates yet (every handshake fails until an update).
    pub fn new() -> Certificates {
        Certificates {
            table: RwLock::new(Arc::default()),
            memory: Mutex::default(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// The crypto provider (ring) the certificates were loaded with.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The table new handshakes use.
    pub fn table(&self) -> Arc<SniTable> {
        self.table
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Builds the table from the Ingresses' `spec.tls` and the Secrets and
    /// swaps it in; returns the entries skipped (each warned about once).
    pub fn update(&self, ingresses: &[Ingress], secrets: &[Secret]) -> Vec<Problem> {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let (table, problems) = build(ingresses, secrets, &mut memory.loaded, &self.provider);
        for p in &problems {
            if !memory.warned.contains(p) {
                tracing::warn!(
                    ingress = %p.ingress,
                    secret = %p.secret,
                    error = %p.error,
                    "ingress TLS certificate skipped"
                );
            }
        }
        memory.warned = problems.iter().cloned().collect();
        let table = Arc::new(table);
        tracing::debug!(
            hosts = table.hosts(),
            default = !table.is_empty(),
            skipped = problems.len(),
            "ingress certificates updated"
        );
        match self.table.write() {
            Ok(mut t) => *t = table,
            Err(p) => *p.into_inner() = table,
        }
        problems
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let found = self.table().lookup(hello.server_name()).cloned();
        if found.is_none() {
            tracing::debug!(
                server_name = ?hello.server_name(),
                "TLS handshake refused: no Ingress certificate"
            );
        }
        found
    }
}

/// The table for `ingresses`, loading each Secret once (from `loaded` when
/// its data did not change; `loaded` keeps only the Secrets in use).
fn build(
    ingresses: &[Ingress],
    secrets: &[Secret],
    loaded: &mut HashMap<(String, String), Loaded>,
    provider: &CryptoProvider,
) -> (SniTable, Vec<Problem>) {
    let by_name: HashMap<(&str, &str), &Secret> = secrets
        .iter()
        .map(|s| ((s.namespace(), s.name()), s))
        .collect();
    let mut table = SniTable::default();
    let mut problems = Vec::new();
    let mut used = HashMap::new();
    for ing in oldest_first(ingresses) {
        let ns = ing.namespace();
        for (i, entry) in ing.spec.tls.iter().enumerate() {
            let problem = |secret: String, error: String| Problem {
                ingress: format!("{ns}/{}", ing.name()),
                secret,
                error,
            };
            let Some(name) = entry.secret_name.as_deref().filter(|n| !n.is_empty()) else {
                problems.push(problem(
                    String::new(),
                    format!("spec.tls[{i}] names no secretName"),
                ));
                continue;
            };
            let secret_ref = format!("{ns}/{name}");
            let Some(secret) = by_name.get(&(ns, name)) else {
                problems.push(problem(secret_ref, "Secret not found".into()));
                continue;
            };
            let id = (ns.to_string(), name.to_string());
            let entry_result = match used.get(&id) {
                Some(Loaded { result, .. }) => result.clone(),
                None => {
                    let l = match loaded.remove(&id) {
                        Some(l) if l.is_for(secret) => l,
                        _ => Loaded {
                            type_: secret.type_().to_string(),
                            crt: secret.data.get("tls.crt").cloned(),
                            key: secret.data.get("tls.key").cloned(),
                            result: load(secret, provider),
                        },
                    };
                    let r = l.result.clone();
                    used.insert(id, l);
                    r
                }
            };
            match entry_result {
                Ok(cert) => {
                    table.default.get_or_insert_with(|| cert.clone());
                    for h in &entry.hosts {
                        table.add(h, &cert);
                    }
                }
                Err(error) => problems.push(problem(secret_ref, error)),
            }
        }
    }
    *loaded = used;
    (table, problems)
}

/// The certificate chain and key of a `kubernetes.io/tls` Secret, or what
/// is wrong with it (never quoting the values).
pub fn load(secret: &Secret, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    if secret.type_() != TLS_SECRET_TYPE {
        return Err(format!(
            "type is {:?}, not {TLS_SECRET_TYPE:?}",
            secret.type_()
        ));
    }
    let field = |key: &str| -> Result<Vec<u8>, String> {
        if !secret.data.contains_key(key) {
            return Err(format!("data has no {key:?}"));
        }
        secret
            .decoded(key)
            .ok_or_else(|| format!("data[{key:?}] is not base64"))
    };
    let crt = field("tls.crt")?;
    let key = field("tls.key")?;
    let chain = CertificateDer::pem_slice_iter(&crt)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt has no PEM CERTIFICATE block".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| format!("tls.key has no PEM private key: {e}"))?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                "tls.key does not match the certificate in tls.crt".to_string()
            }
            e => format!("tls.crt/tls.key not usable: {e}"),
        })
}

#[cfg(test)]
mod tests;
