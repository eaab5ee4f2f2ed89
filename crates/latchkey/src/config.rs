//! Loading the configuration: defaults, then the TOML file, then `LATCHKEY_*` environment
//! variables, then command-line flags. Unknown keys and invalid values stop start-up with an
//! error that names the key.

use std::path::Path;

use anyhow::{Context as _, bail};
use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use latchkey_core::config::Config;

use crate::cli::{ConfigArgs, FLAG_ENV};

/// Environment variables with this prefix belong to the test harness, not to the server.
const TEST_ENV_PREFIX: &str = "LATCHKEY_TEST_";
/// The one list-valued variable, written comma-separated.
const SECRETS_ENV: &str = "LATCHKEY_SECRETS__SYSTEM";

/// Whether the `LATCHKEY_*` variable `name` is read as a setting by the `Env` provider: not the
/// list-valued one (read apart), the test harness's, or one of a command's own flags.
fn is_env_setting(name: &str) -> bool {
    name != SECRETS_ENV && !name.starts_with(TEST_ENV_PREFIX) && !FLAG_ENV.contains(&name)
}

/// Flag overrides, as `(key, value)` pairs in the file's key space.
#[derive(Debug, Default)]
pub struct Overrides(Vec<(&'static str, String)>);

impl Overrides {
    pub fn set(&mut self, key: &'static str, value: Option<impl Into<String>>) {
        if let Some(v) = value {
            self.0.push((key, v.into()));
        }
    }
}

impl From<&ConfigArgs> for Overrides {
    fn from(a: &ConfigArgs) -> Self {
        let mut o = Self::default();
        o.set(
            "data_dir",
            a.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        o.set(
            "database.url",
            a.database_url.as_ref().map(|u| u.expose().to_owned()),
        );
        o
    }
}

/// Loads and validates the configuration.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            bail!("the configuration file {} does not exist", path.display());
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(
        Env::prefixed("LATCHKEY_")
            .filter(|k| is_env_setting(&format!("LATCHKEY_{}", k.as_str().to_ascii_uppercase())))
            .split("__"),
    );
    if let Ok(list) = std::env::var(SECRETS_ENV) {
        let secrets: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        figment = figment.merge(Serialized::default("secrets.system", secrets));
    }
    for (key, value) in &overrides.0 {
        figment = figment.merge(Serialized::default(key, value));
    }
    let config: Config = figment.extract().map_err(|e| {
        // figment reports every error; the first names the key.
        let first = e
            .into_iter()
            .next()
            .map(|e| e.to_string())
            .unwrap_or_default();
        anyhow::anyhow!("invalid configuration: {first}")
    })?;
    config.validate().context("invalid configuration")?;
    Ok(config)
}

/// A commented configuration file with every default. A test keeps it equal to the defaults.
pub const TEMPLATE: &str = r#"# Latchkey configuration. Every setting below shows its default.
# Environment variables override this file: LATCHKEY_<SECTION>__<KEY>, e.g. LATCHKEY_DATABASE__URL;
# LATCHKEY_SECRETS__SYSTEM is a comma-separated list.

# The issuer URL. Default: http://127.0.0.1:<public port>. Must be https unless the host is loopback.
# issuer = "https://auth.example.com"

# Where the embedded database, the generated system secret and other state live.
data_dir = "latchkey-data"

[database]
# sqlite://PATH or postgres://USER@HOST/DB. Default: SQLite in the data directory.
# url = "postgres://postgres@127.0.0.1/latchkey"
max_connections = 16

[public]
# The public listener (OAuth endpoints, discovery, pages). Port 0 picks a free port.
addr = "0.0.0.0:4444"

[admin]
# The admin listener (Hydra-compatible admin API, metrics). Keep it off the internet.
addr = "127.0.0.1:4445"
# When set, every admin request needs "Authorization: Bearer <token>" (at least 16 characters).
# token = "change-me-change-me"

[secrets]
# The system secrets (at least 32 characters each): the first signs and encrypts, the others still
# verify. Empty: one is generated and kept in the data directory. Replicas must share them.
system = []

[ttl]
access_token = "1h"
refresh_token = "30days"
auth_code = "10m"
id_token = "1h"
login_consent_request = "30m"
authentication_session = "30days"

[urls]
# The login and consent provider (a Hydra-compatible login/consent app).
# login = "https://login.example.com/login"
# consent = "https://login.example.com/consent"
# logout = "https://login.example.com/logout"
# error = "https://login.example.com/error"
# post_logout_redirect = "https://example.com/"

[oauth2]
# opaque or jwt: the access token format for clients that do not choose one.
access_token_strategy = "opaque"
# What JWT access tokens are signed with: ES256, RS256 (Hydra's default) or EdDSA. The keys of all
# three are always published in the JWKS.
access_token_signing_alg = "ES256"

[oauth2.pkce]
enforced = true
enforced_for_public_clients = true

[oauth2.client_id_metadata_documents]
# A client_id that is an https URL with a path names the client's metadata document, fetched
# when the client starts an authorization (MCP clients identify themselves this way), with SSRF
# defences: public addresses only, no redirects, 5 KiB, 5 s, cached, rate-limited per host.
enabled = true
# Fetch documents from loopback addresses. Development and tests only: start-up warns when on.
allow_loopback = false
# Hosts whose clients may get sensitive scopes too (others get normal scopes only).
trusted_hosts = []

[oauth2.dynamic_client_registration]
# RFC 7591 registration at POST /oauth2/register, open to anyone (rate-limited per address).
# Registered clients are unverified and get normal scopes only.
enabled = false
# A registration that never got a grant or a token is deleted after this long.
unused_ttl = "1day"

[oauth2.refresh_token]
# A used refresh token presented again by the same client within the grace period gets the same
# response it got the first time (a retried request, two tabs, a CLI and its daemon), up to
# grace_reuse_count times. After that, or later, reuse revokes the whole token family.
# Concurrent requests with the same token are coalesced into one rotation in any case.
# The grace period is at most 5 minutes; 0s turns retries off.
grace_period = "30s"
grace_reuse_count = 3

[rate_limits]
# Requests per minute, per replica (in memory); 0 turns a limit off. Over a limit: 429 with
# Retry-After. Login brute-force limits hold across replicas (they live in the database).
enabled = true
# A header with the client's address, set by a trusted reverse proxy (its first entry is used).
# client_ip_header = "x-forwarded-for"
authorize_per_ip = 600
token_per_ip = 6000
token_per_client = 60000
revoke_per_ip = 1200
revoke_per_client = 6000
introspect_per_ip = 60000
userinfo_per_ip = 6000
# Bearer tokens the self-service API (/api/v1) refuses, per address: only failures count, and an
# address over the limit is refused before its token is looked up.
api_bad_token_per_ip = 60
# Dynamic client registrations (POST /oauth2/register, when enabled), per address.
register_per_ip = 10

[log]
# text or json.
format = "text"
level = "info"

[janitor]
# Delete expired codes, tokens, flows and sessions in the background.
enabled = true
interval = "5m"
batch_size = 1000

[revocation_log]
# How long revocation log entries are kept (GET /admin/revocations, latchkey sync).
retention = "30days"

[catalog]
# The permission catalog: the scopes apps may request, beside the built-in openid, profile, email,
# offline_access and apps.write. sensitivity: normal, sensitive (needs a verified app) or
# restricted (needs the operator's approval). min_role: the least account role that may lend the
# scope to an app (member, developer, admin, owner).
# [[catalog.scopes]]
# name = "dns.read"
# title = "See your DNS records"
# description = "List the DNS zones and records of your accounts."
# group = "DNS"
# sensitivity = "normal"
# min_role = "member"

[platform]
# The platform's name, on the built-in pages; app names may not imitate it.
name = "Latchkey"
# The DNS server (IP:PORT) asked for domain verification records. Default: the system's.
# dns_resolver = "127.0.0.1:53"
# How long a session of the platform's pages lasts without "remember me".
console_session = "12h"
# Whether an app needs a verified domain to go public. Set to false to let unverified apps go
# public: they are then capped in users and people outside their account are warned first.
public_apps_need_verified_domain = true
# How many distinct users a public app may have while its domain is not verified.
unverified_user_cap = 100

# The resource servers tokens may be issued for (RFC 8707): a client names one with `resource`,
# the token's audience is exactly the resources asked for, and its scope what they accept. The
# platform's own API (<issuer>/api/v1, accepting apps.write) is always one.
# [[resources]]
# uri = "https://mcp.example.com/mcp"   # absolute, no fragment
# name = "Example MCP server"           # shown on the consent screen
# scopes = ["dns.read", "dns.write"]    # catalog scopes this resource accepts
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_the_defaults() {
        let parsed: Config = Figment::from(Toml::string(TEMPLATE))
            .extract()
            .expect("template parses");
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(parsed).expect("json"),
            serde_json::to_value(defaults).expect("json"),
            "keep TEMPLATE in step with Config::default()"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "[database]\nurl = \"sqlite://x\"\nmax_conections = 3\n",
        )
        .expect("write");
        let e = load(Some(&bad), &Overrides::default())
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("max_conections"), "{e}");
        std::fs::write(&bad, "[ttl]\naccess_token = \"forever\"\n").expect("write");
        let e = load(Some(&bad), &Overrides::default())
            .expect_err("bad duration")
            .to_string();
        assert!(e.contains("access_token") && e.contains("forever"), "{e}");
        std::fs::write(&bad, "issuer = \"http://example.com\"\n").expect("write");
        let e = format!(
            "{:#}",
            load(Some(&bad), &Overrides::default()).expect_err("http issuer")
        );
        assert!(e.contains("`issuer`"), "{e}");
        let e = load(
            Some(&dir.path().join("missing.toml")),
            &Overrides::default(),
        )
        .expect_err("missing")
        .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    /// Whether the variable `name` names a key of the configuration file.
    fn names_a_setting(name: &str) -> bool {
        let Some(path) = name.strip_prefix("LATCHKEY_") else {
            return false;
        };
        let defaults = serde_json::to_value(Config::default()).expect("json");
        path.to_ascii_lowercase()
            .split("__")
            .try_fold(&defaults, |v, key| v.get(key))
            .is_some()
    }

    #[test]
    fn every_flag_variable_is_a_setting_or_left_alone_by_the_loader() {
        use clap::CommandFactory as _;
        fn visit(cmd: &clap::Command, found: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if let Some(env) = arg.get_env() {
                    found.push(env.to_string_lossy().into_owned());
                }
            }
            for sub in cmd.get_subcommands() {
                visit(sub, found);
            }
        }
        let mut variables = Vec::new();
        visit(&crate::cli::Cli::command(), &mut variables);
        assert!(variables.iter().any(|v| v == "LATCHKEY_USER_PASSWORD"));
        for name in &variables {
            assert!(
                names_a_setting(name) != FLAG_ENV.contains(&name.as_str()),
                "{name} must either name a setting or be in FLAG_ENV, not both"
            );
            assert_eq!(is_env_setting(name), names_a_setting(name), "{name}");
        }
        assert!(names_a_setting("LATCHKEY_ADMIN__TOKEN"));
        assert!(!is_env_setting("LATCHKEY_USER_PASSWORD"));
        assert!(!is_env_setting("LATCHKEY_TEST_POSTGRES_URL"));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "data_dir = \"from-file\"\n[public]\naddr = \"127.0.0.1:1\"\n",
        )
        .expect("write");
        let mut o = Overrides::default();
        o.set("data_dir", Some("from-flag"));
        let c = load(Some(&file), &o).expect("loads");
        assert_eq!(c.data_dir, std::path::PathBuf::from("from-flag"));
        assert_eq!(c.public.addr, "127.0.0.1:1");
    }
}
