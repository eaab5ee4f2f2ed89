//! The system secrets and the keys derived from them.

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};

use super::{b64, unb64};
use crate::entropy::{Entropy, EntropyExt as _};
use crate::secret::ct_eq;

/// The keys derived from one system secret.
struct DerivedKeys {
    mac: hmac::Key,
    aead: LessSafeKey,
}

/// The configured system secrets, as keys. The first secret signs and encrypts; every secret
/// verifies and decrypts, so a secret can be rotated by putting a new one first.
pub struct SystemSecrets {
    keys: Vec<DerivedKeys>,
}

impl std::fmt::Debug for SystemSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SystemSecrets({} key(s), redacted)", self.keys.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("no system secret opens the sealed value")]
    NoKey,
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(prk: &hkdf::Prk, info: &'static [u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    prk.expand(&[info], Len(32))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF-SHA256 expands 32 bytes");
    out
}

const SEAL_VERSION: u8 = 1;

impl SystemSecrets {
    /// Derives the keys of each secret with HKDF-SHA256, one key per purpose.
    ///
    /// # Panics
    /// When `secrets` is empty: the caller always has at least the generated secret.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Self {
        assert!(
            !secrets.is_empty(),
            "at least one system secret is required"
        );
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey system secret v1");
        let keys = secrets
            .iter()
            .map(|s| {
                let prk = salt.extract(s.as_ref());
                let mac = hmac::Key::new(hmac::HMAC_SHA256, &derive(&prk, b"token mac"));
                let aead_key = UnboundKey::new(&AES_256_GCM_SIV, &derive(&prk, b"aead"))
                    .expect("32-byte AES-256-GCM-SIV key");
                DerivedKeys {
                    mac,
                    aead: LessSafeKey::new(aead_key),
                }
            })
            .collect();
        Self { keys }
    }

    /// HMAC-SHA256 of `message` under the current secret.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.keys[0].mac, message);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// True when the first `tag.len()` bytes of the HMAC of `message` under any secret equal
    /// `tag`, compared in constant time.
    pub fn verify_mac(&self, message: &[u8], tag: &[u8]) -> bool {
        if tag.is_empty() || tag.len() > 32 {
            return false;
        }
        let mut ok = false;
        for k in &self.keys {
            let full = hmac::sign(&k.mac, message);
            ok |= ct_eq(&full.as_ref()[..tag.len()], tag);
        }
        ok
    }

    /// Encrypts `plaintext` under the current secret, bound to `aad` (what the value is for, so
    /// that a value sealed for one purpose cannot be opened for another). The result is
    /// base64url text.
    pub fn seal(&self, entropy: &dyn Entropy, aad: &[u8], plaintext: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = entropy.array();
        let mut buf = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        buf.push(SEAL_VERSION);
        buf.extend_from_slice(&nonce_bytes);
        let mut body = plaintext.to_vec();
        self.keys[0]
            .aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut body,
            )
            .expect("AES-GCM-SIV seals any length we use");
        buf.extend_from_slice(&body);
        b64(&buf)
    }

    /// Decrypts a value made by [`Self::seal`] with the same `aad`, trying every secret.
    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
        let raw = unb64(sealed).ok_or(SealError::Malformed)?;
        if raw.len() < 1 + NONCE_LEN + 16 || raw[0] != SEAL_VERSION {
            return Err(SealError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&raw[1..=NONCE_LEN]);
        for k in &self.keys {
            let mut body = raw[1 + NONCE_LEN..].to_vec();
            if let Ok(plain) = k.aead.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            ) {
                let n = plain.len();
                body.truncate(n);
                return Ok(body);
            }
        }
        Err(SealError::NoKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    const A: &str = "first-secret-first-secret-first-secret";
    const B: &str = "second-secret-second-secret-second-secret";

    #[test]
    fn seal_and_open_round_trip_and_bind_aad() {
        let e = SeededEntropy::new(1);
        let s = SystemSecrets::new(&[A]);
        let sealed = s.seal(&e, b"purpose", b"hello");
        assert_eq!(s.open(b"purpose", &sealed).expect("opens"), b"hello");
        assert_eq!(s.open(b"other", &sealed), Err(SealError::NoKey));
        assert_eq!(s.open(b"purpose", "x"), Err(SealError::Malformed));
    }

    #[test]
    fn rotated_secrets_still_open_and_verify() {
        let e = SeededEntropy::new(2);
        let old = SystemSecrets::new(&[A]);
        let sealed = old.seal(&e, b"p", b"data");
        let tag = old.mac(b"m");
        let rotated = SystemSecrets::new(&[B, A]);
        assert_eq!(
            rotated.open(b"p", &sealed).expect("old secret opens"),
            b"data"
        );
        assert!(rotated.verify_mac(b"m", &tag[..16]));
        let fresh = SystemSecrets::new(&[B]);
        assert!(fresh.open(b"p", &sealed).is_err());
        assert!(!fresh.verify_mac(b"m", &tag[..16]));
    }
}
