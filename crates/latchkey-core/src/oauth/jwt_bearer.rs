//! The JWT bearer authorization grant (RFC 7523 §2.1) and Hydra's trust API for it
//! (`/admin/trust/grants/jwt-bearer/issuers`).
//!
//! A workload holding an assertion signed by an issuer the operator trusts trades it for an
//! access token about the assertion's subject. The client still authenticates (as in Hydra).
//! The assertion is checked for its signature by the trusted key, `iss`, `sub`, `aud` (the token
//! endpoint or the issuer), `exp` within `oauth2.jwt_bearer.max_ttl`, `nbf`, `iat` and a `jti`
//! used once (kept in the database, so replays fail on every replica); the scope is within the
//! trust record's and the client's.

use latchkey_types::Scope;
use latchkey_types::token::TokenResponse;
use latchkey_types::trust::{TrustJwtGrantIssuer, TrustedJwtGrantIssuer, TrustedJwtGrantKey};
use serde::Deserialize;
use serde_json::Value;

use super::Engine;
use super::error::TokenError;
use super::issue::Issue;
use super::params::Params;
use super::records::TokenClaims;
use super::token::{Failure, Issued, get, require};
use crate::client::{CLIENT_ASSERTION_ALGS, Client};
use crate::clock::{UnixTime, rfc3339};
use crate::crypto::lookup_hash;
use crate::store::{StoreError, Tx, unit};

/// The key set name shown for every trust relationship's key, as Hydra names its own.
const KEY_SET: &str = "https://latchkey/trust/jwt-bearer";
/// Leeway for clock skew between the issuer and this server.
const LEEWAY: i64 = 30;

/// A trust relationship, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedIssuer {
    pub id: String,
    pub issuer: String,
    /// The subject it may assert; empty when `allow_any_subject`.
    pub subject: String,
    pub allow_any_subject: bool,
    pub scope: Scope,
    pub key_id: String,
    /// The public JWK.
    pub jwk: Value,
    pub expires_at: UnixTime,
    pub created_at: UnixTime,
}

