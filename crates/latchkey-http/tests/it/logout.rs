//! Logout: OIDC RP-initiated logout through Hydra's logout challenge, front-channel iframes,
//! back-channel logout tokens (queued with the logout, sent and retried outside the browser's
//! request), the admin API's session deletion, and the requests that are refused.

use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use latchkey_core::config::Duration;
use latchkey_core::oauth::logout::{BackchannelDelivery, BackchannelSender};
use latchkey_core::store::Store as _;
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{Browser, FlowOptions, Registered, location, pkce, query, run_flow};
use crate::support::{ISSUER, TestApp, engine_test};

const AFTER_LOGOUT: &str = "https://app.example.test/signed-out";
const FRONT: &str = "https://app.example.test/frontchannel";
const BACK: &str = "http://127.0.0.1:9/backchannel";

/// Records the tokens it is given; fails while `fail` is set.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(String, String)>>,
    fail: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl BackchannelSender for Recorder {
    async fn send(&self, uri: &str, logout_token: &str) -> Result<(), String> {
        if let Some(e) = self.fail.lock().expect("lock").clone() {
            return Err(e);
        }
        self.sent
            .lock()
            .expect("lock")
            .push((uri.to_owned(), logout_token.to_owned()));
        Ok(())
    }
}

async fn logout_client(app: &TestApp) -> Registered {
    app.register(json!({
        "client_name": "Logout App",
        "redirect_uris": [crate::browser::REDIRECT],
        "post_logout_redirect_uris": [AFTER_LOGOUT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid offline_access dns.read",
        "frontchannel_logout_uri": FRONT,
        "frontchannel_logout_session_required": true,
        "backchannel_logout_uri": BACK,
        "backchannel_logout_session_required": true,
    }))
    .await
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("b64"),
    )
    .expect("json")
}

fn header_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').next().expect("header");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("b64"),
    )
    .expect("json")
}

/// Signs the browser in to `client` (remembered) and returns its ID token.
async fn signed_in(app: &TestApp, client: &Registered, browser: &mut Browser) -> String {
    let p = pkce(3);
    let o = FlowOptions {
        remember: true,
        ..FlowOptions::default()
    };
    let callback = run_flow(app, browser, &client.id, &p, &o).await;
    let code = query(&callback)["code"].clone();
    let res = app.redeem(client, &code, &p.verifier).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned()
}

fn logout_url(params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    format!("/oauth2/sessions/logout?{}", q.finish())
}

/// The logout challenge the endpoint sent the browser to the logout app with.
fn challenge_of(res: &crate::support::Answer) -> String {
    let to = location(res);
    assert!(
        to.starts_with(&format!("{ISSUER}/ui/logout?logout_challenge=")),
        "{to}"
    );
    query(&to)["logout_challenge"].clone()
}

async fn admin_logout(app: &TestApp, action: &str, challenge: &str) -> crate::support::Answer {
    let (method, path) = match action {
        "get" => (Method::GET, String::new()),
        other => (Method::PUT, format!("/{other}")),
    };
    app.admin(
        method,
        &format!("/admin/oauth2/auth/requests/logout{path}?logout_challenge={challenge}"),
        None,
    )
    .await
}

async fn deliveries(app: &TestApp, sid: &str) -> Vec<BackchannelDelivery> {
    app.store
        .read()
        .await
        .expect("read")
        .logouts()
        .deliveries(sid)
        .await
        .expect("deliveries")
}

