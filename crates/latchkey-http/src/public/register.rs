//! `POST /oauth2/register` and `GET|PUT|DELETE /oauth2/register/{client_id}`: dynamic client
//! registration (RFC 7591/7592), when the operator opens it. The protocol is in
//! `latchkey_core::oauth::registration`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::registration::RegistrationError;
use latchkey_core::store::StoreError;
use latchkey_types::ErrorCode;
use latchkey_types::client::RegistrationRequest;

use crate::error::ApiError;
use crate::extract::Json;
use crate::oauth::bearer_token;
use crate::state::AppState;

fn refused(e: RegistrationError) -> Response {
    if let RegistrationError::Store(s @ StoreError::Unavailable(_)) = e {
        return ApiError::from(s).into_response();
    }
    if let RegistrationError::Store(s) = &e {
        return ApiError::internal(s).into_response();
    }
    let code = e.code();
    let mut res = ApiError::new(code, e.to_string()).into_response();
    if code == ErrorCode::InvalidToken {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    res
}

fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
}

fn no_store(status: StatusCode, body: impl serde::Serialize) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegistrationRequest>,
) -> Response {
    match state.engine.register(&req).await {
        Ok(r) => no_store(StatusCode::CREATED, r),
        Err(e) => refused(e),
    }
}

pub async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.engine.registration(&client_id, token(&headers)).await {
        Ok(r) => no_store(StatusCode::OK, r),
        Err(e) => refused(e),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<RegistrationRequest>,
) -> Response {
    match state
        .engine
        .update_registration(&client_id, token(&headers), &req)
        .await
    {
        Ok(r) => no_store(StatusCode::OK, r),
        Err(e) => refused(e),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state
        .engine
        .delete_registration(&client_id, token(&headers))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}
