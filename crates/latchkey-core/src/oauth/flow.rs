//! The login and consent challenge protocol, on the admin side: a login or consent app reads a
//! request by its challenge, then accepts or rejects it, and sends the browser back to the
//! authorization endpoint with a verifier.
//!
//! Each flow is one row that moves through [`FlowState`]s; every move is a conditional update, so
//! each challenge and verifier works once. Only hashes of challenges and verifiers are stored.

use latchkey_types::flow::{
    AcceptConsent, AcceptLogin, ConsentRequest, LoginRequest, OidcContext, RedirectTo,
    RejectRequest,
};
use latchkey_types::routes::public;
use latchkey_types::{ErrorCode, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Engine;
use crate::clock::UnixTime;
use crate::crypto::lookup_key;
use crate::store::StoreWrites as _;
use crate::store::{FlowKey, FlowStep, StoreError};

/// Where a flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowState {
    LoginRequested,
    LoginAccepted,
    LoginRejected,
    ConsentRequested,
    ConsentAccepted,
    ConsentRejected,
    Done,
}

impl FlowState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginRequested => "login_requested",
            Self::LoginAccepted => "login_accepted",
            Self::LoginRejected => "login_rejected",
            Self::ConsentRequested => "consent_requested",
            Self::ConsentAccepted => "consent_accepted",
            Self::ConsentRejected => "consent_rejected",
            Self::Done => "done",
        }
    }

    /// Whether a flow may move from this state to `to`: forward through login, then consent,
    /// each step once; a rejection, a consent the request cannot ask for (`prompt=none`) and a
    /// finished consent end it. This is the one definition of the flow's moves.
    pub fn may_advance_to(self, to: Self) -> bool {
        matches!(
            (self, to),
            (
                Self::LoginRequested,
                Self::LoginAccepted | Self::LoginRejected
            ) | (Self::LoginAccepted, Self::ConsentRequested | Self::Done)
                | (
                    Self::ConsentRequested,
                    Self::ConsentAccepted | Self::ConsentRejected
                )
                | (
                    Self::LoginRejected | Self::ConsentAccepted | Self::ConsentRejected,
                    Self::Done
                )
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::LoginRequested,
            Self::LoginAccepted,
            Self::LoginRejected,
            Self::ConsentRequested,
            Self::ConsentAccepted,
            Self::ConsentRejected,
            Self::Done,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One authorization request on its way through login and consent.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub id: String,
    pub client_id: String,
    pub state: FlowState,
    pub login_challenge: String,
    pub login_verifier: Option<String>,
    pub consent_challenge: Option<String>,
    pub consent_verifier: Option<String>,
    /// Hash of the browser's CSRF cookie: the flow completes only in the browser that started it.
    pub csrf: String,
    pub subject: Option<String>,
    pub data: FlowData,
    pub requested_at: UnixTime,
    pub updated_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A move that [`FlowState::may_advance_to`] does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a flow cannot move from {} to {}", from.as_str(), to.as_str())]
pub struct IllegalTransition {
    pub from: FlowState,
    pub to: FlowState,
}

impl FlowRecord {
    /// Moves the flow to `to` at `now`, if its state allows it, and returns the state it left:
    /// the one its write is conditional on ([`crate::store::FlowStep`]), so that each move
    /// happens once however many requests race for it.
    pub fn advance(
        &mut self,
        to: FlowState,
        now: UnixTime,
    ) -> Result<FlowState, IllegalTransition> {
        let from = self.state;
        if !from.may_advance_to(to) {
            return Err(IllegalTransition { from, to });
        }
        self.state = to;
        self.updated_at = now;
        Ok(from)
    }
}

/// The validated authorization request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub scope: Scope,
    #[serde(default)]
    pub audience: Vec<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub prompt: Vec<String>,
    #[serde(default)]
    pub max_age: Option<i64>,
    #[serde(default)]
    pub oidc: OidcContext,
    /// The request's parameters, re-encoded: `request_url` and the way back.
    pub query: String,
    /// For a device flow (RFC 8628): the key of the device code the flow authorizes. The flow
    /// comes back through the device verification endpoint and ends at the device success page
    /// (`redirect_uri`), authorizing the device code instead of issuing a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginOutcome {
    pub subject: String,
    pub remember: bool,
    pub remember_for: i64,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    #[serde(default)]
    pub context: Value,
    #[serde(default)]
    pub extend_session_lifespan: bool,
    #[serde(default)]
    pub identity_provider_session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentOutcome {
    pub grant_scope: Scope,
    pub grant_audience: Vec<String>,
    #[serde(default)]
    pub session_access_token: Value,
    #[serde(default)]
    pub session_id_token: Value,
    pub remember: bool,
    pub remember_for: i64,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub context: Value,
    /// The most distinct users the app may have, when this consent is capped (an unverified
    /// public app, for a user outside its account): checked by the consent's write.
    #[serde(default)]
    pub user_cap: Option<i64>,
}

/// A login or consent rejection, returned to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Denial {
    pub error: ErrorCode,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowData {
    pub request: AuthRequest,
    /// A remembered login exists: the login app must accept it without asking.
    pub login_skip: bool,
    /// The login session: the remembered one, or the one the login creates.
    #[serde(default)]
    pub login_session_id: Option<String>,
    #[serde(default)]
    pub authenticated_at: Option<UnixTime>,
    #[serde(default)]
    pub login: Option<LoginOutcome>,
    #[serde(default)]
    pub consent_skip: bool,
    #[serde(default)]
    pub consent: Option<ConsentOutcome>,
    #[serde(default)]
    pub denial: Option<Denial>,
}

/// An error of the admin side of the protocol.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the challenge is unknown or has expired")]
    NotFound,
    /// The challenge was used; the browser should start again at `redirect_to`.
    #[error("the request was handled already")]
    Handled { redirect_to: String },
    #[error("subject must be 1 to {MAX_SUBJECT_LEN} printable characters")]
    SubjectInvalid,
    #[error("force_subject_identifier (pairwise subjects) is not supported")]
    PairwiseSubjectsUnsupported,
    /// The login was skipped for a remembered user, and the login app accepted another one.
    #[error(
        "the user is already logged in as another subject (skip is true); accept with the request's subject"
    )]
    SubjectMismatch,
    #[error("remember_for must not be negative")]
    RememberForNegative,
    #[error("acr or amr is too long")]
    AuthenticationMethodsTooLong,
    #[error("{field} must be at most {MAX_CLAIMS_BYTES} bytes")]
    ObjectTooLarge { field: &'static str },
    #[error("{field} must be a JSON object")]
    NotAnObject { field: &'static str },
    #[error("grant_scope: {reason}")]
    GrantScopeMalformed { reason: String },
    #[error("grant_scope includes {scope:?}, which was not requested")]
    GrantScopeNotRequested { scope: String },
    #[error("grant_access_token_audience includes {audience:?}, which the client may not request")]
    GrantAudienceNotAllowed { audience: String },
    #[error("accounts must be at most {MAX_ACCOUNTS} non-empty ids")]
    AccountsInvalid,
    /// The platform's consent decision ([`super::AccountPolicy::consent_refusal`]) refuses the
    /// consent; `reason` says which of its rules.
    #[error("{reason}")]
    ConsentRefused { reason: String },
    /// RFC 8628: a user code that is malformed, unknown, expired or used.
    #[error("The user code is wrong, expired or already used.")]
    UserCodeInvalid,
    /// Too many wrong user codes for this challenge or from this address.
    #[error("Too many wrong user codes; wait, then start again.")]
    UserCodeGuessesExhausted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FlowError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::Handled { .. }
            | Self::SubjectInvalid
            | Self::PairwiseSubjectsUnsupported
            | Self::SubjectMismatch
            | Self::RememberForNegative
            | Self::AuthenticationMethodsTooLong
            | Self::ObjectTooLarge { .. }
            | Self::NotAnObject { .. }
            | Self::GrantScopeMalformed { .. }
            | Self::GrantScopeNotRequested { .. }
            | Self::GrantAudienceNotAllowed { .. }
            | Self::AccountsInvalid
            | Self::ConsentRefused { .. }
            | Self::UserCodeInvalid => ErrorCode::InvalidRequest,
            Self::UserCodeGuessesExhausted => ErrorCode::TooManyRequests,
            Self::Store(StoreError::Unavailable(_)) => ErrorCode::TemporarilyUnavailable,
            Self::Store(_) => ErrorCode::ServerError,
        }
    }
}

