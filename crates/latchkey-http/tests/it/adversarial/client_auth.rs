//! Client authentication attacks (RFC 6749 §2.3, RFC 7523, RFC 9700 §2.5): wrong or mixed
//! credentials, assertion replay and misuse, and grants a client may not use.

use axum::http::StatusCode;
use latchkey_core::keys::{SigningAlg, SigningKey};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use super::{before, service, unchanged, unchanged_except};
use crate::browser::Registered;
use crate::support::{Answer, ISSUER, TestApp, engine_test};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct KeyClient {
    key: SigningKey,
    client: Registered,
    now: i64,
}

async fn key_client(app: &TestApp) -> KeyClient {
    let (key, _) = SigningKey::generate(SigningAlg::ES256, "k1".into()).expect("key");
    let jwks = json!({"keys": [serde_json::to_value(key.public_jwk()).expect("jwk")]});
    let client = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}))
        .await;
    KeyClient {
        key,
        client,
        now: latchkey_core::clock::Clock::now(&app.clock),
    }
}

impl KeyClient {
    fn assertion(&self, claims: &Value) -> String {
        let mut base = json!({"iss": self.client.id, "sub": self.client.id, "aud": format!("{ISSUER}/oauth2/token"), "iat": self.now, "exp": self.now + 60, "jti": "jti-1"});
        if let (Some(b), Some(c)) = (base.as_object_mut(), claims.as_object()) {
            for (k, v) in c {
                b.insert(k.clone(), v.clone());
            }
        }
        self.key.sign_jwt("JWT", &base)
    }
}

async fn with_assertion(app: &TestApp, assertion: &str) -> Answer {
    app.post_form(
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

fn invalid_client(res: &Answer) {
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_client");
}

engine_test!(a_wrong_client_secret_is_refused);
async fn a_wrong_client_secret_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let snapshot = before(&app).await;
    for secret in [
        "wrong",
        "",
        &format!("{}x", c.secret.as_deref().unwrap_or_default()),
    ] {
        let res = app
            .post_form(
                "/oauth2/token",
                Some((&c.id, secret)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        invalid_client(&res);
        assert!(res.header("www-authenticate").is_some(), "RFC 6749 §5.2");
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(two_client_authentication_methods_at_once_are_refused);
async fn two_client_authentication_methods_at_once_are_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let secret = c.secret.clone().unwrap_or_default();
    let snapshot = before(&app).await;
    let res = app
        .post_form(
            "/oauth2/token",
            Some((&c.id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert!(res.status.is_client_error(), "{}", res.text());
    assert!(
        ["invalid_request", "invalid_client"]
            .contains(&res.json()["error"].as_str().unwrap_or_default())
    );
    unchanged(&app, &snapshot).await;
}

engine_test!(a_client_secret_in_the_body_is_refused_for_a_basic_client);
async fn a_client_secret_in_the_body_is_refused_for_a_basic_client(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let snapshot = before(&app).await;
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", c.secret.as_deref().unwrap_or_default()),
            ],
        )
        .await;
    invalid_client(&res);
    unchanged(&app, &snapshot).await;
}

engine_test!(private_key_jwt_assertion_replay_is_refused);
async fn private_key_jwt_assertion_replay_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let k = key_client(&app).await;
    let a = k.assertion(&json!({}));
    assert_eq!(with_assertion(&app, &a).await.status, StatusCode::OK);
    let snapshot = before(&app).await;
    invalid_client(&with_assertion(&app, &a).await);
    unchanged(&app, &snapshot).await;
}

engine_test!(private_key_jwt_assertion_for_another_audience_is_refused);
async fn private_key_jwt_assertion_for_another_audience_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let k = key_client(&app).await;
    let snapshot = before(&app).await;
    for aud in [
        json!("https://other.example/token"),
        json!(["https://other.example"]),
        json!(""),
    ] {
        invalid_client(
            &with_assertion(
                &app,
                &k.assertion(&json!({"aud": aud, "jti": format!("a-{aud}")})),
            )
            .await,
        );
    }
    unchanged_except(&app, &snapshot, &[]).await;
}

engine_test!(private_key_jwt_expired_or_long_lived_assertions_are_refused);
async fn private_key_jwt_expired_or_long_lived_assertions_are_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let k = key_client(&app).await;
    let snapshot = before(&app).await;
    for (i, exp) in [k.now - 120, k.now + 7200].into_iter().enumerate() {
        invalid_client(
            &with_assertion(
                &app,
                &k.assertion(&json!({"exp": exp, "jti": format!("e-{i}")})),
            )
            .await,
        );
    }
    invalid_client(&with_assertion(&app, &k.assertion(&json!({"jti": null}))).await);
    unchanged(&app, &snapshot).await;
}

engine_test!(private_key_jwt_assertion_for_another_client_is_refused);
async fn private_key_jwt_assertion_for_another_client_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let k = key_client(&app).await;
    let victim = key_client(&app).await;
    let snapshot = before(&app).await;
    // Signed with the attacker's own key, claiming to be the victim.
    let forged = k.key.sign_jwt(
        "JWT",
        &json!({"iss": victim.client.id, "sub": victim.client.id, "aud": format!("{ISSUER}/oauth2/token"), "iat": k.now, "exp": k.now + 60, "jti": "x-1"}),
    );
    invalid_client(&with_assertion(&app, &forged).await);
    // iss and sub that disagree.
    invalid_client(
        &with_assertion(
            &app,
            &k.assertion(&json!({"sub": victim.client.id, "jti": "x-2"})),
        )
        .await,
    );
    unchanged(&app, &snapshot).await;
}

engine_test!(private_key_jwt_unsigned_or_hmac_assertions_are_refused);
async fn private_key_jwt_unsigned_or_hmac_assertions_are_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let k = key_client(&app).await;
    let snapshot = before(&app).await;
    let claims = k.assertion(&json!({"jti": "n-1"}));
    let body = claims.split('.').nth(1).expect("claims");
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    for header in [r#"{"alg":"none"}"#, r#"{"alg":"HS256","kid":"k1"}"#] {
        invalid_client(&with_assertion(&app, &format!("{}.{body}.", b64(header))).await);
        invalid_client(&with_assertion(&app, &format!("{}.{body}.c2ln", b64(header))).await);
    }
    unchanged(&app, &snapshot).await;
}

