//! The device authorization grant (RFC 8628) as Hydra v25.4+ speaks it: the device asks and
//! polls, the user enters the code on the verification page, the login and consent protocol
//! runs unchanged, and the device gets its tokens once.

use axum::http::{Method, StatusCode};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{Browser, Registered, location, query};
use crate::support::{CONSENT_URL, ISSUER, LOGIN_URL, TestApp, engine_test};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

impl TestApp {
    /// A confidential client of a device (a CLI, a TV) with offline access.
    pub async fn device_client(&self) -> Registered {
        self.register(json!({
            "client_name": "Latchkey CLI",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
            "scope": "openid offline_access dns.read",
            "audience": ["https://api.example.test"],
        }))
        .await
    }

    /// `POST /oauth2/device/auth` for `client`.
    pub async fn device_auth(&self, client: &Registered, form: &[(&str, &str)]) -> Value {
        let res = self
            .post_form(
                "/oauth2/device/auth",
                Some((&client.id, client.secret.as_deref().unwrap_or_default())),
                form,
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.header("cache-control"), Some("no-store"));
        res.json()
    }

    /// One poll of the token endpoint with a device code.
    pub async fn poll(&self, client: &Registered, device_code: &str) -> crate::support::Answer {
        self.token(
            client,
            &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
        )
        .await
    }

    /// `PUT /admin/oauth2/auth/requests/device/accept`.
    pub async fn accept_user_code(
        &self,
        challenge: &str,
        user_code: &str,
    ) -> crate::support::Answer {
        self.admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/device/accept?device_challenge={challenge}"),
            Some(json!({ "user_code": user_code })),
        )
        .await
    }
}

fn error_of(res: &crate::support::Answer) -> String {
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    res.json()["error"].as_str().expect("error").to_owned()
}

/// The browser opens `url` (the verification URI) and lands on the verification page: its
/// device challenge.
async fn challenge_from(
    app: &TestApp,
    browser: &mut Browser,
    url: &str,
) -> (String, Option<String>) {
    let res = browser.get(app, url).await;
    let to_page = location(&res);
    assert!(
        to_page.starts_with(&format!("{ISSUER}/ui/device?")),
        "{to_page}"
    );
    let q = query(&to_page);
    (q["device_challenge"].clone(), q.get("user_code").cloned())
}

/// The login and consent protocol, from the redirect the device accept answered with, to where
/// the flow ends; `consent` is the consent app's answer (`None`: it rejects).
async fn login_and_consent(
    app: &TestApp,
    browser: &mut Browser,
    redirect_to: &str,
    consent: Option<Value>,
) -> String {
    let res = browser.get(app, redirect_to).await;
    let to_login = location(&res);
    assert!(to_login.starts_with(LOGIN_URL), "{to_login}");
    let challenge = query(&to_login)["login_challenge"].clone();
    let login = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={challenge}"),
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    assert_eq!(login.json()["client"]["client_name"], "Latchkey CLI");
    let accepted = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}"),
            Some(json!({"subject": "alice"})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let back = accepted.json()["redirect_to"]
        .as_str()
        .expect("redirect_to")
        .to_owned();
    assert!(
        back.starts_with(&format!("{ISSUER}/oauth2/device/verify?")),
        "the flow comes back through the device endpoint: {back}"
    );
    let res = browser.get(app, &back).await;
    let to_consent = location(&res);
    assert!(to_consent.starts_with(CONSENT_URL), "{to_consent}");
    let challenge = query(&to_consent)["consent_challenge"].clone();
    let request = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/consent?consent_challenge={challenge}"),
            None,
        )
        .await
        .json();
    assert_eq!(request["skip"], false, "a device flow always asks");
    assert_eq!(
        request["requested_scope"],
        json!(["openid", "offline_access", "dns.read"])
    );
    let (verb, body) = match consent {
        Some(body) => ("accept", body),
        None => ("reject", json!({"error": "access_denied"})),
    };
    let answered = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/consent/{verb}?consent_challenge={challenge}"),
            Some(body),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    let res = browser
        .get(
            app,
            answered.json()["redirect_to"]
                .as_str()
                .expect("redirect_to"),
        )
        .await;
    location(&res)
}

