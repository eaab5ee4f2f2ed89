//! Client authentication with `private_key_jwt` assertions (RFC 7523): the header and the
//! unverified subject, then the verification against the client's registered keys.
//!
//! Two kinds of input. A first line `raw` makes the rest the assertion itself: it must never
//! authenticate (nobody but the client holds its key). Otherwise the input is a header line,
//! a claims line and a signer line (`client`, `stranger` or `hmac`): the target signs the
//! header and claims as given, so the fuzzer explores the claim checks behind the signature.
//!
//! Properties: an accepted assertion uses an allowed asymmetric algorithm, is signed by the
//! client's key, has `iss` = `sub` = the client id, an audience of this server, an `exp` within
//! the leeway before now and at most an hour ahead, and a `jti` of 1 to 256 bytes.
//! `client_secret_jwt` (HMAC) assertions are refused.

#![no_main]

use latchkey_core::client::CLIENT_ASSERTION_ALGS;
use latchkey_core::crypto::b64;
use latchkey_core::oauth::client_auth::{assertion_subject, check_assertion};
use latchkey_fuzz::{ISSUER, NOW, client_key, fields, jwt_client, sign_compact, stranger_key};
use libfuzzer_sys::fuzz_target;

fn audiences() -> Vec<String> {
    vec![format!("{ISSUER}/oauth2/token"), ISSUER.to_owned()]
}

/// A `client_secret_jwt` assertion: HMAC-SHA256 under a secret the client might share.
fn hmac_sign(header: &[u8], payload: &[u8]) -> String {
    let mut jws = format!("{}.{}", b64(header), b64(payload));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"a-client-secret");
    let tag = aws_lc_rs::hmac::sign(&key, jws.as_bytes());
    jws.push('.');
    jws.push_str(&b64(tag.as_ref()));
    jws
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 4);
    let client = jwt_client();
    if f.first().map(String::as_str) == Some("raw") {
        let assertion = f[1..].join("\n");
        if let Ok((header, subject)) = assertion_subject(&assertion, None) {
            assert!(!subject.is_empty() && subject.len() <= 255);
            assert!(CLIENT_ASSERTION_ALGS.contains(&format!("{:?}", header.alg).as_str()));
            assert!(
                check_assertion(&assertion, &header, &client, &audiences(), NOW).is_err(),
                "an assertion nobody signed authenticated the client"
            );
        }
        return;
    }
    let [header, claims, signer] = [0, 1, 2].map(|i| f.get(i).cloned().unwrap_or_default());
    let assertion = match signer.as_str() {
        "stranger" => sign_compact(stranger_key(), header.as_bytes(), claims.as_bytes()),
        "hmac" => hmac_sign(header.as_bytes(), claims.as_bytes()),
        _ => sign_compact(client_key(), header.as_bytes(), claims.as_bytes()),
    };
    let body_id = if signer == "body-id" {
        Some("jwt-app")
    } else {
        None
    };
    let Ok((header_read, subject)) = assertion_subject(&assertion, body_id) else {
        return;
    };
    assert!(body_id.is_none_or(|b| b == subject));
    let Ok(accepted) = check_assertion(&assertion, &header_read, &client, &audiences(), NOW) else {
        return;
    };
    assert!(
        signer != "stranger" && signer != "hmac",
        "signed by {signer} yet accepted"
    );
    assert_eq!(format!("{:?}", header_read.alg), "ES256");
    assert_eq!(accepted.iss, client.id);
    assert_eq!(accepted.sub, client.id);
    assert!(
        accepted.exp > NOW - 31 && accepted.exp <= NOW + 3600,
        "exp {}",
        accepted.exp
    );
    assert!(
        accepted
            .jti
            .as_ref()
            .is_some_and(|j| !j.is_empty() && j.len() <= 256)
    );
    let claims: serde_json::Value = serde_json::from_str(&claims).expect("accepted claims parse");
    let aud_ok = match &claims["aud"] {
        serde_json::Value::String(a) => audiences().contains(a),
        serde_json::Value::Array(list) => list.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| audiences().iter().any(|x| x == a))
        }),
        _ => false,
    };
    assert!(aud_ok, "audience {:?} accepted", claims["aud"]);
});
