//! The scenarios: what one operation is, and the untimed setup each needs.
//!
//! Paths and JSON shapes default to Ory Hydra v2's (which Latchkey implements); flags override the
//! paths and client handling for peers with other layouts (node-oidc-provider).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::http::{self, Conn, CookieJar, Origin, Response};
use crate::recorder::Recorder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// client_credentials grant, opaque access tokens.
    ClientCredentials,
    /// client_credentials grant, JWT access tokens.
    ClientCredentialsJwt,
    /// Introspection of valid opaque access tokens.
    Introspect,
    /// refresh_token grant, each request with the refresh token the previous one returned.
    Refresh,
    /// The whole authorization code + PKCE flow through login and consent (Hydra admin API).
    AuthCode,
    /// Revocation of distinct, valid access tokens.
    Revoke,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ClientCredentials => "client-credentials",
            Scenario::ClientCredentialsJwt => "client-credentials-jwt",
            Scenario::Introspect => "introspect",
            Scenario::Refresh => "refresh",
            Scenario::AuthCode => "auth-code",
            Scenario::Revoke => "revoke",
        }
    }

    /// The names of the requests one operation makes, in order.
    pub fn steps(self, flow: Flow) -> &'static [&'static str] {
        match self {
            Scenario::ClientCredentials | Scenario::ClientCredentialsJwt | Scenario::Refresh => {
                &["token"]
            }
            Scenario::Introspect => &["introspect"],
            Scenario::Revoke => &["revoke"],
            Scenario::AuthCode => match flow {
                Flow::Hydra => HYDRA_FLOW_STEPS,
                Flow::Browser => BROWSER_FLOW_STEPS,
            },
        }
    }
}

/// How the authorization code flow gets through login and consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flow {
    /// Ory Hydra's admin API: PUT login/accept and consent/accept, then follow `redirect_to`.
    Hydra,
    /// A login/consent app on the public port that accepts at once (the peer's stand-in): follow
    /// every redirect on the public listener with the flow's cookies until the client's
    /// redirect URI. Sends `prompt=consent`, which some servers need to issue refresh tokens.
    Browser,
}

const HYDRA_FLOW_STEPS: &[&str] = &[
    "authorize",
    "login-accept",
    "login-verifier",
    "consent-accept",
    "consent-verifier",
    "token",
];
const BROWSER_FLOW_STEPS: &[&str] = &[
    "authorize",
    "login",
    "login-resume",
    "consent",
    "consent-resume",
    "token",
];

/// How the introspection endpoint authenticates its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IntrospectAuth {
    /// No client authentication (Hydra's admin endpoint; the admin token if one is given).
    Admin,
    /// client_secret_basic with the scenario's client (RFC 7662 on a public port).
    Client,
}

/// An OAuth client the scenarios use.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub basic: HeaderValue,
}

impl Client {
    pub fn new(id: &str, secret: &str) -> Client {
        Client {
            id: id.to_owned(),
            basic: http::basic_auth(id, secret),
        }
    }

    /// Parses `ID:SECRET`.
    pub fn parse(value: &str) -> anyhow::Result<Client> {
        let (id, secret) = value
            .split_once(':')
            .ok_or_else(|| anyhow!("a client is given as ID:SECRET"))?;
        Ok(Client::new(id, secret))
    }
}

/// The server under test and how to talk to it.
#[derive(Debug, Clone)]
pub struct Target {
    pub public: Arc<Origin>,
    pub public_base: url::Url,
    pub admin: Option<Arc<Origin>>,
    pub admin_token: Option<HeaderValue>,
    pub auth_path: String,
    pub token_path: String,
    pub revoke_path: String,
    pub introspect: Arc<Origin>,
    pub introspect_path: String,
    pub introspect_auth: IntrospectAuth,
    /// Clients configured in the server; without them, clients are created via the admin API.
    pub client: Option<Client>,
    pub jwt_client: Option<Client>,
    pub redirect_uri: String,
    pub scope: String,
    pub flow: Flow,
}

impl Target {
    fn admin(&self) -> anyhow::Result<&Arc<Origin>> {
        self.admin
            .as_ref()
            .ok_or_else(|| anyhow!("this scenario needs --admin-url"))
    }