engine_test!(rp_initiated_logout_ends_the_session_and_signs_the_apps_out);
/// The whole logout: hint → challenge → accept → verifier → front-channel page → the app's
/// post-logout URI with `state`; one back-channel token, verifiable, with the session's `sid`;
/// afterwards `prompt=none` is `login_required`.
async fn rp_initiated_logout_ends_the_session_and_signs_the_apps_out(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let discovery = app
        .get_public("/.well-known/openid-configuration")
        .await
        .json();
    assert_eq!(
        discovery["end_session_endpoint"],
        format!("{ISSUER}/oauth2/sessions/logout")
    );
    for f in [
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
    ] {
        assert_eq!(discovery[f], true, "{f}");
    }
    let client = logout_client(&app).await;
    let shown = app
        .admin(Method::GET, &format!("/admin/clients/{}", client.id), None)
        .await
        .json();
    assert_eq!(shown["backchannel_logout_uri"], BACK);
    assert_eq!(shown["frontchannel_logout_session_required"], true);

    let mut browser = Browser::default();
    let id_token = signed_in(&app, &client, &mut browser).await;
    let sid = claims_of(&id_token)["sid"]
        .as_str()
        .expect("the ID token carries sid")
        .to_owned();

    let res = browser
        .get(
            &app,
            &logout_url(&[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
                ("state", "bye-123"),
                ("ui_locales", "en"),
            ]),
        )
        .await;
    let challenge = challenge_of(&res);
    let request = admin_logout(&app, "get", &challenge).await;
    assert_eq!(request.status, StatusCode::OK, "{}", request.text());
    let request = request.json();
    assert_eq!(request["subject"], "alice");
    assert_eq!(request["sid"], sid.as_str());
    assert_eq!(request["rp_initiated"], true);
    assert_eq!(request["client"]["client_id"], client.id.as_str());
    assert!(
        request["request_url"]
            .as_str()
            .expect("request_url")
            .starts_with(&format!("{ISSUER}/oauth2/sessions/logout?")),
        "{request}"
    );

    let accepted = admin_logout(&app, "accept", &challenge).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let redirect_to = accepted.json()["redirect_to"]
        .as_str()
        .expect("redirect_to")
        .to_owned();
    assert!(redirect_to.starts_with(&format!("{ISSUER}/oauth2/sessions/logout?logout_verifier=")));
    // The challenge is answered once.
    assert_eq!(
        admin_logout(&app, "accept", &challenge).await.status,
        StatusCode::GONE
    );
    assert_eq!(
        admin_logout(&app, "reject", &challenge).await.status,
        StatusCode::GONE
    );
    assert_eq!(
        app.count("login_sessions").await,
        1,
        "not ended before the browser returns"
    );

    let page = browser.get(&app, &redirect_to).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    let frame = format!(
        "{FRONT}?iss={}&#38;sid={sid}",
        url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect::<String>()
    );
    assert!(
        html.contains(&frame),
        "front-channel iframe {frame}: {html}"
    );
    assert!(
        html.contains("https://app.example.test/signed-out?state=bye-123"),
        "{html}"
    );
    let csp = page.header("content-security-policy").expect("csp");
    assert!(csp.contains("frame-src https://app.example.test"), "{csp}");
    assert!(
        !browser.cookies.contains_key("latchkey_session"),
        "the session cookie is cleared"
    );
    assert_eq!(app.count("login_sessions").await, 0);

    // The verifier works once.
    let again = browser.get(&app, &redirect_to).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.header("location").is_none());

    // One back-channel logout token, queued with the logout and sent outside it.
    let queued = deliveries(&app, &sid).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].delivered_at, None);
    let recorder = Recorder::default();
    let report = app
        .state
        .engine
        .deliver_backchannel_logouts(&recorder, 10)
        .await
        .expect("deliver");
    assert_eq!(report.delivered, 1);
    let sent = recorder.sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, BACK);
    let token = &sent[0].1;
    assert_eq!(header_of(token)["typ"], "logout+jwt");
    let jwks = app.get_public("/.well-known/jwks.json").await.json();
    let claims = crate::engine::decode_jwt(
        &jwks,
        token,
        jsonwebtoken::Algorithm::RS256,
        Some(&client.id),
    );
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], json!([client.id]));
    assert_eq!(claims["sid"], sid.as_str());
    assert!(claims["iat"].is_i64() && claims["jti"].is_string());
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none());
    let recorded = deliveries(&app, &sid).await;
    assert!(recorded[0].delivered_at.is_some());
    assert_eq!(recorded[0].attempts, 1);
    assert_eq!(recorded[0].next_attempt_at, None);
    // Nothing is sent twice.
    let report = app
        .state
        .engine
        .deliver_backchannel_logouts(&recorder, 10)
        .await
        .expect("deliver");
    assert_eq!(report.delivered + report.failed, 0);

    // Signed out: a silent sign-in needs a login.
    let p = pkce(4);
    let o = FlowOptions {
        extra: vec![("prompt", "none".into())],
        ..FlowOptions::default()
    };
    let res = browser
        .get(&app, &crate::browser::authorize_url(&client.id, &p, &o))
        .await;
    assert_eq!(query(&location(&res))["error"], "login_required");
}

