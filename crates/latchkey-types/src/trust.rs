//! Hydra's trust API for the JWT bearer grant (RFC 7523 §2.1):
//! `/admin/trust/grants/jwt-bearer/issuers`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /admin/trust/grants/jwt-bearer/issuers` (Hydra's `TrustOAuth2JwtGrantIssuer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustJwtGrantIssuer {
    pub issuer: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub allow_any_subject: Option<bool>,
    pub scope: Vec<String>,
    pub jwk: Value,
    /// RFC 3339.
    pub expires_at: String,
}

/// The key of a trust relationship (Hydra's `TrustedOAuth2JwtGrantJsonWebKey`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedJwtGrantKey {
    pub set: String,
    pub kid: String,
}

/// A trust relationship (Hydra's `TrustedOAuth2JwtGrantIssuer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedJwtGrantIssuer {
    pub id: String,
    pub issuer: String,
    pub subject: String,
    pub allow_any_subject: bool,
    pub scope: Vec<String>,
    pub public_key: TrustedJwtGrantKey,
    pub expires_at: String,
    pub created_at: String,
}
