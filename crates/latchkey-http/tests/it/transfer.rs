//! Export and import: a snapshot of a running database (blue) loaded into an empty one (green,
//! PostgreSQL when it is configured: SQLite→PostgreSQL and PostgreSQL→PostgreSQL), after which
//! green answers for blue's tokens and grants; bad snapshots are refused and change nothing.

use axum::http::{Method, StatusCode};
use latchkey_core::clock::Clock as _;
use latchkey_store::SqlStore;
use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::browser::{Browser, FlowOptions, Registered, pkce, query, run_flow};
use crate::support::{TestApp, engine_test};

async fn family(app: &TestApp, client: &Registered) -> Value {
    let p = pkce(4);
    let callback = run_flow(
        app,
        &mut Browser::default(),
        &client.id,
        &p,
        &FlowOptions::default(),
    )
    .await;
    let code = query(&callback)["code"].clone();
    let res = app.redeem(client, &code, &p.verifier).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
}

/// A green database: PostgreSQL when configured, SQLite otherwise.
async fn green() -> TestDatabase {
    match TestDatabase::postgres().await {
        Some(db) => db,
        None => TestDatabase::sqlite(),
    }
}

async fn snapshot_of(app: &TestApp) -> Vec<u8> {
    let now = app.clock.now();
    let id = app.store.identity("blue-db", now).await.expect("identity");
    let mut out = Vec::new();
    app.store.export(&mut out, &id, now).await.expect("export");
    out
}

async fn import(store: &SqlStore, bytes: &[u8]) -> Result<u64, String> {
    let open = || Ok(std::io::Cursor::new(bytes.to_vec()));
    store
        .import(open, 0)
        .await
        .map(|(_, n)| n)
        .map_err(|e| e.to_string())
}

engine_test!(a_snapshot_moves_to_an_empty_database_and_green_answers_for_blue);
async fn a_snapshot_moves_to_an_empty_database_and_green_answers_for_blue(db: TestDatabase) {
    let blue = TestApp::new(db).await;
    let web = blue.web_client().await;
    let service = blue
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;
    let alice = family(&blue, &web).await;
    let cc = blue
        .token(&service, &[("grant_type", "client_credentials")])
        .await
        .json();
    let revoked = family(&blue, &web).await;
    let res = blue
        .post_form(
            "/oauth2/revoke",
            Some((&web.id, web.secret.as_deref().unwrap_or_default())),
            &[("token", revoked["refresh_token"].as_str().expect("rt"))],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);

    let snapshot = snapshot_of(&blue).await;
    let text = String::from_utf8(snapshot.clone()).expect("utf-8");
    for secret in [
        alice["access_token"].as_str().expect("at"),
        alice["refresh_token"].as_str().expect("rt"),
        web.secret.as_deref().expect("secret"),
    ] {
        assert!(!text.contains(secret), "no secret in the snapshot");
    }
    let header: Value = serde_json::from_str(text.lines().next().expect("header")).expect("json");
    assert_eq!(header["version"], 1);
    assert_eq!(header["source_id"], "blue-db");
    assert_eq!(header["revocation_cursor"], 1);

    let green_db = green().await;
    let green_store = green_db.migrated().await;
    let rows = import(&green_store, &snapshot).await.expect("import");
    assert_eq!(
        u64::try_from(text.lines().count()).expect("count"),
        rows + 2,
        "header, rows, trailer"
    );
    assert_eq!(
        green_store
            .snapshot()
            .await
            .expect("green")
            .get("access_tokens"),
        blue.store
            .snapshot()
            .await
            .expect("blue")
            .get("access_tokens")
    );
    // Into a database that is not empty: refused, nothing written.
    let before = green_store.snapshot().await.expect("snapshot");
    let refused = import(&green_store, &snapshot).await.expect_err("refused");
    assert!(refused.contains("not empty"), "{refused}");
    assert_eq!(green_store.snapshot().await.expect("snapshot"), before);
    green_store.close().await;

    let green = TestApp::new(green_db).await;
    let at = alice["access_token"].as_str().expect("at");
    assert_eq!(green.introspect(at).await["active"], true);
    assert_eq!(
        green
            .introspect(cc["access_token"].as_str().expect("cc"))
            .await["active"],
        true
    );
    assert_eq!(
        green
            .introspect(revoked["access_token"].as_str().expect("at"))
            .await["active"],
        false,
        "revoked on blue, inactive on green"
    );
    let res = green
        .token(
            &web,
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    alice["refresh_token"].as_str().expect("rt"),
                ),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let consents = green
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=alice",
            None,
        )
        .await;
    assert_eq!(
        consents.json().as_array().map(Vec::len),
        Some(1),
        "alice's grant came over"
    );
    let log = green.admin(Method::GET, "/admin/revocations", None).await;
    assert_eq!(
        log.json()["last_cursor"],
        1,
        "the log came over, cursor and all"
    );
}

