//! Connected apps: every app a user authorized, and one-click revocation.

use super::consent::Shield;
use super::policy::AppStanding;
use super::{Platform, PlatformError, Principal};
use crate::client::Client;
use crate::oauth::records::Grant;

/// One authorized app, as the connected apps page lists it.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub grant: Grant,
    pub client: Client,
    /// The permissions' titles (or the scope, when the catalog does not know it).
    pub permissions: Vec<String>,
    /// The granted accounts' names, or "All accounts".
    pub accounts: Vec<String>,
    pub publisher: Option<String>,
    /// The publisher's standing, as the consent screen showed it.
    pub shield: Shield,
    /// What the page calls the app: the host of a metadata-document client's URL (its name is
    /// only its claim), else its name.
    pub display_name: String,
    /// The app's own name, when [`ConnectedApp::display_name`] is its host.
    pub claimed_name: Option<String>,
}

impl Platform {
    /// Every app the user authorized, newest first.
    pub async fn connected_apps(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ConnectedApp>, PlatformError> {
        let mut r = self.deps.store.read().await?;
        let grants = r.grants().list_active(&principal.user.id).await?;
        let mut out = Vec::with_capacity(grants.len());
        for grant in grants {
            let Some(client) = r.clients().get(&grant.client_id).await? else {
                continue;
            };
            let Some(app) = AppStanding::load(r.as_mut(), &client.id).await? else {
                continue;
            };
            let permissions = grant
                .scope
                .iter()
                .map(|s| {
                    self.catalog
                        .get(s)
                        .map_or_else(|| s.to_owned(), |c| c.title.clone())
                })
                .collect();
            let accounts = grant
                .accounts
                .iter()
                .map(|a| {
                    if a == "*" {
                        "All accounts".to_owned()
                    } else {
                        principal
                            .memberships
                            .iter()
                            .find(|m| &m.account.id == a)
                            .map_or_else(|| a.clone(), |m| m.account.name.clone())
                    }
                })
                .collect();
            let host = app.document_host();
            let name = if client.name.is_empty() {
                client.id.clone()
            } else {
                client.name.clone()
            };
            out.push(ConnectedApp {
                display_name: host.clone().unwrap_or_else(|| name.clone()),
                claimed_name: host.map(|_| name),
                permissions,
                accounts,
                publisher: app.owner.as_ref().map(|a| a.name.clone()),
                shield: app.shield(),
                grant,
                client,
            });
        }
        Ok(out)
    }

    /// Revokes the user's grant to an app and every token issued under it, at once.
    pub async fn revoke_connected_app(
        &self,
        principal: &Principal,
        client_id: &str,
    ) -> Result<(), PlatformError> {
        let n = self
            .engine
            .revoke_consent_sessions(&principal.user.id, Some(client_id), &principal.actor())
            .await?;
        if n == 0 {
            return Err(PlatformError::NotFound("an authorization of this app"));
        }
        Ok(())
    }
}
