//! Grants (consent sessions, "connected apps").

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::Grant;
use latchkey_core::store::{GrantRepository, StoreError};
use latchkey_types::Scope;

use crate::sql::{Columns, from_json, params, to_json};
use crate::tx::SqlTx;

macro_rules! grant_columns {
    () => {
        "id, subject, client_id, scope, audience, accounts, session_access_token, session_id_token, remember, \
         remember_until, login_session_id, data, created_at, updated_at, last_used_at, revoked_at"
    };
}

fn grant_from_row(r: &dyn Columns) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: r.text("id")?,
        subject: r.text("subject")?,
        client_id: r.text("client_id")?,
        scope: Scope::parse(&r.text("scope")?)
            .map_err(|e| StoreError::Corrupt(format!("scope: {e}")))?,
        audience: from_json("audience", &r.text("audience")?)?,
        accounts: from_json("accounts", &r.text("accounts")?)?,
        session_access_token: from_json("session_access_token", &r.text("session_access_token")?)?,
        session_id_token: from_json("session_id_token", &r.text("session_id_token")?)?,
        remember: r.int("remember")? != 0,
        remember_until: r.opt_int("remember_until")?,
        login_session_id: r.opt_text("login_session_id")?,
        data: from_json("data", &r.text("data")?)?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        last_used_at: r.opt_int("last_used_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

fn id_from_row(r: &dyn Columns) -> Result<String, StoreError> {
    r.text("id")
}

fn revoked_at_from_row(r: &dyn Columns) -> Result<Option<i64>, StoreError> {
    r.opt_int("revoked_at")
}

#[async_trait]
impl GrantRepository for SqlTx<'_> {
    async fn upsert_active(&mut self, g: &Grant) -> Result<String, StoreError> {
        self.optional(
            concat!(
                "INSERT INTO grants (",
                grant_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (subject, client_id) WHERE revoked_at IS NULL DO UPDATE SET \
                 scope = excluded.scope, audience = excluded.audience, accounts = excluded.accounts, \
                 session_access_token = excluded.session_access_token, \
                 session_id_token = excluded.session_id_token, remember = excluded.remember, \
                 remember_until = excluded.remember_until, login_session_id = excluded.login_session_id, \
                 data = excluded.data, updated_at = excluded.updated_at RETURNING id"
            ),
            params![
                &g.id,
                &g.subject,
                &g.client_id,
                g.scope.to_string(),
                to_json(&g.audience),
                to_json(&g.accounts),
                to_json(&g.session_access_token),
                to_json(&g.session_id_token),
                g.remember,
                g.remember_until,
                g.login_session_id.as_deref(),
                to_json(&g.data),
                g.created_at,
                g.updated_at,
                g.last_used_at,
                g.revoked_at,
            ],
            id_from_row,
        )
        .await?
        .ok_or_else(|| StoreError::Database("the grant upsert returned no row".into()))
    }

    async fn get(&mut self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.optional(
            concat!("SELECT ", grant_columns!(), " FROM grants WHERE id = $1"),
            params![id],
            grant_from_row,
        )
        .await
    }

    async fn active(
        &mut self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Grant>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE subject = $1 AND client_id = $2 AND revoked_at IS NULL"
            ),
            params![subject, client_id],
            grant_from_row,
        )
        .await
    }

    async fn list_active(&mut self, subject: &str) -> Result<Vec<Grant>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE subject = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"
            ),
            params![subject],
            grant_from_row,
        )
        .await
    }

    async fn list_for_client(&mut self, client_id: &str) -> Result<Vec<Grant>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                grant_columns!(),
                " FROM grants WHERE client_id = $1 AND revoked_at IS NULL ORDER BY created_at, id"
            ),
            params![client_id],
            grant_from_row,
        )
        .await
    }

    async fn narrow(
        &mut self,
        id: &str,
        scope: &Scope,
        accounts: &[String],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE grants SET scope = $2, accounts = $3, updated_at = $4 \
                 WHERE id = $1 AND revoked_at IS NULL",
                params![id, scope.to_string(), to_json(&accounts), now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn revoke_for_subject(
        &mut self,
        subject: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<String>, StoreError> {
        self.all(
            "UPDATE grants SET revoked_at = $3, updated_at = $3 \
             WHERE subject = $1 AND ($2 IS NULL OR client_id = $2) AND revoked_at IS NULL RETURNING id",
            params![subject, client_id, now],
            id_from_row,
        )
        .await
    }

    /// The grant is found by its primary key alone: with `revoked_at IS NULL` in the `WHERE`
    /// clause, PostgreSQL may walk the partial index `grants_active_idx` (whose predicate that
    /// is) on a table no `ANALYZE` has seen yet.
    async fn touch(&mut self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let found = self
            .optional(
                "UPDATE grants SET last_used_at = \
                 CASE WHEN revoked_at IS NULL THEN $2 ELSE last_used_at END \
                 WHERE id = $1 RETURNING revoked_at",
                params![id, now],
                revoked_at_from_row,
            )
            .await?;
        Ok(matches!(found, Some(None)))
    }
}
