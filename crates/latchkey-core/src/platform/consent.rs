//! The consent screen: who is asking (app, publisher, verification), where the user will be sent,
//! what for (grouped permissions, required and optional), and on which accounts. Accepting or
//! denying goes through the engine's consent protocol.

use latchkey_types::Scope;
use latchkey_types::flow::{AcceptConsent, ConsentRequest, RedirectTo, RejectRequest};

use super::model::AccountMembership;
use super::policy::AppStanding;
use super::{Platform, PlatformError, Principal};
use crate::client::Client;
use crate::config::Sensitivity;

/// The publisher's standing, as the consent screen's shield shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shield {
    /// Made by the platform (or its operator).
    FirstParty,
    /// A third party whose domain is verified.
    Verified,
    /// A third party whose domain is not verified.
    Unverified,
}

impl Shield {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstParty => "first-party",
            Self::Verified => "verified",
            Self::Unverified => "unverified",
        }
    }
}

/// One permission in plain words.
#[derive(Debug, Clone)]
pub struct PermissionLine {
    pub scope: String,
    pub title: String,
    pub description: String,
    pub sensitivity: Sensitivity,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct PermissionGroup {
    pub name: String,
    pub permissions: Vec<PermissionLine>,
}

/// An account the user may pick.
#[derive(Debug, Clone)]
pub struct AccountChoice {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    /// Why it cannot be picked, when it cannot.
    pub blocked: Option<String>,
    /// Optional permissions the user's role there does not hold, and why: they are not lent on
    /// this account.
    pub missing: Option<String>,
}

/// Everything the consent screen shows.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub request: ConsentRequest,
    pub client: Client,
    pub app_name: String,
    pub logo_uri: String,
    pub shield: Shield,
    /// The verified (or claimed) publisher domain.
    pub publisher_domain: Option<String>,
    pub owner_account: Option<String>,
    /// Where the user is sent after deciding.
    pub redirect_host: String,
    /// Origins the browser may be sent to from the consent form (for the page's CSP).
    pub redirect_origins: Vec<String>,
    pub groups: Vec<PermissionGroup>,
    pub accounts: Vec<AccountChoice>,
    /// "All accounts" may be picked.
    pub all_accounts: bool,
    /// Why the app cannot be authorized at all, when it cannot.
    pub problem: Option<String>,
    /// An unverified app of another account: the user is warned on a page of its own before
    /// the consent screen.
    pub interstitial: bool,
    /// The cap of distinct users that applies to this user's consent (an unverified public app
    /// of another account), checked again when the grant is written.
    pub user_cap: Option<i64>,
    /// The app as the rules saw it.
    pub app: AppStanding,
    /// The resource servers the token will be for (RFC 8707): name (or URI) and URI.
    pub resources: Vec<(String, String)>,
    /// Who is asking, for a client named by its metadata document: the host of its URL.
    pub asking_host: Option<String>,
    /// Nobody vouches for the client (it registered itself or is named by its document): its
    /// name and logo are its own claims.
    pub external: bool,
    /// Every redirect URI of the client is on this computer (loopback).
    pub loopback_only: bool,
}

impl ConsentView {
    pub fn optional_scopes(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .flat_map(|g| g.permissions.iter())
            .filter(|p| !p.required)
            .map(|p| p.scope.as_str())
    }

    pub fn required_scopes(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .flat_map(|g| g.permissions.iter())
            .filter(|p| p.required)
            .map(|p| p.scope.as_str())
    }
}

/// What the user chose.
#[derive(Debug, Clone, Default)]
pub struct ConsentDecision {
    /// Optional scopes left ticked.
    pub optional_scopes: Vec<String>,
    /// Account ids, or `*` for all accounts.
    pub accounts: Vec<String>,
}

/// What the consent page does next.
#[derive(Debug)]
pub enum ConsentStart {
    /// The user already granted this: the engine was told, go on.
    Skip(RedirectTo),
    Show(Box<ConsentView>),
}

