//! The one consent decision: whether a user may lend these scopes of this app on these accounts,
//! now. The consent screen, its POST, the remembered-consent skip, the admin API's consent accept
//! and the accounts a token acts for (at issue, refresh and introspection) all ask here, so that
//! a rule enforced on one path cannot be forgotten on another.
//!
//! The rules:
//! - the app's standing: suspended apps get nothing; a private app is for members of its
//!   account; an unverified public app has a cap of users;
//! - the catalog: every scope must be in it, sensitive scopes need a verified app, restricted
//!   ones the operator's approval (and approval withdrawn takes effect at once); a client that
//!   registered itself or is named by its metadata document is unverified, and gets sensitive
//!   scopes only from a host the operator trusts;
//! - each account: the user must be a member, the account's policy must allow the app, and the
//!   user's own role there must hold every scope lent (`min_role`): an app never holds more than
//!   the user who granted it.

use std::sync::Arc;

use async_trait::async_trait;
use latchkey_types::Scope;

use super::PlatformError;
use super::catalog::Catalog;
use super::consent::Shield;
use super::model::{Account, AccountKind, AccountMembership, AppProfile, Visibility};
use crate::client::{Client, ClientOrigin, ClientStatus};
use crate::oauth::AccountPolicy;
use crate::store::{Store, StoreError, Tx};

/// An app as the rules see it: its client, its platform profile and the account that owns it.
#[derive(Debug, Clone)]
pub struct AppStanding {
    pub client: Client,
    pub profile: Option<AppProfile>,
    pub owner: Option<Account>,
}

impl AppStanding {
    /// The standing of `client_id`, when it exists.
    pub async fn load(tx: &mut dyn Tx, client_id: &str) -> Result<Option<Self>, PlatformError> {
        let Some(client) = tx.clients().get(client_id).await? else {
            return Ok(None);
        };
        let profile = tx.apps().get(client_id).await?;
        let owner = match &client.owner_account_id {
            Some(id) => tx.accounts().account(id).await?,
            None => None,
        };
        Ok(Some(Self {
            client,
            profile,
            owner,
        }))
    }

    /// Made by the platform: owned by a platform account, or by no account (a client made
    /// through the admin API). A client that registered itself, or is named by its metadata
    /// document, never is.
    pub fn first_party(&self) -> bool {
        !self.external()
            && self
                .owner
                .as_ref()
                .is_none_or(|a| a.kind == AccountKind::Platform)
    }

    /// Nobody vouches for it: it registered itself (RFC 7591) or is named by the URL of its
    /// metadata document.
    pub fn external(&self) -> bool {
        self.client.origin.is_external()
    }

    /// The host of a metadata-document client's URL: who is asking, as far as anyone knows.
    pub fn document_host(&self) -> Option<String> {
        (self.client.origin == ClientOrigin::MetadataDocument)
            .then(|| url::Url::parse(&self.client.id).ok())
            .flatten()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    }

    /// Its domain is verified.
    pub fn verified(&self) -> bool {
        self.profile.as_ref().is_some_and(AppProfile::is_verified)
    }

    /// The publisher's standing, as every page shows it: the one definition of "Verified".
    pub fn shield(&self) -> Shield {
        if self.first_party() {
            Shield::FirstParty
        } else if self.verified() {
            Shield::Verified
        } else {
            Shield::Unverified
        }
    }

    fn private(&self) -> bool {
        self.profile
            .as_ref()
            .is_some_and(|p| p.visibility == Visibility::Private)
    }

    /// A public app whose domain is not verified: its users are capped.
    pub fn capped(&self) -> bool {
        self.profile
            .as_ref()
            .is_some_and(|p| p.visibility == Visibility::Public && !p.is_verified())
    }

    /// The user is not a member of the account that owns the app.
    pub fn outsider(&self, memberships: &[AccountMembership]) -> bool {
        let owner = self.client.owner_account_id.as_deref();
        !memberships
            .iter()
            .any(|m| owner == Some(m.account.id.as_str()))
    }

