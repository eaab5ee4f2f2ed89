//! The configuration schema: every setting, its default and its validation. Loading it (file and
//! environment) is the binary's job; this module only says what a valid configuration is.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::keys::SigningAlg;
use crate::secret::{SecretString, redact_url};

/// A length of time, written as `90s`, `10m`, `1h`, `30d` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn secs(s: u64) -> Self {
        Self(std::time::Duration::from_secs(s))
    }

    pub fn as_secs(self) -> i64 {
        i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Self::secs(s)),
            Raw::Text(t) => humantime::parse_duration(t.trim()).map(Self).map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {t:?} ({e}); write e.g. 90s, 10m, 1h, 30d"
                ))
            }),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The issuer URL. Default: `http://127.0.0.1:<public port>`.
    pub issuer: Option<String>,
    /// Where the embedded database, the generated system secret and other state live.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub public: PublicConfig,
    pub admin: AdminConfig,
    pub secrets: SecretsConfig,
    pub ttl: TtlConfig,
    pub urls: UrlsConfig,
    pub oauth2: OAuth2Config,
    pub log: LogConfig,
    pub janitor: JanitorConfig,
    pub revocation_log: RevocationLogConfig,
    pub rate_limits: RateLimitConfig,
    pub catalog: CatalogConfig,
    pub platform: PlatformConfig,
    /// The resource servers tokens may be issued for (RFC 8707), `[[resources]]`.
    pub resources: Vec<ResourceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: None,
            data_dir: PathBuf::from("latchkey-data"),
            database: DatabaseConfig::default(),
            public: PublicConfig::default(),
            admin: AdminConfig::default(),
            secrets: SecretsConfig::default(),
            ttl: TtlConfig::default(),
            urls: UrlsConfig::default(),
            oauth2: OAuth2Config::default(),
            log: LogConfig::default(),
            janitor: JanitorConfig::default(),
            revocation_log: RevocationLogConfig::default(),
            rate_limits: RateLimitConfig::default(),
            catalog: CatalogConfig::default(),
            platform: PlatformConfig::default(),
            resources: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://…`. Default: SQLite in the data directory.
    pub url: Option<DatabaseUrl>,
    /// Connections in the pool (PostgreSQL; up to half of them stay with the single-statement
    /// work between statements) or readers (SQLite).
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
        }
    }
}

/// A database URL. It may carry a password, so its `Debug` and its serialized form (what
/// `latchkey config check` prints) show it with the password replaced (see [`redact_url`]).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::new(url))
    }

    /// The URL itself, to connect with.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The URL without its password, for messages.
    pub fn redacted(&self) -> String {
        redact_url(self.0.expose())
    }
}

/// For the `--database-url` flag.
impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicConfig {
    /// `HOST:PORT` of the public listener; port 0 picks a free port.
    pub addr: String,
}

impl Default for PublicConfig {
    fn default() -> Self {
        Self {
            addr: "0.0.0.0:4444".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `HOST:PORT` of the admin listener. Loopback by default: the admin API is not for the internet.
    pub addr: String,
    /// When set, every admin request must carry `Authorization: Bearer <token>`.
    pub token: Option<SecretString>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:4445".into(),
            token: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The system secrets: the first signs and encrypts, the others still verify and decrypt.
    /// Empty: a secret is generated once and kept in the data directory.
    pub system: Vec<SecretString>,
}

impl fmt::Display for SecretsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} secret(s), redacted]", self.system.len())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtlConfig {
    pub access_token: Duration,
    pub refresh_token: Duration,
    pub auth_code: Duration,
    pub id_token: Duration,
    /// How long a login or consent challenge stays valid.
    pub login_consent_request: Duration,
    /// How long a remembered login lasts at most.
    pub authentication_session: Duration,
    /// How long a device code and its user code stay valid (RFC 8628).
    pub device_user_code: Duration,
}

