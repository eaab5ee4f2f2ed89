//! Authorization request and code attacks: PKCE downgrade (RFC 9700 §4.8), the implicit grant
//! (§2.1.2), code injection and replay (§4.5, §4.2.4), code misuse at the token endpoint.

use axum::http::StatusCode;
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use super::{authorize, before, code_for, family_ended, shown_not_redirected, unchanged};
use crate::browser::{Browser, REDIRECT, query};
use crate::support::{TestApp, engine_test};

/// The authorization request is answered by a redirect to the client with `error`, `state` and
/// `iss`, and nothing is stored.
async fn redirected_with_error(app: &TestApp, url: &str, error: &str) {
    let res = Browser::default().get(app, url).await;
    let to = res.header("location").unwrap_or_default().to_owned();
    assert!(to.starts_with(REDIRECT), "{url}: {} {to}", res.status);
    let q = query(&to);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{to}");
    assert_eq!(q.get("state").map(String::as_str), Some("s-1"));
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(crate::support::ISSUER),
        "RFC 9207"
    );
    assert!(!q.contains_key("code"));
}

engine_test!(pkce_downgrade_a_request_without_code_challenge_is_refused);
async fn pkce_downgrade_a_request_without_code_challenge_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    redirected_with_error(
        &app,
        &authorize(
            &c.id,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
        "invalid_request",
    )
    .await;
    unchanged(&app, &snapshot).await;
}

engine_test!(pkce_downgrade_the_plain_method_is_refused);
async fn pkce_downgrade_the_plain_method_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    redirected_with_error(
        &app,
        &authorize(
            &c.id,
            &[
                (
                    "code_challenge",
                    "plain-challenge-plain-challenge-plain-challenge",
                ),
                ("code_challenge_method", "plain"),
            ],
        ),
        "invalid_request",
    )
    .await;
    unchanged(&app, &snapshot).await;
}

engine_test!(implicit_grant_response_type_token_is_refused);
async fn implicit_grant_response_type_token_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    for rt in ["token", "id_token token", "code token"] {
        redirected_with_error(
            &app,
            &authorize(&c.id, &[("response_type", rt)]),
            "unsupported_response_type",
        )
        .await;
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(scope_escalation_in_the_authorization_request_is_refused);
async fn scope_escalation_in_the_authorization_request_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    redirected_with_error(
        &app,
        &authorize(&c.id, &[("scope", "openid dns.read admin.everything")]),
        "invalid_scope",
    )
    .await;
    unchanged(&app, &snapshot).await;
}

engine_test!(duplicate_parameters_in_the_authorization_request_are_refused);
async fn duplicate_parameters_in_the_authorization_request_are_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let snapshot = before(&app).await;
    // client_id and redirect_uri twice: shown, since the redirect URI is not known.
    for dup in [
        "&client_id=other",
        "&redirect_uri=https%3A%2F%2Fevil.example%2F",
    ] {
        let text = shown_not_redirected(&app, &format!("{}{dup}", authorize(&c.id, &[]))).await;
        assert!(text.contains("more than once"), "{dup}: {text}");
    }
    // Anything else twice: back to the validated redirect URI with invalid_request.
    for dup in [
        "&scope=openid",
        "&code_challenge=AAAA",
        "&response_type=code",
    ] {
        let res = Browser::default()
            .get(&app, &format!("{}{dup}", authorize(&c.id, &[])))
            .await;
        let to = res.header("location").unwrap_or_default().to_owned();
        assert!(to.starts_with(REDIRECT), "{dup}: {to}");
        assert_eq!(query(&to)["error"], "invalid_request", "{dup}");
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(pkce_a_wrong_code_verifier_is_refused);
async fn pkce_a_wrong_code_verifier_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let (code, _) = code_for(&app, &c).await;
    let snapshot = before(&app).await;
    for verifier in ["wrong-verifier-wrong-verifier-wrong-verifier-wrong", ""] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        if !verifier.is_empty() {
            form.push(("code_verifier", verifier));
        }
        let res = app.token(&c, &form).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
        assert!(
            ["invalid_grant", "invalid_request"]
                .contains(&res.json()["error"].as_str().unwrap_or_default()),
            "{}",
            res.text()
        );
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(code_injection_another_clients_code_is_refused);
async fn code_injection_another_clients_code_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let victim = app.web_client().await;
    let attacker = app.web_client().await;
    let (code, p) = code_for(&app, &victim).await;
    let snapshot = before(&app).await;
    let res = app.redeem(&attacker, &code, &p.verifier).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_grant");
    unchanged(&app, &snapshot).await;
}

