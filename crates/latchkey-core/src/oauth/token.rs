//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6): authorization code with PKCE, refresh
//! token rotation with reuse detection, client credentials.

use latchkey_types::Scope;
use latchkey_types::Secret;
use latchkey_types::token::TokenResponse;

use super::Engine;
use super::client_auth::CachedAuth;
use super::error::TokenError;
use super::issue::{Issue, UnsignedIdToken};
use super::params::Params;
use super::pkce;
use super::records::{
    AccessTokenRecord, AuthorizationCode, RefreshTokenRecord, TokenClaims, TokenLookup,
};
use crate::client::{Client, GrantType};
use crate::clock::UnixTime;
use crate::crypto::{OpaqueToken, TokenHash, TokenKind};
use crate::store::StoreWrites as _;
use crate::store::{
    Exchange, Exchanged, Rotation, Tx, write_exchange, write_family_revocation, write_rotation,
};
use crate::throttle::Limit;

const OFFLINE_SCOPES: [&str; 2] = ["offline_access", "offline"];

pub(super) fn get<'p>(params: &'p Params, name: &str) -> Result<Option<&'p str>, TokenError> {
    Ok(params.get(name)?)
}

pub(super) fn require<'p>(params: &'p Params, name: &'static str) -> Result<&'p str, TokenError> {
    get(params, name)?.ok_or(TokenError::MissingParameter(name))
}

fn wants_refresh(client: &Client, scope: &Scope) -> bool {
    client.allows_grant(GrantType::RefreshToken) && OFFLINE_SCOPES.iter().any(|s| scope.contains(s))
}

/// The scope of the access token a refresh asks for: the `scope` parameter, which may only narrow
/// the `granted` scope, or the granted scope.
pub(super) fn narrowed_scope(params: &Params, granted: &Scope) -> Result<Scope, TokenError> {
    let Some(s) = get(params, "scope")? else {
        return Ok(granted.clone());
    };
    let requested = Scope::parse(s).map_err(|e| TokenError::ScopeMalformed {
        reason: e.to_string(),
    })?;
    if let Some(extra) = requested.difference(granted).next() {
        return Err(TokenError::ScopeNotGranted {
            scope: extra.to_owned(),
        });
    }
    Ok(requested)
}

/// What an access token is for: its scope and its audience.
pub(super) struct Target {
    scope: Scope,
    audience: Vec<String>,
}

impl Target {
    /// All of a family's scope and audience.
    pub(super) fn whole(scope: &Scope, audience: &[String]) -> Self {
        Self {
            scope: scope.clone(),
            audience: audience.to_vec(),
        }
    }
}

/// What [`Engine::mint`] makes: the response, and the records to store.
pub(super) struct Minted {
    pub(super) issued: Issued,
    pub(super) access: AccessTokenRecord,
    pub(super) refresh: Option<RefreshTokenRecord>,
}

/// The grant a token request asks for, once no parameter is given twice (RFC 6749 §3.2).
pub fn requested_grant(params: &Params) -> Result<GrantType, TokenError> {
    if let Some(dup) = params.first_duplicate() {
        return Err(TokenError::ParameterRepeated {
            name: dup.to_owned(),
        });
    }
    match require(params, "grant_type")? {
        "authorization_code" => Ok(GrantType::AuthorizationCode),
        "refresh_token" => Ok(GrantType::RefreshToken),
        "client_credentials" => Ok(GrantType::ClientCredentials),
        g if g == GrantType::DeviceCode.as_str() => Ok(GrantType::DeviceCode),
        g if g == GrantType::TokenExchange.as_str() => Ok(GrantType::TokenExchange),
        g if g == GrantType::JwtBearer.as_str() => Ok(GrantType::JwtBearer),
        _ => Err(TokenError::UnsupportedGrantType),
    }
}

impl Engine {
    /// What the access token of a code exchange or a refresh is for: the `resource` values, each
    /// among those granted (RFC 8707 §2.2), and the `scope`, within the granted one, as far as
    /// those resources accept it.
    fn access_target(
        &self,
        params: &Params,
        scope: &Scope,
        audience: &[String],
    ) -> Result<Target, TokenError> {
        let resources = &self.settings.resources;
        let audience = resources.narrowed(params, audience)?;
        let scope = resources.scope_for(&narrowed_scope(params, scope)?, &audience);
        Ok(Target { scope, audience })
    }

