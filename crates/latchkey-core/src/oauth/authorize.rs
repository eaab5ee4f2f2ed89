//! The authorization endpoint, on the browser side: validate the request, send the browser to
//! the login app, then — when it comes back with a verifier — to the consent app, then to the
//! client with a code.
//!
//! Nothing is ever redirected before the client and its redirect URI are validated; errors before
//! that are shown on a page. Every redirect to the client carries `iss` (RFC 9207).

use latchkey_types::flow::OidcContext;
use latchkey_types::{ErrorCode, Scope};

use super::flow::{AuthRequest, FlowData, FlowRecord, FlowState};
use super::params::{ParamError, Params};
use super::pkce;
use super::records::{
    AuthorizationCode, CodeData, Grant, GrantData, LoginSession, LoginSessionData, TokenClaims,
};
use super::{Engine, EngineSettings};
use crate::audit::{Actor, AuditEntry};
use crate::client::{Client, GrantType, redirect_uri_matches};
use crate::crypto::{TokenKind, lookup_hash, lookup_key};
use crate::entropy::EntropyExt as _;
use crate::secret::{REDACTED, SecretString};
use crate::store::StoreWrites as _;
use crate::store::{ConsentCompleted, ConsentCompletion, FlowKey, FlowStep, StoreError};

const MAX_STATE_LEN: usize = 1024;
const MAX_NONCE_LEN: usize = 512;
const MAX_HINT_LEN: usize = 512;
/// The longest `max_age` accepted: ten years.
const MAX_MAX_AGE: i64 = 315_360_000;

/// The cookies of the browser that matter to the flow.
#[derive(Debug, Clone, Default)]
pub struct BrowserCookies {
    /// Binds flows to this browser.
    pub csrf: Option<SecretString>,
    /// A remembered login.
    pub session: Option<SecretString>,
}

/// What to do with the browser's session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCookie {
    /// Set it; `max_age` in seconds.
    Set {
        value: SecretString,
        max_age: i64,
    },
    Clear,
}

/// The authorization endpoint's answer.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// Send the browser to `location`, setting the given cookies.
    Redirect {
        location: String,
        csrf: Option<SecretString>,
        session: Option<SessionCookie>,
    },
    /// Show an error page; nothing is redirected.
    ErrorPage {
        code: ErrorCode,
        description: String,
    },
}

/// A redirect's location carries a code or a challenge in its query: `Debug` shows where it
/// goes, not what it carries.
impl std::fmt::Debug for AuthorizeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redirect {
                location,
                csrf,
                session,
            } => {
                let target = match location.find(['?', '#']) {
                    Some(i) => format!("{}{}{}", &location[..i], &location[i..=i], REDACTED),
                    None => location.clone(),
                };
                f.debug_struct("Redirect")
                    .field("location", &target)
                    .field("csrf", csrf)
                    .field("session", session)
                    .finish()
            }
            Self::ErrorPage { code, description } => f
                .debug_struct("ErrorPage")
                .field("code", code)
                .field("description", description)
                .finish(),
        }
    }
}

fn page(code: ErrorCode, description: impl Into<String>) -> AuthorizeOutcome {
    AuthorizeOutcome::ErrorPage {
        code,
        description: description.into(),
    }
}

/// Where the client's errors and codes go.
struct Reply<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl Reply<'_> {
    fn redirect(&self, pairs: &[(&str, &str)]) -> AuthorizeOutcome {
        let Ok(mut url) = url::Url::parse(self.redirect_uri) else {
            return page(
                ErrorCode::InvalidRequest,
                "The registered redirect URI is not valid.",
            );
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(state) = self.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", self.issuer);
        }
        AuthorizeOutcome::Redirect {
            location: url.into(),
            csrf: None,
            session: None,
        }
    }

    fn error(&self, code: ErrorCode, description: &str) -> AuthorizeOutcome {
        self.redirect(&[("error", code.as_str()), ("error_description", description)])
    }
}

fn param<'p>(params: &'p Params, name: &str) -> Result<Option<&'p str>, String> {
    params.get(name).map_err(|e| e.to_string())
}

