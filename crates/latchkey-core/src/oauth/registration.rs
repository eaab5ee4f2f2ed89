//! Dynamic client registration (RFC 7591) and its management (RFC 7592), at Hydra's paths.
//!
//! Anyone may register when the operator turns it on, so a registered client vouches for
//! nothing: it is owned by no account, shown as unverified, and may hold only the scopes any
//! unverified app may ([`Engine::external_scope`]). Its registration access token is stored by
//! hash and compared in constant time. A registration that is never used expires (the janitor
//! deletes it).

use latchkey_types::client::{OAuth2Client, RegistrationRequest, RegistrationResponse};
use latchkey_types::routes::{fill, public};
use latchkey_types::{ErrorCode, Scope, Secret};

use super::Engine;
use crate::audit::Actor;
use crate::client::{
    AuthMethod, Client, ClientError, ClientOrigin, GrantType, MetadataError, validate_redirect_uri,
};
use crate::crypto::{b64, sha256};
use crate::entropy::EntropyExt as _;
use crate::secret::ct_eq;
use crate::store::StoreError;

/// Prefix of registration access tokens.
const TOKEN_PREFIX: &str = "lk_rat_";
/// Most redirect URIs (and contacts) a registration may carry.
pub const MAX_REGISTERED_URIS: usize = 10;
/// Longest free-text field (name, software id and version).
pub const MAX_TEXT_LEN: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("Dynamic client registration is not enabled on this server.")]
    Disabled,
    #[error("The registration access token is missing or not valid for this client.")]
    InvalidToken,
    #[error("{0}")]
    Metadata(MetadataError),
    #[error("The client does not exist.")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistrationError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Disabled | Self::NotFound => ErrorCode::NotFound,
            Self::InvalidToken => ErrorCode::InvalidToken,
            Self::Metadata(m) if m.is_redirect_uri() => ErrorCode::InvalidRedirectUri,
            Self::Metadata(_) => ErrorCode::InvalidClientMetadata,
            Self::Store(StoreError::Unavailable(_)) => ErrorCode::TemporarilyUnavailable,
            Self::Store(_) => ErrorCode::ServerError,
        }
    }
}

impl From<MetadataError> for RegistrationError {
    fn from(e: MetadataError) -> Self {
        Self::Metadata(e)
    }
}

impl From<ClientError> for RegistrationError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Metadata(m) => Self::Metadata(m),
            ClientError::NotFound => Self::NotFound,
            ClientError::Store(s) => Self::Store(s),
            other => Self::Metadata(MetadataError::new("client", other.to_string())),
        }
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> RegistrationError {
    RegistrationError::Metadata(MetadataError::new(field, reason))
}

fn token_hash(token: &str) -> String {
    b64(&sha256(token.as_bytes()))
}

/// A client is native when every redirect URI is on the loopback interface or a private-use
/// scheme (RFC 8252); `application_type` says so, or, when absent, the redirect URIs do (the MCP
/// SDK sends loopback URIs and no type).
fn is_native_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| match u.scheme() {
        "http" => {
            matches!(
                u.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || u.host_str() == Some("localhost")
        }
        "https" => false,
        _ => true,
    })
}

fn bounded_text(field: &'static str, v: Option<&String>) -> Result<(), RegistrationError> {
    if v.is_some_and(|s| s.len() > MAX_TEXT_LEN || s.chars().any(char::is_control)) {
        return Err(bad(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters, without control characters"),
        ));
    }
    Ok(())
}

impl Engine {
    fn registration_open(&self) -> Result<(), RegistrationError> {
        if self.settings.registration {
            Ok(())
        } else {
            Err(RegistrationError::Disabled)
        }
    }

