//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL names a JSON document, served at that URL, that describes the client.
//!
//! This module holds the pure rules: which URLs may be fetched at all, and which documents are
//! acceptable. The fetch (DNS, TLS, SSRF defences, caching) is behind [`MetadataDocumentFetcher`],
//! implemented in `latchkey-http`.
//!
//! Error codes: a client_id that looks like a URL but is not an acceptable one is the request's
//! fault (`invalid_request`); a document that cannot be fetched, or is not acceptable, is the
//! client's fault (`invalid_client`); too many fetches from one host is `temporarily_unavailable`.

use std::fmt::Debug;
use std::sync::Arc;

use latchkey_types::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::redirect::validate_redirect_uri;
use super::validate::{MAX_CONTACTS, MAX_NAME_LEN, MAX_REDIRECT_URIS, MAX_URI_LEN, validate_jwks};
use super::{AuthMethod, GrantType};

/// Longest client_id URL accepted.
pub const MAX_METADATA_URL_LEN: usize = 512;
/// Longest `software_id`, `software_version` and `scope` accepted.
pub const MAX_SHORT_FIELD_LEN: usize = 256;
/// Longest `scope` accepted.
pub const MAX_SCOPE_LEN: usize = 1000;

/// Why a client_id URL or its metadata document is refused. Each message is fit for an OAuth
/// `error_description`: it names the rule, never the document's content beyond a field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    // The URL (invalid_request).
    #[error("the client_id URL is longer than {MAX_METADATA_URL_LEN} characters")]
    UrlTooLong,
    #[error("the client_id URL is not a valid absolute URL")]
    UrlMalformed,
    #[error("the client_id URL must use https")]
    UrlNotHttps,
    #[error("the client_id URL must have a path other than /")]
    UrlNoPath,
    #[error("the client_id URL must not contain a user name or password")]
    UrlCredentials,
    #[error("the client_id URL must not contain a fragment")]
    UrlFragment,
    #[error("the client_id URL must not contain . or .. path segments")]
    UrlDotSegment,
    #[error("the client_id URL must be in canonical form (as sent, it would be rewritten)")]
    UrlNotCanonical,

    // The fetch (invalid_client, except RateLimited).
    #[error("the client metadata document's host resolves to a forbidden address ({0})")]
    ForbiddenAddress(String),
    #[error("the client metadata document's host could not be resolved")]
    Unresolvable,
    #[error("the client metadata document could not be fetched")]
    Unreachable,
    #[error("fetching the client metadata document took too long")]
    Timeout,
    #[error("the client metadata document's URL redirects, and redirects are not followed")]
    Redirect,
    #[error("fetching the client metadata document returned HTTP status {0}, not 200")]
    Status(u16),
    #[error("the client metadata document is not served as JSON (application/json)")]
    ContentType,
    #[error("the client metadata document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("too many client metadata documents fetched from this host; try again later")]
    RateLimited,

    // The document (invalid_client).
    #[error("the client metadata document is not valid JSON")]
    NotJson,
    #[error("the client metadata document is not a JSON object")]
    NotObject,
    #[error("the client metadata document's client_id does not match its URL")]
    ClientIdMismatch,
    #[error("the client metadata document has no {0}")]
    MissingField(&'static str),
    #[error("the client metadata document's {field} {reason}")]
    InvalidField { field: String, reason: String },
    #[error(
        "the client metadata document must not contain {0}: a client identified by a URL has no shared secret"
    )]
    SecretRefused(String),
    #[error(
        "the client metadata document's token_endpoint_auth_method must be none or private_key_jwt, not {0:?}"
    )]
    AuthMethodNotAllowed(String),
    #[error("the client metadata document uses private_key_jwt but has neither jwks nor jwks_uri")]
    KeysRequired,
    #[error(
        "the client metadata document's grant_types may hold only authorization_code and refresh_token, not {0:?}"
    )]
    GrantTypeNotAllowed(String),
}