fn bounded<'p>(params: &'p Params, name: &str, max: usize) -> Result<Option<&'p str>, String> {
    match param(params, name)? {
        Some(v) if v.len() > max => Err(format!("{name} is longer than {max} characters")),
        other => Ok(other),
    }
}

fn words(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The redirect URI of a request by `client`: the one given, if it matches a registered one
/// (exactly, or up to the port of a loopback IP literal), else the only registered one. The
/// boolean says whether the request named it. Anything wrong is shown, never redirected.
pub fn choose_redirect_uri(
    client: &Client,
    params: &Params,
) -> Result<(String, bool), AuthorizeOutcome> {
    let (redirect_uri, given) = match params.get("redirect_uri") {
        Err(_) => {
            return Err(page(
                ErrorCode::InvalidRequest,
                "redirect_uri was given more than once.",
            ));
        }
        Ok(Some(uri)) => match client
            .redirect_uris
            .iter()
            .find(|r| redirect_uri_matches(r, uri))
        {
            Some(_) => (uri.to_owned(), true),
            None => {
                return Err(page(
                    ErrorCode::InvalidRequest,
                    "The redirect_uri is not registered for this client.",
                ));
            }
        },
        Ok(None) => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            _ => {
                return Err(page(
                    ErrorCode::InvalidRequest,
                    "The request has no redirect_uri, and the client has more than one.",
                ));
            }
        },
    };
    Ok((redirect_uri, given))
}

