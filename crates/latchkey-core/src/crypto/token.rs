//! Opaque tokens: `lk_<kind>_` + base64url(mint time ‖ 32 random bytes) + `.` +
//! base64url(128-bit MAC). The mint time is 6 bytes of Unix milliseconds, big-endian.
//!
//! The MAC, keyed by the system secret, is checked before any database read, so a forged or
//! mangled token costs no query. Only the [`TokenHash`] is stored: a leaked database holds no
//! usable token. The hash starts with the mint time, so tokens minted one after another have
//! neighbouring keys: a batch of new tokens dirties one page of the key's index, not one page
//! each.
//!
//! Tokens minted before the mint time was added (`lk_<kind>_` + base64url(32 random bytes) + `.` +
//! MAC) still verify, to the hash they were stored under.

use super::{SystemSecrets, b64, sha256, unb64};
use crate::entropy::{Entropy, EntropyExt as _};

const TIME_LEN: usize = 6;
const RANDOM_LEN: usize = 32;
const BODY_LEN: usize = TIME_LEN + RANDOM_LEN;
const TAG_LEN: usize = 16;
const BODY_B64_LEN: usize = 51;
const LEGACY_BODY_B64_LEN: usize = 43;
const TAG_B64_LEN: usize = 22;
/// The largest mint time the body holds (48 bits of milliseconds: the year 10889).
const MAX_MILLIS: u64 = (1 << (8 * TIME_LEN)) - 1;

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

/// The storage key of a token: the hex of its mint time in milliseconds (12 digits), then
/// base64url(SHA-256(its body)). Keys of tokens minted before the mint time was added have no
/// time, only the digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    /// The key of a value minted at `millis` (Unix milliseconds) whose digest is `digest`.
    pub fn ordered(millis: u64, digest: &str) -> Self {
        Self(format!("{:012x}{digest}", millis.min(MAX_MILLIS)))
    }

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

fn mac_input(kind: TokenKind, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(kind.prefix().len() + body.len());
    m.extend_from_slice(kind.prefix().as_bytes());
    m.extend_from_slice(body);
    m
}

/// A new body: `millis` (clamped to what six bytes hold) big-endian, then 32 random bytes.
fn new_body(millis: i64, entropy: &dyn Entropy) -> [u8; BODY_LEN] {
    let millis = u64::try_from(millis).unwrap_or(0).min(MAX_MILLIS);
    let mut body = [0u8; BODY_LEN];
    body[..TIME_LEN].copy_from_slice(&millis.to_be_bytes()[8 - TIME_LEN..]);
    body[TIME_LEN..].copy_from_slice(&entropy.array::<RANDOM_LEN>());
    body
}

/// The Unix milliseconds of a 48-bit big-endian mint time: the start of an opaque token's body,
/// and of a version 7 UUID.
pub(crate) fn millis_of(time: [u8; TIME_LEN]) -> u64 {
    let mut millis = [0u8; 8];
    millis[8 - TIME_LEN..].copy_from_slice(&time);
    u64::from_be_bytes(millis)
}

/// The mint time a body starts with; `None` for a body minted before the mint time was added.
fn minted_at(body: &[u8]) -> Option<u64> {
    if body.len() != BODY_LEN {
        return None;
    }
    body.first_chunk().copied().map(millis_of)
}

/// The storage key of `digest`, ordered by `minted_at` when there is one.
fn key(minted_at: Option<u64>, digest: String) -> TokenHash {
    match minted_at {
        Some(millis) => TokenHash::ordered(millis, &digest),
        None => TokenHash(digest),
    }
}

/// The storage key of an opaque token's body.
fn body_key(body: &[u8]) -> TokenHash {
    key(minted_at(body), b64(&sha256(body)))
}

/// A freshly minted bearer value that is only ever looked up (a login or consent challenge, a
/// verifier, a session cookie): the value for the browser, the key for storage. `Debug` shows
/// the key only.
pub struct LookupValue {
    pub value: String,
    /// [`lookup_key`] of the value.
    pub key: String,
}

impl std::fmt::Debug for LookupValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupValue")
            .field("value", &"<redacted>")
            .field("key", &self.key)
            .finish()
    }
}