impl CimdError {
    /// The OAuth error code: `invalid_request` for an unacceptable URL, `temporarily_unavailable`
    /// for the per-host limit, `invalid_client` for everything about the document and its fetch.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::UrlTooLong
            | Self::UrlMalformed
            | Self::UrlNotHttps
            | Self::UrlNoPath
            | Self::UrlCredentials
            | Self::UrlFragment
            | Self::UrlDotSegment
            | Self::UrlNotCanonical => "invalid_request",
            Self::RateLimited => "temporarily_unavailable",
            _ => "invalid_client",
        }
    }

    fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Fetches (or serves from a cache) the metadata document of a client_id URL, validated. The
/// URL must come from [`parse_document_url`].
#[async_trait::async_trait]
pub trait MetadataDocumentFetcher: Send + Sync + Debug {
    async fn fetch(&self, url: &Url) -> Result<Arc<MetadataDocument>, CimdError>;
}

/// Whether a client_id is URL-shaped, and so must be handled as a metadata document URL (and
/// refused clearly by [`parse_document_url`] if it is not an acceptable one).
pub fn looks_like_metadata_url(client_id: &str) -> bool {
    let lower = |n: usize| client_id.get(..n).map(str::to_ascii_lowercase);
    lower(8).as_deref() == Some("https://") || lower(7).as_deref() == Some("http://")
}

/// The document URL of a client_id: https, a path other than `/`, no credentials, no fragment,
/// no `.`/`..` segments, at most [`MAX_METADATA_URL_LEN`] characters, and exactly its own
/// serialisation (so the client_id stored is the one sent). A query is allowed.
pub fn parse_document_url(client_id: &str) -> Result<Url, CimdError> {
    if client_id.len() > MAX_METADATA_URL_LEN {
        return Err(CimdError::UrlTooLong);
    }
    if client_id.contains('#') {
        return Err(CimdError::UrlFragment);
    }
    // `Url` resolves dot segments away, so look at the raw path.
    if let Some(rest) = client_id
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"))
        .and_then(|_| client_id.get(8..))
    {
        let path_and_query = rest.find('/').map_or("", |i| &rest[i..]);
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        let dot = |s: &str| {
            let s = s.to_ascii_lowercase();
            matches!(s.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
        };
        if path.split('/').any(dot) {
            return Err(CimdError::UrlDotSegment);
        }
    }
    let url = Url::parse(client_id).map_err(|_| CimdError::UrlMalformed)?;
    if url.scheme() != "https" {
        return Err(CimdError::UrlNotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CimdError::UrlCredentials);
    }
    if url.fragment().is_some() {
        return Err(CimdError::UrlFragment);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CimdError::UrlMalformed);
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(CimdError::UrlNoPath);
    }
    if url.as_str() != client_id {
        return Err(CimdError::UrlNotCanonical);
    }
    Ok(url)
}

/// A validated client metadata document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataDocument {
    /// Equal to the URL it was fetched from.
    pub client_id: String,
    pub client_name: String,
    /// At least one; each valid by the registration rules (https, loopback http, or a
    /// private-use scheme for a public client).
    pub redirect_uris: Vec<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    /// `none` (the default) or `private_key_jwt`.
    pub token_endpoint_auth_method: AuthMethod,
    /// `authorization_code` (the default) and perhaps `refresh_token`.
    pub grant_types: Vec<GrantType>,
    /// `["code"]`.
    pub response_types: Vec<String>,
    /// The scopes the client says it may ask for, if it says.
    pub scope: Option<String>,
    /// A JWK Set of public keys.
    pub jwks: Option<Value>,
    /// An https URL of a JWK Set.
    pub jwks_uri: Option<String>,
    pub contacts: Vec<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

impl MetadataDocument {
    /// The distinct hosts of the redirect URIs (what the consent screen must show), in order.
    pub fn redirect_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for uri in &self.redirect_uris {
            if let Ok(url) = Url::parse(uri) {
                let host = url
                    .host_str()
                    .map_or_else(|| format!("{}:", url.scheme()), str::to_owned);
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
        hosts
    }

    /// True when every redirect URI is on loopback (`localhost`, `127.0.0.0/8`, `[::1]`): the
    /// consent screen should warn that the app runs on this computer, whoever wrote it.
    pub fn all_redirects_loopback(&self) -> bool {
        self.redirect_uris.iter().all(|uri| {
            Url::parse(uri).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && crate::config::is_loopback_host(&u)
            })
        })
    }
}

