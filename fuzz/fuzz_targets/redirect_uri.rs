//! Redirect URI validation at registration and matching at the authorization endpoint
//! (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1). Input: a registered URI on the first line,
//! a requested one on the second; a third line `native` validates as a native (public) app.
//!
//! Properties: an accepted URI is https with a host, http on a loopback host, or (native apps
//! only) a private-use scheme with a dot; never a dangerous scheme, a fragment, user info,
//! whitespace or a wildcard. Matching is reflexive and symmetric, exact except for the port of
//! a loopback IP literal; a requested URI that matches a valid registered one is itself valid.

#![no_main]

use latchkey_core::client::{MAX_REDIRECT_URI_LEN, redirect_uri_matches, validate_redirect_uri};
use latchkey_fuzz::fields;
use libfuzzer_sys::fuzz_target;
use url::Host;

fn check_accepted(raw: &str, native: bool) -> bool {
    let Ok(url) = validate_redirect_uri(raw, native) else {
        return false;
    };
    assert!(raw.len() <= MAX_REDIRECT_URI_LEN);
    assert!(!raw.contains('#') && !raw.contains('*'));
    assert!(!raw.chars().any(|c| c.is_whitespace() || c.is_control()));
    assert!(url.fragment().is_none(), "{raw}: fragment");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw}: userinfo"
    );
    match url.scheme() {
        "https" => assert!(
            url.host_str().is_some_and(|h| !h.is_empty()),
            "{raw}: no host"
        ),
        "http" => assert!(
            match url.host() {
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            },
            "{raw}: plain http off loopback"
        ),
        scheme => {
            assert!(native, "{raw}: private-use scheme for a web app");
            assert!(
                scheme.contains('.'),
                "{raw}: private-use scheme without a dot"
            );
            assert!(
                ![
                    "javascript",
                    "data",
                    "file",
                    "vbscript",
                    "blob",
                    "about",
                    "filesystem",
                    "view-source",
                    "ftp",
                    "ws",
                    "wss",
                ]
                .contains(&scheme),
                "{raw}: dangerous scheme"
            );
        }
    }
    // Whatever a web app may register, a native app may too.
    if !native {
        assert!(validate_redirect_uri(raw, true).is_ok());
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 3);
    let registered = f.first().cloned().unwrap_or_default();
    let requested = f.get(1).cloned().unwrap_or_default();
    let native = f.get(2).is_some_and(|n| n == "native");
    let registered_ok = check_accepted(&registered, native);
    check_accepted(&requested, native);

    assert!(redirect_uri_matches(&registered, &registered));
    let matches = redirect_uri_matches(&registered, &requested);
    assert_eq!(
        matches,
        redirect_uri_matches(&requested, &registered),
        "not symmetric"
    );
    if matches && registered != requested {
        // Only the port of an http loopback IP literal may differ.
        for uri in [&registered, &requested] {
            assert!(uri.starts_with("http://"), "{uri} matched inexactly");
        }
    }
    if matches && registered_ok {
        validate_redirect_uri(&requested, native).unwrap_or_else(|e| {
            panic!("{requested:?} matches the valid {registered:?} but is invalid: {e}")
        });
    }
});