fn full_consent() -> Value {
    json!({"grant_scope": ["openid", "offline_access", "dns.read"], "grant_access_token_audience": ["https://api.example.test"]})
}

engine_test!(the_device_flow_end_to_end);
async fn the_device_flow_end_to_end(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.device_client().await;

    // Discovery names the endpoint and the grant.
    let meta = app
        .get_public("/.well-known/openid-configuration")
        .await
        .json();
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{ISSUER}/oauth2/device/auth")
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .expect("grants")
            .contains(&json!(DEVICE_GRANT))
    );

    let asked = app
        .device_auth(
            &client,
            &[
                ("scope", "openid offline_access dns.read"),
                ("audience", "https://api.example.test"),
            ],
        )
        .await;
    let device_code = asked["device_code"]
        .as_str()
        .expect("device_code")
        .to_owned();
    let user_code = asked["user_code"].as_str().expect("user_code").to_owned();
    assert!(device_code.starts_with("lk_dc_"), "{device_code}");
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code.chars().enumerate().all(|(i, c)| if i == 4 {
            c == '-'
        } else {
            "BCDFGHJKLMNPQRSTVWXZ".contains(c)
        }),
        "{user_code}"
    );
    assert_eq!(
        asked["verification_uri"],
        format!("{ISSUER}/oauth2/device/verify")
    );
    assert_eq!(
        asked["verification_uri_complete"],
        format!("{ISSUER}/oauth2/device/verify?user_code={user_code}")
    );
    assert_eq!(asked["expires_in"], 600);
    assert_eq!(asked["interval"], 5);

    // Before the user acts: pending, and polling faster than the interval is slow_down.
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "authorization_pending"
    );
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "slow_down"
    );

    // The user follows the complete URI: the page gets the challenge and the code.
    let mut browser = Browser::default();
    let (challenge, prefilled) = challenge_from(
        &app,
        &mut browser,
        asked["verification_uri_complete"].as_str().expect("uri"),
    )
    .await;
    assert_eq!(prefilled.as_deref(), Some(user_code.as_str()));

    // A wrong code is invalid_request; the right one, typed in lower case without its dash,
    // is accepted.
    let wrong = app.accept_user_code(&challenge, "BBBB-BBBB").await;
    assert_eq!(error_of(&wrong), "invalid_request");
    let typed = user_code.replace('-', "").to_lowercase();
    let accepted = app.accept_user_code(&challenge, &typed).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let redirect_to = accepted.json()["redirect_to"]
        .as_str()
        .expect("redirect_to")
        .to_owned();
    assert!(
        redirect_to.starts_with(&format!("{ISSUER}/oauth2/device/verify?device_verifier=")),
        "{redirect_to}"
    );
    // The challenge is answered: a replay is 410, as a handled Hydra challenge.
    let replay = app.accept_user_code(&challenge, &user_code).await;
    assert_eq!(replay.status, StatusCode::GONE, "{}", replay.text());

    let end = login_and_consent(&app, &mut browser, &redirect_to, Some(full_consent())).await;
    assert_eq!(end, format!("{ISSUER}/ui/device/success"));
    // The device verifier worked once.
    let again = browser.get(&app, &redirect_to).await;
    assert!(!again.status.is_redirection(), "{}", again.status);

    // The next poll after the (lengthened) interval gets the tokens.
    app.clock.advance(10);
    let res = app.poll(&client, &device_code).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let tokens = res.json();
    assert_eq!(tokens["scope"], "openid offline_access dns.read");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert!(tokens["id_token"].as_str().is_some(), "openid: an ID token");
    let intro = app.introspect(&access).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["sub"], "alice");
    assert_eq!(intro["client_id"], client.id.as_str());
    assert_eq!(intro["aud"], json!(["https://api.example.test"]));

    // Single use.
    app.clock.advance(10);
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "invalid_grant"
    );
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // The grant is a connected app like any other: revoking it kills the device's tokens.
    let revoked = app
        .admin(
            Method::DELETE,
            &format!(
                "/admin/oauth2/auth/sessions/consent?subject=alice&client={}",
                client.id
            ),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{}", revoked.text());
    assert_eq!(app.introspect(&access).await["active"], false);
}

