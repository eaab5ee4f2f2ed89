//! `GET|POST /userinfo` (OIDC Core §5.3) with a bearer token (RFC 6750).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::params::Params;
use latchkey_core::oauth::userinfo::UserinfoError;

use crate::oauth::{bearer_token, no_store};
use crate::state::AppState;

fn challenge(status: StatusCode, value: &'static str) -> Response {
    let mut res = status.into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    no_store(res.headers_mut());
    res
}

/// The bearer token: from the `Authorization` header, or (POST only) the `access_token` form
/// parameter — never both (RFC 6750 §2).
fn bearer(headers: &HeaderMap, body: Option<&[u8]>) -> Result<Option<String>, ()> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let from_header = match header {
        None => None,
        Some(h) => Some(bearer_token(h).ok_or(())?.to_owned()),
    };
    let from_body = match body.filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => {
            let text = std::str::from_utf8(b).map_err(|_| ())?;
            Params::parse(text)
                .map_err(|_| ())?
                .get("access_token")
                .map_err(|_| ())?
                .map(str::to_owned)
        }
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(()),
        (a, b) => Ok(a.or(b)),
    }
}

async fn answer(state: &AppState, token: Result<Option<String>, ()>) -> Response {
    let token = match token {
        Err(()) => return challenge(StatusCode::BAD_REQUEST, "Bearer error=\"invalid_request\""),
        Ok(None) => return challenge(StatusCode::UNAUTHORIZED, "Bearer"),
        Ok(Some(t)) => t,
    };
    match state.engine.userinfo(&token).await {
        Ok(claims) => {
            let mut res = axum::Json(claims).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(UserinfoError::InvalidToken) => challenge(
            StatusCode::UNAUTHORIZED,
            "Bearer error=\"invalid_token\", error_description=\"The access token is invalid, expired or revoked\"",
        ),
        Err(UserinfoError::InsufficientScope) => challenge(
            StatusCode::FORBIDDEN,
            "Bearer error=\"insufficient_scope\", scope=\"openid\"",
        ),
        Err(UserinfoError::Store(e)) => crate::ApiError::from(e).into_response(),
    }
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer(&state, bearer(&headers, None)).await
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&state, bearer(&headers, Some(&body))).await
}
