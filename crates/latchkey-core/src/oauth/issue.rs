//! Minting tokens: opaque or JWT access tokens (RFC 9068), refresh tokens, ID tokens.

use latchkey_types::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Engine;
use super::error::TokenError;
use super::records::{AccessTokenRecord, RefreshTokenRecord, TokenClaims};
use crate::client::Client;
use crate::config::AccessTokenStrategy;
use crate::crypto::{TokenHash, TokenKind, b64, lookup_hash, millis_of};
use crate::entropy::EntropyExt as _;
use crate::keys::SigningAlg;

/// Claims of the ID token a client may not set through `session.id_token`.
const RESERVED_ID_TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "at_hash",
    "c_hash",
    "acr",
    "amr",
    "azp",
    "sid",
];

/// What a family of tokens is issued for.
pub(crate) struct Issue<'a> {
    pub client: &'a Client,
    pub subject: &'a str,
    pub scope: &'a Scope,
    pub audience: &'a [String],
    pub claims: &'a TokenClaims,
    pub grant_id: Option<&'a str>,
    pub family_id: &'a str,
}

/// An RFC 9068 JWT access token's claims.
#[derive(Serialize)]
struct AccessTokenJwt<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a [String],
    client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    jti: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'a str>,
    #[serde(skip_serializing_if = "Value::is_null")]
    ext: &'a Value,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    accounts: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Value>,
}

/// The storage key of a JWT access token: the hash of its `jti`, ordered by the time in the
/// `jti` when it is a version 7 UUID (every `jti` Latchkey mints now; see [`TokenHash::ordered`]).
pub(crate) fn jwt_hash(jti: &str) -> TokenHash {
    let digest = lookup_hash(jti);
    let minted = uuid::Uuid::try_parse(jti)
        .ok()
        .filter(|id| id.get_version_num() == 7)
        .and_then(|id| id.as_bytes().first_chunk().copied().map(millis_of));
    match minted {
        Some(millis) => TokenHash::ordered(millis, &digest),
        None => TokenHash(digest),
    }
}

/// The claims of the session's `access_token` with the granted accounts, as `ext` shows them.
pub(crate) fn ext_claims(claims: &TokenClaims) -> Value {
    let mut ext = match &claims.access_token {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if !claims.accounts.is_empty() {
        ext.insert("accounts".into(), Value::from(claims.accounts.clone()));
    }
    if ext.is_empty() {
        Value::Null
    } else {
        Value::Object(ext)
    }
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token.
fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest = match alg {
        SigningAlg::EdDSA => {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, access_token.as_bytes())
        }
        SigningAlg::RS256 | SigningAlg::ES256 => {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes())
        }
    };
    let bytes = digest.as_ref();
    b64(&bytes[..bytes.len() / 2])
}

impl Engine {
    /// Mints an access token: its value, its lifetime in seconds, and the record to store.
    pub(crate) fn access_token(
        &self,
        issue: &Issue<'_>,
    ) -> Result<(String, i64, AccessTokenRecord), TokenError> {
        let now = self.deps.clock.now();
        let ttl = self.settings.access_token_ttl;
        let strategy = issue
            .client
            .access_token_strategy
            .unwrap_or(self.settings.access_token_strategy);
        let audience: Vec<String> = if issue.audience.is_empty() {
            vec![self.settings.issuer.clone()]
        } else {
            issue.audience.to_vec()
        };
        let (value, hash) = match strategy {
            AccessTokenStrategy::Opaque => {
                let t = self.deps.mint(TokenKind::AccessToken);
                (t.value, t.hash)
            }
            AccessTokenStrategy::Jwt => {
                let jti = self.deps.ordered_id();
                let ring = self.keys.current();
                let key = ring
                    .signer(self.settings.access_token_alg)
                    .map_err(|e| TokenError::Internal(e.to_string()))?;
                let ext = ext_claims(issue.claims);
                let jwt = key.sign_jwt(
                    "at+jwt",
                    &AccessTokenJwt {
                        iss: &self.settings.issuer,
                        sub: issue.subject,
                        aud: &audience,
                        client_id: &issue.client.id,
                        scope: &issue.scope.to_string(),
                        jti: &jti,
                        iat: now,
                        nbf: now,
                        exp: now + ttl,
                        auth_time: issue.grant_id.map(|_| issue.claims.auth_time),
                        acr: issue.claims.acr.as_deref(),
                        ext: &ext,
                        accounts: &issue.claims.accounts,
                        act: issue.claims.act.as_ref(),
                    },
                );
                (jwt, jwt_hash(&jti))
            }
        };
        let record = AccessTokenRecord {
            token_hash: hash,
            client_id: issue.client.id.clone(),
            grant_id: issue.grant_id.map(str::to_owned),
            family_id: issue.family_id.to_owned(),
            subject: issue.subject.to_owned(),
            scope: issue.scope.clone(),
            // The granted audience, as introspection reports it (the issuer fills in for the
            // JWT's required `aud` only).
            audience: issue.audience.to_vec(),
            claims: issue.claims.clone(),
            issued_at: now,
            expires_at: now + ttl,
            revoked_at: None,
        };
        Ok((value, ttl, record))
    }

