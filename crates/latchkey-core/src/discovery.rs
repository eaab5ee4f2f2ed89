//! The discovery document, generated from the routes and the running configuration. It lists
//! only what the server implements.

use latchkey_types::discovery::ProviderMetadata;
use latchkey_types::routes::{join, public};

use crate::client::AuthMethod;
use crate::keys::SigningAlg;
use crate::oauth::EngineSettings;

/// Builds the discovery document for the engine's settings, given the algorithms that have an
/// active key.
pub fn provider_metadata(
    settings: &EngineSettings,
    signing_algs: &[SigningAlg],
) -> ProviderMetadata {
    let issuer = settings.issuer.as_str();
    let url = |path| join(issuer, path);
    let algs: Vec<String> = signing_algs.iter().map(|a| a.as_str().to_owned()).collect();
    ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: url(public::AUTHORIZE),
        token_endpoint: url(public::TOKEN),
        jwks_uri: url(public::JWKS),
        userinfo_endpoint: Some(url(public::USERINFO)),
        revocation_endpoint: Some(url(public::REVOKE)),
        introspection_endpoint: Some(url(public::INTROSPECT)),
        introspection_endpoint_auth_methods_supported: AuthMethod::ALL
            .iter()
            .filter(|m| **m != AuthMethod::None)
            .map(|m| m.as_str().to_owned())
            .collect(),
        end_session_endpoint: None,
        scopes_supported: vec![
            "openid".into(),
            "offline_access".into(),
            "profile".into(),
            "email".into(),
        ],
        response_types_supported: vec!["code".into()],
        response_modes_supported: vec!["query".into()],
        grant_types_supported: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
            crate::client::GrantType::DeviceCode.as_str().into(),
            crate::client::GrantType::TokenExchange.as_str().into(),
            crate::client::GrantType::JwtBearer.as_str().into(),
        ],
        device_authorization_endpoint: Some(url(public::DEVICE_AUTHORIZATION)),
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: algs.clone(),
        userinfo_signing_alg_values_supported: vec![],
        token_endpoint_auth_methods_supported: AuthMethod::ALL
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        token_endpoint_auth_signing_alg_values_supported: crate::client::CLIENT_ASSERTION_ALGS
            .iter()
            .map(|a| (*a).to_owned())
            .collect(),
        revocation_endpoint_auth_methods_supported: AuthMethod::ALL
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        code_challenge_methods_supported: vec!["S256".into()],
        claims_supported: [
            "sub",
            "iss",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "at_hash",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
        prompt_values_supported: ["none", "login", "consent", "select_account"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        registration_endpoint: settings.registration.then(|| url(public::REGISTER)),
        client_id_metadata_document_supported: settings.metadata_documents,
    }
}
