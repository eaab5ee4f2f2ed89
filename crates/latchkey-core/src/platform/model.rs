//! The platform's records: accounts, users, memberships, apps, console sessions, login throttle.

use latchkey_types::Scope;

use crate::clock::UnixTime;

/// A member's role in an account, from least to most powerful.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Member,
    Developer,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Self; 4] = [Self::Owner, Self::Admin, Self::Developer, Self::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Developer => "developer",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// True when this role may do what `needed` may.
    pub fn at_least(self, needed: Self) -> bool {
        self >= needed
    }
}

/// What an account is to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// The operator's own account: its apps are first-party.
    Platform,
    Customer,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Customer => "customer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "platform" => Some(Self::Platform),
            "customer" => Some(Self::Customer),
            _ => None,
        }
    }
}

/// A tenant: it owns apps, and users are its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub kind: AccountKind,
    /// New grants to public third-party apps are refused for this account.
    pub block_third_party_apps: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// A person who logs in with an email and a password. `Debug` leaves out the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// Lower-case.
    pub email: String,
    pub name: String,
    /// Argon2id in PHC format; `None` for users who cannot log in with a password.
    pub password_hash: Option<String>,
    /// `active` or `disabled`.
    pub status: String,
    /// The platform's operators: the operator console.
    pub is_operator: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| crate::secret::REDACTED),
            )
            .field("status", &self.status)
            .field("is_operator", &self.is_operator)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub account_id: String,
    pub user_id: String,
    pub role: Role,
    pub created_at: UnixTime,
}

/// An account a user belongs to, with the user's role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMembership {
    pub account: Account,
    pub role: Role,
}

/// A member of an account, as its admins see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
}

/// How an app authenticates: a server-side web app with a secret, or a public client (SPA,
/// native, CLI) with PKCE only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppType {
    Web,
    Native,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(Self::Web),
            "native" => Some(Self::Native),
            _ => None,
        }
    }
}

/// Who may authorize an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Only members of the owning account.
    Private,
    /// Any user. One-way.
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Self::Private),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// The platform's side of an app (its OAuth side is the [`crate::client::Client`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppProfile {
    pub client_id: String,
    pub account_id: String,
    pub description: String,
    pub app_type: AppType,
    pub required_scopes: Scope,
    pub optional_scopes: Scope,
    pub visibility: Visibility,
    /// The publisher domain being verified, or verified.
    pub domain: Option<String>,
    /// The value the TXT record must carry.
    pub verification_token: Option<String>,
    /// Set once the TXT record was found: the domain is then locked to the app.
    pub domain_verified_at: Option<UnixTime>,
    /// Restricted scopes the developer asked the operator for.
    pub requested_restricted: Vec<String>,
    /// Restricted scopes the operator approved.
    pub approved_restricted: Vec<String>,
    pub promoted_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl AppProfile {
    pub fn is_verified(&self) -> bool {
        self.domain_verified_at.is_some()
    }

    /// Every scope the app may request.
    pub fn all_scopes(&self) -> Scope {
        let mut s = self.required_scopes.clone();
        for o in self.optional_scopes.iter() {
            s.insert(o);
        }
        s
    }

    /// Restricted scopes requested and not yet approved: the operator's review queue.
    pub fn pending_restricted(&self) -> Vec<String> {
        self.requested_restricted
            .iter()
            .filter(|s| !self.approved_restricted.contains(s))
            .cloned()
            .collect()
    }
}

/// A session on the platform's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id: String,
    pub cookie_hash: String,
    pub user_id: String,
    pub authenticated_at: UnixTime,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// Failed logins under one key (`user:…` or `ip:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRecord {
    pub key: String,
    pub failures: i64,
    pub last_failure_at: UnixTime,
    pub blocked_until: UnixTime,
}
