//! What every command gets: resolved settings and a client for the hub.

use bramble_api::ResourceInfo;

use crate::client::Client;
use crate::config::Settings;

/// Settings plus the client built from them.
#[derive(Debug)]
pub struct Context {
    pub client: Client,
    pub settings: Settings,
}

impl Context {
    /// Fails only on an unreadable CA bundle.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let client = Client::new(
            &settings.hub,
            settings.token.clone(),
            settings.unauthorized_hint.clone(),
            settings.ca.as_ref(),
        )
        .map_err(|e| {
            let source = settings
                .ca
                .as_ref()
                .map(|c| c.source.as_str())
                .unwrap_or("");
            anyhow::anyhow!("the CA from {source}: {e}")
        })?;
        Ok(Context { client, settings })
    }

    /// The namespace a request for `resource` goes to: the current one for
    /// namespaced kinds (none with `-A`), none for cluster-scoped kinds.
    pub fn scope(&self, resource: &ResourceInfo, all_namespaces: bool) -> Option<&str> {
        (resource.namespaced && !all_namespaces).then_some(self.settings.namespace.as_str())
    }

    /// kubectl's message for an empty result.
    pub fn no_resources_message(&self, namespaced: bool, all_namespaces: bool) -> String {
        if namespaced && !all_namespaces {
            format!(
                "No resources found in {} namespace.",
                self.settings.namespace
            )
        } else {
            "No resources found".to_string()
        }
    }
}
