//! The login and consent challenge protocol of Hydra v2: the admin API's request and response
//! types, field for field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::OAuth2Client;

/// OpenID Connect parameters of the authorization request, passed to the login and consent apps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OidcContext {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_hint_claims: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ui_locales: Vec<String>,
}

/// `GET /admin/oauth2/auth/requests/login` (Hydra's `OAuth2LoginRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub challenge: String,
    pub client: OAuth2Client,
    pub oidc_context: OidcContext,
    pub request_url: String,
    pub requested_access_token_audience: Vec<String>,
    pub requested_scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub skip: bool,
    pub subject: String,
}

/// `PUT /admin/oauth2/auth/requests/login/accept` (Hydra's `AcceptOAuth2LoginRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptLogin {
    pub subject: String,
    #[serde(default)]
    pub remember: bool,
    /// Seconds; 0 means as long as `ttl.authentication_session`.
    #[serde(default)]
    pub remember_for: i64,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Option<Vec<String>>,
    #[serde(default)]
    pub context: Option<Value>,
    #[serde(default)]
    pub extend_session_lifespan: bool,
    #[serde(default)]
    pub force_subject_identifier: Option<String>,
    #[serde(default)]
    pub identity_provider_session_id: Option<String>,
}

/// `PUT …/login/reject` and `…/consent/reject` (Hydra's `RejectOAuth2Request`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_hint: Option<String>,
    #[serde(default)]
    pub error_debug: Option<String>,
    #[serde(default)]
    pub status_code: Option<u16>,
}

/// The answer to every accept and reject (Hydra's `OAuth2RedirectTo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectTo {
    pub redirect_to: String,
}

/// `GET /admin/oauth2/auth/requests/consent` (Hydra's `OAuth2ConsentRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentRequest {
    pub challenge: String,
    pub consent_request_id: String,
    pub acr: String,
    pub amr: Vec<String>,
    pub client: OAuth2Client,
    pub context: Value,
    pub login_challenge: String,
    pub login_session_id: String,
    pub oidc_context: OidcContext,
    pub request_url: String,
    pub requested_access_token_audience: Vec<String>,
    pub requested_scope: Vec<String>,
    pub skip: bool,
    pub subject: String,
}

/// Claims the consent app puts into the tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentSessionClaims {
    /// Under `ext` at introspection and in JWT access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Value>,
    /// Added to the ID token and returned by userinfo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Value>,
}

/// `PUT /admin/oauth2/auth/requests/consent/accept` (Hydra's `AcceptOAuth2ConsentRequest`), plus
/// Latchkey's `accounts`: the platform accounts the user lets the app reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptConsent {
    #[serde(default)]
    pub grant_scope: Vec<String>,
    #[serde(default)]
    pub grant_access_token_audience: Vec<String>,
    #[serde(default)]
    pub session: Option<ConsentSessionClaims>,
    #[serde(default)]
    pub remember: bool,
    /// Seconds; 0 means forever.
    #[serde(default)]
    pub remember_for: i64,
    #[serde(default)]
    pub context: Option<Value>,
    #[serde(default)]
    pub handled_at: Option<String>,
    /// Latchkey: account ids, or `["*"]` for all of the user's accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
}

/// One remembered consent, as `GET /admin/oauth2/auth/sessions/consent` lists it (Hydra's
/// `OAuth2ConsentSession`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentSession {
    pub consent_request: ConsentRequest,
    pub consent_request_id: String,
    pub grant_access_token_audience: Vec<String>,
    pub grant_scope: Vec<String>,
    pub handled_at: String,
    pub remember: bool,
    pub remember_for: i64,
    pub session: ConsentSessionClaims,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
}
