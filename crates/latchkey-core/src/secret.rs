//! Secret values: redacted in `Debug` and when serialized, never `Display`ed, compared in
//! constant time.

use subtle::ConstantTimeEq as _;

/// What a secret is written as, in `Debug` and when serialized.
pub const REDACTED: &str = "<redacted>";

/// A secret string (a client secret, a password, a token, a configured secret). Its `Debug` is
/// redacted, it serializes as [`REDACTED`] (so printing a configuration shows that a secret is
/// set, not what it is) and it has no `Display`, so it cannot end up in a log line by accident.
/// It deserializes from a plain string.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// For command-line parsers and configuration sources that hand over a `String`.
impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretString({REDACTED})")
    }
}

impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for SecretString {}

/// Constant-time equality of two byte strings (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A database URL with its password (in the user information, or in a `password` query
/// parameter as PostgreSQL URLs allow) replaced by `***`, for messages. A URL without one is
/// returned as it is; one that does not parse keeps only its scheme (SQLite's, which hold no
/// password, are kept whole).
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return match url.split_once(':') {
            Some(("sqlite", _)) => url.to_owned(),
            Some((scheme, _)) => format!("{scheme}:{REDACTED}"),
            None => REDACTED.to_owned(),
        };
    };
    let in_query = u.query_pairs().any(|(k, _)| is_password_param(&k));
    if u.password().is_none() && !in_query {
        return url.to_owned();
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if in_query {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_password_param(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

fn is_password_param(name: &str) -> bool {
    name.to_ascii_lowercase().contains("password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s, SecretString::new("hunter2"));
        assert_ne!(s, SecretString::new("hunter3"));
    }

    #[test]
    fn serializes_redacted_and_deserializes_the_secret() {
        let s: SecretString = serde_json::from_str(r#""hunter2""#).expect("parses");
        assert_eq!(s.expose(), "hunter2");
        let shown = serde_json::to_string(&s).expect("serializes");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, format!("\"{REDACTED}\""));
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://lk:hunter2@db.internal:5432/latchkey"),
            "postgres://lk:***@db.internal:5432/latchkey"
        );
        let q = redact_url("postgres://lk@db/latchkey?sslmode=require&password=hunter2");
        assert!(
            !q.contains("hunter2") && q.contains("sslmode=require"),
            "{q}"
        );
        // Not a URL the parser accepts (the port is not a number): nothing after the scheme.
        let bad = redact_url("postgres://lk:hunter2@db:port/latchkey");
        assert!(!bad.contains("hunter2"), "{bad}");
        assert_eq!(
            redact_url("sqlite:///var/lib/latchkey/latchkey.db"),
            "sqlite:///var/lib/latchkey/latchkey.db"
        );
    }
}
