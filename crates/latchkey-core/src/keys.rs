//! Signing keys: generated on first start, private parts encrypted at rest with the system secret,
//! published at the JWKS endpoint until every token they signed has expired, rotated with overlap.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use latchkey_types::jwk::{JwkSet, PublicJwk};
use serde::Serialize;

use crate::audit::{Actor, AuditEntry};
use crate::clock::UnixTime;
use crate::crypto::{b64, sha256};
use crate::deps::Deps;
use crate::entropy::EntropyExt as _;
use crate::store::StoreError;

/// A JWS algorithm Latchkey signs with (by its JOSE name in configuration files).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [Self; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Whether a key signs new tokens or only verifies old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// A signing key as stored: the private key sealed with the system secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// PKCS#8 DER of the private key, sealed (see `SystemSecrets::seal`) with the kid as AAD.
    pub private_key: String,
    pub state: KeyState,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    /// When the key leaves the JWKS (set when it is retired).
    pub expires_at: Option<UnixTime>,
}

enum Pair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A key ready to sign.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pair: Pair,
    rng: aws_lc_rs::rand::SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key cannot be generated")]
    Generate,
    #[error(
        "the stored key {0} cannot be decrypted or parsed (is the system secret the one it was made with?)"
    )]
    Unreadable(String),
    #[error("no active {0} key")]
    NoActiveKey(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SigningKey {
    /// Generates a key; returns it and its PKCS#8 DER.
    pub fn generate(alg: SigningAlg, kid: String) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = match alg {
            SigningAlg::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Generate)?;
                aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                    .map_err(|_| KeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
        };
        let key =
            Self::from_pkcs8(alg, kid.clone(), &der).map_err(|_| KeyError::Unreadable(kid))?;
        Ok((key, der))
    }

    pub fn from_pkcs8(alg: SigningAlg, kid: String, der: &[u8]) -> Result<Self, KeyError> {
        let bad = || KeyError::Unreadable(kid.clone());
        let pair = match alg {
            SigningAlg::RS256 => {
                Pair::Rsa(aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(|_| bad())?)
            }
            SigningAlg::ES256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| bad())?,
            ),
            SigningAlg::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(|_| bad())?),
        };
        Ok(Self {
            kid,
            alg,
            pair,
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }

    /// The JWS signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .expect("RSA signing with a valid key");
                sig
            }
            Pair::Ec(p) => p
                .sign(&self.rng, message)
                .expect("ECDSA signing with a valid key")
                .as_ref()
                .to_vec(),
            Pair::Ed(p) => p.sign(message).as_ref().to_vec(),
        }
    }

    /// The public half as a JWK.
    pub fn public_jwk(&self) -> PublicJwk {
        let mut jwk = PublicJwk {
            kty: String::new(),
            use_: Some("sig".into()),
            alg: self.alg.as_str().into(),
            kid: self.kid.clone(),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
        };
        match &self.pair {
            Pair::Rsa(p) => {
                let public = p.public_key();
                jwk.kty = "RSA".into();
                jwk.n = Some(b64(public.modulus().big_endian_without_leading_zero()));
                jwk.e = Some(b64(public.exponent().big_endian_without_leading_zero()));
            }
            Pair::Ec(p) => {
                // Uncompressed point: 0x04 || X (32) || Y (32).
                let point = p.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(b64(&point[1..33]));
                jwk.y = Some(b64(&point[33..65]));
            }
            Pair::Ed(p) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(b64(p.public_key().as_ref()));
            }
        }
        jwk
    }

    /// Signs `claims` as a compact JWS with the given `typ` header.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> String {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            kid: &'a str,
            typ: &'a str,
        }
        let header = serde_json::to_vec(&Header {
            alg: self.alg.as_str(),
            kid: &self.kid,
            typ,
        })
        .expect("header serializes");
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let mut jws = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
        jws.push_str(&b64(&header));
        jws.push('.');
        jws.push_str(&b64(&payload));
        let signature = self.sign(jws.as_bytes());
        jws.push('.');
        jws.push_str(&b64(&signature));
        jws
    }
}

/// Which algorithms always have an active key: RS256 (required by OIDC for ID tokens) and ES256
/// (the default for JWT access tokens).
pub const REQUIRED_ALGS: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];