const MAX_SUBJECT_LEN: usize = 255;
const MAX_CLAIMS_BYTES: usize = 16 * 1024;
const MAX_DESCRIPTION_LEN: usize = 500;
const MAX_ACCOUNTS: usize = 100;

fn bounded_object(field: &'static str, v: Option<&Value>) -> Result<Value, FlowError> {
    match v {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(o @ Value::Object(_)) => {
            if serde_json::to_vec(o).map_or(usize::MAX, |b| b.len()) > MAX_CLAIMS_BYTES {
                return Err(FlowError::ObjectTooLarge { field });
            }
            Ok(o.clone())
        }
        Some(_) => Err(FlowError::NotAnObject { field }),
    }
}

/// The outcome of a login the login app accepted with `body`, once every field is within bounds.
fn login_outcome(body: &AcceptLogin) -> Result<LoginOutcome, FlowError> {
    let subject = body.subject.trim();
    if subject.is_empty()
        || subject.len() > MAX_SUBJECT_LEN
        || subject.chars().any(char::is_control)
    {
        return Err(FlowError::SubjectInvalid);
    }
    if body
        .force_subject_identifier
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(FlowError::PairwiseSubjectsUnsupported);
    }
    if body.remember_for < 0 {
        return Err(FlowError::RememberForNegative);
    }
    let amr = body.amr.clone().unwrap_or_default();
    if amr.len() > 20
        || amr.iter().any(|a| a.len() > 64)
        || body.acr.as_deref().is_some_and(|a| a.len() > 255)
    {
        return Err(FlowError::AuthenticationMethodsTooLong);
    }
    Ok(LoginOutcome {
        subject: subject.to_owned(),
        remember: body.remember,
        remember_for: body.remember_for,
        acr: body.acr.clone().filter(|a| !a.is_empty()),
        amr,
        context: bounded_object("context", body.context.as_ref())?,
        extend_session_lifespan: body.extend_session_lifespan,
        identity_provider_session_id: body.identity_provider_session_id.clone(),
    })
}

