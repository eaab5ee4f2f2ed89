//! The authorization code flow, the token endpoint, revocation, introspection and userinfo,
//! driven in-process through both routers.

use axum::http::{Method, StatusCode};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{
    Browser, FlowOptions, REDIRECT, authorize_url, location, pkce, query, run_flow,
};
use crate::support::{ISSUER, TestApp, engine_test};

pub(crate) fn decode_jwt(
    app_jwks: &Value,
    jwt: &str,
    alg: jsonwebtoken::Algorithm,
    aud: Option<&str>,
) -> Value {
    let header = jsonwebtoken::decode_header(jwt).expect("header");
    let kid = header.kid.expect("kid");
    let jwk = app_jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("published key");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).expect("jwk");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("key");
    let mut v = jsonwebtoken::Validation::new(alg);
    match aud {
        Some(a) => v.set_audience(&[a]),
        None => v.validate_aud = false,
    }
    v.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .expect("verifies")
        .claims
}

async fn code_from(
    app: &TestApp,
    client_id: &str,
    browser: &mut Browser,
) -> (String, crate::browser::Pkce) {
    let p = pkce(7);
    let callback = run_flow(app, browser, client_id, &p, &FlowOptions::default()).await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    let q = query(&callback);
    assert_eq!(q["state"], "state-123456");
    assert_eq!(q["iss"], ISSUER, "RFC 9207 iss");
    (q["code"].clone(), p)
}

engine_test!(the_whole_authorization_code_flow);
async fn the_whole_authorization_code_flow(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let mut browser = Browser::default();
    let (code, p) = code_from(&app, &client.id, &mut browser).await;
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let tokens = res.json();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "openid offline_access dns.read");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh token with offline_access")
        .to_owned();
    assert!(access.starts_with("lk_at_") && refresh.starts_with("lk_rt_"));

    let jwks = app.get_public("/.well-known/jwks.json").await.json();
    let id = decode_jwt(
        &jwks,
        tokens["id_token"].as_str().expect("id token"),
        jsonwebtoken::Algorithm::RS256,
        Some(&client.id),
    );
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["azp"], client.id.as_str());
    assert_eq!(id["nonce"], "nonce-abcdef");
    assert_eq!(id["email"], "alice@example.test");
    assert_eq!(id["acr"], "1");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(id["auth_time"].as_i64().is_some());
    let at_hash =
        latchkey_core::crypto::b64(&latchkey_core::crypto::sha256(access.as_bytes())[..16]);
    assert_eq!(id["at_hash"], at_hash);

    let intro = app.introspect(&access).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["sub"], "alice");
    assert_eq!(intro["client_id"], client.id.as_str());
    assert_eq!(intro["token_use"], "access_token");
    assert_eq!(intro["ext"]["tier"], "gold");
    assert_eq!(intro["iss"], ISSUER);

    let req = axum::http::Request::get("/userinfo")
        .header("authorization", format!("Bearer {access}"))
        .body(axum::body::Body::empty())
        .expect("req");
    let info = TestApp::call(&app.public, req).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text());
    assert_eq!(
        info.json(),
        json!({"sub": "alice", "email": "alice@example.test"})
    );

    // Refresh rotates: a new pair; the old refresh token is spent.
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let rotated = res.json();
    let refresh2 = rotated["refresh_token"]
        .as_str()
        .expect("new refresh")
        .to_owned();
    let access2 = rotated["access_token"]
        .as_str()
        .expect("new access")
        .to_owned();
    assert_ne!(refresh2, refresh);
    assert_eq!(
        app.introspect(&refresh).await["active"],
        false,
        "the used refresh token is inactive"
    );
    assert_eq!(
        app.introspect(&refresh2).await["token_use"],
        "refresh_token"
    );
    let id2 = decode_jwt(
        &jwks,
        rotated["id_token"].as_str().expect("id token"),
        jsonwebtoken::Algorithm::RS256,
        Some(&client.id),
    );
    assert_eq!(
        id2["auth_time"], id["auth_time"],
        "auth_time is the original authentication"
    );

    // Narrowing on refresh is fine, widening is not.
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh2),
                ("scope", "dns.read dns.write"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_scope");
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh2),
                ("scope", "dns.read"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let narrowed = res.json();
    assert_eq!(narrowed["scope"], "dns.read");
    assert!(narrowed.get("id_token").is_none(), "no openid, no ID token");
    let refresh3 = narrowed["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();

    // Reusing a spent refresh token after the grace period revokes the whole family.
    app.clock.advance(31);
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"], "invalid_grant");
    assert_eq!(
        app.introspect(&access2).await["active"],
        false,
        "family revoked"
    );
    assert_eq!(
        app.introspect(&refresh3).await["active"],
        false,
        "family revoked"
    );
    assert_eq!(app.introspect(&access).await["active"], false);
}

engine_test!(a_replayed_code_fails_and_revokes_what_it_issued);
async fn a_replayed_code_fails_and_revokes_what_it_issued(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let (code, p) = code_from(&app, &client.id, &mut Browser::default()).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", p.verifier.as_str()),
    ];
    let first = app.token(&client, &form).await.json();
    let access = first["access_token"].as_str().expect("access").to_owned();
    assert_eq!(app.introspect(&access).await["active"], true);
    let replay = app.token(&client, &form).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_eq!(app.introspect(&access).await["active"], false);
    assert_eq!(
        app.introspect(first["refresh_token"].as_str().expect("refresh"))
            .await["active"],
        false
    );
}

