//! The authorization endpoint, on the browser side: validate the request, send the browser to
//! the login app, then — when it comes back with a verifier — to the consent app, then to the
//! client with a code.
//!
//! Nothing is ever redirected before the client and its redirect URI are validated; errors before
//! that are shown on a page. Every redirect to the client carries `iss` (RFC 9207).

use latchkey_types::flow::OidcContext;
use latchkey_types::{ErrorCode, Scope};

use super::error::AuthorizeError;
use super::flow::{AuthRequest, FlowData, FlowRecord, FlowState, LoginOutcome};
use super::params::{ParamError, Params};
use super::pkce;
use super::records::{
    AuthorizationCode, CodeData, Grant, GrantData, LoginSession, LoginSessionData, TokenClaims,
};
use super::{Engine, EngineSettings};
use crate::audit::{Actor, AuditEntry};
use crate::client::{Client, GrantType, redirect_uri_matches};
use crate::clock::UnixTime;
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
    ErrorPage(AuthorizeError),
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
            Self::ErrorPage(error) => f.debug_tuple("ErrorPage").field(error).finish(),
        }
    }
}

pub(crate) fn page(error: AuthorizeError) -> AuthorizeOutcome {
    AuthorizeOutcome::ErrorPage(error)
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
            return page(AuthorizeError::RegisteredRedirectUriInvalid);
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

    /// Sends `code` and `description` to the client: a refusal, or the denial the login or
    /// consent app chose.
    fn error(&self, code: ErrorCode, description: &str) -> AuthorizeOutcome {
        self.redirect(&[("error", code.as_str()), ("error_description", description)])
    }

    /// Sends a refusal to the client, with its code and fixed description.
    fn refuse(&self, error: &AuthorizeError) -> AuthorizeOutcome {
        self.error(error.code(), &error.to_string())
    }
}

fn param<'p>(params: &'p Params, name: &str) -> Result<Option<&'p str>, AuthorizeError> {
    Ok(params.get(name)?)
}

fn bounded<'p>(
    params: &'p Params,
    name: &'static str,
    max: usize,
) -> Result<Option<&'p str>, AuthorizeError> {
    match param(params, name)? {
        Some(v) if v.len() > max => Err(AuthorizeError::TooLong { name, max }),
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
        Err(_) => return Err(page(AuthorizeError::RedirectUriRepeated)),
        Ok(Some(uri)) => match client
            .redirect_uris
            .iter()
            .find(|r| redirect_uri_matches(r, uri))
        {
            Some(_) => (uri.to_owned(), true),
            None => return Err(page(AuthorizeError::RedirectUriNotRegistered)),
        },
        Ok(None) => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            _ => return Err(page(AuthorizeError::RedirectUriMissing)),
        },
    };
    Ok((redirect_uri, given))
}

/// Validates the rest of the request. Errors go back to the validated redirect URI. The checks
/// run in this order, and the first problem is the one reported.
fn validate(
    settings: &EngineSettings,
    params: &Params,
    client: &Client,
    redirect_uri: String,
    given: bool,
) -> Result<AuthRequest, AuthorizeError> {
    check_parameters(params)?;
    let state = bounded(params, "state", MAX_STATE_LEN)?.map(str::to_owned);
    check_response(params, client)?;
    let scope = requested_scope(params, client)?;
    let audience = settings.resources.requested(params, client)?;
    // What the named resource servers accept (RFC 8707 §2): a token for one resource carries
    // none of another's scopes.
    let scope = settings.resources.scope_for(&scope, &audience);
    let code_challenge = code_challenge(settings, params, client)?;
    let nonce = bounded(params, "nonce", MAX_NONCE_LEN)?.map(str::to_owned);
    let prompt = prompt(params)?;
    let max_age = max_age(params)?;
    let oidc = oidc_context(params)?;
    Ok(AuthRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_given: given,
        scope,
        audience,
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        oidc,
        query: params.encode_without(&["login_verifier", "consent_verifier"]),
        device_code: None,
    })
}

