//! The hub's serving certificate, shared by the API/registry listener and
//! the MQTT TLS listener. [`ServingCert`] is their rustls resolver: a new
//! certificate swapped in serves the next handshake. [`spawn_renewal`]
//! issues one when two thirds of the current one's lifetime passed, or when
//! the host's names changed (a new address from DHCP); [`plan`] decides.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use super::TlsError;
use super::ca::{ClusterCa, Issued};
use super::names::{ServingName, ServingNames};

/// Lifetime of a serving certificate (k3s: one year).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// How often the host's names are looked at.
pub const NAMES_CHECK: Duration = Duration::from_secs(60);

/// What the renewal task should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// Nothing until then.
    Wait(Duration),
    /// Two thirds of the lifetime passed.
    Expiring,
    /// The names differ: these are new or gone.
    NamesChanged(Vec<String>),
}

/// Pure: whether a certificate valid from `issued_at` to `not_after` for
/// `names` must be replaced at `now`, seeing the host's `current` names.
pub fn plan(
    issued_at: SystemTime,
    not_after: SystemTime,
    names: &ServingNames,
    current: &ServingNames,
    now: SystemTime,
) -> Renewal {
    if names != current {
        let changed = names
            .symmetric_difference(current)
            .map(ServingName::to_string)
            .collect();
        return Renewal::NamesChanged(changed);
    }
    let lifetime = not_after.duration_since(issued_at).unwrap_or_default();
    let renew_at = issued_at + lifetime * 2 / 3;
    match renew_at.duration_since(now) {
        Ok(left) if !left.is_zero() => Renewal::Wait(left),
        _ => Renewal::Expiring,
    }
}

/// The certificate new handshakes get.
pub struct ServingCert {
    current: RwLock<Current>,
    extra: Vec<ServingName>,
    lifetime: Duration,
}

struct Current {
    key: Arc<CertifiedKey>,
    names: ServingNames,
    issued_at: SystemTime,
    not_after: SystemTime,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert")
            .field("extra", &self.extra)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl ServingCert {
    /// Issues the first certificate for the host's names and `extra`.
    pub fn new(
        ca: &ClusterCa,
        extra: Vec<ServingName>,
        lifetime: Duration,
    ) -> Result<ServingCert, TlsError> {
        let now = SystemTime::now();
        let issued = ca.issue(&super::names::current(&extra), now, lifetime)?;
        Ok(ServingCert {
            current: RwLock::new(Current::from(issued, now)),
            extra,
            lifetime,
        })
    }

    /// The names the current certificate covers.
    pub fn names(&self) -> ServingNames {
        self.read(|c| c.names.clone())
    }

    /// The leaf certificate now served (DER).
    pub fn leaf(&self) -> rustls_pki_types::CertificateDer<'static> {
        self.read(|c| c.key.cert[0].clone())
    }

    fn read<T>(&self, f: impl FnOnce(&Current) -> T) -> T {
        match self.current.read() {
            Ok(c) => f(&c),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// One step of the renewal task: issues a new certificate if [`plan`]
    /// says so; returns how long to wait before the next step.
    pub fn renew_if_due(&self, ca: &ClusterCa) -> Duration {
        self.renew_if_due_at(ca, SystemTime::now())
    }

    /// [`ServingCert::renew_if_due`] as if the clock said `now`.
    fn renew_if_due_at(&self, ca: &ClusterCa, now: SystemTime) -> Duration {
        let current = super::names::current(&self.extra);
        let why = self.read(|c| plan(c.issued_at, c.not_after, &c.names, &current, now));
        let reason = match why {
            Renewal::Wait(left) => return left.min(NAMES_CHECK),
            Renewal::Expiring => "two thirds of its lifetime passed".to_string(),
            Renewal::NamesChanged(n) => format!("names changed: {}", n.join(", ")),
        };
        match ca.issue(&current, now, self.lifetime) {
            Ok(issued) => {
                let not_after = humantime::format_rfc3339_seconds(issued.not_after);
                match self.current.write() {
                    Ok(mut c) => *c = Current::from(issued, now),
                    Err(p) => *p.into_inner() = Current::from(issued, now),
                }
                tracing::info!(%reason, %not_after, "serving certificate renewed");
                Duration::ZERO
            }
            Err(e) => {
                tracing::error!(%reason, error = %e, "renewing the serving certificate failed; trying again in a minute");
                NAMES_CHECK
            }
        }
    }
}

impl Current {
    fn from(issued: Issued, now: SystemTime) -> Current {
        Current {
            key: issued.key,
            names: issued.names,
            issued_at: now,
            not_after: issued.not_after,
        }
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.read(|c| c.key.clone()))
    }
}

/// Renews `serving` from `ca` until `stop`.
pub fn spawn_renewal(
    ca: Arc<super::HubTls>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let tls = ca.clone();
            let wait = tokio::task::spawn_blocking(move || tls.serving.renew_if_due(&tls.ca))
                .await
                .unwrap_or(NAMES_CHECK);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::names;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn renews_after_two_thirds_of_the_lifetime() {
        let n = names::plan("gw", &[], &[]);
        assert_eq!(
            plan(at(1000), at(1900), &n, &n, at(1500)),
            Renewal::Wait(Duration::from_secs(100))
        );
        assert_eq!(
            plan(at(1000), at(1900), &n, &n, at(1600)),
            Renewal::Expiring
        );
        assert_eq!(
            plan(at(1000), at(1900), &n, &n, at(5000)),
            Renewal::Expiring
        );
    }

    #[test]
    fn renews_when_an_address_comes_or_goes() {
        let old = names::plan("gw", &["10.0.0.5".parse().unwrap()], &[]);
        let new = names::plan("gw", &["10.0.0.6".parse().unwrap()], &[]);
        assert_eq!(
            plan(at(1000), at(1900), &old, &new, at(1001)),
            Renewal::NamesChanged(vec!["10.0.0.5".into(), "10.0.0.6".into()])
        );
    }

    #[test]
    fn a_renewed_certificate_is_served_to_the_next_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::load_or_create(dir.path()).unwrap();
        let s = ServingCert::new(&ca, vec![], Duration::from_secs(3)).unwrap();
        let first = s.leaf();
        assert!(s.renew_if_due(&ca) > Duration::ZERO, "not due yet");
        assert_eq!(s.leaf(), first);
        // Two thirds of the 3 s lifetime later (the clock is passed in).
        let later = SystemTime::now() + Duration::from_millis(2100);
        assert_eq!(s.renew_if_due_at(&ca, later), Duration::ZERO);
        assert_ne!(s.leaf(), first, "a new certificate");
    }
}