/// A snapshot of the keys: the active key of each algorithm, the published key set, and a
/// verifier for every published key.
#[derive(Default)]
pub struct KeyRing {
    active: HashMap<SigningAlg, Arc<SigningKey>>,
    jwks: JwkSet,
    verifiers: HashMap<String, (jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

fn jwt_alg(alg: SigningAlg) -> jsonwebtoken::Algorithm {
    match alg {
        SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
        SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
        SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
    }
}

impl KeyRing {
    /// The key that signs with `alg`.
    pub fn signer(&self, alg: SigningAlg) -> Result<&Arc<SigningKey>, KeyError> {
        self.active
            .get(&alg)
            .ok_or(KeyError::NoActiveKey(alg.as_str()))
    }

    /// The public keys to publish: active and retired, until they expire.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Verifies a JWT this server signed (any published key) with the `typ` header expected, and
    /// returns its claims when it has not expired at `now`. Audience is left to the caller.
    pub fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        now: UnixTime,
    ) -> Option<T> {
        let claims = self.verify_signature(token, typ)?;
        if claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .is_none_or(|exp| exp <= now)
        {
            return None;
        }
        serde_json::from_value(claims).ok()
    }

    /// The claims of a JWT this server signed (any published key) with the `typ` header
    /// expected and an `iss`, whether or not it has expired: what an `id_token_hint` is checked
    /// with (OIDC RP-Initiated Logout accepts an expired ID token as a hint).
    pub fn verify_signature(&self, token: &str, typ: &str) -> Option<serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return None;
        }
        let (key, alg) = self.verifiers.get(header.kid.as_deref()?)?;
        if header.alg != *alg {
            return None;
        }
        // Expiry is checked against the engine's clock, not the library's.
        let mut validation = jsonwebtoken::Validation::new(*alg);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["iss"]);
        jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// Adds a key: published and verifying, and signing when it is the first active key of its
    /// algorithm (keys are added newest first).
    pub fn add(&mut self, key: SigningKey, state: KeyState) -> Result<(), KeyError> {
        let public = key.public_jwk();
        let decoding = serde_json::to_value(&public)
            .ok()
            .and_then(|v| serde_json::from_value::<jsonwebtoken::jwk::Jwk>(v).ok())
            .and_then(|jwk| jsonwebtoken::DecodingKey::from_jwk(&jwk).ok())
            .ok_or_else(|| KeyError::Unreadable(key.kid.clone()))?;
        self.verifiers
            .insert(key.kid.clone(), (decoding, jwt_alg(key.alg)));
        self.jwks.keys.push(public);
        if state == KeyState::Active && !self.active.contains_key(&key.alg) {
            self.active.insert(key.alg, Arc::new(key));
        }
        Ok(())
    }

    /// The algorithms that have an active key, in a stable order.
    pub fn algorithms(&self) -> Vec<SigningAlg> {
        let mut algs: Vec<_> = self.active.keys().copied().collect();
        algs.sort();
        algs
    }
}

/// The live key ring, swapped when keys change.
#[derive(Debug, Default)]
pub struct Keys(RwLock<Arc<KeyRing>>);

impl Keys {
    pub fn current(&self) -> Arc<KeyRing> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, ring: KeyRing) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ring);
    }
}

/// A key as listed to an operator.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: &'static str,
    pub state: &'static str,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    pub expires_at: Option<UnixTime>,
}

fn aad(kid: &str) -> Vec<u8> {
    format!("latchkey signing key {kid}").into_bytes()
}

#[derive(Clone, Debug)]
pub struct KeyService {
    deps: Deps,
    keys: Arc<Keys>,
    /// The algorithms that always have an active key: [`REQUIRED_ALGS`] and what the
    /// configuration signs with.
    required: Vec<SigningAlg>,
}

impl KeyService {
    pub fn new(deps: Deps, keys: Arc<Keys>) -> Self {
        Self {
            deps,
            keys,
            required: REQUIRED_ALGS.to_vec(),
        }
    }