/// Mints a [`LookupValue`] at `millis`: base64url(mint time ‖ 32 random bytes), the same body
/// as an opaque token's, without prefix or MAC.
pub fn mint_lookup_value(millis: i64, entropy: &dyn Entropy) -> LookupValue {
    let body = new_body(millis, entropy);
    let value = b64(&body);
    let key = key(minted_at(&body), super::lookup_hash(&value)).0;
    LookupValue { value, key }
}

/// The storage key of a presented lookup value: [`lookup_hash`](super::lookup_hash) of the
/// value, after the hex of its mint time when it has the shape of one from
/// [`mint_lookup_value`]. Any other value (one minted before, or made up) gets the hash alone,
/// which matches nothing it should not.
pub fn lookup_key(value: &str) -> String {
    let minted = if value.len() == BODY_B64_LEN {
        unb64(value).as_deref().and_then(minted_at)
    } else {
        None
    };
    key(minted, super::lookup_hash(value)).0
}

impl OpaqueToken {
    /// Mints a new token of `kind` at `millis` (Unix milliseconds).
    pub fn mint(
        kind: TokenKind,
        millis: i64,
        entropy: &dyn Entropy,
        secrets: &SystemSecrets,
    ) -> Self {
        let body = new_body(millis, entropy);
        let tag = secrets.mac(&mac_input(kind, &body));
        let mut value = String::with_capacity(kind.prefix().len() + BODY_B64_LEN + 1 + TAG_B64_LEN);
        value.push_str(kind.prefix());
        value.push_str(&b64(&body));
        value.push('.');
        value.push_str(&b64(&tag[..TAG_LEN]));
        Self {
            value,
            hash: body_key(&body),
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
        if !rest.is_ascii() {
            return Err(TokenError::Malformed);
        }
        let (body_b64_len, body_len) = match rest.len().checked_sub(1 + TAG_B64_LEN) {
            Some(BODY_B64_LEN) => (BODY_B64_LEN, BODY_LEN),
            Some(LEGACY_BODY_B64_LEN) => (LEGACY_BODY_B64_LEN, RANDOM_LEN),
            _ => return Err(TokenError::Malformed),
        };
        let (body_b64, tag_b64) = rest.split_at(body_b64_len);
        let tag_b64 = tag_b64.strip_prefix('.').ok_or(TokenError::Malformed)?;
        let body = unb64(body_b64)
            .filter(|b| b.len() == body_len)
            .ok_or(TokenError::Malformed)?;
        let tag = unb64(tag_b64)
            .filter(|t| t.len() == TAG_LEN)
            .ok_or(TokenError::Malformed)?;
        if !secrets.verify_mac(&mac_input(kind, &body), &tag) {
            return Err(TokenError::BadMac);
        }
        Ok(body_key(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;

    fn secrets() -> SystemSecrets {
        SystemSecrets::new(&["a-system-secret-that-is-long-enough!!"])
    }

    const MINTED_AT: i64 = 1_767_225_600_123;

    #[test]
    fn minted_tokens_verify_to_their_hash() {
        let (e, s) = (SeededEntropy::new(3), secrets());
        let t = OpaqueToken::mint(TokenKind::AccessToken, MINTED_AT, &e, &s);
        assert!(t.value.starts_with("lk_at_"));
        assert_eq!(t.value.len(), 6 + 51 + 1 + 22);
        assert_eq!(
            OpaqueToken::verify(TokenKind::AccessToken, &t.value, &s),
            Ok(t.hash.clone())
        );
        assert!(
            t.hash.as_str().starts_with("019b76daa87b"),
            "{}",
            t.hash.as_str()
        );
        assert!(!format!("{t:?}").contains(&t.value));
    }

    #[test]
    fn keys_sort_by_mint_time() {
        let (e, s) = (SeededEntropy::new(5), secrets());
        let keys: Vec<TokenHash> = [0, 1, 999, 1000, 86_400_000, 10_000_000_000]
            .into_iter()
            .map(|d| OpaqueToken::mint(TokenKind::RefreshToken, MINTED_AT + d, &e, &s).hash)
            .collect();
        assert!(keys.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
        // Times before 1970 or past what six bytes hold are clamped, and still verify.
        for millis in [-5, i64::MAX] {
            let t = OpaqueToken::mint(TokenKind::RefreshToken, millis, &e, &s);
            assert_eq!(
                OpaqueToken::verify(TokenKind::RefreshToken, &t.value, &s),
                Ok(t.hash)
            );
        }
        // Two tokens of the same millisecond share the time and differ in the digest.
        let a = OpaqueToken::mint(TokenKind::RefreshToken, MINTED_AT, &e, &s).hash;
        let b = OpaqueToken::mint(TokenKind::RefreshToken, MINTED_AT, &e, &s).hash;
        assert_eq!(a.as_str()[..12], b.as_str()[..12]);
        assert_ne!(a, b);
    }

    #[test]
    fn lookup_values_are_keyed_in_mint_order() {
        let e = SeededEntropy::new(6);
        let minted = mint_lookup_value(MINTED_AT, &e);
        let LookupValue { value, key } = &minted;
        assert!(!format!("{minted:?}").contains(value.as_str()));
        assert!(format!("{minted:?}").contains(key.as_str()));
        assert_eq!(value.len(), 51);
        assert_eq!(&lookup_key(value), key);
        assert_eq!(
            key,
            &format!("019b76daa87b{}", crate::crypto::lookup_hash(value))
        );
        let later = mint_lookup_value(MINTED_AT + 1, &e).key;
        assert!(key < &later);
        // A value minted before (43 characters) or of any other shape: the plain hash.
        for other in ["A".repeat(43), "!".repeat(51), String::new()] {
            assert_eq!(lookup_key(&other), crate::crypto::lookup_hash(&other));
        }
    }

    #[test]
    fn tokens_minted_before_the_mint_time_still_verify_to_their_stored_hash() {
        let s = secrets();
        let random = [7u8; 32];
        let tag = s.mac(&mac_input(TokenKind::AccessToken, &random));
        let legacy = format!("lk_at_{}.{}", b64(&random), b64(&tag[..TAG_LEN]));
        assert_eq!(legacy.len(), 6 + 43 + 1 + 22);
        assert_eq!(
            OpaqueToken::verify(TokenKind::AccessToken, &legacy, &s),
            Ok(TokenHash(b64(&sha256(&random))))
        );
    }

    #[test]
    fn forged_truncated_and_cross_kind_tokens_fail() {
        let (e, s) = (SeededEntropy::new(4), secrets());
        let t = OpaqueToken::mint(TokenKind::RefreshToken, MINTED_AT, &e, &s);
        assert_eq!(
            OpaqueToken::verify(TokenKind::AccessToken, &t.value, &s),
            Err(TokenError::WrongKind)
        );
        let truncated = &t.value[..t.value.len() - 1];
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, truncated, &s),
            Err(TokenError::Malformed)
        );
        // Eight characters short: the legacy length, but not a legacy token.
        let short = format!("{}{}", &t.value[..6 + 43], &t.value[6 + 51..]);
        assert!(OpaqueToken::verify(TokenKind::RefreshToken, &short, &s).is_err());
        // Flip one character of the random part: the MAC no longer matches.
        let mut forged = t.value.clone().into_bytes();
        forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, &forged, &s),
            Err(TokenError::BadMac)
        );
        // So does a change of the mint time: a token cannot be moved in time.
        let mut moved = t.value.clone().into_bytes();
        moved[7] = if moved[7] == b'A' { b'B' } else { b'A' };
        let moved = String::from_utf8(moved).expect("ascii");
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, &moved, &s),
            Err(TokenError::BadMac)
        );
        // Relabelling a refresh token as an access token breaks the MAC too.
        let relabelled = t.value.replacen("lk_rt_", "lk_at_", 1);
        assert_eq!(
            OpaqueToken::verify(TokenKind::AccessToken, &relabelled, &s),
            Err(TokenError::BadMac)
        );
        // Found by fuzzing: a multi-byte character across the split point used to panic.
        for body in [43, 51] {
            let wide = format!("lk_rt_{}é{}", "A".repeat(body - 1), "B".repeat(22));
            assert_eq!(wide.len(), 6 + body + 1 + 22);
            assert_eq!(
                OpaqueToken::verify(TokenKind::RefreshToken, &wide, &s),
                Err(TokenError::Malformed)
            );
        }
        let other = SystemSecrets::new(&["another-system-secret-long-enough!!!"]);
        assert_eq!(
            OpaqueToken::verify(TokenKind::RefreshToken, &t.value, &other),
            Err(TokenError::BadMac)
        );
    }
}
