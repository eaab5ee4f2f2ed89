//! What the fuzz targets share: fixed clients, settings, secrets and keys, and the input
//! format of the structured targets (fields separated by newlines, so seeds are hand-written).

use std::sync::OnceLock;

use latchkey_core::client::{
    AuthMethod, Client, ClientOrigin, ClientStatus, GrantType, Lifespan, LogoutChannels,
};
use latchkey_core::config::{AccessTokenStrategy, Config};
use latchkey_core::crypto::SystemSecrets;
use latchkey_core::entropy::Entropy;
use latchkey_core::keys::{SigningAlg, SigningKey};
use latchkey_core::oauth::EngineSettings;
use latchkey_types::Scope;

/// The clock of every target.
pub const NOW: i64 = 1_700_000_000;
pub const ISSUER: &str = "https://auth.example.com";

/// The first `n - 1` newline-separated fields of `data` and the rest, as text.
pub fn fields(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    text.splitn(n, '\n').map(str::to_owned).collect()
}

pub fn settings(pkce_enforced: bool) -> EngineSettings {
    let mut settings = EngineSettings::from_config(&Config::default(), ISSUER);
    settings.auth_code_ttl = 60;
    settings.flow_ttl = 600;
    settings.auth_session_ttl = 86_400;
    settings.refresh_token_ttl = 86_400;
    settings.pkce_enforced = pkce_enforced;
    settings.pkce_enforced_for_public_clients = true;
    settings.access_token_strategy = AccessTokenStrategy::Opaque;
    settings.access_token_alg = SigningAlg::ES256;
    settings.refresh_grace_period = 0;
    settings.refresh_grace_reuse_count = 0;
    settings
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).expect("fixed scope parses")
}

/// A confidential web app with a https and a loopback redirect URI.
pub fn web_client() -> Client {
    Client {
        id: "web-app".into(),
        name: "Web app".into(),
        redirect_uris: vec![
            "https://app.example.com/cb".into(),
            "http://127.0.0.1/cb".into(),
            "http://[::1]:8080/native".into(),
        ],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        response_types: vec!["code".into()],
        scope: scope("openid profile email offline_access"),
        audience: vec!["https://api.example.com".into()],
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        token_endpoint_auth_signing_alg: None,
        id_token_signed_response_alg: None,
        userinfo_signed_response_alg: None,
        jwks: None,
        access_token_strategy: None,
        skip_consent: false,
        skip_logout_consent: false,
        owner: String::new(),
        logo_uri: String::new(),
        client_uri: String::new(),
        policy_uri: String::new(),
        tos_uri: String::new(),
        contacts: vec![],
        metadata: serde_json::Value::Null,
        owner_account_id: None,
        status: ClientStatus::Active,
        origin: ClientOrigin::Registered,
        device_lifespan: Lifespan::default(),
        logout: LogoutChannels::default(),
        created_at: 0,
        updated_at: 0,
    }
}

/// A native (public) app with one private-use redirect URI.
pub fn native_client() -> Client {
    Client {
        id: "native-app".into(),
        redirect_uris: vec!["com.example.app:/oauth2redirect".into()],
        token_endpoint_auth_method: AuthMethod::None,
        scope: scope("openid offline_access"),
        audience: vec![],
        ..web_client()
    }
}

/// The key a `private_key_jwt` client signs its assertions with (ES256), generated once.
pub fn client_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::generate(SigningAlg::ES256, "client-key-1".into())
            .expect("key generates")
            .0
    })
}

/// Another key, registered nowhere.
pub fn stranger_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::generate(SigningAlg::ES256, "client-key-1".into())
            .expect("key generates")
            .0
    })
}

/// A `private_key_jwt` client whose key set holds [`client_key`].
pub fn jwt_client() -> Client {
    let jwk = serde_json::to_value(client_key().public_jwk()).expect("jwk serializes");
    Client {
        id: "jwt-app".into(),
        token_endpoint_auth_method: AuthMethod::PrivateKeyJwt,
        grant_types: vec![GrantType::ClientCredentials],
        jwks: Some(serde_json::json!({ "keys": [jwk] })),
        ..web_client()
    }
}

pub fn secrets() -> &'static SystemSecrets {
    static S: OnceLock<SystemSecrets> = OnceLock::new();
    S.get_or_init(|| SystemSecrets::new(&["fuzzing-system-secret-long-enough-0001"]))
}

pub fn other_secrets() -> &'static SystemSecrets {
    static S: OnceLock<SystemSecrets> = OnceLock::new();
    S.get_or_init(|| SystemSecrets::new(&["another-system-secret-long-enough-0002"]))
}

/// Entropy that hands out the given bytes, cycled (zeros when empty).
#[derive(Debug)]
pub struct BytesEntropy(pub Vec<u8>);

impl Entropy for BytesEntropy {
    fn fill(&self, dest: &mut [u8]) {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = if self.0.is_empty() {
                0
            } else {
                self.0[i % self.0.len()]
            };
        }
    }
}

/// Signs `header.payload` (both base64url-encoded here from the given bytes) with `key`, as a
/// compact JWS.
pub fn sign_compact(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    use latchkey_core::crypto::b64;
    let mut jws = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(jws.as_bytes());
    jws.push('.');
    jws.push_str(&b64(&signature));
    jws
}