    fn admin_headers(&self, content_type: HeaderValue) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![(header::CONTENT_TYPE, content_type)];
        if let Some(token) = &self.admin_token {
            headers.push((header::AUTHORIZATION, token.clone()));
        }
        headers
    }
}

impl Shared {
    pub fn steps(&self) -> &'static [&'static str] {
        self.scenario.steps(self.target.flow)
    }
}

/// What all workers of a run share.
pub struct Shared {
    pub scenario: Scenario,
    pub target: Target,
    pub client: Client,
    /// Pre-minted access tokens (introspect: reused round-robin; revoke: each used once).
    pub tokens: Vec<String>,
    pub next_token: AtomicUsize,
    /// Refresh tokens not yet given to a worker (a worker whose chain breaks takes one).
    pub spare_refresh_tokens: Mutex<Vec<String>>,
    /// Makes PKCE verifiers, states and subjects unique across runs and flows.
    pub seed: String,
    pub flows: AtomicU64,
}

/// What one operation ended with, apart from errors.
pub enum Outcome {
    Done,
    /// The scenario's pre-minted tokens are used up: this worker stops.
    Exhausted,
}

/// One worker: its own connections, and the state its scenario carries from one op to the next.
pub struct Worker {
    shared: Arc<Shared>,
    public: Conn,
    admin: Option<Conn>,
    introspect: Option<Conn>,
    refresh_token: Option<String>,
    cc_body: Bytes,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct RedirectTo {
    redirect_to: String,
}

#[derive(Deserialize)]
struct Introspection {
    active: bool,
}

#[derive(Deserialize)]
struct CreatedClient {
    client_id: String,
    client_secret: String,
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 302 | 303)
}

impl Worker {
    pub fn new(shared: Arc<Shared>) -> Worker {
        let target = &shared.target;
        let admin = target.admin.clone().map(Conn::new);
        let introspect = matches!(shared.scenario, Scenario::Introspect)
            .then(|| Conn::new(target.introspect.clone()));
        Worker {
            public: Conn::new(target.public.clone()),
            admin,
            introspect,
            refresh_token: None,
            cc_body: http::form(&[("grant_type", "client_credentials")]),
            shared,
        }
    }

