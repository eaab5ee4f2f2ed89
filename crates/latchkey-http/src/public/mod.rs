//! The public listener: discovery, keys, the OAuth endpoints, health.

mod authorize;
mod device;
pub(crate) mod discovery;
pub mod health;
mod logout;
mod register;
mod token;
mod userinfo;

use axum::Router;
use axum::routing::{get, post};
use latchkey_types::routes::public;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(public::OPENID_CONFIGURATION, get(discovery::metadata))
        .route(public::OAUTH_AUTHORIZATION_SERVER, get(discovery::metadata))
        .route(
            public::OPENID_CONFIGURATION_FOR_PATH,
            get(discovery::metadata_for_path),
        )
        .route(
            public::OAUTH_AUTHORIZATION_SERVER_FOR_PATH,
            get(discovery::metadata_for_path),
        )
        .route(
            public::PROTECTED_RESOURCE_FOR_PATH,
            get(discovery::api_resource_metadata),
        )
        .route(public::JWKS, get(discovery::jwks))
        .route(
            public::AUTHORIZE,
            get(authorize::handle).post(authorize::handle),
        )
        .route(public::TOKEN, post(token::token))
        .route(public::REGISTER, post(register::register))
        .route(
            public::REGISTER_CLIENT,
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .route(public::DEVICE_AUTHORIZATION, post(device::authorization))
        .route(public::DEVICE_VERIFY, get(device::verify))
        .route(public::REVOKE, post(token::revoke))
        .route(public::INTROSPECT, post(token::introspect))
        .route(public::USERINFO, get(userinfo::get).post(userinfo::post))
        .route(public::LOGOUT, get(logout::handle).post(logout::handle))
        .route(public::STYLESHEET, get(crate::pages::stylesheet))
        .route(public::HEALTH_ALIVE, get(health::alive))
        .route(public::HEALTH_READY, get(health::ready))
}
