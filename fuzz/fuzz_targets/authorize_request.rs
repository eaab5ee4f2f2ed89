//! The authorization request: a query string, parsed into parameters and checked against a
//! known client (`/oauth2/auth` after the client lookup).
//!
//! Properties: parameters round-trip through their encoding and duplicates are seen; a request
//! that passes names a registered redirect URI that is itself a valid one, requests only what
//! the client may, carries a well-formed S256 challenge when PKCE is required; an error is
//! redirected only to a validated redirect URI, with `iss` exactly once and no fragment.

#![no_main]

use latchkey_core::client::{redirect_uri_matches, validate_redirect_uri};
use latchkey_core::oauth::authorize::{AuthorizeOutcome, check_request, choose_redirect_uri};
use latchkey_core::oauth::params::{MAX_PARAMS, MAX_VALUE_LEN, ParamError, Params};
use latchkey_core::oauth::pkce;
use latchkey_fuzz::{ISSUER, native_client, settings, web_client};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let params = match Params::parse(&query) {
        Ok(p) => p,
        Err(ParamError::TooMany) => {
            assert!(url::form_urlencoded::parse(query.as_bytes()).count() > MAX_PARAMS);
            return;
        }
        Err(_) => return,
    };
    check_params(&params);
    for client in [web_client(), native_client()] {
        for enforced in [false, true] {
            let settings = settings(enforced);
            match check_request(&settings, &params, &client) {
                Ok(request) => {
                    assert!(params.first_duplicate().is_none(), "duplicates accepted");
                    assert_eq!(params.get("response_type"), Ok(Some("code")));
                    assert!(
                        client
                            .redirect_uris
                            .iter()
                            .any(|r| redirect_uri_matches(r, &request.redirect_uri)),
                        "unregistered redirect URI accepted: {:?}",
                        request.redirect_uri
                    );
                    validate_redirect_uri(&request.redirect_uri, client.is_public())
                        .unwrap_or_else(|e| {
                            panic!(
                                "accepted redirect URI {:?} is invalid: {e}",
                                request.redirect_uri
                            )
                        });
                    assert!(request.scope.is_subset_of(&client.scope));
                    assert!(request.audience.iter().all(|a| client.audience.contains(a)));
                    if let Some(c) = &request.code_challenge {
                        assert!(pkce::valid_challenge(c));
                    } else {
                        assert!(
                            !enforced && !client.is_public(),
                            "PKCE required but missing"
                        );
                    }
                    assert!(request.state.as_ref().is_none_or(|s| s.len() <= 1024));
                    let prompt_none = request.prompt.iter().any(|p| p == "none");
                    assert!(!prompt_none || request.prompt.len() == 1);
                    // The way back re-parses to the same parameters, less the verifiers.
                    let kept = Params::from_pairs(
                        params
                            .pairs()
                            .iter()
                            .cloned()
                            .filter(|(k, _)| k != "login_verifier" && k != "consent_verifier"),
                    );
                    assert_eq!(Params::parse(&request.query), Ok(kept));
                }
                Err(AuthorizeOutcome::Redirect { location, .. }) => {
                    let (redirect_uri, _) = choose_redirect_uri(&client, &params)
                        .unwrap_or_else(|_| panic!("redirected before the redirect URI was valid"));
                    let url = url::Url::parse(&location).expect("the location parses");
                    let target = url::Url::parse(&redirect_uri).expect("the redirect URI parses");
                    // The same place (the parser normalises e.g. a port's leading zeros).
                    assert_eq!(
                        (url.scheme(), url.host(), url.port(), url.path()),
                        (target.scheme(), target.host(), target.port(), target.path())
                    );
                    assert!(url.fragment().is_none());
                    let count = |name: &str| url.query_pairs().filter(|(k, _)| k == name).count();
                    let iss: Vec<_> = url.query_pairs().filter(|(k, _)| k == "iss").collect();
                    assert_eq!(iss.len(), 1, "iss must appear exactly once");
                    assert_eq!(iss[0].1, ISSUER);
                    assert_eq!(count("error"), 1);
                    assert!(count("state") <= 1);
                    assert_eq!(count("code"), 0);
                }
                Err(AuthorizeOutcome::ErrorPage(_)) => {}
            }
        }
    }
});

fn check_params(params: &Params) {
    let pairs = params.pairs();
    assert!(pairs.len() <= MAX_PARAMS);
    assert!(
        pairs
            .iter()
            .all(|(k, v)| k.len() <= 128 && v.len() <= MAX_VALUE_LEN)
    );
    // Re-encoding and parsing again gives the same parameters.
    assert_eq!(
        Params::parse(&params.encode_without(&[])).as_ref(),
        Ok(params)
    );
    let mut any_duplicate = false;
    for (name, _) in pairs {
        let n = pairs.iter().filter(|(k, _)| k == name).count();
        if n > 1 {
            any_duplicate = true;
            assert!(matches!(params.get(name), Err(ParamError::Duplicate(_))));
        } else {
            assert!(params.get(name).is_ok());
        }
    }
    assert_eq!(params.first_duplicate().is_some(), any_duplicate);
}
