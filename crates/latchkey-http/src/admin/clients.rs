//! `/admin/clients`: the client registry, in Hydra v2's shapes.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::audit::Actor;
use latchkey_core::client::ClientFilter;
use latchkey_types::client::OAuth2Client;
use latchkey_types::routes::admin;
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::state::AppState;

pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<OAuth2Client>,
) -> Result<Response, ApiError> {
    let created = state.clients.create(&body, &Actor::admin_api()).await?;
    let mut res = (StatusCode::CREATED, axum::Json(created.to_wire())).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    page_size: Option<u32>,
    page_token: Option<String>,
    client_name: Option<String>,
    owner: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = ClientFilter {
        client_name: q.client_name.clone(),
        owner: q.owner.clone(),
        owner_account_id: None,
    };
    let page = state
        .clients
        .list(&filter, q.page_size, q.page_token.as_deref())
        .await?;
    let body: Vec<OAuth2Client> = page
        .clients
        .iter()
        .map(latchkey_core::client::Client::to_wire)
        .collect();
    let mut res = axum::Json(body).into_response();
    if let Some(token) = page.next_page_token {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        if let Some(size) = q.page_size {
            next.append_pair("page_size", &size.to_string());
        }
        if let Some(name) = &q.client_name {
            next.append_pair("client_name", name);
        }
        if let Some(owner) = &q.owner {
            next.append_pair("owner", owner);
        }
        next.append_pair("page_token", &token);
        let link = format!("<{}?{}>; rel=\"next\"", admin::CLIENTS, next.finish());
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(res)
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<OAuth2Client>, ApiError> {
    Ok(axum::Json(state.clients.get(&id).await?.to_wire()))
}

pub async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<OAuth2Client>,
) -> Result<axum::Json<OAuth2Client>, ApiError> {
    Ok(axum::Json(
        state
            .clients
            .replace(&id, &body, &Actor::admin_api())
            .await?
            .to_wire(),
    ))
}

pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(patch): Json<json_patch::Patch>,
) -> Result<axum::Json<OAuth2Client>, ApiError> {
    Ok(axum::Json(
        state
            .clients
            .patch(&id, &patch, &Actor::admin_api())
            .await?
            .to_wire(),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.clients.delete(&id, &Actor::admin_api()).await?;
    Ok(StatusCode::NO_CONTENT)
}