engine_test!(bad_logout_requests_are_refused_on_a_page_and_change_nothing);
/// Unregistered and near-miss post-logout URIs, forged hints, a hint of another client, a
/// post-logout URI without a client: each is a page with no redirect, and writes nothing.
async fn bad_logout_requests_are_refused_on_a_page_and_change_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = logout_client(&app).await;
    let other = app.web_client().await;
    let mut browser = Browser::default();
    let id_token = signed_in(&app, &client, &mut browser).await;

    // A token signed by another key under the same kid, and one with a changed payload.
    let header = header_of(&id_token);
    let (key, _) = latchkey_core::keys::SigningKey::generate(
        latchkey_core::keys::SigningAlg::RS256,
        header["kid"].as_str().expect("kid").to_owned(),
    )
    .expect("key");
    let other_key = key.sign_jwt("JWT", &claims_of(&id_token));
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut changed = claims_of(&id_token);
    changed["sub"] = json!("mallory");
    parts[1] = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&changed).expect("json"))
    };
    let tampered = parts.join(".");

    let near_misses = [
        "https://app.example.test/signed-out/",
        "https://app.example.test/signed-out?x=1",
        "https://APP.example.test/signed-out",
        "http://app.example.test/signed-out",
        "https://app.example.test/signed-ou",
        "https://evil.example/signed-out",
    ];
    let mut cases: Vec<Vec<(&str, &str)>> = near_misses
        .iter()
        .map(|uri| {
            vec![
                ("id_token_hint", id_token.as_str()),
                ("post_logout_redirect_uri", *uri),
            ]
        })
        .collect();
    cases.push(vec![
        ("id_token_hint", other_key.as_str()),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
    ]);
    cases.push(vec![("id_token_hint", tampered.as_str())]);
    cases.push(vec![("id_token_hint", "not-a-jwt")]);
    cases.push(vec![
        ("id_token_hint", id_token.as_str()),
        ("client_id", other.id.as_str()),
    ]);
    cases.push(vec![("post_logout_redirect_uri", AFTER_LOGOUT)]);
    cases.push(vec![
        ("client_id", "no-such-client"),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
    ]);
    cases.push(vec![
        ("client_id", other.id.as_str()),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
    ]);
    cases.push(vec![
        ("id_token_hint", id_token.as_str()),
        ("id_token_hint", id_token.as_str()),
    ]);
    let state_too_long = "s".repeat(2000);
    cases.push(vec![
        ("id_token_hint", id_token.as_str()),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
        ("state", state_too_long.as_str()),
    ]);
    for params in cases {
        let res = browser.get(&app, &logout_url(&params)).await;
        assert!(
            res.status == StatusCode::BAD_REQUEST || res.status == StatusCode::UNAUTHORIZED,
            "{params:?}: {} {}",
            res.status,
            res.text()
        );
        assert!(res.header("location").is_none(), "{params:?} redirected");
        assert!(res.text().contains("<h1"), "{params:?}: a page");
        assert_eq!(app.count("logout_requests").await, 0, "{params:?}");
    }
    assert_eq!(app.count("login_sessions").await, 1);

    // The same requests done right go to the logout app.
    let res = browser
        .get(
            &app,
            &logout_url(&[
                ("id_token_hint", &id_token),
                ("client_id", &client.id),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
            ]),
        )
        .await;
    challenge_of(&res);
}

