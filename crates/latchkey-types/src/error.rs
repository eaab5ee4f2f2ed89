//! The error vocabulary of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009, RFC 8628 and
//! OpenID Connect Core §3.1.2.6, and the JSON body every error is answered with.

use serde::{Deserialize, Serialize};

/// An error code from the OAuth and OpenID Connect specifications, plus the few codes the admin
/// API uses for resources (`not_found`, `conflict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    InvalidRedirectUri,
    InvalidClientMetadata,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    AccountSelectionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    SlowDown,
    AuthorizationPending,
    ExpiredToken,
    /// RFC 8707: the resource is unknown, malformed, or not one the grant covers.
    InvalidTarget,
    /// Admin API: the resource does not exist.
    NotFound,
    /// Admin API: the resource exists already, or the request conflicts with its state.
    Conflict,
    /// The request was refused by a rate limit.
    TooManyRequests,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::SlowDown => "slow_down",
            Self::AuthorizationPending => "authorization_pending",
            Self::ExpiredToken => "expired_token",
            Self::InvalidTarget => "invalid_target",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::TooManyRequests => "too_many_requests",
        }
    }

    /// The HTTP status an error with this code is answered with, on the token, revocation,
    /// introspection and admin endpoints.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::AccessDenied | Self::InsufficientScope => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::TooManyRequests => 429,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of an error (RFC 6749 §5.2). The admin API adds `status_code`, as Hydra does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    pub error: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
}

impl OAuthErrorBody {
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: Some(description.into()),
            status_code: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidGrant,
            ErrorCode::SlowDown,
            ErrorCode::NotFound,
        ] {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn invalid_client_is_401() {
        assert_eq!(ErrorCode::InvalidClient.http_status(), 401);
        assert_eq!(ErrorCode::InvalidGrant.http_status(), 400);
    }
}
