//! The janitor's definition of a dead row, per kind: one condition each, used both to delete
//! (in batches) and to count (`--dry-run`). See `latchkey_core::janitor` for the rules.

use async_trait::async_trait;
use latchkey_core::janitor::{Cutoffs, DeadKind};
use latchkey_core::store::{JanitorRepository, StoreError};

use crate::sql::{Columns, params};
use crate::tx::SqlTx;

/// A kind's table, its key column, and the condition (over the alias `t`, with `$1` the cutoff)
/// that makes a row of it dead.
struct Rule {
    table: &'static str,
    key: &'static str,
    dead: &'static str,
}

fn rule(kind: DeadKind) -> Rule {
    let (table, key, dead) = match kind {
        DeadKind::RefreshResponses => (
            "refresh_tokens",
            "token_hash",
            "t.successor IS NOT NULL AND t.used_at < $1",
        ),
        DeadKind::Flows => ("flows", "id", "t.expires_at <= $1"),
        DeadKind::Codes => ("authorization_codes", "code_hash", "t.expires_at <= $1"),
        DeadKind::AccessTokens => ("access_tokens", "token_hash", "t.expires_at <= $1"),
        // A used refresh token, presented again, revokes its family (reuse detection): it stays
        // while any token of the family is unexpired.
        DeadKind::RefreshTokens => (
            "refresh_tokens",
            "token_hash",
            "t.expires_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens o WHERE o.family_id = t.family_id AND o.expires_at > $1) \
             AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = t.family_id AND a.expires_at > $1)",
        ),
        DeadKind::LoginSessions => ("login_sessions", "id", "t.expires_at <= $1"),
        DeadKind::DeviceCodes => ("device_codes", "device_code_hash", "t.expires_at <= $1"),
        DeadKind::DeviceChallenges => ("device_challenges", "challenge_hash", "t.expires_at <= $1"),
        DeadKind::LogoutRequests => ("logout_requests", "id", "t.expires_at <= $1"),
        // Dead with its session (ended, or expired: the same rule as the session's own, so a dry
        // run counts what the run deletes). Every row of a session goes with it: the key chosen
        // is the session's.
        DeadKind::SessionApps => (
            "login_session_clients",
            "session_id",
            "t.joined_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM login_sessions s WHERE s.id = t.session_id \
             AND s.expires_at > $1)",
        ),
        DeadKind::FinishedDeliveries => (
            "backchannel_logouts",
            "id",
            "(t.delivered_at IS NOT NULL OR t.next_attempt_at IS NULL) AND t.created_at < $1",
        ),
        DeadKind::AssertionIds => ("client_assertion_jtis", "jti_hash", "t.expires_at <= $1"),
        DeadKind::ConsoleSessions => ("console_sessions", "id", "t.expires_at <= $1"),
        DeadKind::LoginThrottle => (
            "login_throttle",
            "throttle_key",
            "t.last_failure_at < $1 AND t.blocked_until < $1",
        ),
        // The newest entry stays, so that the log's last cursor never goes back.
        DeadKind::RevocationLog => (
            "revocation_log",
            "id",
            "t.at < $1 AND t.id < (SELECT MAX(m.id) FROM revocation_log m)",
        ),
        // A client that registered itself and was never used: no flow, grant or token names it.
        DeadKind::UnusedRegistrations => (
            "clients",
            "id",
            "t.origin = 'dynamic' AND t.created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM flows f WHERE f.client_id = t.id) \
             AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = t.id) \
             AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.client_id = t.id) \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.client_id = t.id)",
        ),
    };
    Rule { table, key, dead }
}

fn cutoff(kind: DeadKind, c: &Cutoffs) -> i64 {
    match kind {
        DeadKind::RefreshResponses => c.refresh_used_before,
        DeadKind::LoginThrottle => c.throttle_before,
        DeadKind::RevocationLog | DeadKind::FinishedDeliveries => c.revocations_before,
        DeadKind::UnusedRegistrations => c.registrations_before,
        DeadKind::Flows
        | DeadKind::Codes
        | DeadKind::AccessTokens
        | DeadKind::RefreshTokens
        | DeadKind::LoginSessions
        | DeadKind::AssertionIds
        | DeadKind::ConsoleSessions
        | DeadKind::DeviceCodes
        | DeadKind::DeviceChallenges
        | DeadKind::LogoutRequests
        | DeadKind::SessionApps => c.now,
    }
}

fn count_from_row(r: &dyn Columns) -> Result<i64, StoreError> {
    r.int("n")
}

#[async_trait]
impl JanitorRepository for SqlTx<'_> {
    async fn purge_dead(
        &mut self,
        kind: DeadKind,
        cutoffs: &Cutoffs,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let Rule { table, key, dead } = rule(kind);
        let chosen = format!("SELECT t.{key} FROM {table} t WHERE {dead} LIMIT $2");
        let sql = if kind == DeadKind::RefreshResponses {
            format!("UPDATE {table} SET successor = NULL WHERE {key} IN ({chosen})")
        } else {
            format!("DELETE FROM {table} WHERE {key} IN ({chosen})")
        };
        self.execute_text(sql.into(), params![cutoff(kind, cutoffs), limit])
            .await
    }

    async fn count_dead(&mut self, kind: DeadKind, cutoffs: &Cutoffs) -> Result<u64, StoreError> {
        let Rule { table, dead, .. } = rule(kind);
        let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table} t WHERE {dead}");
        let n = self
            .all_text(sql.into(), params![cutoff(kind, cutoffs)], count_from_row)
            .await?
            .into_iter()
            .next()
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl SqlTx<'_> {
    /// The janitor's rule for `kind` at `now`, for the repositories' `purge_expired`: one
    /// definition of a dead row, whichever asks.
    pub(crate) async fn purge_expired_kind(
        &mut self,
        kind: DeadKind,
        now: latchkey_core::clock::UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let cutoffs = Cutoffs {
            now,
            refresh_used_before: now,
            throttle_before: now,
            revocations_before: now,
            registrations_before: now,
        };
        JanitorRepository::purge_dead(self, kind, &cutoffs, limit).await
    }
}
