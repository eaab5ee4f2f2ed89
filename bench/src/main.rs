//! `latchkey-bench`: the load generator of Latchkey's side-by-side benchmark (issue 7).
//!
//! `run` drives one scenario against one server (Latchkey, or a peer with the path flags) and
//! appends its result to a JSON-lines file; `report` turns such a file into the JSON and markdown
//! report, with every figure as a ratio against the peers of the same run. `bench/run.sh` drives
//! the whole comparison; see `bench/README.md`.

mod http;
mod procstat;
mod recorder;
mod report;
mod runner;
mod scenario;
mod sqlite_insert;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use hyper::header::HeaderValue;

use crate::report::{LimitResult, Record, ReportMeta, Runs};
use crate::runner::{Mode, Plan, Probe};
use crate::scenario::{Client, IntrospectAuth, Scenario, SetupPlan, Target};

#[derive(Parser)]
#[command(
    name = "latchkey-bench",
    about = "Load generator for Latchkey's benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario against one server and append the result to a results file.
    Run(Box<RunArgs>),
    /// Write the JSON and markdown report of a results file.
    Report(ReportArgs),
    /// Print one figure of a results file (for scripts).
    Query(QueryArgs),
    /// Append a physical limit measured elsewhere (e.g. pgbench) to a results file.
    Limit(LimitArgs),
    /// Measure SQLite's single-row insert rate (WAL, synchronous=NORMAL, one transaction each).
    SqliteInsert(SqliteInsertArgs),
    /// Wait until every URL answers 2xx (bounded by --timeout).
    WaitReady(WaitReadyArgs),
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
}

#[derive(Args)]
struct RunArgs {
    /// Name of the server in the results (latchkey-sqlite, latchkey-postgres, oidc-provider,
    /// bare-http are the names the report compares).
    #[arg(long)]
    target: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "closed")]
    mode: Mode,
    /// Workers (connections): closed loop, requests in flight; open loop, at most in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured seconds before the measurement (same load).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Operations per second (open loop; an auth-code operation is a whole flow).
    #[arg(long)]
    rate: Option<f64>,
    /// Base URL of the public listener.
    #[arg(long)]
    public_url: String,
    /// Base URL of the admin listener (Hydra admin API: clients, login/consent, introspection).
    #[arg(long)]
    admin_url: Option<String>,
    /// Bearer token for the admin API.
    #[arg(long)]
    admin_token: Option<String>,
    #[arg(long, default_value = "/oauth2/auth")]
    auth_path: String,
    #[arg(long, default_value = "/oauth2/token")]
    token_path: String,
    #[arg(long, default_value = "/oauth2/revoke")]
    revoke_path: String,
    /// Full introspection URL (default: {admin-url}/admin/oauth2/introspect).
    #[arg(long)]
    introspect_url: Option<String>,
    #[arg(long, value_enum, default_value = "admin")]
    introspect_auth: IntrospectAuth,
    /// A client configured in the server, ID:SECRET (default: create one via the admin API).
    #[arg(long)]
    client: Option<String>,
    /// A client with JWT access tokens, ID:SECRET (default: create one via the admin API).
    #[arg(long)]
    jwt_client: Option<String>,
    #[arg(long, default_value = "http://127.0.0.1:9/cb")]
    redirect_uri: String,
    #[arg(long, default_value = "openid offline_access")]
    scope: String,
    /// How the authorization code flow passes login and consent.
    #[arg(long, value_enum, default_value = "hydra")]
    flow: scenario::Flow,
    /// PID of the server process: CPU and memory are read from /proc/PID.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Also count the CPU of every process with this command name (e.g. postgres).
    #[arg(long)]
    aux_comm: Option<String>,
    /// Tokens pre-minted for introspection.
    #[arg(long, default_value_t = 2000)]
    introspect_pool: usize,
    /// At most this many tokens pre-minted for revocation.
    #[arg(long, default_value_t = 300_000)]
    revoke_pool_max: usize,
    /// Threads of the load generator.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Append the result (one JSON line) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit with status 1 if any operation failed.
    #[arg(long)]
    fail_on_error: bool,
}

