//! Client authentication at the token and revocation endpoints: `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` (RFC 7523, keys from the client's `jwks`) and `none`
//! for public clients. A client must use the method it registered.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey_types::routes::public;
use serde::Deserialize;

use std::sync::Arc;

use super::Engine;
use super::error::TokenError;
use super::params::Params;
use crate::client::cache::{CachedClient, ClientGuard};
use crate::client::{
    AuthMethod, CLIENT_ASSERTION_ALGS, Client, ClientSecretRecord, verify_client_secret,
};
use crate::clock::UnixTime;
use crate::crypto::lookup_hash;
use crate::secret::SecretString;
use crate::store::Tx;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest a client assertion may live, which bounds how long its `jti` is kept.
const MAX_ASSERTION_LIFETIME: i64 = 3600;

fn invalid_client(reason: &'static str, basic: bool) -> TokenError {
    TokenError::InvalidClient { reason, basic }
}

/// Decodes `Authorization: Basic` (RFC 6749 §2.3.1: both parts are form-urlencoded).
fn parse_basic(header: &str) -> Option<(String, SecretString)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(value.trim()).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let decode = |s: &str| -> Option<String> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, SecretString::new(decode(secret)?)))
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
}

/// The credentials a request presents, before any lookup.
enum Credentials<'p> {
    /// `client_secret_basic` or `client_secret_post`.
    Secret {
        id: String,
        method: AuthMethod,
        secret: SecretString,
    },
    /// A `private_key_jwt` assertion.
    Assertion {
        assertion: &'p str,
        body_id: Option<&'p str>,
    },
    /// A public client: `client_id` only.
    Public { id: String },
}

/// Reads the client's credentials from the request: exactly one method, well formed. Returns
/// them and whether they came in a Basic header (which decides the shape of a refusal).
fn credentials<'p>(
    authorization: Option<&str>,
    params: &'p Params,
) -> Result<(Credentials<'p>, bool), TokenError> {
    let get = |name| {
        params
            .get(name)
            .map_err(|e| TokenError::InvalidRequest(e.to_string()))
    };
    let basic = match authorization {
        None => None,
        Some(h) => Some(
            parse_basic(h).ok_or_else(|| invalid_client("malformed Basic credentials", true))?,
        ),
    };
    let body_id = get("client_id")?;
    let body_secret = get("client_secret")?;
    let assertion_type = get("client_assertion_type")?;
    let assertion = get("client_assertion")?;
    let methods = usize::from(basic.is_some())
        + usize::from(body_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(TokenError::invalid_request(
            "The client used more than one authentication method.",
        ));
    }
    let is_basic = basic.is_some();
    let creds = if let Some((id, secret)) = basic {
        if body_id.is_some_and(|b| b != id) {
            return Err(TokenError::invalid_request(
                "client_id does not match the Basic credentials.",
            ));
        }
        Credentials::Secret {
            id,
            method: AuthMethod::ClientSecretBasic,
            secret,
        }
    } else if let Some(secret) = body_secret {
        let id = body_id.ok_or_else(|| invalid_client("client_secret without client_id", false))?;
        Credentials::Secret {
            id: id.to_owned(),
            method: AuthMethod::ClientSecretPost,
            secret: SecretString::new(secret),
        }
    } else if let Some(assertion) = assertion {
        if assertion_type != Some(JWT_BEARER) {
            return Err(TokenError::invalid_request(
                "client_assertion_type must be jwt-bearer.",
            ));
        }
        Credentials::Assertion { assertion, body_id }
    } else {
        let id = body_id.ok_or_else(|| invalid_client("no client credentials", false))?;
        Credentials::Public { id: id.to_owned() }
    };
    Ok((creds, is_basic))
}

/// Checks presented credentials against a client and its secrets. Every secret is checked, so
/// the time taken does not say which one matched. Returns the guard of the decision.
fn check_client(
    client: &Client,
    secrets: &[ClientSecretRecord],
    method: AuthMethod,
    secret: Option<&SecretString>,
    now: UnixTime,
    is_basic: bool,
) -> Result<ClientGuard, TokenError> {
    if !client.is_active() {
        return Err(invalid_client("client suspended", is_basic));
    }
    if client.token_endpoint_auth_method != method {
        return Err(invalid_client(
            "authentication method not registered for the client",
            is_basic,
        ));
    }
    let mut secret_id = None;
    if let Some(secret) = secret {
        for r in secrets {
            let live = r.expires_at.is_none_or(|t| t > now);
            if verify_client_secret(secret.expose(), &r.secret_hash) && live {
                secret_id = Some(r.id.clone());
            }
        }
        if secret_id.is_none() {
            return Err(invalid_client("wrong client secret", is_basic));
        }
    }
    Ok(ClientGuard {
        client_id: client.id.clone(),
        updated_at: client.updated_at,
        secret_id,
    })
}

/// A client authenticated against the cache. Anything written for it must be conditional on
/// its guard (see [`crate::client::cache`]).
pub(crate) struct CachedAuth {
    pub client: Arc<Client>,
    pub guard: ClientGuard,
}

