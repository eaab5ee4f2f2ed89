//! The move of docs/operations.md, command by command, with the real binary: a SQLite
//! deployment (blue) serving, `latchkey export` while it serves, `latchkey import` into an empty
//! PostgreSQL database (green), more issuing and revoking on blue, `latchkey sync`, and green
//! serving what blue did. The property tests of the move (under load, both directions) are in
//! latchkey-http's `transfer.rs`; this one proves the commands an operator types.

use std::path::Path;

use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::support::{Server, data_dir, latchkey};

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    latchkey(dir).args(args).output().expect("the command runs")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn token(server: &Server, id: &str, secret: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/oauth2/token", server.public))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "")])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn active(server: &Server, token: &str) -> bool {
    reqwest::Client::new()
        .post(format!("{}/admin/oauth2/introspect", server.admin))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect")
        .json::<Value>()
        .await
        .expect("json")["active"]
        == json!(true)
}

async fn revoke(server: &Server, id: &str, secret: &str, token: &str) {
    let res = reqwest::Client::new()
        .post(format!("{}/oauth2/revoke", server.public))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn export_import_and_sync_move_a_serving_sqlite_deployment_to_postgres() {
    let Some(green_db) = TestDatabase::postgres().await else {
        eprintln!("skipped: LATCHKEY_TEST_POSTGRES_URL is not set");
        return;
    };
    let (_blue_tmp, blue_dir) = data_dir();
    let blue = Server::start(&blue_dir, &[]).unwrap_or_else(|e| panic!("{e}"));
    let created: Value = reqwest::Client::new()
        .post(format!("{}/admin/clients", blue.admin))
        .json(&json!({"client_name": "mover", "grant_types": ["client_credentials"]}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["client_id"].as_str().expect("id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let kept = token(&blue, &id, &secret).await;
    let revoked_before = token(&blue, &id, &secret).await;
    revoke(&blue, &id, &secret, &revoked_before).await;

    // The snapshot, while blue serves.
    let (_snap_tmp, snap_dir) = data_dir();
    std::fs::create_dir_all(&snap_dir).expect("dir");
    let snapshot = snap_dir.join("blue.jsonl");
    let out = ok(&run(
        &blue_dir,
        &["export", "--output", snapshot.to_str().expect("utf-8")],
    ));
    assert!(out.contains("Exported"), "{out}");

    // Green: an empty PostgreSQL database, the same system secret (tokens are MAC'd with it).
    let (_green_tmp, green_dir) = data_dir();
    std::fs::create_dir_all(&green_dir).expect("dir");
    std::fs::copy(
        blue_dir.join("system-secret"),
        green_dir.join("system-secret"),
    )
    .expect("the system secret goes with the data");
    let url = green_db.url.as_str();
    ok(&run(&green_dir, &["migrate", "up", "--database-url", url]));
    let snapshot = snapshot.to_str().expect("utf-8");
    let out = ok(&run(
        &green_dir,
        &["import", "--input", snapshot, "--database-url", url],
    ));
    assert!(out.contains("Imported"), "{out}");
    // A second import is refused: green is no longer empty.
    let again = run(
        &green_dir,
        &["import", "--input", snapshot, "--database-url", url],
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("nothing was written"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Blue keeps serving: a new token, and a revocation of one the snapshot holds as live.
    let after = token(&blue, &id, &secret).await;
    revoke(&blue, &id, &secret, &kept).await;
    let blue_db = format!(
        "sqlite://{}",
        blue_dir.join("latchkey.db").to_str().expect("utf-8")
    );
    let out = ok(&run(
        &green_dir,
        &["sync", "--from", &blue_db, "--database-url", url],
    ));
    assert!(out.contains("Synced"), "{out}");
    assert!(blue.stop().success());

    // The switch: green serves what blue did.
    let green =
        Server::start(&green_dir, &["--database-url", url]).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        active(&green, &after).await,
        "a token issued after the snapshot"
    );
    assert!(
        !active(&green, &kept).await,
        "a revocation after the snapshot"
    );
    assert!(
        !active(&green, &revoked_before).await,
        "a revocation before it"
    );
    let fresh = token(&green, &id, &secret).await;
    assert!(
        active(&green, &fresh).await,
        "the client and its secret moved"
    );
    let log = run(
        &green_dir,
        &["revocations", "list", "--after", "0", "--database-url", url],
    );
    assert_eq!(
        ok(&log).lines().count(),
        2,
        "both revocations are in green's log"
    );
    assert!(green.stop().success());
}