/// No parameter is given twice, and none carries control characters: every value is kept and
/// some are echoed back.
fn check_parameters(params: &Params) -> Result<(), AuthorizeError> {
    if let Some(dup) = params.first_duplicate() {
        return Err(AuthorizeError::ParameterRepeated {
            name: dup.to_owned(),
        });
    }
    if let Some((name, _)) = params
        .pairs()
        .iter()
        .find(|(_, v)| v.chars().any(char::is_control))
    {
        return Err(AuthorizeError::ControlCharacters { name: name.clone() });
    }
    Ok(())
}

/// What the client asks back: a code, in the query, for a client that may use the code grant,
/// without a request object.
fn check_response(params: &Params, client: &Client) -> Result<(), AuthorizeError> {
    match param(params, "response_type")? {
        None => return Err(AuthorizeError::ResponseTypeMissing),
        Some("code") => {}
        Some(_) => return Err(AuthorizeError::UnsupportedResponseType),
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(AuthorizeError::UnauthorizedClient);
    }
    if let Some(mode) = param(params, "response_mode")?
        && mode != "query"
    {
        return Err(AuthorizeError::UnsupportedResponseMode);
    }
    if param(params, "request")?.is_some() {
        return Err(AuthorizeError::RequestObjectUnsupported);
    }
    if param(params, "request_uri")?.is_some() {
        return Err(AuthorizeError::RequestUriUnsupported);
    }
    Ok(())
}

/// The scope asked for, within the client's.
fn requested_scope(params: &Params, client: &Client) -> Result<Scope, AuthorizeError> {
    let scope = Scope::parse(param(params, "scope")?.unwrap_or_default()).map_err(|e| {
        AuthorizeError::ScopeMalformed {
            reason: e.to_string(),
        }
    })?;
    if let Some(s) = scope.difference(&client.scope).next() {
        return Err(AuthorizeError::ScopeNotAllowed {
            scope: s.to_owned(),
        });
    }
    Ok(scope)
}

/// The PKCE challenge: S256 only, and required when the settings say so for this client.
fn code_challenge(
    settings: &EngineSettings,
    params: &Params,
    client: &Client,
) -> Result<Option<String>, AuthorizeError> {
    let method = param(params, "code_challenge_method")?;
    let challenge = param(params, "code_challenge")?;
    match (challenge, method) {
        (Some(_), Some("S256")) => {}
        (Some(_) | None, Some("plain")) | (Some(_), None) => {
            return Err(AuthorizeError::PkcePlain);
        }
        (_, Some(_)) => return Err(AuthorizeError::PkceMethodUnsupported),
        (None, None) => {
            if settings.pkce_enforced
                || (client.is_public() && settings.pkce_enforced_for_public_clients)
            {
                return Err(AuthorizeError::PkceRequired);
            }
        }
    }
    if let Some(c) = challenge
        && !pkce::valid_challenge(c)
    {
        return Err(AuthorizeError::ChallengeMalformed);
    }
    Ok(challenge.map(str::to_owned))
}

