//! `/.well-known/openid-configuration`, `/.well-known/oauth-authorization-server` and
//! `/.well-known/jwks.json`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::discovery::provider_metadata;

use crate::state::AppState;

fn cacheable(body: impl IntoResponse) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

pub async fn metadata(State(state): State<AppState>) -> Response {
    let ring = state.keys.keys().current();
    cacheable(axum::Json(provider_metadata(
        state.engine.settings(),
        &ring.algorithms(),
    )))
}

/// RFC 8414 §3.1 and OIDC Discovery for an issuer with a path (`/t1`): the document is also at
/// `/.well-known/oauth-authorization-server/t1` and `/.well-known/openid-configuration/t1`
/// (`/t1/.well-known/openid-configuration` reaches [`metadata`] once the issuer's path is
/// stripped). Any other suffix is not found.
pub async fn metadata_for_path(
    State(state): State<AppState>,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Response {
    if format!("/{rest}") == issuer_path(state.issuer()) {
        metadata(State(state)).await
    } else {
        axum::http::StatusCode::NOT_FOUND.into_response()
    }
}

/// The path of `issuer` (`/t1`), or `""` for an issuer at the root.
pub fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// RFC 9728 metadata of the self-service API, a protected resource of this server: at
/// `/.well-known/oauth-protected-resource` followed by the API's path (`/api/v1`, or
/// `/t1/api/v1` under an issuer with a path).
pub async fn api_resource_metadata(
    State(state): State<AppState>,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Response {
    let resource = latchkey_core::oauth::resources::api_resource(state.issuer());
    let path = url::Url::parse(&resource)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    if format!("/{rest}") != path {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let server = state.engine.settings().resources.get(&resource).cloned();
    cacheable(axum::Json(serde_json::json!({
        "resource": resource,
        "resource_name": server.as_ref().map(|s| s.name.clone()),
        "authorization_servers": [state.issuer()],
        "scopes_supported": server.map(|s| s.scopes).unwrap_or_default(),
        "bearer_methods_supported": ["header"],
    })))
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let ring = state.keys.keys().current();
    cacheable(axum::Json(ring.jwks().clone()))
}
