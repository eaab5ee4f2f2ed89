//! Cross-cutting layers: request ids, tracing, metrics, security headers, body limits, panics,
//! and the admin API's optional bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_core::entropy::{EntropyExt as _, SystemEntropy};
use latchkey_core::secret::ct_eq;
use latchkey_types::ErrorCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::metrics::RequestMetrics;
use crate::oauth::bearer_token;
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
    let metrics = Arc::new(RequestMetrics::new(listener));
    let router = router
        .layer(axum::middleware::from_fn(move |req, next| {
            record_metrics(metrics.clone(), req, next)
        }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), RandomRequestId::default()))
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
            .map_response(move |res| security_headers(res, hsts)),
    )
}

/// `Retry-After` on every 503, and the headers every response carries unless its handler set its own (a page's own
/// `Content-Security-Policy`, for one). One pass, with room made once, rather than a layer and a
/// reallocation of the header map per header.
fn security_headers(mut res: Response, hsts: bool) -> Response {
    const ALWAYS: [(HeaderName, &str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    const HSTS: (HeaderName, &str) = (
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    // A 503 (the database unreachable, SQLite's writer queue full) tells the client when to try
    // again, whichever handler answered it.
    if res.status() == StatusCode::SERVICE_UNAVAILABLE
        && !res.headers().contains_key(header::RETRY_AFTER)
    {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    let headers = res.headers_mut();
    headers.reserve(ALWAYS.len() + usize::from(hsts));
    for (name, value) in ALWAYS.iter().chain(hsts.then_some(&HSTS)) {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

/// Request ids (`x-request-id`, when the caller sent none): random version 4 UUIDs from the
/// process's generator, without a system call per request.
#[derive(Clone, Default)]
struct RandomRequestId(Arc<SystemEntropy>);

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = self.0.uuid().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("The requested resource could not be found.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::invalid_request("The method is not allowed for this resource.")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// Counts requests and times them, per listener, route, method and status.
async fn record_metrics(metrics: Arc<RequestMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let res = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.record(route, &method, res.status(), start.elapsed());
    res
}

/// Requires `Authorization: Bearer <admin token>` when one is configured.
pub async fn admin_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(expected) = &state.settings.admin_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
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
/// The request with `prefix` (the issuer's path, `/t1`) taken off its path, when it has it.
pub fn strip_prefix(prefix: &str, mut req: Request) -> Request {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix(prefix) else {
        return req;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return req;
    }
    let rest = if rest.is_empty() { "/" } else { rest };
    let rewritten = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    if let Ok(uri) = rewritten.parse() {
        *req.uri_mut() = uri;
    }
    req
}

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
