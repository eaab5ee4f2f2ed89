//! Request parameters as sent: every occurrence kept, so that a parameter sent twice can be
//! refused (RFC 6749 §3.1, §3.2) instead of silently picking one.

use crate::secret::REDACTED;

/// Longest parameter value accepted (client assertions are the longest legitimate values).
pub const MAX_VALUE_LEN: usize = 8 * 1024;
/// Most parameters accepted in one request.
pub const MAX_PARAMS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("the parameter {0} was given more than once")]
    Duplicate(String),
    #[error("the parameter {0} is too long")]
    TooLong(String),
    #[error("too many parameters")]
    TooMany,
}

/// The parameters that may be given more than once: `resource` (RFC 8707 §2).
pub const REPEATABLE: &[&str] = &["resource"];

/// Parameters in the order received. `Debug` shows the values of [`SHOWN`] only: the others
/// may be codes, tokens, client secrets, verifiers or assertions.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

/// The parameters whose values are no secret, shown by `Debug`.
const SHOWN: &[&str] = &[
    "grant_type",
    "response_type",
    "response_mode",
    "client_id",
    "scope",
    "audience",
    "resource",
    "redirect_uri",
    "code_challenge_method",
    "client_assertion_type",
    "token_type_hint",
    "prompt",
    "max_age",
    "display",
    "ui_locales",
    "acr_values",
];

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Params")?;
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| {
                let v = if SHOWN.contains(&k.as_str()) {
                    v.as_str()
                } else {
                    REDACTED
                };
                (k, v)
            }))
            .finish()
    }
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
    pub fn parse(encoded: &str) -> Result<Self, ParamError> {
        let mut out = Vec::new();
        for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if out.len() == MAX_PARAMS {
                return Err(ParamError::TooMany);
            }
            if v.len() > MAX_VALUE_LEN || k.len() > 128 {
                return Err(ParamError::TooLong(k.chars().take(64).collect()));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }

    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The value of `name`, if given once; an error if given more than once. An empty value
    /// counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, ParamError> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name {
                if found.is_some() {
                    return Err(ParamError::Duplicate(name.to_owned()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// The first parameter given more than once, if any, of those that may be given once
    /// (all but [`REPEATABLE`]).
    pub fn first_duplicate(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, _))| {
            (!REPEATABLE.contains(&k.as_str()) && self.0[..i].iter().any(|(k2, _)| k2 == k))
                .then_some(k.as_str())
        })
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The parameters without the given names, re-encoded.
    pub fn encode_without(&self, drop: &[&str]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop.contains(&k.as_str()) {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_and_harmless_values_only() {
        let p = Params::parse(
            "grant_type=authorization_code&code=lk_ac_code-secret&code_verifier=verifier-secret\
             &client_id=app&client_secret=client-secret&refresh_token=lk_rt_refresh-secret",
        )
        .expect("parses");
        let shown = format!("{p:?}");
        for secret in [
            "code-secret",
            "verifier-secret",
            "client-secret",
            "refresh-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains(r#"("grant_type", "authorization_code")"#),
            "{shown}"
        );
        assert!(shown.contains(r#"("client_id", "app")"#), "{shown}");
        assert!(shown.contains(r#"("code", "<redacted>")"#), "{shown}");
    }

    #[test]
    fn duplicates_are_detected() {
        let p = Params::parse("a=1&b=2&a=3").expect("parses");
        assert_eq!(p.get("b"), Ok(Some("2")));
        assert_eq!(p.get("a"), Err(ParamError::Duplicate("a".into())));
        assert_eq!(p.first_duplicate(), Some("a"));
        assert_eq!(Params::parse("a=&b=1").expect("parses").get("a"), Ok(None));
    }

    #[test]
    fn values_and_counts_are_bounded() {
        let long = format!("a={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert!(matches!(Params::parse(&long), Err(ParamError::TooLong(_))));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(Params::parse(&many.join("&")), Err(ParamError::TooMany));
    }

    #[test]
    fn re_encodes_without_some_names() {
        let p = Params::parse("client_id=c&login_verifier=v&state=a%20b").expect("parses");
        assert_eq!(
            p.encode_without(&["login_verifier"]),
            "client_id=c&state=a+b"
        );
    }
}