/// The outcome of a consent the consent app accepted with `body`, for a request of `requested`
/// that may be granted `audience`: it grants no more than was requested and allowed.
fn consent_outcome(
    body: &AcceptConsent,
    requested: &Scope,
    audience: &[String],
    user_cap: Option<i64>,
) -> Result<ConsentOutcome, FlowError> {
    let grant_scope =
        Scope::from_tokens(&body.grant_scope).map_err(|e| FlowError::GrantScopeMalformed {
            reason: e.to_string(),
        })?;
    if let Some(extra) = grant_scope.difference(requested).next() {
        return Err(FlowError::GrantScopeNotRequested {
            scope: extra.to_owned(),
        });
    }
    if let Some(a) = body
        .grant_access_token_audience
        .iter()
        .find(|a| !audience.contains(a))
    {
        return Err(FlowError::GrantAudienceNotAllowed {
            audience: a.clone(),
        });
    }
    if body.remember_for < 0 {
        return Err(FlowError::RememberForNegative);
    }
    let accounts = body.accounts.clone().unwrap_or_default();
    if accounts.len() > MAX_ACCOUNTS || accounts.iter().any(|a| a.is_empty() || a.len() > 255) {
        return Err(FlowError::AccountsInvalid);
    }
    let session = body.session.clone().unwrap_or_default();
    Ok(ConsentOutcome {
        grant_scope,
        grant_audience: body.grant_access_token_audience.clone(),
        session_access_token: bounded_object(
            "session.access_token",
            session.access_token.as_ref(),
        )?,
        session_id_token: bounded_object("session.id_token", session.id_token.as_ref())?,
        remember: body.remember,
        remember_for: body.remember_for,
        accounts,
        context: bounded_object("context", body.context.as_ref())?,
        user_cap,
    })
}

