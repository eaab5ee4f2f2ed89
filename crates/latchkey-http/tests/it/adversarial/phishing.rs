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
    // Full-width letters are read as the letters they show.
    name_refused(&app, &bob, "\u{ff21}cme Reports", "Acme Reports").await;
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

/// The answer's text shows none of the invisible formatting characters it was sent.
fn echoes_no_format_character(text: &str) {
    assert_eq!(
        latchkey_core::platform::names::format_character(text),
        None,
        "the error echoes the character: {}",
        text.escape_unicode()
    );
}

engine_test!(names_with_direction_overrides_or_invisible_characters_are_refused);
async fn names_with_direction_overrides_or_invisible_characters_are_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (_, bob) = world(&app).await;
    for (name, code_point) in [
        // Displays as "Latchkey".
        ("\u{202e}yekhctaL\u{202c}", "U+202E"),
        ("\u{2067}yekhctaL\u{2069} Sync", "U+2067"),
        ("Beta\u{200f} Tools", "U+200F"),
        ("Beta \u{061c}Tools", "U+061C"),
        // Zero-width joiners, spaces and the byte-order mark, invisible in the name.
        ("Latch\u{200d}key", "U+200D"),
        ("Beta\u{200b}Tools", "U+200B"),
        ("\u{feff}Beta Tools", "U+FEFF"),
        ("Beta\u{2060}Tools", "U+2060"),
    ] {
        let snapshot = before(&app).await;
        let mut body = app_body();
        body["name"] = json!(name);
        body["redirect_uris"] = json!(["https://tools.beta.example/callback"]);
        body["client_uri"] = json!("https://tools.beta.example/");
        let res = api(
            &app,
            &bob,
            Method::POST,
            "/api/v1/accounts/beta/apps",
            Some(body),
        )
        .await;
        let shown = name.escape_unicode();
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{shown}: {}",
            res.text()
        );
        let text = res.text();
        assert!(
            text.contains("name") && text.contains("invisible") && text.contains(code_point),
            "{shown}: {text}"
        );
        echoes_no_format_character(&text);
        unchanged(&app, &snapshot).await;
    }
}

engine_test!(a_homoglyph_of_the_platforms_name_is_refused_as_a_lookalike);
async fn a_homoglyph_of_the_platforms_name_is_refused_as_a_lookalike(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (_, bob) = world(&app).await;
    for name in [
        "L\u{0430}tchkey",       // Cyrillic a
        "Latchk\u{0435}y Sync",  // Cyrillic e
        "L\u{03b1}tchkey",       // Greek alpha
        "LATCHK\u{0395}Y",       // Greek capital epsilon
        "\u{ff2c}atchkey Tools", // full-width L
        "Latch\u{3164}key",      // an invisible Hangul filler
    ] {
        name_refused(&app, &bob, name, "the platform's name").await;
    }
}

engine_test!(a_description_or_a_rename_with_invisible_characters_is_refused);
async fn a_description_or_a_rename_with_invisible_characters_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let snapshot = before(&app).await;
    let mut body = app_body();
    body["description"] = json!("Reports.\u{202e} Trusted by Latchkey");
    let res = api(
        &app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert!(res.text().contains("description"), "{}", res.text());
    echoes_no_format_character(&res.text());
    unchanged(&app, &snapshot).await;

    let id = create(&app, &alice, "acme", app_body()).await;
    let snapshot = before(&app).await;
    for change in [
        json!({"name": "Acme\u{200d} Reports"}),
        json!({"name": "\u{202e}stropeR emcA"}),
        json!({"description": "\u{2066}hidden\u{2069}"}),
    ] {
        let res = api(
            &app,
            &alice,
            Method::PATCH,
            &format!("/api/v1/accounts/acme/apps/{id}"),
            Some(change.clone()),
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "{change}: {}",
            res.text()
        );
        echoes_no_format_character(&res.text());
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(an_account_name_with_invisible_characters_is_refused);
async fn an_account_name_with_invisible_characters_is_refused(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let snapshot = before(&app).await;
    for name in ["\u{202e}emcA\u{202c}", "Ac\u{200b}me", "Acme\u{e0041}"] {
        let e = app
            .state
            .platform
            .create_account(Some("gamma"), name, AccountKind::Customer, &Actor::cli())
            .await
            .expect_err("refused")
            .to_string();
        assert!(e.contains("invisible"), "{e}");
        echoes_no_format_character(&e);
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(international_names_are_accepted);
async fn international_names_are_accepted(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (_, bob) = world(&app).await;
    for (n, name) in [
        "Caf\u{e9} \u{dc}n\u{ef}code",
        "\u{65e5}\u{672c}\u{8a9e}\u{30a2}\u{30d7}\u{30ea}",
        "\u{041c}\u{043e}\u{0439} \u{0431}\u{043e}\u{0442}",
        "\u{645}\u{62f}\u{64a}\u{631} \u{627}\u{644}\u{645}\u{647}\u{627}\u{645}",
        "\u{d55c}\u{ad6d}\u{c5b4} \u{b3c4}\u{ad6c}",
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = app_body();
        body["name"] = json!(name);
        body["description"] = json!(format!("{name}: une description, \u{4e00}\u{4e8c}\u{4e09}"));
        body["redirect_uris"] = json!([format!("https://tools.beta.example/callback/{n}")]);
        body["client_uri"] = json!("https://tools.beta.example/");
        let id = create(&app, &bob, "beta", body).await;
        let shown = api(
            &app,
            &bob,
            Method::GET,
            &format!("/api/v1/accounts/beta/apps/{id}"),
            None,
        )
        .await
        .json();
        assert_eq!(shown["name"], name, "stored as written");
    }
    let account = app
        .state
        .platform
        .create_account(
            Some("gamma"),
            "\u{5c71}\u{7530} \u{5546}\u{4e8b}",
            AccountKind::Customer,
            &Actor::cli(),
        )
        .await
        .expect("an international account name");
    assert_eq!(account.name, "\u{5c71}\u{7530} \u{5546}\u{4e8b}");
}
