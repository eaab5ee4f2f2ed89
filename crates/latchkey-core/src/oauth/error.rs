//! The errors of each flow: precise variants for logs and tests, folded into the RFC vocabulary
//! for clients. Descriptions sent to clients are short and fixed.

use latchkey_types::ErrorCode;

use crate::store::StoreError;

/// An error of the token, revocation or introspection endpoints (RFC 6749 §5.2).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed. `basic` says whether the client tried HTTP Basic, so the
    /// answer can carry the matching `WWW-Authenticate` challenge.
    #[error("client authentication failed: {reason}")]
    InvalidClient { reason: &'static str, basic: bool },
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("the client may not use this grant type")]
    UnauthorizedClient,
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("too many requests")]
    RateLimited(#[from] crate::throttle::Throttled),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl TokenError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) | Self::InvalidTarget(_) => ErrorCode::InvalidRequest,
            Self::InvalidClient { .. } => ErrorCode::InvalidClient,
            Self::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Self::UnauthorizedClient => ErrorCode::UnauthorizedClient,
            Self::UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            Self::InvalidScope(_) => ErrorCode::InvalidScope,
            Self::RateLimited(_) => ErrorCode::TooManyRequests,
            Self::Store(StoreError::Unavailable(_)) => ErrorCode::TemporarilyUnavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::ServerError,
        }
    }

    /// The description for the client: short, fixed, free of internals.
    pub fn description(&self) -> String {
        match self {
            Self::InvalidClient { .. } => "Client authentication failed.".into(),
            Self::RateLimited(t) => format!(
                "Too many requests; retry after {} seconds.",
                t.retry_after.as_secs()
            ),
            Self::Store(StoreError::Unavailable(_)) => {
                "The server is temporarily unavailable.".into()
            }
            Self::Store(_) | Self::Internal(_) => {
                "The server could not complete the request.".into()
            }
            other => other.to_string(),
        }
    }

    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Self::InvalidRequest(msg.into())
    }
}
