//! Introspection (RFC 7662) in Hydra's shape: revoked, expired, forged and unknown tokens — and
//! tokens of suspended clients or revoked grants — are `{"active": false}`.

use latchkey_types::Scope;
use latchkey_types::token::Introspection;
use serde::Deserialize;

use super::Engine;
use super::issue::{ext_claims, jwt_hash};
use super::records::{AccessTokenRecord, TokenLookup};
use crate::crypto::{OpaqueToken, TokenKind};
use crate::store::StoreError;

#[derive(Deserialize)]
struct JwtId {
    jti: String,
}

impl Engine {
    /// Finds a live access token (opaque, or a JWT this server signed) — the one lookup behind
    /// introspection and userinfo.
    pub(crate) async fn live_access_token(
        &self,
        token: &str,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        let hash = if token.starts_with(TokenKind::AccessToken.prefix()) {
            match OpaqueToken::verify(TokenKind::AccessToken, token, &self.deps.secrets) {
                Ok(h) => h,
                Err(_) => return Ok(None),
            }
        } else if token.len() <= 8192 && token.split('.').count() == 3 {
            match self
                .keys
                .current()
                .verify::<JwtId>(token, "at+jwt", self.deps.clock.now())
            {
                Some(id) => jwt_hash(&id.jti),
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let found = self.deps.store.access_token(&hash).await?;
        Ok(found.and_then(|l| self.live(l)))
    }

    fn live(&self, l: TokenLookup<AccessTokenRecord>) -> Option<AccessTokenRecord> {
        let ok = l.client_active
            && !l.grant_revoked
            && l.token.revoked_at.is_none()
            && l.token.expires_at > self.deps.clock.now();
        ok.then_some(l.token)
    }

    /// `POST /admin/oauth2/introspect`. `scope`, when given, must be covered by the token.
    pub async fn introspect(
        &self,
        token: &str,
        scope: Option<&str>,
    ) -> Result<Introspection, StoreError> {
        let required = match scope.map(Scope::parse) {
            None => Scope::default(),
            Some(Ok(s)) => s,
            Some(Err(_)) => return Ok(Introspection::inactive()),
        };
        if token.starts_with(TokenKind::RefreshToken.prefix()) {
            return self.introspect_refresh(token, &required).await;
        }
        let Some(t) = self.live_access_token(token).await? else {
            return Ok(Introspection::inactive());
        };
        if !required.is_subset_of(&t.scope) {
            return Ok(Introspection::inactive());
        }
        let claims = self
            .narrowed_claims(&t.subject, &t.client_id, &t.scope, &t.claims)
            .await?;
        Ok(Introspection {
            active: true,
            scope: Some(t.scope.to_string()),
            client_id: Some(t.client_id.clone()),
            sub: Some(t.subject.clone()),
            exp: Some(t.expires_at),
            iat: Some(t.issued_at),
            nbf: Some(t.issued_at),
            aud: Some(t.audience.clone()),
            iss: Some(self.settings.issuer.clone()),
            token_type: Some("Bearer".into()),
            token_use: Some("access_token".into()),
            username: None,
            ext: Some(ext_claims(&claims)).filter(|e| !e.is_null()),
            act: t.claims.act.clone(),
        })
    }

    async fn introspect_refresh(
        &self,
        token: &str,
        required: &Scope,
    ) -> Result<Introspection, StoreError> {
        let Ok(hash) = OpaqueToken::verify(TokenKind::RefreshToken, token, &self.deps.secrets)
        else {
            return Ok(Introspection::inactive());
        };
        let Some(l) = self
            .deps
            .store
            .read()
            .await?
            .tokens()
            .refresh(&hash)
            .await?
        else {
            return Ok(Introspection::inactive());
        };
        let t = &l.token;
        let live = l.client_active
            && !l.grant_revoked
            && t.revoked_at.is_none()
            && t.used_at.is_none()
            && t.expires_at > self.deps.clock.now()
            && required.is_subset_of(&t.scope);
        if !live {
            return Ok(Introspection::inactive());
        }
        let claims = self
            .narrowed_claims(&t.subject, &t.client_id, &t.scope, &t.claims)
            .await?;
        Ok(Introspection {
            active: true,
            scope: Some(t.scope.to_string()),
            client_id: Some(t.client_id.clone()),
            sub: Some(t.subject.clone()),
            exp: Some(t.expires_at),
            iat: Some(t.issued_at),
            nbf: Some(t.issued_at),
            aud: Some(t.audience.clone()),
            iss: Some(self.settings.issuer.clone()),
            token_type: Some("Bearer".into()),
            token_use: Some("refresh_token".into()),
            username: None,
            ext: Some(ext_claims(&claims)).filter(|e| !e.is_null()),
            act: None,
        })
    }
}

impl Engine {
    /// `POST /oauth2/introspect`: introspection for an authenticated client (a resource server,
    /// or the token's own client). A token is shown active only to the client it was issued to
    /// or, for access tokens, to a client named in its audience: one client's tokens are useless
    /// to another.
    pub async fn introspect_as_client(
        &self,
        authorization: Option<&str>,
        params: &super::params::Params,
    ) -> Result<Introspection, super::error::TokenError> {
        use super::error::TokenError;
        if let Some(dup) = params.first_duplicate() {
            return Err(TokenError::ParameterRepeated {
                name: dup.to_owned(),
            });
        }
        let get = |name| params.get(name).map_err(TokenError::from);
        let token = get("token")?.ok_or(TokenError::MissingParameter("token"))?;
        let scope = get("scope")?;
        // Introspection writes nothing: a caller authenticated from the client cache is
        // confirmed by its guard on a reader, so that a resource server introspecting on every
        // call never queues for the writer. Only a client assertion (its `jti` is recorded) or a
        // failed guard authenticates in a write transaction.
        let cached = self.authenticate_cached(authorization, params).await?;
        let caller = match cached {
            Some(auth) if self.guard_holds_on_reader(&auth).await? => auth.client,
            cached => {
                let mut tx = self.deps.store.begin().await?;
                let client = self
                    .confirm_client(tx.as_mut(), cached, authorization, params)
                    .await?;
                tx.commit().await?;
                client
            }
        };
        let result = self.introspect(token, scope).await?;
        let owner = result.client_id.as_deref() == Some(caller.id.as_str());
        let audience = result.token_use.as_deref() == Some("access_token")
            && result
                .aud
                .as_ref()
                .is_some_and(|aud| aud.iter().any(|a| a == &caller.id));
        Ok(if result.active && (owner || audience) {
            result
        } else {
            Introspection::inactive()
        })
    }
}