engine_test!(a_denied_consent_is_access_denied_and_codes_expire);
async fn a_denied_consent_is_access_denied_and_codes_expire(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.device_client().await;
    let asked = app
        .device_auth(&client, &[("scope", "openid offline_access dns.read")])
        .await;
    let device_code = asked["device_code"]
        .as_str()
        .expect("device_code")
        .to_owned();
    let mut browser = Browser::default();
    let (challenge, _) = challenge_from(
        &app,
        &mut browser,
        &format!("{ISSUER}/oauth2/device/verify"),
    )
    .await;
    let accepted = app
        .accept_user_code(&challenge, asked["user_code"].as_str().expect("code"))
        .await;
    let redirect_to = accepted.json()["redirect_to"]
        .as_str()
        .expect("redirect_to")
        .to_owned();
    let end = login_and_consent(&app, &mut browser, &redirect_to, None).await;
    assert!(
        end.starts_with(&format!("{ISSUER}/ui/device/success?")),
        "{end}"
    );
    assert_eq!(query(&end)["error"], "access_denied");
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "access_denied"
    );
    let tokens = app.count("access_tokens").await;

    // Another code, never entered, expires.
    let asked = app.device_auth(&client, &[("scope", "dns.read")]).await;
    let device_code = asked["device_code"]
        .as_str()
        .expect("device_code")
        .to_owned();
    app.clock.advance(601);
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "expired_token"
    );
    // Its user code is refused once it expired.
    let (challenge, _) = challenge_from(
        &app,
        &mut browser,
        &format!("{ISSUER}/oauth2/device/verify"),
    )
    .await;
    let late = app
        .accept_user_code(&challenge, asked["user_code"].as_str().expect("code"))
        .await;
    assert_eq!(error_of(&late), "invalid_request");
    assert_eq!(
        app.count("access_tokens").await,
        tokens,
        "nothing was issued"
    );
}

engine_test!(device_requests_are_refused_what_the_client_may_not_ask);
async fn device_requests_are_refused_what_the_client_may_not_ask(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.device_client().await;
    let web = app.web_client().await;
    let post = |c: &Registered, form: Vec<(&'static str, &'static str)>| {
        let (id, secret) = (c.id.clone(), c.secret.clone().unwrap_or_default());
        let app = &app;
        async move {
            app.post_form("/oauth2/device/auth", Some((&id, &secret)), &form)
                .await
        }
    };
    let res = post(&web, vec![("scope", "dns.read")]).await;
    assert_eq!(res.json()["error"], "unauthorized_client", "{}", res.text());
    let res = post(&client, vec![("scope", "dns.write")]).await;
    assert_eq!(error_of(&res), "invalid_scope");
    let res = post(&client, vec![("audience", "https://evil.example")]).await;
    assert_eq!(error_of(&res), "invalid_request");
    let res = post(&client, vec![("scope", "openid"), ("scope", "openid")]).await;
    assert_eq!(error_of(&res), "invalid_request");
    let res = app
        .post_form(
            "/oauth2/device/auth",
            Some((&client.id, "wrong-secret")),
            &[("scope", "openid")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(app.count("device_codes").await, 0, "nothing was written");
}

engine_test!(a_device_code_is_refused_to_another_client_and_changes_nothing);
async fn a_device_code_is_refused_to_another_client_and_changes_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.device_client().await;
    let thief = app.device_client().await;
    let asked = app.device_auth(&client, &[("scope", "dns.read")]).await;
    let device_code = asked["device_code"]
        .as_str()
        .expect("device_code")
        .to_owned();
    assert_eq!(
        error_of(&app.poll(&thief, &device_code).await),
        "invalid_grant"
    );
    assert_eq!(
        error_of(&app.poll(&thief, &device_code).await),
        "invalid_grant"
    );
    // The owner's first poll is not slowed down by the thief's.
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "authorization_pending"
    );
    // A forged or malformed code is invalid_grant.
    let forged = format!("{}x", &device_code[..device_code.len() - 1]);
    assert_eq!(error_of(&app.poll(&client, &forged).await), "invalid_grant");
    assert_eq!(
        error_of(&app.poll(&client, "lk_at_nope").await),
        "invalid_grant"
    );
    // Each slow_down lengthens the interval by 5 seconds, held in the database.
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "slow_down"
    );
    app.clock.advance(5);
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "slow_down"
    );
    app.clock.advance(15);
    assert_eq!(
        error_of(&app.poll(&client, &device_code).await),
        "authorization_pending"
    );
}