fn denial_from(body: &RejectRequest) -> Denial {
    let error = body
        .error
        .as_deref()
        .and_then(|e| serde_json::from_value::<ErrorCode>(Value::String(e.to_owned())).ok())
        .unwrap_or(ErrorCode::AccessDenied);
    let description = body
        .error_description
        .as_deref()
        .filter(|d| !d.is_empty())
        .map_or_else(
            || "The resource owner or authorization server denied the request.".to_owned(),
            |d| {
                d.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_DESCRIPTION_LEN)
                    .collect()
            },
        );
    Denial { error, description }
}

impl Engine {
    /// The authorization request's URL, as the browser sent it.
    pub(crate) fn request_url(&self, request: &AuthRequest) -> String {
        format!("{}?{}", self.flow_endpoint(request), request.query)
    }

    /// Where the browser comes back to between the steps of a flow: the authorization
    /// endpoint, or the device verification endpoint for a device flow.
    fn flow_endpoint(&self, request: &AuthRequest) -> String {
        self.settings.url(if request.device_code.is_some() {
            public::DEVICE_VERIFY
        } else {
            public::AUTHORIZE
        })
    }

    fn back_to_authorize(&self, request: &AuthRequest, param: &str, verifier: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(request.query.clone());
        q.append_pair(param, verifier);
        format!("{}?{}", self.flow_endpoint(request), q.finish())
    }

    /// Finds a flow by a bearer value and checks it is current and in `expected` state.
    async fn flow_in_state(
        &self,
        key: FlowKey,
        value: &str,
        expected: FlowState,
    ) -> Result<FlowRecord, FlowError> {
        if value.is_empty() || value.len() > 256 {
            return Err(FlowError::NotFound);
        }
        let flow = self
            .deps
            .store
            .flow(key, &lookup_key(value))
            .await?
            .ok_or(FlowError::NotFound)?;
        if flow.expires_at <= self.deps.clock.now() {
            return Err(FlowError::NotFound);
        }
        if flow.state != expected {
            return Err(FlowError::Handled {
                redirect_to: self.request_url(&flow.data.request),
            });
        }
        Ok(flow)
    }

    /// Moves `flow` to `to` and writes it; a flow that moved already, here or in a request
    /// racing this one, was handled.
    async fn save(&self, mut flow: FlowRecord, to: FlowState) -> Result<(), FlowError> {
        let redirect_to = self.request_url(&flow.data.request);
        let Ok(from) = flow.advance(to, self.deps.clock.now()) else {
            return Err(FlowError::Handled { redirect_to });
        };
        let step = FlowStep {
            flow,
            from,
            session: None,
        };
        if !self.deps.store.advance_flow(step).await? {
            return Err(FlowError::Handled { redirect_to });
        }
        Ok(())
    }

    /// `GET /admin/oauth2/auth/requests/login`.
    pub async fn login_request(&self, challenge: &str) -> Result<LoginRequest, FlowError> {
        let flow = self
            .flow_in_state(
                FlowKey::LoginChallenge,
                challenge,
                FlowState::LoginRequested,
            )
            .await?;
        let client = self
            .clients
            .get(&flow.client_id)
            .await
            .map_err(|_| FlowError::NotFound)?;
        let r = &flow.data.request;
        Ok(LoginRequest {
            challenge: challenge.to_owned(),
            client: client.to_wire(),
            oidc_context: r.oidc.clone(),
            request_url: self.request_url(r),
            requested_access_token_audience: r.audience.clone(),
            requested_scope: r.scope.to_vec(),
            session_id: flow.data.login_session_id.clone(),
            skip: flow.data.login_skip,
            subject: flow.subject.clone().unwrap_or_default(),
        })
    }

    /// `PUT /admin/oauth2/auth/requests/login/accept`.
    pub async fn accept_login(
        &self,
        challenge: &str,
        body: &AcceptLogin,
    ) -> Result<RedirectTo, FlowError> {
        let mut login = login_outcome(body)?;
        let mut flow = self
            .flow_in_state(
                FlowKey::LoginChallenge,
                challenge,
                FlowState::LoginRequested,
            )
            .await?;
        if flow.data.login_skip {
            if flow.subject.as_deref() != Some(login.subject.as_str()) {
                return Err(FlowError::SubjectMismatch);
            }
            login.remember = true;
        }
        let verifier = self.deps.mint_lookup_value();
        flow.login_verifier = Some(verifier.key);
        flow.subject = Some(login.subject.clone());
        flow.data.login = Some(login);
        let redirect_to =
            self.back_to_authorize(&flow.data.request, "login_verifier", &verifier.value);
        self.save(flow, FlowState::LoginAccepted).await?;
        Ok(RedirectTo { redirect_to })
    }

