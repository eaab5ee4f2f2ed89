//! The admin listener: the Hydra-compatible admin API and operations endpoints.

pub mod clients;
mod ops;

use axum::Router;
use axum::routing::get;
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
        .route(admin::VERSION, get(ops::version))
        .route(admin::METRICS, get(ops::metrics))
        .route(admin::HEALTH_ALIVE, get(crate::public::health::alive))
        .route(admin::HEALTH_READY, get(crate::public::health::ready))
}
