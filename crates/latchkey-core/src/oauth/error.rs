//! The errors of each flow: precise variants for logs and tests, folded into the RFC vocabulary
//! for clients. Descriptions sent to clients are short and fixed.

use latchkey_types::ErrorCode;

use super::params::ParamError;
use super::resources::TargetError;
use crate::store::StoreError;

/// An error of the token, revocation or introspection endpoints (RFC 6749 §5.2). `Display` is
/// the description for the client, except where [`TokenError::description`] says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    // invalid_request: the request itself is malformed.
    #[error("The body must be application/x-www-form-urlencoded.")]
    BodyNotForm,
    #[error("The request body is too large or unreadable.")]
    BodyUnreadable,
    #[error("The body is not UTF-8.")]
    BodyNotUtf8,
    /// The parameters could not be read (a parameter too long, too many of them, or one given
    /// twice where it is read).
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("The parameter {name} was given more than once.")]
    ParameterRepeated { name: String },
    #[error("The request has no {0}.")]
    MissingParameter(&'static str),
    #[error("The client used more than one authentication method.")]
    SeveralAuthMethods,
    #[error("client_id does not match the Basic credentials.")]
    BasicClientIdMismatch,
    #[error("client_assertion_type must be jwt-bearer.")]
    UnsupportedAssertionType,
    #[error("The client may not request the audience {audience}.")]
    AudienceNotAllowed { audience: String },
    /// RFC 8707: a resource that is malformed, unknown, or not granted.
    #[error(transparent)]
    Target(TargetError),

    /// Client authentication failed. `basic` says whether the client tried HTTP Basic, so the
    /// answer can carry the matching `WWW-Authenticate` challenge.
    #[error("client authentication failed: {reason}")]
    InvalidClient { reason: &'static str, basic: bool },

    // invalid_grant: the code or refresh token may not be used (RFC 6749 §5.2).
    #[error("The authorization code is invalid.")]
    CodeInvalid,
    #[error("The authorization code was issued to another client.")]
    CodeOfAnotherClient,
    #[error("The authorization code was already used.")]
    CodeAlreadyUsed,
    #[error("The authorization code has expired.")]
    CodeExpired,
    #[error("The redirect_uri does not match the authorization request.")]
    RedirectUriMismatch,
    #[error("The code_verifier does not match the code_challenge.")]
    PkceMismatch,
    #[error("A code_verifier was sent for a code issued without PKCE.")]
    PkceNotUsed,
    /// The grant behind the code was revoked before the exchange.
    #[error("The authorization was revoked.")]
    GrantRevoked,
    #[error("The refresh token is invalid.")]
    RefreshTokenInvalid,
    #[error("The refresh token was issued to another client.")]
    RefreshTokenOfAnotherClient,
    #[error("The refresh token was revoked.")]
    RefreshTokenRevoked,
    #[error("The refresh token has expired.")]
    RefreshTokenExpired,
    #[error("The refresh token was already used.")]
    RefreshTokenAlreadyUsed,
    #[error("The device code is invalid.")]
    DeviceCodeInvalid,
    #[error("The device code was issued to another client.")]
    DeviceCodeOfAnotherClient,
    #[error("The device code was already used.")]
    DeviceCodeAlreadyUsed,

    // The device grant's answers while the user decides (RFC 8628 §3.5).
    #[error("The user has not yet completed the authorization.")]
    AuthorizationPending,
    #[error("The device is polling too fast; wait longer between requests.")]
    SlowDown,
    #[error("The device code has expired.")]
    ExpiredToken,
    #[error("The user denied the request.")]
    AccessDenied,

    // Token exchange (RFC 8693).
    #[error("The subject_token is not a live access token of this server.")]
    SubjectTokenInvalid,
    #[error("The subject_token was neither issued to this client nor names it in its audience.")]
    SubjectTokenNotForClient,
    #[error("The actor_token is not a live access token of this server.")]
    ActorTokenInvalid,
    #[error("{name} must be urn:ietf:params:oauth:token-type:access_token.")]
    TokenTypeUnsupported { name: &'static str },

    // The JWT bearer grant (RFC 7523 §2.1).
    #[error("The assertion is invalid: {reason}.")]
    AssertionInvalid { reason: &'static str },
    #[error("The assertion's jti was used before.")]
    AssertionReplayed,

    #[error("the client may not use this grant type")]
    UnauthorizedClient,
    #[error("unsupported grant type")]
    UnsupportedGrantType,

    // invalid_scope.
    #[error("The scope is malformed: {reason}.")]
    ScopeMalformed { reason: String },
    #[error("The client may not request the scope {scope}.")]
    ScopeNotAllowed { scope: String },
    #[error("The scope {scope} was not granted; a refresh may only narrow the scope.")]
    ScopeNotGranted { scope: String },

    #[error("too many requests")]
    RateLimited(#[from] crate::throttle::Throttled),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<TargetError> for TokenError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::AudienceNotAllowed(audience) => Self::AudienceNotAllowed { audience },
            other => Self::Target(other),
        }
    }
}

impl From<TargetError> for AuthorizeError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::AudienceNotAllowed(audience) => Self::AudienceNotAllowed { audience },
            other => Self::Target(other),
        }
    }
}