    /// Also keeps an active key of `alg` (the JWT access tokens' algorithm, when it is not one
    /// of [`REQUIRED_ALGS`]).
    #[must_use]
    pub fn requiring(mut self, alg: SigningAlg) -> Self {
        if !self.required.contains(&alg) {
            self.required.push(alg);
        }
        self
    }

    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }

    fn new_kid(&self, alg: SigningAlg) -> String {
        // Short, unique and not guessable ahead of time.
        let id = b64(&sha256(&self.deps.entropy.array::<16>())[..12]);
        format!("{}-{id}", alg.as_str().to_ascii_lowercase())
    }

    async fn insert_new(
        &self,
        alg: SigningAlg,
        tx: &mut dyn crate::store::Tx,
    ) -> Result<String, KeyError> {
        let kid = self.new_kid(alg);
        let (_, der) = SigningKey::generate(alg, kid.clone())?;
        let stored = StoredSigningKey {
            kid: kid.clone(),
            alg,
            private_key: self
                .deps
                .secrets
                .seal(self.deps.entropy.as_ref(), &aad(&kid), &der),
            state: KeyState::Active,
            created_at: self.deps.clock.now(),
            retired_at: None,
            expires_at: None,
        };
        tx.signing_keys().insert(&stored).await?;
        Ok(kid)
    }

    /// Makes sure each required algorithm has an active key, generating what is missing, then
    /// loads the key ring. Returns the kids generated.
    pub async fn ensure(&self) -> Result<Vec<String>, KeyError> {
        let now = self.deps.clock.now();
        let mut tx = self.deps.store.begin().await?;
        let existing = tx.signing_keys().list(now).await?;
        let mut generated = Vec::new();
        for &alg in &self.required {
            if !existing
                .iter()
                .any(|k| k.alg == alg && k.state == KeyState::Active)
            {
                generated.push(self.insert_new(alg, tx.as_mut()).await?);
            }
        }
        tx.commit().await?;
        self.reload().await?;
        Ok(generated)
    }

    /// Reads the keys from storage and swaps the key ring.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let now = self.deps.clock.now();
        let stored = self
            .deps
            .store
            .read()
            .await?
            .signing_keys()
            .list(now)
            .await?;
        let mut ring = KeyRing::default();
        for s in stored {
            let der = self
                .deps
                .secrets
                .open(&aad(&s.kid), &s.private_key)
                .map_err(|_| KeyError::Unreadable(s.kid.clone()))?;
            let key = SigningKey::from_pkcs8(s.alg, s.kid.clone(), &der)?;
            ring.add(key, s.state)?;
        }
        self.keys.replace(ring);
        Ok(())
    }

    /// Adds a new active key for each given algorithm (all active ones when empty) and retires
    /// the old ones, which stay published for `overlap` seconds so that tokens they signed still
    /// verify.
    pub async fn rotate(
        &self,
        algs: &[SigningAlg],
        overlap: i64,
        actor: &Actor,
    ) -> Result<Vec<String>, KeyError> {
        let now = self.deps.clock.now();
        let mut tx = self.deps.store.begin().await?;
        let existing = tx.signing_keys().list(now).await?;
        let algs: Vec<SigningAlg> = if algs.is_empty() {
            let mut a: Vec<_> = existing
                .iter()
                .filter(|k| k.state == KeyState::Active)
                .map(|k| k.alg)
                .collect();
            a.extend(&self.required);
            a.sort();
            a.dedup();
            a
        } else {
            algs.to_vec()
        };
        let mut new = Vec::new();
        for alg in algs {
            for old in existing
                .iter()
                .filter(|k| k.alg == alg && k.state == KeyState::Active)
            {
                tx.signing_keys()
                    .retire(&old.kid, now, now + overlap)
                    .await?;
            }
            let kid = self.insert_new(alg, tx.as_mut()).await?;
            tx.audit()
                .append(&AuditEntry {
                    id: self.deps.entropy.uuid().to_string(),
                    occurred_at: now,
                    actor: actor.clone(),
                    account_id: None,
                    action: "key.rotate".into(),
                    target_kind: "key".into(),
                    target_id: kid.clone(),
                    details: serde_json::json!({ "alg": alg.as_str() }),
                })
                .await?;
            new.push(kid);
        }
        tx.signing_keys().delete_expired(now).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(new)
    }

    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let now = self.deps.clock.now();
        let stored = self
            .deps
            .store
            .read()
            .await?
            .signing_keys()
            .list(now)
            .await?;
        Ok(stored
            .into_iter()
            .map(|s| KeyInfo {
                kid: s.kid,
                alg: s.alg.as_str(),
                state: s.state.as_str(),
                created_at: s.created_at,
                retired_at: s.retired_at,
                expires_at: s.expires_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_signs_jwts_that_jsonwebtoken_verifies() {
        for alg in SigningAlg::ALL {
            let (key, der) =
                SigningKey::generate(alg, format!("k-{}", alg.as_str())).expect("generates");
            let again = SigningKey::from_pkcs8(alg, key.kid.clone(), &der).expect("reloads");
            assert_eq!(again.public_jwk(), key.public_jwk());
            let jwt = key.sign_jwt(
                "JWT",
                &serde_json::json!({ "sub": "alice", "exp": 4_000_000_000u64 }),
            );
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(serde_json::to_value(key.public_jwk()).expect("jwk json"))
                    .expect("jwk");
            let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
            let mut v = jsonwebtoken::Validation::new(jwt_alg(alg));
            v.validate_aud = false;
            let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &dk, &v).expect("verifies");
            assert_eq!(data.claims["sub"], "alice");
            assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
        }
    }
}