impl Default for TtlConfig {
    fn default() -> Self {
        Self {
            access_token: Duration::secs(3600),
            refresh_token: Duration::secs(30 * 86_400),
            auth_code: Duration::secs(600),
            id_token: Duration::secs(3600),
            login_consent_request: Duration::secs(1800),
            authentication_session: Duration::secs(30 * 86_400),
            device_user_code: Duration::secs(600),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UrlsConfig {
    /// The login provider. Unset: the built-in pages (`/ui/login`, `/ui/consent`).
    pub login: Option<String>,
    pub consent: Option<String>,
    pub logout: Option<String>,
    pub error: Option<String>,
    pub post_logout_redirect: Option<String>,
    /// The device verification provider (RFC 8628), as Hydra's `urls.device`.
    pub device: DeviceUrlsConfig,
}

/// Where the device grant sends the user. Unset: the built-in pages (`/ui/device`,
/// `/ui/device/success`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceUrlsConfig {
    /// The page where the user enters the user code, with `device_challenge`.
    pub verification: Option<String>,
    /// The page the flow ends at.
    pub success: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenStrategy {
    #[default]
    Opaque,
    Jwt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2Config {
    /// The access token format for clients that do not choose one.
    pub access_token_strategy: AccessTokenStrategy,
    /// The algorithm JWT access tokens are signed with: `ES256` (the default, and the fastest
    /// to sign of the three here), `RS256` (Hydra's default, for resource servers that accept
    /// nothing else) or `EdDSA`. Every algorithm's key is always in the JWKS.
    pub access_token_signing_alg: SigningAlg,
    pub pkce: PkceConfig,
    pub refresh_token: RefreshTokenConfig,
    pub device_authorization: DeviceAuthorizationConfig,
    pub jwt_bearer: JwtBearerConfig,
    /// Clients named by the URL of their metadata document (CIMD).
    pub client_id_metadata_documents: ClientIdMetadataDocumentsConfig,
    /// RFC 7591/7592 dynamic client registration.
    pub dynamic_client_registration: DynamicClientRegistrationConfig,
}

/// `[oauth2.client_id_metadata_documents]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientIdMetadataDocumentsConfig {
    /// A `client_id` that is an https URL names its metadata document.
    pub enabled: bool,
    /// Fetch documents from loopback addresses: for development and tests only.
    pub allow_loopback: bool,
    /// Hosts whose documents the operator trusts: their clients may get sensitive scopes.
    pub trusted_hosts: Vec<String>,
}

impl Default for ClientIdMetadataDocumentsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_loopback: false,
            trusted_hosts: Vec::new(),
        }
    }
}

/// `[oauth2.dynamic_client_registration]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamicClientRegistrationConfig {
    /// `POST /oauth2/register` is open to anyone (rate-limited per address).
    pub enabled: bool,
    /// A registration that never got a grant or a token is deleted after this long.
    pub unused_ttl: Duration,
}

impl Default for DynamicClientRegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            unused_ttl: Duration::secs(86_400),
        }
    }
}

impl Default for OAuth2Config {
    fn default() -> Self {
        Self {
            access_token_strategy: AccessTokenStrategy::default(),
            access_token_signing_alg: SigningAlg::ES256,
            pkce: PkceConfig::default(),
            refresh_token: RefreshTokenConfig::default(),
            client_id_metadata_documents: ClientIdMetadataDocumentsConfig::default(),
            dynamic_client_registration: DynamicClientRegistrationConfig::default(),
            device_authorization: DeviceAuthorizationConfig::default(),
            jwt_bearer: JwtBearerConfig::default(),
        }
    }
}

/// The JWT bearer grant (RFC 7523 §2.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtBearerConfig {
    /// The longest an assertion may live (its `exp` from now), as Hydra's
    /// `oauth2.grant.jwt.max_ttl`.
    pub max_ttl: Duration,
}

impl Default for JwtBearerConfig {
    fn default() -> Self {
        Self {
            max_ttl: Duration::secs(3600),
        }
    }
}

/// The device authorization grant (RFC 8628).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceAuthorizationConfig {
    /// The least time between two polls of the token endpoint with one device code.
    pub token_polling_interval: Duration,
}

impl Default for DeviceAuthorizationConfig {
    fn default() -> Self {
        Self {
            token_polling_interval: Duration::secs(5),
        }
    }
}

/// Refresh token rotation that real clients survive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshTokenConfig {
    /// How long a used refresh token, presented again by the same client, still gets the
    /// response it got the first time (a retry after a timeout, two tabs). At most 5 minutes.
    pub grace_period: Duration,
    /// How many such retries it gets within the grace period.
    pub grace_reuse_count: u32,
}

impl Default for RefreshTokenConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::secs(30),
            grace_reuse_count: 3,
        }
    }
}

