//! The admin listener: the Hydra-compatible admin API and operations endpoints.

pub mod clients;
mod flows;
mod ops;
mod revocations;
mod sessions;
mod trust;

use axum::Router;
use axum::routing::{delete, get, post, put};
use latchkey_types::routes::admin;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(admin::CLIENTS, get(clients::list).post(clients::create))
        .route(
            admin::CLIENT,
            get(clients::get)
                .put(clients::replace)
                .patch(clients::patch)
                .delete(clients::delete),
        )
        .route(admin::LOGIN_REQUEST, get(flows::login))
        .route(admin::LOGIN_ACCEPT, put(flows::accept_login))
        .route(admin::LOGIN_REJECT, put(flows::reject_login))
        .route(admin::CONSENT_REQUEST, get(flows::consent))
        .route(admin::CONSENT_ACCEPT, put(flows::accept_consent))
        .route(admin::CONSENT_REJECT, put(flows::reject_consent))
        .route(admin::DEVICE_ACCEPT, put(flows::accept_device))
        .route(
            admin::CONSENT_SESSIONS,
            get(sessions::list_consent).delete(sessions::revoke_consent),
        )
        .route(admin::LOGIN_SESSIONS, delete(sessions::revoke_login))
        .route(admin::INTROSPECT, post(sessions::introspect))
        .route(admin::TOKENS, delete(sessions::revoke_tokens))
        .route(admin::REVOCATIONS, get(revocations::list))
        .route(admin::KEY_SET, get(ops::key_set))
        .route(admin::RESOURCES, get(ops::resources))
        .route(admin::TRUST_ISSUERS, get(trust::list).post(trust::create))
        .route(admin::TRUST_ISSUER, get(trust::get).delete(trust::delete))
        .route(admin::VERSION, get(ops::version))
        .route(admin::METRICS, get(ops::metrics))
        .route(admin::HEALTH_ALIVE, get(crate::public::health::alive))
        .route(admin::HEALTH_READY, get(crate::public::health::ready))
        .route(admin::OPENAPI, get(crate::openapi::admin))
}
