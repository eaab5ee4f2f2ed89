//! Errors as HTTP answers: JSON in the RFC 6749 / Hydra shape, with the status the code calls for.
//! Internal errors are logged once, with the request id (from the span), and answered
//! `server_error` without detail.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::client::ClientError;
use latchkey_core::store::StoreError;
use latchkey_types::{ErrorCode, OAuthErrorBody};

/// An error answered as JSON: `{"error", "error_description", "status_code"}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub description: String,
    pub status: StatusCode,
}

impl ApiError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            code,
            description: description.into(),
            status,
        }
    }

    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, description)
    }

    /// Logs the cause and answers a bare `server_error`.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::ServerError,
            "The server could not complete the request.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.code,
            error_description: Some(self.description),
            status_code: Some(self.status.as_u16()),
        };
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "database unavailable");
                Self::new(
                    ErrorCode::TemporarilyUnavailable,
                    "The database is unavailable; try again later.",
                )
            }
            other => Self::internal(&other),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Store(s) => s.into(),
            ClientError::NotFound => {
                Self::not_found("The requested OAuth 2.0 client does not exist.")
            }
            other => Self::new(other.code(), other.to_string()),
        }
    }
}
