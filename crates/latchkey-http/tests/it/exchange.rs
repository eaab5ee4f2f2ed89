//! Token exchange (RFC 8693): a narrower token that says who acts for whom, belonging to the
//! subject token's grant; and everything it must refuse.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{Browser, FlowOptions, REDIRECT, Registered, pkce, query, run_flow};
use crate::support::{TestApp, engine_test};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The user's tokens for a client that may exchange them (JWT access tokens).
async fn user_tokens(app: &TestApp) -> (Registered, Value) {
    let client = app
        .register(json!({
            "client_name": "Agent",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token", EXCHANGE],
            "scope": "openid offline_access dns.read dns.write",
            "audience": ["https://api.example.test", "https://dns.example.test"],
            "access_token_strategy": "jwt",
        }))
        .await;
    let p = pkce(3);
    let options = FlowOptions {
        scope: "openid offline_access dns.read dns.write",
        consent: json!({
            "grant_scope": ["openid", "offline_access", "dns.read", "dns.write"],
            "grant_access_token_audience": ["https://api.example.test", "https://dns.example.test"],
        }),
        extra: vec![(
            "audience",
            "https://api.example.test https://dns.example.test".into(),
        )],
        ..FlowOptions::default()
    };
    let callback = run_flow(app, &mut Browser::default(), &client.id, &p, &options).await;
    let res = app
        .redeem(&client, &query(&callback)["code"], &p.verifier)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    (client, res.json())
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

async fn exchange(
    app: &TestApp,
    client: &Registered,
    form: &[(&str, &str)],
) -> crate::support::Answer {
    let mut all = vec![("grant_type", EXCHANGE)];
    all.extend_from_slice(form);
    app.token(client, &all).await
}

engine_test!(an_exchanged_token_is_narrower_says_who_acts_and_dies_with_the_grant);
async fn an_exchanged_token_is_narrower_says_who_acts_and_dies_with_the_grant(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let meta = app
        .get_public("/.well-known/openid-configuration")
        .await
        .json();
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .expect("grants")
            .contains(&json!(EXCHANGE))
    );
    let (client, tokens) = user_tokens(&app).await;
    let subject = tokens["access_token"].as_str().expect("access").to_owned();

    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS),
            ("scope", "dns.read"),
            ("audience", "https://dns.example.test"),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let issued = res.json();
    assert_eq!(issued["issued_token_type"], ACCESS);
    assert_eq!(issued["scope"], "dns.read");
    assert!(issued.get("refresh_token").is_none());
    let first = issued["access_token"].as_str().expect("token").to_owned();
    let jwt = claims_of(&first);
    assert_eq!(jwt["sub"], "alice");
    assert_eq!(jwt["act"], json!({"sub": client.id}));
    assert_eq!(jwt["aud"], json!(["https://dns.example.test"]));
    let intro = app.introspect(&first).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["sub"], "alice");
    assert_eq!(intro["scope"], "dns.read");
    assert_eq!(intro["act"], json!({"sub": client.id}));

    // Chained: the exchanged token exchanged again, with the user's token as the actor.
    let res = exchange(
        &app,
        &client,
        &[
            ("subject_token", &first),
            ("subject_token_type", ACCESS),
            ("actor_token", &subject),
            ("actor_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let second = res.json()["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let nested = json!({"sub": "alice", "act": {"sub": client.id}});
    assert_eq!(claims_of(&second)["act"], nested);
    assert_eq!(app.introspect(&second).await["act"], nested);

    // Revoking the grant (the connected app) revokes every exchanged token too.
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
    for t in [&subject, &first, &second] {
        assert_eq!(app.introspect(t).await["active"], false);
    }
    // And a revoked subject token cannot be exchanged.
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &subject), ("subject_token_type", ACCESS)],
    )
    .await;
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.text());
}

/// Who asks, with what, and the error they get.
type Case<'a> = (&'a Registered, Vec<(&'a str, &'a str)>, &'a str);

engine_test!(an_exchange_is_refused_what_it_may_not_do_and_writes_nothing);
async fn an_exchange_is_refused_what_it_may_not_do_and_writes_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let (client, tokens) = user_tokens(&app).await;
    let subject = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let id_token = tokens["id_token"].as_str().expect("id").to_owned();
    let other = app
        .register(json!({
            "client_name": "Stranger",
            "grant_types": ["client_credentials", EXCHANGE],
            "scope": "dns.read",
        }))
        .await;
    let plain = app.web_client().await;
    let before = app.count("access_tokens").await;
    let cases: Vec<Case<'_>> = vec![
        // Widening.
        (
            &client,
            vec![
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("scope", "dns.read admin"),
            ],
            "invalid_scope",
        ),
        (
            &client,
            vec![
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("audience", "https://evil.example"),
            ],
            "invalid_target",
        ),
        (
            &client,
            vec![
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("resource", "https://evil.example"),
            ],
            "invalid_target",
        ),
        // A refresh token or an ID token as the subject, whatever type it is said to be.
        (
            &client,
            vec![("subject_token", &refresh), ("subject_token_type", ACCESS)],
            "invalid_grant",
        ),
        (
            &client,
            vec![
                ("subject_token", &refresh),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            "invalid_request",
        ),
        (
            &client,
            vec![("subject_token", &id_token), ("subject_token_type", ACCESS)],
            "invalid_grant",
        ),
        (
            &client,
            vec![
                ("subject_token", &id_token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
            "invalid_request",
        ),
        // Forged, foreign, or another client's.
        (
            &client,
            vec![
                ("subject_token", "lk_at_forged.token"),
                ("subject_token_type", ACCESS),
            ],
            "invalid_grant",
        ),
        (
            &other,
            vec![("subject_token", &subject), ("subject_token_type", ACCESS)],
            "invalid_grant",
        ),
        // Missing or malformed parameters.
        (
            &client,
            vec![("subject_token", &subject)],
            "invalid_request",
        ),
        (
            &client,
            vec![("subject_token_type", ACCESS)],
            "invalid_request",
        ),
        (
            &client,
            vec![
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            "invalid_request",
        ),
        (
            &client,
            vec![
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("actor_token_type", ACCESS),
            ],
            "invalid_request",
        ),
        (
            &client,
            vec![
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("actor_token", &refresh),
                ("actor_token_type", ACCESS),
            ],
            "invalid_grant",
        ),
        // A client without the grant type.
        (
            &plain,
            vec![("subject_token", &subject), ("subject_token_type", ACCESS)],
            "unauthorized_client",
        ),
    ];
    for (who, form, error) in cases {
        let res = exchange(&app, who, &form).await;
        assert_eq!(res.json()["error"], error, "{form:?}: {}", res.text());
        assert!(res.status.is_client_error(), "{form:?}: {}", res.status);
    }
    assert_eq!(
        app.count("access_tokens").await,
        before,
        "nothing was issued"
    );

    // An expired subject token.
    app.clock.advance(3601);
    let res = exchange(
        &app,
        &client,
        &[("subject_token", &subject), ("subject_token_type", ACCESS)],
    )
    .await;
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.text());
}