    /// `POST /oauth2/token`.
    pub async fn token(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<TokenResponse, TokenError> {
        let grant = requested_grant(params)?;
        // Whether the refresh token was still unused when this request arrived, read before the
        // request queues for the writer: a request that raced the rotation is coalesced into it,
        // one that came after it is a retry.
        let presented = match grant {
            GrantType::RefreshToken => self.presented_refresh(params).await?,
            _ => None,
        };
        let contender = presented
            .as_ref()
            .is_some_and(|(_, l)| l.token.used_at.is_none());
        // Authenticate from the cache first, without the writer. What the decision rested on
        // (the guard) is checked again by the write itself, so a client suspended or changed on
        // another replica cannot mint tokens here.
        let cached = self.authenticate_cached(authorization, params).await?;
        if let Some(auth) = &cached {
            self.throttle
                .check(Limit::TokenPerClient, &auth.client.id)?;
            if !auth.client.allows_grant(grant) {
                return Err(TokenError::UnauthorizedClient);
            }
            if grant == GrantType::ClientCredentials {
                let (response, record) = self.client_credentials(&auth.client, params)?;
                let now = self.deps.clock.now();
                if self
                    .deps
                    .store
                    .insert_access_guarded(record, auth.guard.clone(), now)
                    .await?
                {
                    return Ok(response);
                }
            }
            if let Some((hash, lookup)) = &presented
                && let Some(response) = self.rotate_cached(auth, params, hash, lookup).await?
            {
                return Ok(response);
            }
            if grant == GrantType::AuthorizationCode
                && let Some(response) = self.exchange_cached(auth, params).await?
            {
                return Ok(response);
            }
        }
        let mut tx = self.deps.store.begin().await?;
        let counted = cached.is_some();
        let client = self
            .confirm_client(tx.as_mut(), cached, authorization, params)
            .await?;
        if !counted {
            self.throttle.check(Limit::TokenPerClient, &client.id)?;
        }
        if !client.allows_grant(grant) {
            return Err(TokenError::UnauthorizedClient);
        }
        let result = match grant {
            GrantType::AuthorizationCode => self.exchange_code(tx.as_mut(), &client, params).await,
            GrantType::RefreshToken => self.refresh(tx.as_mut(), &client, params, contender).await,
            GrantType::ClientCredentials => match self.client_credentials(&client, params) {
                Ok((response, record)) => tx
                    .tokens()
                    .insert_access(&record)
                    .await
                    .map(|()| Issued {
                        response,
                        unsigned_id_token: None,
                    })
                    .map_err(|e| Failure::from(TokenError::from(e))),
                Err(e) => Err(Failure::from(e)),
            },
            GrantType::DeviceCode => self.device_code_grant(tx.as_mut(), &client, params).await,
            GrantType::TokenExchange => self.token_exchange(tx.as_mut(), &client, params).await,
            GrantType::JwtBearer => self.jwt_bearer_grant(tx.as_mut(), &client, params).await,
        };
        match result {
            Ok(issued) => {
                tx.commit().await?;
                // Signed after the commit: the writer is not held for the signature.
                self.finish(issued)
            }
            Err(Failure {
                error,
                revoke_family,
            }) => {
                // A detected replay revokes what it must even though the request fails, and a
                // client assertion's jti stays recorded: both are writes the failure must keep.
                // A server error keeps nothing.
                if matches!(error, TokenError::Store(_) | TokenError::Internal(_)) {
                    return Err(error);
                }
                if let Some(family) = revoke_family {
                    self.revoke_family_for_replay(tx.as_mut(), &client, &family)
                        .await?;
                    metrics::counter!("latchkey_token_family_revocations_total", "reason" => "replay")
                        .increment(1);
                }
                tx.commit().await?;
                Err(error)
            }
        }
    }

    /// A detected replay revokes the token's family, with its audit entry
    /// ([`write_family_revocation`]).
    async fn revoke_family_for_replay(
        &self,
        tx: &mut dyn Tx,
        client: &Client,
        family: &str,
    ) -> Result<(), TokenError> {
        let now = self.deps.clock.now();
        let audit = self.client_audit(
            client,
            "token.family_revoked",
            family.to_owned(),
            serde_json::json!({ "reason": "replay" }),
            now,
        );
        let revoked = write_family_revocation(tx, family, now, &audit).await?;
        tracing::warn!(client_id = %client.id, family, revoked, "replay detected: token family revoked");
        Ok(())
    }

    async fn exchange_code(
        &self,
        tx: &mut dyn Tx,
        client: &Client,
        params: &Params,
    ) -> Result<Issued, Failure> {
        let hash = presented_code(params, &self.deps.secrets)?.ok_or(TokenError::CodeInvalid)?;
        let record = tx
            .codes()
            .get(&hash)
            .await
            .map_err(TokenError::from)?
            .ok_or(TokenError::CodeInvalid)?;
        let now = self.deps.clock.now();
        check_code(&record, client, params, now)?;
        let target = self.access_target(params, &record.data.scope, &record.data.audience)?;
        let (issued, exchange) = self.exchange(client, hash, &record, &target)?;
        let exchanged = write_exchange(tx, &exchange, now)
            .await
            .map_err(TokenError::from)?;
        exchange_outcome(exchanged, issued, &record.family_id)
    }

    /// Exchanges a code read on a reader, for a client authenticated from the cache, with one
    /// guarded write: the common case of a code exchange. `None` when the code is not plainly
    /// this client's, unused, live and matched by the request, or the write found it otherwise
    /// (a request racing this one used it, the client changed): the request's transaction then
    /// decides on what it reads.
    async fn exchange_cached(
        &self,
        auth: &CachedAuth,
        params: &Params,
    ) -> Result<Option<TokenResponse>, TokenError> {
        let Ok(Some(hash)) = presented_code(params, &self.deps.secrets) else {
            return Ok(None);
        };
        let Some(record) = self.deps.store.authorization_code(&hash).await? else {
            return Ok(None);
        };
        let now = self.deps.clock.now();
        if check_code(&record, &auth.client, params, now).is_err() {
            return Ok(None);
        }
        let Ok(target) = self.access_target(params, &record.data.scope, &record.data.audience)
        else {
            return Ok(None);
        };
        let (issued, exchange) = self.exchange(&auth.client, hash, &record, &target)?;
        let write = self
            .deps
            .store
            .exchange_code_guarded(exchange, auth.guard.clone(), now);
        let (exchanged, response) = self.write_while_signing(issued, write).await;
        match exchanged? {
            Some(Exchanged::CodeUsed) | None => Ok(None),
            Some(e) => exchange_outcome(e, response, &record.family_id)
                .map_err(|f| f.error)?
                .map(Some),
        }
    }

    /// Runs a grant's guarded write while its ID token is signed: the signature (an RSA one
    /// takes longer than the write's round trip) overlaps the write instead of following it. It
    /// holds nothing the write needs, and a write that fails throws the response away.
    async fn write_while_signing<T>(
        &self,
        issued: Issued,
        write: impl Future<Output = T>,
    ) -> (T, Result<TokenResponse, TokenError>) {
        // The write is polled first, so its request is on its way before the signing starts.
        futures_util::future::join(write, async { self.finish(issued) }).await
    }

    /// The tokens `record` is exchanged for, and what the exchange writes.
    fn exchange(
        &self,
        client: &Client,
        hash: TokenHash,
        record: &AuthorizationCode,
        target: &Target,
    ) -> Result<(Issued, Exchange), TokenError> {
        let data = &record.data;
        let issue = Issue {
            client,
            subject: &data.subject,
            scope: &data.scope,
            audience: &data.audience,
            claims: &data.claims,
            grant_id: Some(&record.grant_id),
            family_id: &record.family_id,
        };
        let minted = self.mint(&issue, target, data.nonce.as_deref())?;
        let exchange = Exchange {
            code: hash,
            grant_id: record.grant_id.clone(),
            access: minted.access,
            refresh: minted.refresh,
        };
        Ok((minted.issued, exchange))
    }

    /// Mints an access token for `access` (a scope and audience within the family's), a refresh
    /// token when the family has offline access, and an ID token (to be signed) when the access
    /// has `openid`: the response, and the records to store.
    pub(super) fn mint(
        &self,
        issue: &Issue<'_>,
        access: &Target,
        nonce: Option<&str>,
    ) -> Result<Minted, TokenError> {
        let access_scope = &access.scope;
        let access_issue = Issue {
            scope: access_scope,
            audience: &access.audience,
            ..*issue
        };
        let (access_token, expires_in, access) = self.access_token(&access_issue)?;
        let (refresh_token, refresh) = wants_refresh(issue.client, issue.scope)
            .then(|| self.refresh_token(issue))
            .unzip();
        let unsigned_id_token = if access_scope.contains("openid") {
            Some(self.id_token(issue, nonce, &access_token)?)
        } else {
            None
        };
        let issued = Issued {
            response: TokenResponse {
                access_token: access_token.into(),
                token_type: "bearer".into(),
                expires_in,
                refresh_token: refresh_token.map(Secret::from),
                id_token: None,
                scope: Some(access_scope.to_string()).filter(|s| !s.is_empty()),
                issued_token_type: None,
            },
            unsigned_id_token,
        };
        Ok(Minted {
            issued,
            access,
            refresh,
        })
    }

    /// The tokens that replace the refresh token `hash` of `record` (the access token narrowed
    /// to `access_scope`), and what the rotation writes: the response is kept, sealed, for
    /// retries.
    /// The tokens a refresh token is rotated into, and what the rotation writes. `claims` are
    /// the record's, with the accounts the platform allows now ([`Engine::narrowed_claims`]).
    fn rotation(
        &self,
        client: &Client,
        hash: &TokenHash,
        record: &RefreshTokenRecord,
        access: &Target,
        claims: &TokenClaims,
    ) -> Result<(Issued, Rotation), TokenError> {
        let issue = Issue {
            client,
            subject: &record.subject,
            scope: &record.scope,
            audience: &record.audience,
            claims,
            grant_id: record.grant_id.as_deref(),
            family_id: &record.family_id,
        };
        let minted = self.mint(&issue, access, None)?;
        let successor = self.deps.secrets.seal(
            self.deps.entropy.as_ref(),
            &successor_aad(hash, &client.id),
            &serde_json::to_vec(&minted.issued).map_err(|e| TokenError::Internal(e.to_string()))?,
        );
        let rotation = Rotation {
            hash: hash.clone(),
            grant_id: record.grant_id.clone(),
            access: minted.access,
            refresh: minted.refresh,
            successor,
        };
        Ok((minted.issued, rotation))
    }

    /// Rotates a refresh token read on a reader, for a client authenticated from the cache, with
    /// one guarded write: the common case of a refresh. `None` when the token is not plainly
    /// this client's, live and unused, or the write found it otherwise (a request racing this
    /// one rotated it, the client changed): the request's transaction then decides on what it
    /// reads.
    async fn rotate_cached(
        &self,
        auth: &CachedAuth,
        params: &Params,
        hash: &TokenHash,
        lookup: &TokenLookup<RefreshTokenRecord>,
    ) -> Result<Option<TokenResponse>, TokenError> {
        let record = &lookup.token;
        let now = self.deps.clock.now();
        let plain = record.client_id == auth.client.id
            && record.used_at.is_none()
            && record.revoked_at.is_none()
            && !lookup.grant_revoked
            && lookup.client_active
            && record.expires_at > now;
        let Some(access) = plain
            .then(|| {
                self.access_target(params, &record.scope, &record.audience)
                    .ok()
            })
            .flatten()
        else {
            return Ok(None);
        };
        let claims = self
            .narrowed_claims(
                &record.subject,
                &record.client_id,
                &record.scope,
                &record.claims,
            )
            .await?;
        let (issued, rotation) = self.rotation(&auth.client, hash, record, &access, &claims)?;
        let write = self
            .deps
            .store
            .rotate_refresh_guarded(rotation, auth.guard.clone(), now);
        let (rotated, response) = self.write_while_signing(issued, write).await;
        if rotated? != Some(true) {
            return Ok(None);
        }
        metrics::counter!("latchkey_refresh_rotations_total").increment(1);
        response.map(Some)
    }

    /// The request's refresh token as it is right now, read before the request queues for the
    /// writer, when it verifies and exists.
    async fn presented_refresh(
        &self,
        params: &Params,
    ) -> Result<Option<(TokenHash, TokenLookup<RefreshTokenRecord>)>, TokenError> {
        let Some(token) = get(params, "refresh_token")? else {
            return Ok(None);
        };
        let Ok(hash) = OpaqueToken::verify(TokenKind::RefreshToken, token, &self.deps.secrets)
        else {
            return Ok(None);
        };
        let found = self.deps.store.refresh_token(&hash).await?;
        Ok(found.map(|l| (hash, l)))
    }

    async fn refresh(
        &self,
        tx: &mut dyn Tx,
        client: &Client,
        params: &Params,
        contender: bool,
    ) -> Result<Issued, Failure> {
        let token = require(params, "refresh_token")?;
        let hash = OpaqueToken::verify(TokenKind::RefreshToken, token, &self.deps.secrets)
            .map_err(|_| TokenError::RefreshTokenInvalid)?;
        let lookup = tx
            .tokens()
            .refresh(&hash)
            .await
            .map_err(TokenError::from)?
            .ok_or(TokenError::RefreshTokenInvalid)?;
        let record = lookup.token;
        if record.client_id != client.id {
            // Another client holding this token means it was stolen: end the family.
            return Err(Failure::replay(
                TokenError::RefreshTokenOfAnotherClient,
                &record.family_id,
            ));
        }
        let now = self.deps.clock.now();
        if record.revoked_at.is_some() || lookup.grant_revoked {
            return Err(TokenError::RefreshTokenRevoked.into());
        }
        if record.expires_at <= now {
            // A used token presented again is a replay even once it has expired: its family may
            // live on (the janitor keeps the token while it does, for this).
            if record.used_at.is_some() {
                return Err(Failure::replay(
                    TokenError::RefreshTokenAlreadyUsed,
                    &record.family_id,
                ));
            }
            return Err(TokenError::RefreshTokenExpired.into());
        }
        let access = self.access_target(params, &record.scope, &record.audience)?;
        if record.used_at.is_none() {
            // This request rotates the token, unless one racing it claims it first. The row stays
            // locked (PostgreSQL) or the writer busy (SQLite) only until the new pair is written
            // and the response kept.
            let claims = self
                .narrowed_claims(
                    &record.subject,
                    &record.client_id,
                    &record.scope,
                    &record.claims,
                )
                .await
                .map_err(TokenError::from)?;
            let (issued, rotation) = self.rotation(client, &hash, &record, &access, &claims)?;
            if write_rotation(tx, &rotation, now)
                .await
                .map_err(TokenError::from)?
            {
                metrics::counter!("latchkey_refresh_rotations_total").increment(1);
                return Ok(issued);
            }
        }
        // The token was rotated already: by a request racing this one, or before it came.
        let current = tx
            .tokens()
            .refresh(&hash)
            .await
            .map_err(TokenError::from)?
            .ok_or(TokenError::RefreshTokenInvalid)?;
        let t = &current.token;
        let state = RefreshState {
            used_at: t.used_at,
            successor: t.successor.is_some(),
            reuse_count: t.reuse_count,
        };
        let decision = reuse_decision(
            &state,
            contender,
            now,
            self.settings.refresh_grace_period,
            self.settings.refresh_grace_reuse_count,
        );
        let live = t.revoked_at.is_none() && !current.grant_revoked && current.client_active;
        let sealed = match (decision, &t.successor) {
            (ReuseDecision::Serve { counted }, Some(sealed)) if live => {
                if counted
                    && !tx
                        .tokens()
                        .count_reuse(&hash, self.settings.refresh_grace_reuse_count)
                        .await
                        .map_err(TokenError::from)?
                {
                    return Err(Failure::replay(
                        TokenError::RefreshTokenAlreadyUsed,
                        &record.family_id,
                    ));
                }
                let kind = if counted { "retry" } else { "concurrent" };
                metrics::counter!("latchkey_refresh_coalesced_total", "kind" => kind).increment(1);
                sealed.clone()
            }
            _ => {
                return Err(Failure::replay(
                    TokenError::RefreshTokenAlreadyUsed,
                    &record.family_id,
                ));
            }
        };
        let plain = self
            .deps
            .secrets
            .open(&successor_aad(&hash, &client.id), &sealed)
            .map_err(|_| TokenError::RefreshTokenAlreadyUsed)?;
        // A successor kept before ID tokens were signed after the commit is a plain response
        // with its ID token signed; it reads as an `Issued` with nothing left to sign.
        Ok(serde_json::from_slice(&plain).map_err(|e| TokenError::Internal(e.to_string()))?)
    }

    /// The response of an issued grant, its ID token signed.
    fn finish(&self, issued: Issued) -> Result<TokenResponse, TokenError> {
        let mut response = issued.response;
        if let Some(unsigned) = &issued.unsigned_id_token {
            response.id_token = Some(self.sign_id_token(unsigned)?.into());
        }
        Ok(response)
    }

    /// The response to a client credentials grant and the access token record to store.
    fn client_credentials(
        &self,
        client: &Client,
        params: &Params,
    ) -> Result<(TokenResponse, AccessTokenRecord), TokenError> {
        if client.is_public() {
            return Err(TokenError::UnauthorizedClient);
        }
        let scope = Scope::parse(get(params, "scope")?.unwrap_or_default()).map_err(|e| {
            TokenError::ScopeMalformed {
                reason: e.to_string(),
            }
        })?;
        if let Some(extra) = scope.difference(&client.scope).next() {
            return Err(TokenError::ScopeNotAllowed {
                scope: extra.to_owned(),
            });
        }
        let resources = &self.settings.resources;
        let audience = resources.requested(params, client)?;
        let scope = resources.scope_for(&scope, &audience);
        let now = self.deps.clock.now();
        let claims = TokenClaims {
            auth_time: now,
            ..TokenClaims::default()
        };
        let family_id = self.deps.ordered_id();
        let issue = Issue {
            client,
            subject: &client.id,
            scope: &scope,
            audience: &audience,
            claims: &claims,
            grant_id: None,
            family_id: &family_id,
        };
        let (access_token, expires_in, record) = self.access_token(&issue)?;
        let response = TokenResponse {
            access_token: access_token.into(),
            token_type: "bearer".into(),
            expires_in,
            refresh_token: None,
            id_token: None,
            scope: Some(scope.to_string()).filter(|s| !s.is_empty()),
            issued_token_type: None,
        };
        Ok((response, record))
    }
}

/// The hash of the request's authorization code; `None` when it does not verify.
fn presented_code(
    params: &Params,
    secrets: &crate::crypto::SystemSecrets,
) -> Result<Option<TokenHash>, TokenError> {
    let code = require(params, "code")?;
    Ok(OpaqueToken::verify(TokenKind::AuthorizationCode, code, secrets).ok())
}

/// Whether the code `record` may be exchanged by `client` with this request at `now`: issued
/// to it, unused, live, and matched by the request's redirect URI and PKCE verifier.
fn check_code(
    record: &AuthorizationCode,
    client: &Client,
    params: &Params,
    now: UnixTime,
) -> Result<(), Failure> {
    let redirect_uri = get(params, "redirect_uri")?;
    let verifier = get(params, "code_verifier")?;
    if record.client_id != client.id {
        return Err(TokenError::CodeOfAnotherClient.into());
    }
    if record.consumed_at.is_some() {
        return Err(Failure::replay(
            TokenError::CodeAlreadyUsed,
            &record.family_id,
        ));
    }
    if record.expires_at <= now {
        return Err(TokenError::CodeExpired.into());
    }
    let data = &record.data;
    match redirect_uri {
        Some(uri) if uri != data.redirect_uri => {
            return Err(TokenError::RedirectUriMismatch.into());
        }
        None if data.redirect_uri_given => {
            return Err(TokenError::MissingParameter("redirect_uri").into());
        }
        _ => {}
    }
    match (&data.code_challenge, verifier) {
        (Some(challenge), Some(v)) if pkce::verify_s256(v, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(TokenError::PkceMismatch.into()),
        (Some(_), None) => Err(TokenError::MissingParameter("code_verifier").into()),
        (None, Some(_)) => Err(TokenError::PkceNotUsed.into()),
        (None, None) => Ok(()),
    }
}

/// The answer to a code exchange that wrote `exchanged`: a code found used is a replay, which
/// revokes what was issued for it.
fn exchange_outcome<T>(exchanged: Exchanged, issued: T, family: &str) -> Result<T, Failure> {
    match exchanged {
        Exchanged::Written => Ok(issued),
        Exchanged::CodeUsed => Err(Failure::replay(TokenError::CodeAlreadyUsed, family)),
        Exchanged::GrantRevoked => Err(TokenError::GrantRevoked.into()),
    }
}

/// What a used refresh token's record says about a new presentation of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefreshState {
    pub used_at: Option<UnixTime>,
    /// The response it was exchanged for is still kept.
    pub successor: bool,
    pub reuse_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReuseDecision {
    /// Answer with the kept response; `counted` when it uses up one of the retries.
    Serve { counted: bool },
    /// Reuse: revoke the family.
    Reject,
}

/// How long a request that raced the rotation may still be answered with its result, even when
/// retries are turned off: such a request presented the token before it was used.
pub const COALESCE_WINDOW: i64 = 10;

/// Presentations this close to the rotation (in seconds) are part of the same burst — two tabs,
/// a CLI and its daemon refreshing at once — and are coalesced without using up a retry, even
/// when they reached the database after the rotation.
pub const BURST_WINDOW: i64 = 2;

/// Whether a used refresh token, presented again at `now`, gets the response of its rotation.
/// A request that raced the rotation (`contender`: the token was unused when it arrived) or came
/// in the same burst is coalesced into the rotation without using up a retry; a later
/// presentation is a retry, served within the grace period while retries remain.
pub(crate) fn reuse_decision(
    state: &RefreshState,
    contender: bool,
    now: UnixTime,
    grace: i64,
    max_retries: u32,
) -> ReuseDecision {
    let Some(used_at) = state.used_at else {
        return ReuseDecision::Reject;
    };
    if !state.successor {
        return ReuseDecision::Reject;
    }
    let age = now - used_at;
    let concurrent = contender || age <= BURST_WINDOW;
    let window = if concurrent {
        grace.max(COALESCE_WINDOW)
    } else {
        grace
    };
    if age > window {
        return ReuseDecision::Reject;
    }
    if concurrent {
        return ReuseDecision::Serve { counted: false };
    }
    if state.reuse_count < i64::from(max_retries) {
        ReuseDecision::Serve { counted: true }
    } else {
        ReuseDecision::Reject
    }
}

fn successor_aad(hash: &crate::crypto::TokenHash, client_id: &str) -> Vec<u8> {
    format!(
        "latchkey refresh successor\u{0}{}\u{0}{client_id}",
        hash.as_str()
    )
    .into_bytes()
}

/// A failed grant, and the family a detected replay must revoke.
/// What a grant issued: the response, and its ID token still to be signed (after the commit, see
/// [`UnsignedIdToken`]). A refresh keeps it, sealed, as the answer to a retry of the same
/// refresh; a retry therefore gets an ID token with the same claims.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Issued {
    #[serde(flatten)]
    pub(super) response: TokenResponse,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) unsigned_id_token: Option<UnsignedIdToken>,
}

