//! `latchkey serve`: open the data directory and the database, make sure keys and secrets exist,
//! bind both listeners, serve until SIGTERM or Ctrl-C, then drain.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use latchkey_core::clock::SystemClock;
use latchkey_core::config::{Config, DatabaseUrl};
use latchkey_core::crypto::SystemSecrets;
use latchkey_core::deps::Deps;
use latchkey_core::entropy::{EntropyExt as _, SystemEntropy};
use latchkey_core::keys::{KeyService, Keys};
use latchkey_core::oauth::{Engine, EngineSettings};
use latchkey_core::platform::catalog::{Catalog, demo_scopes};
use latchkey_core::platform::{Platform, PlatformSettings};
use latchkey_core::secret::{SecretString, redact_url};
use latchkey_core::throttle::Throttle;
use latchkey_http::platform_io::{DnsResolver, TokioBlocking};
use latchkey_http::{AppState, HttpSettings};
use latchkey_store::{Backend, MigrationState, SqlStore, StoreOptions, sqlite_url};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a replica rereads the signing keys (another replica or the CLI may rotate them).
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
/// How often the back-channel logout outbox is checked for retries (a logout wakes it at once).
const BACKCHANNEL_INTERVAL: Duration = Duration::from_secs(5);

const SECRET_FILE: &str = "system-secret";
const SQLITE_FILE: &str = "latchkey.db";

/// Creates the data directory (mode 0700) if it does not exist.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// The configured system secrets, or the one kept in the data directory (generated, mode 0600,
/// on first start).
pub fn system_secrets(config: &Config, data_dir: &Path) -> anyhow::Result<Vec<SecretString>> {
    if !config.secrets.system.is_empty() {
        return Ok(config.secrets.system.clone());
    }
    let path = data_dir.join(SECRET_FILE);
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let secret = secret.trim();
        if secret.len() < latchkey_core::config::MIN_SECRET_LEN {
            bail!(
                "{} is shorter than {} characters",
                path.display(),
                latchkey_core::config::MIN_SECRET_LEN
            );
        }
        return Ok(vec![SecretString::new(secret)]);
    }
    let secret = format!(
        "{}{}",
        SystemEntropy::new().token(),
        SystemEntropy::new().token()
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated the system secret");
    Ok(vec![SecretString::new(secret)])
}

/// The database URL: configured, or SQLite in the data directory.
pub fn database_url(config: &Config, data_dir: &Path) -> String {
    config.database.url.as_ref().map_or_else(
        || sqlite_url(&data_dir.join(SQLITE_FILE)),
        |u| u.expose().to_owned(),
    )
}

/// Opens the store.
pub async fn open_store(config: &Config, data_dir: &Path) -> anyhow::Result<SqlStore> {
    let url = database_url(config, data_dir);
    let options = StoreOptions {
        max_connections: config.database.max_connections,
        ..StoreOptions::default()
    };
    SqlStore::connect(&url, &options)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&url)))
}

/// Applies migrations where that is the rule (SQLite always, PostgreSQL when asked) and refuses
/// to go on with a schema that is not up to date.
pub async fn prepare_schema(store: &SqlStore, migrate: bool) -> anyhow::Result<()> {
    if store.backend() == Backend::Sqlite || migrate {
        store
            .migrate()
            .await
            .context("cannot apply the migrations")?;
        return Ok(());
    }
    let status = store
        .migration_status()
        .await
        .context("cannot read the migration status")?;
    if let Some(failed) = status.iter().find(|m| m.state == MigrationState::Failed) {
        bail!(
            "migration {} ({}) failed half-way; repair the database before starting",
            failed.version,
            failed.description
        );
    }
    let pending: Vec<String> = status
        .iter()
        .filter(|m| m.state == MigrationState::Pending)
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if !pending.is_empty() {
        bail!(
            "the database has {} pending migration(s) ({}); run `latchkey migrate up` or start with `serve --migrate`",
            pending.len(),
            pending.join(", ")
        );
    }
    Ok(())
}

