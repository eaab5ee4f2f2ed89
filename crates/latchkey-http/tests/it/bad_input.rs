//! Every error case of RFC 6749 §4.1.2.1 and §5.2: each gets the standard error and changes no
//! stored state, except the documented revocations.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_core::keys::{SigningAlg, SigningKey};
use latchkey_store::testing::TestDatabase;
use serde_json::json;

use crate::browser::{
    Browser, FlowOptions, REDIRECT, auth_url, authorize_url, location, pkce, query, run_flow,
};
use crate::support::{ISSUER, TestApp, engine_test};

engine_test!(authorization_errors_before_the_redirect_uri_is_validated_are_shown_never_redirected);
async fn authorization_errors_before_the_redirect_uri_is_validated_are_shown_never_redirected(
    db: TestDatabase,
) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let before = app.store.snapshot().await.expect("snapshot");
    let near_misses = [
        "https://app.example.test/callback/",
        "https://app.example.test:8443/callback",
        "https://APP.example.test/callback",
        "https://app.example.test/Callback",
        "https://app.example.test/callback?x=1",
        "https://user@app.example.test/callback",
        "https://evil.example/callback",
        "javascript:alert(1)",
    ];
    let mut cases: Vec<(String, &str)> = near_misses
        .iter()
        .map(|u| (auth_url(&client.id, &[("redirect_uri", u)]), "redirect_uri"))
        .collect();
    cases.push((auth_url("unknown-client", &[]), "unknown"));
    cases.push((auth_url("", &[]), "client_id"));
    cases.push((
        format!("{}&client_id={}", auth_url(&client.id, &[]), client.id),
        "more than once",
    ));
    cases.push((
        format!(
            "{}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            auth_url(&client.id, &[])
        ),
        "more than once",
    ));
    cases.push((
        auth_url(&client.id, &[("state", &"x".repeat(9000))]),
        "too long",
    ));
    for (url, mentions) in cases {
        let res = Browser::default().get(&app, &url).await;
        assert!(res.status.is_client_error(), "{url}: {}", res.status);
        assert!(res.header("location").is_none(), "{url}: never redirected");
        assert!(
            res.header("content-type")
                .is_some_and(|c| c.starts_with("text/html"))
        );
        assert!(
            res.text().to_lowercase().contains(mentions),
            "{url}: {}",
            res.text()
        );
    }
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
}

engine_test!(authorization_errors_after_validation_go_back_with_error_state_and_iss);
async fn authorization_errors_after_validation_go_back_with_error_state_and_iss(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let public = app.register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "openid"})).await;
    let service = app
        .register(json!({"grant_types": ["client_credentials"]}))
        .await;
    let before = app.store.snapshot().await.expect("snapshot");
    let cases: Vec<(String, &str)> = vec![
        (
            auth_url(&client.id, &[("response_type", "")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (
            auth_url(&client.id, &[("response_type", "code id_token")]),
            "unsupported_response_type",
        ),
        (
            auth_url(&client.id, &[("scope", "openid admin.everything")]),
            "invalid_scope",
        ),
        (
            auth_url(&client.id, &[("scope", "bad\"scope")]),
            "invalid_scope",
        ),
        (
            auth_url(
                &client.id,
                &[("code_challenge", ""), ("code_challenge_method", "")],
            ),
            "invalid_request",
        ),
        (
            auth_url(
                &public.id,
                &[
                    ("code_challenge", ""),
                    ("code_challenge_method", ""),
                    ("scope", "openid"),
                ],
            ),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("code_challenge_method", "")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("code_challenge", "too-short")]),
            "invalid_request",
        ),
        (
            format!("{}&scope=openid", auth_url(&client.id, &[])),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("request", "eyJhbGciOiJub25lIn0.e30.")]),
            "request_not_supported",
        ),
        (
            auth_url(&client.id, &[("request_uri", "https://evil.example/r")]),
            "request_uri_not_supported",
        ),
        (
            auth_url(&client.id, &[("prompt", "none login")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("prompt", "bogus")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("max_age", "-1")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("response_mode", "fragment")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("audience", "https://evil.example")]),
            "invalid_request",
        ),
        (
            auth_url(&client.id, &[("nonce", &"n".repeat(600))]),
            "invalid_request",
        ),
        (
            auth_url(&service.id, &[("redirect_uri", "")]),
            "redirect_uri",
        ),
    ];
    for (url, error) in cases {
        let res = Browser::default().get(&app, &url).await;
        if error == "redirect_uri" {
            // A client without redirect URIs cannot be redirected to at all.
            assert!(res.header("location").is_none(), "{url}");
            continue;
        }
        let to = location(&res);
        assert!(to.starts_with(REDIRECT), "{url} -> {to}");
        let q = query(&to);
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(error),
            "{url}: {q:?}"
        );
        assert!(q.get("error_description").is_some_and(|d| !d.is_empty()));
        assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER));
        assert!(!q.contains_key("code"));
        if !url.contains("state=s-1&") && !url.ends_with("state=s-1") {
            continue;
        }
        assert_eq!(q.get("state").map(String::as_str), Some("s-1"), "{url}");
    }
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "no flow was started"
    );
}