impl TokenError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BodyNotForm
            | Self::BodyUnreadable
            | Self::BodyNotUtf8
            | Self::Param(_)
            | Self::ParameterRepeated { .. }
            | Self::MissingParameter(_)
            | Self::SeveralAuthMethods
            | Self::BasicClientIdMismatch
            | Self::UnsupportedAssertionType
            | Self::AudienceNotAllowed { .. }
            | Self::TokenTypeUnsupported { .. } => ErrorCode::InvalidRequest,
            Self::Target(_) => ErrorCode::InvalidTarget,
            Self::InvalidClient { .. } => ErrorCode::InvalidClient,
            Self::CodeInvalid
            | Self::CodeOfAnotherClient
            | Self::CodeAlreadyUsed
            | Self::CodeExpired
            | Self::RedirectUriMismatch
            | Self::PkceMismatch
            | Self::PkceNotUsed
            | Self::GrantRevoked
            | Self::RefreshTokenInvalid
            | Self::RefreshTokenOfAnotherClient
            | Self::RefreshTokenRevoked
            | Self::RefreshTokenExpired
            | Self::RefreshTokenAlreadyUsed
            | Self::DeviceCodeInvalid
            | Self::DeviceCodeOfAnotherClient
            | Self::DeviceCodeAlreadyUsed
            | Self::SubjectTokenInvalid
            | Self::SubjectTokenNotForClient
            | Self::ActorTokenInvalid
            | Self::AssertionInvalid { .. }
            | Self::AssertionReplayed => ErrorCode::InvalidGrant,
            Self::AuthorizationPending => ErrorCode::AuthorizationPending,
            Self::SlowDown => ErrorCode::SlowDown,
            Self::ExpiredToken => ErrorCode::ExpiredToken,
            Self::AccessDenied => ErrorCode::AccessDenied,
            Self::UnauthorizedClient => ErrorCode::UnauthorizedClient,
            Self::UnsupportedGrantType => ErrorCode::UnsupportedGrantType,
            Self::ScopeMalformed { .. }
            | Self::ScopeNotAllowed { .. }
            | Self::ScopeNotGranted { .. } => ErrorCode::InvalidScope,
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
}

