//! The audit log.

use std::borrow::Cow::{Borrowed, Owned};

use async_trait::async_trait;
use latchkey_core::audit::{Actor, AuditEntry, AuditFilter};
use latchkey_core::store::{AuditRepository, StoreError};
use sqlx::Row as _;

use crate::error::{from_json, map_err, to_json};
use crate::tokens::{Param, bind_params};
use crate::tx::SqlTx;

/// `INSERT INTO audit_log (<the columns of [`audit_params`]>) `, for the statements that write an
/// entry beside other rows.
macro_rules! insert_audit_head {
    () => {
        "INSERT INTO audit_log (id, occurred_at, actor_kind, actor_id, account_id, action, \
         target_kind, target_id, details) "
    };
}
pub(crate) use insert_audit_head;

pub(crate) const INSERT_AUDIT: &str = concat!(
    insert_audit_head!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);

/// Where `account_id` is in [`audit_params`].
pub(crate) const AUDIT_ACCOUNT_ID: usize = 4;
/// Where `target_id` is in [`audit_params`].
pub(crate) const AUDIT_TARGET_ID: usize = 7;

/// An entry's columns, in the order of [`INSERT_AUDIT`].
pub(crate) fn audit_params(e: &AuditEntry) -> [Param<'_>; 9] {
    [
        Param::Text(Borrowed(e.id.as_str())),
        Param::Int(e.occurred_at),
        Param::Text(Borrowed(e.actor.kind.as_str())),
        Param::OptText(e.actor.id.as_deref()),
        Param::OptText(e.account_id.as_deref()),
        Param::Text(Borrowed(e.action.as_str())),
        Param::Text(Borrowed(e.target_kind.as_str())),
        Param::Text(Borrowed(e.target_id.as_str())),
        Param::Text(Owned(to_json(&e.details))),
    ]
}

#[async_trait]
impl AuditRepository for SqlTx {
    async fn append(&mut self, e: &AuditEntry) -> Result<(), StoreError> {
        bind_params(sqlx::query(INSERT_AUDIT), audit_params(e))
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list(&mut self, f: &AuditFilter, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, occurred_at, actor_kind, actor_id, account_id, action, target_kind, target_id, details \
             FROM audit_log WHERE ($1 IS NULL OR account_id = $1) AND ($2 IS NULL OR target_id = $2) \
             AND ($3 IS NULL OR occurred_at < $3) ORDER BY occurred_at DESC, id DESC LIMIT $4",
        )
        .bind(f.account_id.as_deref())
        .bind(f.target_id.as_deref())
        .bind(f.before)
        .bind(i64::from(limit))
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let details: String = r.try_get("details").map_err(map_err)?;
                Ok(AuditEntry {
                    id: r.try_get("id").map_err(map_err)?,
                    occurred_at: r.try_get("occurred_at").map_err(map_err)?,
                    actor: Actor {
                        kind: r.try_get("actor_kind").map_err(map_err)?,
                        id: r.try_get("actor_id").map_err(map_err)?,
                    },
                    account_id: r.try_get("account_id").map_err(map_err)?,
                    action: r.try_get("action").map_err(map_err)?,
                    target_kind: r.try_get("target_kind").map_err(map_err)?,
                    target_id: r.try_get("target_id").map_err(map_err)?,
                    details: from_json("details", &details)?,
                })
            })
            .collect()
    }
}
