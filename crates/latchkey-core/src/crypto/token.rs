//! Opaque tokens: `lk_<kind>_` + base64url(32 random bytes) + `.` + base64url(128-bit MAC).
//!
//! The MAC, keyed by the system secret, is checked before any database read, so a forged or
//! mangled token costs no query. Only the [`TokenHash`] is stored: a leaked database holds no
//! usable token.

use super::{SystemSecrets, b64, sha256, unb64};
use crate::entropy::{Entropy, EntropyExt as _};

const RANDOM_LEN: usize = 32;
const TAG_LEN: usize = 16;
const RANDOM_B64_LEN: usize = 43;
const TAG_B64_LEN: usize = 22;

/// What an opaque token is for. The kind is part of the MAC, so a token of one kind is never
/// accepted as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    AccessToken,
    RefreshToken,
    AuthorizationCode,
    DeviceCode,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::AccessToken => "lk_at_",
            Self::RefreshToken => "lk_rt_",
            Self::AuthorizationCode => "lk_ac_",
            Self::DeviceCode => "lk_dc_",
        }
    }

    /// The kind a token string claims by its prefix, if any.
    pub fn of(token: &str) -> Option<Self> {
        [
            Self::AccessToken,
            Self::RefreshToken,
            Self::AuthorizationCode,
            Self::DeviceCode,
        ]
        .into_iter()
        .find(|k| token.starts_with(k.prefix()))
    }
}

/// The storage key of a token: base64url(SHA-256(its random part)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A freshly minted token: the value for the client, the hash for storage.
pub struct OpaqueToken {
    pub value: String,
    pub hash: TokenHash,
}

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpaqueToken")
            .field("value", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not of the expected kind")]
    WrongKind,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's MAC does not verify")]
    BadMac,
}

fn mac_input(kind: TokenKind, random: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(kind.prefix().len() + random.len());
    m.extend_from_slice(kind.prefix().as_bytes());
    m.extend_from_slice(random);
    m
}

impl OpaqueToken {
    /// Mints a new token of `kind`.
    pub fn mint(kind: TokenKind, entropy: &dyn Entropy, secrets: &SystemSecrets) -> Self {
        let random: [u8; RANDOM_LEN] = entropy.array();
        let tag = secrets.mac(&mac_input(kind, &random));
        let mut value =
            String::with_capacity(kind.prefix().len() + RANDOM_B64_LEN + 1 + TAG_B64_LEN);
        value.push_str(kind.prefix());
        value.push_str(&b64(&random));
        value.push('.');
        value.push_str(&b64(&tag[..TAG_LEN]));
        Self {
            value,
            hash: TokenHash(b64(&sha256(&random))),
        }
    }

    /// Checks a presented token's shape and MAC and returns its storage key. Costs no I/O.
    pub fn verify(
        kind: TokenKind,
        token: &str,
        secrets: &SystemSecrets,
    ) -> Result<TokenHash, TokenError> {
        let rest = token
            .strip_prefix(kind.prefix())
            .ok_or(TokenError::WrongKind)?;
        // ASCII only: the split below is by bytes, and must not fall inside a character.
        if rest.len() != RANDOM_B64_LEN + 1 + TAG_B64_LEN || !rest.is_ascii() {
            return Err(TokenError::Malformed);
        }
        let (random_b64, tag_b64) = rest.split_at(RANDOM_B64_LEN);
        let tag_b64 = tag_b64.strip_prefix('.').ok_or(TokenError::Malformed)?;
        let random = unb64(random_b64)
            .filter(|r| r.len() == RANDOM_LEN)
            .ok_or(TokenError::Malformed)?;
        let tag = unb64(tag_b64)
            .filter(|t| t.len() == TAG_LEN)
            .ok_or(TokenError::Malformed)?;
        if !secrets.verify_mac(&mac_input(kind, &random), &tag) {
            return Err(TokenError::BadMac);
        }
        Ok(TokenHash(b64(&sha256(&random))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    fn secrets() -> SystemSecrets {
        SystemSecrets::new(&["a-system-secret-that-is-long-enough!!"])
    }

    #[test]
    fn minted_tokens_verify_to_their_hash() {
        let (e, s) = (SeededEntropy::new(3), secrets());
        let t = OpaqueToken::mint(TokenKind::AccessToken, &e, &s);
        assert!(t.value.starts_with("lk_at_"));
        assert_eq!(t.value.len(), 6 + 43 + 1 + 22);
        assert_eq!(
            OpaqueToken::verify(TokenKind::AccessToken, &t.value, &s),
            Ok(t.hash.clone())
        );
        assert!(!format!("{t:?}").contains(&t.value));
    }

    #[test]
    fn forged_truncated_and_cross_kind_tokens_fail() {
        let (e, s) = (SeededEntropy::new(4), secrets());
        let t = OpaqueToken::mint(TokenKind::RefreshToken, &e, &s);
        assert_eq!(
            OpaqueToken::verify(TokenKind::AccessToken, &t.value, &s),
            Err(TokenError::WrongKind)
        );
        let truncated = &t.value[..t.value.len() - 1];
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, truncated, &s),
            Err(TokenError::Malformed)
        );
        // Flip one character of the random part: the MAC no longer matches.
        let mut forged = t.value.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, &forged, &s),
            Err(TokenError::BadMac)
        );
        // Relabelling a refresh token as an access token breaks the MAC too.
        let relabelled = t.value.replacen("lk_rt_", "lk_at_", 1);
        assert_eq!(
            OpaqueToken::verify(TokenKind::AccessToken, &relabelled, &s),
            Err(TokenError::BadMac)
        );
        // Found by fuzzing: a multi-byte character across the split point used to panic.
        let wide = format!("lk_rt_{}é{}", "A".repeat(42), "B".repeat(22));
        assert_eq!(wide.len(), 6 + 43 + 1 + 22);
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, &wide, &s),
            Err(TokenError::Malformed)
        );
        let other = SystemSecrets::new(&["another-system-secret-long-enough!!!"]);
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, &t.value, &other),
            Err(TokenError::BadMac)
        );
    }
}
