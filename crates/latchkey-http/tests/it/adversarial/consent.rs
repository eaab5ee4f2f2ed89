//! Consent integrity: a remembered consent obeys today's rules, an app never holds more than
//! its user, withdrawing a permission takes effect, publishers learn only what they were
//! granted, and "Verified" means one thing everywhere.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use latchkey_core::audit::Actor;
use latchkey_core::platform::model::Role;
use latchkey_core::secret::SecretString;
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use super::allow;
use crate::browser::{pkce, query};
use crate::platform::{
    Flow, PASSWORD, Session, api, app_body, console_post, console_user, hidden, location,
    to_consent_for, world,
};
use crate::support::{TestApp, engine_test};

const CB: &str = "http://127.0.0.1:9999/cb";

/// A native app of `account`, made by `owner` from `body` (its scopes as given); its id.
async fn native_app(app: &TestApp, owner: &Session, account: &str, scopes: &[&str]) -> String {
    let mut body = app_body();
    body["app_type"] = json!("native");
    body["redirect_uris"] = json!([CB]);
    body["scopes"] = json!(scopes);
    body["optional_scopes"] = json!([]);
    body["logo_uri"] = json!("https://reports.acme.example/logo.png");
    let res = api(
        app,
        owner,
        Method::POST,
        &format!("/api/v1/accounts/{account}/apps"),
        Some(body),
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["client_id"].as_str().expect("id").to_owned()
}

/// The code the client's redirect carries, exchanged: the token response.
async fn exchange(app: &TestApp, client_id: &str, redirect: &str) -> Value {
    let code = query(redirect)["code"].clone();
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &pkce(1).verifier),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

/// `email` authorizes `scope` of the app on `account` through the consent page: the tokens.
async fn granted(app: &TestApp, client_id: &str, email: &str, scope: &str, account: &str) -> Value {
    let (mut f, cc, csrf) = to_consent_for(app, client_id, email, scope).await;
    let res = allow(app, &mut f, &cc, &csrf, account).await;
    let done = f.get(app, &location(&res)).await;
    exchange(app, client_id, &location(&done)).await
}

/// A refresh of `refresh_token`: the answer.
async fn refresh(app: &TestApp, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
    (res.status, res.json())
}

/// Where the consent step leads when `email` asks for `scope` again: `Ok(redirect)` to the
/// client when the remembered consent was taken, `Err(page)` when the consent page is shown.
async fn ask_again(
    app: &TestApp,
    client_id: &str,
    email: &str,
    scope: &str,
) -> Result<String, String> {
    let mut f = Flow {
        jar: BTreeMap::new(),
    };
    let scope = scope.replace(' ', "%20");
    let challenge = pkce(1).challenge;
    let res = f
        .get(app, &format!(
            "/oauth2/auth?client_id={client_id}&response_type=code&redirect_uri={CB}&scope={scope}&state=s-0123456789&code_challenge={challenge}&code_challenge_method=S256"
        ))
        .await;
    let login = location(&res);
    if !login.contains("/ui/login") {
        // Refused before the login: back to the client with an error.
        return Ok(login);
    }
    let page = f.get(app, &login).await;
    let res = f
        .post(
            app,
            "/ui/login",
            &[
                ("csrf_token", &hidden(&page.text(), "csrf_token")),
                ("login_challenge", &hidden(&page.text(), "login_challenge")),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    let res = f.get(app, &location(&res)).await;
    let consent = location(&res);
    let page = f.get(app, &consent).await;
    if page.status.is_redirection() {
        let done = f.get(app, &location(&page)).await;
        return Ok(location(&done));
    }
    Err(page.text())
}

async fn active(app: &TestApp, token: &Value, field: &str) -> bool {
    let t = token[field].as_str().expect("token");
    app.introspect(t).await["active"] == true
}

engine_test!(a_withdrawn_restricted_scope_is_withdrawn_on_every_path);
/// Defect 1: the operator approves a restricted scope, a user grants it, the operator refuses
/// it. The refusal removes it from the app's registration and revokes the tokens that carry
/// it; a remembered re-authorization asking for it is not taken.
async fn a_withdrawn_restricted_scope_is_withdrawn_on_every_path(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let operator = console_user(&app, "operator@platform.test", true).await;
    let id = native_app(
        &app,
        &alice,
        "acme",
        &["openid", "dns.read", "offline_access"],
    )
    .await;
    let path = format!("/api/v1/accounts/acme/apps/{id}");
    let asked = api(
        &app,
        &alice,
        Method::POST,
        &format!("{path}/scope_requests"),
        Some(json!({"scope": "members.write"})),
    )
    .await;
    assert!(asked.status.is_success(), "{}", asked.text());
    console_post(
        &app,
        &operator,
        &format!("/ui/admin/apps/{id}/approve"),
        &[("scope", "members.write")],
    )
    .await;
    let added = api(
        &app,
        &alice,
        Method::PATCH,
        &path,
        Some(json!({"scopes": ["openid", "dns.read", "offline_access", "members.write"]})),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text());
    let scope = "openid dns.read offline_access members.write";
    let tokens = granted(&app, &id, "alice@acme.test", scope, "acme").await;
    assert!(active(&app, &tokens, "access_token").await);

    console_post(
        &app,
        &operator,
        &format!("/ui/admin/apps/{id}/refuse"),
        &[("scope", "members.write")],
    )
    .await;
    assert!(!active(&app, &tokens, "access_token").await, "revoked");
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");
    let (status, _) = refresh(&app, &id, refresh_token).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the old refresh token is dead"
    );
    let registered = app
        .admin(Method::GET, &format!("/admin/clients/{id}"), None)
        .await
        .json();
    assert!(
        !registered["scope"]
            .as_str()
            .unwrap_or_default()
            .contains("members.write"),
        "{registered}"
    );
    let shown = api(&app, &alice, Method::GET, &path, None).await.json();
    assert!(
        !shown["scopes"].to_string().contains("members.write"),
        "{shown}"
    );
    // Asking for it again gets no token carrying it.
    let again = ask_again(&app, &id, "alice@acme.test", "openid members.write").await;
    match again {
        Ok(redirect) => assert!(
            !redirect.contains("code=") && redirect.contains("error="),
            "{redirect}"
        ),
        Err(page) => assert!(!page.contains("code="), "{page}"),
    }
    // The rest of the grant still works, without the scope.
    let still = ask_again(&app, &id, "alice@acme.test", "openid dns.read").await;
    let redirect = still.expect("the narrowed grant is remembered");
    let fresh = exchange(&app, &id, &redirect).await;
    assert!(
        !fresh["scope"].to_string().contains("members.write"),
        "{fresh}"
    );
}

/// A public, unverified app of acme that bob (of beta) authorized on beta: its id.
async fn bob_grants_acme_app(app: &TestApp, alice: &Session, accounts: &str) -> (String, Value) {
    let id = native_app(app, alice, "acme", &["openid", "dns.read"]).await;
    let res = api(
        app,
        alice,
        Method::PATCH,
        &format!("/api/v1/accounts/acme/apps/{id}"),
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let tokens = granted(app, &id, "bob@beta.test", "openid dns.read", accounts).await;
    (id, tokens)
}

async fn unverified_platform(db: TestDatabase) -> TestApp {
    TestApp::platform_with(db, None, |s| s.public_apps_need_verified_domain = false).await
}

engine_test!(an_account_policy_stops_remembered_consents_and_all_account_grants);
/// Defect 2: after beta blocks third-party apps, bob's remembered consent does not
/// re-authorize the app on beta, and an "all accounts" grant does not cover beta.
async fn an_account_policy_stops_remembered_consents_and_all_account_grants(db: TestDatabase) {
    let app = unverified_platform(db).await;
    let (alice, bob) = world(&app).await;
    let (id, tokens) = bob_grants_acme_app(&app, &alice, "*").await;
    // The accounts a token acts for (none: the claim is left out).
    let accounts = |v: &Value| match &v["ext"]["accounts"] {
        Value::Null => json!([]),
        a => a.clone(),
    };
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(accounts(&app.introspect(access).await), json!(["beta"]));

    let res = console_post(
        &app,
        &bob,
        "/ui/admin/accounts/beta/policy",
        &[("block", "1")],
    )
    .await;
    assert!(res.status.is_redirection(), "{}", res.status);
    // The all-accounts grant no longer reaches beta.
    assert_eq!(accounts(&app.introspect(access).await), json!([]));
    // The remembered consent is not taken: bob sees the page, which explains.
    let again = ask_again(&app, &id, "bob@beta.test", "openid dns.read").await;
    let page = again.expect_err("the remembered consent is not taken");
    assert!(page.contains("third-party apps"), "{page}");

    // The admin revokes the existing grants that reach beta.
    let res = console_post(
        &app,
        &bob,
        "/ui/admin/accounts/beta/policy",
        &[("revoke_existing", "1")],
    )
    .await;
    assert!(res.status.is_redirection(), "{}", res.status);
    assert_eq!(app.introspect(access).await["active"], false);
}

engine_test!(an_account_policy_stops_a_remembered_grant_of_that_account);
/// An explicit grant of a blocked account is not re-authorized either.
async fn an_account_policy_stops_a_remembered_grant_of_that_account(db: TestDatabase) {
    let app = unverified_platform(db).await;
    let (alice, bob) = world(&app).await;
    let (id, _) = bob_grants_acme_app(&app, &alice, "beta").await;
    console_post(
        &app,
        &bob,
        "/ui/admin/accounts/beta/policy",
        &[("block", "1")],
    )
    .await;
    let again = ask_again(&app, &id, "bob@beta.test", "openid dns.read").await;
    assert!(again.is_err(), "{again:?}");
}

engine_test!(a_narrower_consent_ends_the_wider_tokens);
/// Re-consenting with fewer scopes leaves no live token wider than this consent.
async fn a_narrower_consent_ends_the_wider_tokens(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    let (alice, _) = world(&app).await;
    let id = native_app(
        &app,
        &alice,
        "acme",
        &["openid", "dns.read", "offline_access"],
    )
    .await;
    let wide = granted(
        &app,
        &id,
        "alice@acme.test",
        "openid dns.read offline_access",
        "acme",
    )
    .await;
    let redirect = ask_again(&app, &id, "alice@acme.test", "openid dns.read")
        .await
        .expect("remembered");
    let narrow = exchange(&app, &id, &redirect).await;
    assert!(active(&app, &narrow, "access_token").await);
    assert!(!active(&app, &wide, "access_token").await);
    let old = wide["refresh_token"].as_str().expect("refresh token");
    let (status, body) = refresh(&app, &id, old).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

engine_test!(a_member_cannot_lend_more_than_their_role_and_a_demotion_narrows_tokens);
/// An app never holds more than its user: a plain member cannot lend a permission that needs
/// a higher role, and a demotion narrows the accounts a live token acts for at once.
async fn a_member_cannot_lend_more_than_their_role_and_a_demotion_narrows_tokens(db: TestDatabase) {
    let app = TestApp::platform(db, None).await;
    world(&app).await;
    let p = &app.state.platform;
    let actor = Actor::cli();
    p.create_user(
        "carol@acme.test",
        "",
        SecretString::new(PASSWORD),
        false,
        &actor,
    )
    .await
    .expect("carol");
    p.add_member("acme", "carol@acme.test", Role::Member, &actor)
        .await
        .expect("member");
    // A first-party app (made through the admin API) asking for dns.write (developer and up).
    let client = app
        .register(json!({
            "client_name": "Platform DNS",
            "redirect_uris": [CB],
            "scope": "openid dns.write",
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let (mut f, cc, csrf) =
        to_consent_for(&app, &client.id, "carol@acme.test", "openid dns.write").await;
    let page = f
        .get(&app, &format!("/ui/consent?consent_challenge={cc}"))
        .await
        .text();
    assert!(
        page.contains("dns.write needs the developer role"),
        "{}",
        &page[page.find("<main").unwrap_or(0)..]
    );
    let snapshot = super::before(&app).await;
    let res = allow(&app, &mut f, &cc, &csrf, "acme").await;
    assert!(res.status.is_client_error(), "{}", res.status);
    assert!(res.text().contains("developer role"), "{}", res.text());
    super::unchanged(&app, &snapshot).await;

    p.add_member("acme", "carol@acme.test", Role::Developer, &actor)
        .await
        .expect("promoted");
    let tokens = granted(
        &app,
        &client.id,
        "carol@acme.test",
        "openid dns.write",
        "acme",
    )
    .await;
    let access = tokens["access_token"].as_str().expect("access");
    assert_eq!(
        app.introspect(access).await["ext"]["accounts"],
        json!(["acme"])
    );
    p.add_member("acme", "carol@acme.test", Role::Member, &actor)
        .await
        .expect("demoted");
    assert!(
        app.introspect(access).await["ext"]["accounts"].is_null(),
        "a demoted member lends nothing"
    );
}

engine_test!(a_publisher_learns_no_email_it_was_not_granted);
/// Defect 4: the app's publisher reads its account's audit log, and a user of another account
/// who did not grant `email` appears by the subject the app was given, not by email.
async fn a_publisher_learns_no_email_it_was_not_granted(db: TestDatabase) {
    let app = unverified_platform(db).await;
    let (alice, _) = world(&app).await;
    bob_grants_acme_app(&app, &alice, "beta").await;
    let page = crate::platform::get_page(&app, &alice, "/ui/admin").await;
    assert!(page.contains("grant.create"), "{page}");
    assert!(!page.contains("bob@beta.test"), "{page}");
}

engine_test!(connected_apps_show_the_consent_screens_shield);
/// Defect 5: an unverified public app is "Unverified" on the connected apps page, as on its
/// consent screen.
async fn connected_apps_show_the_consent_screens_shield(db: TestDatabase) {
    let app = unverified_platform(db).await;
    let (alice, bob) = world(&app).await;
    bob_grants_acme_app(&app, &alice, "beta").await;
    let page = crate::platform::get_page(&app, &bob, "/ui/apps").await;
    assert!(page.contains("Unverified"), "{page}");
    assert!(!page.contains(">Verified<"), "{page}");
}
