//! `/.well-known/openid-configuration`, `/.well-known/oauth-authorization-server` and
//! `/.well-known/jwks.json`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::discovery::provider_metadata;

use crate::state::AppState;

fn cacheable(body: impl IntoResponse) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

pub async fn metadata(State(state): State<AppState>) -> Response {
    let ring = state.keys.keys().current();
    cacheable(axum::Json(provider_metadata(
        state.issuer(),
        &ring.algorithms(),
    )))
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let ring = state.keys.keys().current();
    cacheable(axum::Json(ring.jwks().clone()))
}