impl RefreshTokenConfig {
    /// How long a rotated refresh token's response is kept: the grace period, and never less
    /// than the window in which concurrent requests are coalesced.
    pub fn response_window(&self) -> i64 {
        self.grace_period
            .as_secs()
            .max(crate::oauth::token::COALESCE_WINDOW)
    }
}

/// The longest refresh grace period accepted.
pub const MAX_REFRESH_GRACE_PERIOD: i64 = 300;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PkceConfig {
    /// PKCE is required of every client (OAuth 2.1).
    pub enforced: bool,
    /// PKCE is required of public clients (always true when `enforced` is).
    pub enforced_for_public_clients: bool,
}

impl Default for PkceConfig {
    fn default() -> Self {
        Self {
            enforced: true,
            enforced_for_public_clients: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `latchkey=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JanitorConfig {
    /// Run the janitor in the background of `serve`.
    pub enabled: bool,
    pub interval: Duration,
    /// Rows deleted per statement.
    pub batch_size: u32,
}

impl Default for JanitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::secs(300),
            batch_size: 1000,
        }
    }
}

/// The revocation log (see `crate::revocations`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationLogConfig {
    /// How long entries are kept; the janitor deletes older ones. A reader (`latchkey sync`)
    /// must come back within it.
    pub retention: Duration,
}

impl Default for RevocationLogConfig {
    fn default() -> Self {
        Self {
            retention: Duration::secs(30 * 86_400),
        }
    }
}

/// Request rate limits, per replica (in memory), in requests per minute; 0 turns one off.
/// Limits that must hold across replicas (login brute force) live in the database instead.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// A header that carries the client's address, set by a trusted reverse proxy
    /// (e.g. `x-forwarded-for`; its first address is used). Unset: the peer address.
    pub client_ip_header: Option<String>,
    pub authorize_per_ip: u32,
    pub token_per_ip: u32,
    pub token_per_client: u32,
    pub revoke_per_ip: u32,
    pub revoke_per_client: u32,
    pub introspect_per_ip: u32,
    pub userinfo_per_ip: u32,
    /// Bearer tokens refused by the self-service API (`/api/v1`), per address: only failures
    /// count, and an address over the limit is refused before its token is looked up.
    pub api_bad_token_per_ip: u32,
    /// Dynamic client registrations (`POST /oauth2/register`), per address.
    pub register_per_ip: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            client_ip_header: None,
            authorize_per_ip: 600,
            token_per_ip: 6000,
            token_per_client: 60_000,
            revoke_per_ip: 1200,
            revoke_per_client: 6000,
            introspect_per_ip: 60_000,
            userinfo_per_ip: 6000,
            api_bad_token_per_ip: 60,
            register_per_ip: 10,
        }
    }
}

/// The permission catalog: the scopes apps may request, beside the built-in ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    pub scopes: Vec<ScopeConfig>,
}

/// How much a scope lets an app do, and so what it takes to request it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    #[default]
    Normal,
    /// Only apps with a verified domain may request it.
    Sensitive,
    /// Only apps the operator approved may request it.
    Restricted,
}

impl Sensitivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Sensitive => "sensitive",
            Self::Restricted => "restricted",
        }
    }
}

/// A resource server tokens may be issued for (`[[resources]]`, RFC 8707).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// The resource identifier clients send as `resource`: an absolute URI without a fragment.
    pub uri: String,
    /// Shown on the consent screen.
    pub name: String,
    /// The catalog scopes this resource accepts.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Most resource servers declared.
pub const MAX_RESOURCE_SERVERS: usize = 100;

/// Each resource: an absolute http(s) URI without a fragment, declared once, named, accepting
/// catalog scopes only.
fn validate_resources(
    resources: &[ResourceConfig],
    catalog: &crate::platform::catalog::Catalog,
) -> Result<(), String> {
    if resources.len() > MAX_RESOURCE_SERVERS {
        return Err(format!("at most {MAX_RESOURCE_SERVERS} resources"));
    }
    for (i, r) in resources.iter().enumerate() {
        crate::oauth::resources::check_resource(&r.uri).map_err(|e| format!("{}: {e}", r.uri))?;
        let parsed = url::Url::parse(&r.uri).map_err(|e| e.to_string())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{}: must be an http or https URI", r.uri));
        }
        if resources[..i].iter().any(|o| o.uri == r.uri) {
            return Err(format!("{} is declared twice", r.uri));
        }
        let name = r.name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(format!("{}: name must be 1 to 64 characters", r.uri));
        }
        if let Some(s) = r.scopes.iter().find(|s| catalog.get(s).is_none()) {
            return Err(format!("{}: the scope {s} is not in the catalog", r.uri));
        }
    }
    Ok(())
}

/// One scope of the catalog (`[[catalog.scopes]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// The scope token, e.g. `dns.read`.
    pub name: String,
    /// What the consent screen says, e.g. "Read your DNS records".
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The heading it is listed under, e.g. "DNS".
    #[serde(default = "default_scope_group")]
    pub group: String,
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// The least account role that holds this permission (`member`, `developer`, `admin`,
    /// `owner`): a user lends an app a scope on an account only where their own role holds it.
    #[serde(default)]
    pub min_role: crate::platform::model::Role,
}

fn default_scope_group() -> String {
    "Other".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformConfig {
    /// The platform's name, shown on the built-in pages. App names may not imitate it.
    pub name: String,
    /// The DNS server (`IP:PORT`) asked for domain verification TXT records. Unset: the
    /// system's resolvers.
    pub dns_resolver: Option<String>,
    /// How long a session of the platform's pages lasts when "remember me" is not ticked.
    pub console_session: Duration,
    /// Whether an app needs a verified domain to go public. When off, unverified apps may go
    /// public: they are capped at `unverified_user_cap` users and outsiders are warned first.
    pub public_apps_need_verified_domain: bool,
    /// How many distinct users a public app may have while its domain is not verified.
    pub unverified_user_cap: u32,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            name: "Latchkey".into(),
            dns_resolver: None,
            console_session: Duration::secs(12 * 3600),
            public_apps_need_verified_domain: true,
            unverified_user_cap: 100,
        }
    }
}

/// A configuration value that is not acceptable, with the key it is under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for `{key}`: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        reason: reason.into(),
    }
}

