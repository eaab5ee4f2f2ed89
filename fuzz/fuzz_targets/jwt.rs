//! JWTs this server signed (JWT access tokens, `typ: at+jwt`), as presented at introspection
//! and revocation: header parsing and verification against the key ring.
//!
//! A first line `raw` makes the rest the token: it must never verify. Otherwise the input is a
//! header line, a claims line and a signer line (`ring` for the ring's ES256 key, `eddsa` for
//! its EdDSA key, `stranger` for a key outside the ring) and an optional edit (two bytes:
//! position, byte) applied to the signed token.
//!
//! Properties: an accepted token has the `typ` asked for, a `kid` of the ring and that key's
//! algorithm, an `iss` and an `exp` after now; a token signed outside the ring is refused;
//! a token that verifies re-encodes identically, so a changed token never verifies.

#![no_main]

use std::sync::OnceLock;

use latchkey_core::crypto::{b64, unb64};
use latchkey_core::keys::{KeyRing, KeyState, SigningAlg, SigningKey};
use latchkey_fuzz::{NOW, fields, sign_compact};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    ring: KeyRing,
    es256: SigningKey,
    eddsa: SigningKey,
    stranger: SigningKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = |alg, kid: &str| {
            let (_, der) = SigningKey::generate(alg, kid.into()).expect("key generates");
            SigningKey::from_pkcs8(alg, kid.into(), &der).expect("key loads")
        };
        let mut ring = KeyRing::default();
        ring.add(key(SigningAlg::ES256, "es256-1"), KeyState::Active)
            .expect("adds");
        ring.add(key(SigningAlg::EdDSA, "eddsa-1"), KeyState::Retired)
            .expect("adds");
        Fixture {
            ring,
            es256: key(SigningAlg::ES256, "es256-1"),
            eddsa: key(SigningAlg::EdDSA, "eddsa-1"),
            stranger: key(SigningAlg::ES256, "es256-1"),
        }
    })
}

/// Checks an accepted token; true when it verified.
fn check(token: &str) -> bool {
    let Some(claims) = fixture()
        .ring
        .verify::<serde_json::Value>(token, "at+jwt", NOW)
    else {
        return false;
    };
    let header = jsonwebtoken::decode_header(token).expect("an accepted header parses");
    assert!(header.typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")));
    match header.kid.as_deref() {
        Some("es256-1") => assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256),
        Some("eddsa-1") => assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA),
        other => panic!("kid {other:?} accepted"),
    }
    assert!(claims.get("iss").is_some());
    assert!(claims["exp"].as_i64().is_some_and(|exp| exp > NOW));
    // One token, one string: every segment is canonical base64url.
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3);
    for s in segments {
        let decoded = unb64(s).expect("segment decodes");
        assert_eq!(b64(&decoded), s, "non-canonical segment accepted");
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 5);
    if f.first().map(String::as_str) == Some("raw") {
        let token = f[1..].join("\n");
        let _ = jsonwebtoken::decode_header(&token);
        assert!(!check(&token), "a token nobody signed verified");
        return;
    }
    let [header, claims, signer, edit] =
        [0, 1, 2, 3].map(|i| f.get(i).cloned().unwrap_or_default());
    let fx = fixture();
    let key = match signer.as_str() {
        "stranger" => &fx.stranger,
        "eddsa" => &fx.eddsa,
        _ => &fx.es256,
    };
    let token = sign_compact(key, header.as_bytes(), claims.as_bytes());
    let verified = check(&token);
    if signer == "stranger" {
        assert!(!verified, "a token signed outside the ring verified");
    }
    if let [p, b, ..] = edit.as_bytes() {
        let mut bytes = token.clone().into_bytes();
        let i = usize::from(*p) % bytes.len();
        bytes[i] = *b;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        if changed != token {
            assert!(!check(&changed), "a changed token verified: {changed}");
        }
    }
});
