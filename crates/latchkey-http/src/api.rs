//! The self-service API, `/api/v1/accounts/{account_id}/apps`: the developer console's services
//! in JSON, for a signed-in user (session cookie and an `X-CSRF-Token` header on writes) or a
//! Latchkey access token carrying `apps.write`. Refused tokens count against the caller's
//! address (`rate_limits.api_bad_token_per_ip`).

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use latchkey_core::platform::apps::AppView;
use latchkey_core::platform::{PlatformError, Principal};
use latchkey_core::throttle::Limit;
use latchkey_types::ErrorCode;
use latchkey_types::platform::{AppInput, AppOutput, ScopeRequest};
use latchkey_types::routes::public;

use crate::cookies;
use crate::error::ApiError;
use crate::extract::Json;
use crate::oauth::bearer_token;
use crate::state::AppState;
use crate::throttle::{client_ip, too_many};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(public::API_CATALOG, get(catalog))
        .route(public::API_OPENAPI, get(crate::openapi::api))
        .route(public::API_APPS, get(list).post(create))
        .route(public::API_APP, get(show).patch(update).delete(remove))
        .route(
            public::API_APP_ROTATE_SECRET,
            post(rotate).delete(confirm_rotation),
        )
        .route(public::API_APP_VERIFICATION, post(verify))
        .route(public::API_APP_SCOPE_REQUESTS, post(request_scope))
}

impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Store(s)
            | PlatformError::Flow(latchkey_core::oauth::flow::FlowError::Store(s)) => s.into(),
            PlatformError::Internal(m) => Self::internal(&m),
            other => {
                let status = crate::error::platform_status(&other);
                Self::new(other.code(), other.to_string()).with_status(status)
            }
        }
    }
}

/// Who calls the API.
pub struct Caller(pub Principal);

/// Where the API's protected resource metadata is (RFC 9728 §3.1): the well-known path
/// followed by the API's path, on the issuer's host.
fn resource_metadata_url(state: &AppState) -> String {
    let resource = latchkey_core::oauth::resources::api_resource(state.issuer());
    match url::Url::parse(&resource) {
        Ok(mut u) => {
            let path = format!("/.well-known/oauth-protected-resource{}", u.path());
            u.set_path(&path);
            u.into()
        }
        Err(_) => resource,
    }
}

/// A refusal with its `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9728 §5.1).
fn challenge(state: &AppState, error: ApiError, params: &str) -> Response {
    let mut res = error.into_response();
    let value = format!(
        "Bearer realm=\"latchkey\", {params}resource_metadata=\"{}\"",
        resource_metadata_url(state)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

fn unauthenticated(state: &AppState) -> Response {
    let error = ApiError::new(
        ErrorCode::InvalidToken,
        "Sign in, or send a bearer token with the apps.write scope.",
    )
    .with_status(StatusCode::UNAUTHORIZED);
    challenge(state, error, "scope=\"apps.write\", ")
}

fn insufficient_scope(state: &AppState, scope: &str) -> Response {
    let error = ApiError::new(
        ErrorCode::InsufficientScope,
        format!("This call needs a token with the {scope} scope."),
    )
    .with_status(StatusCode::FORBIDDEN);
    challenge(
        state,
        error,
        &format!("error=\"insufficient_scope\", scope=\"{scope}\", "),
    )
}

impl Caller {
    /// The caller of a bearer token. A refused token counts against the address; an address
    /// over the limit is refused before its token is looked up, so guessing costs nothing but
    /// the guesser's time.
    async fn by_token(state: &AppState, parts: &Parts, token: &str) -> Result<Self, Response> {
        const LIMIT: Limit = Limit::ApiBadTokenPerIp;
        let throttle = state.engine.throttle();
        let address = throttle
            .applies(LIMIT)
            .then(|| client_ip(state, &parts.headers, &parts.extensions));
        let over = |t| too_many(LIMIT, parts.uri.path(), t);
        if let Some(a) = &address {
            throttle.refused(LIMIT, a).map_err(over)?;
        }
        match state.platform.token_principal(token).await {
            Ok(p) => Ok(Self(p)),
            Err(PlatformError::Unauthenticated) => {
                if let Some(a) = &address {
                    throttle.count_failure(LIMIT, a).map_err(over)?;
                }
                Err(unauthenticated(state))
            }
            Err(PlatformError::InsufficientScope { scope }) => {
                Err(insufficient_scope(state, scope))
            }
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if let Some(token) = bearer {
            return Self::by_token(state, parts, token).await;
        }
        let Some(cookie) = cookies::get(&parts.headers, cookies::CONSOLE, state.secure()) else {
            return Err(unauthenticated(state));
        };
        let Some((session, principal)) = state
            .platform
            .session(&cookie)
            .await
            .map_err(|e| ApiError::from(e).into_response())?
        else {
            return Err(unauthenticated(state));
        };
        if parts.method != Method::GET {
            let presented = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            state
                .platform
                .check_form_token("console", &session.id, presented)
                .map_err(|e| ApiError::from(e).into_response())?;
        }
        Ok(Self(principal))
    }
}

fn out(app: &AppView) -> axum::Json<AppOutput> {
    axum::Json(app.to_output(None))
}

async fn catalog(State(s): State<AppState>) -> Response {
    let scopes: Vec<serde_json::Value> = s
        .platform
        .catalog()
        .all()
        .iter()
        .map(|c| serde_json::json!({"name": c.name, "title": c.title, "description": c.description, "group": c.group, "sensitivity": c.sensitivity}))
        .collect();
    axum::Json(serde_json::json!({ "scopes": scopes })).into_response()
}

async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    let apps = s.platform.list_apps(&p, &account).await?;
    let body: Vec<AppOutput> = apps.iter().map(|a| a.to_output(None)).collect();
    Ok(axum::Json(body).into_response())
}

async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(account): Path<String>,
    Json(input): Json<AppInput>,
) -> Result<Response, ApiError> {
    let (app, secret) = s.platform.create_app(&p, &account, &input).await?;
    let mut res = (
        StatusCode::CREATED,
        axum::Json(app.to_output(secret.as_ref())),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn show(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((account, client)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(out(&s.platform.get_app(&p, &account, &client).await?).into_response())
}

async fn update(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((account, client)): Path<(String, String)>,
    Json(input): Json<AppInput>,
) -> Result<Response, ApiError> {
    Ok(out(&s.platform.update_app(&p, &account, &client, &input).await?).into_response())
}

async fn remove(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((account, client)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    s.platform.delete_app(&p, &account, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn rotate(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((account, client)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (app, secret) = s.platform.rotate_secret(&p, &account, &client).await?;
    let mut res = axum::Json(app.to_output(Some(&secret))).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn confirm_rotation(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((account, client)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(out(&s.platform.confirm_rotation(&p, &account, &client).await?).into_response())
}

async fn verify(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((account, client)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(out(&s.platform.verify_domain(&p, &account, &client).await?).into_response())
}

async fn request_scope(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((account, client)): Path<(String, String)>,
    Json(r): Json<ScopeRequest>,
) -> Result<Response, ApiError> {
    Ok(out(&s
        .platform
        .request_scope(&p, &account, &client, &r.scope)
        .await?)
    .into_response())
}