pub(super) struct Failure {
    pub(super) error: TokenError,
    revoke_family: Option<String>,
}

impl Failure {
    /// A detected replay: `error`, and the family it revokes.
    fn replay(error: TokenError, family: &str) -> Self {
        Self {
            error,
            revoke_family: Some(family.to_owned()),
        }
    }
}

impl From<TokenError> for Failure {
    fn from(error: TokenError) -> Self {
        Self {
            error,
            revoke_family: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock as _, MockClock};

    const GRACE: i64 = 30;

    const REDIRECT: &str = "https://a.example/cb";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(id: &str) -> Client {
        crate::client::test_client(id, &serde_json::json!({ "redirect_uris": [REDIRECT] }))
    }

    /// A code issued to `c1` at 1000, valid until 1600, with PKCE and a named redirect URI.
    fn code() -> AuthorizationCode {
        AuthorizationCode {
            code_hash: TokenHash("h".into()),
            client_id: "c1".into(),
            grant_id: "g1".into(),
            family_id: "f1".into(),
            data: crate::oauth::records::CodeData {
                redirect_uri: REDIRECT.into(),
                redirect_uri_given: true,
                code_challenge: Some(CHALLENGE.into()),
                nonce: None,
                subject: "alice".into(),
                scope: Scope::default(),
                audience: vec![],
                claims: TokenClaims::default(),
            },
            created_at: 1_000,
            expires_at: 1_600,
            consumed_at: None,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    /// The error `check_code` answers, and whether it revokes the family.
    fn refusal(
        record: &AuthorizationCode,
        client_id: &str,
        pairs: &[(&str, &str)],
        now: i64,
    ) -> (TokenError, bool) {
        let failure =
            check_code(record, &client(client_id), &params(pairs), now).expect_err("refused");
        (failure.error, failure.revoke_family.is_some())
    }

    const GOOD: [(&str, &str); 2] = [("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)];

    #[test]
    fn a_matching_request_may_exchange_the_code() {
        let clock = MockClock::new(1_000);
        assert!(check_code(&code(), &client("c1"), &params(&GOOD), clock.now()).is_ok());
    }

    #[test]
    fn each_mismatch_is_its_own_error() {
        let now = 1_100;
        let (e, revokes) = refusal(&code(), "c2", &GOOD, now);
        assert!(matches!(e, TokenError::CodeOfAnotherClient), "{e:?}");
        assert!(!revokes);
        let wrong_uri = [
            ("redirect_uri", "https://a.example/other"),
            ("code_verifier", VERIFIER),
        ];
        let (e, _) = refusal(&code(), "c1", &wrong_uri, now);
        assert!(matches!(e, TokenError::RedirectUriMismatch), "{e:?}");
        let (e, _) = refusal(&code(), "c1", &[("code_verifier", VERIFIER)], now);
        assert!(
            matches!(e, TokenError::MissingParameter("redirect_uri")),
            "{e:?}"
        );
        assert_eq!(e.code(), latchkey_types::ErrorCode::InvalidRequest);
        let wrong_verifier = [
            ("redirect_uri", REDIRECT),
            ("code_verifier", &VERIFIER[1..]),
        ];
        let (e, _) = refusal(&code(), "c1", &wrong_verifier, now);
        assert!(matches!(e, TokenError::PkceMismatch), "{e:?}");
        let (e, _) = refusal(&code(), "c1", &[("redirect_uri", REDIRECT)], now);
        assert!(
            matches!(e, TokenError::MissingParameter("code_verifier")),
            "{e:?}"
        );
        let mut without_pkce = code();
        without_pkce.data.code_challenge = None;
        let (e, _) = refusal(&without_pkce, "c1", &GOOD, now);
        assert!(matches!(e, TokenError::PkceNotUsed), "{e:?}");
    }

    #[test]
    fn an_expired_code_is_refused_and_a_used_one_is_a_replay() {
        let clock = MockClock::new(1_000);
        clock.advance(600);
        let (e, revokes) = refusal(&code(), "c1", &GOOD, clock.now());
        assert!(matches!(e, TokenError::CodeExpired), "{e:?}");
        assert!(!revokes);
        let mut used = code();
        used.consumed_at = Some(1_050);
        let (e, revokes) = refusal(&used, "c1", &GOOD, 1_100);
        assert!(matches!(e, TokenError::CodeAlreadyUsed), "{e:?}");
        assert!(revokes, "a replayed code revokes its family");
    }

    #[test]
    fn a_code_found_used_or_revoked_at_the_write_is_refused() {
        let used = exchange_outcome(Exchanged::CodeUsed, (), "f1").expect_err("used");
        assert!(matches!(used.error, TokenError::CodeAlreadyUsed));
        assert_eq!(used.revoke_family.as_deref(), Some("f1"));
        let revoked = exchange_outcome(Exchanged::GrantRevoked, (), "f1").expect_err("revoked");
        assert!(matches!(revoked.error, TokenError::GrantRevoked));
        assert!(revoked.revoke_family.is_none());
        assert!(exchange_outcome(Exchanged::Written, (), "f1").is_ok());
    }

    #[test]
    fn a_refresh_may_only_narrow_the_scope() {
        let granted = Scope::parse("openid offline_access").expect("scope");
        assert_eq!(
            narrowed_scope(&params(&[]), &granted).expect("same"),
            granted
        );
        let narrowed = narrowed_scope(&params(&[("scope", "openid")]), &granted).expect("narrower");
        assert_eq!(narrowed.to_string(), "openid");
        let e = narrowed_scope(&params(&[("scope", "openid email")]), &granted).expect_err("wider");
        assert!(
            matches!(&e, TokenError::ScopeNotGranted { scope } if scope == "email"),
            "{e:?}"
        );
    }

    #[test]
    fn the_grant_type_is_read_once() {
        let e = requested_grant(&params(&[("grant_type", "password")])).expect_err("password");
        assert!(matches!(e, TokenError::UnsupportedGrantType));
        let e = requested_grant(&params(&[])).expect_err("none");
        assert!(
            matches!(e, TokenError::MissingParameter("grant_type")),
            "{e:?}"
        );
        let twice = params(&[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ]);
        let e = requested_grant(&twice).expect_err("twice");
        assert!(
            matches!(&e, TokenError::ParameterRepeated { name } if name == "grant_type"),
            "{e:?}"
        );
    }

    #[test]
    fn a_successor_kept_as_a_plain_response_still_reads_with_its_id_token() {
        let old = r#"{"access_token":"a","token_type":"bearer","expires_in":3600,
            "refresh_token":"r","id_token":"h.p.s","scope":"openid offline_access"}"#;
        let issued: Issued = serde_json::from_str(old).expect("old successor");
        assert_eq!(
            issued.response.id_token.as_ref().map(Secret::expose),
            Some("h.p.s")
        );
        assert!(issued.unsigned_id_token.is_none());
        let kept = serde_json::to_value(&issued).expect("serialize");
        assert!(kept.get("unsigned_id_token").is_none(), "{kept}");
    }

    fn used(at: UnixTime, reuse_count: i64) -> RefreshState {
        RefreshState {
            used_at: Some(at),
            successor: true,
            reuse_count,
        }
    }

    #[test]
    fn a_retry_inside_the_grace_period_is_served_and_counted() {
        let clock = MockClock::new(1_000);
        let rotated = clock.now();
        clock.advance(GRACE);
        assert_eq!(
            reuse_decision(&used(rotated, 0), false, clock.now(), GRACE, 3),
            ReuseDecision::Serve { counted: true }
        );
        clock.advance(1);
        assert_eq!(
            reuse_decision(&used(rotated, 0), false, clock.now(), GRACE, 3),
            ReuseDecision::Reject,
            "outside the window"
        );
    }

    #[test]
    fn retries_run_out() {
        let now = 1_000;
        let rotated = now - 5;
        assert_eq!(
            reuse_decision(&used(rotated, 2), false, now, GRACE, 3),
            ReuseDecision::Serve { counted: true }
        );
        assert_eq!(
            reuse_decision(&used(rotated, 3), false, now, GRACE, 3),
            ReuseDecision::Reject
        );
        assert_eq!(
            reuse_decision(&used(rotated, 0), false, now, GRACE, 0),
            ReuseDecision::Reject,
            "retries off"
        );
    }

    #[test]
    fn a_burst_right_after_the_rotation_is_coalesced() {
        let rotated = 1_000;
        for age in 0..=BURST_WINDOW {
            assert_eq!(
                reuse_decision(&used(rotated, 3), false, rotated + age, GRACE, 3),
                ReuseDecision::Serve { counted: false }
            );
        }
        assert_eq!(
            reuse_decision(
                &used(rotated, 3),
                false,
                rotated + BURST_WINDOW + 1,
                GRACE,
                3
            ),
            ReuseDecision::Reject
        );
    }

    #[test]
    fn concurrent_requests_are_coalesced_without_using_retries() {
        let clock = MockClock::new(5_000);
        let rotated = clock.now();
        assert_eq!(
            reuse_decision(&used(rotated, 3), true, clock.now(), GRACE, 3),
            ReuseDecision::Serve { counted: false }
        );
        assert_eq!(
            reuse_decision(&used(rotated, 0), true, clock.now(), 0, 0),
            ReuseDecision::Serve { counted: false },
            "even in strict mode"
        );
        clock.advance(COALESCE_WINDOW + 1);
        assert_eq!(
            reuse_decision(&used(rotated, 0), true, clock.now(), 0, 0),
            ReuseDecision::Reject
        );
    }

    #[test]
    fn without_a_kept_response_reuse_is_rejected() {
        // A revocation clears the kept response: nothing is served after it.
        let revoked = RefreshState {
            used_at: Some(10),
            successor: false,
            reuse_count: 0,
        };
        assert_eq!(
            reuse_decision(&revoked, false, 10, GRACE, 3),
            ReuseDecision::Reject
        );
        assert_eq!(
            reuse_decision(&revoked, true, 10, GRACE, 3),
            ReuseDecision::Reject
        );
        let unused = RefreshState {
            used_at: None,
            successor: false,
            reuse_count: 0,
        };
        assert_eq!(
            reuse_decision(&unused, false, 10, GRACE, 3),
            ReuseDecision::Reject
        );
    }
}