engine_test!(remembered_login_and_consent_are_skipped);
async fn remembered_login_and_consent_are_skipped(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let mut browser = Browser::default();
    let p = pkce(1);
    let mut o = FlowOptions {
        remember: true,
        ..FlowOptions::default()
    };
    o.consent["remember"] = json!(true);
    run_flow(&app, &mut browser, &client.id, &p, &o).await;

    // Second time: the login request says skip, with the subject.
    let res = browser.get(&app, &authorize_url(&client.id, &p, &o)).await;
    let challenge = query(&location(&res))["login_challenge"].clone();
    let login = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={challenge}"),
            None,
        )
        .await
        .json();
    assert_eq!(login["skip"], true);
    assert_eq!(login["subject"], "alice");
    assert_eq!(login["client"]["client_id"], client.id.as_str());
    assert!(login["client"].get("client_secret").is_none());
    let other = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}"),
            Some(json!({"subject": "mallory"})),
        )
        .await;
    assert_eq!(
        other.status,
        StatusCode::BAD_REQUEST,
        "a skipped login is accepted for its subject only"
    );
    let ok = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}"),
            Some(json!({"subject": "alice"})),
        )
        .await;
    let res = browser
        .get(&app, ok.json()["redirect_to"].as_str().expect("redirect"))
        .await;
    let challenge = query(&location(&res))["consent_challenge"].clone();
    let consent = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/consent?consent_challenge={challenge}"),
            None,
        )
        .await
        .json();
    assert_eq!(
        consent["skip"], true,
        "the remembered consent covers the request"
    );
    assert_eq!(
        consent["requested_scope"],
        json!(["openid", "offline_access", "dns.read"])
    );

    // prompt=consent forces the consent screen; prompt=login forces the login screen.
    let forced = FlowOptions {
        extra: vec![("prompt", "login consent".into())],
        ..FlowOptions::default()
    };
    let res = browser
        .get(&app, &authorize_url(&client.id, &p, &forced))
        .await;
    let challenge = query(&location(&res))["login_challenge"].clone();
    let login = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={challenge}"),
            None,
        )
        .await
        .json();
    assert_eq!(login["skip"], false);

    // max_age shorter than the session's age forces a login too.
    app.clock.advance(120);
    let aged = FlowOptions {
        extra: vec![("max_age", "60".into())],
        ..FlowOptions::default()
    };
    let res = browser
        .get(&app, &authorize_url(&client.id, &p, &aged))
        .await;
    let challenge = query(&location(&res))["login_challenge"].clone();
    let login = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={challenge}"),
            None,
        )
        .await
        .json();
    assert_eq!(login["skip"], false);
}