engine_test!(user_code_guesses_are_limited_per_challenge_and_per_address);
async fn user_code_guesses_are_limited_per_challenge_and_per_address(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.device_client().await;
    let asked = app.device_auth(&client, &[("scope", "dns.read")]).await;
    let user_code = asked["user_code"].as_str().expect("code").to_owned();
    let mut browser = Browser::default();
    let verify = format!("{ISSUER}/oauth2/device/verify");
    let (challenge, _) = challenge_from(&app, &mut browser, &verify).await;
    for _ in 0..5 {
        let res = app.accept_user_code(&challenge, "BBBB-BBBB").await;
        assert_eq!(error_of(&res), "invalid_request");
    }
    // The challenge is spent: even the right code is refused now.
    let res = app.accept_user_code(&challenge, &user_code).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    // New challenges from the same address share a budget (20 an hour).
    for _ in 0..3 {
        let (challenge, _) = challenge_from(&app, &mut browser, &verify).await;
        for _ in 0..5 {
            let res = app.accept_user_code(&challenge, "cccc-cccc").await;
            assert_eq!(error_of(&res), "invalid_request");
        }
    }
    let (challenge, _) = challenge_from(&app, &mut browser, &verify).await;
    let res = app.accept_user_code(&challenge, &user_code).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    // An unknown challenge is 404; a malformed body is 400.
    let res = app.accept_user_code("nope", &user_code).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    let res = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/device/accept?device_challenge={challenge}"),
            Some(json!({"user_code": user_code, "extra": 1})),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    // The code itself was never verified.
    assert_eq!(
        error_of(
            &app.poll(&client, asked["device_code"].as_str().expect("dc"))
                .await
        ),
        "authorization_pending"
    );
}

engine_test!(a_device_verifier_works_only_in_the_browser_that_answered);
async fn a_device_verifier_works_only_in_the_browser_that_answered(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.device_client().await;
    let asked = app.device_auth(&client, &[("scope", "dns.read")]).await;
    let mut browser = Browser::default();
    let (challenge, _) = challenge_from(
        &app,
        &mut browser,
        &format!("{ISSUER}/oauth2/device/verify"),
    )
    .await;
    let accepted = app
        .accept_user_code(&challenge, asked["user_code"].as_str().expect("code"))
        .await;
    let redirect_to = accepted.json()["redirect_to"]
        .as_str()
        .expect("redirect_to")
        .to_owned();
    let mut other = Browser::default();
    let res = other.get(&app, &redirect_to).await;
    assert!(
        !res.status.is_redirection(),
        "another browser gets a page: {}",
        res.status
    );
    // The right browser still can.
    let res = browser.get(&app, &redirect_to).await;
    assert!(location(&res).starts_with(LOGIN_URL));
}

engine_test!(the_device_verification_endpoint_is_limited_per_address);
async fn the_device_verification_endpoint_is_limited_per_address(db: TestDatabase) {
    let app = TestApp::configured(db, |c| {
        c.rate_limits.enabled = true;
        c.rate_limits.authorize_per_ip = 10;
    })
    .await;
    let verify = format!("{ISSUER}/oauth2/device/verify");
    assert!(
        Browser::default()
            .get(&app, &verify)
            .await
            .status
            .is_redirection()
    );
    let res = Browser::default().get(&app, &verify).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.text());
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert_eq!(
        app.count("device_challenges").await,
        1,
        "a refused visit writes nothing"
    );
}
