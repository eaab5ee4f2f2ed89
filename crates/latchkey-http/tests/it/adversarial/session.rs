//! Attacks on people's sessions and on the platform's kill switches: CSRF on every
//! state-changing form (RFC 9700 §4.7), credential stuffing and user enumeration, one account
//! reaching into another (the tenant-isolation test itself is `platform.rs`'s), token floods, and
//! suspension as a kill switch on every replica.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use super::{alice_native_app, before, service, service_token, unchanged, unchanged_except};
use crate::platform::{
    Flow, PASSWORD, Session, api_token, app_body, console_post, console_user,
    get_with_authorization, hidden, to_consent, world,
};
use crate::support::{TestApp, engine_test};

/// Alice's native app, and her browser on its consent page.
async fn alice_at_consent(app: &TestApp) -> (Flow, String, String) {
    let (_, _, id) = alice_native_app(app).await;
    to_consent(app, &id, "alice@acme.test").await
}

async fn login_attempt(
    app: &TestApp,
    f: &mut Flow,
    csrf: &str,
    email: &str,
    password: &str,
) -> crate::support::Answer {
    f.post(
        app,
        "/ui/login",
        &[
            ("csrf_token", csrf),
            ("email", email),
            ("password", password),
        ],
    )
    .await
}

engine_test!(csrf_a_consent_form_without_its_token_is_refused);
async fn csrf_a_consent_form_without_its_token_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (mut f, cc, _) = alice_at_consent(&app).await;
    let snapshot = before(&app).await;
    for token in ["", "forged", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let res = f
            .post(
                &app,
                "/ui/consent",
                &[
                    ("consent_challenge", &cc),
                    ("csrf_token", token),
                    ("decision", "allow"),
                    ("account", "acme"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(csrf_a_token_bound_to_another_challenge_is_refused);
async fn csrf_a_token_bound_to_another_challenge_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (mut f, cc, token) = alice_at_consent(&app).await;
    let snapshot = before(&app).await;
    // The form token of this challenge does not authorize another one.
    let res = f
        .post(
            &app,
            "/ui/consent",
            &[
                ("consent_challenge", &format!("{cc}x")),
                ("csrf_token", &token),
                ("decision", "allow"),
                ("account", "acme"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(login_csrf_a_forged_login_form_is_refused);
async fn login_csrf_a_forged_login_form_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let mut f = Flow::default();
    let snapshot = before(&app).await;
    for token in ["", "forged"] {
        let res = login_attempt(&app, &mut f, token, "alice@acme.test", PASSWORD).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
        assert!(
            res.header("set-cookie")
                .is_none_or(|c| !c.contains("console"))
        );
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(csrf_a_console_api_write_without_the_csrf_header_is_refused);
async fn csrf_a_console_api_write_without_the_csrf_header_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let snapshot = before(&app).await;
    for csrf in [None, Some("forged")] {
        let mut req = Request::post("/api/v1/accounts/acme/apps")
            .header(header::COOKIE, &alice.cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        let req = req
            .body(Body::from(serde_json::to_vec(&app_body()).expect("json")))
            .expect("req");
        let res = TestApp::call(&app.public, req).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(csrf_a_console_form_without_its_token_is_refused);
async fn csrf_a_console_form_without_its_token_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let operator = console_user(&app, "operator@platform.test", true).await;
    let c = service(&app).await;
    let snapshot = before(&app).await;
    let forged = Session {
        cookie: operator.cookie.clone(),
        csrf: "forged".into(),
    };
    for action in ["suspend", "reinstate"] {
        let res = console_post(
            &app,
            &forged,
            &format!("/ui/admin/apps/{}/{action}", c.id),
            &[],
        )
        .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(credential_stuffing_backs_off_per_account);
async fn credential_stuffing_backs_off_per_account(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let mut f = Flow::default();
    let page = f.get(&app, "/ui/login").await;
    let csrf = hidden(&page.text(), "csrf_token");
    for _ in 0..5 {
        let res = login_attempt(&app, &mut f, &csrf, "alice@acme.test", "guess guess guess").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let snapshot = before(&app).await;
    // Even the right password is refused while the account is backed off, and no session
    // is opened: only the failure counters move.
    let res = login_attempt(&app, &mut f, &csrf, "alice@acme.test", PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    unchanged_except(&app, &snapshot, &["login_throttle"]).await;
}

engine_test!(user_enumeration_unknown_and_wrong_passwords_answer_alike);
async fn user_enumeration_unknown_and_wrong_passwords_answer_alike(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let mut f = Flow::default();
    let page = f.get(&app, "/ui/login").await;
    let csrf = hidden(&page.text(), "csrf_token");
    let snapshot = before(&app).await;
    let known = login_attempt(&app, &mut f, &csrf, "alice@acme.test", "wrong password").await;
    let unknown = login_attempt(&app, &mut f, &csrf, "nobody@acme.test", "wrong password").await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        known.text().replace("alice@acme.test", "E"),
        unknown.text().replace("nobody@acme.test", "E")
    );
    // Both are counted the same way, and nothing else is written (no user is created).
    unchanged_except(&app, &snapshot, &["login_throttle"]).await;
    let after = app.store.snapshot().await.expect("snapshot");
    assert_eq!(
        after["login_throttle"].len() - snapshot["login_throttle"].len(),
        2,
        "one counter per email hash (the address has none in-process)"
    );
}

engine_test!(a_token_flood_is_answered_429_with_retry_after);
async fn a_token_flood_is_answered_429_with_retry_after(db: TestDatabase) {
    let app = TestApp::configured(db, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.token_per_client = 30; // bursts of 3
    })
    .await;
    let c = service(&app).await;
    for _ in 0..3 {
        service_token(&app, &c).await;
    }
    let snapshot = before(&app).await;
    let res = app.token(&c, &[("grant_type", "client_credentials")]).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    assert!(
        res.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok())
    );
    unchanged(&app, &snapshot).await;
}

engine_test!(a_revocation_flood_is_answered_429);
async fn a_revocation_flood_is_answered_429(db: TestDatabase) {
    let app = TestApp::configured(db, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.revoke_per_client = 20; // bursts of 2
    })
    .await;
    let c = service(&app).await;
    let at = service_token(&app, &c).await;
    let secret = c.secret.clone().unwrap_or_default();
    for _ in 0..2 {
        let res = app
            .post_form(
                "/oauth2/revoke",
                Some((&c.id, &secret)),
                &[("token", "nothing")],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let snapshot = before(&app).await;
    let res = app
        .post_form("/oauth2/revoke", Some((&c.id, &secret)), &[("token", &at)])
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    assert!(res.header("retry-after").is_some());
    unchanged(&app, &snapshot).await;
}

engine_test!(suspension_is_a_kill_switch_on_every_replica);
async fn suspension_is_a_kill_switch_on_every_replica(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let other = app.replica().await;
    let operator = console_user(&app, "operator@platform.test", true).await;
    let c = service(&app).await;
    let at = service_token(&other, &c).await;
    assert_eq!(other.introspect(&at).await["active"], true);
    let res = console_post(
        &app,
        &operator,
        &format!("/ui/admin/apps/{}/suspend", c.id),
        &[],
    )
    .await;
    assert!(
        res.status.is_redirection() || res.status.is_success(),
        "{}",
        res.status
    );
    let snapshot = before(&app).await;
    // On the other replica, at once: its tokens are dead and it can mint no more.
    assert_eq!(other.introspect(&at).await, json!({"active": false}));
    let res = other
        .token(&c, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(a_suspended_app_cannot_start_an_authorization);
async fn a_suspended_app_cannot_start_an_authorization(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let operator = console_user(&app, "operator@platform.test", true).await;
    let c = app.web_client().await;
    console_post(
        &app,
        &operator,
        &format!("/ui/admin/apps/{}/suspend", c.id),
        &[],
    )
    .await;
    let snapshot = before(&app).await;
    super::shown_not_redirected(&app, &super::authorize(&c.id, &[])).await;
    unchanged(&app, &snapshot).await;
}

engine_test!(guessing_api_tokens_is_limited_per_address_and_a_valid_caller_is_not);
async fn guessing_api_tokens_is_limited_per_address_and_a_valid_caller_is_not(db: TestDatabase) {
    let app = TestApp::platform_configured(db, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.api_bad_token_per_ip = 20; // bursts of 2
    })
    .await;
    world(&app).await;
    let token = api_token(&app, "alice@acme.test", "acme").await;
    let state = app.state.clone().with_settings(|s| {
        s.client_ip_header = Some("x-forwarded-for".parse().expect("name"));
    });
    let router = latchkey_http::public_router(state);
    let apps = "/api/v1/accounts/acme/apps";
    let call = |authorization: String, address: &'static str| {
        let router = router.clone();
        async move { get_with_authorization(&router, apps, &authorization, Some(address)).await }
    };
    // Successes do not count: a valid caller is never limited.
    for _ in 0..5 {
        let res = call(format!("Bearer {token}"), "203.0.113.7").await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
    let snapshot = before(&app).await;
    for guess in ["lk_at_guess-1", "lk_at_guess-2"] {
        let res = call(format!("Bearer {guess}"), "203.0.113.7").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    }
    // Over the limit: 429 with Retry-After, and the address is refused before any token of
    // it is looked up, a valid one included, until it may try again.
    for authorization in [
        "Bearer lk_at_guess-3".to_owned(),
        "bearer lk_at_guess-4".to_owned(),
        format!("Bearer {token}"),
    ] {
        let res = call(authorization, "203.0.113.7").await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
        assert_eq!(res.json()["error"], "too_many_requests");
        assert!(
            res.header("retry-after")
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)),
            "{:?}",
            res.header("retry-after")
        );
    }
    // Another address has its own budget, and the valid caller there is unaffected.
    let res = call("Bearer lk_at_guess-5".to_owned(), "203.0.113.8").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    let res = call(format!("Bearer {token}"), "198.51.100.1").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    unchanged(&app, &snapshot).await;
}
