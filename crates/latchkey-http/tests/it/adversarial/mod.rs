//! The adversarial suite: one test per attack, named after the threat it plays (RFC 9700's
//! sections, or the platform's own threats), on SQLite and, when configured, PostgreSQL. Every
//! test asserts that the attack is refused *and* that storage is exactly as it was — or, where
//! the defense is itself a write (a replayed code revokes what it issued, a failed login is
//! counted), that nothing but that write happened. `docs/security.md` lists the cases.

mod client_auth;
mod code;
mod consent;
mod headers;
mod input;
mod phishing;
mod redirect;
mod session;
mod tokens;

use axum::http::{Method, StatusCode};
use latchkey_store::testing::Snapshot;
use serde_json::{Value, json};

pub use crate::browser::auth_url as authorize;
use crate::browser::{Browser, FlowOptions, Pkce, REDIRECT, Registered, pkce, query, run_flow};
use crate::platform::{Flow, Session, api, app_body, world};
use crate::support::{Answer, TestApp};

/// The state of every table, before an attack.
pub async fn before(app: &TestApp) -> Snapshot {
    app.store.snapshot().await.expect("snapshot")
}

/// Storage is exactly as it was.
pub async fn unchanged(app: &TestApp, before: &Snapshot) {
    let after = app.store.snapshot().await.expect("snapshot");
    for (table, rows) in before {
        assert_eq!(
            after.get(table),
            Some(rows),
            "the attack changed the table {table}"
        );
    }
}

/// Storage is as it was, except for `tables`, where the defense writes.
pub async fn unchanged_except(app: &TestApp, before: &Snapshot, tables: &[&str]) {
    let after = app.store.snapshot().await.expect("snapshot");
    for (table, rows) in before {
        if !tables.contains(&table.as_str()) {
            assert_eq!(
                after.get(table),
                Some(rows),
                "the attack changed the table {table}"
            );
        }
    }
}

/// An authorization code of `client` for alice, with its PKCE verifier.
pub async fn code_for(app: &TestApp, client: &Registered) -> (String, Pkce) {
    let p = pkce(7);
    let callback = run_flow(
        app,
        &mut Browser::default(),
        &client.id,
        &p,
        &FlowOptions::default(),
    )
    .await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    (query(&callback)["code"].clone(), p)
}

/// A token response (access, refresh and ID token) of `client` for alice.
pub async fn tokens_for(app: &TestApp, client: &Registered) -> Value {
    let (code, p) = code_for(app, client).await;
    let res = app.redeem(client, &code, &p.verifier).await;
    assert!(res.status.is_success(), "{}", res.text());
    res.json()
}

/// A confidential client that may use client credentials.
pub async fn service(app: &TestApp) -> Registered {
    app.register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await
}

/// An access token of `client` by client credentials.
pub async fn service_token(app: &TestApp, client: &Registered) -> String {
    let res = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    assert!(res.status.is_success(), "{}", res.text());
    res.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// The answer to an authorization request is an error page: never a redirect.
pub async fn shown_not_redirected(app: &TestApp, url: &str) -> String {
    let res = Browser::default().get(app, url).await;
    assert!(res.status.is_client_error(), "{url}: {}", res.status);
    assert!(res.header("location").is_none(), "{url}: redirected");
    res.text()
}

/// Alice (of acme) and Bob (of beta) signed in, and Alice's native app with a loopback redirect.
pub async fn alice_native_app(app: &TestApp) -> (Session, Session, String) {
    let (alice, bob) = world(app).await;
    let mut body = app_body();
    body["app_type"] = json!("native");
    body["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
    let created = api(
        app,
        &alice,
        Method::POST,
        "/api/v1/accounts/acme/apps",
        Some(body),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["client_id"].as_str().expect("id").to_owned();
    (alice, bob, id)
}

/// Posts the consent form: allow, on `account`.
pub async fn allow(
    app: &TestApp,
    f: &mut Flow,
    challenge: &str,
    csrf: &str,
    account: &str,
) -> Answer {
    f.post(
        app,
        "/ui/consent",
        &[
            ("consent_challenge", challenge),
            ("csrf_token", csrf),
            ("decision", "allow"),
            ("account", account),
        ],
    )
    .await
}

/// The family of `tokens` was revoked by the defense, and nothing was issued: only the
/// revocations, their audit entry and their revocation log entry were written.
pub async fn family_ended(app: &TestApp, before: &Snapshot, tokens: &[&str]) {
    for token in tokens {
        assert_eq!(app.introspect(token).await["active"], false, "{token}");
    }
    unchanged_except(
        app,
        before,
        &[
            "access_tokens",
            "refresh_tokens",
            "grants",
            "authorization_codes",
            "audit_log",
            "revocation_log",
        ],
    )
    .await;
    let after = app.store.snapshot().await.expect("snapshot");
    for table in ["access_tokens", "refresh_tokens"] {
        assert_eq!(
            after[table].len(),
            before[table].len(),
            "nothing issued into {table}"
        );
    }
}