/// Parses and validates the document fetched from `url`.
pub fn parse_document(url: &Url, body: &[u8]) -> Result<MetadataDocument, CimdError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| CimdError::NotJson)?;
    let Value::Object(map) = value else {
        return Err(CimdError::NotObject);
    };
    let client_id = required_str(&map, "client_id")?;
    if client_id != url.as_str() {
        return Err(CimdError::ClientIdMismatch);
    }
    for secret in ["client_secret", "client_secret_expires_at"] {
        if map.contains_key(secret) {
            return Err(CimdError::SecretRefused(secret.to_owned()));
        }
    }
    let token_endpoint_auth_method = auth_method(&map)?;
    let client_name = required_str(&map, "client_name")?;
    bounded("client_name", &client_name, MAX_NAME_LEN)?;
    if client_name.trim().is_empty() {
        return Err(CimdError::field("client_name", "must not be empty"));
    }
    let redirect_uris = redirect_uris(&map, token_endpoint_auth_method)?;
    let client_uri = web_uri(&map, "client_uri")?;
    let logo_uri = web_uri(&map, "logo_uri")?;
    let tos_uri = web_uri(&map, "tos_uri")?;
    let policy_uri = web_uri(&map, "policy_uri")?;
    let grant_types = grant_types(&map)?;
    let response_types = response_types(&map)?;
    let scope = optional_str(&map, "scope")?;
    if let Some(s) = &scope {
        bounded("scope", s, MAX_SCOPE_LEN)?;
        Scope::parse(s).map_err(|e| CimdError::field("scope", e.to_string()))?;
    }
    let jwks = match map.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v) => Some(validate_jwks(v).map_err(|e| CimdError::field(e.field, e.reason))?),
    };
    let jwks_uri = optional_str(&map, "jwks_uri")?;
    if let Some(u) = &jwks_uri {
        bounded("jwks_uri", u, MAX_URI_LEN)?;
        let parsed =
            Url::parse(u).map_err(|_| CimdError::field("jwks_uri", "must be an absolute URL"))?;
        if parsed.scheme() != "https" {
            return Err(CimdError::field("jwks_uri", "must be an https URL"));
        }
    }
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(CimdError::field(
            "jwks",
            "must not be given together with jwks_uri",
        ));
    }
    if token_endpoint_auth_method == AuthMethod::PrivateKeyJwt
        && jwks.is_none()
        && jwks_uri.is_none()
    {
        return Err(CimdError::KeysRequired);
    }
    let contacts = string_list(&map, "contacts")?;
    if contacts.len() > MAX_CONTACTS {
        return Err(CimdError::field(
            "contacts",
            format!("must hold at most {MAX_CONTACTS} entries"),
        ));
    }
    for c in &contacts {
        bounded("contacts", c, MAX_NAME_LEN)?;
    }
    let software_id = optional_str(&map, "software_id")?;
    let software_version = optional_str(&map, "software_version")?;
    for (field, v) in [
        ("software_id", &software_id),
        ("software_version", &software_version),
    ] {
        if let Some(v) = v {
            bounded(field, v, MAX_SHORT_FIELD_LEN)?;
        }
    }
    Ok(MetadataDocument {
        client_id,
        client_name,
        redirect_uris,
        client_uri,
        logo_uri,
        tos_uri,
        policy_uri,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        scope,
        jwks,
        jwks_uri,
        contacts,
        software_id,
        software_version,
    })
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), CimdError> {
    if value.len() > max {
        return Err(CimdError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(CimdError::field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn optional_str(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, CimdError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(CimdError::field(field, "must be a string")),
    }
}

fn required_str(map: &Map<String, Value>, field: &'static str) -> Result<String, CimdError> {
    optional_str(map, field)?.ok_or(CimdError::MissingField(field))
}

fn string_list(map: &Map<String, Value>, field: &'static str) -> Result<Vec<String>, CimdError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| CimdError::field(field, "must be an array of strings"))
            })
            .collect(),
        Some(_) => Err(CimdError::field(field, "must be an array of strings")),
    }
}

