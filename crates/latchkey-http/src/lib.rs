//! The HTTP face of Latchkey: the public OAuth 2.1 / OpenID Connect endpoints, the
//! Hydra-compatible admin API, and the cross-cutting layers (request ids, tracing, metrics,
//! security headers, body limits). Handlers are thin: they parse, call one core service, and
//! answer.
//!
//! This crate depends on the core's traits, never on a storage implementation.

pub mod admin;
mod api;
pub mod backchannel;
pub mod cimd;
mod cookies;
mod error;
mod extract;
pub mod metrics;
mod middleware;
mod oauth;
pub mod openapi;
mod pages;
pub mod platform_io;
pub mod public;
mod state;
mod throttle;
mod ui;

pub use error::ApiError;
pub use state::{AppState, HttpSettings};

use axum::Router;

/// The router of the public listener.
pub fn public_router(state: AppState) -> Router {
    metrics::handle();
    let hsts = state.engine.settings().secure_cookies();
    let router = public::router()
        .merge(ui::router())
        .merge(api::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttle::per_address,
        ));
    let prefix = public::discovery::issuer_path(state.issuer());
    let router = middleware::common(router, "public", hsts).with_state(state);
    if prefix.is_empty() {
        return router;
    }
    // An issuer with a path (`https://host/t1`): its endpoints are under that path, and the
    // same routes answer with it stripped, so a proxy may pass the path on or not.
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(move |req| middleware::strip_prefix(&prefix, req))
            .service(router),
    )
}

/// The router of the admin listener.
pub fn admin_router(state: AppState) -> Router {
    metrics::handle();
    let router = admin::router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttle::per_address,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::admin_auth,
        ));
    let router = middleware::common(router, "admin", false).with_state(state);
    // Hydra also answers its admin API without the /admin prefix (/clients, /health/ready,
    // /version), and its SDK uses some of those paths.
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .map_request(middleware::add_admin_prefix)
            .service(router),
    )
}
