//! The `latchkey` binary: command line, configuration, telemetry and wiring.

mod cli;
mod commands;
mod config;
mod serve;
mod telemetry;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command, ConfigAction};
use crate::config::Overrides;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let mut overrides = Overrides::from(&args.config);
            overrides.set("public.addr", args.public_addr.clone());
            overrides.set("admin.addr", args.admin_addr.clone());
            overrides.set("issuer", args.issuer.clone());
            let config = config::load(args.config.config.as_deref(), &overrides)?;
            telemetry::init(&config.log);
            serve::run(config, args.migrate, args.demo).await
        }
        Command::Migrate { config, action } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::migrate(cfg, action).await
        }
        Command::Config {
            action: ConfigAction::Generate,
        } => {
            print!("{}", config::TEMPLATE);
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check { config },
        } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            // Secrets serialize redacted, and the database URL without its password.
            println!(
                "The configuration is valid:\n{}",
                serde_json::to_string_pretty(&cfg)?
            );
            Ok(())
        }
        Command::Clients { admin, action } => commands::clients(admin, action).await,
        Command::Janitor { config, dry_run } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::janitor(cfg, dry_run).await
        }
        Command::Export { config, output } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::export(cfg, &output).await
        }
        Command::Import { config, input } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::import(cfg, &input).await
        }
        Command::Sync { config, from } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::sync(cfg, &from).await
        }
        Command::Revocations { config, action } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::revocations(cfg, action).await
        }
        Command::Users { config, action } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::users(cfg, action).await
        }
        Command::Accounts { config, action } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::accounts(cfg, action).await
        }
        Command::Keys { config, action } => {
            let cfg = config::load(config.config.as_deref(), &Overrides::from(&config))?;
            telemetry::init(&cfg.log);
            commands::keys(cfg, action).await
        }
    }
}
