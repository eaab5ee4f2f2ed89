use std::os::unix::fs::PermissionsExt as _;

use latchkey_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::support::{Server, data_dir, latchkey};

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn starts_on_sqlite_with_no_configuration_and_restarts_on_the_same_data() {
    let (_tmp, dir) = data_dir();
    let server = Server::start(&dir, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        server.issuer, server.public,
        "the default issuer is the public URL"
    );
    assert!(dir.join("latchkey.db").is_file());
    let secret_file = dir.join("system-secret");
    let mode = std::fs::metadata(&secret_file)
        .expect("secret")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the system secret is private");
    let secret = std::fs::read_to_string(&secret_file).expect("secret");

    let discovery = get_json(&format!(
        "{}/.well-known/openid-configuration",
        server.public
    ))
    .await;
    assert_eq!(discovery["issuer"], server.issuer.as_str());
    let jwks = get_json(&format!("{}/.well-known/jwks.json", server.public)).await;

    let created: Value = reqwest::Client::new()
        .post(format!("{}/admin/clients", server.admin))
        .json(&json!({"client_name": "e2e", "redirect_uris": ["https://app.example/cb"]}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["client_id"].as_str().expect("id").to_owned();

    // The CLI goes through the same admin API.
    let out = latchkey(&dir)
        .args([
            "clients",
            "create",
            "--endpoint",
            &server.admin,
            "--name",
            "from-cli",
            "--grant-type",
            "client_credentials",
        ])
        .output()
        .expect("cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_client: Value = serde_json::from_slice(&out.stdout).expect("cli prints JSON");
    assert!(cli_client["client_secret"].as_str().is_some());
    let out = latchkey(&dir)
        .args(["clients", "list", "--endpoint", &server.admin])
        .output()
        .expect("cli");
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed.as_array().expect("array").len(), 2);

    let status = server.stop();
    assert!(status.success(), "SIGTERM exits cleanly: {status}");

    let server = Server::start(&dir, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read_to_string(&secret_file).expect("secret"),
        secret,
        "same secret"
    );
    let jwks_again = get_json(&format!("{}/.well-known/jwks.json", server.public)).await;
    assert_eq!(jwks_again, jwks, "same keys after a restart");
    let found = get_json(&format!("{}/admin/clients/{id}", server.admin)).await;
    assert_eq!(found["client_name"], "e2e");
    let out = latchkey(&dir)
        .args(["clients", "get", "--endpoint", &server.admin, "nope"])
        .output()
        .expect("cli");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn key_rotation_keeps_the_old_key_published() {
    let (_tmp, dir) = data_dir();
    let out = latchkey(&dir)
        .args(["keys", "list"])
        .output()
        .expect("keys list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(before.matches(" active  ").count(), 2, "{before}");
    let out = latchkey(&dir)
        .args(["keys", "rotate", "--alg", "ES256"])
        .output()
        .expect("rotate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(after.matches(" active  ").count(), 2, "{after}");
    assert_eq!(after.matches(" retired  ").count(), 1, "{after}");
    let server = Server::start(&dir, &[]).unwrap_or_else(|e| panic!("{e}"));
    let jwks = get_json(&format!("{}/.well-known/jwks.json", server.public)).await;
    assert_eq!(
        jwks["keys"].as_array().expect("keys").len(),
        3,
        "the retired key is still published"
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_key() {
    let (tmp, dir) = data_dir();
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, "[public]\nadr = \"127.0.0.1:0\"\n").expect("write");
    let out = latchkey(&dir)
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("adr"), "{err}");
    let out = latchkey(&dir)
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let out = latchkey(&dir)
        .env("LATCHKEY_TTL__ACCESS_TOKEN", "soon")
        .args(["config", "check"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("ttl.access_token")
    );
    let out = latchkey(&dir)
        .args(["config", "generate"])
        .output()
        .expect("run");
    std::fs::write(&file, &out.stdout).expect("write");
    let out = latchkey(&dir)
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "the generated file is valid: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.exists() || !dir.join("latchkey.db").exists(),
        "checking a configuration touches no data"
    );
}

#[test]
fn config_check_prints_no_secret() {
    let (tmp, dir) = data_dir();
    let file = tmp.path().join("latchkey.toml");
    std::fs::write(
        &file,
        "[admin]\ntoken = \"admin-token-from-the-file\"\n\
         [database]\nurl = \"postgres://latchkey:file-db-password@db.internal/latchkey\"\n",
    )
    .expect("write");
    // Runs `config check`, asserts that none of `secrets` is printed and that `url` (the
    // database, without its password) is; returns what was printed.
    let check = |cmd: &mut std::process::Command, secrets: &[&str], url: &str| {
        let out = cmd.output().expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        for secret in secrets {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{secret} printed: {stdout}{stderr}"
            );
        }
        assert!(stdout.contains(url), "where the database is: {stdout}");
        stdout
    };
    let shown = check(
        latchkey(&dir)
            .args(["config", "check", "--config"])
            .arg(&file),
        &["admin-token-from-the-file", "file-db-password"],
        "postgres://latchkey:***@db.internal/latchkey",
    );
    assert!(shown.contains(r#""token": "<redacted>""#), "{shown}");
    let shown = check(
        latchkey(&dir)
            .env("LATCHKEY_ADMIN__TOKEN", "admin-token-from-the-env")
            .env(
                "LATCHKEY_SECRETS__SYSTEM",
                "first-system-secret-0123456789abcdef,second-system-secret-0123456789abcde",
            )
            .env(
                "LATCHKEY_DATABASE__URL",
                "postgres://latchkey:env-db-password@db.internal/latchkey?sslmode=require",
            )
            .args(["config", "check"]),
        &[
            "admin-token-from-the-env",
            "first-system-secret",
            "second-system-secret",
            "env-db-password",
        ],
        "postgres://latchkey:***@db.internal/latchkey?sslmode=require",
    );
    assert_eq!(shown.matches("<redacted>").count(), 3, "{shown}");
    check(
        latchkey(&dir).args([
            "config",
            "check",
            "--database-url",
            "postgres://latchkey@db.internal/latchkey?password=flag-db-password",
        ]),
        &["flag-db-password"],
        "postgres://latchkey@db.internal/latchkey?password=***",
    );
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let (_tmp, dir) = data_dir();
    let out = latchkey(&dir)
        .args([
            "serve",
            "--public-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--database-url",
            "postgres://postgres:pw@127.0.0.1:1/none",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(!err.contains(":pw@"), "the password is not printed: {err}");
}

#[tokio::test]
async fn postgres_migrations_are_explicit() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (_tmp, dir) = data_dir();
    let err = Server::start(&dir, &["--database-url", &db.url])
        .err()
        .expect("refuses to start");
    assert!(
        err.contains("pending migration") && err.contains("migrate up"),
        "{err}"
    );
    let out = latchkey(&dir)
        .args(["migrate", "status", "--database-url", &db.url])
        .output()
        .expect("status");
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending"));
    let out = latchkey(&dir)
        .args(["migrate", "up", "--database-url", &db.url])
        .output()
        .expect("up");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = latchkey(&dir)
        .args(["migrate", "status", "--database-url", &db.url])
        .output()
        .expect("status");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 pending"));

    let server =
        Server::start(&dir, &["--database-url", &db.url]).unwrap_or_else(|e| panic!("{e}"));
    let created = reqwest::Client::new()
        .post(format!("{}/admin/clients", server.admin))
        .json(&json!({"client_name": "pg", "grant_types": ["client_credentials"]}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let jwks = get_json(&format!("{}/.well-known/jwks.json", server.public)).await;
    assert!(server.stop().success());
    // A second replica on the same database and data directory sees the same keys.
    let server =
        Server::start(&dir, &["--database-url", &db.url]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        get_json(&format!("{}/.well-known/jwks.json", server.public)).await,
        jwks
    );
    assert!(server.stop().success());
}

/// The `name=value` pairs of a response's `Set-Cookie` headers, as a `Cookie` header.
fn cookies_of(res: &reqwest::Response) -> String {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Signs in on the built-in login page; the status and `Location` of the answer.
async fn sign_in(public: &str, email: &str, password: &str) -> (u16, Option<String>) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http
        .get(format!("{public}/ui/login"))
        .send()
        .await
        .expect("login page");
    let cookie = cookies_of(&page);
    let html = page.text().await.expect("html");
    let csrf = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf token")
        .to_owned();
    let res = http
        .post(format!("{public}/ui/login"))
        .header(reqwest::header::COOKIE, cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .expect("sign in");
    let location = res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (res.status().as_u16(), location)
}

#[tokio::test]
async fn users_create_takes_the_password_from_the_variable_its_help_offers() {
    let (_tmp, dir) = data_dir();
    let help = latchkey(&dir)
        .args(["users", "create", "--help"])
        .output()
        .expect("run");
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("LATCHKEY_USER_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
    let password = "a password from the environment";
    let out = latchkey(&dir)
        .env("LATCHKEY_USER_PASSWORD", password)
        .args(["users", "create", "--email", "ops@example.test"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Left set, it is no unknown setting to the other commands either.
    let out = latchkey(&dir)
        .env("LATCHKEY_USER_PASSWORD", password)
        .args(["config", "check"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(&dir, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sign_in(&server.public, "ops@example.test", password).await,
        (303, Some("/ui/apps".to_owned())),
        "the user signs in with that password"
    );
    assert_eq!(
        sign_in(&server.public, "ops@example.test", "another password")
            .await
            .0,
        401
    );
    server.stop();
}