/// Minimum length of a configured system secret.
pub const MIN_SECRET_LEN: usize = 32;

impl Config {
    /// Checks every value that serde's types do not already constrain: each section checks its
    /// own, in the order of the file, and the first problem is the one reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            validate_issuer(issuer).map_err(|r| invalid("issuer", r))?;
        }
        self.database.validate()?;
        validate_addr(&self.public.addr).map_err(|r| invalid("public.addr", r))?;
        self.admin.validate()?;
        self.secrets.validate()?;
        self.ttl.validate()?;
        self.urls.validate()?;
        self.oauth2.refresh_token.validate()?;
        self.rate_limits.validate()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
        self.janitor.validate()?;
        if self.revocation_log.retention.as_secs() < 3600 {
            return Err(invalid("revocation_log.retention", "must be at least 1h"));
        }
        let catalog = crate::platform::catalog::Catalog::from_config(&self.catalog)
            .map_err(|r| invalid("catalog.scopes", r))?;
        self.platform.validate()?;
        validate_resources(&self.resources, &catalog).map_err(|r| invalid("resources", r))
    }

    /// The data directory, `./latchkey-data` unless configured.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone()
    }
}

impl DatabaseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(db) = self.url.as_ref().map(DatabaseUrl::expose)
            && !(db.starts_with("sqlite:")
                || db.starts_with("postgres://")
                || db.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if self.max_connections == 0 || self.max_connections > 1000 {
            return Err(invalid(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        Ok(())
    }
}

impl AdminConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        validate_addr(&self.addr).map_err(|r| invalid("admin.addr", r))?;
        if let Some(token) = &self.token
            && token.expose().len() < 16
        {
            return Err(invalid("admin.token", "must be at least 16 characters"));
        }
        Ok(())
    }
}

impl SecretsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self
            .system
            .iter()
            .any(|s| s.expose().len() < MIN_SECRET_LEN)
        {
            return Err(invalid(
                "secrets.system",
                format!("every secret must be at least {MIN_SECRET_LEN} characters"),
            ));
        }
        Ok(())
    }
}