/// The origin of a redirect URI as a CSP source: `https://host:port`, or `scheme:` for a
/// private-use scheme.
pub fn csp_origin(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    let loopback = matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match u.scheme() {
        // A loopback redirect may use any port (RFC 8252 §7.3).
        "http" if loopback => u.host_str().map(|h| format!("http://{h}:*")),
        "http" | "https" => Some(u.origin().ascii_serialization()).filter(|o| o != "null"),
        s => Some(format!("{s}:")),
    }
}

fn redirect_uri_of(request: &ConsentRequest, client: &Client) -> String {
    url::Url::parse(&request.request_url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "redirect_uri")
                .map(|(_, v)| v.into_owned())
        })
        .or_else(|| client.redirect_uris.first().cloned())
        .unwrap_or_default()
}

impl Platform {
    /// The consent screen of `challenge` for the signed-in `principal`. The challenge must be
    /// the principal's own.
    pub async fn consent_start(
        &self,
        principal: &Principal,
        challenge: &str,
    ) -> Result<ConsentStart, PlatformError> {
        let request = self.engine.consent_request(challenge).await?;
        if request.subject != principal.user.id {
            return Err(PlatformError::Forbidden(
                "this authorization request belongs to another user; sign in as that user or start again from the app".into(),
            ));
        }
        if request.skip
            && let Some(redirect) = self
                .remembered_consent(principal, challenge, &request)
                .await?
        {
            return Ok(ConsentStart::Skip(redirect));
        }
        Ok(ConsentStart::Show(Box::new(
            self.consent_view(principal, request).await?,
        )))
    }

    /// The remembered grant's consent, given again without asking when it still holds under
    /// today's rules ([`Platform::remembered_grant_holds`]); `None` when the user must see the
    /// screen.
    async fn remembered_consent(
        &self,
        principal: &Principal,
        challenge: &str,
        request: &ConsentRequest,
    ) -> Result<Option<RedirectTo>, PlatformError> {
        let client_id = request.client.client_id.clone().unwrap_or_default();
        let mut r = self.deps.store.read().await?;
        let Some(grant) = r.grants().active(&request.subject, &client_id).await? else {
            return Ok(None);
        };
        let Some(app) = AppStanding::load(r.as_mut(), &client_id).await? else {
            return Ok(None);
        };
        drop(r);
        let requested = Scope::from_tokens(&request.requested_scope).unwrap_or_default();
        let scope = requested.intersection(&grant.scope);
        if !self
            .rules
            .remembered_grant_holds(&app, &principal.memberships, &scope, &grant.accounts)
        {
            return Ok(None);
        }
        let redirect = self
            .engine
            .accept_consent(
                challenge,
                &AcceptConsent {
                    grant_scope: scope.to_vec(),
                    grant_access_token_audience: request.requested_access_token_audience.clone(),
                    remember: true,
                    accounts: Some(grant.accounts.clone()),
                    ..AcceptConsent::default()
                },
            )
            .await?;
        Ok(Some(redirect))
    }

