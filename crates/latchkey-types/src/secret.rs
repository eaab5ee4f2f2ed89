//! Secrets that protocol messages carry: tokens, client secrets.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

/// A secret in a protocol message (an access, refresh or ID token, a client secret). It
/// serializes as itself, since the message exists to carry it, but its `Debug` is redacted and it
/// has no `Display`, so a message can be logged or asserted on without leaking what it carries.
/// Equality is constant-time.
///
/// Secrets that are never written out (passwords, configured secrets) are
/// `latchkey_core::secret::SecretString`, which also serializes redacted.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_serde_carries_the_secret() {
        let s = Secret::new("tok_hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(serde_json::to_string(&s).expect("json"), r#""tok_hunter2""#);
        let back: Secret = serde_json::from_str(r#""tok_hunter2""#).expect("parses");
        assert_eq!(back, s);
        assert_ne!(back, Secret::new("tok_hunter3"));
        assert_ne!(back, Secret::new("tok_hunter"));
    }
}
