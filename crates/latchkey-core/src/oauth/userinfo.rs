//! UserInfo (OIDC Core §5.3): the consent's `session.id_token` claims for the token's subject.

use serde_json::{Map, Value};

use super::Engine;
use crate::store::StoreError;

/// Why a userinfo request is refused (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    #[error("the access token lacks the openid scope")]
    InsufficientScope,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Claims userinfo never returns (OIDC Core §5.3.2 and Hydra's behaviour).
const NOT_USERINFO: &[&str] = &[
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "at_hash",
    "c_hash",
    "sid",
    "azp",
    "auth_time",
];

impl Engine {
    /// `GET|POST /userinfo`.
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, UserinfoError> {
        let token = self
            .live_access_token(access_token)
            .await?
            .ok_or(UserinfoError::InvalidToken)?;
        if !token.scope.contains("openid") || token.grant_id.is_none() {
            return Err(UserinfoError::InsufficientScope);
        }
        let mut claims = Map::new();
        if let Value::Object(extra) = &token.claims.id_token {
            for (k, v) in extra {
                if !NOT_USERINFO.contains(&k.as_str()) {
                    claims.insert(k.clone(), v.clone());
                }
            }
        }
        claims.insert("sub".into(), token.subject.into());
        Ok(Value::Object(claims))
    }
}