impl TrustedIssuer {
    pub fn to_wire(&self) -> TrustedJwtGrantIssuer {
        TrustedJwtGrantIssuer {
            id: self.id.clone(),
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
            allow_any_subject: self.allow_any_subject,
            scope: self.scope.to_vec(),
            public_key: TrustedJwtGrantKey {
                set: KEY_SET.into(),
                kid: self.key_id.clone(),
            },
            expires_at: rfc3339(self.expires_at),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// An error of the trust API.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("the trust relationship does not exist")]
    NotFound,
    #[error("the issuer already trusts this key for this subject")]
    Conflict,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for TrustError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => Self::Conflict,
            other => Self::Store(other),
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> TrustError {
    TrustError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// The claims of an assertion that matter here.
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

fn words(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The trust relationship `body` asks for, once every field is valid at `now`.
fn trusted_issuer(
    body: &TrustJwtGrantIssuer,
    id: String,
    now: UnixTime,
) -> Result<TrustedIssuer, TrustError> {
    let issuer = body.issuer.trim();
    if issuer.is_empty() || issuer.len() > 255 || issuer.chars().any(char::is_control) {
        return Err(invalid("issuer", "must be 1 to 255 printable characters"));
    }
    let any = body.allow_any_subject.unwrap_or(false);
    let subject = body.subject.clone().unwrap_or_default();
    match (any, subject.is_empty()) {
        (true, false) => {
            return Err(invalid(
                "subject",
                "give a subject or allow_any_subject, not both",
            ));
        }
        (false, true) => {
            return Err(invalid(
                "subject",
                "give a subject, or set allow_any_subject",
            ));
        }
        _ => {}
    }
    if subject.len() > 255 || subject.chars().any(char::is_control) {
        return Err(invalid(
            "subject",
            "must be at most 255 printable characters",
        ));
    }
    let scope = Scope::from_tokens(&body.scope).map_err(|e| invalid("scope", e.to_string()))?;
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(body.jwk.clone())
        .map_err(|e| invalid("jwk", format!("not a JSON Web Key: {e}")))?;
    if body.jwk.get("d").is_some() || body.jwk.get("k").is_some() {
        return Err(invalid(
            "jwk",
            "must be a public key (no private or symmetric part)",
        ));
    }
    if jsonwebtoken::DecodingKey::from_jwk(&jwk).is_err() {
        return Err(invalid("jwk", "the key cannot verify signatures"));
    }
    let key_id = jwk
        .common
        .key_id
        .clone()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| invalid("jwk", "must have a kid"))?;
    let expires_at = time::OffsetDateTime::parse(
        &body.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| invalid("expires_at", "must be an RFC 3339 time"))?
    .unix_timestamp();
    if expires_at <= now {
        return Err(invalid("expires_at", "must be in the future"));
    }
    Ok(TrustedIssuer {
        id,
        issuer: issuer.to_owned(),
        subject,
        allow_any_subject: any,
        scope,
        key_id,
        jwk: body.jwk.clone(),
        expires_at,
        created_at: now,
    })
}

impl Engine {
    /// `POST /admin/trust/grants/jwt-bearer/issuers`.
    pub async fn trust_jwt_issuer(
        &self,
        body: &TrustJwtGrantIssuer,
    ) -> Result<TrustedJwtGrantIssuer, TrustError> {
        let record = trusted_issuer(body, self.deps.ordered_id(), self.deps.clock.now())?;
        let wire = record.to_wire();
        unit(self.deps.store.as_ref(), move |tx| {
            Box::pin(async move { tx.trusted_issuers().insert(&record).await })
        })
        .await?;
        Ok(wire)
    }

    /// `GET /admin/trust/grants/jwt-bearer/issuers[?issuer=]`.
    pub async fn trusted_jwt_issuers(
        &self,
        issuer: Option<&str>,
    ) -> Result<Vec<TrustedJwtGrantIssuer>, TrustError> {
        let list = self
            .deps
            .store
            .read()
            .await?
            .trusted_issuers()
            .list(issuer)
            .await?;
        Ok(list.iter().map(TrustedIssuer::to_wire).collect())
    }

    /// `GET /admin/trust/grants/jwt-bearer/issuers/{id}`.
    pub async fn trusted_jwt_issuer(&self, id: &str) -> Result<TrustedJwtGrantIssuer, TrustError> {
        self.deps
            .store
            .read()
            .await?
            .trusted_issuers()
            .get(id)
            .await?
            .map(|t| t.to_wire())
            .ok_or(TrustError::NotFound)
    }

    /// `DELETE /admin/trust/grants/jwt-bearer/issuers/{id}`.
    pub async fn delete_trusted_jwt_issuer(&self, id: &str) -> Result<(), TrustError> {
        let id = id.to_owned();
        let deleted = unit(self.deps.store.as_ref(), move |tx| {
            Box::pin(async move { tx.trusted_issuers().delete(&id).await })
        })
        .await?;
        if deleted {
            Ok(())
        } else {
            Err(TrustError::NotFound)
        }
    }

    /// The token endpoint's JWT bearer grant, for an authenticated client allowed it.
    pub(super) async fn jwt_bearer_grant(
        &self,
        tx: &mut dyn Tx,
        client: &Client,
        params: &Params,
    ) -> Result<Issued, Failure> {
        let bad = |reason| TokenError::AssertionInvalid { reason };
        let assertion = require(params, "assertion")?;
        if assertion.len() > 8192 {
            return Err(bad("too long").into());
        }
        // `alg: none` and anything else unsigned or symmetric is refused here.
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| bad("malformed"))?;
        if !CLIENT_ASSERTION_ALGS.contains(&format!("{:?}", header.alg).as_str()) {
            return Err(bad("algorithm not allowed").into());
        }
        let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
            .map_err(|_| bad("malformed"))?
            .claims;
        let now = self.deps.clock.now();
        let candidates = tx
            .trusted_issuers()
            .for_issuer(&unverified.iss)
            .await
            .map_err(TokenError::from)?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.leeway = u64::try_from(LEEWAY).unwrap_or_default();
        validation.validate_nbf = true;
        validation.set_issuer(&[unverified.iss.as_str()]);
        validation.set_audience(&self.assertion_audiences());
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let mut found = None;
        for trust in candidates.iter().filter(|t| {
            t.expires_at > now
                && (t.allow_any_subject || t.subject == unverified.sub)
                && header.kid.as_ref().is_none_or(|k| *k == t.key_id)
        }) {
            let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(trust.jwk.clone())
            else {
                continue;
            };
            let Ok(key) = jsonwebtoken::DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
            {
                found = Some((trust, data.claims));
                break;
            }
        }
        let (trust, claims) = found.ok_or(bad(
            "no trusted issuer's key verifies it for its subject and audience",
        ))?;
        if claims.exp > now + self.settings.jwt_bearer_max_ttl {
            return Err(bad("it lives too long").into());
        }
        match claims.iat {
            None => return Err(bad("it has no iat").into()),
            Some(iat) if iat > now + LEEWAY => return Err(bad("iat is in the future").into()),
            Some(_) => {}
        }
        let jti = claims
            .jti
            .as_deref()
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or(bad("it has no jti"))?;
        let requested = Scope::from_tokens(words(get(params, "scope")?)).map_err(|e| {
            TokenError::ScopeMalformed {
                reason: e.to_string(),
            }
        })?;
        if let Some(s) = requested
            .difference(&trust.scope)
            .chain(requested.difference(&client.scope))
            .next()
        {
            return Err(TokenError::ScopeNotAllowed {
                scope: s.to_owned(),
            }
            .into());
        }
        let audience = words(get(params, "audience")?);
        if let Some(a) = audience.iter().find(|a| !client.audience.contains(a)) {
            return Err(TokenError::AudienceNotAllowed {
                audience: a.clone(),
            }
            .into());
        }
        // Each assertion once, on every replica: the insert of its jti fails on a replay.
        let jti_key = lookup_hash(&format!("jwt-bearer\0{}\0{jti}", claims.iss));
        if !tx
            .client_assertions()
            .record_jti(&jti_key, &client.id, claims.exp + LEEWAY)
            .await
            .map_err(TokenError::from)?
        {
            return Err(TokenError::AssertionReplayed.into());
        }
        let token_claims = TokenClaims {
            auth_time: now,
            ..TokenClaims::default()
        };
        let family_id = self.deps.ordered_id();
        let issue = Issue {
            client,
            subject: &claims.sub,
            scope: &requested,
            audience: &audience,
            claims: &token_claims,
            grant_id: None,
            family_id: &family_id,
        };
        let (token, expires_in, record) = self.access_token(&issue)?;
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
                scope: Some(requested.to_string()).filter(|s| !s.is_empty()),
                issued_token_type: None,
            },
            unsigned_id_token: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(extra: Value) -> TrustJwtGrantIssuer {
        let mut v = json!({
            "issuer": "https://idp.example",
            "subject": "workload-1",
            "scope": ["dns.read"],
            "jwk": {"kty": "EC", "crv": "P-256", "kid": "k1",
                    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            "expires_at": "2100-01-01T00:00:00Z",
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            for (k, val) in e {
                m.insert(k, val);
            }
        }
        serde_json::from_value(v).expect("body")
    }

    #[test]
    fn a_trust_relationship_is_accepted_only_when_valid() {
        let ok = trusted_issuer(&body(json!({})), "id".into(), 1_700_000_000).expect("valid");
        assert_eq!(ok.key_id, "k1");
        assert_eq!(ok.to_wire().public_key.kid, "k1");
        let refused = |extra| trusted_issuer(&body(extra), "id".into(), 1_700_000_000).is_err();
        assert!(refused(json!({"allow_any_subject": true})), "both");
        assert!(refused(json!({"subject": null})), "neither");
        assert!(
            refused(json!({"expires_at": "2000-01-01T00:00:00Z"})),
            "past"
        );
        assert!(refused(json!({"expires_at": "soon"})), "not a time");
        assert!(refused(json!({"issuer": ""})), "no issuer");
        assert!(
            refused(json!({"jwk": {"kty": "oct", "k": "c2VjcmV0", "kid": "s"}})),
            "symmetric"
        );
        assert!(refused(json!({"scope": ["a b"]})), "bad scope");
    }
}
