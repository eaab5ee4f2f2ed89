//! Opaque tokens (`lk_at_`, `lk_rt_`, `lk_ac_`, `lk_dc_`): parsing and MAC verification of what
//! a client presents.
//!
//! Three kinds of input, by the first byte: any string presented as each kind of token; a token
//! minted from the input's bytes and then changed at one position; a minted token checked
//! against the other kinds and another system secret.
//!
//! Properties: a token that verifies re-encodes identically (one token, one string) and hashes
//! to the hash of its body, after the hex of the mint time the body starts with (a token minted
//! before the mint time was added: the hash alone); a changed token never verifies; a token of one kind or
//! under another secret never verifies.

#![no_main]

use latchkey_core::crypto::{OpaqueToken, TokenKind, b64, sha256, unb64};
use latchkey_fuzz::{BytesEntropy, other_secrets, secrets};
use libfuzzer_sys::fuzz_target;

const KINDS: [TokenKind; 4] = [
    TokenKind::AccessToken,
    TokenKind::RefreshToken,
    TokenKind::AuthorizationCode,
    TokenKind::DeviceCode,
];

fn check_presented(token: &str) {
    for kind in KINDS {
        let Ok(hash) = OpaqueToken::verify(kind, token, secrets()) else {
            continue;
        };
        assert_eq!(TokenKind::of(token), Some(kind));
        let rest = &token[kind.prefix().len()..];
        let (body, tag) = rest.split_once('.').expect("a verified token has a dot");
        let body = unb64(body).expect("the body decodes");
        let tag = unb64(tag).expect("tag decodes");
        assert_eq!(
            format!("{}{}.{}", kind.prefix(), b64(&body), b64(&tag)),
            token,
            "a verified token re-encodes differently"
        );
        let time: String = match body.len() {
            38 => body[..6].iter().map(|b| format!("{b:02x}")).collect(),
            32 => String::new(),
            n => panic!("a body of {n} bytes verified"),
        };
        assert_eq!(hash.as_str(), format!("{time}{}", b64(&sha256(&body))));
        assert!(OpaqueToken::verify(kind, token, other_secrets()).is_err());
        for other in KINDS.into_iter().filter(|k| *k != kind) {
            assert!(OpaqueToken::verify(other, token, secrets()).is_err());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Mint times from before 1970 (clamped to 0) to past 2080.
    let millis = (i64::from(mode) - 64) * 2_345_678_901;
    match mode % 3 {
        0 => check_presented(&String::from_utf8_lossy(rest)),
        1 => {
            // Mint from the first 32 bytes, then put byte `b` at position `p`.
            let (seed, edit) = rest.split_at(rest.len().min(32));
            let kind = KINDS[usize::from(mode / 3) % 4];
            let token = OpaqueToken::mint(kind, millis, &BytesEntropy(seed.to_vec()), secrets());
            check_presented(&token.value);
            assert_eq!(
                OpaqueToken::verify(kind, &token.value, secrets()).as_ref(),
                Ok(&token.hash)
            );
            if let [p, b, ..] = edit {
                let mut bytes = token.value.clone().into_bytes();
                let i = usize::from(*p) % bytes.len();
                bytes[i] = *b;
                let changed = String::from_utf8_lossy(&bytes).into_owned();
                if changed != token.value {
                    assert!(
                        OpaqueToken::verify(kind, &changed, secrets()).is_err(),
                        "{changed} verifies as well as {}",
                        token.value
                    );
                }
                check_presented(&changed);
            }
        }
        _ => {
            let kind = KINDS[usize::from(mode / 3) % 4];
            let token = OpaqueToken::mint(kind, millis, &BytesEntropy(rest.to_vec()), secrets());
            // Appended or truncated text never verifies.
            let longer = format!("{}{}", token.value, String::from_utf8_lossy(rest));
            if longer != token.value {
                assert!(OpaqueToken::verify(kind, &longer, secrets()).is_err());
            }
            let cut = &token.value[..token.value.len() - 1 - usize::from(mode) % 20];
            assert!(OpaqueToken::verify(kind, cut, secrets()).is_err());
        }
    }
});