async fn fresh_code(app: &TestApp, client_id: &str) -> (String, String) {
    let p = pkce(5);
    let callback = run_flow(
        app,
        &mut Browser::default(),
        client_id,
        &p,
        &FlowOptions::default(),
    )
    .await;
    (query(&callback)["code"].clone(), p.verifier)
}

engine_test!(token_endpoint_errors_are_rfc_6749_and_change_nothing);
async fn token_endpoint_errors_are_rfc_6749_and_change_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let other = app.web_client().await;
    let secret = client.secret.clone().expect("secret");
    let (code, verifier) = fresh_code(&app, &client.id).await;
    let before = app.store.snapshot().await.expect("snapshot");
    let good = |extra: &[(&'static str, &str)]| {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", verifier.clone()),
        ];
        for (k, v) in extra {
            form.retain(|(fk, _)| fk != k);
            if !v.is_empty() {
                form.push((k, (*v).to_owned()));
            }
        }
        form
    };
    let long = "x".repeat(9000);
    // Found by fuzzing: a code of the right byte length with a multi-byte character across
    // the split point made the token check panic (answered 500).
    let wide = format!("lk_ac_{}é{}", "A".repeat(50), "B".repeat(22));
    let wrong_verifier = pkce(6).verifier;
    let cases: Vec<TokenCase<'_>> = vec![
        (
            good(&[]),
            Some(("unknown", "x")),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            good(&[]),
            Some((&client.id, "wrong-secret")),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            good(&[]),
            Some((&other.id, other.secret.as_deref().expect("s"))),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            good(&[("client_id", &client.id), ("client_secret", &secret)]),
            None,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            good(&[("client_secret", &secret)]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (good(&[]), None, StatusCode::UNAUTHORIZED, "invalid_client"),
        (
            good(&[("grant_type", "")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            good(&[("grant_type", "password")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            good(&[("grant_type", "client_credentials")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
        ),
        (
            good(&[("code", "")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            good(&[("code", "lk_ac_forged.forged")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            good(&[("redirect_uri", "https://app.example.test/callback/")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            good(&[("redirect_uri", "")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            good(&[("code_verifier", "")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            good(&[("code_verifier", &wrong_verifier)]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            good(&[("code_verifier", "short")]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            good(&[("code", &wide)]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            good(&[("state", &long)]),
            Some((&client.id, &secret)),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (form, basic, status, error) in cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = app.post_form("/oauth2/token", basic, &form).await;
        assert_eq!(res.status, status, "{form:?} {basic:?}: {}", res.text());
        let body = res.json();
        assert_eq!(body["error"], error, "{form:?}");
        assert_eq!(res.header("cache-control"), Some("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                res.header("www-authenticate")
                    .is_some_and(|w| w.starts_with("Basic")),
                "RFC 6749 §5.2"
            );
        }
    }
    // Duplicated parameters.
    let body = format!(
        "grant_type=authorization_code&code={code}&code={code}&redirect_uri={REDIRECT}&code_verifier={verifier}"
    );
    let req = Request::post("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            header::AUTHORIZATION,
            format!("Basic {}", base64_basic(&client.id, &secret)),
        )
        .body(Body::from(body))
        .expect("request");
    let res = TestApp::call(&app.public, req).await;
    assert_eq!(res.json()["error"], "invalid_request");
    // Not a form.
    let req = Request::post("/oauth2/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .expect("req");
    assert_eq!(
        TestApp::call(&app.public, req).await.json()["error"],
        "invalid_request"
    );
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "nothing changed"
    );

    // After all that, the code still works for its client — once.
    let ok = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

/// A token request (form, Basic credentials) and the status and error it must get.
type TokenCase<'a> = (
    Vec<(&'a str, String)>,
    Option<(&'a str, &'a str)>,
    StatusCode,
    &'a str,
);

fn base64_basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}

engine_test!(expired_codes_and_refresh_token_misuse);
async fn expired_codes_and_refresh_token_misuse(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let other = app.web_client().await;
    let (code, verifier) = fresh_code(&app, &client.id).await;
    app.clock.advance(601);
    let res = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(
        res.json()["error"],
        "invalid_grant",
        "codes live 10 minutes"
    );

    let (code, verifier) = fresh_code(&app, &client.id).await;
    let t = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await
        .json();
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();
    let before = app.store.snapshot().await.expect("snapshot");
    for (scope, error) in [
        ("openid dns.write", "invalid_scope"),
        ("bad\"", "invalid_scope"),
    ] {
        let res = app
            .token(
                &client,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(res.json()["error"], error);
    }
    for junk in [
        "lk_rt_x.y",
        &rt[..rt.len() - 2],
        "lk_at_not-a-refresh-token",
    ] {
        let res = app
            .token(
                &client,
                &[("grant_type", "refresh_token"), ("refresh_token", junk)],
            )
            .await;
        assert_eq!(res.json()["error"], "invalid_grant");
    }
    assert_eq!(
        app.store.snapshot().await.expect("snapshot"),
        before,
        "nothing changed"
    );
    // Another client presenting the token: refused, and the family is revoked (a theft signal).
    let res = app
        .token(
            &other,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(res.json()["error"], "invalid_grant");
    assert_eq!(
        app.introspect(t["access_token"].as_str().expect("at"))
            .await["active"],
        false
    );
    let res = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await;
    assert_eq!(res.json()["error"], "invalid_grant");
}

fn assertion(
    key: &SigningKey,
    client_id: &str,
    aud: &str,
    exp_in: i64,
    jti: &str,
    now: i64,
) -> String {
    key.sign_jwt("JWT", &json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + exp_in, "jti": jti}))
}

engine_test!(private_key_jwt_client_authentication);
async fn private_key_jwt_client_authentication(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let (key, _) = SigningKey::generate(SigningAlg::ES256, "client-key-1".into()).expect("key");
    let (stranger, _) =
        SigningKey::generate(SigningAlg::ES256, "client-key-1".into()).expect("key");
    let jwks = json!({"keys": [serde_json::to_value(key.public_jwk()).expect("jwk")]});
    let client = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}))
        .await;
    assert!(client.secret.is_none());
    let now = latchkey_core::clock::Clock::now(&app.clock);
    let aud = format!("{ISSUER}/oauth2/token");
    let send = |a: String| {
        let app = &app;
        async move {
            app.post_form(
                "/oauth2/token",
                None,
                &[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &a),
                ],
            )
            .await
        }
    };
    let good = assertion(&key, &client.id, &aud, 60, "jti-1", now);
    let res = send(good.clone()).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = send(good).await;
    assert_eq!(
        res.status,
        StatusCode::UNAUTHORIZED,
        "a replayed assertion is refused"
    );
    for bad in [
        assertion(
            &key,
            &client.id,
            "https://other.example/token",
            60,
            "jti-2",
            now,
        ),
        assertion(&key, &client.id, &aud, -120, "jti-3", now),
        assertion(&key, &client.id, &aud, 7200, "jti-4", now),
        assertion(&stranger, &client.id, &aud, 60, "jti-5", now),
        key.sign_jwt(
            "JWT",
            &json!({"iss": client.id, "sub": client.id, "aud": aud, "exp": now + 60}),
        ),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
    ] {
        let res = send(bad).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
        assert_eq!(res.json()["error"], "invalid_client");
    }
    // A secret-based method is refused for a private_key_jwt client.
    let res = app
        .post_form(
            "/oauth2/token",
            Some((&client.id, "anything")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

engine_test!(authorize_also_accepts_post);
async fn authorize_also_accepts_post(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let url = authorize_url(&client.id, &pkce(1), &FlowOptions::default());
    let body = url.split_once('?').expect("query").1.to_owned();
    let req = Request::post("/oauth2/auth")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("req");
    let res = TestApp::call(&app.public, req).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with(crate::support::LOGIN_URL));
}
