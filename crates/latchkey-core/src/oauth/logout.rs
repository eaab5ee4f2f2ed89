//! Logout (OIDC RP-Initiated Logout 1.0 with Hydra's logout challenge, Front-Channel Logout 1.0
//! and Back-Channel Logout 1.0).
//!
//! `GET|POST /oauth2/sessions/logout` checks the request (an `id_token_hint` this server signed,
//! expired or not; a `post_logout_redirect_uri` registered for the client, exactly), records a
//! logout request bound to the browser (its CSRF cookie), and sends the browser to the logout
//! app with a `logout_challenge`. The logout app reads it and accepts (the browser comes back
//! with a `logout_verifier`) or rejects it. On the verifier the engine ends the login session in
//! one write ([`crate::store::write_logout`]), which also queues a back-channel logout token
//! for every app that took part in the session; the browser gets a page of front-channel iframes
//! when an app has one, then goes to the `post_logout_redirect_uri` (with `state`) or the
//! "signed out" page. The tokens are sent by [`Engine::deliver_backchannel_logouts`], outside
//! the browser's request, with retries.
//!
//! Like the login and consent challenges, the challenge and the verifier work once, only in the
//! browser that started the logout, until the request expires; only their hashes are stored.

use latchkey_types::ErrorCode;
use latchkey_types::flow::RedirectTo;
use latchkey_types::logout::{BACKCHANNEL_LOGOUT_EVENT, LogoutRequest};
use latchkey_types::routes::public;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Engine;
use super::authorize::BrowserCookies;
use super::flow::FlowError;
use super::params::{ParamError, Params};
use crate::client::{Client, LogoutChannels};
use crate::clock::{UnixTime, rfc3339};
use crate::crypto::{lookup_hash, lookup_key};
use crate::keys::SigningAlg;
use crate::revocations::RevocationKind;
use crate::secret::SecretString;
use crate::store::StoreWrites as _;
use crate::store::{LogoutWrite, LogoutWritten, SessionSelector, StoreError};

const MAX_HINT_LEN: usize = 8 * 1024;
const MAX_STATE_LEN: usize = 1024;
const MAX_SHORT_PARAM_LEN: usize = 512;
/// How many times a back-channel logout token is sent before the delivery is given up.
pub const MAX_DELIVERY_ATTEMPTS: i64 = 8;
/// How long a sender holds a delivery it took (a sender that dies frees it then).
const DELIVERY_LEASE: i64 = 60;
/// The lifetime of a logout token (Back-Channel Logout 1.0 §2.4 asks for at most two minutes).
const LOGOUT_TOKEN_TTL: i64 = 120;

/// Where a logout request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutState {
    Requested,
    Accepted,
    Rejected,
    Done,
}

impl LogoutState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Requested, Self::Accepted, Self::Rejected, Self::Done]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// The one definition of a logout request's moves: answered once by the logout app, and an
    /// accepted one completed once by the browser.
    pub fn may_advance_to(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Requested, Self::Accepted | Self::Rejected) | (Self::Accepted, Self::Done)
        )
    }
}

/// How a logout request is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutKey {
    Challenge,
    Verifier,
}

/// One logout request.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutRecord {
    pub id: String,
    pub state: LogoutState,
    /// Hash of the challenge.
    pub challenge: String,
    /// Hash of the verifier, once accepted.
    pub verifier: Option<String>,
    /// Hash of the browser's CSRF cookie.
    pub csrf: String,
    pub subject: String,
    pub sid: String,
    /// The app that asked (RP-initiated logout).
    pub client_id: Option<String>,
    pub data: LogoutData,
    pub requested_at: UnixTime,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutData {
    pub rp_initiated: bool,
    pub request_url: String,
    /// Where the browser goes at the end: the registered `post_logout_redirect_uri` with
    /// `state`, or the "signed out" page.
    pub destination: String,
}

impl LogoutRecord {
    /// Moves the request to `to` at `now`, if its state allows it, and returns the state it
    /// left (what its write is conditional on).
    pub fn advance(&mut self, to: LogoutState) -> Option<LogoutState> {
        let from = self.state;
        if !from.may_advance_to(to) {
            return None;
        }
        self.state = to;
        Some(from)
    }
}

/// An app that took part in a login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub client_id: String,
    pub client_name: String,
    pub channels: LogoutChannels,
}

