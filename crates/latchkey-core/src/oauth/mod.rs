//! The OAuth 2.1 / OpenID Connect engine: the authorization endpoint and the login and consent
//! challenge protocol (Hydra v2), the token endpoint, revocation, introspection and userinfo.
//!
//! Everything here is protocol: HTTP parsing and rendering live in `latchkey-http`, storage
//! behind the traits of [`crate::store`].

pub mod authorize;
pub mod client_auth;
pub mod device;
mod documents;
pub mod error;
mod exchange;
pub mod flow;
mod introspect;
mod issue;
pub mod jwt_bearer;
pub mod logout;
pub mod params;
pub mod pkce;
pub mod records;
pub mod registration;
pub mod resources;
mod revoke;
pub mod sessions;
pub mod token;
pub mod userinfo;

use std::sync::Arc;

use latchkey_types::routes::{join, public};

use crate::audit::{Actor, AuditEntry};
use crate::client::{Client, ClientService};
use crate::clock::UnixTime;
use crate::config::{AccessTokenStrategy, Config};
use crate::deps::Deps;
use crate::keys::{Keys, SigningAlg};
use crate::store::StoreError;
use crate::throttle::Throttle;
use latchkey_types::Scope;

/// The settings the engine runs with, resolved from the configuration at start-up.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The issuer, without a trailing slash.
    pub issuer: String,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub auth_code_ttl: i64,
    pub id_token_ttl: i64,
    /// How long a login or consent challenge stays valid.
    pub flow_ttl: i64,
    /// The longest a remembered login lasts.
    pub auth_session_ttl: i64,
    pub login_url: String,
    pub consent_url: String,
    /// The logout app (`urls.logout`; the built-in `/ui/logout` when unset).
    pub logout_url: String,
    /// Where a logout without a registered `post_logout_redirect_uri` ends
    /// (`urls.post_logout_redirect`; the built-in "signed out" page when unset).
    pub post_logout_url: String,
    pub pkce_enforced: bool,
    pub pkce_enforced_for_public_clients: bool,
    pub access_token_strategy: AccessTokenStrategy,
    /// What JWT access tokens are signed with.
    pub access_token_alg: SigningAlg,
    /// Seconds a used refresh token's response is served again to its client.
    pub refresh_grace_period: i64,
    /// Retries served within the grace period.
    pub refresh_grace_reuse_count: u32,
    /// The resource servers tokens may be issued for (RFC 8707).
    pub resources: Arc<resources::ResourceServers>,
    /// A `client_id` that is an https URL names its metadata document.
    pub metadata_documents: bool,
    /// Hosts whose metadata documents the operator trusts.
    pub trusted_document_hosts: Arc<Vec<String>>,
    /// RFC 7591 registration is open.
    pub registration: bool,
    /// The device grant's verification page and the page its flow ends at.
    pub device_verification_url: String,
    pub device_success_url: String,
    /// How long a device code lives, and the least seconds between two of its polls.
    pub device_code_ttl: i64,
    pub device_poll_interval: i64,
    /// The longest a JWT bearer assertion may live.
    pub jwt_bearer_max_ttl: i64,
}

impl EngineSettings {
    /// Resolves the settings. Without configured login and consent URLs, the browser is sent to
    /// the built-in pages (`/ui/login`, `/ui/consent`).
    pub fn from_config(config: &Config, issuer: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Self {
            login_url: config
                .urls
                .login
                .clone()
                .unwrap_or_else(|| join(&issuer, public::UI_LOGIN)),
            consent_url: config
                .urls
                .consent
                .clone()
                .unwrap_or_else(|| join(&issuer, public::UI_CONSENT)),
            logout_url: config
                .urls
                .logout
                .clone()
                .unwrap_or_else(|| join(&issuer, public::UI_LOGOUT)),
            post_logout_url: config
                .urls
                .post_logout_redirect
                .clone()
                .unwrap_or_else(|| join(&issuer, public::UI_SIGNED_OUT)),
            access_token_ttl: config.ttl.access_token.as_secs(),
            refresh_token_ttl: config.ttl.refresh_token.as_secs(),
            auth_code_ttl: config.ttl.auth_code.as_secs(),
            id_token_ttl: config.ttl.id_token.as_secs(),
            flow_ttl: config.ttl.login_consent_request.as_secs(),
            auth_session_ttl: config.ttl.authentication_session.as_secs(),
            pkce_enforced: config.oauth2.pkce.enforced,
            pkce_enforced_for_public_clients: config.oauth2.pkce.enforced_for_public_clients,
            access_token_strategy: config.oauth2.access_token_strategy,
            access_token_alg: config.oauth2.access_token_signing_alg,
            refresh_grace_period: config.oauth2.refresh_token.grace_period.as_secs(),
            refresh_grace_reuse_count: config.oauth2.refresh_token.grace_reuse_count,
            resources: Arc::new(resources::ResourceServers::from_config(
                &config.resources,
                &issuer,
                &config.platform.name,
            )),
            metadata_documents: config.oauth2.client_id_metadata_documents.enabled,
            trusted_document_hosts: Arc::new(
                config
                    .oauth2
                    .client_id_metadata_documents
                    .trusted_hosts
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
            ),
            registration: config.oauth2.dynamic_client_registration.enabled,
            device_verification_url: config
                .urls
                .device
                .verification
                .clone()
                .unwrap_or_else(|| join(&issuer, public::UI_DEVICE)),
            device_success_url: config
                .urls
                .device
                .success
                .clone()
                .unwrap_or_else(|| join(&issuer, public::UI_DEVICE_SUCCESS)),
            device_code_ttl: config.ttl.device_user_code.as_secs(),
            jwt_bearer_max_ttl: config.oauth2.jwt_bearer.max_ttl.as_secs(),
            device_poll_interval: config
                .oauth2
                .device_authorization
                .token_polling_interval
                .as_secs()
                .max(1),
            issuer,
        }
    }

