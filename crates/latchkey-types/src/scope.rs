//! Scopes (RFC 6749 §3.3): a space-delimited list of case-sensitive tokens.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest scope token accepted.
pub const MAX_SCOPE_TOKEN_LEN: usize = 128;
/// Most scope tokens accepted in one request or registration.
pub const MAX_SCOPE_TOKENS: usize = 100;

/// An ordered set of scope tokens, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    InvalidToken(String),
    TooMany,
}

impl std::fmt::Display for ScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidToken(t) => write!(f, "invalid scope token {t:?}"),
            Self::TooMany => write!(f, "more than {MAX_SCOPE_TOKENS} scope tokens"),
        }
    }
}

impl std::error::Error for ScopeError {}

fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_SCOPE_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl Scope {
    /// Parses a space-delimited scope string. Runs of spaces are tolerated; every token must be
    /// made of the characters RFC 6749 §3.3 allows.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        Self::from_tokens(s.split(' ').filter(|t| !t.is_empty()))
    }

    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<String> = Vec::new();
        for token in tokens {
            let token = token.as_ref();
            if !valid_token(token) {
                return Err(ScopeError::InvalidToken(token.chars().take(64).collect()));
            }
            if !out.iter().any(|t| t == token) {
                if out.len() == MAX_SCOPE_TOKENS {
                    return Err(ScopeError::TooMany);
                }
                out.push(token.to_owned());
            }
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    /// True when every token of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.iter().all(|t| other.contains(t))
    }

    /// The tokens of `self` that are not in `allowed`.
    pub fn difference<'a>(&'a self, allowed: &'a Scope) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .map(String::as_str)
            .filter(|t| !allowed.contains(t))
    }

    /// The tokens of `self` that are also in `other`, in `self`'s order.
    #[must_use]
    pub fn intersection(&self, other: &Scope) -> Scope {
        Scope(
            self.0
                .iter()
                .filter(|t| other.contains(t))
                .cloned()
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn insert(&mut self, token: &str) {
        if !self.contains(token) {
            self.0.push(token.to_owned());
        }
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_dedupes_in_order() {
        let s = Scope::parse("openid  email openid offline_access").expect("valid");
        assert_eq!(s.to_string(), "openid email offline_access");
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn rejects_forbidden_characters() {
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("é").is_err());
        assert!(Scope::parse("a\tb").is_err());
    }

    #[test]
    fn subset_and_difference() {
        let a = Scope::parse("a b").expect("valid");
        let b = Scope::parse("a b c").expect("valid");
        assert!(a.is_subset_of(&b));
        assert!(!b.is_subset_of(&a));
        assert_eq!(b.difference(&a).collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(b.intersection(&a), a);
    }

    #[test]
    fn bounds_token_count_and_length() {
        let many: Vec<String> = (0..=MAX_SCOPE_TOKENS).map(|i| format!("s{i}")).collect();
        assert_eq!(Scope::from_tokens(&many), Err(ScopeError::TooMany));
        assert!(Scope::parse(&"x".repeat(MAX_SCOPE_TOKEN_LEN + 1)).is_err());
    }
}
