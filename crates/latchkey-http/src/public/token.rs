//! `POST /oauth2/token` and `POST /oauth2/revoke`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::oauth::{Authorization, OAuthError, OAuthForm, Tokens, no_store};
use crate::state::AppState;

pub async fn token(
    State(state): State<AppState>,
    authorization: Authorization,
    OAuthForm(params): OAuthForm,
) -> Result<Tokens, OAuthError> {
    Ok(Tokens(
        state.engine.token(authorization.as_str(), &params).await?,
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    authorization: Authorization,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    state.engine.revoke(authorization.as_str(), &params).await?;
    let mut res = StatusCode::OK.into_response();
    no_store(res.headers_mut());
    Ok(res)
}

pub async fn introspect(
    State(state): State<AppState>,
    authorization: Authorization,
    OAuthForm(params): OAuthForm,
) -> Result<Response, OAuthError> {
    let result = state
        .engine
        .introspect_as_client(authorization.as_str(), &params)
        .await?;
    let mut res = axum::Json(result).into_response();
    no_store(res.headers_mut());
    Ok(res)
}