    /// The registration as a client in Hydra's shape, for the one client validation: what RFC
    /// 7591 defaults and this server allows a client nobody vouches for.
    fn registered_wire(
        &self,
        req: &RegistrationRequest,
    ) -> Result<OAuth2Client, RegistrationError> {
        if req
            .client_secret
            .as_ref()
            .is_some_and(|s| !s.expose().is_empty())
        {
            return Err(bad(
                "client_secret",
                "secrets are issued by the server; leave it out",
            ));
        }
        bounded_text("client_name", req.client_name.as_ref())?;
        bounded_text("software_id", req.software_id.as_ref())?;
        bounded_text("software_version", req.software_version.as_ref())?;
        let redirect_uris = req.redirect_uris.clone().unwrap_or_default();
        if redirect_uris.is_empty() || redirect_uris.len() > MAX_REGISTERED_URIS {
            return Err(bad(
                "redirect_uris",
                format!("give 1 to {MAX_REGISTERED_URIS} redirect URIs"),
            ));
        }
        if req.contacts.as_ref().is_some_and(|c| {
            c.len() > MAX_REGISTERED_URIS || c.iter().any(|s| s.len() > MAX_TEXT_LEN)
        }) {
            return Err(bad(
                "contacts",
                format!("at most {MAX_REGISTERED_URIS}, each at most {MAX_TEXT_LEN} characters"),
            ));
        }
        let native = match req.application_type.as_deref() {
            Some("native") => true,
            Some("web") => false,
            None => redirect_uris.iter().all(|u| is_native_redirect(u)),
            Some(other) => {
                return Err(bad(
                    "application_type",
                    format!("{other:?} is not supported; use native or web"),
                ));
            }
        };
        for (i, uri) in redirect_uris.iter().enumerate() {
            validate_redirect_uri(uri, native).map_err(|e| {
                RegistrationError::Metadata(MetadataError::new(
                    format!("redirect_uris[{i}]"),
                    format!("{uri:?} {e}"),
                ))
            })?;
            if native && !is_native_redirect(uri) {
                return Err(bad(
                    "redirect_uris",
                    "a native application redirects to a loopback address or a private-use scheme",
                ));
            }
            if !native && !uri.starts_with("https://") {
                return Err(bad(
                    "redirect_uris",
                    "a web application redirects to https URLs",
                ));
            }
        }
        if req.jwks_uri.as_deref().is_some_and(|u| !u.is_empty()) {
            return Err(bad("jwks_uri", "is not supported; send the keys in jwks"));
        }
        let method = req
            .token_endpoint_auth_method
            .clone()
            .unwrap_or_else(|| AuthMethod::ClientSecretBasic.as_str().to_owned());
        let grant_types = req
            .grant_types
            .clone()
            .unwrap_or_else(|| vec![GrantType::AuthorizationCode.as_str().to_owned()]);
        if let Some(g) = grant_types.iter().find(|g| {
            *g != GrantType::AuthorizationCode.as_str() && *g != GrantType::RefreshToken.as_str()
        }) {
            return Err(bad(
                "grant_types",
                format!(
                    "{g} is not available to registered clients; use authorization_code and refresh_token"
                ),
            ));
        }
        // The scope: what was asked, within what a client nobody vouches for may hold; all of
        // that when nothing was asked (RFC 7591 §2 lets the server choose).
        let allowed = self.external_scope(None);
        let scope = match req.scope.as_deref() {
            None | Some("") => allowed,
            Some(s) => Scope::parse(s)
                .map_err(|e| bad("scope", e.to_string()))?
                .intersection(&allowed),
        };
        Ok(OAuth2Client {
            client_name: req.client_name.clone(),
            redirect_uris: Some(redirect_uris),
            post_logout_redirect_uris: req.post_logout_redirect_uris.clone(),
            grant_types: Some(grant_types),
            response_types: req.response_types.clone(),
            scope: Some(scope.to_string()),
            token_endpoint_auth_method: Some(method),
            jwks: req.jwks.clone(),
            logo_uri: req.logo_uri.clone(),
            client_uri: req.client_uri.clone(),
            policy_uri: req.policy_uri.clone(),
            tos_uri: req.tos_uri.clone(),
            contacts: req.contacts.clone(),
            ..OAuth2Client::default()
        })
    }