    /// Opens the connections this worker's scenario uses.
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        self.public.connect().await?;
        if matches!(self.shared.scenario, Scenario::AuthCode)
            && let Some(admin) = &mut self.admin
        {
            admin.connect().await?;
        }
        if let Some(introspect) = &mut self.introspect {
            introspect.connect().await?;
        }
        if matches!(self.shared.scenario, Scenario::Refresh) {
            self.take_spare_refresh_token();
        }
        Ok(())
    }

    fn take_spare_refresh_token(&mut self) {
        self.refresh_token = self
            .shared
            .spare_refresh_tokens
            .lock()
            .ok()
            .and_then(|mut spares| spares.pop());
    }

    /// Runs one operation of the scenario.
    pub async fn op(&mut self, rec: &mut Recorder) -> anyhow::Result<Outcome> {
        match self.shared.scenario {
            Scenario::ClientCredentials | Scenario::ClientCredentialsJwt => {
                self.client_credentials(rec, 0).await?;
            }
            Scenario::Introspect => self.introspect(rec).await?,
            Scenario::Refresh => return self.refresh(rec).await,
            Scenario::AuthCode => {
                self.auth_code_flow(rec).await?;
            }
            Scenario::Revoke => return self.revoke(rec).await,
        }
        Ok(Outcome::Done)
    }

    fn token_headers(&self) -> [(HeaderName, HeaderValue); 2] {
        [
            (header::CONTENT_TYPE, http::FORM),
            (header::AUTHORIZATION, self.shared.client.basic.clone()),
        ]
    }

    /// POST token grant_type=client_credentials; returns the access token.
    async fn client_credentials(
        &mut self,
        rec: &mut Recorder,
        step: usize,
    ) -> anyhow::Result<String> {
        let headers = self.token_headers();
        let path = self.shared.target.token_path.clone();
        let body = self.cc_body.clone();
        let response = rec
            .step(step, self.public.send(Method::POST, &path, &headers, body))
            .await?;
        let response = checked(rec, step, response, StatusCode::OK)?;
        // The hot loop only needs the status; the token is read when setup asks for it.
        if rec.recording {
            return Ok(String::new());
        }
        let token: TokenResponse = serde_json::from_slice(&response.body)
            .with_context(|| format!("token response: {}", response.describe()))?;
        Ok(token.access_token)
    }

    async fn introspect(&mut self, rec: &mut Recorder) -> anyhow::Result<()> {
        let shared = &self.shared;
        let index = shared.next_token.fetch_add(1, Ordering::Relaxed) % shared.tokens.len().max(1);
        let token = shared
            .tokens
            .get(index)
            .ok_or_else(|| anyhow!("no token to introspect"))?;
        let body = http::form(&[("token", token)]);
        let mut headers = vec![(header::CONTENT_TYPE, http::FORM)];
        match shared.target.introspect_auth {
            IntrospectAuth::Admin => {
                if let Some(admin_token) = &shared.target.admin_token {
                    headers.push((header::AUTHORIZATION, admin_token.clone()));
                }
            }
            IntrospectAuth::Client => {
                headers.push((header::AUTHORIZATION, shared.client.basic.clone()));
            }
        }
        let path = shared.target.introspect_path.clone();
        let conn = self
            .introspect
            .as_mut()
            .ok_or_else(|| anyhow!("no introspection connection"))?;
        let response = rec
            .step(0, conn.send(Method::POST, &path, &headers, body))
            .await?;
        let response = checked(rec, 0, response, StatusCode::OK)?;
        let parsed: Introspection = serde_json::from_slice(&response.body)
            .with_context(|| format!("introspection response: {}", response.describe()))?;
        if !parsed.active {
            rec.fail_step(0);
            bail!("a valid token was introspected as inactive");
        }
        Ok(())
    }

    async fn refresh(&mut self, rec: &mut Recorder) -> anyhow::Result<Outcome> {
        let Some(refresh_token) = self.refresh_token.take() else {
            return Ok(Outcome::Exhausted);
        };
        let result = self.refresh_once(rec, &refresh_token).await;
        match result {
            Ok(next) => {
                self.refresh_token = Some(next);
                Ok(Outcome::Done)
            }
            Err(error) => {
                // The chain is broken: carry on with a spare one.
                self.take_spare_refresh_token();
                Err(error)
            }
        }
    }

    async fn refresh_once(
        &mut self,
        rec: &mut Recorder,
        refresh_token: &str,
    ) -> anyhow::Result<String> {
        let body = http::form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ]);
        let headers = self.token_headers();
        let path = self.shared.target.token_path.clone();
        let response = rec
            .step(0, self.public.send(Method::POST, &path, &headers, body))
            .await?;
        let response = checked(rec, 0, response, StatusCode::OK)?;
        let token: TokenResponse = serde_json::from_slice(&response.body)
            .with_context(|| format!("token response: {}", response.describe()))?;
        token.refresh_token.ok_or_else(|| {
            rec.fail_step(0);
            anyhow!("refresh response without refresh_token")
        })
    }

    async fn revoke(&mut self, rec: &mut Recorder) -> anyhow::Result<Outcome> {
        let shared = self.shared.clone();
        let index = shared.next_token.fetch_add(1, Ordering::Relaxed);
        let Some(token) = shared.tokens.get(index) else {
            return Ok(Outcome::Exhausted);
        };
        let body = http::form(&[("token", token), ("token_type_hint", "access_token")]);
        let headers = self.token_headers();
        let response = rec
            .step(
                0,
                self.public
                    .send(Method::POST, &shared.target.revoke_path, &headers, body),
            )
            .await?;
        checked(rec, 0, response, StatusCode::OK)?;
        Ok(Outcome::Done)
    }

    /// The whole authorization code + PKCE flow; returns the token response.
    async fn auth_code_flow(&mut self, rec: &mut Recorder) -> anyhow::Result<TokenResponse> {
        let shared = self.shared.clone();
        let target = &shared.target;
        let n = shared.flows.fetch_add(1, Ordering::Relaxed);
        let verifier = hex(&Sha256::digest(format!("{}:{n}", shared.seed)));
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
        let state = format!("state-{n}-{}", &shared.seed[..8.min(shared.seed.len())]);
        let mut jar = CookieJar::default();

        // 1. GET /oauth2/auth → 302 to the login URL with login_challenge.
        let query = {
            // The serializer is not Send: keep it out of the awaits.
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &shared.client.id)
                .append_pair("redirect_uri", &target.redirect_uri)
                .append_pair("scope", &target.scope)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if target.flow == Flow::Browser {
                query.append_pair("prompt", "consent");
            }
            query.finish()
        };
        let path = format!("{}?{query}", target.auth_path);
        let response = rec
            .step(0, self.public.send(Method::GET, &path, &[], Bytes::new()))
            .await?;
        let login = self.redirect(rec, 0, &response, &mut jar)?;
        let callback = match target.flow {
            Flow::Hydra => self.hydra_login_consent(rec, n, login, &mut jar).await?,
            Flow::Browser => {
                // Follow the login and consent app's redirects (steps 1 to 4).
                let mut location = login;
                let mut step = 1;
                while !location.as_str().starts_with(&target.redirect_uri) {
                    if step > 4 {
                        rec.fail_step(4);
                        bail!("more redirects than expected; last to {location}");
                    }
                    location = self.follow(rec, step, location.as_str(), &mut jar).await?;
                    step += 1;
                }
                location
            }
        };
        if let Some(error) = http::query_param(&callback, "error") {
            rec.fail_step(4);
            bail!("the flow ended with error={error}: {callback}");
        }
        if http::query_param(&callback, "state").as_deref() != Some(state.as_str()) {
            rec.fail_step(4);
            bail!("state mismatch in {callback}");
        }
        let code = http::query_param(&callback, "code").ok_or_else(|| {
            rec.fail_step(4);
            anyhow!("no code in {callback}")
        })?;

        // 6. POST token grant_type=authorization_code with the PKCE verifier.
        let body = http::form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &target.redirect_uri),
            ("code_verifier", &verifier),
        ]);
        let headers = self.token_headers();
        let response = rec
            .step(
                5,
                self.public
                    .send(Method::POST, &target.token_path, &headers, body),
            )
            .await?;
        let response = checked(rec, 5, response, StatusCode::OK)?;
        serde_json::from_slice(&response.body)
            .with_context(|| format!("token response: {}", response.describe()))
    }

    /// Steps 1 to 4 through Hydra's login and consent admin API; returns the final redirect to
    /// the client.
    async fn hydra_login_consent(
        &mut self,
        rec: &mut Recorder,
        n: u64,
        login: url::Url,
        jar: &mut CookieJar,
    ) -> anyhow::Result<url::Url> {
        let shared = self.shared.clone();
        let target = &shared.target;
        let login_challenge = http::query_param(&login, "login_challenge").ok_or_else(|| {
            rec.fail_step(0);
            anyhow!("authorize: no login_challenge in {login}")
        })?;

        // 2. PUT login/accept → {"redirect_to"}.
        let subject = format!("user-{n}");
        let body = serde_json::json!({ "subject": subject, "remember": false });
        let redirect_to = self
            .accept(
                rec,
                1,
                "/admin/oauth2/auth/requests/login/accept?login_challenge=",
                &login_challenge,
                &body,
            )
            .await?;

        // 3. GET redirect_to (login verifier) → 302 to the consent URL with consent_challenge.
        let consent = self.follow(rec, 2, &redirect_to, jar).await?;
        let consent_challenge =
            http::query_param(&consent, "consent_challenge").ok_or_else(|| {
                rec.fail_step(2);
                anyhow!("login verifier: no consent_challenge in {consent}")
            })?;

        // 4. PUT consent/accept → {"redirect_to"}.
        let scopes: Vec<&str> = target.scope.split_whitespace().collect();
        let body = serde_json::json!({ "grant_scope": scopes, "remember": false });
        let redirect_to = self
            .accept(
                rec,
                3,
                "/admin/oauth2/auth/requests/consent/accept?consent_challenge=",
                &consent_challenge,
                &body,
            )
            .await?;

        // 5. GET redirect_to (consent verifier) → 302 to the client with code, state and iss.
        let callback = self.follow(rec, 4, &redirect_to, jar).await?;
        if !callback.as_str().starts_with(&target.redirect_uri) {
            rec.fail_step(4);
            bail!("consent verifier: redirected to {callback}, not to the client");
        }
        Ok(callback)
    }

    /// Checks a redirect, keeps its cookies and returns its absolute Location.
    fn redirect(
        &self,
        rec: &mut Recorder,
        step: usize,
        response: &Response,
        jar: &mut CookieJar,
    ) -> anyhow::Result<url::Url> {
        if !is_redirect(response.status) {
            rec.fail_step(step);
            let name = Scenario::AuthCode
                .steps(self.shared.target.flow)
                .get(step)
                .copied()
                .unwrap_or("step");
            bail!("{name}: expected a redirect, got {}", response.describe());
        }
        jar.store(&response.headers);
        let location = response.location()?;
        self.shared
            .target
            .public_base
            .join(location)
            .with_context(|| format!("invalid Location {location}"))
    }

    /// GETs a `redirect_to` URL on the public listener with the flow's cookies; returns the
    /// Location it redirects to.
    async fn follow(
        &mut self,
        rec: &mut Recorder,
        step: usize,
        redirect_to: &str,
        jar: &mut CookieJar,
    ) -> anyhow::Result<url::Url> {
        let url = self
            .shared
            .target
            .public_base
            .join(redirect_to)
            .with_context(|| format!("invalid redirect_to {redirect_to}"))?;
        if !self.public.origin().owns(&url) {
            rec.fail_step(step);
            bail!("redirect_to {url} is not on the public listener");
        }
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let headers: Vec<(HeaderName, HeaderValue)> = jar
            .header()
            .map(|cookie| (header::COOKIE, cookie))
            .into_iter()
            .collect();
        let response = rec
            .step(
                step,
                self.public.send(Method::GET, &path, &headers, Bytes::new()),
            )
            .await?;
        self.redirect(rec, step, &response, jar)
    }

    /// PUTs a login or consent acceptance on the admin listener; returns its `redirect_to`.
    async fn accept(
        &mut self,
        rec: &mut Recorder,
        step: usize,
        route: &str,
        challenge: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<String> {
        let target = &self.shared.target;
        let admin_origin = target.admin()?.clone();
        let challenge: String =
            url::form_urlencoded::byte_serialize(challenge.as_bytes()).collect();
        let path = format!("{}{challenge}", admin_origin.path(route));
        let headers = target.admin_headers(http::JSON);
        let body = Bytes::from(serde_json::to_vec(body)?);
        let admin = self
            .admin
            .as_mut()
            .ok_or_else(|| anyhow!("no admin connection"))?;
        let response = rec
            .step(step, admin.send(Method::PUT, &path, &headers, body))
            .await?;
        let response = checked(rec, step, response, StatusCode::OK)?;
        let parsed: RedirectTo = serde_json::from_slice(&response.body)
            .with_context(|| format!("accept response: {}", response.describe()))?;
        Ok(parsed.redirect_to)
    }
}

