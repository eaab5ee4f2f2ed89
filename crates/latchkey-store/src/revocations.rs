//! The revocation log.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::revocations::{RevocationEntry, RevocationKind, RevokedIds};
use latchkey_core::store::{RevocationLogRepository, StoreError};

use crate::sql::{Columns, params};
use crate::tx::SqlTx;

/// The key of the transaction-level advisory lock that orders appends on PostgreSQL (an
/// arbitrary constant: "LKREVLOG" in ASCII, truncated to fit).
const APPEND_LOCK: i64 = 0x4c4b_5245_564c_4f47;

fn entry_from_row(r: &dyn Columns) -> Result<RevocationEntry, StoreError> {
    let kind = r.text("kind")?;
    Ok(RevocationEntry {
        cursor: r.int("id")?,
        kind: RevocationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown revocation kind {kind:?}")))?,
        ids: RevokedIds {
            token_hash: r.opt_text("token_hash")?,
            family_id: r.opt_text("family_id")?,
            grant_id: r.opt_text("grant_id")?,
            client_id: r.opt_text("client_id")?,
            secret_id: r.opt_text("secret_id")?,
            subject: r.opt_text("subject")?,
            sid: r.opt_text("sid")?,
        },
        at: r.int("at")?,
    })
}

fn cursor_from_row(r: &dyn Columns) -> Result<i64, StoreError> {
    r.int("last")
}

#[async_trait]
impl RevocationLogRepository for SqlTx<'_> {
    async fn append(
        &mut self,
        kind: RevocationKind,
        ids: &RevokedIds,
        at: UnixTime,
    ) -> Result<(), StoreError> {
        if self.backend() == crate::Backend::Postgres {
            // Held until the transaction ends: the next append draws its id only after this
            // one's transaction committed or rolled back, so ids become visible in order.
            // SQLite has one writer, which orders them already.
            self.execute("SELECT pg_advisory_xact_lock($1)", params![APPEND_LOCK])
                .await?;
        }
        self.execute(
            "INSERT INTO revocation_log (kind, token_hash, family_id, grant_id, client_id, \
             secret_id, subject, sid, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params![
                kind.as_str(),
                ids.token_hash.as_deref(),
                ids.family_id.as_deref(),
                ids.grant_id.as_deref(),
                ids.client_id.as_deref(),
                ids.secret_id.as_deref(),
                ids.subject.as_deref(),
                ids.sid.as_deref(),
                at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn after(&mut self, after: i64, limit: u32) -> Result<Vec<RevocationEntry>, StoreError> {
        self.all(
            "SELECT id, kind, token_hash, family_id, grant_id, client_id, secret_id, subject, sid, at \
             FROM revocation_log WHERE id > $1 ORDER BY id LIMIT $2",
            params![after, limit],
            entry_from_row,
        )
        .await
    }

    async fn last_cursor(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .optional(
                "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS last FROM revocation_log",
                params![],
                cursor_from_row,
            )
            .await?
            .unwrap_or(0))
    }

    async fn purge(&mut self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM revocation_log WHERE id IN (SELECT id FROM revocation_log \
             WHERE at < $1 AND id < (SELECT MAX(id) FROM revocation_log) ORDER BY id LIMIT $2)",
            params![before, limit],
        )
        .await
    }
}