impl Engine {
    /// Authenticates the client from the in-process cache, reading it (from a reader, never the
    /// writer) when it is missing, stale, or does not know the presented secret. `Ok(None)` for
    /// client assertions: their `jti` must be recorded in the request's transaction, so they go
    /// through [`Engine::authenticate_client`]. A refusal is always decided on a fresh read.
    pub(crate) async fn authenticate_cached(
        &self,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Option<CachedAuth>, TokenError> {
        let (creds, is_basic) = credentials(authorization, params)?;
        let (id, method, secret) = match creds {
            Credentials::Assertion { .. } => return Ok(None),
            Credentials::Secret { id, method, secret } => (id, method, Some(secret)),
            Credentials::Public { id } => (id, AuthMethod::None, None),
        };
        if id.is_empty() || id.len() > 255 {
            return Err(invalid_client("unknown client", is_basic));
        }
        let now = self.deps.clock.now();
        let cache = &self.clients.cache;
        if let Some(entry) = cache.get(&id, now)
            && let Ok(guard) = check_client(
                &entry.client,
                &entry.secrets,
                method,
                secret.as_ref(),
                now,
                is_basic,
            )
        {
            return Ok(Some(CachedAuth {
                client: entry.client.clone(),
                guard,
            }));
        }
        let mut reader = self.deps.store.read().await?;
        let client = reader
            .clients()
            .get(&id)
            .await?
            .ok_or_else(|| invalid_client("unknown client", is_basic))?;
        let secrets = if client.token_endpoint_auth_method.uses_secret() {
            reader.clients().secrets(&id).await?
        } else {
            Vec::new()
        };
        drop(reader);
        let entry = Arc::new(CachedClient {
            client: Arc::new(client),
            secrets,
            loaded_at: now,
        });
        cache.put(entry.clone());
        let guard = check_client(
            &entry.client,
            &entry.secrets,
            method,
            secret.as_ref(),
            now,
            is_basic,
        )?;
        Ok(Some(CachedAuth {
            client: entry.client.clone(),
            guard,
        }))
    }

    /// Authenticates the client of a token or revocation request inside its transaction.
    pub async fn authenticate_client(
        &self,
        tx: &mut dyn Tx,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Client, TokenError> {
        let (creds, is_basic) = credentials(authorization, params)?;
        let (client_id, method, secret) = match creds {
            Credentials::Assertion { assertion, body_id } => {
                return self.verify_assertion(tx, assertion, body_id).await;
            }
            Credentials::Secret { id, method, secret } => (id, method, Some(secret)),
            Credentials::Public { id } => (id, AuthMethod::None, None),
        };
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(invalid_client("unknown client", is_basic));
        }
        let client = tx
            .clients()
            .get(&client_id)
            .await?
            .ok_or_else(|| invalid_client("unknown client", is_basic))?;
        let secrets = if secret.is_some() && client.is_active() {
            tx.clients().secrets(&client.id).await?
        } else {
            Vec::new()
        };
        let now = self.deps.clock.now();
        check_client(&client, &secrets, method, secret.as_ref(), now, is_basic)?;
        Ok(client)
    }

    /// Verifies a `private_key_jwt` assertion against the client's registered keys, and that its
    /// `jti` was never seen before.
    async fn verify_assertion(
        &self,
        tx: &mut dyn Tx,
        assertion: &str,
        body_id: Option<&str>,
    ) -> Result<Client, TokenError> {
        let bad = |reason| invalid_client(reason, false);
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| bad("malformed client assertion"))?;
        let alg_name = format!("{:?}", header.alg);
        if !CLIENT_ASSERTION_ALGS.contains(&alg_name.as_str()) {
            return Err(bad("client assertion algorithm not allowed"));
        }
        // The client id is the assertion's subject; read it before the signature is checked only
        // to find the client's keys.
        let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
            .map_err(|_| bad("malformed client assertion"))?;
        let client_id = unverified.claims.sub.clone();
        if body_id.is_some_and(|b| b != client_id) || client_id.is_empty() || client_id.len() > 255
        {
            return Err(bad("client assertion subject does not match client_id"));
        }
        let client = tx
            .clients()
            .get(&client_id)
            .await?
            .ok_or_else(|| bad("unknown client"))?;
        if !client.is_active() {
            return Err(bad("client suspended"));
        }
        if client.token_endpoint_auth_method != AuthMethod::PrivateKeyJwt {
            return Err(bad("authentication method not registered for the client"));
        }
        if client
            .token_endpoint_auth_signing_alg
            .as_deref()
            .is_some_and(|a| a != alg_name)
        {
            return Err(bad(
                "client assertion algorithm not registered for the client",
            ));
        }
        let jwks: jsonwebtoken::jwk::JwkSet = client
            .jwks
            .clone()
            .and_then(|j| serde_json::from_value(j).ok())
            .ok_or_else(|| bad("client has no usable keys"))?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.leeway = 30;
        validation.set_issuer(&[client_id.as_str()]);
        validation.set_audience(&[
            self.settings.url(public::TOKEN),
            self.settings.issuer.clone(),
        ]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let candidates = jwks
            .keys
            .iter()
            .filter(|k| header.kid.is_none() || k.common.key_id == header.kid);
        let mut verified = None;
        for jwk in candidates {
            let Ok(key) = jsonwebtoken::DecodingKey::from_jwk(jwk) else {
                continue;
            };
            if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
            {
                verified = Some(data.claims);
                break;
            }
        }
        let claims = verified.ok_or_else(|| bad("client assertion signature or claims invalid"))?;
        if claims.iss != client_id || claims.sub != client_id {
            return Err(bad("client assertion iss and sub must be the client id"));
        }
        let now = self.deps.clock.now();
        if claims.exp > now + MAX_ASSERTION_LIFETIME {
            return Err(bad("client assertion lives too long"));
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| bad("client assertion has no jti"))?;
        let jti_hash = lookup_hash(&format!("{client_id}\u{0}{jti}"));
        if !tx
            .client_assertions()
            .record_jti(&jti_hash, &client_id, claims.exp.max(now) + 60)
            .await?
        {
            return Err(bad("client assertion replayed"));
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        let (id, secret) = parse_basic(&header).expect("parses");
        assert_eq!(id, "my client");
        assert_eq!(secret.expose(), "s:cret");
        assert!(parse_basic("Bearer abc").is_none());
        assert!(parse_basic("Basic !!!").is_none());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("no-colon"))).is_none());
    }
}
