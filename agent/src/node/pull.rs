//! Images for the joined agent: a pod's image comes from the node's store
//! and, when it is not there, is pulled from the hub's registry (for this
//! node's platform) on a background thread, so supervising the other pods
//! never waits on the network. Until the pull ends the pod's start fails
//! with [`ImageError::Pulling`]; a failed pull fails the next start with its
//! [`PullError`] (then a new pull starts on the following attempt).
//! The node loop retries with back-off, reports `ErrImagePull` /
//! `ImagePullBackOff`, and is woken when a pull ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bramble_images::RegistryClient;

use super::images::LocalImages;
use crate::pod::{ImageError, ImageSource, PullError, ResolvedImage};

/// How the agent logs in to the hub's registry.
#[derive(Clone)]
pub enum RegistryLogin {
    /// HTTP basic auth: the node name and its key login for the registry
    /// (derived from its keys and the hub's, once pinned).
    Node {
        user: String,
        keys: Box<bramble_trust::SecretKeys>,
        hub: crate::session::connection::PinnedHub,
    },
    Bearer(String),
    Anonymous,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryLogin::Node { user, .. } => write!(f, "Node({user})"),
            RegistryLogin::Bearer(_) => f.write_str("Bearer"),
            RegistryLogin::Anonymous => f.write_str("Anonymous"),
        }
    }
}

impl RegistryLogin {
    /// The client for `hub_url` with this login (a node not joined yet has
    /// no key login: anonymous), trusting `tls`'s CA.
    pub fn client(&self, hub_url: &str, tls: Option<&ureq::tls::TlsConfig>) -> RegistryClient {
        let client = self.client_plain(hub_url);
        match tls {
            Some(tls) => client.with_tls(tls.clone()),
            None => client,
        }
    }

    fn client_plain(&self, hub_url: &str) -> RegistryClient {
        match self {
            RegistryLogin::Bearer(t) => RegistryClient::new(hub_url, Some(t)),
            RegistryLogin::Node { user, keys, hub } => {
                let hub = hub.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let password = hub.and_then(|h| {
                    bramble_trust::login::key_password(
                        keys,
                        &h,
                        bramble_trust::login::Service::Registry,
                        user,
                    )
                });
                match password {
                    Some(p) => RegistryClient::with_basic_auth(hub_url, user, &p),
                    None => RegistryClient::new(hub_url, None),
                }
            }
            RegistryLogin::Anonymous => RegistryClient::new(hub_url, None),
        }
    }
}

#[derive(Debug)]
enum PullState {
    InProgress,
    Failed(PullError),
}

/// Local images with background pulls from the hub. See the module docs.
pub struct PullingImages {
    local: Arc<LocalImages>,
    /// The hub's base URL (`--hub`).
    hub: String,
    /// How pulls authenticate: the node's key login (user, password; the
    /// registry accepts it once the hub registered the key), or a bearer
    /// token (`BRAMBLE_REGISTRY_TOKEN`).
    login: RegistryLogin,
    /// The pinned hub CA, for an `https://` hub.
    tls: Option<ureq::tls::TlsConfig>,
    pulls: Arc<Mutex<BTreeMap<String, PullState>>>,
    /// Called when a pull ends (wakes the node loop).
    on_done: Arc<dyn Fn() + Send + Sync>,
}

impl PullingImages {
    pub fn new(
        local: Arc<LocalImages>,
        hub: &str,
        login: RegistryLogin,
        tls: Option<ureq::tls::TlsConfig>,
        on_done: Arc<dyn Fn() + Send + Sync>,
    ) -> PullingImages {
        PullingImages {
            local,
            hub: hub.to_string(),
            login,
            tls,
            pulls: Arc::default(),
            on_done,
        }
    }

    /// Starts pulling `reference` on a thread of its own.
    fn start_pull(&self, reference: &str) -> std::io::Result<()> {
        let (local, pulls, done) = (self.local.clone(), self.pulls.clone(), self.on_done.clone());
        let client = self.login.client(&self.hub, self.tls.as_ref());
        let r = reference.to_string();
        std::thread::Builder::new()
            .name("pull".into())
            .spawn(move || {
                let result = local.pull(&client, &r);
                let mut p = pulls.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok(_) => {
                        p.remove(&r);
                    }
                    Err(e) => {
                        tracing::warn!(image = %r, error = %e, "image pull failed");
                        p.insert(r, PullState::Failed(e));
                    }
                }
                drop(p);
                done();
            })
            .map(|_| ())
    }
}

impl ImageSource for PullingImages {
    fn resolve(&self, reference: &str) -> Result<ResolvedImage, ImageError> {
        if self.local.has(reference) {
            return self.local.resolve(reference);
        }
        let mut pulls = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(PullState::InProgress) = pulls.get(reference) {
            return Err(ImageError::Pulling);
        }
        if let Some(PullState::Failed(e)) = pulls.remove(reference) {
            return Err(e.into());
        }
        tracing::info!(image = reference, hub = %self.hub, "pulling image");
        pulls.insert(reference.to_string(), PullState::InProgress);
        if let Err(source) = self.start_pull(reference) {
            pulls.remove(reference);
            return Err(ImageError::StartPull {
                reference: reference.to_string(),
                source,
            });
        }
        Err(ImageError::Pulling)
    }
}