    /// `PUT /admin/oauth2/auth/requests/login/reject`.
    pub async fn reject_login(
        &self,
        challenge: &str,
        body: &RejectRequest,
    ) -> Result<RedirectTo, FlowError> {
        let mut flow = self
            .flow_in_state(
                FlowKey::LoginChallenge,
                challenge,
                FlowState::LoginRequested,
            )
            .await?;
        let verifier = self.deps.mint_lookup_value();
        flow.login_verifier = Some(verifier.key);
        flow.data.denial = Some(denial_from(body));
        let redirect_to =
            self.back_to_authorize(&flow.data.request, "login_verifier", &verifier.value);
        self.save(flow, FlowState::LoginRejected).await?;
        Ok(RedirectTo { redirect_to })
    }

    /// `GET /admin/oauth2/auth/requests/consent`.
    pub async fn consent_request(&self, challenge: &str) -> Result<ConsentRequest, FlowError> {
        let flow = self
            .flow_in_state(
                FlowKey::ConsentChallenge,
                challenge,
                FlowState::ConsentRequested,
            )
            .await?;
        let client = self
            .clients
            .get(&flow.client_id)
            .await
            .map_err(|_| FlowError::NotFound)?;
        let r = &flow.data.request;
        let login = flow.data.login.as_ref();
        Ok(ConsentRequest {
            challenge: challenge.to_owned(),
            consent_request_id: flow.id.clone(),
            acr: login.and_then(|l| l.acr.clone()).unwrap_or_default(),
            amr: login.map(|l| l.amr.clone()).unwrap_or_default(),
            client: client.to_wire(),
            context: login.map_or(Value::Null, |l| l.context.clone()),
            login_challenge: flow.id.clone(),
            login_session_id: flow.data.login_session_id.clone().unwrap_or_default(),
            oidc_context: r.oidc.clone(),
            request_url: self.request_url(r),
            requested_access_token_audience: r.audience.clone(),
            requested_scope: r.scope.to_vec(),
            skip: flow.data.consent_skip,
            subject: flow.subject.clone().unwrap_or_default(),
        })
    }

    /// `PUT /admin/oauth2/auth/requests/consent/accept`.
    pub async fn accept_consent(
        &self,
        challenge: &str,
        body: &AcceptConsent,
    ) -> Result<RedirectTo, FlowError> {
        self.accept_consent_capped(challenge, body, None).await
    }

    /// [`Engine::accept_consent`] for a consent that may add a user to an app only while it has
    /// fewer than `user_cap` (checked when the grant is written, see
    /// [`crate::store::write_consent`]).
    pub async fn accept_consent_capped(
        &self,
        challenge: &str,
        body: &AcceptConsent,
        user_cap: Option<i64>,
    ) -> Result<RedirectTo, FlowError> {
        let mut flow = self
            .flow_in_state(
                FlowKey::ConsentChallenge,
                challenge,
                FlowState::ConsentRequested,
            )
            .await?;
        let client = self
            .clients
            .get(&flow.client_id)
            .await
            .map_err(|_| FlowError::NotFound)?;
        // The audience a consent may grant: the client's (Hydra), and the resource servers the
        // request named (RFC 8707).
        let mut allowed = client.audience.clone();
        allowed.extend(flow.data.request.audience.iter().cloned());
        let consent = consent_outcome(body, &flow.data.request.scope, &allowed, user_cap)?;
        if let Some(policy) = self.account_policy()
            && let Some(subject) = flow.subject.as_deref()
            && let Some(reason) = policy
                .consent_refusal(
                    subject,
                    &flow.client_id,
                    &consent.grant_scope,
                    &consent.accounts,
                )
                .await?
        {
            return Err(FlowError::ConsentRefused { reason });
        }
        let verifier = self.deps.mint_lookup_value();
        flow.consent_verifier = Some(verifier.key);
        flow.data.consent = Some(consent);
        let redirect_to =
            self.back_to_authorize(&flow.data.request, "consent_verifier", &verifier.value);
        self.save(flow, FlowState::ConsentAccepted).await?;
        Ok(RedirectTo { redirect_to })
    }