/// A login session as "Your sessions" shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub session: super::records::LoginSession,
    pub apps: Vec<Participant>,
}

/// A back-channel logout token to deliver, and how its delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelDelivery {
    /// Also the logout token's `jti`.
    pub id: String,
    pub client_id: String,
    pub uri: String,
    pub subject: String,
    pub sid: String,
    /// `backchannel_logout_session_required`: the token carries `sid`.
    pub include_sid: bool,
    pub attempts: i64,
    /// When to try (again); `None` once delivered or given up.
    pub next_attempt_at: Option<UnixTime>,
    pub delivered_at: Option<UnixTime>,
    pub last_error: Option<String>,
    pub created_at: UnixTime,
}

/// Sends a back-channel logout token (I/O, implemented outside the core).
#[async_trait::async_trait]
pub trait BackchannelSender: Send + Sync {
    /// POSTs `logout_token` to `uri`; `Err` with a short reason when the app did not answer
    /// 200 or 204 in time.
    async fn send(&self, uri: &str, logout_token: &str) -> Result<(), String>;
}

/// What a run of the back-channel sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub failed: usize,
}

/// A logout request the endpoint refuses, shown on a page (never redirected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutError {
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("The id_token_hint is not an ID token this server issued.")]
    HintInvalid,
    #[error("The id_token_hint was issued to another client than client_id.")]
    HintOfAnotherClient,
    #[error("The client is unknown.")]
    UnknownClient,
    #[error("The post_logout_redirect_uri is not registered for this client.")]
    RedirectUriNotRegistered,
    #[error("A post_logout_redirect_uri needs an id_token_hint or a client_id.")]
    RedirectUriWithoutClient,
    #[error("The parameter {0} is too long.")]
    TooLong(&'static str),
    #[error("This sign-out link has expired or is not valid. Sign out again from the application.")]
    LinkExpired,
    #[error(
        "This sign-out was started in another browser, or its cookies were blocked. Sign out again from the application."
    )]
    OtherBrowser,
    #[error("This sign-out link was used already.")]
    LinkUsed,
}

impl LogoutError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownClient => ErrorCode::InvalidClient,
            Self::OtherBrowser => ErrorCode::AccessDenied,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

/// The logout endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// Send the browser to `location` (setting the CSRF cookie when given).
    Redirect {
        location: String,
        csrf: Option<SecretString>,
    },
    /// The session is ended: clear the session cookie, load `frames` (front-channel logout
    /// URIs) in hidden iframes, then go to `destination`.
    SignedOut {
        frames: Vec<String>,
        destination: String,
    },
    /// Refused, on a page.
    ErrorPage(LogoutError),
}

/// The claims of an `id_token_hint` the logout endpoint reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Hint {
    subject: String,
    sid: Option<String>,
    audience: Vec<String>,
}

impl Hint {
    /// The client the hint was issued to: its `azp`, or its only audience.
    fn client_id(&self, azp: Option<&str>) -> Option<String> {
        azp.map(str::to_owned)
            .or_else(|| self.audience.first().cloned())
    }
}

