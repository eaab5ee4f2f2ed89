//! The token request: an `Authorization` header (first line; empty for none) and a form body
//! (the rest), read into the grant and the client's credentials, as `/oauth2/token` does
//! before any lookup.
//!
//! Properties: a parameter given twice is always refused; the grant named is the one read;
//! exactly one authentication method is accepted and a Basic client id agrees with the body;
//! PKCE verification accepts only a verifier that hashes to the challenge.

#![no_main]

use latchkey_core::client::{AuthMethod, GrantType};
use latchkey_core::crypto::{OpaqueToken, TokenKind, b64, sha256};
use latchkey_core::oauth::client_auth::{Presented, presented_credentials};
use latchkey_core::oauth::error::TokenError;
use latchkey_core::oauth::params::Params;
use latchkey_core::oauth::pkce;
use latchkey_core::oauth::token::requested_grant;
use latchkey_fuzz::{fields, secrets};
use latchkey_types::Scope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let authorization = f.first().map(String::as_str).filter(|h| !h.is_empty());
    let Some(body) = f.get(1) else { return };
    let Ok(params) = Params::parse(body) else {
        return;
    };
    let grant = requested_grant(&params);
    if params.first_duplicate().is_some() {
        assert!(
            matches!(grant, Err(TokenError::ParameterRepeated { .. })),
            "duplicate accepted"
        );
        return;
    }
    if let Ok(g) = grant {
        assert_eq!(params.get("grant_type"), Ok(Some(g.as_str())));
    }
    let has = |name: &str| params.get(name).ok().flatten().is_some();
    match presented_credentials(authorization, &params) {
        Ok(Presented::Secret {
            client_id,
            method,
            secret,
        }) => match method {
            AuthMethod::ClientSecretBasic => {
                assert!(authorization.is_some() && secret.is_some());
                assert!(!has("client_secret") && !has("client_assertion"));
                if let Ok(Some(body_id)) = params.get("client_id") {
                    assert_eq!(body_id, client_id);
                }
            }
            AuthMethod::ClientSecretPost => {
                assert!(authorization.is_none() && !has("client_assertion"));
                assert_eq!(params.get("client_id"), Ok(Some(client_id.as_str())));
                assert_eq!(
                    secret.as_ref().map(|s| s.expose()),
                    params.get("client_secret").ok().flatten()
                );
            }
            AuthMethod::None => {
                assert!(authorization.is_none() && secret.is_none());
                assert!(!has("client_secret") && !has("client_assertion"));
                assert_eq!(params.get("client_id"), Ok(Some(client_id.as_str())));
            }
            AuthMethod::PrivateKeyJwt => panic!("a secret presented as an assertion"),
        },
        Ok(Presented::Assertion {
            assertion,
            client_id,
        }) => {
            assert!(authorization.is_none() && !has("client_secret"));
            assert_eq!(params.get("client_assertion"), Ok(Some(assertion)));
            assert_eq!(
                params.get("client_assertion_type"),
                Ok(Some(
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                ))
            );
            assert_eq!(params.get("client_id").ok().flatten(), client_id);
        }
        Err(_) => {}
    }
    match grant {
        Ok(GrantType::AuthorizationCode) => {
            if let Ok(Some(code)) = params.get("code") {
                let _ = OpaqueToken::verify(TokenKind::AuthorizationCode, code, secrets());
            }
            if let (Ok(Some(v)), Ok(Some(c))) =
                (params.get("code_verifier"), params.get("code_challenge"))
                && pkce::verify_s256(v, c)
            {
                assert!(pkce::valid_verifier(v));
                assert_eq!(b64(&sha256(v.as_bytes())), c);
            }
        }
        Ok(GrantType::RefreshToken) => {
            if let Ok(Some(token)) = params.get("refresh_token") {
                let _ = OpaqueToken::verify(TokenKind::RefreshToken, token, secrets());
            }
        }
        Ok(GrantType::DeviceCode) => {
            if let Ok(Some(code)) = params.get("device_code") {
                let _ = OpaqueToken::verify(TokenKind::DeviceCode, code, secrets());
            }
        }
        Ok(GrantType::ClientCredentials | GrantType::TokenExchange | GrantType::JwtBearer)
        | Err(_) => {}
    }
    if let Ok(Some(s)) = params.get("scope")
        && let Ok(scope) = Scope::parse(s)
    {
        // A parsed scope prints as a scope that parses to itself.
        assert_eq!(Scope::parse(&scope.to_string()).as_ref(), Ok(&scope));
    }
});
