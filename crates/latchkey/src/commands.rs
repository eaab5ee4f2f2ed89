//! The commands other than `serve`.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use latchkey_core::audit::Actor;
use latchkey_core::config::Config;
use latchkey_core::keys::SigningAlg;
use latchkey_store::MigrationState;
use latchkey_types::client::OAuth2Client;
use latchkey_types::routes::admin;

use crate::cli::{
    AccountsAction, AdminArgs, ClientsAction, CreateClientArgs, KeysAction, MigrateAction,
    RevocationsAction, UsersAction,
};
use crate::serve::{ensure_data_dir, key_overlap, open_engine, open_store, platform};

pub async fn migrate(config: Config, action: MigrateAction) -> anyhow::Result<()> {
    let data_dir = config.data_dir();
    ensure_data_dir(&data_dir)?;
    let store = open_store(&config, &data_dir).await?;
    match action {
        MigrateAction::Up => {
            store
                .migrate()
                .await
                .context("cannot apply the migrations")?;
            println!("All migrations are applied.");
        }
        MigrateAction::Status => {
            let status = store
                .migration_status()
                .await
                .context("cannot read the migration status")?;
            println!("{:<8} {:<10} DESCRIPTION", "VERSION", "STATE");
            for m in &status {
                let state = match m.state {
                    MigrationState::Applied => "applied",
                    MigrationState::Pending => "pending",
                    MigrationState::Failed => "FAILED",
                };
                println!("{:<8} {:<10} {}", m.version, state, m.description);
            }
            let pending = status
                .iter()
                .filter(|m| m.state != MigrationState::Applied)
                .count();
            println!("{pending} pending");
        }
    }
    store.close().await;
    Ok(())
}

