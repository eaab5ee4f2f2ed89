//! Grants (consent sessions, "connected apps").

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::Grant;
use latchkey_core::store::{GrantRepository, StoreError};
use latchkey_types::Scope;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{from_json, map_err, to_json};
use crate::tx::SqlTx;

macro_rules! grant_columns {
    () => {
        "id, subject, client_id, scope, audience, accounts, session_access_token, session_id_token, remember, \
         remember_until, login_session_id, data, created_at, updated_at, last_used_at, revoked_at"
    };
}

pub(crate) fn grant_from_row(r: &AnyRow) -> Result<Grant, StoreError> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(map_err);
    Ok(Grant {
        id: s("id")?,
        subject: s("subject")?,
        client_id: s("client_id")?,
        scope: Scope::parse(&s("scope")?)
            .map_err(|e| StoreError::Corrupt(format!("scope: {e}")))?,
        audience: from_json("audience", &s("audience")?)?,
        accounts: from_json("accounts", &s("accounts")?)?,
        session_access_token: from_json("session_access_token", &s("session_access_token")?)?,
        session_id_token: from_json("session_id_token", &s("session_id_token")?)?,
        remember: r.try_get::<i64, _>("remember").map_err(map_err)? != 0,
        remember_until: r.try_get("remember_until").map_err(map_err)?,
        login_session_id: r.try_get("login_session_id").map_err(map_err)?,
        data: from_json("data", &s("data")?)?,
        created_at: r.try_get("created_at").map_err(map_err)?,
        updated_at: r.try_get("updated_at").map_err(map_err)?,
        last_used_at: r.try_get("last_used_at").map_err(map_err)?,
        revoked_at: r.try_get("revoked_at").map_err(map_err)?,
    })
}

/// Records that a grant was used, if it is not revoked: `$1` its id, `$2` now.
pub(crate) const TOUCH_GRANT: &str =
    "UPDATE grants SET last_used_at = $2 WHERE id = $1 AND revoked_at IS NULL";

#[async_trait]
impl GrantRepository for SqlTx {
    async fn upsert_active(&mut self, g: &Grant) -> Result<String, StoreError> {
        let row = sqlx::query(concat!(
            "INSERT INTO grants (",
            grant_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (subject, client_id) WHERE revoked_at IS NULL DO UPDATE SET \
             scope = excluded.scope, audience = excluded.audience, accounts = excluded.accounts, \
             session_access_token = excluded.session_access_token, session_id_token = excluded.session_id_token, \
             remember = excluded.remember, remember_until = excluded.remember_until, \
             login_session_id = excluded.login_session_id, data = excluded.data, updated_at = excluded.updated_at \
             RETURNING id"
        ))
        .bind(g.id.as_str())
        .bind(g.subject.as_str())
        .bind(g.client_id.as_str())
        .bind(g.scope.to_string())
        .bind(to_json(&g.audience))
        .bind(to_json(&g.accounts))
        .bind(to_json(&g.session_access_token))
        .bind(to_json(&g.session_id_token))
        .bind(i64::from(g.remember))
        .bind(g.remember_until)
        .bind(g.login_session_id.as_deref())
        .bind(to_json(&g.data))
        .bind(g.created_at)
        .bind(g.updated_at)
        .bind(g.last_used_at)
        .bind(g.revoked_at)
        .fetch_one(self.conn())
        .await
        .map_err(map_err)?;
        row.try_get("id").map_err(map_err)
    }

    async fn get(&mut self, id: &str) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn active(
        &mut self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE subject = $1 AND client_id = $2 AND revoked_at IS NULL"
        ))
        .bind(subject)
        .bind(client_id)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn list_active(&mut self, subject: &str) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            grant_columns!(),
            " FROM grants WHERE subject = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"
        ))
        .bind(subject)
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter().map(grant_from_row).collect()
    }

    async fn revoke_for_subject(
        &mut self,
        subject: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "UPDATE grants SET revoked_at = $3, updated_at = $3 \
             WHERE subject = $1 AND ($2 IS NULL OR client_id = $2) AND revoked_at IS NULL RETURNING id",
        )
        .bind(subject)
        .bind(client_id)
        .bind(now)
        .fetch_all(self.conn())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(map_err))
            .collect()
    }

    async fn touch(&mut self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(TOUCH_GRANT)
            .bind(id)
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