    /// True when cookies must be `Secure` (the issuer is https).
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn url(&self, path: &str) -> String {
        join(&self.issuer, path)
    }
}

/// The accounts a token acts for, and the consents a user may give, as the platform decides
/// them (`platform::policy`): the engine asks, and knows nothing of accounts itself.
#[async_trait::async_trait]
pub trait AccountPolicy: Send + Sync + std::fmt::Debug {
    /// The scopes a client nobody vouches for (dynamically registered, or named by a metadata
    /// document from `host`) may hold.
    fn external_scope(&self, host: Option<&str>) -> Scope;
    /// The accounts, of those `granted` (`*`: all), that `subject` may lend `client_id` with
    /// `scope` now.
    async fn lendable(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        granted: &[String],
    ) -> Result<Vec<String>, StoreError>;
    /// Why `subject` may not grant `client_id` `scope` on `accounts` now, if they may not.
    async fn consent_refusal(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        accounts: &[String],
    ) -> Result<Option<String>, StoreError>;
}

/// The engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) deps: Deps,
    pub(crate) settings: Arc<EngineSettings>,
    pub(crate) keys: Arc<Keys>,
    pub(crate) clients: ClientService,
    pub(crate) throttle: Arc<Throttle>,
    /// The platform's decision, once it is installed (shared by every clone).
    pub(crate) account_policy: Arc<std::sync::RwLock<Option<Arc<dyn AccountPolicy>>>>,
    /// The fetcher of client metadata documents, once one is installed.
    pub(crate) document_fetcher:
        Arc<std::sync::RwLock<Option<Arc<dyn crate::client::MetadataDocumentFetcher>>>>,
}

impl Engine {
    /// Installs the platform's decision on accounts, in place of any installed before.
    pub fn install_account_policy(&self, policy: Arc<dyn AccountPolicy>) {
        *self
            .account_policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(policy);
    }

    /// The platform's decision on accounts, when one is installed.
    pub(crate) fn account_policy(&self) -> Option<Arc<dyn AccountPolicy>> {
        self.account_policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `claims` with the accounts the policy allows now, for a token of `subject` and
    /// `client_id` with `scope`: what a token acts for is decided again at every issue and
    /// introspection, so a demoted or removed member stops lending at once.
    pub(crate) async fn narrowed_claims(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        claims: &records::TokenClaims,
    ) -> Result<records::TokenClaims, StoreError> {
        let mut claims = claims.clone();
        if !claims.accounts.is_empty()
            && let Some(policy) = self.account_policy()
        {
            claims.accounts = policy
                .lendable(subject, client_id, scope, &claims.accounts)
                .await?;
        }
        Ok(claims)
    }

    /// The scopes a client nobody vouches for may hold: the platform's answer, or, with no
    /// platform, the OpenID Connect scopes.
    pub(crate) fn external_scope(&self, host: Option<&str>) -> Scope {
        self.account_policy().map_or_else(
            || Scope::parse("openid offline_access profile email").unwrap_or_default(),
            |p| p.external_scope(host),
        )
    }

    /// An audit entry of something a client did to one of its token families.
    pub(crate) fn client_audit(
        &self,
        client: &Client,
        action: &str,
        family: String,
        details: serde_json::Value,
        now: UnixTime,
    ) -> AuditEntry {
        AuditEntry {
            id: self.deps.ordered_id(),
            occurred_at: now,
            actor: Actor {
                kind: "client".into(),
                id: Some(client.id.clone()),
            },
            account_id: client.owner_account_id.clone(),
            action: action.into(),
            target_kind: "token_family".into(),
            target_id: family,
            details,
        }
    }
}

impl Engine {
    pub fn new(deps: Deps, settings: EngineSettings, keys: Arc<Keys>) -> Self {
        Self {
            clients: ClientService::new(deps.clone()),
            deps,
            settings: Arc::new(settings),
            keys,
            throttle: Arc::new(Throttle::unlimited()),
            account_policy: Arc::default(),
            document_fetcher: Arc::default(),
        }
    }

    /// The engine with request rate limits.
    #[must_use]
    pub fn with_throttle(mut self, throttle: Arc<Throttle>) -> Self {
        self.throttle = throttle;
        self
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    pub fn deps(&self) -> &Deps {
        &self.deps
    }

    /// The client registry the engine authenticates against (and whose cache it keeps).
    pub fn clients(&self) -> &ClientService {
        &self.clients
    }
}
