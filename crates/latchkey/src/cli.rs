//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use latchkey_core::config::DatabaseUrl;
use latchkey_core::secret::SecretString;

/// The admin API's base URL, for the `clients` commands.
pub const ADMIN_URL_ENV: &str = "LATCHKEY_ADMIN_URL";
/// The new user's password, for `users create`.
pub const USER_PASSWORD_ENV: &str = "LATCHKEY_USER_PASSWORD";
/// Environment variables that fill a command's own flags rather than settings: the
/// configuration loader leaves them alone, whichever command runs.
pub const FLAG_ENV: [&str; 2] = [ADMIN_URL_ENV, USER_PASSWORD_ENV];

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "A self-managed OAuth 2.1 and OpenID Connect authorization server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Settings that can be given on the command line; they override the file and the environment.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// A TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory (default ./latchkey-data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The database: sqlite://PATH or postgres://… (default: SQLite in the data directory).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<DatabaseUrl>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply or inspect database migrations.
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print a commented default configuration file, or check one.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Manage OAuth clients through the admin API of a running server.
    Clients {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// Delete expired codes, tokens, flows and sessions now (the server also does it in the background).
    Janitor {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print what would be deleted, by kind, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a consistent snapshot of the configured database to a file (docs/operations.md).
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        /// The snapshot file to write (JSON Lines; refused if it exists).
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Load a snapshot into the configured database, which must be empty.
    Import {
        #[command(flatten)]
        config: ConfigArgs,
        /// The snapshot file written by `latchkey export`.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
    },
    /// Bring what changed on the source database (blue) since the import, or the last sync,
    /// into the configured one (green).
    Sync {
        #[command(flatten)]
        config: ConfigArgs,
        /// The source database: the one the imported snapshot was taken from.
        #[arg(long = "from", value_name = "URL")]
        from: DatabaseUrl,
    },
    /// Read the revocation log (in the configured database).
    Revocations {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: RevocationsAction,
    },
    /// Create platform users (in the configured database).
    Users {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Create accounts and manage their members (in the configured database).
    Accounts {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: AccountsAction,
    },
    /// List or rotate signing keys.
    Keys {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Public listener HOST:PORT (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub public_addr: Option<String>,
    /// Admin listener HOST:PORT (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub admin_addr: Option<String>,
    /// The issuer URL.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Apply pending migrations before starting (PostgreSQL; SQLite always migrates).
    #[arg(long)]
    pub migrate: bool,
    /// Seed a demo world (accounts, users, apps, a scope catalog) and print where to start.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum RevocationsAction {
    /// Print the entries after a cursor, oldest first, one JSON object a line.
    List {
        /// The last cursor already seen (0: from the start of the log).
        #[arg(long, default_value = "0", value_name = "CURSOR")]
        after: String,
        /// The most entries to print.
        #[arg(long, value_name = "N")]
        limit: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Show which migrations are applied and which are pending.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print a commented configuration file with every default.
    Generate,
    /// Check a configuration (file, environment) and print the result.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Where the admin API is.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The admin API's base URL.
    #[arg(
        long,
        global = true,
        env = ADMIN_URL_ENV,
        default_value = "http://127.0.0.1:4445",
        value_name = "URL"
    )]
    pub endpoint: String,
    /// The admin bearer token, if the server requires one.
    #[arg(
        long,
        global = true,
        env = "LATCHKEY_ADMIN__TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<SecretString>,
}

#[derive(Debug, Subcommand)]
pub enum ClientsAction {
    /// Create a client; prints it as JSON, with its secret (shown only this once).
    Create(CreateClientArgs),
    /// List clients as JSON.
    List {
        #[arg(long)]
        page_size: Option<u32>,
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Print one client as JSON.
    Get { id: String },
    /// Delete a client and everything issued to it.
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct CreateClientArgs {
    /// A JSON file with the client in Hydra's shape ("-" for standard input); flags override it.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// May be given several times.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// May be given several times: authorization_code, refresh_token, client_credentials.
    #[arg(long = "grant-type", value_name = "GRANT")]
    pub grant_types: Vec<String>,
    /// Space-separated scopes.
    #[arg(long)]
    pub scope: Option<String>,
    /// May be given several times.
    #[arg(long = "audience", value_name = "AUDIENCE")]
    pub audience: Vec<String>,
    /// client_secret_basic (default), client_secret_post, private_key_jwt or none.
    #[arg(long = "token-endpoint-auth-method", value_name = "METHOD")]
    pub auth_method: Option<String>,
    /// opaque or jwt.
    #[arg(long = "access-token-strategy", value_name = "STRATEGY")]
    pub access_token_strategy: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// List the signing keys.
    List,
    /// Add a new active key (per algorithm, or all) and retire the old ones with overlap.
    Rotate {
        /// RS256, ES256 or EdDSA; may be given several times. Default: every active algorithm.
        #[arg(long = "alg", value_name = "ALG")]
        algs: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Create a user who logs in with an email and a password.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// The password; read from standard input when absent (one line).
        #[arg(long, env = USER_PASSWORD_ENV, hide_env_values = true)]
        password: Option<SecretString>,
        /// The user operates the platform (the operator console).
        #[arg(long)]
        operator: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountsAction {
    /// Create an account.
    Create {
        #[arg(long)]
        name: String,
        /// A readable id (letters, digits, dashes); generated when absent.
        #[arg(long)]
        id: Option<String>,
        /// `platform` (its apps are first-party) or `customer`.
        #[arg(long, default_value = "customer")]
        kind: String,
    },
    /// Add a user to an account, or change their role.
    AddMember {
        /// The account id.
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: String,
        /// owner, admin, developer or member.
        #[arg(long, default_value = "member")]
        role: String,
    },
}
