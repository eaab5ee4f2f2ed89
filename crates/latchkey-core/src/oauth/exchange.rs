//! Token exchange (RFC 8693): a client trades a live access token of this server (the subject
//! token) for a narrower one that says who acts for the subject (`act`, nested when chained).
//!
//! The exchanged token belongs to the subject token's grant and family, so revoking the grant
//! (the user's connected app) or the family revokes it too. Only an access token is accepted as
//! the subject or the actor, and only an access token is issued; the scope and the audience may
//! only narrow.

use latchkey_types::Scope;
use latchkey_types::token::TokenResponse;
use serde_json::{Value, json};

use super::Engine;
use super::error::TokenError;
use super::issue::Issue;
use super::params::Params;
use super::records::{AccessTokenRecord, TokenClaims};
use super::token::{Failure, Issued, get, narrowed_scope, require};
use crate::client::Client;
use crate::store::Tx;

/// RFC 8693 §3: the one token type accepted and issued.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The `act` claim of a token issued for `actor` from a subject token that carried `previous`:
/// `{"sub": actor}`, with the previous chain nested under it (RFC 8693 §4.1).
pub fn act_claim(actor: &str, previous: Option<&Value>) -> Value {
    match previous {
        Some(prev) => json!({ "sub": actor, "act": prev }),
        None => json!({ "sub": actor }),
    }
}

impl Engine {
    /// A live access token of this server given as `name` of type `type_name`; `invalid` when it
    /// is not one.
    async fn exchanged_token(
        &self,
        params: &Params,
        name: &'static str,
        type_name: &'static str,
        invalid: TokenError,
    ) -> Result<Option<AccessTokenRecord>, TokenError> {
        let Some(token) = get(params, name)? else {
            if get(params, type_name)?.is_some() {
                return Err(TokenError::MissingParameter(name));
            }
            return Ok(None);
        };
        if require(params, type_name)? != ACCESS_TOKEN_TYPE {
            return Err(TokenError::TokenTypeUnsupported { name: type_name });
        }
        self.live_access_token(token)
            .await?
            .ok_or(invalid)
            .map(Some)
    }

    /// The token endpoint's token exchange, for an authenticated client allowed it.
    pub(super) async fn token_exchange(
        &self,
        tx: &mut dyn Tx,
        client: &Client,
        params: &Params,
    ) -> Result<Issued, Failure> {
        if let Some(t) = get(params, "requested_token_type")?
            && t != ACCESS_TOKEN_TYPE
        {
            return Err(TokenError::TokenTypeUnsupported {
                name: "requested_token_type",
            }
            .into());
        }
        require(params, "subject_token")?;
        let subject = self
            .exchanged_token(
                params,
                "subject_token",
                "subject_token_type",
                TokenError::SubjectTokenInvalid,
            )
            .await?
            .ok_or(TokenError::SubjectTokenInvalid)?;
        // A token leaked to a third party is not theirs to exchange: only the client it was
        // issued to, or a service it names in its audience, may.
        if subject.client_id != client.id && !subject.audience.contains(&client.id) {
            return Err(TokenError::SubjectTokenNotForClient.into());
        }
        let actor = self
            .exchanged_token(
                params,
                "actor_token",
                "actor_token_type",
                TokenError::ActorTokenInvalid,
            )
            .await?
            .map_or_else(|| client.id.clone(), |a| a.subject);
        let scope: Scope = narrowed_scope(params, &subject.scope)?;
        let audience = self
            .settings
            .resources
            .narrowed(params, &subject.audience)
            .map_err(TokenError::from)?;
        let claims = TokenClaims {
            act: Some(act_claim(&actor, subject.claims.act.as_ref())),
            ..subject.claims.clone()
        };
        let issue = Issue {
            client,
            subject: &subject.subject,
            scope: &scope,
            audience: &audience,
            claims: &claims,
            grant_id: subject.grant_id.as_deref(),
            lifespan: crate::client::Lifespan::default(),
            family_id: &subject.family_id,
        };
        let (token, expires_in, record) = self.access_token(&issue)?;
        let now = self.deps.clock.now();
        // The grant is checked again where the token is written: a revocation racing this
        // exchange leaves no token behind.
        if let Some(grant_id) = &subject.grant_id
            && !tx
                .grants()
                .touch(grant_id, now)
                .await
                .map_err(TokenError::from)?
        {
            return Err(TokenError::GrantRevoked.into());
        }
        tx.tokens()
            .insert_access(&record)
            .await
            .map_err(TokenError::from)?;
        Ok(Issued {
            response: TokenResponse {
                access_token: token.into(),
                token_type: "bearer".into(),
                expires_in,
                refresh_token: None,
                id_token: None,
                scope: Some(scope.to_string()).filter(|s| !s.is_empty()),
                issued_token_type: Some(ACCESS_TOKEN_TYPE.into()),
            },
            unsigned_id_token: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_nests_the_previous_chain() {
        let first = act_claim("agent", None);
        assert_eq!(first, json!({"sub": "agent"}));
        assert_eq!(
            act_claim("tool", Some(&first)),
            json!({"sub": "tool", "act": {"sub": "agent"}})
        );
    }
}
