//! Token attacks: refresh token replay and theft (RFC 9700 §4.14), cross-client use of tokens at
//! introspection and revocation (§4.9, RFC 7009 §2.1), forged and misused tokens.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use super::{before, family_ended, service, service_token, tokens_for, unchanged};
use crate::browser::Registered;
use crate::support::{Answer, TestApp, engine_test};

async fn userinfo(app: &TestApp, token: &str) -> Answer {
    let req = Request::get("/userinfo")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("req");
    TestApp::call(&app.public, req).await
}

/// Introspection by `who` at the public, client-authenticated endpoint.
async fn introspect_as(app: &TestApp, who: &Registered, token: &str) -> serde_json::Value {
    let res = app
        .post_form(
            "/oauth2/introspect",
            Some((&who.id, who.secret.as_deref().unwrap_or_default())),
            &[("token", token)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn refresh(rt: &str) -> [(&'static str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", rt)]
}

engine_test!(refresh_token_replay_after_the_grace_period_revokes_the_family);
async fn refresh_token_replay_after_the_grace_period_revokes_the_family(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let t = tokens_for(&app, &c).await;
    let rt = t["refresh_token"].as_str().expect("rt");
    let next = app.token(&c, &refresh(rt)).await.json();
    app.clock.advance(31);
    let snapshot = before(&app).await;
    let res = app.token(&c, &refresh(rt)).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_grant");
    let issued: Vec<&str> = ["access_token", "refresh_token"]
        .iter()
        .map(|k| next[k].as_str().expect("token"))
        .collect();
    family_ended(&app, &snapshot, &issued).await;
}

engine_test!(a_stolen_refresh_token_presented_by_another_client_is_refused_and_ends_its_family);
async fn a_stolen_refresh_token_presented_by_another_client_is_refused_and_ends_its_family(
    db: TestDatabase,
) {
    let app = TestApp::new(db).await;
    let victim = app.web_client().await;
    let thief = app.web_client().await;
    let t = tokens_for(&app, &victim).await;
    let snapshot = before(&app).await;
    let res = app
        .token(&thief, &refresh(t["refresh_token"].as_str().expect("rt")))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_grant");
    // Another client holding it means it leaked: the family ends, nothing is issued.
    let issued: Vec<&str> = ["access_token", "refresh_token"]
        .iter()
        .map(|k| t[k].as_str().expect("token"))
        .collect();
    family_ended(&app, &snapshot, &issued).await;
}

engine_test!(an_access_token_is_not_a_refresh_token);
async fn an_access_token_is_not_a_refresh_token(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let t = tokens_for(&app, &c).await;
    let snapshot = before(&app).await;
    let res = app
        .token(&c, &refresh(t["access_token"].as_str().expect("at")))
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_grant");
    unchanged(&app, &snapshot).await;
}

engine_test!(refresh_scope_escalation_is_refused);
async fn refresh_scope_escalation_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let t = tokens_for(&app, &c).await;
    let rt = t["refresh_token"].as_str().expect("rt");
    let snapshot = before(&app).await;
    let res = app
        .token(
            &c,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("scope", "openid offline_access dns.read dns.write"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_scope");
    unchanged(&app, &snapshot).await;
}

engine_test!(introspection_by_another_client_learns_nothing);
async fn introspection_by_another_client_learns_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let owner = service(&app).await;
    let snoop = service(&app).await;
    let at = service_token(&app, &owner).await;
    let snapshot = before(&app).await;
    assert_eq!(
        introspect_as(&app, &snoop, &at).await,
        json!({"active": false})
    );
    unchanged(&app, &snapshot).await;
}

engine_test!(revocation_by_another_client_leaves_the_token_alone);
async fn revocation_by_another_client_leaves_the_token_alone(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let owner = service(&app).await;
    let attacker = service(&app).await;
    let at = service_token(&app, &owner).await;
    let snapshot = before(&app).await;
    let res = app
        .post_form(
            "/oauth2/revoke",
            Some((&attacker.id, attacker.secret.as_deref().unwrap_or_default())),
            &[("token", &at)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "RFC 7009: the same answer");
    unchanged(&app, &snapshot).await;
    assert_eq!(app.introspect(&at).await["active"], true);
}

engine_test!(a_tampered_opaque_token_is_inactive_everywhere);
async fn a_tampered_opaque_token_is_inactive_everywhere(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let at = service_token(&app, &c).await;
    let snapshot = before(&app).await;
    let (body, sig) = at.rsplit_once('.').unwrap_or((&at, ""));
    let tampered = [
        format!("{body}.{}", sig.chars().rev().collect::<String>()),
        format!("{at}x"),
        at[..at.len() - 1].to_owned(),
        "ory_at_".to_owned() + &"A".repeat(80),
    ];
    for t in &tampered {
        assert_eq!(app.introspect(t).await, json!({"active": false}), "{t}");
        assert_eq!(userinfo(&app, t).await.status, StatusCode::UNAUTHORIZED);
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(a_jwt_access_token_with_alg_none_or_a_forged_signature_is_refused);
async fn a_jwt_access_token_with_alg_none_or_a_forged_signature_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app
        .register(json!({"client_name": "JWT", "redirect_uris": [crate::browser::REDIRECT], "grant_types": ["authorization_code", "refresh_token"], "scope": "openid offline_access dns.read", "access_token_strategy": "jwt"}))
        .await;
    let t = tokens_for(&app, &c).await;
    let jwt = t["access_token"].as_str().expect("jwt");
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    claims["sub"] = json!("mallory");
    let forged_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let hs = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let snapshot = before(&app).await;
    for forged in [
        format!("{none}.{}.", parts[1]),
        format!("{}.{forged_claims}.{}", parts[0], parts[2]),
        format!("{hs}.{}.{}", parts[1], parts[2]),
    ] {
        assert_eq!(
            userinfo(&app, &forged).await.status,
            StatusCode::UNAUTHORIZED,
            "{forged}"
        );
        assert_eq!(app.introspect(&forged).await["active"], false);
    }
    unchanged(&app, &snapshot).await;
    assert_eq!(userinfo(&app, jwt).await.status, StatusCode::OK);
}

engine_test!(an_expired_access_token_is_inactive);
async fn an_expired_access_token_is_inactive(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let at = service_token(&app, &c).await;
    app.clock.advance(3601);
    let snapshot = before(&app).await;
    assert_eq!(app.introspect(&at).await, json!({"active": false}));
    assert_eq!(userinfo(&app, &at).await.status, StatusCode::UNAUTHORIZED);
    unchanged(&app, &snapshot).await;
}

engine_test!(a_refresh_token_is_not_a_bearer_token_at_userinfo);
async fn a_refresh_token_is_not_a_bearer_token_at_userinfo(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let t = tokens_for(&app, &c).await;
    let snapshot = before(&app).await;
    let res = userinfo(&app, t["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert!(
        res.header("www-authenticate")
            .is_some_and(|h| h.contains("invalid_token"))
    );
    unchanged(&app, &snapshot).await;
}

engine_test!(the_id_token_names_its_client_as_audience_and_authorized_party);
async fn the_id_token_names_its_client_as_audience_and_authorized_party(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = app.web_client().await;
    let other = app.web_client().await;
    let t = tokens_for(&app, &c).await;
    let id = t["id_token"].as_str().expect("id_token");
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id.split('.').nth(1).expect("claims"))
            .expect("b64"),
    )
    .expect("json");
    let aud = &claims["aud"];
    let names = |v: &serde_json::Value, who: &str| {
        v == who || v.as_array().is_some_and(|a| a.iter().any(|x| x == who))
    };
    assert!(names(aud, &c.id), "{claims}");
    assert!(!names(aud, &other.id), "{claims}");
    if let Some(azp) = claims.get("azp") {
        assert_eq!(azp, &json!(c.id));
    }
    // Presented to userinfo as a bearer token, an ID token is refused.
    let snapshot = before(&app).await;
    assert_eq!(userinfo(&app, id).await.status, StatusCode::UNAUTHORIZED);
    unchanged(&app, &snapshot).await;
}
