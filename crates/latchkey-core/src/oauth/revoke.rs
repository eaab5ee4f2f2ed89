//! Revocation (RFC 7009): a refresh token takes its whole family with it; an access token goes
//! alone. A token of another client is left alone, and the answer is the same.
//!
//! A token revoked by a client authenticated from the cache takes the short way: the token is
//! looked up on a reader, and the revocation (with its audit entry) is one guarded write that the
//! store may commit together with others, or run as one statement
//! ([`Store::revoke_access_guarded`], [`Store::revoke_family_guarded`]). A client assertion, or a
//! guard that no longer holds, goes through one transaction that decides everything on what it
//! reads.
//!
//! [`Store::revoke_access_guarded`]: crate::store::Store::revoke_access_guarded
//! [`Store::revoke_family_guarded`]: crate::store::Store::revoke_family_guarded

use serde::Deserialize;

use super::Engine;
use super::client_auth::CachedAuth;
use super::error::TokenError;
use super::issue::jwt_hash;
use super::params::Params;
use crate::audit::AuditEntry;
use crate::client::Client;
use crate::clock::UnixTime;
use crate::crypto::{OpaqueToken, TokenHash, TokenKind};
use crate::store::StoreWrites as _;
use crate::store::{write_family_revocation, write_revocation};

#[derive(Deserialize)]
struct JwtId {
    jti: String,
}

/// What a presented token names, before anything is read.
enum Target {
    Refresh(TokenHash),
    Access(TokenHash),
    /// Not a token of this server: nothing to revoke.
    Unknown,
}

impl Engine {
    /// `POST /oauth2/revoke`.
    pub async fn revoke(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<(), TokenError> {
        if let Some(dup) = params.first_duplicate() {
            return Err(TokenError::ParameterRepeated {
                name: dup.to_owned(),
            });
        }
        let token = params
            .get("token")?
            .ok_or(TokenError::MissingParameter("token"))?;
        let mut cached = self.authenticate_cached(authorization, params).await?;
        // Counted once: here for a client authenticated from the cache, after the transaction's
        // authentication otherwise.
        let counted = cached.is_some();
        if let Some(auth) = &cached {
            self.throttle
                .check(crate::throttle::Limit::RevokePerClient, &auth.client.id)?;
        }
        let now = self.deps.clock.now();
        let target = self.target(token, now);
        if let Some(auth) = &cached {
            if self.revoke_cached(auth, &target, now).await? {
                return Ok(());
            }
            // The client changed since it was cached: decide on a fresh read.
            self.clients.forget(&auth.client.id);
            cached = None;
        }
        let mut tx = self.deps.store.begin().await?;
        let client = self
            .confirm_client(tx.as_mut(), cached, authorization, params)
            .await?;
        if !counted {
            self.throttle
                .check(crate::throttle::Limit::RevokePerClient, &client.id)?;
        }
        match &target {
            Target::Refresh(hash) => {
                if let Some(l) = tx.tokens().refresh(hash).await?
                    && l.token.client_id == client.id
                {
                    let family = l.token.family_id;
                    let audit =
                        self.revocation_audit(&client, "refresh_token", family.clone(), now);
                    write_family_revocation(tx.as_mut(), &family, now, &audit).await?;
                }
            }
            Target::Access(hash) => {
                if let Some(l) = tx.tokens().access(hash).await?
                    && l.token.client_id == client.id
                {
                    let family = l.token.family_id;
                    let audit = self.revocation_audit(&client, "access_token", family, now);
                    write_revocation(tx.as_mut(), hash, now, &audit).await?;
                }
            }
            Target::Unknown => {}
        }
        tx.commit().await?;
        Ok(())
    }

    /// The hash a presented token is stored under, if it is one of this server's.
    fn target(&self, token: &str, now: UnixTime) -> Target {
        let secrets = &self.deps.secrets;
        if token.starts_with(TokenKind::RefreshToken.prefix()) {
            return OpaqueToken::verify(TokenKind::RefreshToken, token, secrets)
                .map_or(Target::Unknown, Target::Refresh);
        }
        let hash = if token.starts_with(TokenKind::AccessToken.prefix()) {
            OpaqueToken::verify(TokenKind::AccessToken, token, secrets).ok()
        } else {
            self.keys
                .current()
                .verify::<JwtId>(token, "at+jwt", now)
                .map(|id| jwt_hash(&id.jti))
        };
        hash.map_or(Target::Unknown, Target::Access)
    }

    /// Revokes a token (or finds nothing to revoke) for a client authenticated from the cache:
    /// an access token alone, a refresh token with its family. False when the client's guard no
    /// longer holds, and nothing was done.
    async fn revoke_cached(
        &self,
        auth: &CachedAuth,
        target: &Target,
        now: UnixTime,
    ) -> Result<bool, TokenError> {
        let store = &self.deps.store;
        let client = &auth.client;
        let held = match target {
            Target::Access(hash) => {
                let owned = store
                    .access_token(hash)
                    .await?
                    .filter(|l| l.token.client_id == client.id && l.token.revoked_at.is_none());
                let Some(l) = owned else {
                    return self.nothing_to_revoke(auth).await;
                };
                let audit = self.revocation_audit(client, "access_token", l.token.family_id, now);
                store
                    .revoke_access_guarded(hash.clone(), auth.guard.clone(), now, audit)
                    .await?
            }
            Target::Refresh(hash) => {
                let owned = store
                    .refresh_token(hash)
                    .await?
                    .filter(|l| l.token.client_id == client.id);
                let Some(l) = owned else {
                    return self.nothing_to_revoke(auth).await;
                };
                let family = l.token.family_id;
                let audit = self.revocation_audit(client, "refresh_token", family.clone(), now);
                store
                    .revoke_family_guarded(family, auth.guard.clone(), now, audit)
                    .await?
            }
            Target::Unknown => return self.nothing_to_revoke(auth).await,
        };
        Ok(held.is_some())
    }

    /// Nothing of this client's to revoke: the answer is the same, once the client is (false when
    /// its guard no longer holds).
    async fn nothing_to_revoke(&self, auth: &CachedAuth) -> Result<bool, TokenError> {
        Ok(self.guard_holds_on_reader(auth).await?)
    }

    fn revocation_audit(
        &self,
        client: &Client,
        kind: &str,
        family: String,
        now: UnixTime,
    ) -> AuditEntry {
        self.client_audit(
            client,
            "token.revoke",
            family,
            serde_json::json!({ "token_type": kind }),
            now,
        )
    }
}
