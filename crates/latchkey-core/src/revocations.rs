//! The revocation log: every revocation appends an entry, in the unit of work that revokes
//! ([`crate::store::RevocationLogRepository::append`]), under a cursor that only grows. A reader
//! (`GET /admin/revocations`, `latchkey revocations list`, `latchkey sync`) pages through it with
//! the last cursor it saw, and misses nothing: see docs/storage.md for why a PostgreSQL sequence
//! that commits out of order cannot make it skip an entry.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::store::{Store, StoreError};

/// What was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    /// One access token (`token_hash`).
    Token,
    /// Every token of a refresh family (`family_id`): a refresh token's revocation, a replay.
    Family,
    /// A grant narrowed (a consent that grants less, a scope withdrawn): its tokens revoked.
    Grant,
    /// A consent session (grant) revoked, with its tokens.
    ConsentSession,
    /// Every token of a client (`DELETE /admin/oauth2/tokens`).
    ClientTokens,
    /// A client suspended: its tokens stop working.
    ClientSuspended,
    /// A client deleted, with its grants and tokens.
    ClientDeleted,
    /// A client secret rotated out (`secret_id`).
    SecretRotatedOut,
    /// Login sessions ended by the admin API (`subject` or `sid`).
    LoginSession,
    /// A logout: the subject's (or one `sid`'s) sessions ended.
    Logout,
}

impl RevocationKind {
    pub const ALL: [Self; 10] = [
        Self::Token,
        Self::Family,
        Self::Grant,
        Self::ConsentSession,
        Self::ClientTokens,
        Self::ClientSuspended,
        Self::ClientDeleted,
        Self::SecretRotatedOut,
        Self::LoginSession,
        Self::Logout,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Family => "family",
            Self::Grant => "grant",
            Self::ConsentSession => "consent_session",
            Self::ClientTokens => "client_tokens",
            Self::ClientSuspended => "client_suspended",
            Self::ClientDeleted => "client_deleted",
            Self::SecretRotatedOut => "secret_rotated_out",
            Self::LoginSession => "login_session",
            Self::Logout => "logout",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What a revocation was of: the ids that apply to its kind (the others are `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl RevokedIds {
    pub fn token(hash: &str) -> Self {
        Self {
            token_hash: Some(hash.to_owned()),
            ..Self::default()
        }
    }
    pub fn family(family_id: &str) -> Self {
        Self {
            family_id: Some(family_id.to_owned()),
            ..Self::default()
        }
    }
    pub fn client(client_id: &str) -> Self {
        Self {
            client_id: Some(client_id.to_owned()),
            ..Self::default()
        }
    }
    pub fn subject(subject: &str) -> Self {
        Self {
            subject: Some(subject.to_owned()),
            ..Self::default()
        }
    }
    pub fn sid(sid: &str) -> Self {
        Self {
            sid: Some(sid.to_owned()),
            ..Self::default()
        }
    }
    pub fn grant(grant_id: &str, client_id: Option<&str>, subject: Option<&str>) -> Self {
        Self {
            grant_id: Some(grant_id.to_owned()),
            client_id: client_id.map(str::to_owned),
            subject: subject.map(str::to_owned),
            ..Self::default()
        }
    }
    pub fn secret(client_id: &str, secret_id: &str) -> Self {
        Self {
            client_id: Some(client_id.to_owned()),
            secret_id: Some(secret_id.to_owned()),
            ..Self::default()
        }
    }
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEntry {
    /// Its place in the log: greater than every entry committed before it.
    pub cursor: i64,
    pub kind: RevocationKind,
    #[serde(flatten)]
    pub ids: RevokedIds,
    /// When it was revoked (Unix seconds).
    pub at: UnixTime,
}

/// The most entries one page may ask for.
pub const MAX_PAGE: u32 = 1000;
/// A page's size when none is asked for.
pub const DEFAULT_PAGE: u32 = 100;
/// How long entries are kept when `revocation_log.retention` is not set: 30 days.
pub const DEFAULT_RETENTION: i64 = 30 * 24 * 3600;

/// Why a page of the log was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parses a cursor as given by a reader (`after=`): a non-negative integer.
pub fn parse_cursor(raw: &str) -> Result<i64, PageError> {
    raw.parse::<i64>()
        .ok()
        .filter(|c| *c >= 0 && raw.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            PageError::Invalid(format!(
                "the cursor must be a non-negative integer, a cursor this log gave; got {:?}",
                truncated(raw)
            ))
        })
}

fn truncated(raw: &str) -> String {
    raw.chars().take(40).collect()
}

/// Parses a page size (`limit=`): 1 to [`MAX_PAGE`].
pub fn parse_limit(raw: Option<&str>) -> Result<u32, PageError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_PAGE);
    };
    raw.parse::<u32>()
        .ok()
        .filter(|l| (1..=MAX_PAGE).contains(l))
        .ok_or_else(|| {
            PageError::Invalid(format!(
                "limit must be an integer from 1 to {MAX_PAGE}; got {:?}",
                truncated(raw)
            ))
        })
}

/// One page of the log: the entries after `after`, oldest first, at most `limit`, and the log's
/// last cursor. A cursor beyond the last one this log ever gave is refused: it is another
/// database's, or made up, and paging from it would silently skip entries.
pub async fn page(
    store: &dyn Store,
    after: i64,
    limit: u32,
) -> Result<(Vec<RevocationEntry>, i64), PageError> {
    let mut tx = store.read().await?;
    let last = tx.revocation_log().last_cursor().await?;
    if after > last {
        return Err(PageError::Invalid(format!(
            "the cursor {after} is from the future: this log's last cursor is {last}"
        )));
    }
    let entries = tx.revocation_log().after(after, limit).await?;
    Ok((entries, last))
}
