//! The revocation log: every revocation appends an entry in its own transaction, and
//! `GET /admin/revocations` pages through them; bad cursors are refused.

use axum::http::{Method, StatusCode};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{Browser, FlowOptions, REDIRECT, Registered, pkce, query, run_flow};
use crate::support::{TestApp, engine_test};

/// A fresh family for alice (remembered login): the first token response of an authorization.
async fn family(app: &TestApp, client: &Registered, browser: &mut Browser) -> Value {
    let p = pkce(7);
    let o = FlowOptions {
        remember: true,
        ..FlowOptions::default()
    };
    let callback = run_flow(app, browser, &client.id, &p, &o).await;
    let code = query(&callback)["code"].clone();
    let res = app.redeem(client, &code, &p.verifier).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

async fn log(app: &TestApp, query: &str) -> Value {
    let res = app
        .admin(Method::GET, &format!("/admin/revocations{query}"), None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

fn kinds(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

engine_test!(every_revocation_appends_one_entry_in_order);
async fn every_revocation_appends_one_entry_in_order(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let empty = log(&app, "").await;
    assert_eq!(empty["entries"], json!([]));
    assert_eq!(empty["last_cursor"], 0);

    let client = app.web_client().await;
    let secret = client.secret.clone().expect("secret");
    let mut browser = Browser::default();
    let t = family(&app, &client, &mut browser).await;
    let at = t["access_token"].as_str().expect("at");
    let rt = t["refresh_token"].as_str().expect("rt");

    // An access token, then (again: nothing more) the same one.
    for _ in 0..2 {
        let res = app
            .post_form(
                "/oauth2/revoke",
                Some((&client.id, &secret)),
                &[("token", at)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
    // A refresh token: its family.
    let res = app
        .post_form(
            "/oauth2/revoke",
            Some((&client.id, &secret)),
            &[("token", rt)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    // A consent session, the login sessions, every token of the client, the client.
    family(&app, &client, &mut Browser::default()).await;
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
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let res = app
        .admin(
            Method::DELETE,
            "/admin/oauth2/auth/sessions/login?subject=alice",
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let res = app
        .admin(
            Method::DELETE,
            &format!("/admin/oauth2/tokens?client_id={}", client.id),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let res = app
        .admin(
            Method::DELETE,
            &format!("/admin/clients/{}", client.id),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());

    let page = log(&app, "").await;
    assert_eq!(
        kinds(&page),
        [
            "token",
            "family",
            "consent_session",
            "login_session",
            "client_tokens",
            "client_deleted"
        ]
    );
    let entries = page["entries"].as_array().expect("entries");
    let cursors: Vec<i64> = entries
        .iter()
        .map(|e| e["cursor"].as_i64().expect("cursor"))
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    assert_eq!(page["last_cursor"], json!(cursors[5]));
    assert!(
        entries[0]["token_hash"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    );
    assert!(entries[1]["family_id"].is_string());
    assert_eq!(entries[2]["subject"], "alice");
    assert_eq!(entries[2]["client_id"], json!(client.id));
    assert!(entries[2]["grant_id"].is_string());
    assert_eq!(entries[3]["subject"], "alice");
    assert_eq!(entries[5]["client_id"], json!(client.id));
    for e in entries {
        let text = e.to_string();
        assert!(
            !text.contains(at) && !text.contains(rt),
            "no token in the log"
        );
    }

    // Paging: one at a time from the start, and from the last cursor nothing.
    let mut after = 0;
    let mut seen = vec![];
    loop {
        let p = log(&app, &format!("?after={after}&limit=2")).await;
        if p["entries"].as_array().expect("entries").is_empty() {
            assert_eq!(p["next_after"], json!(after));
            break;
        }
        seen.extend(kinds(&p));
        after = p["next_after"].as_i64().expect("next");
    }
    assert_eq!(seen, kinds(&page));
}

engine_test!(bad_cursors_are_refused_and_change_nothing);
async fn bad_cursors_are_refused_and_change_nothing(db: TestDatabase) {
    let app = TestApp::new(db).await;
    for q in [
        "?after=abc",
        "?after=-1",
        "?after=%2B1",
        "?after=",
        "?after=1.5",
        "?after=99999999999999999999999",
        "?after=1",
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?cursor=1",
    ] {
        let res = app
            .admin(Method::GET, &format!("/admin/revocations{q}"), None)
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{q}: {}", res.text());
        let body = res.json();
        assert_eq!(body["error"], "invalid_request", "{q}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{q}"
        );
    }
    let future = app
        .admin(Method::GET, "/admin/revocations?after=1", None)
        .await
        .json();
    assert!(
        future["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("future")),
        "{future}"
    );
    assert_eq!(app.count("revocation_log").await, 0);
}

engine_test!(a_narrowing_consent_and_a_replay_are_logged);
async fn a_narrowing_consent_and_a_replay_are_logged(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let t = family(&app, &client, &mut Browser::default()).await;
    let rt = t["refresh_token"].as_str().expect("rt");
    // A replay of a used refresh token revokes its family.
    let first = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    app.clock.advance(3600);
    let replay = app
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text());
    assert_eq!(kinds(&log(&app, "").await), ["family"]);

    // A consent that grants less than the one it replaces revokes the old grant's tokens.
    let p = pkce(9);
    let o = FlowOptions {
        scope: "openid offline_access",
        consent: json!({"grant_scope": ["openid", "offline_access"]}),
        ..FlowOptions::default()
    };
    let callback = run_flow(&app, &mut Browser::default(), &client.id, &p, &o).await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    let page = log(&app, "").await;
    assert_eq!(kinds(&page), ["family", "grant"]);
    assert_eq!(page["entries"][1]["subject"], "alice");
}

/// The kinds in the revocation log, oldest first (for the tests of other modules).
pub async fn logged_kinds(app: &TestApp) -> Vec<String> {
    kinds(&log(app, "?limit=1000").await)
}