    /// `PUT /admin/oauth2/auth/requests/consent/reject`.
    pub async fn reject_consent(
        &self,
        challenge: &str,
        body: &RejectRequest,
    ) -> Result<RedirectTo, FlowError> {
        let mut flow = self
            .flow_in_state(
                FlowKey::ConsentChallenge,
                challenge,
                FlowState::ConsentRequested,
            )
            .await?;
        let verifier = self.deps.mint_lookup_value();
        flow.consent_verifier = Some(verifier.key);
        flow.data.denial = Some(denial_from(body));
        let redirect_to =
            self.back_to_authorize(&flow.data.request, "consent_verifier", &verifier.value);
        self.save(flow, FlowState::ConsentRejected).await?;
        Ok(RedirectTo { redirect_to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [FlowState; 7] = [
        FlowState::LoginRequested,
        FlowState::LoginAccepted,
        FlowState::LoginRejected,
        FlowState::ConsentRequested,
        FlowState::ConsentAccepted,
        FlowState::ConsentRejected,
        FlowState::Done,
    ];

    fn flow(state: FlowState) -> FlowRecord {
        FlowRecord {
            id: "f1".into(),
            client_id: "c1".into(),
            state,
            login_challenge: "lc".into(),
            login_verifier: None,
            consent_challenge: None,
            consent_verifier: None,
            csrf: "csrf".into(),
            subject: None,
            data: FlowData {
                request: AuthRequest {
                    client_id: "c1".into(),
                    redirect_uri: "https://a.example/cb".into(),
                    redirect_uri_given: true,
                    scope: Scope::default(),
                    audience: vec![],
                    state: None,
                    nonce: None,
                    code_challenge: None,
                    prompt: vec![],
                    max_age: None,
                    oidc: OidcContext::default(),
                    query: String::new(),
                    device_code: None,
                },
                login_skip: false,
                login_session_id: None,
                authenticated_at: None,
                login: None,
                consent_skip: false,
                consent: None,
                denial: None,
            },
            requested_at: 100,
            updated_at: 100,
            expires_at: 700,
        }
    }

    #[test]
    fn the_transition_table() {
        use FlowState::{
            ConsentAccepted, ConsentRejected, ConsentRequested, Done, LoginAccepted, LoginRejected,
            LoginRequested,
        };
        let allowed = [
            (LoginRequested, LoginAccepted),
            (LoginRequested, LoginRejected),
            (LoginAccepted, ConsentRequested),
            // prompt=none, and the consent cannot be skipped.
            (LoginAccepted, Done),
            (LoginRejected, Done),
            (ConsentRequested, ConsentAccepted),
            (ConsentRequested, ConsentRejected),
            (ConsentAccepted, Done),
            (ConsentRejected, Done),
        ];
        for from in ALL {
            for to in ALL {
                assert_eq!(
                    from.may_advance_to(to),
                    allowed.contains(&(from, to)),
                    "{} -> {}",
                    from.as_str(),
                    to.as_str()
                );
            }
        }
    }

    #[test]
    fn advance_moves_a_flow_once_and_returns_where_it_was() {
        let mut f = flow(FlowState::LoginRequested);
        assert_eq!(
            f.advance(FlowState::LoginAccepted, 150),
            Ok(FlowState::LoginRequested)
        );
        assert_eq!(f.state, FlowState::LoginAccepted);
        assert_eq!(f.updated_at, 150);
        // A second accept of the same login is refused, and changes nothing.
        assert_eq!(
            f.advance(FlowState::LoginAccepted, 160),
            Err(IllegalTransition {
                from: FlowState::LoginAccepted,
                to: FlowState::LoginAccepted
            })
        );
        assert_eq!(f.state, FlowState::LoginAccepted);
        assert_eq!(f.updated_at, 150);
    }

    #[test]
    fn a_finished_flow_goes_nowhere() {
        for to in ALL {
            let mut f = flow(FlowState::Done);
            assert!(f.advance(to, 200).is_err(), "done -> {}", to.as_str());
            assert_eq!(f, flow(FlowState::Done));
        }
    }

    #[test]
    fn a_consent_cannot_be_answered_before_the_login() {
        for to in [FlowState::ConsentAccepted, FlowState::ConsentRejected] {
            assert!(flow(FlowState::LoginRequested).advance(to, 200).is_err());
            assert!(flow(FlowState::LoginAccepted).advance(to, 200).is_err());
        }
    }

    fn login(subject: &str) -> AcceptLogin {
        AcceptLogin {
            subject: subject.into(),
            ..AcceptLogin::default()
        }
    }

    #[test]
    fn a_login_is_accepted_only_within_bounds() {
        let ok = login_outcome(&login(" alice ")).expect("valid");
        assert_eq!(ok.subject, "alice");
        assert!(matches!(
            login_outcome(&login("  ")),
            Err(FlowError::SubjectInvalid)
        ));
        assert!(matches!(
            login_outcome(&login(&"a".repeat(MAX_SUBJECT_LEN + 1))),
            Err(FlowError::SubjectInvalid)
        ));
        let pairwise = AcceptLogin {
            force_subject_identifier: Some("x".into()),
            ..login("alice")
        };
        assert!(matches!(
            login_outcome(&pairwise),
            Err(FlowError::PairwiseSubjectsUnsupported)
        ));
        let negative = AcceptLogin {
            remember_for: -1,
            ..login("alice")
        };
        assert!(matches!(
            login_outcome(&negative),
            Err(FlowError::RememberForNegative)
        ));
        let amr = AcceptLogin {
            amr: Some(vec!["pwd".into(); 21]),
            ..login("alice")
        };
        assert!(matches!(
            login_outcome(&amr),
            Err(FlowError::AuthenticationMethodsTooLong)
        ));
        let context = AcceptLogin {
            context: Some(Value::String("x".into())),
            ..login("alice")
        };
        assert!(matches!(
            login_outcome(&context),
            Err(FlowError::NotAnObject { field: "context" })
        ));
        let huge = AcceptLogin {
            context: Some(serde_json::json!({ "a": "x".repeat(MAX_CLAIMS_BYTES) })),
            ..login("alice")
        };
        assert!(matches!(
            login_outcome(&huge),
            Err(FlowError::ObjectTooLarge { field: "context" })
        ));
    }

    #[test]
    fn a_consent_grants_no_more_than_was_requested_and_allowed() {
        let requested = Scope::parse("openid email").expect("scope");
        let audience = vec!["https://api.example".to_owned()];
        let consent = |body: AcceptConsent| consent_outcome(&body, &requested, &audience, Some(5));
        let ok = consent(AcceptConsent {
            grant_scope: vec!["openid".into()],
            grant_access_token_audience: audience.clone(),
            ..AcceptConsent::default()
        })
        .expect("valid");
        assert_eq!(ok.grant_scope.to_string(), "openid");
        assert_eq!(ok.user_cap, Some(5));
        let e = consent(AcceptConsent {
            grant_scope: vec!["openid".into(), "admin".into()],
            ..AcceptConsent::default()
        })
        .expect_err("more scope");
        assert!(
            matches!(&e, FlowError::GrantScopeNotRequested { scope } if scope == "admin"),
            "{e:?}"
        );
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e = consent(AcceptConsent {
            grant_access_token_audience: vec!["https://evil.example".into()],
            ..AcceptConsent::default()
        })
        .expect_err("other audience");
        assert!(
            matches!(&e, FlowError::GrantAudienceNotAllowed { audience } if audience == "https://evil.example"),
            "{e:?}"
        );
        let e = consent(AcceptConsent {
            accounts: Some(vec![String::new()]),
            ..AcceptConsent::default()
        })
        .expect_err("empty account");
        assert!(matches!(e, FlowError::AccountsInvalid), "{e:?}");
        let e = consent(AcceptConsent {
            grant_scope: vec!["a b".into()],
            ..AcceptConsent::default()
        })
        .expect_err("malformed");
        assert!(matches!(e, FlowError::GrantScopeMalformed { .. }), "{e:?}");
    }
}
