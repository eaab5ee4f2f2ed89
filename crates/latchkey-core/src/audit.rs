//! The audit log: who did what to which grant, app or key, and when.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `admin_api`, `operator`, `user`, `client`, `system`.
    pub kind: String,
    pub id: Option<String>,
}

impl Actor {
    pub fn admin_api() -> Self {
        Self {
            kind: "admin_api".into(),
            id: None,
        }
    }

    pub fn system() -> Self {
        Self {
            kind: "system".into(),
            id: None,
        }
    }

    pub fn cli() -> Self {
        Self {
            kind: "cli".into(),
            id: None,
        }
    }
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub occurred_at: UnixTime,
    pub actor: Actor,
    /// The account the target belongs to, when it belongs to one.
    pub account_id: Option<String>,
    /// What happened, e.g. `client.create`, `grant.revoke`, `key.rotate`.
    pub action: String,
    /// The kind of thing acted on: `client`, `grant`, `key`, …
    pub target_kind: String,
    pub target_id: String,
    /// Anything else worth keeping (never a secret).
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account_id: Option<String>,
    pub target_id: Option<String>,
    pub before: Option<UnixTime>,
}
