//! Token endpoint, introspection and userinfo response types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Secret;

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3). Its tokens are [`Secret`]s:
/// serialized for the client, redacted in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8693 §2.2.1: the type of the token a token exchange issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// An introspection response (RFC 7662 §2.2, in Hydra's shape with `ext` and `token_use`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// `access_token` or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The consent's `session.access_token` claims, plus Latchkey's `accounts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<Value>,
    /// RFC 8693 §4.1: who acts for the subject (`{"sub"}`, nested for chains), for a token a
    /// token exchange issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_token_and_the_wire_carries_them() {
        let r = TokenResponse {
            access_token: Secret::new("lk_at_access-secret"),
            token_type: "bearer".into(),
            expires_in: 3600,
            refresh_token: Some(Secret::new("lk_rt_refresh-secret")),
            id_token: Some(Secret::new("eyJ.id-token-secret.sig")),
            scope: Some("openid".into()),
            issued_token_type: None,
        };
        for shown in [format!("{r:?}"), format!("{r:#?}")] {
            for secret in ["access-secret", "refresh-secret", "id-token-secret"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("expires_in") && shown.contains("openid"));
        }
        let wire = serde_json::to_value(&r).expect("json");
        assert_eq!(wire["access_token"], "lk_at_access-secret");
        assert_eq!(wire["refresh_token"], "lk_rt_refresh-secret");
        assert_eq!(wire["id_token"], "eyJ.id-token-secret.sig");
        assert_eq!(
            serde_json::from_value::<TokenResponse>(wire).expect("parses"),
            r
        );
    }
}
