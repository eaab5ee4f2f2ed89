//! `POST /oauth2/device/auth` and `GET /oauth2/device/verify` (RFC 8628, as Hydra v25.4+).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::params::Params;
use latchkey_types::ErrorCode;

use crate::oauth::{Authorization, OAuthError, OAuthForm, no_store};
use crate::pages::ErrorPage;
use crate::state::AppState;
use crate::{cookies, throttle};

pub async fn authorization(
    State(state): State<AppState>,
    authorization: Authorization,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    let answer = state
        .engine
        .device_authorization(authorization.as_str(), &params)
        .await?;
    let mut res = axum::Json(answer).into_response();
    no_store(res.headers_mut());
    Ok(res)
}

pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::parse(query.as_deref().unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => {
            return ErrorPage::response(
                ErrorCode::InvalidRequest,
                format!("The request is not valid: {e}."),
            );
        }
    };
    let secure = state.engine.settings().secure_cookies();
    let address = throttle::client_ip(&state, &headers, &extensions);
    let outcome = state
        .engine
        .device_verify(&params, &cookies::read(&headers, secure), &address)
        .await;
    super::authorize::respond(outcome, secure, StatusCode::FOUND)
}