fn with_params(base: &str, pairs: &[(&str, &str)]) -> String {
    let Ok(mut url) = url::Url::parse(base) else {
        return base.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url.into()
}

impl Engine {
    /// Where a logout without a registered `post_logout_redirect_uri` ends.
    fn signed_out_url(&self) -> String {
        self.settings.post_logout_url.clone()
    }

    /// `GET|POST /oauth2/sessions/logout`.
    pub async fn logout(
        &self,
        params: &Params,
        cookies: &BrowserCookies,
    ) -> Result<LogoutOutcome, StoreError> {
        if let Some(name) = params.first_duplicate() {
            return Ok(LogoutOutcome::ErrorPage(
                ParamError::Duplicate(name.to_owned()).into(),
            ));
        }
        if let Ok(Some(v)) = params.get("logout_verifier") {
            return self.complete_logout(v, cookies).await;
        }
        match self.start_logout(params, cookies).await? {
            Ok(outcome) | Err(outcome) => Ok(outcome),
        }
    }

    /// Checks an `id_token_hint`: signed by one of this server's published keys, issued by this
    /// issuer, with a subject. Expiry does not matter.
    fn read_hint(&self, token: &str) -> Result<(Hint, Option<String>), LogoutError> {
        if token.len() > MAX_HINT_LEN {
            return Err(LogoutError::HintInvalid);
        }
        let claims = self
            .keys
            .current()
            .verify_signature(token, "JWT")
            .ok_or(LogoutError::HintInvalid)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(LogoutError::HintInvalid);
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(LogoutError::HintInvalid)?
            .to_owned();
        let audience = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => return Err(LogoutError::HintInvalid),
        };
        let azp = claims.get("azp").and_then(Value::as_str).map(str::to_owned);
        Ok((
            Hint {
                subject,
                sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
                audience,
            },
            azp,
        ))
    }

    /// The request's parameters, checked; `Err` is the page that refuses it.
    async fn logout_parameters(
        &self,
        params: &Params,
    ) -> Result<Result<(Option<Hint>, Option<Client>, String), LogoutOutcome>, StoreError> {
        let refuse = |e: LogoutError| Ok(Err(LogoutOutcome::ErrorPage(e)));
        let get = |name: &str| params.get(name).ok().flatten().filter(|v| !v.is_empty());
        for (name, max) in [
            ("state", MAX_STATE_LEN),
            ("logout_hint", MAX_SHORT_PARAM_LEN),
            ("ui_locales", MAX_SHORT_PARAM_LEN),
            ("client_id", MAX_SHORT_PARAM_LEN),
            ("post_logout_redirect_uri", 2048),
        ] {
            if get(name).is_some_and(|v| v.len() > max) {
                return refuse(LogoutError::TooLong(match name {
                    "state" => "state",
                    "logout_hint" => "logout_hint",
                    "ui_locales" => "ui_locales",
                    "client_id" => "client_id",
                    _ => "post_logout_redirect_uri",
                }));
            }
        }
        let hint = match get("id_token_hint").map(|t| self.read_hint(t)) {
            None => None,
            Some(Ok(h)) => Some(h),
            Some(Err(e)) => return refuse(e),
        };
        let client_id = get("client_id");
        if let (Some((h, _)), Some(id)) = (&hint, client_id)
            && !h.audience.iter().any(|a| a == id)
        {
            return refuse(LogoutError::HintOfAnotherClient);
        }
        let client_id = match &hint {
            Some((h, azp)) => h.client_id(azp.as_deref()),
            None => client_id.map(str::to_owned),
        };
        let client = match client_id {
            Some(id) => match self.deps.store.client(&id).await? {
                Some(c) => Some(c),
                None => return refuse(LogoutError::UnknownClient),
            },
            None => None,
        };
        let destination = match get("post_logout_redirect_uri") {
            None => self.signed_out_url(),
            Some(uri) => {
                let Some(c) = &client else {
                    return refuse(LogoutError::RedirectUriWithoutClient);
                };
                if !c.post_logout_redirect_uris.iter().any(|r| r == uri) {
                    return refuse(LogoutError::RedirectUriNotRegistered);
                }
                match get("state") {
                    Some(state) => with_params(uri, &[("state", state)]),
                    None => uri.to_owned(),
                }
            }
        };
        Ok(Ok((hint.map(|(h, _)| h), client, destination)))
    }

    /// A new logout request: the session to end is the browser's, or the one the hint names.
    async fn start_logout(
        &self,
        params: &Params,
        cookies: &BrowserCookies,
    ) -> Result<Result<LogoutOutcome, LogoutOutcome>, StoreError> {
        let (hint, client, destination) = match self.logout_parameters(params).await? {
            Ok(v) => v,
            Err(page) => return Ok(Err(page)),
        };
        let now = self.deps.clock.now();
        let mut tx = self.deps.store.read().await?;
        let mut session = match cookies
            .session
            .as_ref()
            .map(SecretString::expose)
            .filter(|c| c.len() <= 128)
        {
            Some(cookie) => {
                tx.login_sessions()
                    .by_cookie(&lookup_key(cookie), now)
                    .await?
            }
            None => None,
        };
        if let Some(h) = &hint {
            // The hint's user must be the browser's; a session the browser does not remember
            // (a login without "remember me") is found by the hint's sid.
            if session.as_ref().is_some_and(|s| s.subject != h.subject) {
                session = None;
            }
            if session.is_none()
                && let Some(sid) = &h.sid
            {
                session = tx
                    .login_sessions()
                    .get(sid)
                    .await?
                    .filter(|s| s.subject == h.subject && s.expires_at > now);
            }
        }
        drop(tx);
        let Some(session) = session else {
            // Nobody is signed in here: nothing to end.
            return Ok(Ok(LogoutOutcome::Redirect {
                location: destination,
                csrf: None,
            }));
        };
        let (csrf_value, new_csrf) = cookies.csrf_binding(self.deps.entropy.as_ref());
        let challenge = self.deps.mint_lookup_value();
        // An app registered with `skip_logout_consent` signs its user out without the logout
        // app's question (Hydra's field): the request is accepted as it is made.
        let skip = hint.is_some() && client.as_ref().is_some_and(|c| c.skip_logout_consent);
        let verifier = skip.then(|| self.deps.mint_lookup_value());
        let record = LogoutRecord {
            id: self.deps.ordered_id(),
            state: if skip {
                LogoutState::Accepted
            } else {
                LogoutState::Requested
            },
            challenge: challenge.key,
            verifier: verifier.as_ref().map(|v| v.key.clone()),
            csrf: lookup_hash(&csrf_value),
            subject: session.subject,
            sid: session.id,
            client_id: client.map(|c| c.id),
            data: LogoutData {
                rp_initiated: hint.is_some() || params.get("client_id").ok().flatten().is_some(),
                request_url: format!(
                    "{}?{}",
                    self.settings.url(public::LOGOUT),
                    params.encode_without(&[])
                ),
                destination,
            },
            requested_at: now,
            expires_at: now + self.settings.flow_ttl,
        };
        let mut tx = self.deps.store.begin().await?;
        tx.logouts().insert_request(&record).await?;
        tx.commit().await?;
        let location = match verifier {
            Some(v) => self.verifier_url(&v.value),
            None => with_params(
                &self.settings.logout_url,
                &[("logout_challenge", &challenge.value)],
            ),
        };
        Ok(Ok(LogoutOutcome::Redirect {
            location,
            csrf: new_csrf.map(SecretString::from),
        }))
    }

    /// The browser is back with the logout app's verifier: end the session, once.
    async fn complete_logout(
        &self,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<LogoutOutcome, StoreError> {
        let page = |e| Ok(LogoutOutcome::ErrorPage(e));
        if verifier.len() > 128 {
            return page(LogoutError::LinkExpired);
        }
        let now = self.deps.clock.now();
        let Some(mut record) = self
            .deps
            .store
            .read()
            .await?
            .logouts()
            .find_request(LogoutKey::Verifier, &lookup_key(verifier))
            .await?
        else {
            return page(LogoutError::LinkExpired);
        };
        if !cookies.is_bound_to(&record.csrf) {
            return page(LogoutError::OtherBrowser);
        }
        if record.expires_at <= now {
            return page(LogoutError::LinkExpired);
        }
        let Some(from) = record.advance(LogoutState::Done) else {
            return page(LogoutError::LinkUsed);
        };
        let destination = record.data.destination.clone();
        let write = LogoutWrite {
            sessions: SessionSelector::One {
                sid: record.sid.clone(),
                subject: record.subject.clone(),
            },
            request: Some((record, from)),
            batch: self.deps.ordered_id(),
            now,
            kind: RevocationKind::Logout,
        };
        let Some(written) = self.deps.store.end_sessions(write).await? else {
            return page(LogoutError::LinkUsed);
        };
        Ok(LogoutOutcome::SignedOut {
            frames: self.frontchannel_frames(&written),
            destination,
        })
    }

    /// The front-channel logout URIs of the apps a logout signed out, with `iss` and `sid`
    /// when the app asks for them.
    fn frontchannel_frames(&self, written: &LogoutWritten) -> Vec<String> {
        written
            .participants
            .iter()
            .filter_map(|(sid, p)| {
                let uri = p.channels.frontchannel_uri.as_deref()?;
                Some(if p.channels.frontchannel_session_required {
                    with_params(uri, &[("iss", &self.settings.issuer), ("sid", sid)])
                } else {
                    uri.to_owned()
                })
            })
            .collect()
    }

    /// A current logout request in state `Requested`, by its challenge.
    async fn requested_logout(&self, challenge: &str) -> Result<LogoutRecord, FlowError> {
        if challenge.is_empty() || challenge.len() > 256 {
            return Err(FlowError::NotFound);
        }
        let record = self
            .deps
            .store
            .read()
            .await?
            .logouts()
            .find_request(LogoutKey::Challenge, &lookup_key(challenge))
            .await?
            .ok_or(FlowError::NotFound)?;
        if record.expires_at <= self.deps.clock.now() {
            return Err(FlowError::NotFound);
        }
        if record.state != LogoutState::Requested {
            return Err(FlowError::Handled {
                redirect_to: record.data.destination,
            });
        }
        Ok(record)
    }

    /// `GET /admin/oauth2/auth/requests/logout`.
    pub async fn logout_request(&self, challenge: &str) -> Result<LogoutRequest, FlowError> {
        let record = self.requested_logout(challenge).await?;
        let client = match &record.client_id {
            Some(id) => self.deps.store.client(id).await?.map(|c| c.to_wire()),
            None => None,
        };
        Ok(LogoutRequest {
            challenge: challenge.to_owned(),
            subject: record.subject,
            sid: record.sid,
            client,
            request_url: record.data.request_url,
            rp_initiated: record.data.rp_initiated,
            requested_at: rfc3339(record.requested_at),
            expires_at: rfc3339(record.expires_at),
        })
    }

    /// The apps a logout request would sign out (for the logout page to name them).
    pub async fn logout_participants(
        &self,
        challenge: &str,
    ) -> Result<Vec<Participant>, FlowError> {
        let record = self.requested_logout(challenge).await?;
        Ok(self
            .deps
            .store
            .read()
            .await?
            .logouts()
            .participants(&record.sid)
            .await?)
    }

    /// Writes a logout request's answer, once.
    async fn answer_logout(
        &self,
        challenge: &str,
        to: LogoutState,
    ) -> Result<Option<String>, FlowError> {
        let mut record = self.requested_logout(challenge).await?;
        let handled = || FlowError::Handled {
            redirect_to: self.signed_out_url(),
        };
        let from = record.advance(to).ok_or_else(handled)?;
        let verifier = (to == LogoutState::Accepted).then(|| self.deps.mint_lookup_value());
        record.verifier = verifier.as_ref().map(|v| v.key.clone());
        let mut tx = self.deps.store.begin().await?;
        if !tx.logouts().transition_request(&record, from).await? {
            return Err(handled());
        }
        tx.commit().await?;
        Ok(verifier.map(|v| self.verifier_url(&v.value)))
    }

    /// Where the browser brings a logout verifier back.
    fn verifier_url(&self, verifier: &str) -> String {
        with_params(
            &self.settings.url(public::LOGOUT),
            &[("logout_verifier", verifier)],
        )
    }

    /// `PUT /admin/oauth2/auth/requests/logout/accept`.
    pub async fn accept_logout(&self, challenge: &str) -> Result<RedirectTo, FlowError> {
        let redirect_to = self
            .answer_logout(challenge, LogoutState::Accepted)
            .await?
            .unwrap_or_default();
        Ok(RedirectTo { redirect_to })
    }

    /// `PUT /admin/oauth2/auth/requests/logout/reject`: the user stays signed in.
    pub async fn reject_logout(&self, challenge: &str) -> Result<(), FlowError> {
        self.answer_logout(challenge, LogoutState::Rejected).await?;
        Ok(())
    }

    /// Ends login sessions without a browser (the admin API, the "Your sessions" page): the
    /// same write as a browser's logout, back-channel logouts included.
    pub async fn end_login_sessions(
        &self,
        sessions: SessionSelector,
        kind: RevocationKind,
    ) -> Result<LogoutWritten, StoreError> {
        let write = LogoutWrite {
            sessions,
            request: None,
            batch: self.deps.ordered_id(),
            now: self.deps.clock.now(),
            kind,
        };
        Ok(self
            .deps
            .store
            .end_sessions(write)
            .await?
            .unwrap_or_default())
    }

    /// The subject's login sessions (their browsers and devices), newest first, each with the
    /// apps signed in through it: what "Your sessions" lists.
    pub async fn sessions_of(&self, subject: &str) -> Result<Vec<SessionView>, StoreError> {
        let now = self.deps.clock.now();
        let mut tx = self.deps.store.read().await?;
        let sessions = tx.login_sessions().list_for_subject(subject).await?;
        let mut out = Vec::with_capacity(sessions.len());
        for s in sessions.into_iter().filter(|s| s.expires_at > now) {
            let apps = tx.logouts().participants(&s.id).await?;
            out.push(SessionView { session: s, apps });
        }
        Ok(out)
    }

    /// Ends one of the subject's own login sessions; false when `sid` is not theirs (nothing
    /// is written then).
    pub async fn end_own_session(&self, subject: &str, sid: &str) -> Result<bool, StoreError> {
        let owned = self
            .deps
            .store
            .read()
            .await?
            .login_sessions()
            .get(sid)
            .await?
            .is_some_and(|s| s.subject == subject);
        if !owned {
            return Ok(false);
        }
        let written = self
            .end_login_sessions(
                SessionSelector::One {
                    sid: sid.to_owned(),
                    subject: subject.to_owned(),
                },
                RevocationKind::Logout,
            )
            .await?;
        Ok(!written.ended.is_empty())
    }

    /// A back-channel logout token for `d` (Back-Channel Logout 1.0 §2.4): signed with the ID
    /// token key (RS256), `typ: logout+jwt`, never a `nonce`.
    fn logout_token(&self, d: &BackchannelDelivery, now: UnixTime) -> Result<String, String> {
        let mut claims = serde_json::json!({
            "iss": self.settings.issuer,
            "aud": [d.client_id],
            "iat": now,
            "exp": now + LOGOUT_TOKEN_TTL,
            "jti": d.id,
            "sub": d.subject,
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        });
        if d.include_sid {
            claims["sid"] = Value::String(d.sid.clone());
        }
        let ring = self.keys.current();
        let key = ring.signer(SigningAlg::RS256).map_err(|e| e.to_string())?;
        Ok(key.sign_jwt("logout+jwt", &claims))
    }

    /// Sends the back-channel logout tokens that are due, at most `limit`, and records each
    /// outcome: delivered, or tried again later (after 5 s, 10 s, 20 s, … up to an hour), until
    /// [`MAX_DELIVERY_ATTEMPTS`]. Each delivery is taken by one sender at a time, across
    /// replicas.
    pub async fn deliver_backchannel_logouts(
        &self,
        sender: &dyn BackchannelSender,
        limit: u32,
    ) -> Result<DeliveryReport, StoreError> {
        let now = self.deps.clock.now();
        let due = self
            .deps
            .store
            .read()
            .await?
            .logouts()
            .due(now, limit)
            .await?;
        let mut report = DeliveryReport::default();
        for mut d in due {
            let mut tx = self.deps.store.begin().await?;
            let taken = tx.logouts().claim(&d, now + DELIVERY_LEASE).await?;
            tx.commit().await?;
            if !taken {
                continue;
            }
            let result = match self.logout_token(&d, self.deps.clock.now()) {
                Ok(token) => sender.send(&d.uri, &token).await,
                Err(e) => Err(e),
            };
            let at = self.deps.clock.now();
            d.attempts += 1;
            match result {
                Ok(()) => {
                    report.delivered += 1;
                    d.delivered_at = Some(at);
                    d.next_attempt_at = None;
                    d.last_error = None;
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::info!(client_id = %d.client_id, attempts = d.attempts, error = %e, "back-channel logout not delivered");
                    d.last_error = Some(e.chars().take(300).collect());
                    d.next_attempt_at =
                        (d.attempts < MAX_DELIVERY_ATTEMPTS).then(|| at + backoff(d.attempts));
                }
            }
            let mut tx = self.deps.store.begin().await?;
            tx.logouts().record_attempt(&d).await?;
            tx.commit().await?;
        }
        Ok(report)
    }
}

/// Seconds to wait after `attempts` failed attempts: 5 s doubled each time, at most an hour.
pub fn backoff(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    (5_i64 << exp).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_request_moves_once() {
        use LogoutState::{Accepted, Done, Rejected, Requested};
        let all = [Requested, Accepted, Rejected, Done];
        let allowed = [
            (Requested, Accepted),
            (Requested, Rejected),
            (Accepted, Done),
        ];
        for from in all {
            for to in all {
                assert_eq!(from.may_advance_to(to), allowed.contains(&(from, to)));
            }
            assert_eq!(LogoutState::parse(from.as_str()), Some(from));
        }
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), 5);
        assert_eq!(backoff(2), 10);
        assert_eq!(backoff(3), 20);
        assert_eq!(backoff(12), 3600);
        assert_eq!(backoff(100), 3600);
    }
}
