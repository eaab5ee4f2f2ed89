//! Version, metrics, keys and the configured resource servers.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use latchkey_types::jwk::JwkSet;

use crate::error::ApiError;
use crate::state::AppState;

pub async fn version() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "version": env!("CARGO_PKG_VERSION") }))
}

pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}

/// `GET /admin/keys/{set}`: the public keys of Hydra's key sets — `hydra.openid.id-token` (the
/// keys that sign ID tokens) and `hydra.jwt.access-token` (JWT access tokens).
pub async fn key_set(
    State(state): State<AppState>,
    Path(set): Path<String>,
) -> Result<axum::Json<JwkSet>, ApiError> {
    let ring = state.keys.keys().current();
    let algs: &[&str] = match set.as_str() {
        "hydra.openid.id-token" => &["RS256", "ES256", "EdDSA"],
        "hydra.jwt.access-token" => &["ES256"],
        _ => return Err(ApiError::not_found("The key set does not exist.")),
    };
    let keys = ring
        .jwks()
        .keys
        .iter()
        .filter(|k| algs.contains(&k.alg.as_str()))
        .cloned()
        .collect();
    Ok(axum::Json(JwkSet { keys }))
}

/// `GET /admin/resources`: the resource servers tokens may be issued for (RFC 8707), as
/// configured (`[[resources]]`), the platform's own API first.
pub async fn resources(
    State(state): State<AppState>,
) -> axum::Json<Vec<latchkey_core::oauth::resources::ResourceServer>> {
    axum::Json(state.engine.settings().resources.all().to_vec())
}