#[derive(Args)]
struct ReportArgs {
    #[arg(long)]
    results: PathBuf,
    #[arg(long)]
    json: PathBuf,
    #[arg(long)]
    markdown: PathBuf,
    #[arg(long, default_value = "")]
    generated_at: String,
    #[arg(long, default_value = "")]
    machine: String,
    #[arg(long, default_value = "")]
    settings: String,
    #[arg(long)]
    note: Vec<String>,
}

#[derive(Args)]
struct QueryArgs {
    #[arg(long)]
    results: PathBuf,
    #[arg(long)]
    target: String,
    #[arg(long)]
    scenario: String,
    #[arg(long, default_value = "closed")]
    mode: String,
    /// throughput, errors, p95_ms or token_body_bytes.
    #[arg(long)]
    field: String,
}

#[derive(Args)]
struct LimitArgs {
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    name: String,
    #[arg(long)]
    ops_per_s: f64,
    #[arg(long, default_value = "")]
    detail: String,
}

#[derive(Args)]
struct SqliteInsertArgs {
    /// Database file (created; use a scratch directory).
    #[arg(long)]
    path: PathBuf,
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct WaitReadyArgs {
    #[arg(long, required = true)]
    url: Vec<String>,
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Give up early if this process exits.
    #[arg(long)]
    pid: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("latchkey-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.client_threads.max(1))
                .enable_all()
                .build()?;
            runtime.block_on(run(*args))
        }
        Command::Report(args) => {
            let runs = Runs::new(report::load(&args.results)?);
            let meta = ReportMeta {
                generated_at: args.generated_at,
                machine: args.machine,
                settings: args.settings,
                notes: args.note,
            };
            std::fs::write(&args.json, report::write_json(&runs, &meta)?)
                .with_context(|| format!("write {}", args.json.display()))?;
            std::fs::write(&args.markdown, report::write_markdown(&runs, &meta))
                .with_context(|| format!("write {}", args.markdown.display()))?;
            eprintln!(
                "report: {} and {} ({} failed operations in all)",
                args.json.display(),
                args.markdown.display(),
                runs.total_errors()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Query(args) => {
            let runs = Runs::new(report::load(&args.results)?);
            let value = report::query(&runs, &args.target, &args.scenario, &args.mode, &args.field)
                .ok_or_else(|| {
                    anyhow!(
                        "no {} for {} {} {}",
                        args.field,
                        args.target,
                        args.scenario,
                        args.mode
                    )
                })?;
            println!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Limit(args) => {
            report::append(
                &args.out,
                &Record::Limit(LimitResult {
                    name: args.name,
                    ops_per_s: args.ops_per_s,
                    detail: args.detail,
                }),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::SqliteInsert(args) => {
            let duration = Duration::from_secs_f64(args.duration.clamp(0.1, 600.0));
            let (rate, rows) = sqlite_insert::run(&args.path, duration)?;
            eprintln!("sqlite-insert: {rows} rows, {rate:.0} rows/s");
            if let Some(out) = &args.out {
                report::append(
                    out,
                    &Record::Limit(LimitResult {
                        name: report::SQLITE_INSERT.to_owned(),
                        ops_per_s: rate,
                        detail:
                            "rusqlite, one connection, WAL, synchronous=NORMAL, one single-row \
                                 transaction per insert"
                                .to_owned(),
                    }),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::WaitReady(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(wait_ready(&args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::FreePort => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", listener.local_addr()?.port());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let public = http::Origin::parse(&args.public_url)?;
    let public_base = url::Url::parse(&format!("{}/", args.public_url.trim_end_matches('/')))?;
    let admin = args
        .admin_url
        .as_deref()
        .map(http::Origin::parse)
        .transpose()?;
    let introspect_url = match (&args.introspect_url, &args.admin_url) {
        (Some(url), _) => url.clone(),
        (None, Some(admin)) => format!("{}/admin/oauth2/introspect", admin.trim_end_matches('/')),
        (None, None) => format!("{}/admin/oauth2/introspect", args.public_url),
    };
    let introspect_parsed = url::Url::parse(&introspect_url)?;
    let introspect = http::Origin::parse(&introspect_url)?;
    let admin_token = args
        .admin_token
        .as_deref()
        .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
        .transpose()
        .context("admin token")?;
    let target = Target {
        auth_path: public.path(&args.auth_path),
        token_path: public.path(&args.token_path),
        revoke_path: public.path(&args.revoke_path),
        introspect_path: introspect_parsed.path().to_owned(),
        introspect,
        introspect_auth: args.introspect_auth,
        public,
        public_base,
        admin,
        admin_token,
        client: args.client.as_deref().map(Client::parse).transpose()?,
        jwt_client: args.jwt_client.as_deref().map(Client::parse).transpose()?,
        redirect_uri: args.redirect_uri.clone(),
        scope: args.scope.clone(),
        flow: args.flow,
    };
    let duration = Duration::from_secs_f64(args.duration.clamp(0.1, 600.0));
    let warmup = Duration::from_secs_f64(args.warmup.clamp(0.0, 60.0));
    let rate = match (args.mode, args.rate) {
        (Mode::Open, Some(rate)) if rate > 0.0 => rate,
        (Mode::Open, _) => bail!("--mode open needs --rate"),
        (Mode::Closed, _) => 0.0,
    };
    let revoke_pool_max = match args.mode {
        // Enough for the whole schedule, with some slack.
        Mode::Open => (((warmup + duration).as_secs_f64() * rate * 1.05) as usize + 100)
            .min(args.revoke_pool_max),
        Mode::Closed => args.revoke_pool_max,
    };
    let setup_plan = SetupPlan {
        concurrency: args.concurrency,
        introspect_pool: args.introspect_pool,
        // Minting (a client-credentials request) may be slower than revoking: mint for longer.
        revoke_mint_for: (warmup + duration).mul_f64(1.5),
        revoke_pool_max,
    };
    let setup_started = std::time::Instant::now();
    let shared = scenario::setup(args.scenario, target, &setup_plan)
        .await
        .with_context(|| format!("{} {}: setup", args.target, args.scenario.name()))?;
    eprintln!(
        "{} {} {}: setup done in {:.1}s ({} tokens, {} refresh tokens)",
        args.target,
        args.scenario.name(),
        args.mode.name(),
        setup_started.elapsed().as_secs_f64(),
        shared.tokens.len(),
        shared.spare_refresh_tokens.lock().map_or(0, |v| v.len()),
    );
    let plan = Plan {
        mode: args.mode,
        concurrency: args.concurrency.max(1),
        warmup,
        duration,
        rate,
    };
    let probe = Probe {
        pid: args.server_pid,
        aux_comm: args.aux_comm.clone(),
    };
    let result = runner::run(&args.target, &shared, &plan, &probe).await?;
    eprintln!(
        "{} {} {}: {:.0} ops/s, P50 {:.2} ms, P95 {:.2} ms, P99 {:.2} ms, max {:.2} ms, {} errors{}{}",
        result.target,
        result.scenario,
        result.mode,
        result.throughput,
        result.latency.p50_ms,
        result.latency.p95_ms,
        result.latency.p99_ms,
        result.latency.max_ms,
        result.errors,
        result
            .cpu_s_per_1k_ops
            .map(|c| format!(", {c:.3} CPU s/1k ops"))
            .unwrap_or_default(),
        result
            .rss_peak_mib
            .map(|m| format!(", peak RSS {m:.1} MiB"))
            .unwrap_or_default(),
    );
    for sample in &result.error_samples {
        eprintln!("  error: {sample}");
    }
    let errors = result.errors;
    if let Some(out) = &args.out {
        report::append(out, &Record::Scenario(Box::new(result)))?;
    }
    if args.fail_on_error && errors > 0 {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait_ready(args: &WaitReadyArgs) -> anyhow::Result<()> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs_f64(args.timeout.clamp(0.1, 600.0));
    for url in &args.url {
        let parsed = url::Url::parse(url)?;
        let origin = http::Origin::parse(url)?;
        let path = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        loop {
            if let Some(pid) = args.pid
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                bail!("process {pid} exited before {url} was ready");
            }
            let mut conn = http::Conn::new(origin.clone());
            let ready = tokio::time::timeout(
                Duration::from_secs(2),
                conn.send(hyper::Method::GET, &path, &[], bytes::Bytes::new()),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .is_some_and(|r| r.status.is_success());
            if ready {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{url} not ready after {}s", args.timeout);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