impl TtlConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, d, min, max) in [
            ("ttl.access_token", self.access_token, 1, 86_400 * 7),
            ("ttl.refresh_token", self.refresh_token, 60, 86_400 * 3650),
            ("ttl.auth_code", self.auth_code, 1, 3600),
            ("ttl.id_token", self.id_token, 1, 86_400 * 7),
            (
                "ttl.login_consent_request",
                self.login_consent_request,
                10,
                86_400,
            ),
            (
                "ttl.authentication_session",
                self.authentication_session,
                60,
                86_400 * 3650,
            ),
            ("ttl.device_user_code", self.device_user_code, 60, 86_400),
        ] {
            let s = d.as_secs();
            if s < min || s > max {
                return Err(invalid(key, format!("must be between {min}s and {max}s")));
            }
        }
        Ok(())
    }
}

impl UrlsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, url) in [
            ("urls.login", &self.login),
            ("urls.consent", &self.consent),
            ("urls.logout", &self.logout),
            ("urls.error", &self.error),
            ("urls.post_logout_redirect", &self.post_logout_redirect),
            ("urls.device.verification", &self.device.verification),
            ("urls.device.success", &self.device.success),
        ] {
            if let Some(u) = url {
                let parsed = url::Url::parse(u)
                    .map_err(|e| invalid(key, format!("not an absolute URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(key, "must be an http or https URL"));
                }
            }
        }
        Ok(())
    }
}

impl RefreshTokenConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.grace_period.as_secs() > MAX_REFRESH_GRACE_PERIOD {
            return Err(invalid(
                "oauth2.refresh_token.grace_period",
                format!("must be at most {MAX_REFRESH_GRACE_PERIOD}s"),
            ));
        }
        if self.grace_reuse_count > 100 {
            return Err(invalid(
                "oauth2.refresh_token.grace_reuse_count",
                "must be at most 100",
            ));
        }
        Ok(())
    }
}

impl RateLimitConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(h) = &self.client_ip_header
            && (h.is_empty() || header_name_invalid(h))
        {
            return Err(invalid(
                "rate_limits.client_ip_header",
                "must be an HTTP header name",
            ));
        }
        Ok(())
    }
}

impl JanitorConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err(invalid(
                "janitor.batch_size",
                "must be between 1 and 100000",
            ));
        }
        if self.interval.as_secs() < 1 {
            return Err(invalid("janitor.interval", "must be at least 1s"));
        }
        Ok(())
    }
}

impl PlatformConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(invalid("platform.name", "must be 1 to 64 characters"));
        }
        if let Some(dns) = &self.dns_resolver {
            validate_addr(dns).map_err(|r| invalid("platform.dns_resolver", r))?;
        }
        let session = self.console_session.as_secs();
        if !(60..=86_400 * 30).contains(&session) {
            return Err(invalid(
                "platform.console_session",
                "must be between 60s and 30 days",
            ));
        }
        Ok(())
    }
}

fn header_name_invalid(name: &str) -> bool {
    !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate_addr(addr: &str) -> Result<(), String> {
    addr.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|e| format!("{addr:?} is not HOST:PORT with an IP address ({e})"))
}