engine_test!(truncated_tampered_or_other_version_snapshots_are_refused);
async fn truncated_tampered_or_other_version_snapshots_are_refused(db: TestDatabase) {
    let blue = TestApp::new(db).await;
    let web = blue.web_client().await;
    family(&blue, &web).await;
    let good = String::from_utf8(snapshot_of(&blue).await).expect("utf-8");
    let lines: Vec<&str> = good.lines().collect();
    let truncated = lines[..lines.len() - 1].join("\n");
    let cut_row = lines[..lines.len() - 2]
        .iter()
        .chain(lines.last())
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let tampered = good.replacen("Web App", "Evil App", 1);
    let other_version = good.replacen("\"version\":1", "\"version\":2", 1);
    let appended = format!("{good}{}\n", lines[1]);
    let green_db = green().await;
    let green = green_db.migrated().await;
    let empty = green.snapshot().await.expect("snapshot");
    for (name, bytes, says) in [
        ("truncated", truncated.as_str(), "truncated"),
        ("a row cut out", cut_row.as_str(), "checksum"),
        ("tampered", tampered.as_str(), "checksum"),
        ("another version", other_version.as_str(), "version 2"),
        ("after its trailer", appended.as_str(), "after its trailer"),
        ("not a snapshot", "hello\n", "not a Latchkey snapshot"),
    ] {
        let why = import(&green, bytes.as_bytes()).await.expect_err("refused");
        assert!(why.contains(says), "{name}: {why}");
        assert_eq!(
            green.snapshot().await.expect("snapshot"),
            empty,
            "{name}: nothing written"
        );
    }
    import(&green, good.as_bytes())
        .await
        .expect("the good one loads");
    green.close().await;
}

/// What the load did on blue: tokens it holds as valid, and tokens it revoked.
#[derive(Default)]
struct Ledger {
    /// Access tokens issued and not revoked by the load.
    access: Vec<String>,
    /// The current refresh token of each family the load keeps.
    refresh: Vec<String>,
    revoked: Vec<String>,
}