engine_test!(prompt_none_without_a_session_is_login_required);
async fn prompt_none_without_a_session_is_login_required(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let o = FlowOptions {
        extra: vec![("prompt", "none".into())],
        ..FlowOptions::default()
    };
    let before = app.count("flows").await;
    let res = Browser::default()
        .get(&app, &authorize_url(&client.id, &pkce(1), &o))
        .await;
    let q = query(&location(&res));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "state-123456");
    assert_eq!(q["iss"], ISSUER);
    assert_eq!(app.count("flows").await, before);
}

engine_test!(rejected_login_and_consent_reach_the_client_as_access_denied);
async fn rejected_login_and_consent_reach_the_client_as_access_denied(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let p = pkce(2);
    let mut browser = Browser::default();
    let res = browser
        .get(
            &app,
            &authorize_url(&client.id, &p, &FlowOptions::default()),
        )
        .await;
    let challenge = query(&location(&res))["login_challenge"].clone();
    let rejected = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/reject?login_challenge={challenge}"),
            Some(json!({"error": "access_denied", "error_description": "The user said no."})),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK);
    let res = browser
        .get(
            &app,
            rejected.json()["redirect_to"].as_str().expect("redirect"),
        )
        .await;
    let q = query(&location(&res));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], "The user said no.");
    assert_eq!(q["state"], "state-123456");

    // The challenge is spent: Hydra's 410 with where to start again.
    let again = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={challenge}"),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(
        again.json()["redirect_to"]
            .as_str()
            .is_some_and(|r| r.contains("/oauth2/auth?"))
    );

    let o = FlowOptions::default();
    let res = browser.get(&app, &authorize_url(&client.id, &p, &o)).await;
    let challenge = query(&location(&res))["login_challenge"].clone();
    let accepted = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}"),
            Some(json!({"subject": "alice"})),
        )
        .await;
    let res = browser
        .get(
            &app,
            accepted.json()["redirect_to"].as_str().expect("redirect"),
        )
        .await;
    let challenge = query(&location(&res))["consent_challenge"].clone();
    let rejected = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/consent/reject?consent_challenge={challenge}"),
            Some(json!({})),
        )
        .await;
    let res = browser
        .get(
            &app,
            rejected.json()["redirect_to"].as_str().expect("redirect"),
        )
        .await;
    assert_eq!(query(&location(&res))["error"], "access_denied");
    assert_eq!(app.count("grants").await, 0);
    assert_eq!(app.count("authorization_codes").await, 0);
}

engine_test!(verifiers_work_once_and_only_in_the_browser_that_started_the_flow);
async fn verifiers_work_once_and_only_in_the_browser_that_started_the_flow(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let mut browser = Browser::default();
    let res = browser
        .get(
            &app,
            &authorize_url(&client.id, &pkce(3), &FlowOptions::default()),
        )
        .await;
    let challenge = query(&location(&res))["login_challenge"].clone();
    let accepted = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}"),
            Some(json!({"subject": "alice"})),
        )
        .await;
    let back = accepted.json()["redirect_to"]
        .as_str()
        .expect("redirect")
        .to_owned();
    // Another browser (an attacker who got the link) cannot use the verifier.
    let res = Browser::default().get(&app, &back).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.header("location").is_none());
    assert!(res.text().contains("another browser"));
    // The right browser can, once.
    assert!(location(&browser.get(&app, &back).await).starts_with(crate::support::CONSENT_URL));
    let res = browser.get(&app, &back).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.header("location").is_none());
    // Accepting twice is refused.
    let twice = app
        .admin(
            Method::PUT,
            &format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}"),
            Some(json!({"subject": "alice"})),
        )
        .await;
    assert_eq!(twice.status, StatusCode::GONE);
    // Challenges expire.
    let res = browser
        .get(
            &app,
            &authorize_url(&client.id, &pkce(3), &FlowOptions::default()),
        )
        .await;
    let challenge = query(&location(&res))["login_challenge"].clone();
    app.clock.advance(1801);
    let late = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={challenge}"),
            None,
        )
        .await;
    assert_eq!(late.status, StatusCode::NOT_FOUND);
}