/// The `prompt` values: known ones, and `none` alone.
fn prompt(params: &Params) -> Result<Vec<String>, AuthorizeError> {
    let prompt = words(param(params, "prompt")?);
    if let Some(p) = prompt
        .iter()
        .find(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account"))
    {
        return Err(AuthorizeError::PromptUnsupported { value: p.clone() });
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(AuthorizeError::PromptNoneCombined);
    }
    Ok(prompt)
}

/// `max_age`: seconds, up to ten years.
fn max_age(params: &Params) -> Result<Option<i64>, AuthorizeError> {
    param(params, "max_age")?
        .map(|m| {
            m.parse::<i64>()
                .ok()
                .filter(|m| (0..=MAX_MAX_AGE).contains(m))
                .ok_or(AuthorizeError::MaxAgeInvalid)
        })
        .transpose()
}

/// The OpenID Connect hints the login app gets: display, acr values, login hint, locales. An
/// ID token hint is not supported.
fn oidc_context(params: &Params) -> Result<OidcContext, AuthorizeError> {
    let display = param(params, "display")?.map(str::to_owned);
    if let Some(d) = &display
        && !matches!(d.as_str(), "page" | "popup" | "touch" | "wap")
    {
        return Err(AuthorizeError::DisplayInvalid);
    }
    let oidc = OidcContext {
        acr_values: words(bounded(params, "acr_values", MAX_HINT_LEN)?),
        display,
        id_token_hint_claims: None,
        login_hint: bounded(params, "login_hint", MAX_HINT_LEN)?.map(str::to_owned),
        ui_locales: words(bounded(params, "ui_locales", MAX_HINT_LEN)?),
    };
    if param(params, "id_token_hint")?.is_some() {
        return Err(AuthorizeError::IdTokenHintUnsupported);
    }
    Ok(oidc)
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
    validate(settings, params, client, redirect_uri.clone(), given).map_err(|error| {
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
        reply.refuse(&error)
    })
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
            return Ok(page(AuthorizeError::VerifierRepeated));
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
                return Ok(Err(page(AuthorizeError::ClientIdRepeated)));
            }
            Err(e) => return Ok(Err(page(e.into()))),
            Ok(None) => return Ok(Err(page(AuthorizeError::ClientIdMissing))),
            Ok(Some(id)) if crate::client::looks_like_metadata_url(id) => {
                return Ok(match self.document_client(id).await? {
                    Ok(c) if !c.is_active() => Err(page(AuthorizeError::ClientSuspended)),
                    Ok(c) => Ok(c),
                    Err(e) => Err(page(e)),
                });
            }
            Ok(Some(id)) if id.len() > 255 => return Ok(Err(page(AuthorizeError::UnknownClient))),
            Ok(Some(id)) => id,
        };
        let Some(client) = self.deps.store.client(client_id).await? else {
            return Ok(Err(page(AuthorizeError::UnknownClient)));
        };
        if !client.is_active() {
            return Ok(Err(page(AuthorizeError::ClientSuspended)));
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
        let request = match check_request(&self.settings, params, &client) {
            Ok(r) => r,
            Err(outcome) => return Ok(outcome),
        };
        self.begin_flow(request, cookies).await
    }

    /// Starts the flow of a validated request: a flow row, and the browser to the login app
    /// (with a CSRF cookie binding the flow to it, and `skip` when it has a remembered login
    /// the request allows).
    pub(crate) async fn begin_flow(
        &self,
        request: AuthRequest,
        cookies: &BrowserCookies,
    ) -> Result<AuthorizeOutcome, StoreError> {
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
            return Ok(self
                .reply_to(&request)
                .refuse(&AuthorizeError::LoginRequired));
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
            client_id: request.client_id.clone(),
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
        let expired = || page(AuthorizeError::LinkExpired);
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
            return Ok(Err(page(AuthorizeError::OtherBrowser)));
        }
        if params.get("client_id").ok().flatten() != Some(flow.client_id.as_str()) {
            return Ok(Err(page(AuthorizeError::VerifierOfAnotherClient)));
        }
        if flow.expires_at <= self.deps.clock.now() {
            return Ok(Err(expired()));
        }
        Ok(Ok(flow))
    }

    /// The browser is back from the login app: end a rejected login, or go on to consent.
    async fn after_login(
        &self,
        params: &Params,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<AuthorizeOutcome, StoreError> {
        let flow = match self
            .flow_for_verifier(params, FlowKey::LoginVerifier, verifier, cookies)
            .await?
        {
            Ok(f) => f,
            Err(outcome) => return Ok(outcome),
        };
        match flow.state {
            FlowState::LoginRejected => self.end_rejected_login(flow).await,
            FlowState::LoginAccepted => self.go_to_consent(flow).await,
            _ => Ok(page(AuthorizeError::LoginLinkUsed)),
        }
    }

    /// Where the client's errors and codes for `request` go.
    fn reply_to<'r>(&'r self, request: &'r AuthRequest) -> Reply<'r> {
        Reply {
            redirect_uri: &request.redirect_uri,
            state: request.state.as_deref(),
            issuer: &self.settings.issuer,
        }
    }

    /// A rejected login ends the flow; the client gets the login app's denial.
    async fn end_rejected_login(
        &self,
        mut flow: FlowRecord,
    ) -> Result<AuthorizeOutcome, StoreError> {
        let request = flow.data.request.clone();
        let denial = flow.data.denial.clone().unwrap_or(super::flow::Denial {
            error: ErrorCode::AccessDenied,
            description: "The login was rejected.".into(),
        });
        let Ok(from) = flow.advance(FlowState::Done, self.deps.clock.now()) else {
            return Ok(page(AuthorizeError::LoginLinkUsed));
        };
        let step = FlowStep {
            flow,
            from,
            session: None,
        };
        if !self.deps.store.advance_flow(step).await? {
            return Ok(page(AuthorizeError::LoginLinkUsed));
        }
        Ok(self
            .reply_to(&request)
            .error(denial.error, &denial.description))
    }

    /// An accepted login: its session, then the consent app — unless a remembered grant covers
    /// the request — or, with `prompt=none` and no such grant, `consent_required`.
    async fn go_to_consent(&self, mut flow: FlowRecord) -> Result<AuthorizeOutcome, StoreError> {
        let Some(login) = flow.data.login.clone() else {
            return Ok(page(AuthorizeError::LoginOutcomeMissing));
        };
        let now = self.deps.clock.now();
        let (session_cookie, new_session) = self.login_session(&mut flow, &login, now).await?;
        let request = flow.data.request.clone();
        let skip = self
            .consent_skippable(&request, &login.subject, &flow.client_id, now)
            .await?;
        let consent_required = request.prompt.iter().any(|p| p == "none") && !skip;
        let challenge = self.deps.mint_lookup_value();
        let to = if consent_required {
            FlowState::Done
        } else {
            FlowState::ConsentRequested
        };
        let Ok(from) = flow.advance(to, now) else {
            return Ok(page(AuthorizeError::LoginLinkUsed));
        };
        flow.consent_challenge = Some(challenge.key);
        flow.data.consent_skip = skip;
        let step = FlowStep {
            flow,
            from,
            session: new_session,
        };
        if !self.deps.store.advance_flow(step).await? {
            return Ok(page(AuthorizeError::LoginLinkUsed));
        }
        if consent_required {
            let mut out = self
                .reply_to(&request)
                .refuse(&AuthorizeError::ConsentRequired);
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

    /// The login session of an accepted login: the remembered one, extended when the login app
    /// asks, or a new one (its `sid` goes into the ID token). A new one comes with the cookie to
    /// set and is written with the flow's step.
    async fn login_session(
        &self,
        flow: &mut FlowRecord,
        login: &LoginOutcome,
        now: UnixTime,
    ) -> Result<(Option<SessionCookie>, Option<LoginSession>), StoreError> {
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
            return Ok((None, None));
        }
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
        let session_cookie = if login.remember {
            SessionCookie::Set {
                value: SecretString::new(cookie.value),
                max_age: session.expires_at - now,
            }
        } else {
            SessionCookie::Clear
        };
        flow.data.login_session_id = Some(session.id.clone());
        flow.data.authenticated_at = Some(now);
        Ok((Some(session_cookie), Some(session)))
    }

    /// Whether the consent may be skipped: not forced by `prompt=consent`, and a remembered,
    /// current grant of `subject` to the client covers the request's scope and audience.
    async fn consent_skippable(
        &self,
        request: &AuthRequest,
        subject: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        if request.prompt.iter().any(|p| p == "consent") {
            return Ok(false);
        }
        let grant = self.deps.store.active_grant(subject, client_id).await?;
        Ok(grant.is_some_and(|g| {
            g.remember
                && g.remember_until.is_none_or(|t| t > now)
                && request.scope.is_subset_of(&g.scope)
                && request.audience.iter().all(|a| g.audience.contains(a))
        }))
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
            return Ok(page(AuthorizeError::ConsentLinkUsed));
        }
        if flow.advance(FlowState::Done, now).is_err() {
            return Ok(consent_link_used());
        }
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
                    act: None,
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
        let device_code = request.device_code.clone().map(|hash| {
            let data = super::device::DeviceCodeData {
                scope: request.scope.clone(),
                audience: request.audience.clone(),
                authorization: None,
            };
            (crate::crypto::TokenHash(hash), data)
        });
        let is_device = device_code.is_some();
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
            device_code,
        };
        match self.deps.store.complete_consent(completion).await {
            Ok(ConsentCompleted::Written { .. }) => {}
            Ok(ConsentCompleted::FlowUsed) | Err(StoreError::Conflict(_)) => {
                return Ok(consent_link_used());
            }
            Ok(ConsentCompleted::ClientGone) => return Ok(client_gone()),
            Ok(ConsentCompleted::AtUserCap) => return Ok(at_user_cap()),
            Err(e) => return Err(e),
        }
        if is_device {
            // The device now gets its tokens when it polls; the user is told to go back to it.
            return Ok(AuthorizeOutcome::Redirect {
                location: self.settings.device_success_url.clone(),
                csrf: None,
                session: None,
            });
        }
        let scope = consent.grant_scope.to_string();
        Ok(reply.redirect(&[("code", &code.value), ("scope", &scope)]))
    }
}

