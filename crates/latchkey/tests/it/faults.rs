//! Faults under a load of client-credentials token requests, as a client observes them.
//!
//! - PostgreSQL restarted under the server (`pg_ctl restart -m fast`, `-m immediate`): no `500`,
//!   a `503` with `Retry-After` while the database is away, `200` again without a restart of the
//!   server, and every token answered `200` introspects active afterwards.
//! - The server killed (`SIGKILL`) on SQLite, and on PostgreSQL, twice: every token it answered
//!   `200` before the kill introspects active once it is started again on the same data.
//! - SQLite's disk full (a 32 MiB tmpfs data directory, filled up): `503` with `Retry-After`, no
//!   `500`; `PRAGMA integrity_check` says ok; `200` again once space returns, without a restart;
//!   every token answered `200` introspects active. Skipped with a note where mount is refused.
//!
//! The PostgreSQL test runs a private cluster of its own (never the shared one, which other tests
//! use at the same time), so it needs PostgreSQL 15's server binaries; it runs when
//! `LATCHKEY_TEST_POSTGRES_URL` is set, like the other PostgreSQL tests, and is skipped with a
//! note otherwise. Every wait is bounded; the server and the cluster are stopped, and their
//! directories deleted, on drop, so also when an assertion fails.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use latchkey_store::testing::POSTGRES_URL_VAR;
use serde_json::{Value, json};

use crate::support::{Server, data_dir, latchkey};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Concurrent clients of the token endpoint.
const WORKERS: usize = 8;
/// The longest one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest one command (initdb, pg_ctl, latchkey migrate) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// The longest the load may go without the `200`s a step waits for.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The whole test, whatever happens.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// One answer of the token endpoint, as the client saw it.
#[derive(Debug, Clone)]
struct Answer {
    status: Option<u16>,
    retry_after: Option<String>,
    /// The access token of a 200; the body of anything else; the error of a failed request.
    text: String,
    /// The part of the run it was answered in (see [`Load::next_phase`]).
    phase: usize,
}

impl Answer {
    fn kind(&self) -> String {
        self.status
            .map_or_else(|| "transport error".to_owned(), |s| s.to_string())
    }
}

/// A load of client-credentials token requests from [`WORKERS`] tasks until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    unavailable: Arc<AtomicU64>,
    phase: Arc<AtomicUsize>,
    workers: Vec<tokio::task::JoinHandle<Vec<Answer>>>,
}

