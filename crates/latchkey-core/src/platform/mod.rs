//! The platform: accounts and users, the built-in login, the permission catalog, the developer
//! console, the consent screen, connected apps and the operator console.
//!
//! These services sit on top of the engine and use its login/consent protocol exactly as an
//! external login app would through the admin API (one protocol, two doors): the built-in login
//! page calls [`Engine::login_request`] and [`Engine::accept_login`], the consent page
//! [`Engine::consent_request`] and [`Engine::accept_consent`].

pub mod apps;
pub mod catalog;
pub mod connected;
pub mod consent;
pub mod demo;
pub mod device;
pub mod dns;
pub mod login;
pub mod model;
pub mod names;
pub mod operator;
pub mod password;
pub mod policy;
pub mod users;

use std::sync::Arc;

use latchkey_types::ErrorCode;

use crate::audit::{Actor, AuditEntry};
use crate::client::ClientError;
use crate::crypto::b64;
use crate::deps::Deps;
use crate::entropy::EntropyExt as _;
use crate::oauth::Engine;
use crate::oauth::flow::FlowError;
use crate::secret::ct_eq;
use crate::store::{StoreError, Tx};

use self::catalog::Catalog;
use self::dns::TxtResolver;
use self::model::{AccountMembership, Role, User};
use self::password::BlockingExecutor;

/// Settings of the platform, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct PlatformSettings {
    /// The platform's name, on every page.
    pub name: String,
    /// Lifetime of a console session without "remember me".
    pub console_session_ttl: i64,
    /// Lifetime of a console session with "remember me".
    pub remembered_session_ttl: i64,
    /// Going public needs a verified domain (otherwise unverified public apps are capped).
    pub public_apps_need_verified_domain: bool,
    /// Distinct users a public app may have while its domain is not verified.
    pub unverified_user_cap: i64,
}

impl PlatformSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            name: config.platform.name.clone(),
            console_session_ttl: config.platform.console_session.as_secs(),
            remembered_session_ttl: config.ttl.authentication_session.as_secs(),
            public_apps_need_verified_domain: config.platform.public_apps_need_verified_domain,
            unverified_user_cap: i64::from(config.platform.unverified_user_cap),
        }
    }
}

/// The platform's services. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Platform {
    pub(crate) deps: Deps,
    pub(crate) engine: Engine,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) rules: policy::Rules,
    pub(crate) blocking: Arc<dyn BlockingExecutor>,
    pub(crate) dns: Arc<dyn TxtResolver>,
    pub(crate) settings: Arc<PlatformSettings>,
}

/// What went wrong, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{0} was not found")]
    NotFound(&'static str),
    /// Signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Not signed in, or the session or token is not valid.
    #[error("sign in first")]
    Unauthenticated,
    /// A valid token without the scope the call needs (RFC 6750 §3.1).
    #[error("this call needs a token with the {scope} scope")]
    InsufficientScope { scope: &'static str },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    /// The email or the password is wrong (never says which).
    #[error("the email or password is incorrect")]
    BadCredentials,
    #[error("too many failed attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    /// The form's CSRF token is missing or wrong.
    #[error("the form has expired or did not come from this site; reload the page and try again")]
    Csrf,
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl PlatformError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Forbidden(_) | Self::Csrf => ErrorCode::AccessDenied,
            Self::Unauthenticated | Self::BadCredentials => ErrorCode::InvalidToken,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::Invalid { .. } => ErrorCode::InvalidRequest,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Throttled { .. } => ErrorCode::TooManyRequests,
            Self::Flow(f) => f.code(),
            Self::Store(StoreError::Unavailable(_)) => ErrorCode::TemporarilyUnavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::ServerError,
        }
    }
}

impl From<ClientError> for PlatformError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotFound => Self::NotFound("the app"),
            ClientError::Conflict => Self::Conflict("an app with this id exists already".into()),
            ClientError::Metadata(m) => Self::Invalid {
                field: m.field,
                reason: m.reason,
            },
            ClientError::Store(s) => Self::Store(s),
            other => Self::invalid("app", other.to_string()),
        }
    }
}

