//! Redirect URI attacks (RFC 9700 §4.1 insufficient redirect URI validation, §4.11 open
//! redirection): exact matching, refused registrations, and no redirect before validation.

use axum::http::{Method, StatusCode};
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use super::{authorize, before, shown_not_redirected, unchanged};
use crate::browser::REDIRECT;
use crate::support::{TestApp, engine_test};

/// Registers a client with `uris` through the admin API: refused with `invalid_redirect_uri`
/// and nothing stored.
async fn registration_refused(app: &TestApp, uris: &[&str], auth_method: &str) {
    let snapshot = before(app).await;
    for uri in uris {
        let res = app
            .admin(
                Method::POST,
                "/admin/clients",
                Some(json!({"redirect_uris": [uri], "token_endpoint_auth_method": auth_method})),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{uri}: {}", res.text());
        assert_eq!(res.json()["error"], "invalid_redirect_uri", "{uri}");
    }
    unchanged(app, &snapshot).await;
}

engine_test!(open_redirector_an_unregistered_redirect_uri_is_never_followed);
async fn open_redirector_an_unregistered_redirect_uri_is_never_followed(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    for evil in ["https://evil.example/callback", "https://evil.example/"] {
        shown_not_redirected(&app, &authorize(&c.id, &[("redirect_uri", evil)])).await;
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(redirect_uri_path_manipulation_is_not_a_match);
async fn redirect_uri_path_manipulation_is_not_a_match(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    for uri in [
        "https://app.example.test/callback/",
        "https://app.example.test/callback/../evil",
        "https://app.example.test/callbackx",
        "https://app.example.test/Callback",
        "https://app.example.test/callback%2F..%2Fevil",
    ] {
        shown_not_redirected(&app, &authorize(&c.id, &[("redirect_uri", uri)])).await;
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(redirect_uri_with_an_added_query_or_port_is_not_a_match);
async fn redirect_uri_with_an_added_query_or_port_is_not_a_match(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    for uri in [
        "https://app.example.test/callback?next=https://evil.example",
        "https://app.example.test:8443/callback",
        "https://app.example.test:443/callback",
    ] {
        shown_not_redirected(&app, &authorize(&c.id, &[("redirect_uri", uri)])).await;
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(redirect_uri_userinfo_and_host_confusion_is_not_a_match);
async fn redirect_uri_userinfo_and_host_confusion_is_not_a_match(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    for uri in [
        "https://app.example.test@evil.example/callback",
        "https://evil.example#@app.example.test/callback",
        "https://app.example.test.evil.example/callback",
        "https://APP.example.test/callback",
        "//evil.example/callback",
    ] {
        shown_not_redirected(&app, &authorize(&c.id, &[("redirect_uri", uri)])).await;
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(redirect_uri_with_a_dangerous_scheme_in_the_request_is_not_followed);
async fn redirect_uri_with_a_dangerous_scheme_in_the_request_is_not_followed(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    for uri in [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
    ] {
        shown_not_redirected(&app, &authorize(&c.id, &[("redirect_uri", uri)])).await;
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(an_error_before_the_client_is_known_is_shown_never_redirected);
async fn an_error_before_the_client_is_known_is_shown_never_redirected(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let snapshot = before(&app).await;
    let text = shown_not_redirected(&app, &authorize("no-such-client", &[])).await;
    assert!(text.to_lowercase().contains("unknown"), "{text}");
    shown_not_redirected(&app, &authorize("", &[])).await;
    unchanged(&app, &snapshot).await;
}

engine_test!(a_second_redirect_uri_parameter_is_refused_not_followed);
async fn a_second_redirect_uri_parameter_is_refused_not_followed(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    let url = format!(
        "{}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        authorize(&c.id, &[])
    );
    let text = shown_not_redirected(&app, &url).await;
    assert!(text.contains("more than once"), "{text}");
    unchanged(&app, &snapshot).await;
}

engine_test!(a_missing_redirect_uri_with_several_registered_is_refused);
async fn a_missing_redirect_uri_with_several_registered_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app
        .register(json!({"redirect_uris": [REDIRECT, "https://app.example.test/other"], "scope": "openid dns.read"}))
        .await;
    let snapshot = before(&app).await;
    shown_not_redirected(&app, &authorize(&c.id, &[("redirect_uri", "")])).await;
    unchanged(&app, &snapshot).await;
}

engine_test!(prompt_none_with_an_unvalidated_redirect_uri_is_not_redirected);
async fn prompt_none_with_an_unvalidated_redirect_uri_is_not_redirected(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    shown_not_redirected(
        &app,
        &authorize(
            &c.id,
            &[
                ("prompt", "none"),
                ("redirect_uri", "https://evil.example/cb"),
            ],
        ),
    )
    .await;
    unchanged(&app, &snapshot).await;
}

engine_test!(registration_refuses_wildcard_redirect_uris);
async fn registration_refuses_wildcard_redirect_uris(db: TestDatabase) {
    let app = TestApp::new(db).await;
    registration_refused(
        &app,
        &[
            "https://*.example.test/callback",
            "https://app.example.test/*",
        ],
        "client_secret_basic",
    )
    .await;
}

engine_test!(registration_refuses_dangerous_schemes);
async fn registration_refuses_dangerous_schemes(db: TestDatabase) {
    let app = TestApp::new(db).await;
    registration_refused(
        &app,
        &[
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///tmp/x",
            "vbscript:msgbox",
        ],
        "none",
    )
    .await;
}

engine_test!(registration_refuses_plain_http_except_loopback);
async fn registration_refuses_plain_http_except_loopback(db: TestDatabase) {
    let app = TestApp::new(db).await;
    registration_refused(
        &app,
        &[
            "http://app.example.test/callback",
            "http://127.0.0.1.evil.example/cb",
            "http://10.0.0.1/cb",
        ],
        "client_secret_basic",
    )
    .await;
}

engine_test!(registration_refuses_fragments_and_userinfo);
async fn registration_refuses_fragments_and_userinfo(db: TestDatabase) {
    let app = TestApp::new(db).await;
    registration_refused(
        &app,
        &[
            "https://app.example.test/callback#frag",
            "https://user:pass@app.example.test/callback",
            "https://user@app.example.test/callback",
        ],
        "client_secret_basic",
    )
    .await;
}

engine_test!(registration_refuses_private_use_schemes_for_confidential_clients);
async fn registration_refuses_private_use_schemes_for_confidential_clients(db: TestDatabase) {
    let app = TestApp::new(db).await;
    registration_refused(
        &app,
        &["com.example.app:/oauth2redirect"],
        "client_secret_basic",
    )
    .await;
    // And a private-use scheme must look like a reverse domain name even for native apps.
    registration_refused(&app, &["myapp:/callback"], "none").await;
}

engine_test!(a_loopback_redirect_may_change_its_port_but_not_its_host_or_path);
async fn a_loopback_redirect_may_change_its_port_but_not_its_host_or_path(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "scope": "openid dns.read"}))
        .await;
    let snapshot = before(&app).await;
    for uri in [
        "http://127.0.0.2:8080/cb",
        "http://127.0.0.1:8080/other",
        "http://localhost:8080/cb",
        "http://[::1]:8080/cb",
    ] {
        shown_not_redirected(&app, &authorize(&c.id, &[("redirect_uri", uri)])).await;
    }
    unchanged(&app, &snapshot).await;
    // The port alone may change (RFC 8252 §7.3).
    let res = crate::browser::Browser::default()
        .get(
            &app,
            &authorize(&c.id, &[("redirect_uri", "http://127.0.0.1:53211/cb")]),
        )
        .await;
    assert!(res.status.is_redirection(), "{}", res.text());
}