/// Issues, refreshes and revokes on blue until `stop`; counts its rounds in `rounds`.
async fn load(
    blue: std::sync::Arc<TestApp>,
    web: Registered,
    service: Registered,
    mut refresh: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    rounds: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Ledger {
    use std::sync::atomic::Ordering;
    let mut ledger = Ledger::default();
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        // Issue.
        let t = blue
            .token(&service, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(t.status, StatusCode::OK, "{}", t.text());
        let at = t.json()["access_token"].as_str().expect("at").to_owned();
        // Revoke one in three.
        if i.is_multiple_of(3) {
            let res = blue
                .post_form(
                    "/oauth2/revoke",
                    Some((&service.id, service.secret.as_deref().unwrap_or_default())),
                    &[("token", &at)],
                )
                .await;
            assert_eq!(res.status, StatusCode::OK);
            ledger.revoked.push(at);
        } else {
            ledger.access.push(at);
        }
        // Refresh a family.
        let k = i % refresh.len();
        let res = blue
            .token(
                &web,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh[k]),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let body = res.json();
        ledger.revoked.push(std::mem::take(&mut refresh[k]));
        body["refresh_token"]
            .as_str()
            .expect("rt")
            .clone_into(&mut refresh[k]);
        let at = body["access_token"].as_str().expect("at").to_owned();
        // Now and then revoke the fresh access token of a refresh.
        if i.is_multiple_of(5) {
            let res = blue
                .post_form(
                    "/oauth2/revoke",
                    Some((&web.id, web.secret.as_deref().unwrap_or_default())),
                    &[("token", &at)],
                )
                .await;
            assert_eq!(res.status, StatusCode::OK);
            ledger.revoked.push(at);
        } else {
            ledger.access.push(at);
        }
        rounds.fetch_add(1, Ordering::SeqCst);
    }
    ledger.refresh = refresh;
    ledger
}

async fn rounds_reach(rounds: &std::sync::atomic::AtomicUsize, n: usize) {
    while rounds.load(std::sync::atomic::Ordering::SeqCst) < n {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

engine_test!(
    a_write_enabled_blue_green_move_keeps_every_token_and_every_revocation,
    flavor = "multi_thread",
    worker_threads = 2
);
async fn a_write_enabled_blue_green_move_keeps_every_token_and_every_revocation(db: TestDatabase) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let blue = Arc::new(TestApp::new(db).await);
    let web = blue.web_client().await;
    let service = blue
        .register(json!({"grant_types": ["client_credentials"], "scope": "dns.read"}))
        .await;
    let mut families = Vec::new();
    for _ in 0..3 {
        families.push(
            family(&blue, &web).await["refresh_token"]
                .as_str()
                .expect("rt")
                .to_owned(),
        );
    }
    // A family revoked whole before the move.
    let gone = family(&blue, &web).await;
    let res = blue
        .post_form(
            "/oauth2/revoke",
            Some((&web.id, web.secret.as_deref().unwrap_or_default())),
            &[("token", gone["refresh_token"].as_str().expect("rt"))],
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let running = tokio::spawn(load(
        blue.clone(),
        Registered {
            id: web.id.clone(),
            secret: web.secret.clone(),
        },
        Registered {
            id: service.id.clone(),
            secret: service.secret.clone(),
        },
        families,
        stop.clone(),
        rounds.clone(),
    ));
    rounds_reach(&rounds, 5).await;
    // Export and import while blue serves.
    let snapshot = snapshot_of(&blue).await;
    let green_db = green().await;
    let green_store = green_db.migrated().await;
    import(&green_store, &snapshot).await.expect("import");
    // Sync while blue serves, then the switch (blue stops writing), then the final sync.
    rounds_reach(&rounds, 15).await;
    let first = green_store.sync_from(&blue.store).await.expect("sync");
    assert!(first.rows > 0);
    rounds_reach(&rounds, 25).await;
    stop.store(true, Ordering::SeqCst);
    let ledger = running.await.expect("load");
    let last = green_store
        .sync_from(&blue.store)
        .await
        .expect("final sync");
    assert!(last.cursor >= first.cursor);
    green_store.close().await;

    let green = TestApp::new(green_db).await;
    // Every token valid on blue at the switch is valid on green...
    for at in &ledger.access {
        assert_eq!(blue.introspect(at).await["active"], true);
        assert_eq!(green.introspect(at).await["active"], true, "{at}");
    }
    // ...every token revoked on blue, at any time, is inactive on green...
    let mut revoked = ledger.revoked.clone();
    revoked.push(gone["access_token"].as_str().expect("at").to_owned());
    revoked.push(gone["refresh_token"].as_str().expect("rt").to_owned());
    for t in &revoked {
        assert_eq!(green.introspect(t).await["active"], false, "{t}");
    }
    // ...refresh tokens included: each family's current one refreshes on green...
    for rt in &ledger.refresh {
        let res = green
            .token(
                &web,
                &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
    // ...and no user is asked to consent again: alice's grant is there.
    let consents = green
        .admin(
            Method::GET,
            "/admin/oauth2/auth/sessions/consent?subject=alice",
            None,
        )
        .await;
    assert!(!consents.json().as_array().expect("list").is_empty());
    // A sync from a database that is not the snapshot's source is refused.
    let stranger = TestDatabase::sqlite();
    let stranger_store = stranger.migrated().await;
    stranger_store
        .identity("someone-else", 0)
        .await
        .expect("id");
    let refused = green
        .store
        .sync_from(&stranger_store)
        .await
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("not blue-db, the one this database was loaded from"),
        "{refused}"
    );
}