    fn own(&self, account_id: &str) -> bool {
        self.client.owner_account_id.as_deref() == Some(account_id)
    }
}

/// The rules of the decision, over the permission catalog. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Rules {
    catalog: Arc<Catalog>,
    /// Hosts whose metadata-document clients may hold sensitive scopes.
    trusted_hosts: Arc<Vec<String>>,
}

impl Rules {
    pub fn new(catalog: Arc<Catalog>, trusted_hosts: Arc<Vec<String>>) -> Self {
        Self {
            catalog,
            trusted_hosts,
        }
    }

    /// An external app whose host the operator trusts.
    fn trusted(&self, app: &AppStanding) -> bool {
        app.document_host()
            .is_some_and(|h| self.trusted_hosts.contains(&h))
    }

    /// The catalog scopes an external client from `host` (a metadata document's) may hold:
    /// normal ones, and sensitive ones from a trusted host; never restricted ones.
    pub fn external_scope(&self, host: Option<&str>) -> Scope {
        let trusted = host.is_some_and(|h| self.trusted_hosts.iter().any(|t| t == h));
        Scope::from_tokens(
            self.catalog
                .all()
                .iter()
                .filter(|s| self.catalog.refusal(&s.name, trusted, &[]).is_none())
                .map(|s| s.name.as_str()),
        )
        .unwrap_or_default()
    }

    /// Why the app may not be authorized by this user at all, whatever the scopes: it is
    /// suspended, or private to another account.
    pub fn app_refusal(
        &self,
        app: &AppStanding,
        memberships: &[AccountMembership],
    ) -> Option<String> {
        if app.client.status != ClientStatus::Active {
            return Some("This app is suspended.".into());
        }
        if app.private() && app.outsider(memberships) {
            return Some(
                "This app is private: only members of the account that owns it can authorize it."
                    .into(),
            );
        }
        None
    }

    /// Why the app may not hold `scope` now (the catalog's tiers, the operator's approvals).
    pub fn scope_refusal(&self, app: &AppStanding, scope: &str) -> Option<String> {
        let approved: &[String] = app
            .profile
            .as_ref()
            .map_or(&[], |p| p.approved_restricted.as_slice());
        if self.catalog.get(scope).is_none() {
            return Some(format!(
                "This app asks for a permission that does not exist ({scope})."
            ));
        }
        if app.external() {
            return self
                .catalog
                .refusal(scope, self.trusted(app), &[])
                .map(|reason| format!("This app may not ask for {scope}: {reason}."));
        }
        // Apps made through the admin API have no profile: the operator vouches for them.
        app.profile.as_ref()?;
        self.catalog
            .refusal(scope, app.verified(), approved)
            .map(|reason| format!("This app may not ask for {scope}: {reason}."))
    }