/// The longest any token signed now stays valid: how long a retired key stays published.
pub fn key_overlap(config: &Config) -> i64 {
    config
        .ttl
        .access_token
        .as_secs()
        .max(config.ttl.id_token.as_secs())
        + 300
}

/// Everything a command needs to run the engine against the configured storage.
pub struct Instance {
    pub config: Config,
    pub data_dir: PathBuf,
    pub store: SqlStore,
    pub deps: Deps,
    pub keys: KeyService,
}

/// Opens the data directory, the database (migrating per the rules) and the key ring.
pub async fn open_engine(config: Config, migrate: bool) -> anyhow::Result<Instance> {
    let data_dir = config.data_dir();
    ensure_data_dir(&data_dir)?;
    let secrets = system_secrets(&config, &data_dir)?;
    let store = open_store(&config, &data_dir).await?;
    prepare_schema(&store, migrate).await?;
    let secret_bytes: Vec<&[u8]> = secrets.iter().map(|s| s.expose().as_bytes()).collect();
    let deps = Deps {
        store: Arc::new(store.clone()),
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SystemEntropy::new()),
        secrets: Arc::new(SystemSecrets::new(&secret_bytes)),
    };
    let keys = KeyService::new(deps.clone(), Arc::new(Keys::default()))
        .requiring(config.oauth2.access_token_signing_alg);
    let generated = keys
        .ensure()
        .await
        .context("cannot load or generate the signing keys")?;
    for kid in generated {
        tracing::info!(kid, "generated a signing key");
    }
    Ok(Instance {
        config,
        data_dir,
        store,
        deps,
        keys,
    })
}

/// The platform's services: the catalog (the demo's when `demo` and none is configured), DNS
/// for domain verification, and the blocking pool for password hashing.
pub fn platform(instance: &Instance, issuer: &str, demo: bool) -> anyhow::Result<Platform> {
    let config = &instance.config;
    let catalog = if demo && config.catalog.scopes.is_empty() {
        Catalog::with_scopes(&demo_scopes())
    } else {
        Catalog::from_config(&config.catalog)
    }
    .map_err(|e| anyhow::anyhow!("invalid catalog: {e}"))?;
    let dns_server = match &config.platform.dns_resolver {
        Some(a) => Some(a.parse().context("platform.dns_resolver")?),
        None => None,
    };
    let dns = DnsResolver::new(dns_server)
        .map_err(|e| anyhow::anyhow!("cannot set up the DNS resolver: {e}"))?;
    let engine = Engine::new(
        instance.deps.clone(),
        EngineSettings::from_config(config, issuer),
        instance.keys.keys().clone(),
    );
    Ok(Platform::new(
        engine,
        catalog,
        Arc::new(TokioBlocking),
        Arc::new(dns),
        PlatformSettings::from_config(config),
    ))
}

/// The demo users' password: generated once and kept in the data directory, so that a restart
/// prints the same one.
fn demo_password(data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join("demo-password");
    if let Ok(p) = std::fs::read_to_string(&path) {
        return Ok(SecretString::new(p.trim()));
    }
    let password: String = SystemEntropy::new().token().chars().take(16).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(&path)
        .and_then(|mut f| f.write_all(password.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(SecretString::new(password))
}

/// Runs `work` every `interval` until `stop` turns true: at once and then every interval when
/// `now`, else first after one interval. A run that overruns delays the next, never overlaps it.
fn every<F, Fut>(interval: Duration, now: bool, mut stop: watch::Receiver<bool>, mut work: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + if now { Duration::ZERO } else { interval };
        let mut tick = tokio::time::interval_at(start, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => work().await,
                _ = stop.changed() => break,
            }
        }
    });
}