/// Why the authorization endpoint refuses a request (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6).
/// Before the client and its redirect URI are validated, it is shown on a page; after, it is
/// sent to the redirect URI. `Display` is the description for the browser or the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    // The client and the redirect URI (shown on a page).
    /// A parameter could not be read where it was looked up.
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("client_id was given more than once.")]
    ClientIdRepeated,
    #[error("The request has no client_id.")]
    ClientIdMissing,
    #[error("The client is unknown.")]
    UnknownClient,
    /// The client_id is the URL of a metadata document that could not be used.
    #[error("The client's metadata document cannot be used: {0}.")]
    ClientDocument(crate::client::CimdError),
    #[error("This application has been suspended.")]
    ClientSuspended,
    #[error("redirect_uri was given more than once.")]
    RedirectUriRepeated,
    #[error("The redirect_uri is not registered for this client.")]
    RedirectUriNotRegistered,
    #[error("The request has no redirect_uri, and the client has more than one.")]
    RedirectUriMissing,
    #[error("The registered redirect URI is not valid.")]
    RegisteredRedirectUriInvalid,

    // The rest of the request (sent to the redirect URI).
    #[error("The parameter {name} was given more than once.")]
    ParameterRepeated { name: String },
    #[error("The parameter {name} contains control characters.")]
    ControlCharacters { name: String },
    #[error("{name} is longer than {max} characters")]
    TooLong { name: &'static str, max: usize },
    #[error("The request has no response_type.")]
    ResponseTypeMissing,
    #[error("Only the code response type is supported.")]
    UnsupportedResponseType,
    #[error("The client may not use the authorization code grant.")]
    UnauthorizedClient,
    #[error("Only the query response mode is supported.")]
    UnsupportedResponseMode,
    #[error("Request objects are not supported.")]
    RequestObjectUnsupported,
    #[error("request_uri is not supported.")]
    RequestUriUnsupported,
    #[error("The scope is malformed: {reason}.")]
    ScopeMalformed { reason: String },
    #[error("The client may not request the scope {scope}.")]
    ScopeNotAllowed { scope: String },
    #[error("The client may not request the audience {audience}.")]
    AudienceNotAllowed { audience: String },
    /// RFC 8707: a resource that is malformed or unknown.
    #[error(transparent)]
    Target(TargetError),
    #[error("PKCE with the plain method is not allowed; use S256.")]
    PkcePlain,
    #[error("code_challenge_method must be S256.")]
    PkceMethodUnsupported,
    #[error("PKCE is required: send code_challenge with code_challenge_method=S256.")]
    PkceRequired,
    #[error("code_challenge must be 43 base64url characters (S256).")]
    ChallengeMalformed,
    #[error("The prompt value {value} is not supported.")]
    PromptUnsupported { value: String },
    #[error("prompt=none cannot be combined with other values.")]
    PromptNoneCombined,
    #[error("max_age must be a number of seconds.")]
    MaxAgeInvalid,
    #[error("display must be page, popup, touch or wap.")]
    DisplayInvalid,
    #[error("id_token_hint is not supported.")]
    IdTokenHintUnsupported,
    #[error("The user is not logged in.")]
    LoginRequired,
    #[error("The user has not consented to this request.")]
    ConsentRequired,

    // The way back from the login and consent apps (shown on a page).
    #[error("A verifier was given more than once.")]
    VerifierRepeated,
    #[error("This sign-in link has expired or was already used. Start again from the application.")]
    LinkExpired,
    #[error(
        "This sign-in was started in another browser, or its cookies were blocked. Start again from the application."
    )]
    OtherBrowser,
    #[error("The verifier belongs to another client.")]
    VerifierOfAnotherClient,
    #[error("This sign-in link was already used. Start again from the application.")]
    LoginLinkUsed,
    #[error("This consent link was already used. Start again from the application.")]
    ConsentLinkUsed,
    /// A flow marked as logged in without the login's outcome.
    #[error("The login has no outcome.")]
    LoginOutcomeMissing,
    /// The consent's write found the client suspended or deleted.
    #[error("This application is no longer available.")]
    ClientGone,
    /// The consent's write found the unverified app at its user cap.
    #[error(
        "This app is not verified and already has as many users as an unverified app may have."
    )]
    AtUserCap,
}

