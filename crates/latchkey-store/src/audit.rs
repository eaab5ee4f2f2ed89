//! The audit log.

use async_trait::async_trait;
use latchkey_core::audit::{Actor, AuditEntry, AuditFilter};
use latchkey_core::store::{AuditRepository, StoreError};

use crate::sql::{Columns, from_json, params, to_json};
use crate::tx::SqlTx;

fn entry_from_row(r: &dyn Columns) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.text("id")?,
        occurred_at: r.int("occurred_at")?,
        actor: Actor {
            kind: r.text("actor_kind")?,
            id: r.opt_text("actor_id")?,
        },
        account_id: r.opt_text("account_id")?,
        action: r.text("action")?,
        target_kind: r.text("target_kind")?,
        target_id: r.text("target_id")?,
        details: from_json("details", &r.text("details")?)?,
    })
}

#[async_trait]
impl AuditRepository for SqlTx<'_> {
    async fn append(&mut self, e: &AuditEntry) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO audit_log (id, occurred_at, actor_kind, actor_id, account_id, action, \
             target_kind, target_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params![
                &e.id,
                e.occurred_at,
                &e.actor.kind,
                e.actor.id.as_deref(),
                e.account_id.as_deref(),
                &e.action,
                &e.target_kind,
                &e.target_id,
                to_json(&e.details),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list(&mut self, f: &AuditFilter, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.all(
            "SELECT id, occurred_at, actor_kind, actor_id, account_id, action, target_kind, target_id, details \
             FROM audit_log WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR target_id = $2) \
             AND ($3 IS NULL OR occurred_at < $3) ORDER BY occurred_at DESC, id DESC LIMIT $4",
            params![f.account_id.as_deref(), f.target_id.as_deref(), f.before, limit],
            entry_from_row,
        )
        .await
    }
}
