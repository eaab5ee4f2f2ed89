//! Consent phishing (the platform's threats: lookalike and brand-impersonating apps, unverified
//! apps reaching many users, over-broad scopes, private apps and account policies).

use axum::http::{Method, StatusCode};
use latchkey_core::audit::Actor;
use latchkey_core::platform::model::{AccountKind, Role};
use latchkey_core::secret::SecretString;
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use super::{allow, before, unchanged};
use crate::platform::{PASSWORD, Session, api, app_body, dns_server, location, to_consent, world};
use crate::support::{TestApp, engine_test};

/// Alice's app, created from `body`; its id.
async fn create(app: &TestApp, s: &Session, account: &str, body: Value) -> String {
    let res = api(
        app,
        s,
        Method::POST,
        &format!("/api/v1/accounts/{account}/apps"),
        Some(body),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["client_id"].as_str().expect("id").to_owned()
}

/// A native app of acme that went public without verifying its domain.
async fn unverified_public_app(app: &TestApp, alice: &Session) -> String {
    let mut body = app_body();
    body["app_type"] = json!("native");
    body["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
    body["logo_uri"] = json!("https://reports.acme.example/logo.png");
    let id = create(app, alice, "acme", body).await;
    let res = api(
        app,
        alice,
        Method::PATCH,
        &format!("/api/v1/accounts/acme/apps/{id}"),
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["user_cap"], 100, "the cap shows in the API");
    id
}

/// A platform whose operator lets unverified apps go public (capped, with a warning page).
async fn unverified_apps_may_go_public(db: TestDatabase) -> TestApp {
    TestApp::platform_with(db, None, |s| s.public_apps_need_verified_domain = false).await
}

/// Creating an app named `name` in beta is refused with a message that says `says`.
async fn name_refused(app: &TestApp, bob: &Session, name: &str, says: &str) {
    let snapshot = before(app).await;
    let mut body = app_body();
    body["name"] = json!(name);
    body["redirect_uris"] = json!(["https://tools.beta.example/callback"]);
    body["client_uri"] = json!("https://tools.beta.example/");
    let res = api(
        app,
        bob,
        Method::POST,
        "/api/v1/accounts/beta/apps",
        Some(body),
    )
    .await;
    assert_eq!(
        res.status,
        StatusCode::BAD_REQUEST,
        "{name}: {}",
        res.text()
    );
    let text = res.text();
    assert!(
        text.contains("name") && text.contains(says),
        "{name}: {text}"
    );
    unchanged(app, &snapshot).await;
}

async fn a_user(app: &TestApp, email: &str, account: &str) {
    let p = &app.state.platform;
    let actor = Actor::cli();
    p.create_account(Some(account), account, AccountKind::Customer, &actor)
        .await
        .expect("account");
    p.create_user(email, "", SecretString::new(PASSWORD), false, &actor)
        .await
        .expect("user");
    p.add_member(account, email, Role::Owner, &actor)
        .await
        .expect("member");
}

engine_test!(lookalike_of_the_platforms_name_is_refused);
async fn lookalike_of_the_platforms_name_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (_, bob) = world(&app).await;
    for name in [
        "Latchkey",
        "L4tchk3y Sync",
        "LATCH KEY",
        "Latchkey\u{ff0d}Support",
    ] {
        name_refused(&app, &bob, name, "platform").await;
    }
}

engine_test!(lookalike_of_a_public_app_with_unicode_confusables_is_refused);
async fn lookalike_of_a_public_app_with_unicode_confusables_is_refused(db: TestDatabase) {
    let app = unverified_apps_may_go_public(db).await;
    let (alice, bob) = world(&app).await;
    unverified_public_app(&app, &alice).await;
    for name in [
        "Acme Rep0rts",
        "acme-reports",
        "ACME  REPORTS",
        "Acme Reports.",
    ] {
        name_refused(&app, &bob, name, "Acme Reports").await;
    }
    // Full-width letters are refused as look-alike characters.
    name_refused(&app, &bob, "\u{ff21}cme Reports", "alphabet").await;
}

engine_test!(lookalike_of_a_verified_app_is_refused_even_while_it_is_private);
async fn lookalike_of_a_verified_app_is_refused_even_while_it_is_private(db: TestDatabase) {
    let answer = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let app = TestApp::platform(db, Some(dns_server(answer.clone()).await)).await;
    let (alice, bob) = world(&app).await;
    let id = create(&app, &alice, "acme", app_body()).await;
    let verify = format!("/api/v1/accounts/acme/apps/{id}/verification");
    let started = api(&app, &alice, Method::POST, &verify, None).await.json();
    started["verification"]["value"]
        .as_str()
        .expect("value")
        .clone_into(&mut answer.lock().expect("lock"));
    let done = api(&app, &alice, Method::POST, &verify, None).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    name_refused(&app, &bob, "Acme Rep\u{043e}rts", "alphabet").await;
    name_refused(&app, &bob, "AcmeReports", "verified app").await;
}

engine_test!(renaming_an_app_to_a_lookalike_is_refused);
async fn renaming_an_app_to_a_lookalike_is_refused(db: TestDatabase) {
    let app = unverified_apps_may_go_public(db).await;
    let (alice, bob) = world(&app).await;
    unverified_public_app(&app, &alice).await;
    let mut body = app_body();
    body["name"] = json!("Beta Tools");
    body["redirect_uris"] = json!(["https://tools.beta.example/callback"]);
    body["client_uri"] = json!("https://tools.beta.example/");
    let id = create(&app, &bob, "beta", body).await;
    let snapshot = before(&app).await;
    for name in ["Acme Reports!", "Latchkey Tools", "Official Beta Tools"] {
        let res = api(
            &app,
            &bob,
            Method::PATCH,
            &format!("/api/v1/accounts/beta/apps/{id}"),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            res.text()
        );
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(homograph_names_that_mix_alphabets_are_refused);
async fn homograph_names_that_mix_alphabets_are_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (_, bob) = world(&app).await;
    // Latin with Cyrillic and Greek look-alike letters.
    for name in ["G\u{043e}\u{043e}gle Docs", "Dr\u{03bf}pbox Sync"] {
        name_refused(&app, &bob, name, "alphabet").await;
    }
}

engine_test!(names_claiming_to_be_official_or_verified_are_refused);
async fn names_claiming_to_be_official_or_verified_are_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (_, bob) = world(&app).await;
    for name in ["Official Backup", "Verified Deploys", "0fficial Backup"] {
        name_refused(&app, &bob, name, "official or verified").await;
    }
}

engine_test!(an_unverified_app_shows_a_warning_interstitial_before_consent);
async fn an_unverified_app_shows_a_warning_interstitial_before_consent(db: TestDatabase) {
    let app = unverified_apps_may_go_public(db).await;
    let (alice, _) = world(&app).await;
    let id = unverified_public_app(&app, &alice).await;
    // Bob is not a member of acme: he is warned first.
    let (mut f, cc, _) = to_consent(&app, &id, "bob@beta.test").await;
    let snapshot = before(&app).await;
    let page = f
        .get(&app, &format!("/ui/consent?consent_challenge={cc}"))
        .await;
    let text = page.text();
    assert!(text.contains("has not verified this app"), "{text}");
    assert!(text.contains("Back to safety"), "{text}");
    assert!(!text.contains("name=\"account\""), "no consent form yet");
    unchanged(&app, &snapshot).await;
    let page = f
        .get(
            &app,
            &format!("/ui/consent?consent_challenge={cc}&proceed=1"),
        )
        .await;
    assert!(page.text().contains("name=\"account\""), "{}", page.text());
    assert!(page.text().contains("This app is not verified"));
}

engine_test!(an_unverified_public_app_is_capped_in_distinct_users);
async fn an_unverified_public_app_is_capped_in_distinct_users(db: TestDatabase) {
    let app = TestApp::platform_with(db, None, |s| {
        s.public_apps_need_verified_domain = false;
        s.unverified_user_cap = 1;
    })
    .await;
    let (alice, _) = world(&app).await;
    a_user(&app, "carol@gamma.test", "gamma").await;
    let mut body = app_body();
    body["app_type"] = json!("native");
    body["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
    body["logo_uri"] = json!("https://reports.acme.example/logo.png");
    let id = create(&app, &alice, "acme", body).await;
    let res = api(
        &app,
        &alice,
        Method::PATCH,
        &format!("/api/v1/accounts/acme/apps/{id}"),
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(res.json()["user_cap"], 1);

    // The first user fits under the cap.
    let (mut bob, cc, token) = to_consent(&app, &id, "bob@beta.test").await;
    let res = allow(&app, &mut bob, &cc, &token, "beta").await;
    let back = location(&res);
    assert!(back.contains("consent_verifier="), "{back}");
    let done = bob.get(&app, &back).await;
    assert!(location(&done).contains("code="), "{}", done.text());
    let shown = api(
        &app,
        &alice,
        Method::GET,
        &format!("/api/v1/accounts/acme/apps/{id}"),
        None,
    )
    .await
    .json();
    assert_eq!(
        (shown["user_count"].clone(), shown["user_cap"].clone()),
        (json!(1), json!(1))
    );

    // The next one is turned away, with the reason, and nothing is stored.
    let (mut carol, cc, token) = to_consent(&app, &id, "carol@gamma.test").await;
    let snapshot = before(&app).await;
    let page = carol
        .get(
            &app,
            &format!("/ui/consent?consent_challenge={cc}&proceed=1"),
        )
        .await;
    assert!(page.text().contains("must verify it"), "{}", page.text());
    let res = allow(&app, &mut carol, &cc, &token, "gamma").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(a_sensitive_scope_is_refused_to_an_unverified_app);
async fn a_sensitive_scope_is_refused_to_an_unverified_app(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let snapshot = before(&app).await;
    let mut body = app_body();
    body["scopes"] = json!(["openid", "dns.write"]);
    let res = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert!(res.text().contains("sensitive"), "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(a_private_app_cannot_be_authorized_by_an_outsider);
async fn a_private_app_cannot_be_authorized_by_an_outsider(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let mut body = app_body();
    body["app_type"] = json!("native");
    body["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
    let id = create(&app, &alice, "acme", body).await;
    let (mut bob, cc, token) = to_consent(&app, &id, "bob@beta.test").await;
    let snapshot = before(&app).await;
    let res = allow(&app, &mut bob, &cc, &token, "beta").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert!(res.text().contains("private"), "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(an_account_that_blocks_third_party_apps_cannot_be_picked);
async fn an_account_that_blocks_third_party_apps_cannot_be_picked(db: TestDatabase) {
    let app = unverified_apps_may_go_public(db).await;
    let (alice, bob_console) = world(&app).await;
    let id = unverified_public_app(&app, &alice).await;
    let res = crate::platform::console_post(
        &app,
        &bob_console,
        "/ui/admin/accounts/beta/policy",
        &[("block", "1")],
    )
    .await;
    assert!(
        res.status.is_redirection(),
        "{}: {}",
        res.status,
        res.text()
    );
    let (mut bob, cc, token) = to_consent(&app, &id, "bob@beta.test").await;
    let snapshot = before(&app).await;
    let res = allow(&app, &mut bob, &cc, &token, "beta").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(an_unverified_app_cannot_go_public_by_default);
async fn an_unverified_app_cannot_go_public_by_default(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let mut body = app_body();
    body["logo_uri"] = json!("https://reports.acme.example/logo.png");
    let id = create(&app, &alice, "acme", body).await;
    let snapshot = before(&app).await;
    let res = api(
        &app,
        &alice,
        Method::PATCH,
        &format!("/api/v1/accounts/acme/apps/{id}"),
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert!(res.text().contains("a verified domain"), "{}", res.text());
    unchanged(&app, &snapshot).await;
    let shown = api(
        &app,
        &alice,
        Method::GET,
        &format!("/api/v1/accounts/acme/apps/{id}"),
        None,
    )
    .await
    .json();
    assert_eq!(
        shown.get("user_cap"),
        None,
        "no cap where unverified apps stay private"
    );
}
