//! Answers of the OAuth endpoints: token responses and RFC 6749 §5.2 errors, with the headers
//! the RFCs require.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::oauth::error::TokenError;
use latchkey_core::oauth::params::Params;
use latchkey_types::OAuthErrorBody;
use latchkey_types::token::TokenResponse;

/// Marks a response as never to be cached (RFC 6749 §5.1).
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A successful token response.
pub struct Tokens(pub TokenResponse);

impl IntoResponse for Tokens {
    fn into_response(self) -> Response {
        let mut res = axum::Json(self.0).into_response();
        no_store(res.headers_mut());
        res
    }
}

/// An error of the token, revocation or introspection endpoints.
pub struct OAuthError(pub TokenError);

impl From<TokenError> for OAuthError {
    fn from(e: TokenError) -> Self {
        Self(e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let e = self.0;
        match &e {
            TokenError::Store(s) => tracing::error!(error = %s, "token endpoint storage error"),
            TokenError::Internal(s) => tracing::error!(error = %s, "token endpoint internal error"),
            TokenError::InvalidClient { reason, .. } => {
                tracing::info!(reason, "client authentication failed");
            }
            other => tracing::info!(error = %other, "token request refused"),
        }
        let code = e.code();
        // RFC 8628 §3.5: the device grant's answers are token errors, 400 like the others.
        let status = if matches!(e, TokenError::AccessDenied) {
            axum::http::StatusCode::BAD_REQUEST
        } else {
            crate::error::code_status(code)
        };
        let body = OAuthErrorBody {
            error: code,
            error_description: Some(e.description()),
            status_code: None,
        };
        let mut res = (status, axum::Json(body)).into_response();
        no_store(res.headers_mut());
        if let TokenError::RateLimited(t) = &e
            && let Ok(v) = HeaderValue::from_str(&t.retry_after.as_secs().to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let TokenError::InvalidClient { basic, .. } = e {
            let challenge = if basic {
                "Basic realm=\"latchkey\""
            } else {
                "Basic realm=\"latchkey\", error=\"invalid_client\""
            };
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        res
    }
}

/// A form body (`application/x-www-form-urlencoded`), every parameter kept so that duplicates
/// can be refused. Rejections are OAuth `invalid_request` errors.
pub struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(TokenError::BodyNotForm.into());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| OAuthError(TokenError::BodyUnreadable))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| OAuthError(TokenError::BodyNotUtf8))?;
        Params::parse(text)
            .map(OAuthForm)
            .map_err(|e| OAuthError(TokenError::Param(e)))
    }
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), whatever the case of
/// the scheme (RFC 7235 §2.1: auth schemes are case-insensitive). `None` for another scheme or
/// no token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The request's `Authorization` header (client authentication by HTTP Basic, or a bearer
/// token), taken alone rather than with a copy of every header.
pub struct Authorization(Option<HeaderValue>);

impl Authorization {
    /// The header as text; a header that is not visible ASCII counts as none.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_ref().and_then(|v| v.to_str().ok())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorization {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::AUTHORIZATION).cloned()))
    }
}