fn auth_method(map: &Map<String, Value>) -> Result<AuthMethod, CimdError> {
    match optional_str(map, "token_endpoint_auth_method")?.as_deref() {
        None | Some("none") => Ok(AuthMethod::None),
        Some("private_key_jwt") => Ok(AuthMethod::PrivateKeyJwt),
        Some(m) if m.starts_with("client_secret") => Err(CimdError::SecretRefused(format!(
            "token_endpoint_auth_method {m:?}"
        ))),
        Some(m) => Err(CimdError::AuthMethodNotAllowed(
            m.chars().take(64).collect(),
        )),
    }
}

fn redirect_uris(map: &Map<String, Value>, method: AuthMethod) -> Result<Vec<String>, CimdError> {
    if map.get("redirect_uris").is_none_or(Value::is_null) {
        return Err(CimdError::MissingField("redirect_uris"));
    }
    let uris = string_list(map, "redirect_uris")?;
    if uris.is_empty() {
        return Err(CimdError::field("redirect_uris", "must not be empty"));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(CimdError::field(
            "redirect_uris",
            format!("must hold at most {MAX_REDIRECT_URIS} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(uris.len());
    for (i, uri) in uris.into_iter().enumerate() {
        validate_redirect_uri(&uri, method == AuthMethod::None)
            .map_err(|e| CimdError::field(format!("redirect_uris[{i}]"), e.to_string()))?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

fn web_uri(map: &Map<String, Value>, field: &'static str) -> Result<Option<String>, CimdError> {
    let Some(value) = optional_str(map, field)? else {
        return Ok(None);
    };
    bounded(field, &value, MAX_URI_LEN)?;
    let url = Url::parse(&value).map_err(|_| CimdError::field(field, "must be an absolute URL"))?;
    match url.scheme() {
        "https" => Ok(Some(value)),
        "http" if crate::config::is_loopback_host(&url) => Ok(Some(value)),
        _ => Err(CimdError::field(field, "must be an https URL")),
    }
}

fn grant_types(map: &Map<String, Value>) -> Result<Vec<GrantType>, CimdError> {
    let raw = string_list(map, "grant_types")?;
    if raw.is_empty() {
        return Ok(vec![GrantType::AuthorizationCode]);
    }
    let mut out = Vec::new();
    for g in raw {
        let grant = match g.as_str() {
            "authorization_code" => GrantType::AuthorizationCode,
            "refresh_token" => GrantType::RefreshToken,
            other => {
                return Err(CimdError::GrantTypeNotAllowed(
                    other.chars().take(64).collect(),
                ));
            }
        };
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    if !out.contains(&GrantType::AuthorizationCode) {
        return Err(CimdError::field(
            "grant_types",
            "must include authorization_code",
        ));
    }
    Ok(out)
}

fn response_types(map: &Map<String, Value>) -> Result<Vec<String>, CimdError> {
    let raw = string_list(map, "response_types")?;
    if raw.iter().any(|r| r != "code") {
        return Err(CimdError::field("response_types", "may only be [\"code\"]"));
    }
    Ok(vec!["code".to_owned()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://app.example/oauth/client.json";

    fn url() -> Url {
        parse_document_url(URL).expect("valid in the test")
    }

    fn base() -> Value {
        json!({
            "client_id": URL,
            "client_name": "Example App",
            "redirect_uris": ["https://app.example/callback", "http://127.0.0.1/cb"],
        })
    }

    fn parse(v: &Value) -> Result<MetadataDocument, CimdError> {
        parse_document(&url(), &serde_json::to_vec(v).expect("valid in the test"))
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = base();
        v[field] = value;
        v
    }

    #[test]
    fn url_shaped_ids_are_recognised() {
        assert!(looks_like_metadata_url("https://a.example/c"));
        assert!(looks_like_metadata_url("HTTPS://a.example/c"));
        assert!(looks_like_metadata_url("http://a.example/c"));
        assert!(!looks_like_metadata_url("my-client"));
        assert!(!looks_like_metadata_url("https:x"));
        assert!(!looks_like_metadata_url("urn:x:https://a"));
        assert!(!looks_like_metadata_url(""));
        assert!(!looks_like_metadata_url("ht"));
    }

    #[test]
    fn good_urls_are_accepted() {
        for ok in [
            URL,
            "https://app.example/c",
            "https://app.example:8443/c?v=1",
            "https://127.0.0.1/c",
            "https://[::1]:9/x/y",
            "https://app.example/c/",
        ] {
            assert_eq!(
                parse_document_url(ok).expect("valid in the test").as_str(),
                ok,
                "{ok}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused_with_their_reason() {
        let long = format!("https://app.example/{}", "a".repeat(MAX_METADATA_URL_LEN));
        for (bad, want) in [
            (long.as_str(), CimdError::UrlTooLong),
            ("http://app.example/c", CimdError::UrlNotHttps),
            ("https://app.example", CimdError::UrlNoPath),
            ("https://app.example/", CimdError::UrlNoPath),
            ("https://user@app.example/c", CimdError::UrlCredentials),
            ("https://user:pw@app.example/c", CimdError::UrlCredentials),
            ("https://:pw@app.example/c", CimdError::UrlCredentials),
            ("https://app.example/c#frag", CimdError::UrlFragment),
            ("https://app.example/c#", CimdError::UrlFragment),
            ("https://app.example/./c", CimdError::UrlDotSegment),
            ("https://app.example/a/../c", CimdError::UrlDotSegment),
            ("https://app.example/a/..", CimdError::UrlDotSegment),
            ("https://app.example/a/%2e%2E/c", CimdError::UrlDotSegment),
            ("https://app.example/a/.%2e/c", CimdError::UrlDotSegment),
            ("https://app.example/%2e/c?x", CimdError::UrlDotSegment),
            ("https://APP.example/c", CimdError::UrlNotCanonical),
            ("HTTPS://app.example/c", CimdError::UrlNotCanonical),
            ("https://app.example:443/c", CimdError::UrlNotCanonical),
            ("https://app.example/a b", CimdError::UrlNotCanonical),
            ("https://app.example/c?a b", CimdError::UrlNotCanonical),
            ("https://0x7f.1/c", CimdError::UrlNotCanonical),
            ("https://app.example\\c", CimdError::UrlNotCanonical),
            ("https:///c", CimdError::UrlNoPath),
            ("https://", CimdError::UrlMalformed),
            ("https://exa mple/c", CimdError::UrlMalformed),
            ("ftp://app.example/c", CimdError::UrlNotHttps),
        ] {
            assert_eq!(parse_document_url(bad), Err(want.clone()), "{bad}");
            assert_eq!(want.error_code(), "invalid_request");
        }
    }

    #[test]
    fn a_good_document_is_accepted_with_defaults() {
        let doc = parse(&base()).expect("valid in the test");
        assert_eq!(doc.client_id, URL);
        assert_eq!(doc.client_name, "Example App");
        assert_eq!(doc.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(doc.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(doc.response_types, vec!["code"]);
        assert_eq!(doc.redirect_hosts(), vec!["app.example", "127.0.0.1"]);
        assert!(!doc.all_redirects_loopback());

        let full = json!({
            "client_id": URL,
            "client_name": "Example App",
            "redirect_uris": ["http://localhost:3000/cb", "http://[::1]/cb", "com.example.app:/cb"],
            "client_uri": "https://app.example",
            "logo_uri": "https://app.example/logo.png",
            "tos_uri": "https://app.example/tos",
            "policy_uri": "https://app.example/privacy",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid profile",
            "contacts": ["ops@app.example"],
            "software_id": "4NRB1-0XZABZI9E6-5SM3R",
            "software_version": "2.1",
            "extra": {"ignored": true},
        });
        let doc = parse(&full).expect("valid in the test");
        assert_eq!(doc.grant_types.len(), 2);
        assert_eq!(doc.scope.as_deref(), Some("openid profile"));
        assert_eq!(doc.software_version.as_deref(), Some("2.1"));
        let loopback_only = with(
            "redirect_uris",
            json!(["http://localhost:3000/cb", "http://127.0.0.1:9/cb"]),
        );
        assert!(
            parse(&loopback_only)
                .expect("valid in the test")
                .all_redirects_loopback()
        );
    }

    #[test]
    fn private_key_jwt_needs_keys() {
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let mut v = with("token_endpoint_auth_method", json!("private_key_jwt"));
        assert_eq!(parse(&v), Err(CimdError::KeysRequired));
        v["jwks"] = jwks.clone();
        assert_eq!(
            parse(&v)
                .expect("valid in the test")
                .token_endpoint_auth_method,
            AuthMethod::PrivateKeyJwt
        );
        v["jwks_uri"] = json!("https://app.example/jwks");
        assert!(matches!(parse(&v), Err(CimdError::InvalidField { field, .. }) if field == "jwks"));
        v.as_object_mut().expect("valid in the test").remove("jwks");
        assert!(parse(&v).is_ok());
        v["jwks_uri"] = json!("http://app.example/jwks");
        assert!(
            matches!(parse(&v), Err(CimdError::InvalidField { field, .. }) if field == "jwks_uri")
        );
        let private = with("jwks", json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}));
        assert!(
            matches!(parse(&private), Err(CimdError::InvalidField { field, .. }) if field.starts_with("jwks"))
        );
    }

    #[test]
    fn bad_documents_are_refused_with_their_reason() {
        fn invalid(f: &'static str) -> impl Fn(&CimdError) -> bool {
            move |e: &CimdError| matches!(e, CimdError::InvalidField { field, .. } if field == f)
        }
        type Expect = Box<dyn Fn(&CimdError) -> bool>;
        let cases: Vec<(Value, Expect)> = vec![
            (json!([1, 2]), Box::new(|e| *e == CimdError::NotObject)),
            (json!("x"), Box::new(|e| *e == CimdError::NotObject)),
            (
                with("client_id", json!("https://app.example/other.json")),
                Box::new(|e| *e == CimdError::ClientIdMismatch),
            ),
            (
                with("client_id", json!("https://APP.example/oauth/client.json")),
                Box::new(|e| *e == CimdError::ClientIdMismatch),
            ),
            (
                with("client_id", json!(format!("{URL}/"))),
                Box::new(|e| *e == CimdError::ClientIdMismatch),
            ),
            (with("client_id", json!(7)), Box::new(invalid("client_id"))),
            (
                with("client_id", Value::Null),
                Box::new(|e| *e == CimdError::MissingField("client_id")),
            ),
            (
                with("client_name", Value::Null),
                Box::new(|e| *e == CimdError::MissingField("client_name")),
            ),
            (
                with("client_name", json!("  ")),
                Box::new(invalid("client_name")),
            ),
            (
                with("client_name", json!("a".repeat(MAX_NAME_LEN + 1))),
                Box::new(invalid("client_name")),
            ),
            (
                with("client_name", json!("a\u{7}b")),
                Box::new(invalid("client_name")),
            ),
            (
                with("redirect_uris", Value::Null),
                Box::new(|e| *e == CimdError::MissingField("redirect_uris")),
            ),
            (
                with("redirect_uris", json!([])),
                Box::new(invalid("redirect_uris")),
            ),
            (
                with("redirect_uris", json!("https://app.example/cb")),
                Box::new(invalid("redirect_uris")),
            ),
            (
                with("redirect_uris", json!([1])),
                Box::new(invalid("redirect_uris")),
            ),
            (
                with(
                    "redirect_uris",
                    json!(vec!["https://app.example/cb"; MAX_REDIRECT_URIS + 1]),
                ),
                Box::new(invalid("redirect_uris")),
            ),
            (
                with("redirect_uris", json!(["https://app.example/cb#x"])),
                Box::new(invalid("redirect_uris[0]")),
            ),
            (
                with("redirect_uris", json!(["/cb"])),
                Box::new(invalid("redirect_uris[0]")),
            ),
            (
                with(
                    "redirect_uris",
                    json!(["https://app.example/cb", "http://app.example/cb"]),
                ),
                Box::new(invalid("redirect_uris[1]")),
            ),
            (
                with("redirect_uris", json!(["javascript:alert(1)"])),
                Box::new(invalid("redirect_uris[0]")),
            ),
            (
                with("redirect_uris", json!(["myapp:/cb"])),
                Box::new(invalid("redirect_uris[0]")),
            ),
            (
                with("client_secret", json!("s3cret")),
                Box::new(|e| *e == CimdError::SecretRefused("client_secret".into())),
            ),
            (
                with("client_secret_expires_at", json!(0)),
                Box::new(|e| *e == CimdError::SecretRefused("client_secret_expires_at".into())),
            ),
            (
                with("token_endpoint_auth_method", json!("client_secret_basic")),
                Box::new(|e| matches!(e, CimdError::SecretRefused(_))),
            ),
            (
                with("token_endpoint_auth_method", json!("client_secret_post")),
                Box::new(|e| matches!(e, CimdError::SecretRefused(_))),
            ),
            (
                with("token_endpoint_auth_method", json!("client_secret_jwt")),
                Box::new(|e| matches!(e, CimdError::SecretRefused(_))),
            ),
            (
                with("token_endpoint_auth_method", json!("tls_client_auth")),
                Box::new(|e| matches!(e, CimdError::AuthMethodNotAllowed(_))),
            ),
            (
                with("token_endpoint_auth_method", json!(1)),
                Box::new(invalid("token_endpoint_auth_method")),
            ),
            (
                with("grant_types", json!(["client_credentials"])),
                Box::new(|e| matches!(e, CimdError::GrantTypeNotAllowed(_))),
            ),
            (
                with("grant_types", json!(["implicit"])),
                Box::new(|e| matches!(e, CimdError::GrantTypeNotAllowed(_))),
            ),
            (
                with("grant_types", json!(["refresh_token"])),
                Box::new(invalid("grant_types")),
            ),
            (
                with("response_types", json!(["token"])),
                Box::new(invalid("response_types")),
            ),
            (with("scope", json!("a\"b")), Box::new(invalid("scope"))),
            (
                with("scope", json!("a ".repeat(MAX_SCOPE_LEN))),
                Box::new(invalid("scope")),
            ),
            (
                with("client_uri", json!("javascript:alert(1)")),
                Box::new(invalid("client_uri")),
            ),
            (
                with("logo_uri", json!("http://app.example/logo.png")),
                Box::new(invalid("logo_uri")),
            ),
            (
                with("tos_uri", json!("not a url")),
                Box::new(invalid("tos_uri")),
            ),
            (
                with(
                    "policy_uri",
                    json!(format!("https://app.example/{}", "a".repeat(MAX_URI_LEN))),
                ),
                Box::new(invalid("policy_uri")),
            ),
            (
                with("contacts", json!(vec!["a@b.example"; MAX_CONTACTS + 1])),
                Box::new(invalid("contacts")),
            ),
            (
                with("contacts", json!("a@b.example")),
                Box::new(invalid("contacts")),
            ),
            (
                with("software_id", json!("x".repeat(MAX_SHORT_FIELD_LEN + 1))),
                Box::new(invalid("software_id")),
            ),
            (
                with("software_version", json!(2)),
                Box::new(invalid("software_version")),
            ),
            (
                with("jwks", json!({"nokeys": []})),
                Box::new(invalid("jwks")),
            ),
        ];
        for (doc, want) in cases {
            let got = parse(&doc).expect_err(&doc.to_string());
            assert!(want(&got), "{doc}: {got:?}");
            assert_eq!(got.error_code(), "invalid_client", "{got:?}");
        }
        for broken in [
            &b"{"[..],
            b"",
            b"not json",
            b"{\"client_id\":1,}",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_document(&url(), broken), Err(CimdError::NotJson));
        }
    }

    #[test]
    fn messages_are_fit_for_an_error_description() {
        assert_eq!(
            CimdError::ClientIdMismatch.to_string(),
            "the client metadata document's client_id does not match its URL"
        );
        assert_eq!(
            CimdError::field("redirect_uris[0]", "must not contain a fragment").to_string(),
            "the client metadata document's redirect_uris[0] must not contain a fragment"
        );
        assert_eq!(
            CimdError::RateLimited.error_code(),
            "temporarily_unavailable"
        );
        assert_eq!(
            CimdError::ForbiddenAddress("loopback".into()).error_code(),
            "invalid_client"
        );
    }
}