engine_test!(a_public_client_cannot_use_client_credentials);
async fn a_public_client_cannot_use_client_credentials(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let snapshot = before(&app).await;
    // It cannot even be registered with that grant...
    let res = app
        .admin(
            axum::http::Method::POST,
            "/admin/clients",
            Some(json!({"redirect_uris": [crate::browser::REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "client_credentials"], "scope": "dns.read"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_client_metadata");
    unchanged(&app, &snapshot).await;
    // ...and a public client that asks for it anyway gets nothing.
    let public = app
        .register(json!({"redirect_uris": [crate::browser::REDIRECT], "token_endpoint_auth_method": "none", "scope": "dns.read"}))
        .await;
    let snapshot = before(&app).await;
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &public.id),
            ],
        )
        .await;
    assert!(res.status.is_client_error(), "{}", res.text());
    assert!(res.json().get("access_token").is_none());
    unchanged(&app, &snapshot).await;
}

engine_test!(client_credentials_scope_and_audience_escalation_is_refused);
async fn client_credentials_scope_and_audience_escalation_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let c = service(&app).await;
    let snapshot = before(&app).await;
    let res = app
        .token(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "dns.read dns.write"),
            ],
        )
        .await;
    assert_eq!(res.json()["error"], "invalid_scope", "{}", res.text());
    let res = app
        .token(
            &c,
            &[
                ("grant_type", "client_credentials"),
                ("audience", "https://billing.example.test"),
            ],
        )
        .await;
    assert_eq!(res.json()["error"], "invalid_request", "{}", res.text());
    unchanged(&app, &snapshot).await;
}

engine_test!(a_grant_type_the_client_was_not_registered_for_is_refused);
async fn a_grant_type_the_client_was_not_registered_for_is_refused(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let web = app.web_client().await;
    let snapshot = before(&app).await;
    let res = app
        .token(&web, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["error"], "unauthorized_client");
    unchanged(&app, &snapshot).await;
}