engine_test!(an_expired_id_token_is_a_good_hint);
async fn an_expired_id_token_is_a_good_hint(db: TestDatabase) {
    let app = TestApp::configured(db, |c| c.ttl.id_token = Duration::secs(60)).await;
    let client = logout_client(&app).await;
    let mut browser = Browser::default();
    let id_token = signed_in(&app, &client, &mut browser).await;
    app.clock.advance(300);
    let res = browser
        .get(
            &app,
            &logout_url(&[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
                ("state", "s1"),
            ]),
        )
        .await;
    let challenge = challenge_of(&res);
    let accepted = admin_logout(&app, "accept", &challenge).await.json();
    let done = browser
        .get(&app, accepted["redirect_to"].as_str().expect("redirect_to"))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(app.count("login_sessions").await, 0);
}

engine_test!(a_logout_completes_only_in_the_browser_that_started_it);
async fn a_logout_completes_only_in_the_browser_that_started_it(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = logout_client(&app).await;
    let mut browser = Browser::default();
    let id_token = signed_in(&app, &client, &mut browser).await;
    let res = browser
        .get(&app, &logout_url(&[("id_token_hint", &id_token)]))
        .await;
    let challenge = challenge_of(&res);
    let accepted = admin_logout(&app, "accept", &challenge).await.json();
    let redirect_to = accepted["redirect_to"].as_str().expect("redirect_to");

    let mut stranger = Browser::default();
    let res = stranger.get(&app, redirect_to).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert!(res.header("location").is_none());
    assert_eq!(app.count("login_sessions").await, 1, "nothing ended");
    assert_eq!(app.count("backchannel_logouts").await, 0);

    // Without a post_logout_redirect_uri the browser ends on the "signed out" page.
    let res = browser.get(&app, redirect_to).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.text().contains(&format!("{ISSUER}/ui/signed-out")));
    assert_eq!(app.count("login_sessions").await, 0);
}

engine_test!(a_rejected_logout_keeps_the_user_signed_in);
async fn a_rejected_logout_keeps_the_user_signed_in(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = logout_client(&app).await;
    let mut browser = Browser::default();
    signed_in(&app, &client, &mut browser).await;
    // OP-initiated: no hint, the browser's session.
    let res = browser.get(&app, "/oauth2/sessions/logout").await;
    let challenge = challenge_of(&res);
    let request = admin_logout(&app, "get", &challenge).await.json();
    assert_eq!(request["rp_initiated"], false);
    assert_eq!(request["client"], Value::Null);
    let rejected = admin_logout(&app, "reject", &challenge).await;
    assert_eq!(rejected.status, StatusCode::NO_CONTENT);
    assert_eq!(
        admin_logout(&app, "accept", &challenge).await.status,
        StatusCode::GONE
    );
    assert_eq!(
        admin_logout(&app, "get", "no-such-challenge").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.count("login_sessions").await, 1);
}