engine_test!(consent_sessions_list_and_revoke_with_their_tokens);
async fn consent_sessions_list_and_revoke_with_their_tokens(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let (code, p) = code_from(&app, &client.id, &mut Browser::default()).await;
    let tokens = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await
        .json();
    let sessions = app
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=alice",
            None,
        )
        .await
        .json();
    let list = sessions.as_array().expect("array");
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["grant_scope"],
        json!(["openid", "offline_access", "dns.read"])
    );
    assert_eq!(
        list[0]["consent_request"]["client"]["client_id"],
        client.id.as_str()
    );
    assert_eq!(
        list[0]["session"]["id_token"]["email"],
        "alice@example.test"
    );
    // A code issued under the grant, not yet exchanged when the grant is revoked.
    let (late_code, late_p) = code_from(&app, &client.id, &mut Browser::default()).await;
    let res = app
        .admin(
            Method::DELETE,
            &format!(
                "/admin/oauth2/auth/sessions/consent?subject=alice&client={}",
                client.id
            ),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.introspect(tokens["access_token"].as_str().expect("at"))
            .await["active"],
        false
    );
    let refreshed = app
        .token(
            &client,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens["refresh_token"].as_str().expect("rt"),
                ),
            ],
        )
        .await;
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    let late = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &late_code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &late_p.verifier),
            ],
        )
        .await
        .json();
    assert_eq!(late["error"], "invalid_grant", "{late}");
    assert_eq!(late["error_description"], "The authorization was revoked.");
    let empty = app
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=alice",
            None,
        )
        .await
        .json();
    assert_eq!(empty, json!([]));
    let res = app
        .admin(
            Method::DELETE,
            "/admin/oauth2/auth/sessions/login?subject=alice",
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
}

engine_test!(client_credentials_opaque_and_jwt);
async fn client_credentials_opaque_and_jwt(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let service = app
        .register(json!({
            "client_name": "Service", "grant_types": ["client_credentials"],
            "scope": "dns.read dns.write", "audience": ["https://api.example.test"],
        }))
        .await;
    let res = app
        .token(
            &service,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "dns.read"),
                ("audience", "https://api.example.test"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let t = res.json();
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let intro = app
        .introspect(t["access_token"].as_str().expect("at"))
        .await;
    assert_eq!(
        (intro["active"].clone(), intro["sub"].clone()),
        (json!(true), json!(service.id))
    );
    assert_eq!(intro["aud"], json!(["https://api.example.test"]));
    let wide = app
        .token(
            &service,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "dns.read admin"),
            ],
        )
        .await;
    assert_eq!(wide.json()["error"], "invalid_scope");
    let aud = app
        .token(
            &service,
            &[
                ("grant_type", "client_credentials"),
                ("audience", "https://evil.test"),
            ],
        )
        .await;
    assert_eq!(aud.json()["error"], "invalid_request");

    let jwt_client = app
        .register(json!({"client_name": "JWT", "grant_types": ["client_credentials"], "scope": "dns.read", "access_token_strategy": "jwt"}))
        .await;
    jwt_access_token_round_trip(&app, &jwt_client, jsonwebtoken::Algorithm::ES256).await;
}

/// A client-credentials JWT access token of `client`: RFC 9068's header with `alg`, verified
/// with the JWKS, active on introspection until the client revokes it.
async fn jwt_access_token_round_trip(
    app: &TestApp,
    client: &crate::browser::Registered,
    alg: jsonwebtoken::Algorithm,
) {
    let answer = app
        .token(
            client,
            &[("grant_type", "client_credentials"), ("scope", "dns.read")],
        )
        .await
        .json();
    let at = answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a JWT: {answer}"))
        .to_owned();
    let header = jsonwebtoken::decode_header(&at).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068");
    assert_eq!(header.alg, alg);
    let jwks = app.get_public("/.well-known/jwks.json").await.json();
    let claims = decode_jwt(&jwks, &at, alg, None);
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "dns.read");
    assert!(claims["jti"].as_str().is_some());
    assert_eq!(app.introspect(&at).await["active"], true);
    let res = app
        .post_form(
            "/oauth2/revoke",
            Some((&client.id, client.secret.as_deref().expect("secret"))),
            &[("token", &at)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        app.introspect(&at).await["active"],
        false,
        "JWT access tokens can be revoked"
    );
}

