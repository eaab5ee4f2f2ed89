//! Cryptography: the system secrets and what they key (token MACs, encryption at rest), the
//! opaque token format, and hashing of stored secrets. Everything goes through aws-lc-rs.

mod secrets;
mod token;

pub use secrets::{SealError, SystemSecrets};
pub(crate) use token::millis_of;
pub use token::{
    LookupValue, OpaqueToken, TokenError, TokenHash, TokenKind, lookup_key, mint_lookup_value,
};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Unpadded base64url, the encoding of every token and hash Latchkey writes.
pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes unpadded base64url.
pub fn unb64(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data).ok()
}

/// The storage key of a bearer value that is only ever looked up (a challenge, a verifier):
/// `base64url(SHA-256(value))`. A leaked database holds no usable value.
pub fn lookup_hash(value: &str) -> String {
    b64(&sha256(value.as_bytes()))
}