    /// Mints a refresh token of the family: its value and the record to store.
    pub(crate) fn refresh_token(&self, issue: &Issue<'_>) -> (String, RefreshTokenRecord) {
        let now = self.deps.clock.now();
        let t = self.deps.mint(TokenKind::RefreshToken);
        let record = RefreshTokenRecord {
            token_hash: t.hash,
            client_id: issue.client.id.clone(),
            grant_id: issue.grant_id.map(str::to_owned),
            family_id: issue.family_id.to_owned(),
            subject: issue.subject.to_owned(),
            scope: issue.scope.clone(),
            audience: issue.audience.to_vec(),
            claims: issue.claims.clone(),
            issued_at: now,
            expires_at: now + self.settings.refresh_token_ttl,
            used_at: None,
            reuse_count: 0,
            successor: None,
            revoked_at: None,
        };
        (t.value, record)
    }

    /// An ID token's claims, to be signed with [`Engine::sign_id_token`] (RS256 unless the client
    /// registered another algorithm).
    pub(crate) fn id_token(
        &self,
        issue: &Issue<'_>,
        nonce: Option<&str>,
        access_token: &str,
    ) -> Result<UnsignedIdToken, TokenError> {
        let now = self.deps.clock.now();
        let alg = issue
            .client
            .id_token_signed_response_alg
            .as_deref()
            .and_then(SigningAlg::parse)
            .unwrap_or(SigningAlg::RS256);
        // Fail now, before anything is written, if there is no key for the algorithm.
        self.keys
            .current()
            .signer(alg)
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        let mut claims = Map::new();
        if let Value::Object(extra) = &issue.claims.id_token {
            for (k, v) in extra {
                if !RESERVED_ID_TOKEN_CLAIMS.contains(&k.as_str()) {
                    claims.insert(k.clone(), v.clone());
                }
            }
        }
        let c = issue.claims;
        claims.insert("iss".into(), self.settings.issuer.clone().into());
        claims.insert("sub".into(), issue.subject.into());
        claims.insert("aud".into(), issue.client.id.clone().into());
        claims.insert("azp".into(), issue.client.id.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.settings.id_token_ttl).into());
        claims.insert("jti".into(), self.deps.entropy.uuid().to_string().into());
        claims.insert("auth_time".into(), c.auth_time.into());
        claims.insert("at_hash".into(), at_hash(alg, access_token).into());
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        if let Some(acr) = &c.acr {
            claims.insert("acr".into(), acr.clone().into());
        }
        if !c.amr.is_empty() {
            claims.insert("amr".into(), c.amr.clone().into());
        }
        if let Some(sid) = &c.sid {
            claims.insert("sid".into(), sid.clone().into());
        }
        Ok(UnsignedIdToken {
            alg: alg.as_str().to_owned(),
            claims: Value::Object(claims),
        })
    }

    /// Signs an ID token with the active key for its algorithm.
    pub(crate) fn sign_id_token(&self, token: &UnsignedIdToken) -> Result<String, TokenError> {
        let alg = SigningAlg::parse(&token.alg)
            .ok_or_else(|| TokenError::Internal(format!("unknown algorithm {}", token.alg)))?;
        let ring = self.keys.current();
        let key = ring
            .signer(alg)
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        Ok(key.sign_jwt("JWT", &token.claims))
    }
}

/// An ID token's claims and algorithm, not yet signed. A grant's transaction builds it and the
/// token endpoint signs it after the commit: an RSA signature takes longer than the rest of a
/// refresh, and SQLite's one writer (PostgreSQL's row locks) would be held for it. It is also
/// what a refresh stores, sealed, for the retry of the same refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UnsignedIdToken {
    alg: String,
    claims: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OIDC Core §A.3 example (RS256): access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            at_hash(
                SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn jwt_keys_are_ordered_by_the_time_in_their_jti() {
        use crate::entropy::{EntropyExt as _, SeededEntropy};
        let e = SeededEntropy::new(1);
        let millis = 1_767_225_600_123;
        let jti = e.uuid_v7(millis).to_string();
        let key = jwt_hash(&jti);
        assert_eq!(key.as_str(), format!("019b76daa87b{}", lookup_hash(&jti)));
        let later = e.uuid_v7(millis + 1).to_string();
        assert!(key.as_str() < jwt_hash(&later).as_str());
        // A random `jti` (JWTs minted before ordered keys) keeps its plain hash.
        let v4 = e.uuid().to_string();
        assert_eq!(jwt_hash(&v4).as_str(), lookup_hash(&v4));
    }

    #[test]
    fn ext_carries_session_claims_and_accounts() {
        let claims = TokenClaims {
            access_token: serde_json::json!({"tier": "gold"}),
            accounts: vec!["acme".into()],
            ..TokenClaims::default()
        };
        assert_eq!(
            ext_claims(&claims),
            serde_json::json!({"tier": "gold", "accounts": ["acme"]})
        );
        assert_eq!(ext_claims(&TokenClaims::default()), Value::Null);
    }
}