impl AuthorizeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownClient | Self::ClientSuspended | Self::ClientGone => {
                ErrorCode::InvalidClient
            }
            Self::ClientDocument(e) => match e.error_code() {
                "invalid_request" => ErrorCode::InvalidRequest,
                "temporarily_unavailable" => ErrorCode::TemporarilyUnavailable,
                _ => ErrorCode::InvalidClient,
            },
            Self::UnsupportedResponseType => ErrorCode::UnsupportedResponseType,
            Self::UnauthorizedClient => ErrorCode::UnauthorizedClient,
            Self::RequestObjectUnsupported => ErrorCode::RequestNotSupported,
            Self::RequestUriUnsupported => ErrorCode::RequestUriNotSupported,
            Self::ScopeMalformed { .. } | Self::ScopeNotAllowed { .. } => ErrorCode::InvalidScope,
            Self::Target(_) => ErrorCode::InvalidTarget,
            Self::LoginRequired => ErrorCode::LoginRequired,
            Self::ConsentRequired => ErrorCode::ConsentRequired,
            Self::OtherBrowser | Self::AtUserCap => ErrorCode::AccessDenied,
            Self::LoginOutcomeMissing => ErrorCode::ServerError,
            Self::Param(_)
            | Self::ClientIdRepeated
            | Self::ClientIdMissing
            | Self::RedirectUriRepeated
            | Self::RedirectUriNotRegistered
            | Self::RedirectUriMissing
            | Self::RegisteredRedirectUriInvalid
            | Self::ParameterRepeated { .. }
            | Self::ControlCharacters { .. }
            | Self::TooLong { .. }
            | Self::ResponseTypeMissing
            | Self::UnsupportedResponseMode
            | Self::AudienceNotAllowed { .. }
            | Self::PkcePlain
            | Self::PkceMethodUnsupported
            | Self::PkceRequired
            | Self::ChallengeMalformed
            | Self::PromptUnsupported { .. }
            | Self::PromptNoneCombined
            | Self::MaxAgeInvalid
            | Self::DisplayInvalid
            | Self::IdTokenHintUnsupported
            | Self::VerifierRepeated
            | Self::LinkExpired
            | Self::VerifierOfAnotherClient
            | Self::LoginLinkUsed
            | Self::ConsentLinkUsed => ErrorCode::InvalidRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_errors_fold_into_invalid_grant_with_their_fixed_description() {
        for (e, description) in [
            (
                TokenError::CodeAlreadyUsed,
                "The authorization code was already used.",
            ),
            (
                TokenError::PkceMismatch,
                "The code_verifier does not match the code_challenge.",
            ),
            (
                TokenError::RedirectUriMismatch,
                "The redirect_uri does not match the authorization request.",
            ),
            (
                TokenError::RefreshTokenRevoked,
                "The refresh token was revoked.",
            ),
            (TokenError::GrantRevoked, "The authorization was revoked."),
        ] {
            assert_eq!(e.code(), ErrorCode::InvalidGrant, "{e:?}");
            assert_eq!(e.description(), description);
        }
    }

    #[test]
    fn internals_stay_out_of_the_description() {
        let e = TokenError::Internal("key 7 is missing".into());
        assert_eq!(e.code(), ErrorCode::ServerError);
        assert!(!e.description().contains("key 7"));
        let e = TokenError::InvalidClient {
            reason: "wrong secret",
            basic: true,
        };
        assert_eq!(e.code(), ErrorCode::InvalidClient);
        assert_eq!(e.description(), "Client authentication failed.");
    }

    #[test]
    fn malformed_requests_are_invalid_request() {
        for e in [
            TokenError::MissingParameter("code_verifier"),
            TokenError::ParameterRepeated {
                name: "code".into(),
            },
            TokenError::Param(ParamError::TooMany),
            TokenError::BodyNotForm,
        ] {
            assert_eq!(e.code(), ErrorCode::InvalidRequest, "{e:?}");
        }
        assert_eq!(
            TokenError::MissingParameter("redirect_uri").description(),
            "The request has no redirect_uri."
        );
    }
}