/// Who is asking: a signed-in user, or a token a user granted to an app.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub memberships: Vec<AccountMembership>,
    /// For a token: the accounts it was granted (`*` for all). `None` for a session.
    pub token_accounts: Option<Vec<String>>,
}

impl Principal {
    /// The user's membership of `account_id`, when the session or token may act on it.
    pub fn membership(&self, account_id: &str) -> Option<&AccountMembership> {
        if let Some(granted) = &self.token_accounts
            && !granted.iter().any(|a| a == "*" || a == account_id)
        {
            return None;
        }
        self.memberships.iter().find(|m| m.account.id == account_id)
    }

    /// The membership, if the role is at least `needed`; otherwise a refusal that says why.
    pub fn require(
        &self,
        account_id: &str,
        needed: Role,
    ) -> Result<&AccountMembership, PlatformError> {
        match self.membership(account_id) {
            None => Err(PlatformError::Forbidden(
                "you are not a member of this account".into(),
            )),
            Some(m) if !m.role.at_least(needed) => Err(PlatformError::Forbidden(format!(
                "this needs the {} role or above in {}; you are {}",
                needed.as_str(),
                m.account.name,
                m.role.as_str()
            ))),
            Some(m) => Ok(m),
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            kind: if self.user.is_operator && self.token_accounts.is_none() {
                "operator".into()
            } else {
                "user".into()
            },
            id: Some(self.user.id.clone()),
        }
    }
}

impl Platform {
    pub fn new(
        engine: Engine,
        catalog: Catalog,
        blocking: Arc<dyn BlockingExecutor>,
        dns: Arc<dyn TxtResolver>,
        settings: PlatformSettings,
    ) -> Self {
        let catalog = Arc::new(catalog);
        let rules = policy::Rules::new(
            catalog.clone(),
            engine.settings().trusted_document_hosts.clone(),
        );
        let platform = Self {
            deps: engine.deps().clone(),
            engine,
            catalog,
            rules,
            blocking,
            dns,
            settings: Arc::new(settings),
        };
        platform.govern(&platform.engine);
        platform
    }

    /// Makes `engine` ask this platform's rules which accounts a token acts for and whether a
    /// consent may be given (the engine that serves the token and introspection endpoints may be
    /// another instance than the platform's own).
    pub fn govern(&self, engine: &Engine) {
        engine.install_account_policy(Arc::new(policy::PlatformPolicy {
            store: self.deps.store.clone(),
            rules: self.rules.clone(),
        }));
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn settings(&self) -> &PlatformSettings {
        &self.settings
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A token that ties a form to what it acts on (a session, a challenge): the MAC of
    /// `purpose` and `binding` under the system secret.
    pub fn form_token(&self, purpose: &str, binding: &str) -> String {
        b64(&self
            .deps
            .secrets
            .mac(format!("latchkey-form\0{purpose}\0{binding}").as_bytes()))
    }

    /// Checks a form token in constant time.
    pub fn check_form_token(
        &self,
        purpose: &str,
        binding: &str,
        presented: &str,
    ) -> Result<(), PlatformError> {
        let expected = self.form_token(purpose, binding);
        if ct_eq(expected.as_bytes(), presented.as_bytes()) {
            Ok(())
        } else {
            Err(PlatformError::Csrf)
        }
    }

    /// Appends an audit entry to the transaction.
    pub(crate) async fn audit(
        &self,
        tx: &mut dyn Tx,
        actor: &Actor,
        account_id: Option<&str>,
        action: &str,
        target: (&str, &str),
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        tx.audit()
            .append(&AuditEntry {
                id: self.deps.entropy.uuid().to_string(),
                occurred_at: self.deps.clock.now(),
                actor: actor.clone(),
                account_id: account_id.map(str::to_owned),
                action: action.to_owned(),
                target_kind: target.0.to_owned(),
                target_id: target.1.to_owned(),
                details,
            })
            .await
    }

    /// The signed-in user's principal.
    pub async fn principal(&self, user: User) -> Result<Principal, PlatformError> {
        let memberships = self
            .deps
            .store
            .read()
            .await?
            .accounts()
            .memberships_of(&user.id)
            .await?;
        Ok(Principal {
            user,
            memberships,
            token_accounts: None,
        })
    }
}