    async fn consent_view(
        &self,
        principal: &Principal,
        request: ConsentRequest,
    ) -> Result<ConsentView, PlatformError> {
        let client_id = request.client.client_id.clone().unwrap_or_default();
        let mut r = self.deps.store.read().await?;
        let app = AppStanding::load(r.as_mut(), &client_id)
            .await?
            .ok_or(PlatformError::NotFound("the app"))?;
        let outsider = app.outsider(&principal.memberships);
        let first_party = app.first_party();
        // An unverified public app may gain users only up to the cap; those it has keep it.
        let user_cap =
            (app.capped() && outsider && !first_party).then_some(self.settings.unverified_user_cap);
        let at_cap = match user_cap {
            Some(cap) => {
                r.apps().user_count(&client_id).await? >= cap
                    && r.grants()
                        .active(&request.subject, &client_id)
                        .await?
                        .is_none()
            }
            None => false,
        };
        drop(r);
        let AppStanding {
            client,
            profile,
            owner,
        } = app.clone();
        let shield = app.shield();
        let publisher_domain = profile
            .as_ref()
            .and_then(|p| p.domain.clone().filter(|_| p.is_verified()))
            .or_else(|| {
                url::Url::parse(&client.client_uri)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
            });
        let redirect_uri = redirect_uri_of(&request, &client);
        let redirect_host = url::Url::parse(&redirect_uri)
            .ok()
            .map(|u| match u.host_str() {
                Some(h) => u
                    .port()
                    .map_or_else(|| h.to_owned(), |p| format!("{h}:{p}")),
                None => format!("{}:", u.scheme()),
            })
            .unwrap_or_default();
        let redirect_origins = std::iter::once(&redirect_uri)
            .chain(client.redirect_uris.iter())
            .filter_map(|u| csp_origin(u))
            .collect();

        // Permissions, in catalog group order; unknown scopes are a problem.
        let requested = Scope::from_tokens(&request.requested_scope).unwrap_or_default();
        let optional = profile
            .as_ref()
            .map(|p| p.optional_scopes.clone())
            .unwrap_or_default();
        let mut problem = self.rules.app_refusal(&app, &principal.memberships);
        let mut groups: Vec<PermissionGroup> = Vec::new();
        for scope in requested.iter() {
            if let Some(refusal) = self.rules.scope_refusal(&app, scope) {
                problem.get_or_insert(refusal);
            }
            let Some(entry) = self.catalog.get(scope) else {
                continue;
            };
            let line = PermissionLine {
                scope: scope.to_owned(),
                title: entry.title.clone(),
                description: entry.description.clone(),
                sensitivity: entry.sensitivity,
                required: !optional.contains(scope),
            };
            match groups.iter_mut().find(|g| g.name == entry.group) {
                Some(g) => g.permissions.push(line),
                None => groups.push(PermissionGroup {
                    name: entry.group.clone(),
                    permissions: vec![line],
                }),
            }
        }
        let order = self.catalog.groups();
        groups.sort_by_key(|g| order.iter().position(|o| *o == g.name));

        // Accounts: each by the one decision, for the required permissions (an account that
        // cannot hold them cannot be picked) and the optional ones (not lent there).
        let lines = || groups.iter().flat_map(|g| g.permissions.iter());
        let required = Scope::from_tokens(lines().filter(|p| p.required).map(|p| &p.scope))
            .unwrap_or_default();
        let optional = Scope::from_tokens(lines().filter(|p| !p.required).map(|p| &p.scope))
            .unwrap_or_default();
        let accounts: Vec<AccountChoice> = principal
            .memberships
            .iter()
            .map(|m: &AccountMembership| AccountChoice {
                id: m.account.id.clone(),
                name: m.account.name.clone(),
                role: m.role.as_str(),
                blocked: self.rules.account_refusal(&app, m, &required),
                missing: self.rules.account_refusal(&app, m, &optional),
            })
            .collect();
        if at_cap {
            problem.get_or_insert_with(|| {
                format!(
                    "This app is not verified and already has the {} users an unverified app may have. Its developer must verify it before more people can use it.",
                    self.settings.unverified_user_cap
                )
            });
        }
        if !accounts.is_empty() && accounts.iter().all(|a| a.blocked.is_some()) {
            problem.get_or_insert_with(|| {
                let reasons: Vec<&str> = accounts
                    .iter()
                    .filter_map(|a| a.blocked.as_deref())
                    .collect();
                format!(
                    "You cannot authorize this app on any of your accounts: {}.",
                    reasons.join("; ")
                )
            });
        }
        let all_accounts = !accounts.is_empty() && accounts.iter().all(|a| a.blocked.is_none());
        let servers = &self.engine.settings().resources;
        let resources = request
            .requested_access_token_audience
            .iter()
            .map(|uri| {
                let name = servers
                    .get(uri)
                    .map_or_else(|| uri.clone(), |s| s.name.clone());
                (name, uri.clone())
            })
            .collect();
        let loopback_only = !client.redirect_uris.is_empty()
            && client.redirect_uris.iter().all(|u| {
                url::Url::parse(u)
                    .is_ok_and(|u| u.scheme() == "http" && crate::config::is_loopback_host(&u))
            });
        // The warning page comes first only when the app can be authorized at all.
        let interstitial = shield == Shield::Unverified && outsider && problem.is_none();
        Ok(ConsentView {
            app_name: if client.name.is_empty() {
                client.id.clone()
            } else {
                client.name.clone()
            },
            logo_uri: client.logo_uri.clone(),
            shield,
            publisher_domain,
            owner_account: owner.map(|a| a.name),
            redirect_host,
            redirect_origins,
            groups,
            accounts,
            all_accounts,
            problem,
            interstitial,
            user_cap,
            asking_host: app.document_host(),
            external: app.external(),
            loopback_only,
            resources,
            app,
            request,
            client,
        })
    }

