//! The janitor deletes only dead rows: a database with live and dead rows of every kind the
//! engine has, one run, and then every live thing still works through the HTTP APIs and every
//! dead row is gone.

use axum::http::{Method, StatusCode};
use latchkey_core::clock::Clock as _;
use latchkey_core::janitor::{self, DeadKind, JanitorPolicy};
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{
    Browser, FlowOptions, Registered, authorize_url, location, pkce, query, run_flow,
};
use crate::support::{TestApp, engine_test};

const DAY: i64 = 86_400;

/// A fresh family for `subject` (a remembered login), through the whole flow.
async fn family(
    app: &TestApp,
    client: &Registered,
    subject: &'static str,
    b: &mut Browser,
) -> Value {
    let p = pkce(3);
    let o = FlowOptions {
        subject,
        remember: true,
        ..FlowOptions::default()
    };
    let callback = run_flow(app, b, &client.id, &p, &o).await;
    let code = query(&callback)["code"].clone();
    let res = app.redeem(client, &code, &p.verifier).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

/// An authorization started and left at the login step: its login challenge.
async fn started_flow(app: &TestApp, client: &Registered) -> String {
    let res = Browser::default()
        .get(
            app,
            &authorize_url(&client.id, &pkce(5), &FlowOptions::default()),
        )
        .await;
    query(&location(&res))["login_challenge"].clone()
}

async fn refresh(app: &TestApp, client: &Registered, rt: &str) -> crate::support::Answer {
    app.token(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

async fn cc_token(app: &TestApp, service: &Registered) -> String {
    let res = app
        .token(service, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()["access_token"].as_str().expect("at").to_owned()
}

async fn revoke(app: &TestApp, client: &Registered, token: &str) {
    let res = app
        .post_form(
            "/oauth2/revoke",
            Some((&client.id, client.secret.as_deref().unwrap_or_default())),
            &[("token", token)],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

fn policy() -> JanitorPolicy {
    JanitorPolicy {
        batch: 2,
        refresh_window: 30,
        revocation_retention: 30 * DAY,
        registration_ttl: DAY,
    }
}

engine_test!(the_janitor_deletes_every_dead_row_and_nothing_live);
async fn the_janitor_deletes_every_dead_row_and_nothing_live(db: TestDatabase) {
    let app = TestApp::new(db).await;
    let web = app.web_client().await;
    let service = app
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;

    // Day 0: what will be dead by day 31. Dave's family, an abandoned flow, an unused code, a
    // client-credentials token (revoked: a log entry that outlives its retention).
    family(&app, &web, "dave", &mut Browser::default()).await;
    started_flow(&app, &web).await;
    run_flow(
        &app,
        &mut Browser::default(),
        &web.id,
        &pkce(6),
        &FlowOptions::default(),
    )
    .await;
    let old_cc = cc_token(&app, &service).await;
    revoke(&app, &service, &old_cc).await;
    // Erin's family, rotated on day 29: its first refresh token is used and expired by day 31,
    // but the family lives, so a replay of it must still revoke the family.
    let erin = family(&app, &web, "erin", &mut Browser::default()).await;
    let erin_first = erin["refresh_token"].as_str().expect("rt").to_owned();
    app.clock.advance(29 * DAY);
    let rotated = refresh(&app, &web, &erin_first).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let erin_second = rotated.json()["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    app.clock.advance(2 * DAY);

    // Day 31: what is live. Alice's family and remembered login, a flow in progress, a
    // client-credentials token, a fresh revocation.
    let mut alice_browser = Browser::default();
    let alice = family(&app, &web, "alice", &mut alice_browser).await;
    let in_progress = started_flow(&app, &web).await;
    let live_cc = cc_token(&app, &service).await;
    let revoked_cc = cc_token(&app, &service).await;
    revoke(&app, &service, &revoked_cc).await;

    // The dry run counts and changes nothing.
    let deps = app.state.engine.deps();
    let before = app.store.snapshot().await.expect("snapshot");
    let planned = janitor::dry_run(deps, &policy()).await.expect("dry run");
    assert_eq!(app.store.snapshot().await.expect("snapshot"), before);
    for kind in [
        DeadKind::Flows,
        DeadKind::Codes,
        DeadKind::AccessTokens,
        DeadKind::RefreshTokens,
        DeadKind::LoginSessions,
        DeadKind::RevocationLog,
    ] {
        assert!(planned.of(kind) > 0, "{kind:?}: {planned:?}");
    }

    // In batches of two: every batch is its own transaction.
    let done = janitor::run_with(deps, &policy()).await.expect("janitor");
    assert_eq!(done, planned, "the run deletes what the dry run counted");

    // Every dead row is gone (asked of the tables directly, not of the janitor's rules)...
    let now = app.clock.now();
    for table in [
        "flows",
        "authorization_codes",
        "access_tokens",
        "login_sessions",
        "client_assertion_jtis",
    ] {
        assert_eq!(
            app.store
                .count_rows_where(table, &format!("expires_at <= {now}"))
                .await
                .expect("count"),
            0,
            "{table}"
        );
    }
    assert_eq!(
        app.store
            .count_rows_where("refresh_tokens", &format!("expires_at <= {now}"))
            .await
            .expect("count"),
        1,
        "only erin's used token stays: its family lives"
    );
    assert_eq!(
        app.count("revocation_log").await,
        1,
        "the entry older than its retention is gone"
    );
    assert_eq!(
        janitor::dry_run(deps, &policy())
            .await
            .expect("dry run")
            .total(),
        0
    );

    // ...and everything live still works: the flow in progress, the remembered login, the
    // grant, the tokens, the clients, the keys.
    let login = app
        .admin(
            Method::GET,
            &format!("/admin/oauth2/auth/requests/login?login_challenge={in_progress}"),
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let res = alice_browser
        .get(
            &app,
            &authorize_url(&web.id, &pkce(8), &FlowOptions::default()),
        )
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
    assert_eq!(login["skip"], true, "alice's remembered login: {login}");
    let consents = app
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=alice",
            None,
        )
        .await;
    assert_eq!(consents.json().as_array().map(Vec::len), Some(1));
    let dave = app
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=dave",
            None,
        )
        .await;
    assert_eq!(
        dave.json().as_array().map(Vec::len),
        Some(1),
        "grants are never the janitor's"
    );
    assert_eq!(
        app.introspect(alice["access_token"].as_str().expect("at"))
            .await["active"],
        true
    );
    assert_eq!(app.introspect(&live_cc).await["active"], true);
    let res = refresh(&app, &web, alice["refresh_token"].as_str().expect("rt")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert!(res.json()["id_token"].is_string(), "the keys still sign");
    cc_token(&app, &service).await;
    let jwks = app.get_public("/.well-known/jwks.json").await;
    assert!(!jwks.json()["keys"].as_array().expect("keys").is_empty());
    for c in [&web.id, &service.id] {
        let res = app
            .admin(Method::GET, &format!("/admin/clients/{c}"), None)
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    // Reuse detection survived: a replay of erin's used token revokes her live family.
    assert_eq!(
        app.introspect(&erin_second).await["active"],
        true,
        "erin's second refresh token is live"
    );
    let replay = refresh(&app, &web, &erin_first).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text());
    assert_eq!(app.introspect(&erin_second).await["active"], false);
}
