//! The self-service API (`/api/v1/accounts/{account_id}/apps`): apps as account members create
//! and manage them.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// A create (every field the app needs) or a change (only the fields given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `web` (confidential, with a secret) or `native` (public: SPA, mobile, desktop, CLI).
    /// Set at creation only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// The homepage; its host is the publisher domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// Required scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Scopes the user may untick on the consent screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_scopes: Option<Vec<String>>,
    /// `public` makes the app public (one-way; needs a logo, a homepage, scopes and a verified
    /// domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
}

/// The TXT record that proves the app's publisher controls its domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub value: String,
}

/// An app as the self-service API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppOutput {
    pub client_id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub app_type: String,
    pub token_endpoint_auth_method: String,
    pub logo_uri: String,
    pub client_uri: String,
    pub policy_uri: String,
    pub tos_uri: String,
    pub contacts: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub optional_scopes: Vec<String>,
    /// `private` or `public`.
    pub visibility: String,
    /// `active` or `suspended`.
    pub status: String,
    pub domain: Option<String>,
    pub domain_verified: bool,
    /// The record to publish while the domain is not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationRecord>,
    /// A new secret was issued and the old one still works until the rotation is confirmed.
    pub has_rotated_secret: bool,
    pub pending_restricted_scopes: Vec<String>,
    pub approved_restricted_scopes: Vec<String>,
    /// Users holding an active grant.
    pub user_count: i64,
    /// How many users the app may have while its domain is not verified; absent once verified
    /// (or for the platform's own apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_cap: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the answer to a create or a secret rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
}

/// `POST …/apps/{client_id}/scope_requests`: ask the operator for a restricted scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    pub scope: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_with_its_new_secret_shows_no_secret_in_debug() {
        let app: AppOutput = serde_json::from_value(serde_json::json!({
            "client_id": "app", "account_id": "acme", "name": "App", "description": "",
            "app_type": "web", "token_endpoint_auth_method": "client_secret_basic",
            "logo_uri": "", "client_uri": "", "policy_uri": "", "tos_uri": "", "contacts": [],
            "redirect_uris": [], "scopes": [], "optional_scopes": [], "visibility": "private",
            "status": "active", "domain": null, "domain_verified": false,
            "has_rotated_secret": false, "pending_restricted_scopes": [],
            "approved_restricted_scopes": [], "user_count": 0,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "client_secret": "lk_cs_shown-once-secret",
        }))
        .expect("parses");
        let shown = format!("{app:?}");
        assert!(!shown.contains("shown-once-secret"), "{shown}");
        assert_eq!(
            serde_json::to_value(&app).expect("json")["client_secret"],
            "lk_cs_shown-once-secret"
        );
    }
}