async fn bind(addr: &str, what: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// A URL a person can open for a bound address (the unspecified address becomes loopback).
fn url_for(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        if addr.is_ipv6() {
            "[::1]".to_owned()
        } else {
            "127.0.0.1".to_owned()
        }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{ip}:{}", addr.port())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The resource the demo declares when the configuration declares none: an MCP server's URL, on
/// the port the MCP SDK's examples use.
pub const DEMO_MCP_RESOURCE: &str = "http://127.0.0.1:3000/mcp";

/// The demo's configuration: an MCP-shaped resource server, and dynamic registration open, so
/// that an MCP client can connect without any set-up.
fn demo_config(mut config: Config) -> Config {
    if config.resources.is_empty() {
        config
            .resources
            .push(latchkey_core::config::ResourceConfig {
                uri: DEMO_MCP_RESOURCE.to_owned(),
                name: "Demo MCP server (DNS tools)".to_owned(),
                scopes: vec!["dns.read".to_owned(), "dns.write".to_owned()],
            });
        config.oauth2.dynamic_client_registration.enabled = true;
    }
    config
}

pub async fn run(config: Config, migrate: bool, demo: bool) -> anyhow::Result<()> {
    let config = if demo { demo_config(config) } else { config };
    let cimd = &config.oauth2.client_id_metadata_documents;
    if cimd.enabled && cimd.allow_loopback {
        tracing::warn!(
            "oauth2.client_id_metadata_documents.allow_loopback is on: client metadata documents \
             may be fetched from this machine's loopback addresses (development only)"
        );
    }
    let (public_listener, public_addr) = bind(&config.public.addr, "public").await?;
    let (admin_listener, admin_addr) = bind(&config.admin.addr, "admin").await?;
    let issuer = match &config.issuer {
        Some(i) => i.trim_end_matches('/').to_owned(),
        None => url_for(public_addr),
    };
    let instance = open_engine(config, migrate).await?;
    let client_ip_header = match &instance.config.rate_limits.client_ip_header {
        Some(h) => Some(
            axum::http::HeaderName::try_from(h.as_str()).context("rate_limits.client_ip_header")?,
        ),
        None => None,
    };
    let settings = HttpSettings {
        admin_token: instance.config.admin.token.clone(),
        client_ip_header,
    };
    let oauth = Engine::new(
        instance.deps.clone(),
        EngineSettings::from_config(&instance.config, &issuer),
        instance.keys.keys().clone(),
    )
    .with_throttle(Arc::new(Throttle::new(&instance.config.rate_limits)));
    if let Some(fetcher) = latchkey_http::cimd::CimdFetcher::from_config(&instance.config)
        .map_err(|e| anyhow::anyhow!("cannot set up the client metadata document fetcher: {e}"))?
    {
        oauth.install_document_fetcher(Arc::new(fetcher));
    }
    let platform = platform(&instance, &issuer, demo)?;
    let demo_world = if demo {
        let password = demo_password(&instance.data_dir)?;
        let world = platform
            .seed_demo(&password)
            .await
            .context("cannot seed the demo")?;
        Some((world, password))
    } else {
        None
    };
    let state = AppState::new(oauth, instance.keys.clone(), settings).with_platform(platform);
    let backchannel_engine = state.engine.clone();
    let public = latchkey_http::public_router(state.clone());
    let admin = latchkey_http::admin_router(state);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let public_server = axum::serve(
        public_listener,
        public.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));
    let admin_server = axum::serve(
        admin_listener,
        admin.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));

    let keys = instance.keys.clone();
    every(KEY_RELOAD_INTERVAL, false, stop_rx.clone(), move || {
        let keys = keys.clone();
        async move {
            if let Err(e) = keys.reload().await {
                tracing::warn!(error = %e, "cannot reload the signing keys");
            }
        }
    });
    every(
        latchkey_http::metrics::UPKEEP_INTERVAL,
        false,
        stop_rx.clone(),
        || async {
            latchkey_http::metrics::run_upkeep();
        },
    );

    // Back-channel logout tokens are sent outside the browsers' requests, with retries.
    let sender = latchkey_http::backchannel::HttpSender::new()
        .map_err(|e| anyhow::anyhow!("cannot set up the back-channel logout sender: {e}"))?;
    tokio::spawn(latchkey_http::backchannel::run(
        backchannel_engine,
        Arc::new(sender),
        BACKCHANNEL_INTERVAL,
        stopped(stop_rx.clone()),
    ));

    if instance.config.janitor.enabled {
        let deps = instance.deps.clone();
        let interval =
            Duration::from_secs(instance.config.janitor.interval.as_secs().unsigned_abs());
        let policy = crate::commands::janitor_policy(&instance.config);
        every(interval, true, stop_rx.clone(), move || {
            let deps = deps.clone();
            async move {
                match latchkey_core::janitor::run_with(&deps, &policy).await {
                    Ok(report) if report.total() > 0 => {
                        tracing::info!(?report, "janitor deleted expired rows");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "janitor run failed"),
                }
            }
        });
    }

    let database = match instance.store.backend() {
        Backend::Sqlite => format!("sqlite ({})", instance.data_dir.join(SQLITE_FILE).display()),
        Backend::Postgres => format!(
            "postgres ({})",
            instance
                .config
                .database
                .url
                .as_ref()
                .map(DatabaseUrl::redacted)
                .unwrap_or_default()
        ),
    };
    // The only output on stdout: what an operator (or a test) needs to reach the server.
    let mut out = std::io::stdout().lock();
    writeln!(out, "Latchkey {} is ready", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  issuer:    {issuer}")?;
    writeln!(out, "  public:    {}", url_for(public_addr))?;
    writeln!(out, "  admin:     {}", url_for(admin_addr))?;
    writeln!(out, "  database:  {database}")?;
    writeln!(out, "  data dir:  {}", instance.data_dir.display())?;
    if let Some((world, password)) = &demo_world {
        writeln!(out)?;
        writeln!(out, "Demo: sign in at {issuer}/ui/login")?;
        writeln!(out, "  password for every demo user: {}", password.expose())?;
        for (email, what) in &world.users {
            writeln!(out, "  user {email:<24} {what}")?;
        }
        for (name, id, what) in &world.apps {
            writeln!(out, "  app  {name:<24} {id}  {what}")?;
        }
        if let Some((_, id, _)) = world.apps.first() {
            writeln!(
                out,
                "  try: {issuer}/oauth2/auth?client_id={id}&response_type=code&redirect_uri=http://127.0.0.1:8976/callback&scope=openid%20offline_access%20account.read%20dns.read%20dns.write&state=demo-state-1234&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
            )?;
        }
        writeln!(
            out,
            "  then: {issuer}/ui/apps (connected apps), {issuer}/ui/developer, {issuer}/ui/admin"
        )?;
        if instance
            .config
            .resources
            .iter()
            .any(|r| r.uri == DEMO_MCP_RESOURCE)
        {
            writeln!(out)?;
            writeln!(
                out,
                "MCP: the resource {DEMO_MCP_RESOURCE} (dns.read, dns.write) is declared, and registration is open"
            )?;
            writeln!(
                out,
                "  serve your MCP server there, with protected resource metadata naming this issuer:"
            )?;
            writeln!(
                out,
                "    {{\"resource\": \"{DEMO_MCP_RESOURCE}\", \"authorization_servers\": [\"{issuer}\"], \"scopes_supported\": [\"dns.read\"]}}"
            )?;
            writeln!(
                out,
                "  then point an MCP client at {DEMO_MCP_RESOURCE}: it registers itself (or sends its client ID metadata document URL) and signs in here"
            )?;
        }
    }
    out.flush()?;
    drop(out);
    tracing::info!(%public_addr, %admin_addr, issuer, "listening");

    let servers = async {
        let (a, b) = tokio::join!(public_server.into_future(), admin_server.into_future());
        a.and(b)
    };
    tokio::pin!(servers);
    tokio::select! {
        res = &mut servers => res.context("a listener failed")?,
        () = shutdown_signal() => {
            tracing::info!("shutting down: draining in-flight requests");
            let _ = stop_tx.send(true);
            if tokio::time::timeout(DRAIN_TIMEOUT, &mut servers).await.is_err() {
                tracing::warn!("in-flight requests did not finish in time");
            }
        }
    }
    instance.store.close().await;
    tracing::info!("stopped");
    Ok(())
}