/// Validates the rest of the request. Errors go back to the validated redirect URI.
fn validate(
    settings: &EngineSettings,
    params: &Params,
    client: &Client,
    redirect_uri: String,
    given: bool,
) -> Result<AuthRequest, (ErrorCode, String)> {
    let invalid = |m: String| (ErrorCode::InvalidRequest, m);
    if let Some(dup) = params.first_duplicate() {
        return Err(invalid(format!(
            "The parameter {dup} was given more than once."
        )));
    }
    // Every value is kept and some are echoed back: none may carry control characters.
    if let Some((name, _)) = params
        .pairs()
        .iter()
        .find(|(_, v)| v.chars().any(char::is_control))
    {
        return Err(invalid(format!(
            "The parameter {name} contains control characters."
        )));
    }
    let state = bounded(params, "state", MAX_STATE_LEN)
        .map_err(invalid)?
        .map(str::to_owned);
    match param(params, "response_type").map_err(invalid)? {
        None => return Err(invalid("The request has no response_type.".into())),
        Some("code") => {}
        Some(_) => {
            return Err((
                ErrorCode::UnsupportedResponseType,
                "Only the code response type is supported.".into(),
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err((
            ErrorCode::UnauthorizedClient,
            "The client may not use the authorization code grant.".into(),
        ));
    }
    if let Some(mode) = param(params, "response_mode").map_err(invalid)?
        && mode != "query"
    {
        return Err(invalid("Only the query response mode is supported.".into()));
    }
    if param(params, "request").map_err(invalid)?.is_some() {
        return Err((
            ErrorCode::RequestNotSupported,
            "Request objects are not supported.".into(),
        ));
    }
    if param(params, "request_uri").map_err(invalid)?.is_some() {
        return Err((
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported.".into(),
        ));
    }
    let scope = Scope::parse(param(params, "scope").map_err(invalid)?.unwrap_or_default())
        .map_err(|e| {
            (
                ErrorCode::InvalidScope,
                format!("The scope is malformed: {e}."),
            )
        })?;
    if let Some(s) = scope.difference(&client.scope).next() {
        return Err((
            ErrorCode::InvalidScope,
            format!("The client may not request the scope {s}."),
        ));
    }
    let audience = words(bounded(params, "audience", 4096).map_err(invalid)?);
    if let Some(a) = audience.iter().find(|a| !client.audience.contains(a)) {
        return Err(invalid(format!(
            "The client may not request the audience {a}."
        )));
    }
    let method = param(params, "code_challenge_method").map_err(invalid)?;
    let challenge = param(params, "code_challenge").map_err(invalid)?;
    match (challenge, method) {
        (Some(_), Some("S256")) => {}
        (Some(_) | None, Some("plain")) | (Some(_), None) => {
            return Err(invalid(
                "PKCE with the plain method is not allowed; use S256.".into(),
            ));
        }
        (_, Some(_)) => return Err(invalid("code_challenge_method must be S256.".into())),
        (None, None) => {
            if settings.pkce_enforced
                || (client.is_public() && settings.pkce_enforced_for_public_clients)
            {
                return Err(invalid(
                    "PKCE is required: send code_challenge with code_challenge_method=S256.".into(),
                ));
            }
        }
    }
    if let Some(c) = challenge
        && !pkce::valid_challenge(c)
    {
        return Err(invalid(
            "code_challenge must be 43 base64url characters (S256).".into(),
        ));
    }
    let nonce = bounded(params, "nonce", MAX_NONCE_LEN)
        .map_err(invalid)?
        .map(str::to_owned);
    let prompt = words(param(params, "prompt").map_err(invalid)?);
    if let Some(p) = prompt
        .iter()
        .find(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account"))
    {
        return Err(invalid(format!("The prompt value {p} is not supported.")));
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(invalid(
            "prompt=none cannot be combined with other values.".into(),
        ));
    }
    let max_age = match param(params, "max_age").map_err(invalid)? {
        None => None,
        Some(m) => Some(
            m.parse::<i64>()
                .ok()
                .filter(|m| (0..=MAX_MAX_AGE).contains(m))
                .ok_or_else(|| invalid("max_age must be a number of seconds.".into()))?,
        ),
    };
    let display = param(params, "display")
        .map_err(invalid)?
        .map(str::to_owned);
    if let Some(d) = &display
        && !matches!(d.as_str(), "page" | "popup" | "touch" | "wap")
    {
        return Err(invalid("display must be page, popup, touch or wap.".into()));
    }
    let oidc = OidcContext {
        acr_values: words(bounded(params, "acr_values", MAX_HINT_LEN).map_err(invalid)?),
        display,
        id_token_hint_claims: None,
        login_hint: bounded(params, "login_hint", MAX_HINT_LEN)
            .map_err(invalid)?
            .map(str::to_owned),
        ui_locales: words(bounded(params, "ui_locales", MAX_HINT_LEN).map_err(invalid)?),
    };
    if param(params, "id_token_hint").map_err(invalid)?.is_some() {
        return Err(invalid("id_token_hint is not supported.".into()));
    }
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_given: given,
        scope,
        audience,
        state,
        nonce,
        code_challenge: challenge.map(str::to_owned),
        prompt,
        max_age,
        oidc,
        query: params.encode_without(&["login_verifier", "consent_verifier"]),
    })
}

/// Checks an authorization request by a known, active `client`: its redirect URI first (errors
/// are shown on a page), then everything else (errors go to that redirect URI, with `state` when
/// it was given once and is of a sane size, and `iss`). Pure: no storage, no clock.
pub fn check_request(
    settings: &EngineSettings,
    params: &Params,
    client: &Client,
) -> Result<AuthRequest, AuthorizeOutcome> {
    let (redirect_uri, given) = choose_redirect_uri(client, params)?;
    validate(settings, params, client, redirect_uri.clone(), given).map_err(
        |(code, description)| {
            let state = params
                .get("state")
                .ok()
                .flatten()
                .filter(|s| s.len() <= MAX_STATE_LEN);
            let reply = Reply {
                redirect_uri: &redirect_uri,
                state,
                issuer: &settings.issuer,
            };
            reply.error(code, &description)
        },
    )
}

impl Engine {
    /// `GET|POST /oauth2/auth`.
    pub async fn authorize(
        &self,
        params: &Params,
        cookies: &BrowserCookies,
    ) -> Result<AuthorizeOutcome, StoreError> {
        if let Ok(Some(v)) = params.get("login_verifier") {
            return self.after_login(params, v, cookies).await;
        }
        if let Ok(Some(v)) = params.get("consent_verifier") {
            return self.after_consent(params, v, cookies).await;
        }
        if params.get("login_verifier").is_err() || params.get("consent_verifier").is_err() {
            return Ok(page(
                ErrorCode::InvalidRequest,
                "A verifier was given more than once.",
            ));
        }
        self.start(params, cookies).await
    }

    /// Looks up the client of the request; anything wrong here is shown, not redirected.
    async fn client_of(
        &self,
        params: &Params,
    ) -> Result<Result<Client, AuthorizeOutcome>, StoreError> {
        let client_id = match params.get("client_id") {
            Err(ParamError::Duplicate(_)) => {
                return Ok(Err(page(
                    ErrorCode::InvalidRequest,
                    "client_id was given more than once.",
                )));
            }
            Err(e) => return Ok(Err(page(ErrorCode::InvalidRequest, e.to_string()))),
            Ok(None) => {
                return Ok(Err(page(
                    ErrorCode::InvalidRequest,
                    "The request has no client_id.",
                )));
            }
            Ok(Some(id)) if id.len() > 255 => {
                return Ok(Err(page(
                    ErrorCode::InvalidClient,
                    "The client is unknown.",
                )));
            }
            Ok(Some(id)) => id,
        };
        let Some(client) = self.deps.store.client(client_id).await? else {
            return Ok(Err(page(
                ErrorCode::InvalidClient,
                "The client is unknown.",
            )));
        };
        if !client.is_active() {
            return Ok(Err(page(
                ErrorCode::InvalidClient,
                "This application has been suspended.",
            )));
        }
        Ok(Ok(client))
    }

    async fn start(
        &self,
        params: &Params,
        cookies: &BrowserCookies,
    ) -> Result<AuthorizeOutcome, StoreError> {
        let client = match self.client_of(params).await? {
            Ok(c) => c,
            Err(outcome) => return Ok(outcome),
        };
        let issuer = self.settings.issuer.clone();
        let request = match check_request(&self.settings, params, &client) {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        let reply = Reply {
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
            issuer: &issuer,
        };
        let now = self.deps.clock.now();

        // A remembered login counts unless the request asks for a fresh one.
        let forced = request
            .prompt
            .iter()
            .any(|p| p == "login" || p == "select_account");
        let session = match cookies
            .session
            .as_ref()
            .map(SecretString::expose)
            .filter(|c| c.len() <= 128)
        {
            Some(cookie) => {
                self.deps
                    .store
                    .read()
                    .await?
                    .login_sessions()
                    .by_cookie(&lookup_key(cookie), now)
                    .await?
            }
            None => None,
        };
        let session = session.filter(|s| {
            request
                .max_age
                .is_none_or(|m| now - s.authenticated_at <= m)
        });
        let skip = !forced && session.is_some();
        if request.prompt.iter().any(|p| p == "none") && !skip {
            return Ok(reply.error(ErrorCode::LoginRequired, "The user is not logged in."));
        }

        let existing = cookies
            .csrf
            .as_ref()
            .map(SecretString::expose)
            .filter(|c| (32..=128).contains(&c.len()));
        let new_csrf = existing.is_none().then(|| self.deps.entropy.token());
        let csrf_value = existing
            .map(str::to_owned)
            .or_else(|| new_csrf.clone())
            .unwrap_or_default();
        let challenge = self.deps.mint_lookup_value();
        let session = session.filter(|_| skip);
        let flow = FlowRecord {
            id: self.deps.ordered_id(),
            client_id: client.id.clone(),
            state: FlowState::LoginRequested,
            login_challenge: challenge.key,
            login_verifier: None,
            consent_challenge: None,
            consent_verifier: None,
            csrf: lookup_hash(&csrf_value),
            subject: session.as_ref().map(|s| s.subject.clone()),
            data: FlowData {
                request,
                login_skip: skip,
                login_session_id: session.as_ref().map(|s| s.id.clone()),
                authenticated_at: session.as_ref().map(|s| s.authenticated_at),
                login: None,
                consent_skip: false,
                consent: None,
                denial: None,
            },
            requested_at: now,
            updated_at: now,
            expires_at: now + self.settings.flow_ttl,
        };
        self.deps.store.insert_flow(flow).await?;
        Ok(AuthorizeOutcome::Redirect {
            location: with_param(
                &self.settings.login_url,
                "login_challenge",
                &challenge.value,
            ),
            csrf: new_csrf.map(SecretString::from),
            session: None,
        })
    }

    /// Looks up the flow a verifier belongs to and checks it may continue in this browser.
    async fn flow_for_verifier(
        &self,
        params: &Params,
        key: FlowKey,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<Result<FlowRecord, AuthorizeOutcome>, StoreError> {
        let expired = || {
            page(
                ErrorCode::InvalidRequest,
                "This sign-in link has expired or was already used. Start again from the application.",
            )
        };
        if verifier.len() > 128 {
            return Ok(Err(expired()));
        }
        let Some(flow) = self.deps.store.flow(key, &lookup_key(verifier)).await? else {
            return Ok(Err(expired()));
        };
        let csrf_ok = cookies
            .csrf
            .as_ref()
            .map(SecretString::expose)
            .is_some_and(|c| crate::secret::ct_eq(lookup_hash(c).as_bytes(), flow.csrf.as_bytes()));
        if !csrf_ok {
            return Ok(Err(page(
                ErrorCode::AccessDenied,
                "This sign-in was started in another browser, or its cookies were blocked. Start again from the application.",
            )));
        }
        if params.get("client_id").ok().flatten() != Some(flow.client_id.as_str()) {
            return Ok(Err(page(
                ErrorCode::InvalidRequest,
                "The verifier belongs to another client.",
            )));
        }
        if flow.expires_at <= self.deps.clock.now() {
            return Ok(Err(expired()));
        }
        Ok(Ok(flow))
    }

    async fn after_login(
        &self,
        params: &Params,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<AuthorizeOutcome, StoreError> {
        let mut flow = match self
            .flow_for_verifier(params, FlowKey::LoginVerifier, verifier, cookies)
            .await?
        {
            Ok(f) => f,
            Err(outcome) => return Ok(outcome),
        };
        let from = flow.state;
        let issuer = self.settings.issuer.clone();
        let request = flow.data.request.clone();
        let reply = Reply {
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
            issuer: &issuer,
        };
        let now = self.deps.clock.now();
        match from {
            FlowState::LoginRejected => {
                let denial = flow.data.denial.clone().unwrap_or(super::flow::Denial {
                    error: ErrorCode::AccessDenied,
                    description: "The login was rejected.".into(),
                });
                flow.state = FlowState::Done;
                flow.updated_at = now;
                let step = FlowStep {
                    flow,
                    from,
                    session: None,
                };
                if !self.deps.store.advance_flow(step).await? {
                    return Ok(page(
                        ErrorCode::InvalidRequest,
                        "This sign-in link was already used.",
                    ));
                }
                return Ok(reply.error(denial.error, &denial.description));
            }
            FlowState::LoginAccepted => {}
            _ => {
                return Ok(page(
                    ErrorCode::InvalidRequest,
                    "This sign-in link was already used. Start again from the application.",
                ));
            }
        }
        let Some(login) = flow.data.login.clone() else {
            return Ok(page(ErrorCode::ServerError, "The login has no outcome."));
        };

        // The login session: extend the remembered one, or create one (sid for the ID token).
        let mut session_cookie = None;
        let mut new_session = None;
        if flow.data.login_skip {
            if login.extend_session_lifespan
                && let Some(sid) = &flow.data.login_session_id
            {
                let mut tx = self.deps.store.begin().await?;
                tx.login_sessions()
                    .extend(sid, now + self.remember_for(login.remember_for))
                    .await?;
                tx.commit().await?;
            }
        } else {
            let cookie = self.deps.mint_lookup_value();
            let session = LoginSession {
                id: self.deps.ordered_id(),
                cookie_hash: cookie.key,
                subject: login.subject.clone(),
                authenticated_at: now,
                remember: login.remember,
                data: LoginSessionData {
                    acr: login.acr.clone(),
                    amr: login.amr.clone(),
                    identity_provider_session_id: login.identity_provider_session_id.clone(),
                },
                created_at: now,
                expires_at: now
                    + if login.remember {
                        self.remember_for(login.remember_for)
                    } else {
                        self.settings.flow_ttl
                    },
            };
            session_cookie = Some(if login.remember {
                SessionCookie::Set {
                    value: SecretString::new(cookie.value),
                    max_age: session.expires_at - now,
                }
            } else {
                SessionCookie::Clear
            });
            flow.data.login_session_id = Some(session.id.clone());
            flow.data.authenticated_at = Some(now);
            new_session = Some(session);
        }

        // Consent: skip when a remembered grant covers the request.
        let forced = request.prompt.iter().any(|p| p == "consent");
        let skip = if forced {
            false
        } else {
            let grant = self
                .deps
                .store
                .active_grant(&login.subject, &flow.client_id)
                .await?;
            grant.is_some_and(|g| {
                g.remember
                    && g.remember_until.is_none_or(|t| t > now)
                    && request.scope.is_subset_of(&g.scope)
                    && request.audience.iter().all(|a| g.audience.contains(a))
            })
        };
        let prompt_none = request.prompt.iter().any(|p| p == "none");
        let challenge = self.deps.mint_lookup_value();
        flow.state = if prompt_none && !skip {
            FlowState::Done
        } else {
            FlowState::ConsentRequested
        };
        flow.consent_challenge = Some(challenge.key);
        flow.data.consent_skip = skip;
        flow.updated_at = now;
        let step = FlowStep {
            flow,
            from,
            session: new_session,
        };
        if !self.deps.store.advance_flow(step).await? {
            return Ok(page(
                ErrorCode::InvalidRequest,
                "This sign-in link was already used. Start again from the application.",
            ));
        }
        if prompt_none && !skip {
            let mut out = reply.error(
                ErrorCode::ConsentRequired,
                "The user has not consented to this request.",
            );
            if let AuthorizeOutcome::Redirect { session, .. } = &mut out {
                *session = session_cookie;
            }
            return Ok(out);
        }
        Ok(AuthorizeOutcome::Redirect {
            location: with_param(
                &self.settings.consent_url,
                "consent_challenge",
                &challenge.value,
            ),
            csrf: None,
            session: session_cookie,
        })
    }

    fn remember_for(&self, requested: i64) -> i64 {
        if requested <= 0 {
            self.settings.auth_session_ttl
        } else {
            requested.min(self.settings.auth_session_ttl)
        }
    }

    async fn after_consent(
        &self,
        params: &Params,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<AuthorizeOutcome, StoreError> {
        let mut flow = match self
            .flow_for_verifier(params, FlowKey::ConsentVerifier, verifier, cookies)
            .await?
        {
            Ok(f) => f,
            Err(outcome) => return Ok(outcome),
        };
        let from = flow.state;
        let issuer = self.settings.issuer.clone();
        let request = flow.data.request.clone();
        let reply = Reply {
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
            issuer: &issuer,
        };
        let now = self.deps.clock.now();
        if !matches!(
            from,
            FlowState::ConsentAccepted | FlowState::ConsentRejected
        ) {
            return Ok(page(
                ErrorCode::InvalidRequest,
                "This consent link was already used. Start again from the application.",
            ));
        }
        flow.state = FlowState::Done;
        flow.updated_at = now;
        let (Some(consent), Some(login), FlowState::ConsentAccepted) =
            (flow.data.consent.clone(), flow.data.login.clone(), from)
        else {
            let denial = flow.data.denial.clone().unwrap_or(super::flow::Denial {
                error: ErrorCode::AccessDenied,
                description: "The user denied the request.".into(),
            });
            let step = FlowStep {
                flow,
                from,
                session: None,
            };
            if !self.deps.store.advance_flow(step).await? {
                return Ok(consent_link_used());
            }
            return Ok(reply.error(denial.error, &denial.description));
        };
        // The client is not read here: the store checks that it is still active, and fills the
        // audit entry's account with its owner, in the same unit of work as the grant.
        let client_id = flow.client_id.clone();
        let grant = Grant {
            id: self.deps.ordered_id(),
            subject: login.subject.clone(),
            client_id: client_id.clone(),
            scope: consent.grant_scope.clone(),
            audience: consent.grant_audience.clone(),
            accounts: consent.accounts.clone(),
            session_access_token: consent.session_access_token.clone(),
            session_id_token: consent.session_id_token.clone(),
            remember: consent.remember,
            remember_until: (consent.remember && consent.remember_for > 0)
                .then(|| now + consent.remember_for),
            login_session_id: flow.data.login_session_id.clone(),
            data: GrantData {
                consent_request_id: flow.id.clone(),
                requested_scope: request.scope.to_vec(),
                requested_audience: request.audience.clone(),
                remember_for: consent.remember_for,
                acr: login.acr.clone(),
                amr: login.amr.clone(),
                context: Some(consent.context.clone()).filter(|c| !c.is_null()),
                request_url: self.request_url(&request),
            },
            created_at: now,
            updated_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        let code = self.deps.mint(TokenKind::AuthorizationCode);
        let record = AuthorizationCode {
            code_hash: code.hash.clone(),
            client_id: client_id.clone(),
            // The grant's id is the one written (see `ConsentCompletion`).
            grant_id: grant.id.clone(),
            family_id: self.deps.ordered_id(),
            data: CodeData {
                redirect_uri: request.redirect_uri.clone(),
                redirect_uri_given: request.redirect_uri_given,
                code_challenge: request.code_challenge.clone(),
                nonce: request.nonce.clone(),
                subject: login.subject.clone(),
                scope: consent.grant_scope.clone(),
                audience: consent.grant_audience.clone(),
                claims: TokenClaims {
                    auth_time: flow.data.authenticated_at.unwrap_or(now),
                    acr: login.acr.clone(),
                    amr: login.amr.clone(),
                    sid: flow.data.login_session_id.clone(),
                    access_token: consent.session_access_token.clone(),
                    id_token: consent.session_id_token.clone(),
                    accounts: consent.accounts.clone(),
                },
            },
            created_at: now,
            expires_at: now + self.settings.auth_code_ttl,
            consumed_at: None,
        };
        let audit = AuditEntry {
            id: self.deps.ordered_id(),
            occurred_at: now,
            actor: Actor {
                kind: "user".into(),
                id: Some(login.subject.clone()),
            },
            // Filled by the store (see `ConsentCompletion`).
            account_id: None,
            action: "grant.create".into(),
            target_kind: "grant".into(),
            target_id: grant.id.clone(),
            details: serde_json::json!({
                "client_id": client_id,
                "scope": consent.grant_scope.to_string(),
                "accounts": consent.accounts,
            }),
        };
        let completion = ConsentCompletion {
            step: FlowStep {
                flow,
                from,
                session: None,
            },
            grant,
            code: record,
            audit,
            user_cap: consent.user_cap,
        };
        match self.deps.store.complete_consent(completion).await? {
            ConsentCompleted::Written { .. } => {}
            ConsentCompleted::FlowUsed => return Ok(consent_link_used()),
            ConsentCompleted::ClientGone => return Ok(client_gone()),
            ConsentCompleted::AtUserCap => return Ok(at_user_cap()),
        }
        let scope = consent.grant_scope.to_string();
        Ok(reply.redirect(&[("code", &code.value), ("scope", &scope)]))
    }
}

fn consent_link_used() -> AuthorizeOutcome {
    page(
        ErrorCode::InvalidRequest,
        "This consent link was already used.",
    )
}

fn at_user_cap() -> AuthorizeOutcome {
    page(
        ErrorCode::AccessDenied,
        "This app is not verified and already has as many users as an unverified app may have.",
    )
}

fn client_gone() -> AuthorizeOutcome {
    page(
        ErrorCode::InvalidClient,
        "This application is no longer available.",
    )
}

/// `base` with one more query parameter.
fn with_param(base: &str, name: &str, value: &str) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair(name, value);
            u.into()
        }
        Err(_) => format!("{base}?{name}={value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_where_a_redirect_goes_but_no_code_or_cookie() {
        let out = AuthorizeOutcome::Redirect {
            location: "https://app.example/cb?code=lk_ac_code-secret&state=s&iss=x".into(),
            csrf: Some(SecretString::new("csrf-cookie-secret")),
            session: Some(SessionCookie::Set {
                value: SecretString::new("session-cookie-secret"),
                max_age: 60,
            }),
        };
        let cookies = BrowserCookies {
            csrf: Some(SecretString::new("csrf-cookie-secret")),
            session: Some(SecretString::new("session-cookie-secret")),
        };
        for shown in [
            format!("{out:?}"),
            format!("{out:#?}"),
            format!("{cookies:?}"),
        ] {
            for secret in ["code-secret", "csrf-cookie-secret", "session-cookie-secret"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        assert!(format!("{out:?}").contains("https://app.example/cb?<redacted>"));
        let page = page(ErrorCode::InvalidRequest, "no");
        assert!(format!("{page:?}").contains("InvalidRequest"));
    }
}
