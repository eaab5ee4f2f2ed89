//! Refresh tokens that real clients survive: the grace period, coalescing of concurrent
//! requests across replicas, and reuse detection.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{Browser, FlowOptions, REDIRECT, pkce, query, run_flow};
use crate::support::{Answer, TestApp, engine_test};

/// A fresh family: the first token response of an authorization.
async fn family(app: &TestApp, client: &crate::browser::Registered) -> Value {
    let p = pkce(4);
    let o = FlowOptions {
        consent: json!({"grant_scope": ["openid", "offline_access", "dns.read"], "session": {"access_token": {"tier": "gold"}}, "accounts": ["acme"]}),
        ..FlowOptions::default()
    };
    let callback = run_flow(app, &mut Browser::default(), &client.id, &p, &o).await;
    let code = query(&callback)["code"].clone();
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
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

async fn refresh(app: &TestApp, client: &crate::browser::Registered, rt: &str) -> Answer {
    app.token(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

fn rt(v: &Value) -> String {
    v["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

engine_test!(a_retry_within_the_grace_period_gets_the_same_response_until_retries_run_out);
async fn a_retry_within_the_grace_period_gets_the_same_response_until_retries_run_out(
    db: TestDatabase,
) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let first = family(&app, &client).await;
    let old = rt(&first);
    let rotated = refresh(&app, &client, &old).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let rotated_body = rotated.text();
    app.clock.advance(10);
    for retry in 1..=3 {
        let again = refresh(&app, &client, &old).await;
        assert_eq!(
            again.status,
            StatusCode::OK,
            "retry {retry}: {}",
            again.text()
        );
        assert_eq!(
            again.text(),
            rotated_body,
            "retry {retry} gets the very same response"
        );
        assert_eq!(again.header("cache-control"), Some("no-store"));
    }
    assert_eq!(
        app.count("refresh_tokens").await,
        2,
        "one rotation, whatever the retries"
    );
    // The fourth retry is reuse: the family goes.
    let fourth = refresh(&app, &client, &old).await;
    assert_eq!(fourth.json()["error"], "invalid_grant");
    let new = rt(&rotated.json());
    assert_eq!(
        refresh(&app, &client, &new).await.json()["error"],
        "invalid_grant",
        "the legitimate holder is logged out"
    );
    assert_eq!(
        app.introspect(rotated.json()["access_token"].as_str().expect("at"))
            .await["active"],
        false
    );
}

engine_test!(reuse_after_the_grace_period_revokes_the_family_and_is_audited);
async fn reuse_after_the_grace_period_revokes_the_family_and_is_audited(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let first = family(&app, &client).await;
    let old = rt(&first);
    let rotated = refresh(&app, &client, &old).await.json();
    app.clock.advance(31);
    let before = app.count("audit_log").await;
    let late = refresh(&app, &client, &old).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(late.json()["error"], "invalid_grant");
    assert_eq!(
        app.count("audit_log").await,
        before + 1,
        "the family revocation is audited"
    );
    assert_eq!(
        refresh(&app, &client, &rt(&rotated)).await.json()["error"],
        "invalid_grant"
    );
}

engine_test!(revocation_during_the_grace_period_wins);
async fn revocation_during_the_grace_period_wins(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let old = rt(&family(&app, &client).await);
    let rotated = refresh(&app, &client, &old).await.json();
    let secret = client.secret.clone().expect("secret");
    let res = app
        .post_form(
            "/oauth2/revoke",
            Some((&client.id, &secret)),
            &[("token", &rt(&rotated))],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let again = refresh(&app, &client, &old).await;
    assert_eq!(
        again.json()["error"],
        "invalid_grant",
        "no kept response is served after a revocation"
    );

    // Revoking the grant (consent session) wins too.
    let old = rt(&family(&app, &client).await);
    refresh(&app, &client, &old).await;
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
        refresh(&app, &client, &old).await.json()["error"],
        "invalid_grant"
    );
}

engine_test!(another_client_in_the_grace_period_is_theft);
async fn another_client_in_the_grace_period_is_theft(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let thief = app.web_client().await;
    let old = rt(&family(&app, &client).await);
    let rotated = refresh(&app, &client, &old).await.json();
    assert_eq!(
        refresh(&app, &thief, &old).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        refresh(&app, &client, &old).await.json()["error"],
        "invalid_grant",
        "the family is gone"
    );
    assert_eq!(
        app.introspect(rotated["access_token"].as_str().expect("at"))
            .await["active"],
        false
    );
}

engine_test!(rotation_carries_scopes_grant_accounts_and_claims_over);
async fn rotation_carries_scopes_grant_accounts_and_claims_over(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let first = family(&app, &client).await;
    let a = app
        .introspect(first["access_token"].as_str().expect("at"))
        .await;
    let mut token = rt(&first);
    for _ in 0..3 {
        let next = refresh(&app, &client, &token).await.json();
        let b = app
            .introspect(next["access_token"].as_str().expect("at"))
            .await;
        for field in ["scope", "sub", "client_id", "ext", "aud"] {
            assert_eq!(a[field], b[field], "{field} carries over");
        }
        assert_eq!(b["ext"]["accounts"], json!(["acme"]));
        token = rt(&next);
    }
    let sessions = app
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=alice",
            None,
        )
        .await
        .json();
    assert_eq!(
        sessions.as_array().expect("array").len(),
        1,
        "still one grant"
    );
}

engine_test!(bad_refresh_tokens_are_refused_without_side_effects);
async fn bad_refresh_tokens_are_refused_without_side_effects(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let live = rt(&family(&app, &client).await);
    let before = app.store.snapshot().await.expect("snapshot");
    let mut forged = live.clone().into_bytes();
    forged[8] = if forged[8] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    for bad in [
        forged.as_str(),
        &live[..live.len() - 5],
        "lk_rt_",
        "",
        "lk_at_x.y",
    ] {
        let res = refresh(&app, &client, bad).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            ["invalid_grant", "invalid_request"]
                .contains(&res.json()["error"].as_str().expect("error"))
        );
    }
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
    // A suspended client cannot refresh.
    let mut tx = latchkey_core::store::Store::begin(&app.store)
        .await
        .expect("tx");
    let mut c = tx
        .clients()
        .get(&client.id)
        .await
        .expect("get")
        .expect("client");
    c.status = latchkey_core::client::ClientStatus::Suspended;
    tx.clients().update(&c).await.expect("update");
    tx.commit().await.expect("commit");
    let res = refresh(&app, &client, &live).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"], "invalid_client");
}

/// 64 concurrent refreshes of one token, spread over two replicas sharing one database.
async fn stampede(app: &TestApp, replica: &TestApp) {
    let client = app.web_client().await;
    let old = rt(&family(app, &client).await);
    let before = app.count("refresh_tokens").await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let router = if i % 2 == 0 {
            app.public.clone()
        } else {
            replica.public.clone()
        };
        let (id, secret, token) = (
            client.id.clone(),
            client.secret.clone().expect("secret"),
            old.clone(),
        );
        tasks.push(tokio::spawn(async move {
            use base64::Engine as _;
            let body = serde_urlencoded::to_string([
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ])
            .expect("form");
            let req = axum::http::Request::post("/oauth2/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header(
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
                    ),
                )
                .body(axum::body::Body::from(body))
                .expect("request");
            TestApp::call(&router, req).await
        }));
    }
    let mut bodies = BTreeSet::new();
    for t in tasks {
        let res = t.await.expect("task");
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        bodies.insert(res.text());
    }
    assert_eq!(bodies.len(), 1, "all 64 got the identical response");
    assert_eq!(
        app.count("refresh_tokens").await,
        before + 1,
        "exactly one rotation"
    );
    let response: Value = serde_json::from_str(bodies.first().expect("body")).expect("json");
    // The family continues from that one new refresh token.
    let next = refresh(replica, &client, &rt(&response)).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.text());
    // After the window, the old token is reuse: the family is revoked.
    app.clock.advance(31);
    assert_eq!(
        refresh(app, &client, &old).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        refresh(replica, &client, &rt(&next.json())).await.json()["error"],
        "invalid_grant"
    );
}

