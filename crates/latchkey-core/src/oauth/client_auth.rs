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
use crate::secret::{REDACTED, SecretString};
use crate::store::{StoreError, Tx};

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

/// The claims of a client assertion that Latchkey reads.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    #[serde(default)]
    pub jti: Option<String>,
}

/// The credentials a token or revocation request presents, read from the `Authorization` header
/// and the form body, before any lookup. `Debug` shows neither the secret nor the assertion.
pub enum Presented<'p> {
    /// A client id with a secret (`client_secret_basic` or `client_secret_post`) or without one
    /// (`none`, a public client).
    Secret {
        client_id: String,
        method: AuthMethod,
        secret: Option<SecretString>,
    },
    /// A `private_key_jwt` assertion, with the `client_id` of the body if given.
    Assertion {
        assertion: &'p str,
        client_id: Option<&'p str>,
    },
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret {
                client_id,
                method,
                secret,
            } => f
                .debug_struct("Secret")
                .field("client_id", client_id)
                .field("method", method)
                .field("secret", secret)
                .finish(),
            Self::Assertion {
                assertion: _,
                client_id,
            } => f
                .debug_struct("Assertion")
                .field("assertion", &REDACTED)
                .field("client_id", client_id)
                .finish(),
        }
    }
}

impl Presented<'_> {
    /// True when the client tried HTTP Basic (the error then carries a Basic challenge).
    pub fn is_basic(&self) -> bool {
        matches!(
            self,
            Self::Secret {
                method: AuthMethod::ClientSecretBasic,
                ..
            }
        )
    }
}

/// Reads the client's credentials: exactly one method, a Basic client id that agrees with the
/// body's, the jwt-bearer assertion type. Pure: no storage.
pub fn presented_credentials<'p>(
    authorization: Option<&str>,
    params: &'p Params,
) -> Result<Presented<'p>, TokenError> {
    let get = |name| params.get(name).map_err(TokenError::from);
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
        return Err(TokenError::SeveralAuthMethods);
    }
    if let Some((id, secret)) = basic {
        if body_id.is_some_and(|b| b != id) {
            return Err(TokenError::BasicClientIdMismatch);
        }
        return Ok(Presented::Secret {
            client_id: id,
            method: AuthMethod::ClientSecretBasic,
            secret: Some(secret),
        });
    }
    if let Some(secret) = body_secret {
        let id = body_id.ok_or_else(|| invalid_client("client_secret without client_id", false))?;
        return Ok(Presented::Secret {
            client_id: id.to_owned(),
            method: AuthMethod::ClientSecretPost,
            secret: Some(SecretString::new(secret)),
        });
    }
    if let Some(assertion) = assertion {
        if assertion_type != Some(JWT_BEARER) {
            return Err(TokenError::UnsupportedAssertionType);
        }
        return Ok(Presented::Assertion {
            assertion,
            client_id: body_id,
        });
    }
    let id = body_id.ok_or_else(|| invalid_client("no client credentials", false))?;
    Ok(Presented::Secret {
        client_id: id.to_owned(),
        method: AuthMethod::None,
        secret: None,
    })
}

/// Reads a client assertion's header and, unverified, its subject: the client whose keys will
/// verify it. Refuses algorithms that are not allowed and a subject that disagrees with the
/// body's `client_id`.
pub fn assertion_subject(
    assertion: &str,
    body_id: Option<&str>,
) -> Result<(jsonwebtoken::Header, String), TokenError> {
    let bad = |reason| invalid_client(reason, false);
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| bad("malformed client assertion"))?;
    let alg_name = format!("{:?}", header.alg);
    if !CLIENT_ASSERTION_ALGS.contains(&alg_name.as_str()) {
        return Err(bad("client assertion algorithm not allowed"));
    }
    // The client id is the assertion's subject; read it before the signature is checked only
    // to find the client's keys.
    let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion)
        .map_err(|_| bad("malformed client assertion"))?;
    let client_id = unverified.claims.sub;
    if body_id.is_some_and(|b| b != client_id) || client_id.is_empty() || client_id.len() > 255 {
        return Err(bad("client assertion subject does not match client_id"));
    }
    Ok((header, client_id))
}

/// Verifies a client assertion of `client` (found by [`assertion_subject`]): the client may use
/// `private_key_jwt` with this algorithm, one of its keys signs it, it is meant for `audiences`,
/// its `iss` and `sub` are the client, it lives at most an hour from `now` and has a `jti`.
/// Returns the claims; recording the `jti` is the caller's. Pure: no storage, no clock.
pub fn check_assertion(
    assertion: &str,
    header: &jsonwebtoken::Header,
    client: &Client,
    audiences: &[String],
    now: i64,
) -> Result<AssertionClaims, TokenError> {
    let bad = |reason| invalid_client(reason, false);
    let alg_name = format!("{:?}", header.alg);
    if !CLIENT_ASSERTION_ALGS.contains(&alg_name.as_str()) {
        return Err(bad("client assertion algorithm not allowed"));
    }
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
    let client_id = client.id.as_str();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.leeway = 30;
    validation.set_issuer(&[client_id]);
    validation.set_audience(audiences);
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
        if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            verified = Some(data.claims);
            break;
        }
    }
    let claims = verified.ok_or_else(|| bad("client assertion signature or claims invalid"))?;
    if claims.iss != client_id || claims.sub != client_id {
        return Err(bad("client assertion iss and sub must be the client id"));
    }
    if claims.exp > now + MAX_ASSERTION_LIFETIME {
        return Err(bad("client assertion lives too long"));
    }
    if claims
        .jti
        .as_ref()
        .is_none_or(|j| j.is_empty() || j.len() > 256)
    {
        return Err(bad("client assertion has no jti"));
    }
    Ok(claims)
}

