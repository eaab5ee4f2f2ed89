//! Response headers as defenses: clickjacking of the consent page (RFC 9700 §4.16), leaking
//! codes through Referer (§4.2.4), caching of tokens (RFC 6749 §5.1), CORS on the authorization
//! endpoint, HSTS.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use latchkey_store::testing::TestDatabase;

use super::{alice_native_app, before, service, unchanged};
use crate::browser::{Browser, FlowOptions, authorize_url, pkce};
use crate::platform::to_consent;
use crate::support::{TestApp, engine_test};

/// A consent page of the built-in provider: alice authorizing her own app.
async fn consent_page(app: &TestApp) -> crate::support::Answer {
    let (_, _, id) = alice_native_app(app).await;
    let (mut flow, challenge, _) = to_consent(app, &id, "alice@acme.test").await;
    flow.get(app, &format!("/ui/consent?consent_challenge={challenge}"))
        .await
}

engine_test!(clickjacking_the_consent_page_cannot_be_framed);
async fn clickjacking_the_consent_page_cannot_be_framed(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let page = consent_page(&app).await;
    let snapshot = before(&app).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.header("content-security-policy").expect("csp");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    unchanged(&app, &snapshot).await;
}

engine_test!(the_consent_page_runs_no_inline_script_and_leaks_no_referrer);
async fn the_consent_page_runs_no_inline_script_and_leaks_no_referrer(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let page = consent_page(&app).await;
    let csp = page.header("content-security-policy").expect("csp");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(!page.text().contains("<script"), "no script at all");
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
}

engine_test!(the_login_page_carrying_a_challenge_is_not_cached_or_referred);
async fn the_login_page_carrying_a_challenge_is_not_cached_or_referred(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let c = app.web_client().await;
    let mut b = Browser::default();
    let res = b
        .get(
            &app,
            &authorize_url(&c.id, &pkce(1), &FlowOptions::default()),
        )
        .await;
    let login = res.header("location").expect("to login").to_owned();
    assert!(login.contains("login_challenge="), "{login}");
    let snapshot = before(&app).await;
    let page = b.get(&app, &login).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'"))
    );
    unchanged(&app, &snapshot).await;
}

engine_test!(token_responses_and_errors_are_never_cached);
async fn token_responses_and_errors_are_never_cached(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let ok = app.token(&c, &[("grant_type", "client_credentials")]).await;
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    let snapshot = before(&app).await;
    let bad = app.token(&c, &[("grant_type", "password")]).await;
    assert!(bad.status.is_client_error());
    assert_eq!(bad.header("cache-control"), Some("no-store"));
    let at = ok.json()["access_token"].as_str().expect("at").to_owned();
    let res = app
        .post_form("/admin/oauth2/introspect", None, &[("token", &at)])
        .await;
    assert_eq!(res.header("cache-control"), Some("no-store"));
    unchanged(&app, &snapshot).await;
}

engine_test!(the_authorization_endpoint_answers_no_cors);
async fn the_authorization_endpoint_answers_no_cors(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/oauth2/auth")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .body(Body::empty())
        .expect("req");
    let res = TestApp::call(&app.public, req).await;
    assert!(res.header("access-control-allow-origin").is_none());
    let req = Request::get(format!("/oauth2/auth?client_id={}", c.id))
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .expect("req");
    let res = TestApp::call(&app.public, req).await;
    assert!(res.header("access-control-allow-origin").is_none());
    unchanged(&app, &snapshot).await;
}

engine_test!(strict_transport_security_is_sent_when_the_issuer_is_https);
async fn strict_transport_security_is_sent_when_the_issuer_is_https(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let snapshot = before(&app).await;
    for path in [
        "/.well-known/openid-configuration",
        "/oauth2/auth",
        "/ui/login",
    ] {
        let res = app.get_public(path).await;
        let hsts = res.header("strict-transport-security").unwrap_or_default();
        assert!(hsts.contains("max-age="), "{path}: {hsts:?}");
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(a_retried_login_keeps_only_the_apps_validated_origins_in_form_action);
async fn a_retried_login_keeps_only_the_apps_validated_origins_in_form_action(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (_, _, id) = alice_native_app(&app).await;
    let mut f = crate::platform::Flow::default();
    let challenge = pkce(1).challenge;
    let res = f
        .get(&app, &format!("/oauth2/auth?client_id={id}&response_type=code&redirect_uri=http://127.0.0.1:9999/cb&scope=openid%20dns.read&state=s-0123456789&code_challenge={challenge}&code_challenge_method=S256"))
        .await;
    let login = crate::platform::location(&res);
    let page = f.get(&app, &login).await;
    let lc = crate::platform::hidden(&page.text(), "login_challenge");
    let csrf = crate::platform::hidden(&page.text(), "csrf_token");
    let snapshot = before(&app).await;
    let res = f
        .post(
            &app,
            "/ui/login",
            &[
                ("csrf_token", &csrf),
                ("login_challenge", &lc),
                ("email", "alice@acme.test"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let csp = res.header("content-security-policy").expect("csp");
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:*"),
        "{csp}"
    );
    assert!(!csp.contains("evil"), "{csp}");
    assert!(
        res.text().contains("Acme Reports"),
        "the app is still named"
    );
    super::unchanged_except(&app, &snapshot, &["login_throttle"]).await;
}
