//! Per-address rate limits on the OAuth endpoints (per replica): `429 Too Many Requests` with
//! `Retry-After`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_core::throttle::{Limit, Throttled};
use latchkey_types::routes::public;

use crate::error::ApiError;
use crate::pages::ErrorPage;
use crate::state::AppState;

/// The client's address: from the trusted proxy header when configured, else the peer.
pub fn client_ip(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> String {
    if let Some(name) = &state.settings.client_ip_header
        && let Some(v) = headers.get(name).and_then(|v| v.to_str().ok())
        && let Some(first) = v.split(',').next().map(str::trim).filter(|s| !s.is_empty())
    {
        return first.to_owned();
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// The per-address limit of a public or admin route, if it has one.
fn limit_for(path: &str) -> Option<Limit> {
    match path {
        // The device verification endpoint writes a challenge per visit: limited like the
        // authorization endpoint; the device authorization endpoint like the token endpoint.
        public::AUTHORIZE | public::DEVICE_VERIFY => Some(Limit::AuthorizePerIp),
        public::TOKEN | public::DEVICE_AUTHORIZATION => Some(Limit::TokenPerIp),
        public::REVOKE => Some(Limit::RevokePerIp),
        public::USERINFO => Some(Limit::UserinfoPerIp),
        public::REGISTER => Some(Limit::RegisterPerIp),
        public::INTROSPECT | latchkey_types::routes::admin::INTROSPECT => {
            Some(Limit::IntrospectPerIp)
        }
        _ => None,
    }
}

/// The answer to a request over `limit`, logged and counted: `429` with `Retry-After`, as a page
/// on the authorization endpoint and as JSON elsewhere.
pub fn too_many(limit: Limit, path: &str, t: Throttled) -> Response {
    tracing::info!(limit = ?limit, "rate limited");
    metrics::counter!("latchkey_rate_limited_total", "limit" => format!("{limit:?}")).increment(1);
    let secs = t.retry_after.as_secs().max(1);
    let description = format!("Too many requests; retry after {secs} seconds.");
    let mut res = if path == public::AUTHORIZE || path == public::DEVICE_VERIFY {
        let mut r = ErrorPage::response(latchkey_types::ErrorCode::TooManyRequests, description);
        *r.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
        r
    } else {
        ApiError::new(latchkey_types::ErrorCode::TooManyRequests, description).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// Counts the request against its route's per-address limit.
pub async fn per_address(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let throttle = state.engine.throttle();
    if let Some(limit) = limit_for(req.uri().path()).filter(|l| throttle.applies(*l)) {
        let ip = client_ip(&state, req.headers(), req.extensions());
        if let Err(t) = throttle.check(limit, &ip) {
            return too_many(limit, req.uri().path(), t);
        }
    }
    next.run(req).await
}
