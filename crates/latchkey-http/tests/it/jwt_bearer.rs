//! The JWT bearer grant (RFC 7523 §2.1) and Hydra's trust API: a trusted issuer's assertion
//! gets a token; every bad assertion gets `invalid_grant` and writes nothing.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::clock::{Clock as _, rfc3339};
use latchkey_core::keys::{SigningAlg, SigningKey};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::Registered;
use crate::support::{ISSUER, TestApp, engine_test};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TRUST: &str = "/admin/trust/grants/jwt-bearer/issuers";
const IDP: &str = "https://idp.example";

struct Setup {
    client: Registered,
    key: SigningKey,
    trust_id: String,
    now: i64,
}

async fn setup(app: &TestApp) -> Setup {
    let client = app
        .register(json!({
            "client_name": "Workload gateway",
            "grant_types": [GRANT],
            "scope": "dns.read dns.write",
        }))
        .await;
    let (key, _) = SigningKey::generate(SigningAlg::ES256, "idp-k1".into()).expect("key");
    let now = app.clock.now();
    let res = app
        .admin(
            Method::POST,
            TRUST,
            Some(json!({
                "issuer": IDP,
                "subject": "workload-1",
                "scope": ["dns.read"],
                "jwk": serde_json::to_value(key.public_jwk()).expect("jwk"),
                "expires_at": rfc3339(now + 3600),
            })),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let trust = res.json();
    assert_eq!(trust["issuer"], IDP);
    assert_eq!(trust["subject"], "workload-1");
    assert_eq!(trust["allow_any_subject"], false);
    assert_eq!(trust["scope"], json!(["dns.read"]));
    assert_eq!(trust["public_key"]["kid"], "idp-k1");
    assert!(trust["public_key"]["set"].as_str().is_some());
    Setup {
        client,
        key,
        trust_id: trust["id"].as_str().expect("id").to_owned(),
        now,
    }
}

impl Setup {
    fn assertion(&self, claims: &Value) -> String {
        self.signed_by(&self.key, claims)
    }

    fn signed_by(&self, key: &SigningKey, claims: &Value) -> String {
        let mut base = json!({"iss": IDP, "sub": "workload-1", "aud": format!("{ISSUER}/oauth2/token"), "iat": self.now, "exp": self.now + 300, "jti": "jti-1"});
        if let (Some(b), Some(c)) = (base.as_object_mut(), claims.as_object()) {
            for (k, v) in c {
                if v.is_null() {
                    b.remove(k);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        key.sign_jwt("JWT", &base)
    }
}

async fn grant(
    app: &TestApp,
    client: &Registered,
    assertion: &str,
    scope: &str,
) -> crate::support::Answer {
    app.token(
        client,
        &[
            ("grant_type", GRANT),
            ("assertion", assertion),
            ("scope", scope),
        ],
    )
    .await
}

engine_test!(a_trusted_issuers_assertion_gets_a_token_once);
async fn a_trusted_issuers_assertion_gets_a_token_once(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let s = setup(&app).await;
    let listed = app
        .admin(Method::GET, &format!("{TRUST}?issuer={IDP}"), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
    let one = app
        .admin(Method::GET, &format!("{TRUST}/{}", s.trust_id), None)
        .await;
    assert_eq!(one.json()["id"], s.trust_id.as_str());

    let a = s.assertion(&json!({}));
    let res = grant(&app, &s.client, &a, "dns.read").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let tokens = res.json();
    assert_eq!(tokens["scope"], "dns.read");
    assert!(tokens.get("refresh_token").is_none());
    let intro = app
        .introspect(tokens["access_token"].as_str().expect("token"))
        .await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["sub"], "workload-1");
    assert_eq!(intro["client_id"], s.client.id.as_str());

    // The same assertion again: its jti is spent.
    let res = grant(&app, &s.client, &a, "dns.read").await;
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.text());
    // The issuer as the audience is fine too.
    let res = grant(
        &app,
        &s.client,
        &s.assertion(&json!({"aud": ISSUER, "jti": "jti-2"})),
        "",
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // Deleting the trust ends it.
    let deleted = app
        .admin(Method::DELETE, &format!("{TRUST}/{}", s.trust_id), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = app
        .admin(Method::GET, &format!("{TRUST}/{}", s.trust_id), None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let res = grant(
        &app,
        &s.client,
        &s.assertion(&json!({"jti": "jti-3"})),
        "dns.read",
    )
    .await;
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.text());
}

engine_test!(bad_assertions_are_refused_and_write_nothing);
async fn bad_assertions_are_refused_and_write_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let s = setup(&app).await;
    let (other_key, _) = SigningKey::generate(SigningAlg::ES256, "idp-k1".into()).expect("key");
    let none = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = json!({"iss": IDP, "sub": "workload-1", "aud": format!("{ISSUER}/oauth2/token"), "iat": s.now, "exp": s.now + 300, "jti": "none-1"});
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
        format!("{header}.{payload}.")
    };
    let tokens_before = app.count("access_tokens").await;
    let cases: Vec<(String, &str, &str)> = vec![
        (none, "dns.read", "invalid_grant"),
        (
            s.assertion(&json!({"aud": "https://other.example/token", "jti": "a"})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.assertion(&json!({"exp": s.now + 7200, "jti": "b"})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.assertion(&json!({"exp": s.now - 120, "jti": "c"})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.assertion(&json!({"nbf": s.now + 600, "jti": "d"})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.assertion(&json!({"iat": null, "jti": "e"})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.assertion(&json!({"jti": null})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.assertion(&json!({"iss": "https://unknown.example", "jti": "f"})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.assertion(&json!({"sub": "workload-2", "jti": "g"})),
            "dns.read",
            "invalid_grant",
        ),
        (
            s.signed_by(&other_key, &json!({"jti": "h"})),
            "dns.read",
            "invalid_grant",
        ),
        ("not-a-jwt".into(), "dns.read", "invalid_grant"),
        // Beyond the trust record's scope (the client has it).
        (
            s.assertion(&json!({"jti": "i"})),
            "dns.write",
            "invalid_scope",
        ),
    ];
    for (assertion, scope, error) in &cases {
        let res = grant(&app, &s.client, assertion, scope).await;
        assert_eq!(res.json()["error"], *error, "{assertion}: {}", res.text());
    }
    // A client without the grant type.
    let other = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;
    let res = grant(&app, &other, &s.assertion(&json!({"jti": "j"})), "dns.read").await;
    assert_eq!(res.json()["error"], "unauthorized_client", "{}", res.text());
    assert_eq!(
        app.count("access_tokens").await,
        tokens_before,
        "nothing was issued"
    );

    // A trust relationship past its expiry trusts nothing.
    app.clock.advance(3601);
    let s2 = Setup {
        now: app.clock.now(),
        ..s
    };
    let res = grant(
        &app,
        &s2.client,
        &s2.assertion(&json!({"jti": "k"})),
        "dns.read",
    )
    .await;
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.text());
}

engine_test!(the_trust_api_refuses_what_it_cannot_keep);
async fn the_trust_api_refuses_what_it_cannot_keep(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let s = setup(&app).await;
    let public = serde_json::to_value(s.key.public_jwk()).expect("jwk");
    let base = json!({"issuer": IDP, "subject": "workload-1", "scope": ["dns.read"], "jwk": public, "expires_at": rfc3339(s.now + 60)});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (base.clone(), StatusCode::CONFLICT),
        (
            with("allow_any_subject", json!(true)),
            StatusCode::BAD_REQUEST,
        ),
        (with("subject", Value::Null), StatusCode::BAD_REQUEST),
        (
            with("expires_at", json!("yesterday")),
            StatusCode::BAD_REQUEST,
        ),
        (
            with("expires_at", json!(rfc3339(s.now - 1))),
            StatusCode::BAD_REQUEST,
        ),
        (
            with("jwk", json!({"kty": "oct", "k": "c2VjcmV0", "kid": "x"})),
            StatusCode::BAD_REQUEST,
        ),
        (with("jwk", json!({"kty": "EC"})), StatusCode::BAD_REQUEST),
        (with("issuer", json!("")), StatusCode::BAD_REQUEST),
        (with("extra", json!(1)), StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        let res = app.admin(Method::POST, TRUST, Some(body.clone())).await;
        assert_eq!(res.status, status, "{body}: {}", res.text());
    }
    assert_eq!(app.count("trusted_jwt_issuers").await, 1);
    // Any subject, for another key id.
    let (k2, _) = SigningKey::generate(SigningAlg::ES256, "idp-k2".into()).expect("key");
    let mut any = with("jwk", serde_json::to_value(k2.public_jwk()).expect("jwk"));
    any["subject"] = Value::Null;
    any["allow_any_subject"] = json!(true);
    let res = app.admin(Method::POST, TRUST, Some(any)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let res = grant(
        &app,
        &s.client,
        &s.signed_by(&k2, &json!({"sub": "anyone", "jti": "any-1"})),
        "dns.read",
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let missing = app
        .admin(Method::DELETE, &format!("{TRUST}/nope"), None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
