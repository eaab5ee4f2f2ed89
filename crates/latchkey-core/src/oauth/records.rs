//! What the engine stores: login sessions, flows, grants, codes and tokens.

use latchkey_types::Scope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::UnixTime;
use crate::crypto::TokenHash;

/// A remembered login (the browser's session cookie points at it by hash).
#[derive(Debug, Clone, PartialEq)]
pub struct LoginSession {
    /// The public session id (`sid` in ID tokens).
    pub id: String,
    /// Hash of the cookie value; the value itself is never stored.
    pub cookie_hash: String,
    pub subject: String,
    pub authenticated_at: UnixTime,
    pub remember: bool,
    pub data: LoginSessionData,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoginSessionData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_provider_session_id: Option<String>,
}

/// A grant: one subject × one client × scopes × accounts — a "connected app". Every token of an
/// authorization belongs to one; revoking it revokes them all.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub id: String,
    pub subject: String,
    pub client_id: String,
    pub scope: Scope,
    pub audience: Vec<String>,
    /// Account ids the client may act on, or `["*"]`.
    pub accounts: Vec<String>,
    pub session_access_token: Value,
    pub session_id_token: Value,
    /// Whether this consent may be skipped next time.
    pub remember: bool,
    /// Until when it may be skipped; `None` with `remember` means forever.
    pub remember_until: Option<UnixTime>,
    pub login_session_id: Option<String>,
    pub data: GrantData,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    pub revoked_at: Option<UnixTime>,
}

/// What the consent was given for, kept for the consent session listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantData {
    #[serde(default)]
    pub consent_request_id: String,
    #[serde(default)]
    pub requested_scope: Vec<String>,
    #[serde(default)]
    pub requested_audience: Vec<String>,
    #[serde(default)]
    pub remember_for: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The authorization request's URL.
    #[serde(default)]
    pub request_url: String,
}

/// What an authorization code carries to the token endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeData {
    pub redirect_uri: String,
    /// The redirect URI was in the authorization request, so it must be in the token request.
    pub redirect_uri_given: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub subject: String,
    pub scope: Scope,
    pub audience: Vec<String>,
    pub claims: TokenClaims,
}

/// Claims that travel with a family of tokens, from consent to every refresh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub auth_time: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The login session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The consent's `session.access_token`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub access_token: Value,
    /// The consent's `session.id_token`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub id_token: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// RFC 8693 §4.1: who acts for the subject, on a token a token exchange issued
    /// (`{"sub"}`, nested for chains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationCode {
    pub code_hash: TokenHash,
    pub client_id: String,
    pub grant_id: String,
    pub family_id: String,
    pub data: CodeData,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub consumed_at: Option<UnixTime>,
}

/// An access token as stored (opaque tokens by hash, JWT ones by the hash of their `jti`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenRecord {
    pub token_hash: TokenHash,
    pub client_id: String,
    pub grant_id: Option<String>,
    pub family_id: String,
    pub subject: String,
    pub scope: Scope,
    pub audience: Vec<String>,
    pub claims: TokenClaims,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenRecord {
    pub token_hash: TokenHash,
    pub client_id: String,
    pub grant_id: Option<String>,
    pub family_id: String,
    pub subject: String,
    pub scope: Scope,
    pub audience: Vec<String>,
    pub claims: TokenClaims,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// Set when the token was exchanged for a new pair.
    pub used_at: Option<UnixTime>,
    /// How many times it was presented again after `used_at`.
    pub reuse_count: i64,
    /// The response it was exchanged for, sealed, kept for the refresh grace period.
    pub successor: Option<String>,
    pub revoked_at: Option<UnixTime>,
}

/// A token found by hash, with the state of what it depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLookup<T> {
    pub token: T,
    pub client_active: bool,
    /// The token's grant was revoked (false when it has none).
    pub grant_revoked: bool,
}