impl Load {
    fn start(public: &str, client_id: &str, client_secret: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let unavailable = Arc::new(AtomicU64::new(0));
        let phase = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("client");
        let url = format!("{public}/oauth2/token");
        let workers = (0..WORKERS)
            .map(|_| {
                let (stop, ok, phase) = (stop.clone(), ok.clone(), phase.clone());
                let unavailable = unavailable.clone();
                let (http, url) = (http.clone(), url.clone());
                let form = [
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_id", client_id.to_owned()),
                    ("client_secret", client_secret.to_owned()),
                ];
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let mut answer = token_request(&http, &url, &form).await;
                        answer.phase = phase.load(Ordering::Relaxed);
                        if answer.status == Some(200) {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else if answer.status == Some(503) {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } else if answer.status.is_none() {
                            // Connection refused answers at once; do not spin.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        answers.push(answer);
                    }
                    answers
                })
            })
            .collect();
        Self {
            stop,
            ok,
            unavailable,
            phase,
            workers,
        }
    }

    /// Answers from now on belong to the next part of the run.
    fn next_phase(&self) {
        self.phase.fetch_add(1, Ordering::Relaxed);
    }

    fn ok_count(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `more` requests beyond the `since` count were answered 200.
    async fn wait_for_ok(&self, since: u64, more: u64, what: &str) {
        let deadline = Instant::now() + RECOVERY_TIMEOUT;
        while self.ok_count() < since + more {
            assert!(
                Instant::now() < deadline,
                "no 200 within {RECOVERY_TIMEOUT:?} {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `more` requests beyond the `since` count were answered 503.
    async fn wait_for_unavailable(&self, since: u64, more: u64, what: &str) {
        let deadline = Instant::now() + RECOVERY_TIMEOUT;
        while self.unavailable.load(Ordering::Relaxed) < since + more {
            assert!(
                Instant::now() < deadline,
                "no 503 within {RECOVERY_TIMEOUT:?} {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for worker in self.workers {
            let answers = tokio::time::timeout(REQUEST_TIMEOUT * 2, worker)
                .await
                .expect("a load task did not stop")
                .expect("a load task panicked");
            all.extend(answers);
        }
        all
    }
}

async fn token_request(http: &reqwest::Client, url: &str, form: &[(&str, String)]) -> Answer {
    let res = match http.post(url).form(form).send().await {
        Ok(res) => res,
        Err(e) => {
            return Answer {
                status: None,
                retry_after: None,
                text: e.to_string(),
                phase: 0,
            };
        }
    };
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = match res.text().await {
        Ok(body) => body,
        Err(e) => {
            return Answer {
                status: None,
                retry_after: None,
                text: format!("status {status}, body lost: {e}"),
                phase: 0,
            };
        }
    };
    let text = if status == 200 {
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["access_token"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("a 200 without an access token: {body}"))
    } else {
        body
    };
    Answer {
        status: Some(status),
        retry_after,
        text,
        phase: 0,
    }
}

/// Counts by status, e.g. `{"200": 5120, "503": 41}`.
fn tally<'a>(answers: impl IntoIterator<Item = &'a Answer>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in answers {
        *counts.entry(a.kind()).or_default() += 1;
    }
    counts
}

fn tokens(answers: &[Answer]) -> Vec<String> {
    answers
        .iter()
        .filter(|a| a.status == Some(200))
        .map(|a| a.text.clone())
        .collect()
}

/// A client of the client-credentials grant: its id and secret.
async fn create_client(admin: &str) -> (String, String) {
    let res = reqwest::Client::new()
        .post(format!("{admin}/admin/clients"))
        .timeout(REQUEST_TIMEOUT)
        .json(&json!({
            "client_name": "faults",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .send()
        .await
        .expect("create the client");
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    (
        created["client_id"].as_str().expect("client_id").to_owned(),
        created["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
    )
}

/// The tokens that do not introspect `active: true`, with what introspection said.
async fn inactive(admin: &str, tokens: &[String]) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("client");
    let url = format!("{admin}/admin/oauth2/introspect");
    let chunk = tokens.len().div_ceil(WORKERS).max(1);
    let mut tasks = Vec::new();
    for part in tokens.chunks(chunk) {
        let (http, url, part) = (http.clone(), url.clone(), part.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            for token in part {
                let said = match http.post(&url).form(&[("token", &token)]).send().await {
                    Ok(res) if res.status() == 200 => match res.json::<Value>().await {
                        Ok(v) if v["active"] == true => continue,
                        Ok(v) => v.to_string(),
                        Err(e) => e.to_string(),
                    },
                    Ok(res) => format!("status {}", res.status()),
                    Err(e) => e.to_string(),
                };
                bad.push(format!("{token}: {said}"));
            }
            bad
        }));
    }
    let mut bad = Vec::new();
    for task in tasks {
        bad.extend(task.await.expect("an introspection task panicked"));
    }
    bad
}

/// Runs a command to its end, killed after [`COMMAND_TIMEOUT`]; its output, or why it failed.
/// The output goes to a file, not a pipe, so a daemon it leaves behind (the postmaster) cannot
/// hold the reading end open.
fn run(cmd: &mut Command) -> Result<String, String> {
    use std::io::{Read as _, Seek as _};
    let what = format!("{cmd:?}");
    let mut output = tempfile::tempfile().map_err(|e| e.to_string())?;
    let for_stderr = output.try_clone().map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|e| e.to_string())?)
        .stderr(for_stderr)
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: did not finish within {COMMAND_TIMEOUT:?}"));
            }
        }
    };
    let mut text = String::new();
    let _ = output.rewind();
    let _ = output.read_to_string(&mut text);
    if status.success() {
        Ok(text)
    } else {
        Err(format!("{what}: {status}: {text}"))
    }
}

