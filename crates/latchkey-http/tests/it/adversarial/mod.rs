//! The adversarial suite: one test per attack, named after the threat it plays (RFC 9700's
//! sections, or the platform's own threats), on SQLite and, when configured, PostgreSQL. Every
//! test asserts that the attack is refused *and* that storage is exactly as it was — or, where
//! the defense is itself a write (a replayed code revokes what it issued, a failed login is
//! counted), that nothing but that write happened. `docs/security.md` lists the cases.

mod client_auth;
mod code;
mod headers;
mod input;
mod phishing;
mod redirect;
mod session;
mod tokens;

use latchkey_store::testing::Snapshot;
use serde_json::{Value, json};

use crate::browser::{Browser, FlowOptions, Pkce, REDIRECT, Registered, pkce, query, run_flow};
use crate::support::TestApp;

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
    let res = app
        .token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
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

/// An authorization request of `client_id` with `params` replacing or adding to a valid one.
pub fn authorize(client_id: &str, params: &[(&str, &str)]) -> String {
    let p = pkce(9);
    let mut base: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id.into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("scope".into(), "openid dns.read".into()),
        ("state".into(), "state-0123456789".into()),
        ("code_challenge".into(), p.challenge),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in params {
        match base.iter_mut().find(|(bk, _)| bk == k) {
            Some(slot) => (*v).clone_into(&mut slot.1),
            None => base.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in base.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    format!("/oauth2/auth?{}", q.finish())
}

/// The answer to an authorization request is an error page: never a redirect.
pub async fn shown_not_redirected(app: &TestApp, url: &str) -> String {
    let res = Browser::default().get(app, url).await;
    assert!(res.status.is_client_error(), "{url}: {}", res.status);
    assert!(res.header("location").is_none(), "{url}: redirected");
    res.text()
}
