//! `/admin/trust/grants/jwt-bearer/issuers[/{id}]`: Hydra's trust API for the JWT bearer grant
//! (RFC 7523 §2.1).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::jwt_bearer::TrustError;
use latchkey_types::ErrorCode;
use latchkey_types::trust::{TrustJwtGrantIssuer, TrustedJwtGrantIssuer};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListTrust {
    #[serde(default)]
    issuer: Option<String>,
    /// Accepted as Hydra's SDK sends them; every relationship is listed in one page.
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: Option<String>,
}

impl From<TrustError> for ApiError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Store(s) => ApiError::from(s),
            TrustError::NotFound => ApiError::not_found("The trust relationship does not exist."),
            TrustError::Conflict => {
                ApiError::new(ErrorCode::Conflict, e.to_string()).with_status(StatusCode::CONFLICT)
            }
            TrustError::Invalid { .. } => ApiError::new(ErrorCode::InvalidRequest, e.to_string()),
        }
    }
}

pub async fn create(
    State(s): State<AppState>,
    Json(body): Json<TrustJwtGrantIssuer>,
) -> Result<Response, ApiError> {
    let created = s.engine.trust_jwt_issuer(&body).await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<ListTrust>,
) -> Result<axum::Json<Vec<TrustedJwtGrantIssuer>>, ApiError> {
    let _ = (&q.page_size, &q.page_token);
    Ok(axum::Json(
        s.engine.trusted_jwt_issuers(q.issuer.as_deref()).await?,
    ))
}

pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<TrustedJwtGrantIssuer>, ApiError> {
    Ok(axum::Json(s.engine.trusted_jwt_issuer(&id).await?))
}

pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.engine.delete_trusted_jwt_issuer(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