/// `oauth2.access_token_signing_alg` picks the JWT access tokens' algorithm; a resource server
/// verifies them with the JWKS, and introspection and revocation still work.
async fn jwt_access_tokens_are_signed_with(
    db: TestDatabase,
    configured: latchkey_core::keys::SigningAlg,
    expected: jsonwebtoken::Algorithm,
) {
    use latchkey_core::config::AccessTokenStrategy;
    let app = TestApp::configured(db, |c| {
        c.oauth2.access_token_strategy = AccessTokenStrategy::Jwt;
        c.oauth2.access_token_signing_alg = configured;
    })
    .await;
    let client = app
        .register(json!({"client_name": "JWT", "grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;
    jwt_access_token_round_trip(&app, &client, expected).await;
}

engine_test!(jwt_access_tokens_are_signed_with_rs256_when_configured);
async fn jwt_access_tokens_are_signed_with_rs256_when_configured(db: TestDatabase) {
    use latchkey_core::keys::SigningAlg;
    jwt_access_tokens_are_signed_with(db, SigningAlg::RS256, jsonwebtoken::Algorithm::RS256).await;
}

engine_test!(jwt_access_tokens_are_signed_with_eddsa_when_configured);
async fn jwt_access_tokens_are_signed_with_eddsa_when_configured(db: TestDatabase) {
    use latchkey_core::keys::SigningAlg;
    jwt_access_tokens_are_signed_with(db, SigningAlg::EdDSA, jsonwebtoken::Algorithm::EdDSA).await;
}

engine_test!(revocation_is_per_client_and_refresh_revokes_the_family);
async fn revocation_is_per_client_and_refresh_revokes_the_family(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let other = app.web_client().await;
    let (code, p) = code_from(&app, &client.id, &mut Browser::default()).await;
    let t = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await
        .json();
    let (at, rt) = (
        t["access_token"].as_str().expect("at"),
        t["refresh_token"].as_str().expect("rt"),
    );
    // Another client's revocation is answered 200 and changes nothing.
    let before = app.store.snapshot().await.expect("snapshot");
    for token in [rt, at] {
        let res = app
            .post_form(
                "/oauth2/revoke",
                Some((&other.id, other.secret.as_deref().expect("s"))),
                &[("token", token)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
    // Unknown and forged tokens: 200, nothing changes.
    for junk in [
        "nope",
        "lk_rt_forged.forged",
        &format!("{}x", &rt[..rt.len() - 1]),
    ] {
        let res = app
            .post_form(
                "/oauth2/revoke",
                Some((&client.id, client.secret.as_deref().expect("s"))),
                &[("token", junk)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
    // Wrong credentials: 401.
    let res = app
        .post_form(
            "/oauth2/revoke",
            Some((&client.id, "wrong")),
            &[("token", rt)],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
    // The owner revokes the access token: it goes alone, and is audited once however often it
    // is revoked.
    let audited = app.count("audit_log").await;
    for _ in 0..2 {
        let res = app
            .post_form(
                "/oauth2/revoke",
                Some((&client.id, client.secret.as_deref().expect("s"))),
                &[("token", at)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    assert_eq!(app.introspect(at).await["active"], false);
    assert_eq!(app.introspect(rt).await["active"], true);
    assert_eq!(app.count("audit_log").await, audited + 1);
    // The owner revokes the refresh token: the family goes, the access token with it.
    let res = app
        .post_form(
            "/oauth2/revoke",
            Some((&client.id, client.secret.as_deref().expect("s"))),
            &[("token", rt)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(app.introspect(at).await["active"], false);
    assert_eq!(app.introspect(rt).await["active"], false);
    // DELETE /admin/oauth2/tokens revokes every token of a client.
    let (code, p) = code_from(&app, &client.id, &mut Browser::default()).await;
    let t = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await
        .json();
    let res = app
        .admin(
            Method::DELETE,
            &format!("/admin/oauth2/tokens?client_id={}", client.id),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.introspect(t["access_token"].as_str().expect("at"))
            .await["active"],
        false
    );
}

engine_test!(suspending_a_client_stops_its_tokens_at_once);
async fn suspending_a_client_stops_its_tokens_at_once(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let service = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;
    let t = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await
        .json();
    let at = t["access_token"].as_str().expect("at");
    assert_eq!(app.introspect(at).await["active"], true);
    let mut tx = latchkey_core::store::Store::begin(&app.store)
        .await
        .expect("tx");
    let mut c = tx
        .clients()
        .get(&service.id)
        .await
        .expect("get")
        .expect("client");
    c.status = latchkey_core::client::ClientStatus::Suspended;
    tx.clients().update(&c).await.expect("update");
    tx.commit().await.expect("commit");
    assert_eq!(app.introspect(at).await["active"], false);
    let res = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

engine_test!(the_janitor_deletes_expired_rows_and_keeps_live_ones);
async fn the_janitor_deletes_expired_rows_and_keeps_live_ones(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let (code, p) = code_from(&app, &client.id, &mut Browser::default()).await;
    app.token(
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    let report = latchkey_core::janitor::run(app.state.engine.deps(), 10, 30)
        .await
        .expect("janitor");
    assert_eq!(report.total(), 0, "nothing has expired yet");
    app.clock.advance(3601);
    let report = latchkey_core::janitor::run(app.state.engine.deps(), 10, 30)
        .await
        .expect("janitor");
    assert_eq!(
        (report.flows, report.codes, report.tokens),
        (1, 1, 1),
        "flow, code and access token"
    );
    assert_eq!(
        app.count("refresh_tokens").await,
        1,
        "the refresh token lives 30 days"
    );
    app.clock.advance(31 * 86_400);
    let report = latchkey_core::janitor::run(app.state.engine.deps(), 10, 30)
        .await
        .expect("janitor");
    assert_eq!(report.tokens, 1);
}

engine_test!(introspection_by_client_shows_a_token_only_to_its_client_and_audience);
async fn introspection_by_client_shows_a_token_only_to_its_client_and_audience(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let owner = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read", "audience": ["resource-server"]}))
        .await;
    let rs = app
        .register(json!({"client_id": "resource-server", "grant_types": ["client_credentials"]}))
        .await;
    let stranger = app
        .register(json!({"grant_types": ["client_credentials"]}))
        .await;
    let scoped = app
        .token(
            &owner,
            &[
                ("grant_type", "client_credentials"),
                ("audience", "resource-server"),
            ],
        )
        .await
        .json();
    let plain = app
        .token(&owner, &[("grant_type", "client_credentials")])
        .await
        .json();
    let ask = |who: &crate::browser::Registered, token: &str| {
        let (id, secret, token) = (
            who.id.clone(),
            who.secret.clone().expect("secret"),
            token.to_owned(),
        );
        let app = &app;
        async move {
            app.post_form(
                "/oauth2/introspect",
                Some((&id, &secret)),
                &[("token", &token)],
            )
            .await
            .json()
        }
    };
    let at = scoped["access_token"].as_str().expect("at");
    assert_eq!(ask(&owner, at).await["active"], true, "its own client");
    assert_eq!(ask(&rs, at).await["active"], true, "its audience");
    assert_eq!(
        ask(&stranger, at).await,
        json!({"active": false}),
        "anyone else"
    );
    assert_eq!(
        ask(&rs, plain["access_token"].as_str().expect("at")).await,
        json!({"active": false})
    );
    let res = app
        .post_form(
            "/oauth2/introspect",
            Some((&owner.id, "wrong")),
            &[("token", at)],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let doc = app
        .get_public("/.well-known/openid-configuration")
        .await
        .json();
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{ISSUER}/oauth2/introspect")
    );
}
