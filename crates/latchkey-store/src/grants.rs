//! Grants (consent sessions, "connected apps").

use std::borrow::Cow::{Borrowed, Owned};

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::Grant;
use latchkey_core::store::{GrantRepository, StoreError};
use latchkey_types::Scope;
use sqlx::Row as _;

use crate::columns::Columns;
use crate::error::{from_json, map_err, to_json};
use crate::tokens::{Param, bind_params};
use crate::tx::SqlTx;

macro_rules! grant_columns {
    () => {
        "id, subject, client_id, scope, audience, accounts, session_access_token, session_id_token, remember, \
         remember_until, login_session_id, data, created_at, updated_at, last_used_at, revoked_at"
    };
}

pub(crate) fn grant_from_row(r: &impl Columns) -> Result<Grant, StoreError> {
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

/// What a consent does to the subject's active grant for the client, if there is one: it is
/// updated in place (see `GrantRepository::upsert_active`), and its id returned.
macro_rules! upsert_grant_tail {
    () => {
        "ON CONFLICT (subject, client_id) WHERE revoked_at IS NULL DO UPDATE SET \
         scope = excluded.scope, audience = excluded.audience, accounts = excluded.accounts, \
         session_access_token = excluded.session_access_token, \
         session_id_token = excluded.session_id_token, remember = excluded.remember, \
         remember_until = excluded.remember_until, login_session_id = excluded.login_session_id, \
         data = excluded.data, updated_at = excluded.updated_at RETURNING id"
    };
}
pub(crate) use {grant_columns, upsert_grant_tail};

/// Records a consent (see `GrantRepository::upsert_active`): a grant's columns in the order of
/// `grant_columns!`; the row's `id` comes back.
pub(crate) const UPSERT_GRANT: &str = concat!(
    "INSERT INTO grants (",
    grant_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ",
    upsert_grant_tail!()
);

/// A grant's parameters, in the order of [`UPSERT_GRANT`].
pub(crate) fn grant_params(g: &Grant) -> [Param<'_>; 16] {
    [
        Param::Text(Borrowed(g.id.as_str())),
        Param::Text(Borrowed(g.subject.as_str())),
        Param::Text(Borrowed(g.client_id.as_str())),
        Param::Text(Owned(g.scope.to_string())),
        Param::Text(Owned(to_json(&g.audience))),
        Param::Text(Owned(to_json(&g.accounts))),
        Param::Text(Owned(to_json(&g.session_access_token))),
        Param::Text(Owned(to_json(&g.session_id_token))),
        Param::Int(i64::from(g.remember)),
        Param::OptInt(g.remember_until),
        Param::OptText(g.login_session_id.as_deref()),
        Param::Text(Owned(to_json(&g.data))),
        Param::Int(g.created_at),
        Param::Int(g.updated_at),
        Param::OptInt(g.last_used_at),
        Param::OptInt(g.revoked_at),
    ]
}

/// The subject's (`$1`) unrevoked grant for the client `$2`.
pub(crate) const ACTIVE_GRANT: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM grants WHERE subject = $1 AND client_id = $2 AND revoked_at IS NULL"
);

/// Records that a grant was used, if it is not revoked: `$1` its id, `$2` now.
pub(crate) const TOUCH_GRANT: &str =
    "UPDATE grants SET last_used_at = $2 WHERE id = $1 AND revoked_at IS NULL";

#[async_trait]
impl GrantRepository for SqlTx {
    async fn upsert_active(&mut self, g: &Grant) -> Result<String, StoreError> {
        let row = bind_params(sqlx::query(UPSERT_GRANT), grant_params(g))
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
        let row = sqlx::query(ACTIVE_GRANT)
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
