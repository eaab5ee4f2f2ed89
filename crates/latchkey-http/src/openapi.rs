//! The OpenAPI 3.0 descriptions of the admin API (`/admin/openapi.json`) and the self-service
//! API (`/api/v1/openapi.json`). They are maintained by hand next to the handlers; a test holds
//! their paths and methods to the routers, and schemathesis (`scripts/schemathesis`) holds the
//! parameters, bodies, status codes and schemas to what the server does.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The admin API's description.
pub const ADMIN: &str = include_str!("openapi/admin.json");
/// The self-service API's description.
pub const API: &str = include_str!("openapi/api.json");

fn json(body: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `GET /admin/openapi.json`.
pub async fn admin() -> Response {
    json(ADMIN)
}

/// `GET /api/v1/openapi.json`.
pub async fn api() -> Response {
    json(API)
}