    fn registration_response(
        &self,
        client: &Client,
        secret: Option<Secret>,
        token: Option<Secret>,
    ) -> RegistrationResponse {
        let some = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
        let native = client.redirect_uris.iter().all(|u| is_native_redirect(u));
        RegistrationResponse {
            client_id: client.id.clone(),
            client_secret: secret,
            client_id_issued_at: client.created_at,
            client_secret_expires_at: 0,
            registration_access_token: token,
            registration_client_uri: self
                .settings
                .url(&fill(public::REGISTER_CLIENT, &[&client.id])),
            redirect_uris: client.redirect_uris.clone(),
            token_endpoint_auth_method: client.token_endpoint_auth_method.as_str().to_owned(),
            grant_types: client
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            response_types: client.response_types.clone(),
            client_name: some(&client.name),
            client_uri: some(&client.client_uri),
            logo_uri: some(&client.logo_uri),
            scope: client.scope.to_string(),
            contacts: client.contacts.clone(),
            tos_uri: some(&client.tos_uri),
            policy_uri: some(&client.policy_uri),
            jwks: client.jwks.clone(),
            application_type: if native { "native" } else { "web" }.to_owned(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
        }
    }

    /// `POST /oauth2/register`: registers a client, answering with its credentials once.
    pub async fn register(
        &self,
        req: &RegistrationRequest,
    ) -> Result<RegistrationResponse, RegistrationError> {
        self.registration_open()?;
        let wire = self.registered_wire(req)?;
        let now = self.deps.clock.now();
        let client = crate::client::client_from_wire(
            &wire,
            crate::client::Fixed {
                id: self.deps.entropy.uuid().to_string(),
                created_at: now,
                updated_at: now,
                status: crate::client::ClientStatus::Active,
                owner_account_id: None,
                origin: ClientOrigin::Dynamic,
            },
        )?;
        let token = format!("{TOKEN_PREFIX}{}", self.deps.entropy.token());
        let actor = Actor {
            kind: "client".into(),
            id: Some(client.id.clone()),
        };
        let created = self
            .clients
            .insert_with_registration(client, &actor, &token_hash(&token))
            .await?;
        metrics::counter!("latchkey_clients_registered_total").increment(1);
        Ok(self.registration_response(
            &created.client,
            created.secret.as_ref().map(|s| Secret::new(s.expose())),
            Some(Secret::new(token)),
        ))
    }

    /// The client `client_id`, when `token` is its registration access token.
    async fn registered_client(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<Client, RegistrationError> {
        self.registration_open()?;
        let token = token.ok_or(RegistrationError::InvalidToken)?;
        let stored = self
            .deps
            .store
            .read()
            .await?
            .clients()
            .registration_token(client_id)
            .await?;
        // A client with no registration token is answered like a wrong token: whether a
        // client id exists is no one's business without its token.
        let presented = token_hash(token);
        let matches = stored.is_some_and(|s| ct_eq(s.as_bytes(), presented.as_bytes()));
        if !matches {
            return Err(RegistrationError::InvalidToken);
        }
        Ok(self.clients.get(client_id).await?)
    }

    /// `GET /oauth2/register/{client_id}` (RFC 7592 §2.1).
    pub async fn registration(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<RegistrationResponse, RegistrationError> {
        let client = self.registered_client(client_id, token).await?;
        Ok(self.registration_response(&client, None, None))
    }

    /// `PUT /oauth2/register/{client_id}` (RFC 7592 §2.2): replaces the metadata; the id, the
    /// secret and the registration token stay.
    pub async fn update_registration(
        &self,
        client_id: &str,
        token: Option<&str>,
        req: &RegistrationRequest,
    ) -> Result<RegistrationResponse, RegistrationError> {
        let client = self.registered_client(client_id, token).await?;
        if req.client_id.as_deref().is_some_and(|id| id != client.id) {
            return Err(bad("client_id", "does not match the client being updated"));
        }
        let wire = self.registered_wire(req)?;
        let actor = Actor {
            kind: "client".into(),
            id: Some(client.id.clone()),
        };
        let updated = self.clients.replace(&client.id, &wire, &actor).await?;
        Ok(self.registration_response(&updated, None, None))
    }

    /// `DELETE /oauth2/register/{client_id}` (RFC 7592 §2.3): the client, its grants and tokens
    /// are gone.
    pub async fn delete_registration(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<(), RegistrationError> {
        let client = self.registered_client(client_id, token).await?;
        let actor = Actor {
            kind: "client".into(),
            id: Some(client.id.clone()),
        };
        self.clients.delete(&client.id, &actor).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_private_use_redirects_are_native() {
        for uri in [
            "http://127.0.0.1:3000/cb",
            "http://[::1]/cb",
            "http://localhost:8080/callback",
            "com.example.app:/cb",
        ] {
            assert!(is_native_redirect(uri), "{uri}");
        }
        for uri in ["https://app.example/cb", "http://app.example/cb"] {
            assert!(!is_native_redirect(uri), "{uri}");
        }
    }
}