engine_test!(a_failing_receiver_is_retried_and_the_outcome_recorded);
/// A receiver that answers 500 does not hold up the logout; its delivery is tried again after
/// the backoff, and each outcome is recorded.
async fn a_failing_receiver_is_retried_and_the_outcome_recorded(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = logout_client(&app).await;
    let mut browser = Browser::default();
    let id_token = signed_in(&app, &client, &mut browser).await;
    let sid = claims_of(&id_token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let res = browser
        .get(&app, &logout_url(&[("id_token_hint", &id_token)]))
        .await;
    let accepted = admin_logout(&app, "accept", &challenge_of(&res))
        .await
        .json();
    let done = browser
        .get(&app, accepted["redirect_to"].as_str().expect("redirect_to"))
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(app.count("login_sessions").await, 0, "the logout completed");

    let recorder = Recorder::default();
    *recorder.fail.lock().expect("lock") = Some("answered 500".into());
    let engine = &app.state.engine;
    let report = engine
        .deliver_backchannel_logouts(&recorder, 10)
        .await
        .expect("deliver");
    assert_eq!(report.failed, 1);
    let d = &deliveries(&app, &sid).await[0];
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_error.as_deref(), Some("answered 500"));
    assert_eq!(d.delivered_at, None);
    let retry_at = d.next_attempt_at.expect("tried again later");
    // Not before the backoff.
    assert_eq!(
        engine
            .deliver_backchannel_logouts(&recorder, 10)
            .await
            .expect("deliver"),
        latchkey_core::oauth::logout::DeliveryReport::default()
    );
    app.clock.advance(retry_at - d.created_at);
    *recorder.fail.lock().expect("lock") = None;
    let report = engine
        .deliver_backchannel_logouts(&recorder, 10)
        .await
        .expect("deliver");
    assert_eq!(report.delivered, 1);
    let d = &deliveries(&app, &sid).await[0];
    assert_eq!(d.attempts, 2);
    assert!(d.delivered_at.is_some());
    assert_eq!(d.last_error, None);

    // A delivery that keeps failing is given up after the last attempt, and stays recorded.
    let mut other = Browser::default();
    let id_token = signed_in(&app, &client, &mut other).await;
    let sid = claims_of(&id_token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let res = app
        .admin(
            Method::DELETE,
            &format!("/admin/oauth2/auth/sessions/login?sid={sid}"),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    *recorder.fail.lock().expect("lock") = Some("timed out".into());
    for _ in 0..latchkey_core::oauth::logout::MAX_DELIVERY_ATTEMPTS {
        engine
            .deliver_backchannel_logouts(&recorder, 10)
            .await
            .expect("deliver");
        app.clock.advance(3600);
    }
    let d = &deliveries(&app, &sid).await[0];
    assert_eq!(
        d.attempts,
        latchkey_core::oauth::logout::MAX_DELIVERY_ATTEMPTS
    );
    assert_eq!(d.next_attempt_at, None);
    assert_eq!(d.last_error.as_deref(), Some("timed out"));
}

engine_test!(deleting_login_sessions_sends_back_channel_logouts);
/// `DELETE /admin/oauth2/auth/sessions/login?subject=` ends every session of the subject and
/// queues a logout token for each app of each session.
async fn deleting_login_sessions_sends_back_channel_logouts(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = logout_client(&app).await;
    let (mut a, mut b) = (Browser::default(), Browser::default());
    let sid_a = claims_of(&signed_in(&app, &client, &mut a).await)["sid"].clone();
    let sid_b = claims_of(&signed_in(&app, &client, &mut b).await)["sid"].clone();
    assert_ne!(sid_a, sid_b);
    assert_eq!(app.count("login_sessions").await, 2);
    let res = app
        .admin(
            Method::DELETE,
            "/admin/oauth2/auth/sessions/login?subject=alice",
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(app.count("login_sessions").await, 0);
    assert_eq!(app.count("backchannel_logouts").await, 2);
    let recorder = Recorder::default();
    let report = app
        .state
        .engine
        .deliver_backchannel_logouts(&recorder, 10)
        .await
        .expect("deliver");
    assert_eq!(report.delivered, 2);
    let sids: Vec<Value> = recorder
        .sent
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, t)| claims_of(t)["sid"].clone())
        .collect();
    assert!(sids.contains(&sid_a) && sids.contains(&sid_b), "{sids:?}");
    // Neither "subject" nor "sid", or both: refused.
    for q in ["", "?subject=alice&sid=x"] {
        let res = app
            .admin(
                Method::DELETE,
                &format!("/admin/oauth2/auth/sessions/login{q}"),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{q}");
    }
}

engine_test!(logout_uris_of_clients_are_validated);
async fn logout_uris_of_clients_are_validated(db: TestDatabase) {
    let app = TestApp::new(db).await;
    for (field, uri) in [
        ("backchannel_logout_uri", "http://app.example/logout"),
        ("backchannel_logout_uri", "https://app.example/logout#x"),
        ("backchannel_logout_uri", "/logout"),
        ("frontchannel_logout_uri", "javascript:alert(1)"),
        ("frontchannel_logout_uri", "http://10.0.0.1/logout"),
        ("post_logout_redirect_uris", "https://app.example/#x"),
    ] {
        let value = if field == "post_logout_redirect_uris" {
            json!([uri])
        } else {
            json!(uri)
        };
        let res = app
            .admin(
                Method::POST,
                "/admin/clients",
                Some(json!({
                    "redirect_uris": [crate::browser::REDIRECT],
                    field: value,
                })),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{field} {uri}");
        assert!(res.text().contains(field), "{}", res.text());
    }
    assert_eq!(app.count("clients").await, 0);
    app.register(json!({
        "redirect_uris": [crate::browser::REDIRECT],
        "backchannel_logout_uri": "http://localhost:3000/logout",
        "frontchannel_logout_uri": "https://app.example/fc",
    }))
    .await;
}

/// The real sender against receivers that hang and that fail: each is an error, in bounded
/// time, and a receiver that answers 200 gets the token as a form field.
#[tokio::test]
async fn the_http_sender_bounds_each_delivery() {
    use latchkey_http::backchannel::HttpSender;
    let sender = HttpSender::new().expect("sender");

    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hang_addr = hang.local_addr().expect("addr");
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = hang.accept().await {
            keep.lock().expect("lock").push(s);
        }
    });
    let err = sender
        .send(&format!("http://{hang_addr}/logout"), "t")
        .await
        .expect_err("a receiver that hangs");
    assert_eq!(err, "timed out");

    let got = Arc::new(Mutex::new(None::<String>));
    let seen = got.clone();
    let ok_router = axum::Router::new()
        .route(
            "/ok",
            axum::routing::post(move |body: String| {
                let seen = seen.clone();
                async move {
                    *seen.lock().expect("lock") = Some(body);
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/fail",
            axum::routing::post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route(
            "/moved",
            axum::routing::post(|| async {
                axum::response::Redirect::temporary("https://elsewhere.example/")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, ok_router).await });
    assert_eq!(
        sender.send(&format!("http://{addr}/fail"), "t").await,
        Err("answered 500".into())
    );
    assert_eq!(
        sender.send(&format!("http://{addr}/moved"), "t").await,
        Err("answered 307".into()),
        "redirects are not followed"
    );
    sender
        .send(&format!("http://{addr}/ok"), "the.logout.token")
        .await
        .expect("delivered");
    assert_eq!(
        got.lock().expect("lock").as_deref(),
        Some("logout_token=the.logout.token")
    );
    assert!(
        sender.send("http://app.example/logout", "t").await.is_err(),
        "plain http off loopback is refused"
    );
}

engine_test!(an_app_that_skips_the_logout_question_signs_out_at_once);
/// `skip_logout_consent`: the RP-initiated logout goes straight to the verifier, still only in
/// the browser that asked; without a hint the logout app is asked as usual.
async fn an_app_that_skips_the_logout_question_signs_out_at_once(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app
        .register(json!({
            "redirect_uris": [crate::browser::REDIRECT],
            "post_logout_redirect_uris": [AFTER_LOGOUT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access dns.read",
            "skip_logout_consent": true,
        }))
        .await;
    let mut browser = Browser::default();
    let id_token = signed_in(&app, &client, &mut browser).await;
    let res = browser.get(&app, "/oauth2/sessions/logout").await;
    challenge_of(&res);
    let res = browser
        .get(
            &app,
            &logout_url(&[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
                ("state", "s2"),
            ]),
        )
        .await;
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{ISSUER}/oauth2/sessions/logout?logout_verifier=")),
        "{to}"
    );
    let mut stranger = Browser::default();
    assert_eq!(stranger.get(&app, &to).await.status, StatusCode::FORBIDDEN);
    let done = browser.get(&app, &to).await;
    assert_eq!(location(&done), format!("{AFTER_LOGOUT}?state=s2"));
    assert_eq!(app.count("login_sessions").await, 0);
}
