//! Validation of client metadata written through the admin API (RFC 7591 §2 rules, OAuth 2.1
//! profile): every field bounded, grant and response types consistent, redirect URIs safe.

use latchkey_types::Scope;
use latchkey_types::client::OAuth2Client;

use super::redirect::validate_redirect_uri;
use super::{AuthMethod, Client, ClientOrigin, ClientStatus, GrantType};
use crate::config::AccessTokenStrategy;

pub const MAX_CLIENT_ID_LEN: usize = 255;
pub const MAX_NAME_LEN: usize = 256;
pub const MAX_URI_LEN: usize = 2000;
pub const MAX_REDIRECT_URIS: usize = 32;
pub const MAX_CONTACTS: usize = 20;
pub const MAX_AUDIENCES: usize = 50;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
pub const MAX_JWKS_KEYS: usize = 20;

/// Signing algorithms a client may choose for ID tokens.
pub const ID_TOKEN_ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];
/// Algorithms accepted for `private_key_jwt` client assertions.
pub const CLIENT_ASSERTION_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Client metadata that is not acceptable: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MetadataError {
    pub field: String,
    pub reason: String,
}

impl MetadataError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Redirect URI problems are `invalid_redirect_uri` (RFC 7591 §3.2.2); the rest
    /// `invalid_client_metadata`.
    pub fn is_redirect_uri(&self) -> bool {
        self.field.starts_with("redirect_uris")
            || self.field.starts_with("post_logout_redirect_uris")
    }
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> MetadataError {
    MetadataError::new(field, reason)
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), MetadataError> {
    if value.len() > max {
        return Err(err(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(err(field, "must not contain control characters"));
    }
    Ok(())
}

/// A URL a person may follow from a consent screen or console: absolute `https` (or loopback
/// `http`, for development).
fn web_uri(field: &str, value: &str) -> Result<(), MetadataError> {
    if value.is_empty() {
        return Ok(());
    }
    bounded(field, value, MAX_URI_LEN)?;
    let url = url::Url::parse(value).map_err(|_| err(field, "must be an absolute URL"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback_host(&url) => Ok(()),
        _ => Err(err(field, "must be an https URL")),
    }
}

/// The fields of a client that the caller does not set: identity, timestamps, platform state.
pub(crate) struct Fixed {
    pub id: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub status: ClientStatus,
    pub owner_account_id: Option<String>,
    pub origin: ClientOrigin,
}

pub(crate) fn validate_client_id(id: &str) -> Result<(), MetadataError> {
    if id.is_empty() || id.len() > MAX_CLIENT_ID_LEN {
        return Err(err(
            "client_id",
            format!("must be 1 to {MAX_CLIENT_ID_LEN} characters"),
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~:@".contains(&b))
    {
        return Err(err(
            "client_id",
            "may contain only letters, digits and - . _ ~ : @",
        ));
    }
    Ok(())
}

/// Builds a validated [`Client`] from the wire form. Absent fields take Hydra's defaults. The
/// fields are checked in this order, and the first problem is the one reported.
pub(crate) fn client_from_wire(
    input: &OAuth2Client,
    fixed: Fixed,
) -> Result<Client, MetadataError> {
    refuse_server_set_fields(input)?;
    // A metadata document's client id is its URL, checked by its own parser.
    if fixed.origin != ClientOrigin::MetadataDocument {
        validate_client_id(&fixed.id)?;
    }
    let name = input.client_name.clone().unwrap_or_default();
    bounded("client_name", &name, MAX_NAME_LEN)?;
    let method = auth_method(input)?;
    let grant_types = grant_types(input)?;
    let response_types = response_types(input, &grant_types)?;
    check_grants_fit(&grant_types, &response_types, method)?;
    let (redirect_uris, post_logout_redirect_uris) =
        redirect_uri_lists(input, &grant_types, method)?;
    let scope = scope(input)?;
    let audience = audience(input)?;
    let algs = signing_algs(input)?;
    let jwks = jwks(input, method)?;
    let access_token_strategy = access_token_strategy(input)?;
    check_subject_type(input)?;
    let about = Presentation::from_wire(input)?;
    let metadata = metadata(input)?;
    Ok(Client {
        id: fixed.id,
        name,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        response_types,
        scope,
        audience,
        token_endpoint_auth_method: method,
        token_endpoint_auth_signing_alg: algs.token_endpoint_auth,
        id_token_signed_response_alg: algs.id_token,
        userinfo_signed_response_alg: algs.userinfo,
        jwks,
        access_token_strategy,
        skip_consent: input.skip_consent.unwrap_or(false),
        skip_logout_consent: input.skip_logout_consent.unwrap_or(false),
        owner: about.owner,
        logo_uri: about.logo_uri,
        client_uri: about.client_uri,
        policy_uri: about.policy_uri,
        tos_uri: about.tos_uri,
        contacts: about.contacts,
        metadata,
        owner_account_id: fixed.owner_account_id,
        status: fixed.status,
        origin: fixed.origin,
        created_at: fixed.created_at,
        updated_at: fixed.updated_at,
    })
}

/// Refuses the fields the server sets itself or does not support.
fn refuse_server_set_fields(input: &OAuth2Client) -> Result<(), MetadataError> {
    if let Some(field) = input.unsupported_fields_set().first() {
        return Err(err(*field, "is not supported by Latchkey; leave it empty"));
    }
    if input
        .client_secret
        .as_ref()
        .is_some_and(|s| !s.expose().is_empty())
    {
        return Err(err(
            "client_secret",
            "client secrets are generated by the server and shown once; leave it out",
        ));
    }
    if input.client_secret_expires_at.is_some_and(|t| t != 0) {
        return Err(err(
            "client_secret_expires_at",
            "is not supported; leave it 0",
        ));
    }
    Ok(())
}

/// How the client authenticates at the token endpoint; `client_secret_basic` by default.
fn auth_method(input: &OAuth2Client) -> Result<AuthMethod, MetadataError> {
    match input.token_endpoint_auth_method.as_deref() {
        None | Some("") => Ok(AuthMethod::ClientSecretBasic),
        Some(m) => AuthMethod::parse(m).ok_or_else(|| {
            err(
                "token_endpoint_auth_method",
                format!("{m:?} is not supported; use client_secret_basic, client_secret_post, private_key_jwt or none"),
            )
        }),
    }
}

/// The grant types, each once; `authorization_code` by default.
fn grant_types(input: &OAuth2Client) -> Result<Vec<GrantType>, MetadataError> {
    let list = match input.grant_types.as_deref() {
        None | Some([]) => return Ok(vec![GrantType::AuthorizationCode]),
        Some(list) => list,
    };
    let mut out = Vec::new();
    for g in list {
        let grant = GrantType::parse(g).ok_or_else(|| {
            let why = match g.as_str() {
                "implicit" | "password" => "is not allowed by OAuth 2.1".to_owned(),
                _ => {
                    "is not supported; use authorization_code, refresh_token, client_credentials or one of urn:ietf:params:oauth:grant-type:{device_code,token-exchange,jwt-bearer}"
                        .to_owned()
                }
            };
            err("grant_types", format!("{g:?} {why}"))
        })?;
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    Ok(out)
}

/// The response types: `code` only, and by default when the client uses the code grant.
fn response_types(
    input: &OAuth2Client,
    grant_types: &[GrantType],
) -> Result<Vec<String>, MetadataError> {
    match input.response_types.as_deref() {
        None | Some([]) => Ok(if grant_types.contains(&GrantType::AuthorizationCode) {
            vec!["code".to_owned()]
        } else {
            vec![]
        }),
        Some(list) => {
            if let Some(r) = list.iter().find(|r| *r != "code") {
                return Err(err(
                    "response_types",
                    format!("{r:?} is not supported; OAuth 2.1 allows only \"code\""),
                ));
            }
            Ok(vec!["code".to_owned()])
        }
    }
}

/// Checks that the grant types, the response types and the authentication method agree.
fn check_grants_fit(
    grant_types: &[GrantType],
    response_types: &[String],
    method: AuthMethod,
) -> Result<(), MetadataError> {
    let code = grant_types.contains(&GrantType::AuthorizationCode);
    if code != response_types.iter().any(|r| r == "code") {
        return Err(err(
            "response_types",
            "the \"code\" response type and the authorization_code grant go together",
        ));
    }
    if grant_types.contains(&GrantType::RefreshToken)
        && !code
        && !grant_types.contains(&GrantType::DeviceCode)
    {
        return Err(err(
            "grant_types",
            "refresh_token needs authorization_code or the device code grant",
        ));
    }
    if grant_types.contains(&GrantType::ClientCredentials) && method == AuthMethod::None {
        return Err(err(
            "grant_types",
            "client_credentials needs a confidential client, not token_endpoint_auth_method none",
        ));
    }
    Ok(())
}

/// The redirect URIs and the post-logout redirect URIs, each list without repeats. A public
/// (native) client may use private-use schemes; the code grant needs at least one.
fn redirect_uri_lists(
    input: &OAuth2Client,
    grant_types: &[GrantType],
    method: AuthMethod,
) -> Result<(Vec<String>, Vec<String>), MetadataError> {
    let native = method == AuthMethod::None;
    let redirect_uris = uri_list(
        "redirect_uris",
        input.redirect_uris.as_deref().unwrap_or_default(),
        native,
    )?;
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(err(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        ));
    }
    let post_logout_redirect_uris = uri_list(
        "post_logout_redirect_uris",
        input
            .post_logout_redirect_uris
            .as_deref()
            .unwrap_or_default(),
        native,
    )?;
    Ok((redirect_uris, post_logout_redirect_uris))
}

/// The scopes the client may request; Hydra's default when absent.
fn scope(input: &OAuth2Client) -> Result<Scope, MetadataError> {
    match input.scope.as_deref() {
        None => Ok(Scope::parse("openid offline_access offline").expect("valid default")),
        Some(s) => Scope::parse(s).map_err(|e| err("scope", e.to_string())),
    }
}

/// The audiences the client may request: at most [`MAX_AUDIENCES`], none empty.
fn audience(input: &OAuth2Client) -> Result<Vec<String>, MetadataError> {
    let audience = input.audience.clone().unwrap_or_default();
    if audience.len() > MAX_AUDIENCES {
        return Err(err("audience", format!("at most {MAX_AUDIENCES} entries")));
    }
    for (i, a) in audience.iter().enumerate() {
        if a.is_empty() {
            return Err(err(format!("audience[{i}]"), "must not be empty"));
        }
        bounded(&format!("audience[{i}]"), a, MAX_URI_LEN)?;
    }
    Ok(audience)
}

/// The algorithms a client chose: for its assertions, its ID tokens and its userinfo.
struct SigningAlgs {
    token_endpoint_auth: Option<String>,
    id_token: Option<String>,
    /// Always `None`: userinfo answers in JSON.
    userinfo: Option<String>,
}

fn signing_algs(input: &OAuth2Client) -> Result<SigningAlgs, MetadataError> {
    let alg = |field: &str,
               v: Option<&String>,
               allowed: &[&str]|
     -> Result<Option<String>, MetadataError> {
        match v.map(String::as_str) {
            None | Some("") => Ok(None),
            Some(a) if allowed.contains(&a) => Ok(Some(a.to_owned())),
            Some(a) => Err(err(
                field,
                format!("{a:?} is not supported; use one of {}", allowed.join(", ")),
            )),
        }
    };
    let token_endpoint_auth = alg(
        "token_endpoint_auth_signing_alg",
        input.token_endpoint_auth_signing_alg.as_ref(),
        CLIENT_ASSERTION_ALGS,
    )?;
    let id_token = alg(
        "id_token_signed_response_alg",
        input.id_token_signed_response_alg.as_ref(),
        ID_TOKEN_ALGS,
    )?;
    let userinfo = match input.userinfo_signed_response_alg.as_deref() {
        None | Some("" | "none") => None,
        Some(a) => {
            return Err(err(
                "userinfo_signed_response_alg",
                format!("{a:?} is not supported; userinfo answers in JSON"),
            ));
        }
    };
    Ok(SigningAlgs {
        token_endpoint_auth,
        id_token,
        userinfo,
    })
}

/// The client's public keys, required for `private_key_jwt`.
fn jwks(
    input: &OAuth2Client,
    method: AuthMethod,
) -> Result<Option<serde_json::Value>, MetadataError> {
    let jwks = match &input.jwks {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(validate_jwks(v)?),
    };
    if method == AuthMethod::PrivateKeyJwt && jwks.is_none() {
        return Err(err(
            "jwks",
            "private_key_jwt needs the client's public keys in jwks",
        ));
    }
    Ok(jwks)
}

fn access_token_strategy(
    input: &OAuth2Client,
) -> Result<Option<AccessTokenStrategy>, MetadataError> {
    match input.access_token_strategy.as_deref() {
        None | Some("") => Ok(None),
        Some("opaque") => Ok(Some(AccessTokenStrategy::Opaque)),
        Some("jwt") => Ok(Some(AccessTokenStrategy::Jwt)),
        Some(s) => Err(err(
            "access_token_strategy",
            format!("{s:?} is not supported; use opaque or jwt"),
        )),
    }
}

/// Only public subject identifiers are supported (no pairwise ones).
fn check_subject_type(input: &OAuth2Client) -> Result<(), MetadataError> {
    match input.subject_type.as_deref() {
        None | Some("" | "public") => Ok(()),
        Some(s) => Err(err(
            "subject_type",
            format!("{s:?} is not supported; use public"),
        )),
    }
}

/// What a person sees of the client: its owner, its web pages and its contacts.
struct Presentation {
    owner: String,
    logo_uri: String,
    client_uri: String,
    policy_uri: String,
    tos_uri: String,
    contacts: Vec<String>,
}

impl Presentation {
    fn from_wire(input: &OAuth2Client) -> Result<Self, MetadataError> {
        let owner = input.owner.clone().unwrap_or_default();
        bounded("owner", &owner, MAX_NAME_LEN)?;
        let uri = |field: &str, v: &Option<String>| {
            let v = v.clone().unwrap_or_default();
            web_uri(field, &v).map(|()| v)
        };
        let logo_uri = uri("logo_uri", &input.logo_uri)?;
        let client_uri = uri("client_uri", &input.client_uri)?;
        let policy_uri = uri("policy_uri", &input.policy_uri)?;
        let tos_uri = uri("tos_uri", &input.tos_uri)?;
        let contacts = input.contacts.clone().unwrap_or_default();
        if contacts.len() > MAX_CONTACTS {
            return Err(err("contacts", format!("at most {MAX_CONTACTS} entries")));
        }
        for (i, c) in contacts.iter().enumerate() {
            bounded(&format!("contacts[{i}]"), c, MAX_NAME_LEN)?;
        }
        Ok(Self {
            owner,
            logo_uri,
            client_uri,
            policy_uri,
            tos_uri,
            contacts,
        })
    }
}

/// Free-form metadata: a JSON object of at most [`MAX_METADATA_BYTES`]; `{}` when absent.
fn metadata(input: &OAuth2Client) -> Result<serde_json::Value, MetadataError> {
    match &input.metadata {
        None | Some(serde_json::Value::Null) => {
            Ok(serde_json::Value::Object(serde_json::Map::new()))
        }
        Some(v @ serde_json::Value::Object(_)) => {
            if serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()) > MAX_METADATA_BYTES {
                return Err(err(
                    "metadata",
                    format!("must be at most {MAX_METADATA_BYTES} bytes"),
                ));
            }
            Ok(v.clone())
        }
        Some(_) => Err(err("metadata", "must be a JSON object")),
    }
}

fn uri_list(field: &str, uris: &[String], native: bool) -> Result<Vec<String>, MetadataError> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(err(field, format!("at most {MAX_REDIRECT_URIS} entries")));
    }
    let mut out: Vec<String> = Vec::with_capacity(uris.len());
    for (i, uri) in uris.iter().enumerate() {
        validate_redirect_uri(uri, native)
            .map_err(|e| err(format!("{field}[{i}]"), format!("{uri:?} {e}")))?;
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// A JWK Set of public keys: an object with a `keys` array of at most 20 keys, each with a `kty`
/// and no private members.
pub(crate) fn validate_jwks(v: &serde_json::Value) -> Result<serde_json::Value, MetadataError> {
    if serde_json::to_vec(v).map_or(usize::MAX, |b| b.len()) > MAX_JWKS_BYTES {
        return Err(err(
            "jwks",
            format!("must be at most {MAX_JWKS_BYTES} bytes"),
        ));
    }
    let keys = v
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| err("jwks", "must be a JWK Set: an object with a \"keys\" array"))?;
    if keys.is_empty() || keys.len() > MAX_JWKS_KEYS {
        return Err(err("jwks", format!("must hold 1 to {MAX_JWKS_KEYS} keys")));
    }
    for (i, k) in keys.iter().enumerate() {
        let obj = k
            .as_object()
            .ok_or_else(|| err(format!("jwks.keys[{i}]"), "must be an object"))?;
        if !obj.get("kty").is_some_and(serde_json::Value::is_string) {
            return Err(err(format!("jwks.keys[{i}]"), "must have a kty"));
        }
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            if obj.contains_key(private) {
                return Err(err(
                    format!("jwks.keys[{i}]"),
                    "must be a public key (it has private members)",
                ));
            }
        }
        if jsonwebtoken::jwk::Jwk::deserialize(k).is_err() {
            return Err(err(
                format!("jwks.keys[{i}]"),
                "is not a JWK that Latchkey can use",
            ));
        }
    }
    Ok(v.clone())
}

use serde::Deserialize as _;

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> Fixed {
        Fixed {
            id: "c1".into(),
            created_at: 1,
            updated_at: 1,
            status: ClientStatus::Active,
            owner_account_id: None,
            origin: ClientOrigin::Registered,
        }
    }

    fn parse(json: &str) -> Result<Client, MetadataError> {
        let wire: OAuth2Client = serde_json::from_str(json).expect("wire");
        client_from_wire(&wire, fixed())
    }

    #[test]
    fn defaults_follow_hydra() {
        let c = parse(r#"{"redirect_uris":["https://a.example/cb"]}"#).expect("valid");
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(c.response_types, vec!["code"]);
        assert_eq!(c.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.scope.to_string(), "openid offline_access offline");
    }

    #[test]
    fn inconsistent_metadata_is_refused_with_the_field() {
        let cases = [
            (r#"{"grant_types":["implicit"]}"#, "grant_types"),
            (r#"{"grant_types":["password"]}"#, "grant_types"),
            (
                r#"{"response_types":["token"],"redirect_uris":["https://a.example/cb"]}"#,
                "response_types",
            ),
            (
                r#"{"grant_types":["client_credentials"],"response_types":["code"]}"#,
                "response_types",
            ),
            (r#"{"grant_types":["refresh_token"]}"#, "grant_types"),
            (
                r#"{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}"#,
                "grant_types",
            ),
            (r#"{"grant_types":["authorization_code"]}"#, "redirect_uris"),
            (
                r#"{"redirect_uris":["https://a.example/cb#x"]}"#,
                "redirect_uris[0]",
            ),
            (
                r#"{"redirect_uris":["javascript:alert(1)"]}"#,
                "redirect_uris[0]",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
                "jwks",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_jwt"}"#,
                "token_endpoint_auth_method",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"client_secret":"mine"}"#,
                "client_secret",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"logo_uri":"http://a.example/logo.png"}"#,
                "logo_uri",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"metadata":[1]}"#,
                "metadata",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"scope":"a\"b"}"#,
                "scope",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"jwks_uri":"https://a.example/jwks"}"#,
                "jwks_uri",
            ),
            (
                r#"{"redirect_uris":["https://a.example/cb"],"jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}"#,
                "jwks.keys[0]",
            ),
        ];
        for (json, field) in cases {
            let e = parse(json).expect_err(json);
            assert_eq!(e.field, field, "{json}: {e}");
        }
    }

    #[test]
    fn native_apps_may_use_private_use_schemes() {
        let c = parse(r#"{"redirect_uris":["com.example.app:/cb","http://127.0.0.1/cb"],"token_endpoint_auth_method":"none"}"#)
            .expect("native");
        assert!(c.is_public());
        assert!(parse(r#"{"redirect_uris":["com.example.app:/cb"]}"#).is_err());
    }

    #[test]
    fn oversized_fields_are_refused() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let e = parse(&format!(
            r#"{{"redirect_uris":["https://a.example/cb"],"client_name":"{long}"}}"#
        ))
        .expect_err("long");
        assert_eq!(e.field, "client_name");
    }
}
