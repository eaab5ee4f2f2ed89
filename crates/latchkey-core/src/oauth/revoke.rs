//! Revocation (RFC 7009): a refresh token takes its whole family with it; an access token goes
//! alone. A token of another client is left alone, and the answer is the same.

use serde::Deserialize;

use super::Engine;
use super::error::TokenError;
use super::issue::jwt_hash;
use super::params::Params;
use crate::audit::{Actor, AuditEntry};
use crate::crypto::{OpaqueToken, TokenKind};
use crate::entropy::EntropyExt as _;

#[derive(Deserialize)]
struct JwtId {
    jti: String,
}

impl Engine {
    /// `POST /oauth2/revoke`.
    pub async fn revoke(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<(), TokenError> {
        if let Some(dup) = params.first_duplicate() {
            return Err(TokenError::InvalidRequest(format!(
                "The parameter {dup} was given more than once."
            )));
        }
        let token = params
            .get("token")
            .map_err(|e| TokenError::InvalidRequest(e.to_string()))?
            .ok_or_else(|| TokenError::invalid_request("The request has no token."))?
            .to_owned();
        // Authenticated from the cache before the writer is taken, confirmed in the transaction
        // by the guard (one read instead of the client's and its secrets').
        let cached = self.authenticate_cached(authorization, params).await?;
        let mut tx = self.deps.store.begin().await?;
        let client = self
            .confirm_client(tx.as_mut(), cached, authorization, params)
            .await?;
        self.throttle
            .check(crate::throttle::Limit::RevokePerClient, &client.id)?;
        let now = self.deps.clock.now();
        let revoked = if token.starts_with(TokenKind::RefreshToken.prefix()) {
            match OpaqueToken::verify(TokenKind::RefreshToken, &token, &self.deps.secrets) {
                Ok(hash) => match tx.tokens().refresh(&hash).await? {
                    Some(l) if l.token.client_id == client.id => {
                        tx.tokens().revoke_family(&l.token.family_id, now).await?;
                        Some(("refresh_token", l.token.family_id))
                    }
                    _ => None,
                },
                Err(_) => None,
            }
        } else {
            let hash = if token.starts_with(TokenKind::AccessToken.prefix()) {
                OpaqueToken::verify(TokenKind::AccessToken, &token, &self.deps.secrets).ok()
            } else {
                self.keys
                    .current()
                    .verify::<JwtId>(&token, "at+jwt", now)
                    .map(|id| jwt_hash(&id.jti))
            };
            match hash {
                Some(hash) => match tx.tokens().access(&hash).await? {
                    Some(l) if l.token.client_id == client.id => {
                        tx.tokens().revoke_access(&hash, now).await?;
                        Some(("access_token", l.token.family_id))
                    }
                    _ => None,
                },
                None => None,
            }
        };
        if let Some((kind, family)) = revoked {
            tx.audit()
                .append(&AuditEntry {
                    id: self.deps.entropy.uuid().to_string(),
                    occurred_at: now,
                    actor: Actor {
                        kind: "client".into(),
                        id: Some(client.id.clone()),
                    },
                    account_id: client.owner_account_id.clone(),
                    action: "token.revoke".into(),
                    target_kind: "token_family".into(),
                    target_id: family,
                    details: serde_json::json!({ "token_type": kind }),
                })
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
