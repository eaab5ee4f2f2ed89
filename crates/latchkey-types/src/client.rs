//! The OAuth 2.0 client as the Hydra v2 admin API reads and writes it (`OAuth2Client`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Secret;

/// A client in Hydra v2's JSON shape. The same type is read (every field optional, unknown fields
/// refused) and written (every field filled in; `client_secret` only in the answer to a create).
///
/// Fields Hydra has and Latchkey does not implement are accepted only when empty or null, so that a
/// client read from Hydra (or from this API) can be written back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Client {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Present only in the answer to a create or a secret rotation: it is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// Space-delimited scopes the client may request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_consent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_logout_consent: Option<bool>,
    /// `opaque` or `jwt`; empty means the server default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,

    // Hydra fields Latchkey does not implement: accepted when empty or null, never written.
    #[serde(default, skip_serializing)]
    pub allowed_cors_origins: Option<Vec<String>>,
    #[serde(default, skip_serializing)]
    pub request_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing)]
    pub request_object_signing_alg: Option<String>,
    #[serde(default, skip_serializing)]
    pub sector_identifier_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_session_required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_required: Option<bool>,
    #[serde(default, skip_serializing)]
    pub registration_access_token: Option<Secret>,
    #[serde(default, skip_serializing)]
    pub registration_client_uri: Option<String>,
    #[serde(default, skip_serializing)]
    pub authorization_code_grant_access_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub authorization_code_grant_id_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub authorization_code_grant_refresh_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub client_credentials_grant_access_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_grant_access_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_grant_id_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_grant_refresh_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub implicit_grant_access_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub implicit_grant_id_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub jwt_bearer_grant_access_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub refresh_token_grant_access_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub refresh_token_grant_id_token_lifespan: Option<Value>,
    #[serde(default, skip_serializing)]
    pub refresh_token_grant_refresh_token_lifespan: Option<Value>,
}

impl OAuth2Client {
    /// The names of Hydra fields that Latchkey accepts only empty, with a value set.
    pub fn unsupported_fields_set(&self) -> Vec<&'static str> {
        fn set_str(v: Option<&String>) -> bool {
            v.is_some_and(|s| !s.is_empty())
        }
        fn set_vec(v: Option<&Vec<String>>) -> bool {
            v.is_some_and(|s| !s.is_empty())
        }
        fn set_val(v: Option<&Value>) -> bool {
            v.is_some_and(|v| !v.is_null())
        }
        let mut out = Vec::new();
        let checks: Vec<(&'static str, bool)> = vec![
            (
                "allowed_cors_origins",
                set_vec(self.allowed_cors_origins.as_ref()),
            ),
            ("request_uris", set_vec(self.request_uris.as_ref())),
            (
                "request_object_signing_alg",
                set_str(self.request_object_signing_alg.as_ref()),
            ),
            (
                "sector_identifier_uri",
                set_str(self.sector_identifier_uri.as_ref()),
            ),
            (
                "registration_access_token",
                self.registration_access_token
                    .as_ref()
                    .is_some_and(|t| !t.expose().is_empty()),
            ),
            (
                "registration_client_uri",
                set_str(self.registration_client_uri.as_ref()),
            ),
            ("jwks_uri", set_str(self.jwks_uri.as_ref())),
            (
                "authorization_code_grant_access_token_lifespan",
                set_val(self.authorization_code_grant_access_token_lifespan.as_ref()),
            ),
            (
                "authorization_code_grant_id_token_lifespan",
                set_val(self.authorization_code_grant_id_token_lifespan.as_ref()),
            ),
            (
                "authorization_code_grant_refresh_token_lifespan",
                set_val(
                    self.authorization_code_grant_refresh_token_lifespan
                        .as_ref(),
                ),
            ),
            (
                "client_credentials_grant_access_token_lifespan",
                set_val(self.client_credentials_grant_access_token_lifespan.as_ref()),
            ),
            (
                "implicit_grant_access_token_lifespan",
                set_val(self.implicit_grant_access_token_lifespan.as_ref()),
            ),
            (
                "implicit_grant_id_token_lifespan",
                set_val(self.implicit_grant_id_token_lifespan.as_ref()),
            ),
            (
                "jwt_bearer_grant_access_token_lifespan",
                set_val(self.jwt_bearer_grant_access_token_lifespan.as_ref()),
            ),
            (
                "refresh_token_grant_access_token_lifespan",
                set_val(self.refresh_token_grant_access_token_lifespan.as_ref()),
            ),
            (
                "refresh_token_grant_id_token_lifespan",
                set_val(self.refresh_token_grant_id_token_lifespan.as_ref()),
            ),
            (
                "refresh_token_grant_refresh_token_lifespan",
                set_val(self.refresh_token_grant_refresh_token_lifespan.as_ref()),
            ),
        ];
        for (name, set) in checks {
            if set {
                out.push(name);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let c: OAuth2Client = serde_json::from_str(
            r#"{"client_id":"app","client_secret":"lk_cs_client-secret","registration_access_token":"reg-token-secret"}"#,
        )
        .expect("parses");
        assert_eq!(
            c.client_secret.as_ref().map(Secret::expose),
            Some("lk_cs_client-secret")
        );
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!shown.contains("client-secret"), "{shown}");
            assert!(!shown.contains("reg-token-secret"), "{shown}");
            assert!(shown.contains("app"));
        }
        let wire = serde_json::to_value(&c).expect("json");
        assert_eq!(wire["client_secret"], "lk_cs_client-secret");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<OAuth2Client>(r#"{"client_nam":"x"}"#).expect_err("unknown");
        assert!(err.to_string().contains("client_nam"), "{err}");
    }

    #[test]
    fn hydra_nulls_are_accepted_and_values_flagged() {
        let c: OAuth2Client = serde_json::from_str(
            r#"{"client_name":"x","allowed_cors_origins":[],"jwks_uri":"","implicit_grant_access_token_lifespan":null}"#,
        )
        .expect("parses");
        assert!(c.unsupported_fields_set().is_empty());
        let c: OAuth2Client =
            serde_json::from_str(r#"{"jwks_uri":"https://x/jwks"}"#).expect("parses");
        assert_eq!(c.unsupported_fields_set(), vec!["jwks_uri"]);
    }
}

/// A dynamic registration request (RFC 7591 §2, §3.1): the client's metadata as it describes
/// itself. Unknown fields are ignored, as §2 requires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrationRequest {
    /// Present in an RFC 7592 update, where it must name the client being updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// OpenID Connect Dynamic Registration: `native` or `web`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Refused: a secret is the server's to issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
}

/// The answer to a registration (RFC 7591 §3.2.1, RFC 7592 §3): the metadata as registered, with
/// the credentials. Empty fields are left out, so that a client validating URLs finds none empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrationResponse {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire.
    pub client_secret_expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<Secret>,
    pub registration_client_uri: String,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    pub application_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
}