fn checked(
    rec: &mut Recorder,
    step: usize,
    response: Response,
    status: StatusCode,
) -> anyhow::Result<Response> {
    response.expect(status).inspect_err(|_| rec.fail_step(step))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A random seed from the kernel (not the clock), for unique verifiers and states.
pub fn random_seed() -> String {
    use std::io::Read;
    let mut buf = [7u8; 16];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        let _ = urandom.read_exact(&mut buf);
    }
    hex(&buf)
}

// ---------------------------------------------------------------------------------------------
// Setup: untimed.
// ---------------------------------------------------------------------------------------------

/// How much to prepare before the timed run.
pub struct SetupPlan {
    pub concurrency: usize,
    /// Tokens to pre-mint for introspection (reused round-robin).
    pub introspect_pool: usize,
    /// For revocation: mint for at most this long, and at most `revoke_pool_max` tokens.
    pub revoke_mint_for: Duration,
    pub revoke_pool_max: usize,
}

/// Creates clients (unless given) and pre-mints tokens; returns what the workers share.
pub async fn setup(
    scenario: Scenario,
    target: Target,
    plan: &SetupPlan,
) -> anyhow::Result<Arc<Shared>> {
    let client = match scenario {
        Scenario::ClientCredentialsJwt => match &target.jwt_client {
            Some(client) => client.clone(),
            None => create_client(&target, "jwt").await?,
        },
        _ => match &target.client {
            Some(client) => client.clone(),
            None => create_client(&target, "opaque").await?,
        },
    };
    let shared = Arc::new(Shared {
        scenario,
        target,
        client,
        tokens: Vec::new(),
        next_token: AtomicUsize::new(0),
        spare_refresh_tokens: Mutex::new(Vec::new()),
        seed: random_seed(),
        flows: AtomicU64::new(0),
    });
    let (tokens, refresh_tokens) = match scenario {
        Scenario::Introspect => (
            mint(
                &shared,
                plan.concurrency,
                plan.introspect_pool,
                Duration::from_secs(60),
            )
            .await?,
            Vec::new(),
        ),
        Scenario::Revoke => (
            mint(
                &shared,
                plan.concurrency,
                plan.revoke_pool_max,
                plan.revoke_mint_for,
            )
            .await?,
            Vec::new(),
        ),
        Scenario::Refresh => (
            Vec::new(),
            refresh_tokens(&shared, plan.concurrency, plan.concurrency + 16).await?,
        ),
        _ => (Vec::new(), Vec::new()),
    };
    if matches!(scenario, Scenario::Introspect | Scenario::Revoke) && tokens.is_empty() {
        bail!("setup: could not mint any token");
    }
    let Ok(shared) = Arc::try_unwrap(shared) else {
        bail!("setup: a minting task is still running");
    };
    Ok(Arc::new(Shared {
        tokens,
        spare_refresh_tokens: Mutex::new(refresh_tokens),
        ..shared
    }))
}