/// Checks presented credentials against a client and its secrets, in the order and with the
/// answers of [`Engine::authenticate_client`]. Every secret is checked, so the time taken does
/// not say which one matched. Returns the guard of the decision.
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
        let presented = presented_credentials(authorization, params)?;
        let is_basic = presented.is_basic();
        let (id, method, secret) = match presented {
            Presented::Assertion { .. } => return Ok(None),
            Presented::Secret {
                client_id,
                method,
                secret,
            } => (client_id, method, secret),
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

    /// The client of a request in its transaction: the one authenticated from the cache when its
    /// guard still holds (one read), otherwise — no cached authentication (a client assertion),
    /// or the client changed since it was cached — authenticated in `tx`, as the answer must then
    /// be exact.
    pub(crate) async fn confirm_client(
        &self,
        tx: &mut dyn Tx,
        cached: Option<CachedAuth>,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Arc<Client>, TokenError> {
        if let Some(auth) = cached {
            if tx
                .clients()
                .guard_holds(&auth.guard, self.deps.clock.now())
                .await?
            {
                return Ok(auth.client);
            }
            self.clients.forget(&auth.client.id);
        }
        Ok(Arc::new(
            self.authenticate_client(tx, authorization, params).await?,
        ))
    }

    /// Whether a cached authentication's guard still holds, read outside any transaction: for
    /// requests that write nothing.
    pub(crate) async fn guard_holds_on_reader(
        &self,
        auth: &CachedAuth,
    ) -> Result<bool, StoreError> {
        self.deps
            .store
            .read()
            .await?
            .clients()
            .guard_holds(&auth.guard, self.deps.clock.now())
            .await
    }

    /// Authenticates the client of a token or revocation request.
    pub async fn authenticate_client(
        &self,
        tx: &mut dyn Tx,
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<Client, TokenError> {
        let presented = presented_credentials(authorization, params)?;
        let is_basic = presented.is_basic();
        let (client_id, method, secret) = match presented {
            Presented::Assertion {
                assertion,
                client_id,
            } => return self.verify_assertion(tx, assertion, client_id).await,
            Presented::Secret {
                client_id,
                method,
                secret,
            } => (client_id, method, secret),
        };
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(invalid_client("unknown client", is_basic));
        }
        let client = tx
            .clients()
            .get(&client_id)
            .await?
            .ok_or_else(|| invalid_client("unknown client", is_basic))?;
        if !client.is_active() {
            return Err(invalid_client("client suspended", is_basic));
        }
        if client.token_endpoint_auth_method != method {
            return Err(invalid_client(
                "authentication method not registered for the client",
                is_basic,
            ));
        }
        if let Some(secret) = secret
            && !self.clients.verify_secret(tx, &client.id, &secret).await?
        {
            return Err(invalid_client("wrong client secret", is_basic));
        }
        Ok(client)
    }

    /// The audiences a client assertion may name: the token endpoint and the issuer.
    pub fn assertion_audiences(&self) -> [String; 2] {
        [
            self.settings.url(public::TOKEN),
            self.settings.issuer.clone(),
        ]
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
        let (header, client_id) = assertion_subject(assertion, body_id)?;
        let client = tx
            .clients()
            .get(&client_id)
            .await?
            .ok_or_else(|| bad("unknown client"))?;
        let now = self.deps.clock.now();
        let claims = check_assertion(
            assertion,
            &header,
            &client,
            &self.assertion_audiences(),
            now,
        )?;
        let jti = claims.jti.unwrap_or_default();
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

    #[test]
    fn debug_shows_no_presented_secret_or_assertion() {
        let basic = format!("Basic {}", STANDARD.encode("app:basic-secret"));
        let none = Params::default();
        let post = Params::parse("client_id=app&client_secret=post-secret").expect("parses");
        let jwt = Params::parse(&format!(
            "client_assertion_type={JWT_BEARER}&client_assertion=eyJ.assertion-secret.sig"
        ))
        .expect("parses");
        for (header, params) in [(Some(basic.as_str()), &none), (None, &post), (None, &jwt)] {
            let presented = presented_credentials(header, params).expect("credentials");
            let shown = format!("{presented:?}");
            for secret in ["basic-secret", "post-secret", "assertion-secret"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
    }
}
