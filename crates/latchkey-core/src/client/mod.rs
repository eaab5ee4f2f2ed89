//! OAuth clients: the domain model, its validation, and the registry service behind the
//! Hydra-compatible admin API.

pub mod cache;
pub mod metadata_document;
mod redirect;
mod service;
mod validate;
mod wire;

pub use metadata_document::{
    CimdError, MetadataDocument, MetadataDocumentFetcher, looks_like_metadata_url, parse_document,
    parse_document_url,
};
pub use redirect::{
    MAX_REDIRECT_URI_LEN, RedirectUriError, redirect_uri_matches, validate_redirect_uri,
};
pub use service::{
    ClientError, ClientPage, ClientService, CreatedClient, hash_client_secret, verify_client_secret,
};
pub use validate::{CLIENT_ASSERTION_ALGS, ID_TOKEN_ALGS, MetadataError};
pub(crate) use validate::{Fixed, client_from_wire};

use latchkey_types::Scope;
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::config::AccessTokenStrategy;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const ALL: [Self; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// True for methods that use a client secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// A grant type a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8628.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// RFC 8693.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// RFC 7523 §2.1.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    JwtBearer,
}

impl GrantType {
    pub const ALL: [Self; 6] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::DeviceCode,
        Self::TokenExchange,
        Self::JwtBearer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// Whether a client may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    /// Suspended by the operator: its tokens stop working and it cannot start new flows.
    Suspended,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// Where a client came from: registered by the operator or a developer (the admin API, the
/// developer console), by itself (RFC 7591 dynamic registration), or named by the URL of its
/// client ID metadata document. The last two vouch for nothing: they are shown as unverified
/// and get only the scopes any unverified app may have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientOrigin {
    #[default]
    Registered,
    Dynamic,
    MetadataDocument,
}

impl ClientOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Registered, Self::Dynamic, Self::MetadataDocument]
            .into_iter()
            .find(|o| o.as_str() == s)
    }

    /// The client registered itself, or is named by its document: nobody vouches for it.
    pub fn is_external(self) -> bool {
        self != Self::Registered
    }
}

/// An OAuth client (an "app" on the platform).
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    /// The scopes the client may request.
    pub scope: Scope,
    /// The audiences the client may request for its access tokens.
    pub audience: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub userinfo_signed_response_alg: Option<String>,
    /// The client's public keys, for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// `None`: the server default.
    pub access_token_strategy: Option<AccessTokenStrategy>,
    pub skip_consent: bool,
    pub skip_logout_consent: bool,
    pub owner: String,
    pub logo_uri: String,
    pub client_uri: String,
    pub policy_uri: String,
    pub tos_uri: String,
    pub contacts: Vec<String>,
    pub metadata: serde_json::Value,
    /// The account that owns the app, for apps made in the developer console.
    pub owner_account_id: Option<String>,
    pub status: ClientStatus,
    pub origin: ClientOrigin,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl Client {
    /// A public client has no credentials (`token_endpoint_auth_method: none`).
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::None
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn is_active(&self) -> bool {
        self.status == ClientStatus::Active
    }
}

/// A stored client secret: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecretRecord {
    pub id: String,
    pub client_id: String,
    /// `sha256$<base64url>` for generated secrets.
    pub secret_hash: String,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
}

/// Filters of the client list (Hydra's `client_name` and `owner`).
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub client_name: Option<String>,
    pub owner: Option<String>,
    pub owner_account_id: Option<String>,
}

/// A registered, active client `id` of the wire JSON `json`, for this crate's tests.
#[cfg(test)]
pub(crate) fn test_client(id: &str, json: &serde_json::Value) -> Client {
    let wire: latchkey_types::client::OAuth2Client =
        serde_json::from_value(json.clone()).expect("wire");
    client_from_wire(
        &wire,
        Fixed {
            id: id.into(),
            created_at: 0,
            updated_at: 0,
            status: ClientStatus::Active,
            owner_account_id: None,
            origin: ClientOrigin::Registered,
        },
    )
    .expect("client")
}