fn consent_link_used() -> AuthorizeOutcome {
    page(AuthorizeError::ConsentLinkUsed)
}

fn at_user_cap() -> AuthorizeOutcome {
    page(AuthorizeError::AtUserCap)
}

fn client_gone() -> AuthorizeOutcome {
    page(AuthorizeError::ClientGone)
}

/// `base` with one more query parameter.
pub(crate) fn with_param(base: &str, name: &str, value: &str) -> String {
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
    use crate::config::Config;

    const REDIRECT: &str = "https://a.example/cb";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn settings() -> EngineSettings {
        EngineSettings::from_config(&Config::default(), "https://issuer.example")
    }

    fn client(json: &str) -> Client {
        crate::client::test_client("c1", &serde_json::from_str(json).expect("json"))
    }

    fn web_client() -> Client {
        client(&format!(
            r#"{{"redirect_uris":["{REDIRECT}","https://a.example/other"],"scope":"openid email","audience":["https://api.example"]}}"#
        ))
    }

    /// A valid request with `extra` added (a name given twice is given twice).
    fn params(extra: &[(&str, &str)]) -> Params {
        let base = [
            ("client_id", "c1"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s-1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let replaced: Vec<&str> = extra.iter().map(|(k, _)| *k).collect();
        Params::from_pairs(
            base.iter()
                .filter(|(k, _)| !replaced.contains(k))
                .chain(extra)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    fn refusal(extra: &[(&str, &str)]) -> AuthorizeError {
        validate(
            &settings(),
            &params(extra),
            &web_client(),
            REDIRECT.into(),
            true,
        )
        .expect_err("refused")
    }

    #[test]
    fn a_valid_request_is_accepted() {
        let request = check_request(&settings(), &params(&[]), &web_client()).expect("valid");
        assert_eq!(request.redirect_uri, REDIRECT);
        assert!(request.redirect_uri_given);
        assert_eq!(request.state.as_deref(), Some("s-1"));
        assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn each_refusal_is_its_own_error_with_its_code() {
        type Case = (Vec<(&'static str, &'static str)>, AuthorizeError, ErrorCode);
        let cases: Vec<Case> = vec![
            (
                vec![("response_type", "token")],
                AuthorizeError::UnsupportedResponseType,
                ErrorCode::UnsupportedResponseType,
            ),
            (
                vec![("response_type", "")],
                AuthorizeError::ResponseTypeMissing,
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("scope", "openid admin")],
                AuthorizeError::ScopeNotAllowed {
                    scope: "admin".into(),
                },
                ErrorCode::InvalidScope,
            ),
            (
                vec![("audience", "https://evil.example")],
                AuthorizeError::AudienceNotAllowed {
                    audience: "https://evil.example".into(),
                },
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("code_challenge_method", "plain")],
                AuthorizeError::PkcePlain,
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("code_challenge", "short")],
                AuthorizeError::ChallengeMalformed,
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("request", "eyJ")],
                AuthorizeError::RequestObjectUnsupported,
                ErrorCode::RequestNotSupported,
            ),
            (
                vec![("request_uri", "urn:x")],
                AuthorizeError::RequestUriUnsupported,
                ErrorCode::RequestUriNotSupported,
            ),
            (
                vec![("prompt", "none login")],
                AuthorizeError::PromptNoneCombined,
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("max_age", "-1")],
                AuthorizeError::MaxAgeInvalid,
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("state", "a\u{7}b")],
                AuthorizeError::ControlCharacters {
                    name: "state".into(),
                },
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("scope", "openid"), ("scope", "email")],
                AuthorizeError::ParameterRepeated {
                    name: "scope".into(),
                },
                ErrorCode::InvalidRequest,
            ),
        ];
        for (extra, error, code) in cases {
            let e = refusal(&extra);
            assert_eq!(e, error, "{extra:?}");
            assert_eq!(e.code(), code, "{extra:?}");
        }
        let long = "x".repeat(MAX_STATE_LEN + 1);
        assert_eq!(
            refusal(&[("state", &long)]),
            AuthorizeError::TooLong {
                name: "state",
                max: MAX_STATE_LEN
            }
        );
    }

    #[test]
    fn pkce_is_required_of_public_clients() {
        let native = client(
            r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}"#,
        );
        let without = params(&[
            ("redirect_uri", "http://127.0.0.1/cb"),
            ("code_challenge", ""),
            ("code_challenge_method", ""),
        ]);
        let e = validate(
            &settings(),
            &without,
            &native,
            "http://127.0.0.1/cb".into(),
            true,
        )
        .expect_err("no PKCE");
        assert_eq!(e, AuthorizeError::PkceRequired);
    }

    #[test]
    fn redirect_uri_problems_are_shown_not_redirected() {
        let shown = |p: &Params| match check_request(&settings(), p, &web_client()) {
            Err(AuthorizeOutcome::ErrorPage(e)) => e,
            other => panic!("not a page: {other:?}"),
        };
        assert_eq!(
            shown(&params(&[("redirect_uri", "https://evil.example/cb")])),
            AuthorizeError::RedirectUriNotRegistered
        );
        assert_eq!(
            shown(&params(&[("redirect_uri", "")])),
            AuthorizeError::RedirectUriMissing
        );
        assert_eq!(
            shown(&params(&[
                ("redirect_uri", REDIRECT),
                ("redirect_uri", REDIRECT)
            ])),
            AuthorizeError::RedirectUriRepeated
        );
    }

    #[test]
    fn other_refusals_go_to_the_client_with_state_and_iss() {
        let Err(AuthorizeOutcome::Redirect { location, .. }) =
            check_request(&settings(), &params(&[("scope", "admin")]), &web_client())
        else {
            panic!("not redirected");
        };
        let url = url::Url::parse(&location).expect("url");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["error"], "invalid_scope");
        assert_eq!(
            q["error_description"],
            "The client may not request the scope admin."
        );
        assert_eq!(q["state"], "s-1");
        assert_eq!(q["iss"], "https://issuer.example");
    }

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
        let page = page(AuthorizeError::UnknownClient);
        assert!(format!("{page:?}").contains("UnknownClient"));
    }
}
