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