/// `--config` with the per-replica rate limits off: the load is one client from one address,
/// far above the default limits, and a 429 is not what these tests are about.
fn no_rate_limits(tmp: &Path) -> [String; 2] {
    let file = tmp.join("latchkey.toml");
    std::fs::write(&file, "[rate_limits]\nenabled = false\n").expect("write the configuration");
    ["--config".to_owned(), file.display().to_string()]
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A PostgreSQL 15 cluster of this test's own, in a temporary directory owned by `postgres`
/// (initdb refuses root), on a free port, with trust authentication. Stopped and deleted on drop.
struct PrivatePostgres {
    tmp: tempfile::TempDir,
    data: PathBuf,
    as_postgres: bool,
    port: u16,
}

impl PrivatePostgres {
    /// What is missing for a private cluster, if anything: PostgreSQL 15's server binaries.
    fn missing() -> Option<String> {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .map(|bin| Path::new(PG_BIN).join(bin))
            .find(|path| !path.is_file())
            .map(|path| format!("{} is missing", path.display()))
    }

    fn start() -> Result<Self, String> {
        let uid = run(Command::new("id").arg("-u"))?;
        let as_postgres = uid.trim() == "0";
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(tmp.path()))?;
        }
        let mut pg = Self {
            data: tmp.path().join("data"),
            tmp,
            as_postgres,
            port: 0,
        };
        run(pg
            .pg("initdb")
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&pg.data))?;
        // A port taken between here and the start is retried with another.
        let mut last = String::new();
        for _ in 0..3 {
            pg.port = free_port();
            let options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
                pg.port,
                pg.tmp.path().display()
            );
            let started = run(pg
                .pg("pg_ctl")
                .args(["start", "-w", "-t", "60", "-D"])
                .arg(&pg.data)
                .arg("-l")
                .arg(pg.log())
                .args(["-o", &options]));
            match started {
                Ok(_) => return Ok(pg),
                Err(e) => last = format!("{e}\n{}", pg.log_text()),
            }
        }
        Err(last)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn log(&self) -> PathBuf {
        self.tmp.path().join("postgres.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// One of PostgreSQL's programs, run as `postgres` when the test runs as root.
    fn pg(&self, program: &str) -> Command {
        let program = Path::new(PG_BIN).join(program);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir(self.tmp.path());
        cmd
    }

    /// `pg_ctl restart -m <mode>`, waiting until the server accepts connections again.
    fn restart(&self, mode: &str) -> Result<String, String> {
        run(self
            .pg("pg_ctl")
            .args(["restart", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(self.log()))
        .map_err(|e| format!("{e}\n{}", self.log_text()))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = run(self
            .pg("pg_ctl")
            .args(["stop", "-w", "-t", "30", "-m", "immediate", "-D"])
            .arg(&self.data));
    }
}

/// Everything wrong with a run's answers: anything but 200 and 503, any 503 without
/// `Retry-After`, and failed requests unless `refused_is_fine` (the server was killed).
fn unexpected(answers: &[Answer], refused_is_fine: bool) -> Vec<String> {
    let mut seen = BTreeMap::<String, (usize, String)>::new();
    for a in answers {
        let wrong = match a.status {
            Some(200) => continue,
            Some(503) if a.retry_after.is_some() => continue,
            Some(503) => "503 without Retry-After".to_owned(),
            None if refused_is_fine => continue,
            _ => a.kind(),
        };
        let entry = seen.entry(wrong).or_insert((0, a.text.clone()));
        entry.0 += 1;
    }
    seen.into_iter()
        .map(|(what, (n, first))| format!("{n} × {what}, the first: {first}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarts_under_load_give_503_not_500_and_lose_no_token() {
    if std::env::var_os(POSTGRES_URL_VAR).is_none() {
        eprintln!("skipped: {POSTGRES_URL_VAR} is not set");
        return;
    }
    if let Some(missing) = PrivatePostgres::missing() {
        eprintln!("skipped: {missing}");
        return;
    }
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .expect("start PostgreSQL")
        .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL: {e}"));
    let pg = Arc::new(pg);
    tokio::time::timeout(TEST_TIMEOUT, postgres_restarts(pg.clone()))
        .await
        .unwrap_or_else(|_| panic!("the test took more than {TEST_TIMEOUT:?}"));
}

async fn postgres_restarts(pg: Arc<PrivatePostgres>) {
    let started = Instant::now();
    let (tmp, dir) = data_dir();
    let config = no_rate_limits(tmp.path());
    let url = pg.url();
    if let Err(e) = run(latchkey(&dir).args(["migrate", "up", "--database-url", &url])) {
        panic!("{e}");
    }
    let server = Server::start(&dir, &["--database-url", &url, &config[0], &config[1]])
        .unwrap_or_else(|e| panic!("{e}"));
    let (id, secret) = create_client(&server.admin).await;

    let load = Load::start(&server.public, &id, &secret);
    load.wait_for_ok(0, 200, "before any restart").await;
    let modes = ["fast", "immediate", "fast"];
    for mode in modes {
        tokio::time::sleep(Duration::from_millis(700)).await;
        load.next_phase();
        let before = load.ok_count();
        let pg = pg.clone();
        let restarted = tokio::task::spawn_blocking(move || pg.restart(mode))
            .await
            .expect("restart");
        if let Err(e) = restarted {
            panic!("pg_ctl restart -m {mode} failed: {e}");
        }
        eprintln!(
            "PostgreSQL restarted (-m {mode}); {} tokens were issued while it restarted",
            load.ok_count() - before
        );
        let after = load.ok_count();
        load.wait_for_ok(after, 50, &format!("after pg_ctl restart -m {mode}"))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let answers = load.finish().await;
    let counts = tally(&answers);
    eprintln!("PostgreSQL restarts under load: {counts:?}");
    let phases = std::iter::once("before any restart".to_owned()).chain(
        modes
            .iter()
            .map(|m| format!("from pg_ctl restart -m {m} on")),
    );
    for (phase, what) in phases.enumerate() {
        let part = tally(answers.iter().filter(|a| a.phase == phase));
        eprintln!("  {what}: {part:?}");
    }

    let wrong = unexpected(&answers, false);
    assert!(
        wrong.is_empty(),
        "while PostgreSQL restarted, answers other than 200 and 503 with Retry-After \
         ({counts:?}):\n{}",
        wrong.join("\n")
    );
    let issued = tokens(&answers);
    let lost = inactive(&server.admin, &issued).await;
    assert!(
        lost.is_empty(),
        "{} of {} tokens answered 200 do not introspect active, e.g. {:?}",
        lost.len(),
        issued.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(server.stop().success());
    eprintln!(
        "{} tokens introspected active; {:?} in all",
        issued.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_server_on_sqlite_loses_no_token_it_answered() {
    tokio::time::timeout(TEST_TIMEOUT, sigkill_on_sqlite())
        .await
        .unwrap_or_else(|_| panic!("the test took more than {TEST_TIMEOUT:?}"));
}

async fn sigkill_on_sqlite() {
    sigkill_under_load(None).await;
}

/// Kills the server (SIGKILL) under load twice, on SQLite or on the PostgreSQL database `url`.
async fn sigkill_under_load(database_url: Option<&str>) {
    let started = Instant::now();
    let (tmp, dir) = data_dir();
    let config = no_rate_limits(tmp.path());
    let mut config: Vec<&str> = vec![config[0].as_str(), config[1].as_str()];
    if let Some(url) = database_url {
        if let Err(e) = run(latchkey(&dir).args(["migrate", "up", "--database-url", url])) {
            panic!("{e}");
        }
        config.extend(["--database-url", url]);
    }
    let server = Server::start(&dir, &config).unwrap_or_else(|e| panic!("{e}"));
    let (id, secret) = create_client(&server.admin).await;
    let mut server = Some(server);
    let mut issued = Vec::new();
    for round in 1..=2 {
        let mut running = match server.take() {
            Some(s) => s,
            None => Server::start(&dir, &config).unwrap_or_else(|e| panic!("{e}")),
        };
        let load = Load::start(&running.public, &id, &secret);
        load.wait_for_ok(0, 300, "before the kill").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        running.child.kill().expect("SIGKILL");
        let status = running.child.wait().expect("wait");
        let answers = load.finish().await;
        let counts = tally(&answers);
        eprintln!("round {round}, killed ({status}) under load: {counts:?}");
        let wrong = unexpected(&answers, true);
        assert!(
            wrong.is_empty(),
            "answers other than 200 and 503 with Retry-After before the kill ({counts:?}):\n{}",
            wrong.join("\n")
        );
        issued.extend(tokens(&answers));
        drop(running);
    }

    let server = Server::start(&dir, &config).unwrap_or_else(|e| panic!("{e}"));
    let lost = inactive(&server.admin, &issued).await;
    assert!(
        lost.is_empty(),
        "{} of {} tokens answered 200 before a SIGKILL do not introspect active after it, e.g. {:?}",
        lost.len(),
        issued.len(),
        &lost[..lost.len().min(5)]
    );
    // And the restarted server issues tokens again.
    let load = Load::start(&server.public, &id, &secret);
    load.wait_for_ok(0, 10, "after the restart").await;
    let after = load.finish().await;
    assert!(
        after.iter().all(|a| a.status == Some(200)),
        "{:?}",
        tally(&after)
    );
    assert!(server.stop().success());
    eprintln!(
        "{} tokens introspected active after two SIGKILLs; {:?} in all",
        issued.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_the_server_on_postgres_loses_no_token_it_answered() {
    let Ok(base) = std::env::var(POSTGRES_URL_VAR) else {
        eprintln!("skipped: {POSTGRES_URL_VAR} is not set");
        return;
    };
    // A database of this test's own on the shared server, dropped at the end.
    let name = format!("latchkey_sigkill_{}", std::process::id());
    let server_url = base
        .rsplit_once('/')
        .map_or(base.as_str(), |(s, _)| s)
        .to_owned();
    let admin_url = format!("{server_url}/postgres");
    let psql =
        |sql: String| run(Command::new("psql").args([admin_url.as_str(), "-qAt", "-c", &sql]));
    if let Err(e) = psql(format!("CREATE DATABASE {name}")) {
        eprintln!("skipped: cannot create a database ({e})");
        return;
    }
    let url = format!("{server_url}/{name}");
    let outcome = tokio::time::timeout(TEST_TIMEOUT, sigkill_under_load(Some(&url))).await;
    let _ = psql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    outcome.unwrap_or_else(|_| panic!("the test took more than {TEST_TIMEOUT:?}"));
}

/// A tmpfs mounted on a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_on_sqlite_gives_503_corrupts_nothing_and_recovers() {
    tokio::time::timeout(TEST_TIMEOUT, disk_full_on_sqlite())
        .await
        .unwrap_or_else(|_| panic!("the test took more than {TEST_TIMEOUT:?}"));
}

async fn disk_full_on_sqlite() {
    let (tmp, dir) = data_dir();
    std::fs::create_dir_all(&dir).expect("data dir");
    let mounted = run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
        .arg(&dir));
    if let Err(e) = mounted {
        eprintln!("skipped: cannot mount a small tmpfs for the data directory ({e})");
        return;
    }
    let _mount = Tmpfs(dir.clone());
    let config = no_rate_limits(tmp.path());
    let config = [config[0].as_str(), config[1].as_str()];
    let server = Server::start(&dir, &config).unwrap_or_else(|e| panic!("{e}"));
    let (id, secret) = create_client(&server.admin).await;
    let load = Load::start(&server.public, &id, &secret);
    load.wait_for_ok(0, 100, "before the disk fills").await;

    // The disk fills up.
    load.next_phase();
    let filler = dir.join("filler");
    let path = filler.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).and_then(|()| f.sync_data()).is_ok() {}
    })
    .await
    .expect("fill");
    load.wait_for_unavailable(0, 20, "once the disk is full")
        .await;

    // Space returns: the server recovers by itself.
    std::fs::remove_file(&filler).expect("free the disk");
    load.next_phase();
    let ok = load.ok_count();
    load.wait_for_ok(ok, 50, "once space returned").await;
    let answers = load.finish().await;
    let counts = tally(&answers);
    for (phase, what) in ["before", "disk full", "space returned"].iter().enumerate() {
        eprintln!(
            "  {what}: {:?}",
            tally(answers.iter().filter(|a| a.phase == phase))
        );
    }
    let wrong = unexpected(&answers, false);
    assert!(
        wrong.is_empty(),
        "with the disk full, answers other than 200 and 503 with Retry-After ({counts:?}):\n{}",
        wrong.join("\n")
    );
    let issued = tokens(&answers);
    assert!(server.stop().success());

    // Nothing corrupted: SQLite's own check, then every token answered 200 is still valid.
    let db = dir.join("latchkey.db");
    match run(Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA integrity_check"))
    {
        Ok(out) => assert_eq!(out.trim(), "ok", "integrity_check: {out}"),
        Err(e) => eprintln!("note: sqlite3 not run ({e})"),
    }
    let server = Server::start(&dir, &config).unwrap_or_else(|e| panic!("{e}"));
    let lost = inactive(&server.admin, &issued).await;
    assert!(
        lost.is_empty(),
        "{} of {} tokens answered 200 around a full disk do not introspect active, e.g. {:?}",
        lost.len(),
        issued.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(server.stop().success());
    eprintln!(
        "{} tokens introspected active after the disk filled and emptied",
        issued.len()
    );
}
