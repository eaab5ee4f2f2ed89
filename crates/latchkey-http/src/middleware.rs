//! Cross-cutting layers: request ids, tracing, metrics, security headers, body limits, panics,
//! and the admin API's optional bearer token.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_core::secret::ct_eq;
use latchkey_types::ErrorCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The layers every route of a listener gets, and a JSON 404 for everything else.
/// `hsts` adds `Strict-Transport-Security` (the issuer is https: the listener is reached through
/// TLS, terminated here or at a proxy).
pub fn common(router: Router<AppState>, listener: &'static str, hsts: bool) -> Router<AppState> {
    let router = router
        .layer(axum::middleware::from_fn(move |req, next| {
            record_metrics(listener, req, next)
        }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let router = if hsts {
        router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ))
    } else {
        router
    };
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request| {
                let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                // The path only: query strings can carry codes, challenges and tokens.
                tracing::info_span!("request", listener, request_id, method = %req.method(), path = %req.uri().path())
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::new(ErrorCode::ServerError, "The server could not complete the request.").into_response()
            }))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            )),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("The requested resource could not be found.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::invalid_request("The method is not allowed for this resource.")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Counts requests and times them, per listener, route, method and status.
async fn record_metrics(listener: &'static str, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    let labels = [
        ("listener", listener.to_owned()),
        ("route", route),
        ("method", method),
        ("status", res.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Requires `Authorization: Bearer <admin token>` when one is configured.
pub async fn admin_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(expected) = &state.settings.admin_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !ct_eq(presented.as_bytes(), expected.expose().as_bytes()) {
            let mut res = ApiError::new(
                ErrorCode::InvalidToken,
                "The admin API needs a valid bearer token.",
            )
            .into_response();
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"admin\""),
            );
            return res;
        }
    }
    next.run(req).await
}

/// Rewrites `/x` to `/admin/x` on the admin listener, as Hydra does.
pub fn add_admin_prefix(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.starts_with("/admin/") || path == "/admin" {
        return req;
    }
    let rewritten = match req.uri().query() {
        Some(q) => format!("/admin{path}?{q}"),
        None => format!("/admin{path}"),
    };
    if let Ok(uri) = rewritten.parse() {
        *req.uri_mut() = uri;
    }
    req
}
