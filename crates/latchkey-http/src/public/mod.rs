//! The public listener: discovery, keys, health, and the OAuth endpoints.

mod discovery;
pub mod health;

use axum::Router;
use axum::routing::get;
use latchkey_types::routes::public;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(public::OPENID_CONFIGURATION, get(discovery::metadata))
        .route(public::OAUTH_AUTHORIZATION_SERVER, get(discovery::metadata))
        .route(public::JWKS, get(discovery::jwks))
        .route(public::HEALTH_ALIVE, get(health::alive))
        .route(public::HEALTH_READY, get(health::ready))
}