/// POST {admin}/admin/clients with Hydra's JSON; answers 201 with client_id and client_secret.
async fn create_client(target: &Target, strategy: &str) -> anyhow::Result<Client> {
    let admin = target.admin()?.clone();
    let body = serde_json::json!({
        "client_name": format!("bench-{strategy}"),
        "grant_types": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [target.redirect_uri],
        "scope": target.scope,
        "access_token_strategy": strategy,
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let mut conn = Conn::new(admin.clone());
    let response = conn
        .send(
            Method::POST,
            &admin.path("/admin/clients"),
            &target.admin_headers(http::JSON),
            Bytes::from(serde_json::to_vec(&body)?),
        )
        .await
        .context("create client")?;
    if !matches!(response.status.as_u16(), 200 | 201) {
        bail!("create client: {}", response.describe());
    }
    let created: CreatedClient = serde_json::from_slice(&response.body)
        .with_context(|| format!("create client: {}", response.describe()))?;
    Ok(Client::new(&created.client_id, &created.client_secret))
}

/// Mints up to `count` access tokens with client credentials, for at most `budget`.
async fn mint(
    shared: &Arc<Shared>,
    concurrency: usize,
    count: usize,
    budget: Duration,
) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + budget;
    let remaining = Arc::new(AtomicUsize::new(count));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let mut worker = Worker::new(shared.clone());
        let remaining = remaining.clone();
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(1);
            let mut tokens = Vec::new();
            while Instant::now() < deadline
                && remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
            {
                tokens.push(worker.client_credentials(&mut rec, 0).await?);
            }
            anyhow::Ok(tokens)
        }));
    }
    let mut tokens = Vec::with_capacity(count);
    for task in tasks {
        tokens.extend(
            task.await
                .context("minting task")?
                .context("setup: mint tokens")?,
        );
    }
    Ok(tokens)
}

/// Runs `count` authorization code flows and keeps their refresh tokens.
async fn refresh_tokens(
    shared: &Arc<Shared>,
    concurrency: usize,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let remaining = Arc::new(AtomicUsize::new(count));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.clamp(1, 8) {
        let mut worker = Worker::new(shared.clone());
        let remaining = remaining.clone();
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::new(6);
            let mut tokens = Vec::new();
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let response = worker.auth_code_flow(&mut rec).await?;
                tokens.push(response.refresh_token.ok_or_else(|| {
                    anyhow!("the token response has no refresh_token (offline_access granted?)")
                })?);
            }
            anyhow::Ok(tokens)
        }));
    }
    let mut tokens = Vec::with_capacity(count);
    for task in tasks {
        tokens.extend(
            task.await
                .context("setup task")?
                .context("setup: authorization code flows for refresh tokens")?,
        );
    }
    Ok(tokens)
}