    /// Why the user may not lend `scopes` of the app on the account of `membership`: the
    /// account's policy, or a scope the user's own role there does not hold.
    pub fn account_refusal(
        &self,
        app: &AppStanding,
        membership: &AccountMembership,
        scopes: &Scope,
    ) -> Option<String> {
        let account = &membership.account;
        if account.block_third_party_apps && !app.first_party() && !app.own(&account.id) {
            return Some(format!(
                "{}'s admins do not allow third-party apps",
                account.name
            ));
        }
        let missing: Vec<String> = scopes
            .iter()
            .filter(|s| !membership.role.at_least(self.catalog.min_role(s)))
            .map(|s| format!("{s} needs the {} role", self.catalog.min_role(s).as_str()))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "you are {} in {}: {}",
                membership.role.as_str(),
                account.name,
                missing.join(", ")
            )
        })
    }

    /// The accounts a user may lend `scopes` of the app on now, of those `granted` (`*`: all
    /// the user's accounts). Every account a token acts for comes from here.
    pub fn lendable_accounts(
        &self,
        app: &AppStanding,
        memberships: &[AccountMembership],
        scopes: &Scope,
        granted: &[String],
    ) -> Vec<String> {
        if self.app_refusal(app, memberships).is_some()
            || scopes.iter().any(|s| self.scope_refusal(app, s).is_some())
        {
            return Vec::new();
        }
        let all = granted.iter().any(|a| a == "*");
        memberships
            .iter()
            .filter(|m| all || granted.contains(&m.account.id))
            .filter(|m| self.account_refusal(app, m, scopes).is_none())
            .map(|m| m.account.id.clone())
            .collect()
    }

    /// Whether a remembered grant of `granted_scope` on `granted_accounts` still holds for
    /// `requested` scopes: the skip of the consent screen is taken only then.
    pub fn remembered_grant_holds(
        &self,
        app: &AppStanding,
        memberships: &[AccountMembership],
        requested: &Scope,
        granted_accounts: &[String],
    ) -> bool {
        if granted_accounts.is_empty() {
            // A user of no account: only the app and the catalog decide.
            return memberships.is_empty()
                && self.app_refusal(app, memberships).is_none()
                && requested
                    .iter()
                    .all(|s| self.scope_refusal(app, s).is_none());
        }
        let lendable = self.lendable_accounts(app, memberships, requested, granted_accounts);
        if granted_accounts.iter().any(|a| a == "*") {
            // "All accounts" covers the accounts the rules allow today; at least one must.
            return !lendable.is_empty();
        }
        granted_accounts.iter().all(|a| lendable.contains(a))
    }
}

/// The decision as the engine asks it, for the accounts a token acts for and for consents
/// accepted through the admin API. Rules apply to the platform's own users; a subject the
/// platform does not know (an external login provider's) keeps what was granted.
#[derive(Debug, Clone)]
pub struct PlatformPolicy {
    pub store: Arc<dyn Store>,
    pub rules: Rules,
}

impl PlatformPolicy {
    /// The subject's memberships and the app's standing, when the subject is a platform user
    /// and the app exists.
    async fn facts(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<(Vec<AccountMembership>, AppStanding)>, StoreError> {
        let mut r = self.store.read().await?;
        if r.accounts().user(subject).await?.is_none() {
            return Ok(None);
        }
        let memberships = r.accounts().memberships_of(subject).await?;
        let app = AppStanding::load(r.as_mut(), client_id)
            .await
            .map_err(|e| match e {
                PlatformError::Store(s) => s,
                other => StoreError::Database(other.to_string()),
            })?;
        Ok(app.map(|a| (memberships, a)))
    }
}

#[async_trait]
impl AccountPolicy for PlatformPolicy {
    fn external_scope(&self, host: Option<&str>) -> Scope {
        self.rules.external_scope(host)
    }

    async fn lendable(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        granted: &[String],
    ) -> Result<Vec<String>, StoreError> {
        Ok(match self.facts(subject, client_id).await? {
            Some((memberships, app)) => {
                self.rules
                    .lendable_accounts(&app, &memberships, scope, granted)
            }
            None => granted.to_vec(),
        })
    }

    async fn consent_refusal(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        accounts: &[String],
    ) -> Result<Option<String>, StoreError> {
        let Some((memberships, app)) = self.facts(subject, client_id).await? else {
            return Ok(None);
        };
        if let Some(refusal) = self.rules.app_refusal(&app, &memberships) {
            return Ok(Some(refusal));
        }
        if let Some(refusal) = scope.iter().find_map(|s| self.rules.scope_refusal(&app, s)) {
            return Ok(Some(refusal));
        }
        for a in accounts.iter().filter(|a| *a != "*") {
            let Some(m) = memberships.iter().find(|m| &m.account.id == a) else {
                return Ok(Some(format!("the user is not a member of the account {a}")));
            };
            if let Some(refusal) = self.rules.account_refusal(&app, m, scope) {
                return Ok(Some(refusal));
            }
        }
        Ok(None)
    }
}