/// An issuer is an absolute `https` URL without query or fragment (OIDC Discovery §3); plain
/// `http` is allowed for loopback hosts only, for development.
pub fn validate_issuer(issuer: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("not an absolute URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&url) => {}
        "http" => {
            return Err(
                "must use https unless the host is loopback (localhost, 127.0.0.1, [::1])".into(),
            );
        }
        _ => return Err("must be an https URL".into()),
    }
    Ok(url)
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]`.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = Config::default();
        c.validate().expect("defaults validate");
        assert_eq!(c.ttl.access_token.as_secs(), 3600);
        assert_eq!(c.ttl.refresh_token.as_secs(), 30 * 86_400);
        assert_eq!(c.ttl.auth_code.as_secs(), 600);
        assert_eq!(c.ttl.id_token.as_secs(), 3600);
        assert_eq!(c.public.addr, "0.0.0.0:4444");
        assert_eq!(c.admin.addr, "127.0.0.1:4445");
        assert_eq!(c.data_dir(), PathBuf::from("latchkey-data"));
    }

    #[test]
    fn durations_parse_from_text_and_numbers() {
        #[derive(Deserialize)]
        struct T {
            a: Duration,
            b: Duration,
        }
        let t: T = serde_json::from_str(r#"{"a":"30d","b":90}"#).expect("parses");
        assert_eq!(t.a.as_secs(), 30 * 86_400);
        assert_eq!(t.b.as_secs(), 90);
        assert!(serde_json::from_str::<T>(r#"{"a":"soon","b":1}"#).is_err());
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config {
            issuer: Some("http://example.com".into()),
            ..Config::default()
        };
        assert_eq!(c.validate().expect_err("http issuer").key, "issuer");
        c.issuer = Some("https://example.com/?x=1".into());
        assert_eq!(c.validate().expect_err("query").key, "issuer");
        c.issuer = Some("https://example.com".into());
        c.secrets.system = vec![SecretString::new("short")];
        assert_eq!(
            c.validate().expect_err("short secret").key,
            "secrets.system"
        );
        c.secrets.system = vec![];
        c.public.addr = "nope".into();
        assert_eq!(c.validate().expect_err("addr").key, "public.addr");
        c.public.addr = "0.0.0.0:0".into();
        c.ttl.auth_code = Duration::secs(0);
        assert_eq!(c.validate().expect_err("ttl").key, "ttl.auth_code");
    }

    #[test]
    fn each_section_names_its_keys() {
        let refused = |change: fn(&mut Config)| {
            let mut c = Config::default();
            change(&mut c);
            c.validate().expect_err("refused").key
        };
        assert_eq!(
            refused(|c| c.database.url = Some("mysql://x".to_owned().into())),
            "database.url"
        );
        assert_eq!(
            refused(|c| c.database.max_connections = 0),
            "database.max_connections"
        );
        assert_eq!(refused(|c| c.admin.addr = "x".into()), "admin.addr");
        assert_eq!(
            refused(|c| c.admin.token = Some("short".to_owned().into())),
            "admin.token"
        );
        assert_eq!(
            refused(|c| c.urls.login = Some("ftp://x.example/".into())),
            "urls.login"
        );
        assert_eq!(
            refused(|c| c.oauth2.refresh_token.grace_reuse_count = 101),
            "oauth2.refresh_token.grace_reuse_count"
        );
        assert_eq!(
            refused(|c| c.rate_limits.client_ip_header = Some("X Forwarded".into())),
            "rate_limits.client_ip_header"
        );
        assert_eq!(refused(|c| c.log.level = " ".into()), "log.level");
        assert_eq!(
            refused(|c| c.janitor.interval = Duration::secs(0)),
            "janitor.interval"
        );
        assert_eq!(
            refused(|c| c.platform.name = String::new()),
            "platform.name"
        );
        assert_eq!(
            refused(|c| c.platform.console_session = Duration::secs(1)),
            "platform.console_session"
        );
    }

    #[test]
    fn loopback_issuers_may_be_http() {
        validate_issuer("http://127.0.0.1:4444").expect("loopback");
        validate_issuer("http://localhost:4444").expect("localhost");
        validate_issuer("http://[::1]:4444").expect("v6 loopback");
        assert!(validate_issuer("ftp://x").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_when_serialized() {
        let mut c: Config = serde_json::from_value(serde_json::json!({
            "database": {"url": "postgres://latchkey:db-password-1@db.internal:5432/latchkey"},
            "admin": {"token": "admin-token-of-some-length"},
            "secrets": {"system": ["system-secret-0123456789abcdefghijkl"]},
        }))
        .expect("parses");
        c.validate().expect("valid");
        // The values are there for the server...
        assert_eq!(
            c.database.url.as_ref().map(DatabaseUrl::expose),
            Some("postgres://latchkey:db-password-1@db.internal:5432/latchkey")
        );
        assert_eq!(
            c.admin.token.as_ref().map(SecretString::expose),
            Some("admin-token-of-some-length")
        );
        // ...and nowhere in what is printed or logged.
        let shown = [
            format!("{c:?}"),
            format!("{c:#?}"),
            serde_json::to_string(&c).expect("json"),
        ];
        for text in &shown {
            for secret in [
                "db-password-1",
                "admin-token-of-some-length",
                "system-secret-0123456789abcdefghijkl",
            ] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        // What is printed still says where the database is, and that secrets are set.
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(
            json["database"]["url"],
            "postgres://latchkey:***@db.internal:5432/latchkey"
        );
        assert_eq!(json["admin"]["token"], crate::secret::REDACTED);
        assert_eq!(json["secrets"]["system"][0], crate::secret::REDACTED);
        c.admin.token = None;
        assert!(serde_json::to_value(&c).expect("json")["admin"]["token"].is_null());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_str::<Config>(r#"{"databse":{}}"#).expect_err("unknown");
        assert!(err.to_string().contains("databse"));
    }
}
