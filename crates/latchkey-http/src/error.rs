//! Errors as HTTP answers: JSON in the RFC 6749 / Hydra shape, with the status the code calls for.
//! Internal errors are logged once, with the request id (from the span), and answered
//! `server_error` without detail.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::client::ClientError;
use latchkey_core::oauth::flow::FlowError;
use latchkey_core::platform::PlatformError;
use latchkey_core::store::StoreError;
use latchkey_types::{ErrorCode, OAuthErrorBody};

/// The status an error with `code` is answered with.
pub fn code_status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The status of an error of the login and consent protocol: a challenge handled already is
/// gone (410, as Hydra answers); the rest as their code says.
pub fn flow_status(e: &FlowError) -> StatusCode {
    match e {
        FlowError::Handled { .. } => StatusCode::GONE,
        other => code_status(other.code()),
    }
}

/// The status of a platform error: its flow's, or as its code says (a wrong password is 401,
/// too many attempts 429, a database that is down 503).
pub fn platform_status(e: &PlatformError) -> StatusCode {
    match e {
        PlatformError::Flow(f) => flow_status(f),
        other => code_status(other.code()),
    }
}

/// An error answered as JSON: `{"error", "error_description", "status_code"}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub description: String,
    pub status: StatusCode,
}

impl ApiError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status: code_status(code),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_errors_have_their_statuses() {
        let cases = [
            (PlatformError::NotFound("the app"), StatusCode::NOT_FOUND),
            (PlatformError::Csrf, StatusCode::FORBIDDEN),
            (PlatformError::BadCredentials, StatusCode::UNAUTHORIZED),
            (PlatformError::Unauthenticated, StatusCode::UNAUTHORIZED),
            (
                PlatformError::invalid("name", "empty"),
                StatusCode::BAD_REQUEST,
            ),
            (
                PlatformError::Conflict("taken".into()),
                StatusCode::CONFLICT,
            ),
            (
                PlatformError::Throttled { retry_after: 5 },
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (
                PlatformError::Flow(FlowError::Handled {
                    redirect_to: "https://a.example/".into(),
                }),
                StatusCode::GONE,
            ),
            (
                PlatformError::Flow(FlowError::NotFound),
                StatusCode::NOT_FOUND,
            ),
            (
                PlatformError::Flow(FlowError::SubjectMismatch),
                StatusCode::BAD_REQUEST,
            ),
            (
                PlatformError::Store(StoreError::Unavailable("down".into())),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                PlatformError::Internal("oops".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(platform_status(&e), status, "{e:?}");
        }
    }
}