    /// Authorize: grants the required scopes, the optional ones left ticked, on the chosen
    /// accounts.
    pub async fn consent_accept(
        &self,
        principal: &Principal,
        challenge: &str,
        decision: &ConsentDecision,
    ) -> Result<RedirectTo, PlatformError> {
        let request = self.engine.consent_request(challenge).await?;
        if request.subject != principal.user.id {
            return Err(PlatformError::Forbidden(
                "this authorization request belongs to another user".into(),
            ));
        }
        let view = self.consent_view(principal, request).await?;
        if let Some(problem) = &view.problem {
            return Err(PlatformError::Forbidden(problem.clone()));
        }
        let mut grant: Vec<String> = view.required_scopes().map(str::to_owned).collect();
        for s in &decision.optional_scopes {
            if !view.optional_scopes().any(|o| o == s) {
                return Err(PlatformError::invalid(
                    "scope",
                    format!("{s} was not requested as an optional permission"),
                ));
            }
            if !grant.contains(s) {
                grant.push(s.clone());
            }
        }
        // The one decision again, for what was picked: every picked account must hold every
        // permission lent.
        let lent = Scope::from_tokens(&grant).unwrap_or_default();
        for a in decision.accounts.iter().filter(|a| *a != "*") {
            if let Some(m) = principal.memberships.iter().find(|m| &m.account.id == a)
                && let Some(refusal) = self.rules.account_refusal(&view.app, m, &lent)
            {
                return Err(PlatformError::invalid("accounts", refusal));
            }
        }
        let accounts = if decision.accounts.iter().any(|a| a == "*") {
            if !view.all_accounts {
                return Err(PlatformError::invalid(
                    "accounts",
                    "\"all accounts\" is not available: some of your accounts do not allow this app",
                ));
            }
            vec!["*".to_owned()]
        } else {
            let mut out = Vec::new();
            for a in &decision.accounts {
                match view.accounts.iter().find(|c| &c.id == a) {
                    Some(c) if c.blocked.is_none() => {
                        if !out.contains(a) {
                            out.push(a.clone());
                        }
                    }
                    Some(c) => {
                        return Err(PlatformError::invalid(
                            "accounts",
                            c.blocked.clone().unwrap_or_default(),
                        ));
                    }
                    None => {
                        return Err(PlatformError::invalid(
                            "accounts",
                            "you can only pick accounts you are a member of",
                        ));
                    }
                }
            }
            out
        };
        if accounts.is_empty() && !view.accounts.is_empty() {
            return Err(PlatformError::invalid(
                "accounts",
                "pick at least one account (or all accounts)",
            ));
        }
        Ok(self
            .engine
            .accept_consent_capped(
                challenge,
                &AcceptConsent {
                    grant_scope: grant,
                    grant_access_token_audience: view
                        .request
                        .requested_access_token_audience
                        .clone(),
                    remember: true,
                    accounts: Some(accounts),
                    ..AcceptConsent::default()
                },
                view.user_cap,
            )
            .await?)
    }

    /// Deny: the app receives `access_denied`.
    pub async fn consent_deny(
        &self,
        principal: &Principal,
        challenge: &str,
    ) -> Result<RedirectTo, PlatformError> {
        let request = self.engine.consent_request(challenge).await?;
        if request.subject != principal.user.id {
            return Err(PlatformError::Forbidden(
                "this authorization request belongs to another user".into(),
            ));
        }
        Ok(self
            .engine
            .reject_consent(
                challenge,
                &RejectRequest {
                    error: Some("access_denied".into()),
                    error_description: Some("The user denied the request.".into()),
                    ..RejectRequest::default()
                },
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_origins() {
        assert_eq!(
            csp_origin("https://app.example.com/cb?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            csp_origin("http://127.0.0.1:8080/cb").as_deref(),
            Some("http://127.0.0.1:*")
        );
        assert_eq!(
            csp_origin("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
    }
}