engine_test!(
    concurrent_refreshes_are_coalesced_into_one_rotation_across_replicas,
    flavor = "multi_thread",
    worker_threads = 4
);
async fn concurrent_refreshes_are_coalesced_into_one_rotation_across_replicas(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let replica = app.replica().await;
    stampede(&app, &replica).await;
}

engine_test!(metrics_show_rotations_coalesced_responses_and_family_revocations);
async fn metrics_show_rotations_coalesced_responses_and_family_revocations(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    let old = rt(&family(&app, &client).await);
    refresh(&app, &client, &old).await;
    refresh(&app, &client, &old).await;
    app.clock.advance(60);
    refresh(&app, &client, &old).await;
    let metrics = app
        .admin(Method::GET, "/admin/metrics/prometheus", None)
        .await
        .text();
    for name in [
        "latchkey_refresh_rotations_total",
        "latchkey_refresh_coalesced_total",
        "latchkey_token_family_revocations_total",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
}

engine_test!(a_client_changed_behind_the_cache_gets_a_fresh_answer_and_nothing_half_written);
/// A refresh authenticated from the cache is one guarded write, and a guard that fails writes
/// nothing: a client changed in the database behind the cache gets the answer its current row
/// gives, and its refresh token is rotated once or left as it was.
async fn a_client_changed_behind_the_cache_gets_a_fresh_answer_and_nothing_half_written(
    db: TestDatabase,
) {
    use latchkey_core::client::ClientStatus;

    let app = TestApp::new(db).await;
    let client = app.web_client().await;
    // The code exchange cached the client.
    let old = rt(&family(&app, &client).await);

    // Suspended: refused, and nothing changes.
    app.set_status_in_db(&client.id, ClientStatus::Suspended)
        .await;
    let before = app.store.snapshot().await.expect("snapshot");
    let res = refresh(&app, &client, &old).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(res.json()["error"], "invalid_client");
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);

    // Active again (and cached again), then its secret replaced: the token read looks fine,
    // but the cached guard names a secret that is gone. Refused, and nothing is written.
    app.set_status_in_db(&client.id, ClientStatus::Active).await;
    let renewed = rt(&family(&app, &client).await);
    let new_secret = "lk_cs_replaced-behind-the-cache";
    app.replace_secret_in_db(&client.id, new_secret).await;
    let before = app.store.snapshot().await.expect("snapshot");
    let res = refresh(&app, &client, &renewed).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.text());
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);

    // With the new secret, both tokens rotate.
    let client = crate::browser::Registered {
        id: client.id.clone(),
        secret: Some(new_secret.into()),
    };
    for token in [&old, &renewed] {
        let res = refresh(&app, &client, token).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_ne!(&rt(&res.json()), token);
    }
}
