//! The logout challenge protocol on the admin side (Hydra v2's `OAuth2LogoutRequest`).

use serde::{Deserialize, Serialize};

use crate::client::OAuth2Client;

/// `GET /admin/oauth2/auth/requests/logout`: who is signing out of which session, and, when an
/// app asked (RP-initiated logout), which app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogoutRequest {
    pub challenge: String,
    pub subject: String,
    /// The login session (`sid` in ID tokens).
    pub sid: String,
    /// The app that asked, when one did.
    pub client: Option<OAuth2Client>,
    pub request_url: String,
    pub rp_initiated: bool,
    /// RFC 3339.
    pub requested_at: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// The `events` claim of a back-channel logout token (OIDC Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