pub async fn keys(config: Config, action: KeysAction) -> anyhow::Result<()> {
    let overlap = key_overlap(&config);
    let instance = open_engine(config, false).await?;
    match action {
        KeysAction::List => {}
        KeysAction::Rotate { algs } => {
            let algs = algs
                .iter()
                .map(|a| {
                    SigningAlg::parse(a).with_context(|| {
                        format!("unknown algorithm {a:?}; use RS256, ES256 or EdDSA")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let new = instance.keys.rotate(&algs, overlap, &Actor::cli()).await?;
            println!("New active keys: {}", new.join(", "));
            println!(
                "Running servers pick them up within 30 seconds; retired keys stay published for {overlap}s."
            );
        }
    }
    println!(
        "{:<28} {:<6} {:<8} {:<20} EXPIRES",
        "KID", "ALG", "STATE", "CREATED"
    );
    for k in instance.keys.list().await? {
        println!(
            "{:<28} {:<6} {:<8} {:<20} {}",
            k.kid,
            k.alg,
            k.state,
            latchkey_core::clock::rfc3339(k.created_at),
            k.expires_at
                .map(latchkey_core::clock::rfc3339)
                .unwrap_or_default()
        );
    }
    instance.store.close().await;
    Ok(())
}

fn client_body(args: &CreateClientArgs) -> anyhow::Result<OAuth2Client> {
    let mut body: OAuth2Client = match &args.file {
        None => OAuth2Client::default(),
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
            }
            serde_json::from_str(&text).context("the client file is not a valid client")?
        }
    };
    let set = |v: &Option<String>, f: &mut Option<String>| {
        if v.is_some() {
            f.clone_from(v);
        }
    };
    set(&args.id, &mut body.client_id);
    set(&args.name, &mut body.client_name);
    set(&args.scope, &mut body.scope);
    set(&args.auth_method, &mut body.token_endpoint_auth_method);
    set(&args.access_token_strategy, &mut body.access_token_strategy);
    for (list, field) in [
        (&args.redirect_uris, &mut body.redirect_uris),
        (&args.grant_types, &mut body.grant_types),
        (&args.audience, &mut body.audience),
    ] {
        if !list.is_empty() {
            *field = Some(list.clone());
        }
    }
    Ok(body)
}

/// Client management goes through the admin API, so that there is one code path.
pub async fn clients(args: AdminArgs, action: ClientsAction) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = args.endpoint.trim_end_matches('/');
    let auth = |r: reqwest::RequestBuilder| match &args.admin_token {
        Some(t) => r.bearer_auth(t.expose()),
        None => r,
    };
    let one = |id: &str| format!("{base}{}", admin::CLIENT.replace("{id}", &urlencode(id)));
    let req = match &action {
        ClientsAction::Create(c) => {
            auth(http.post(format!("{base}{}", admin::CLIENTS))).json(&client_body(c)?)
        }
        ClientsAction::List {
            page_size,
            page_token,
        } => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(s) = page_size {
                q.push(("page_size", s.to_string()));
            }
            if let Some(t) = page_token {
                q.push(("page_token", t.clone()));
            }
            auth(http.get(format!("{base}{}", admin::CLIENTS))).query(&q)
        }
        ClientsAction::Get { id } => auth(http.get(one(id))),
        ClientsAction::Delete { id } => auth(http.delete(one(id))),
    };
    let res = req
        .send()
        .await
        .with_context(|| format!("cannot reach the admin API at {base}"))?;
    let status = res.status();
    let link = res
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.text().await?;
    if !status.is_success() {
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("error_description")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or(text);
        bail!("the admin API answered {status}: {detail}");
    }
    if let ClientsAction::Delete { id } = action {
        println!("Deleted client {id}.");
        return Ok(());
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).context("the admin API answered non-JSON")?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    if let Some(link) = link {
        eprintln!("More: {link}");
    }
    Ok(())
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The janitor's policy under `config`.
pub fn janitor_policy(config: &Config) -> latchkey_core::janitor::JanitorPolicy {
    latchkey_core::janitor::JanitorPolicy {
        batch: config.janitor.batch_size,
        refresh_window: config.oauth2.refresh_token.response_window(),
        revocation_retention: config.revocation_log.retention.as_secs(),
        registration_ttl: config
            .oauth2
            .dynamic_client_registration
            .unused_ttl
            .as_secs(),
    }
}

pub async fn janitor(config: Config, dry_run: bool) -> anyhow::Result<()> {
    use latchkey_core::janitor::{self, DeadKind};
    let policy = janitor_policy(&config);
    let instance = open_engine(config, false).await?;
    let report = if dry_run {
        janitor::dry_run(&instance.deps, &policy).await?
    } else {
        janitor::run_with(&instance.deps, &policy).await?
    };
    println!(
        "{} {} dead rows{}",
        if dry_run { "Would delete" } else { "Deleted" },
        report.total(),
        if dry_run {
            " (dry run: nothing deleted)"
        } else {
            ""
        }
    );
    for kind in DeadKind::ALL {
        println!("  {:<18} {}", kind.as_str(), report.of(kind));
    }
    instance.store.close().await;
    Ok(())
}

pub async fn export(config: Config, output: &std::path::Path) -> anyhow::Result<()> {
    use latchkey_core::entropy::EntropyExt as _;
    let instance = open_engine(config, false).await?;
    let now = instance.deps.clock.now();
    let id = instance
        .store
        .identity(&instance.deps.entropy.token(), now)
        .await?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let (header, rows) = instance.store.export(&mut out, &id, now).await?;
    drop(out);
    println!(
        "Exported {rows} rows of database {} ({}, schema {}) to {}; revocation cursor {}.",
        header.source_id,
        header.source_engine,
        header.schema_version,
        output.display(),
        header.revocation_cursor
    );
    instance.store.close().await;
    Ok(())
}

pub async fn import(config: Config, input: &std::path::Path) -> anyhow::Result<()> {
    use latchkey_core::clock::Clock as _;
    let data_dir = config.data_dir();
    ensure_data_dir(&data_dir)?;
    let store = open_store(&config, &data_dir).await?;
    crate::serve::prepare_schema(&store, false).await?;
    let open = || std::fs::File::open(input).map(std::io::BufReader::new);
    let now = latchkey_core::clock::SystemClock.now();
    let result = store.import(open, now).await;
    store.close().await;
    let (header, rows) = result.context("the import was refused; nothing was written")?;
    println!(
        "Imported {rows} rows from database {} ({}); sync from it with `latchkey sync` (revocation cursor {}).",
        header.source_id, header.source_engine, header.revocation_cursor
    );
    Ok(())
}

pub async fn sync(config: Config, from: &latchkey_core::config::DatabaseUrl) -> anyhow::Result<()> {
    let data_dir = config.data_dir();
    ensure_data_dir(&data_dir)?;
    let green = open_store(&config, &data_dir).await?;
    crate::serve::prepare_schema(&green, false).await?;
    let blue =
        latchkey_store::SqlStore::connect(from.expose(), &latchkey_store::StoreOptions::default())
            .await
            .context("cannot open the source database")?;
    let result = green.sync_from(&blue).await;
    blue.close().await;
    green.close().await;
    let report = result.context("the sync was refused or failed; nothing was written")?;
    println!(
        "Synced {} rows and {} revocation log entries; source revocation cursor {}.",
        report.rows, report.log_entries, report.cursor
    );
    Ok(())
}

pub async fn revocations(config: Config, action: RevocationsAction) -> anyhow::Result<()> {
    use latchkey_core::revocations::{PageError, page, parse_cursor, parse_limit};
    let RevocationsAction::List { after, limit } = action;
    let refuse = |e: PageError| anyhow::anyhow!("{e}");
    let after = parse_cursor(&after).map_err(refuse)?;
    let limit = parse_limit(limit.as_deref()).map_err(refuse)?;
    let instance = open_engine(config, false).await?;
    let (entries, last) = page(instance.deps.store.as_ref(), after, limit)
        .await
        .map_err(refuse)?;
    for e in &entries {
        println!("{}", serde_json::to_string(e)?);
    }
    let next = entries.last().map_or(after, |e| e.cursor);
    eprintln!(
        "{} entries; next --after {next}; last cursor {last}",
        entries.len()
    );
    instance.store.close().await;
    Ok(())
}

pub async fn users(config: Config, action: UsersAction) -> anyhow::Result<()> {
    let instance = open_engine(config, false).await?;
    let platform = platform(&instance, "http://127.0.0.1", false)?;
    let UsersAction::Create {
        email,
        name,
        password,
        operator,
    } = action;
    {
        let password = if let Some(p) = password {
            p
        } else {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            latchkey_core::secret::SecretString::new(line.trim_end_matches(['\r', '\n']))
        };
        let user = platform
            .create_user(&email, &name, password, operator, &Actor::cli())
            .await?;
        println!("Created user {} ({}).", user.email, user.id);
    }
    instance.store.close().await;
    Ok(())
}

/// `latchkey accounts …`.
pub async fn accounts(config: Config, action: AccountsAction) -> anyhow::Result<()> {
    use latchkey_core::platform::model::{AccountKind, Role};
    let instance = open_engine(config, false).await?;
    let platform = platform(&instance, "http://127.0.0.1", false)?;
    match action {
        AccountsAction::Create { name, id, kind } => {
            let kind = AccountKind::parse(&kind)
                .with_context(|| format!("unknown kind {kind:?}; use platform or customer"))?;
            let a = platform
                .create_account(id.as_deref(), &name, kind, &Actor::cli())
                .await?;
            println!("Created account {} ({}).", a.name, a.id);
        }
        AccountsAction::AddMember {
            account,
            email,
            role,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}; use owner, admin, developer or member")
            })?;
            let (a, u) = platform
                .add_member(&account, &email, role, &Actor::cli())
                .await?;
            println!("{} is now {} of {}.", u.email, role.as_str(), a.name);
        }
    }
    instance.store.close().await;
    Ok(())
}