engine_test!(a_code_redeemed_with_another_redirect_uri_is_refused);
async fn a_code_redeemed_with_another_redirect_uri_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app
        .register(json!({"redirect_uris": [REDIRECT, "https://app.example.test/other"], "grant_types": ["authorization_code", "refresh_token"], "scope": "openid offline_access dns.read"}))
        .await;
    let (code, p) = code_for(&app, &c).await;
    let snapshot = before(&app).await;
    let res = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example.test/other"),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_grant");
    unchanged(&app, &snapshot).await;
}

engine_test!(an_expired_code_is_refused);
async fn an_expired_code_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let (code, p) = code_for(&app, &c).await;
    app.clock.advance(11 * 60);
    let snapshot = before(&app).await;
    let res = app.redeem(&c, &code, &p.verifier).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_grant");
    unchanged(&app, &snapshot).await;
}

engine_test!(a_forged_code_is_refused);
async fn a_forged_code_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let (code, p) = code_for(&app, &c).await;
    let snapshot = before(&app).await;
    let mut forged = code.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    for attempt in [forged.as_str(), "ory_ac_forged", ""] {
        let res = app.redeem(&c, attempt, &p.verifier).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(authorization_code_replay_revokes_what_the_code_issued);
async fn authorization_code_replay_revokes_what_the_code_issued(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let (code, p) = code_for(&app, &c).await;
    let first = app.redeem(&c, &code, &p.verifier).await.json();
    let snapshot = before(&app).await;
    let replay = app.redeem(&c, &code, &p.verifier).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");
    let issued: Vec<&str> = ["access_token", "refresh_token"]
        .iter()
        .map(|k| first[k].as_str().expect("token"))
        .collect();
    family_ended(&app, &snapshot, &issued).await;
}

engine_test!(
    concurrent_redemptions_of_one_code_issue_once_and_end_the_family,
    flavor = "multi_thread",
    worker_threads = 2
);
/// The same code redeemed by concurrent requests (each reads it unused before any of them
/// writes): one exchange is written, the others are replays, and the replays revoke what the one
/// got.
async fn concurrent_redemptions_of_one_code_issue_once_and_end_the_family(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let (code, p) = code_for(&app, &c).await;
    let snapshot = before(&app).await;
    let (first, second, third) = tokio::join!(
        app.redeem(&c, &code, &p.verifier),
        app.redeem(&c, &code, &p.verifier),
        app.redeem(&c, &code, &p.verifier),
    );
    let answers = [first, second, third];
    let won: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "exactly one exchange is written");
    for lost in answers.iter().filter(|a| a.status != StatusCode::OK) {
        assert_eq!(lost.status, StatusCode::BAD_REQUEST);
        assert_eq!(lost.json()["error"], "invalid_grant");
    }
    let first = won[0].json();
    let issued: Vec<&str> = ["access_token", "refresh_token"]
        .iter()
        .map(|k| first[k].as_str().expect("token"))
        .collect();
    for token in &issued {
        assert_eq!(app.introspect(token).await["active"], false, "{token}");
    }
    let after = app.store.snapshot().await.expect("snapshot");
    for table in ["access_tokens", "refresh_tokens"] {
        assert_eq!(
            after[table].len(),
            snapshot[table].len() + 1,
            "one exchange's tokens in {table}, none of the replays'"
        );
    }
}

engine_test!(a_public_client_must_use_pkce);
async fn a_public_client_must_use_pkce(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let public = app
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "openid dns.read"}))
        .await;
    let snapshot = before(&app).await;
    redirected_with_error(
        &app,
        &authorize(
            &public.id,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ),
        "invalid_request",
    )
    .await;
    unchanged(&app, &snapshot).await;
}
