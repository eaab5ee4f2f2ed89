//! Login sessions and client assertion ids.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::LoginSession;
use latchkey_core::store::{ClientAssertionRepository, LoginSessionRepository, StoreError};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{from_json, map_err, to_json};
use crate::tokens::{Param, bind_params};
use crate::tx::SqlTx;

macro_rules! session_columns {
    () => {
        "id, cookie_hash, subject, authenticated_at, remember, data, created_at, expires_at"
    };
}
pub(crate) use session_columns;

fn session_from_row(r: &AnyRow) -> Result<LoginSession, StoreError> {
    let data: String = r.try_get("data").map_err(map_err)?;
    Ok(LoginSession {
        id: r.try_get("id").map_err(map_err)?,
        cookie_hash: r.try_get("cookie_hash").map_err(map_err)?,
        subject: r.try_get("subject").map_err(map_err)?,
        authenticated_at: r.try_get("authenticated_at").map_err(map_err)?,
        remember: r.try_get::<i64, _>("remember").map_err(map_err)? != 0,
        data: from_json("data", &data)?,
        created_at: r.try_get("created_at").map_err(map_err)?,
        expires_at: r.try_get("expires_at").map_err(map_err)?,
    })
}

/// Inserts a login session: its columns in the order of `session_columns!`.
pub(crate) const INSERT_SESSION: &str = concat!(
    "INSERT INTO login_sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);

/// A login session's parameters, in the order of [`INSERT_SESSION`].
pub(crate) fn session_params(s: &LoginSession) -> [Param<'_>; 8] {
    use std::borrow::Cow::{Borrowed, Owned};
    [
        Param::Text(Borrowed(s.id.as_str())),
        Param::Text(Borrowed(s.cookie_hash.as_str())),
        Param::Text(Borrowed(s.subject.as_str())),
        Param::Int(s.authenticated_at),
        Param::Int(i64::from(s.remember)),
        Param::Text(Owned(to_json(&s.data))),
        Param::Int(s.created_at),
        Param::Int(s.expires_at),
    ]
}

#[async_trait]
impl LoginSessionRepository for SqlTx {
    async fn insert(&mut self, s: &LoginSession) -> Result<(), StoreError> {
        bind_params(sqlx::query(INSERT_SESSION), session_params(s))
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn by_cookie(
        &mut self,
        cookie_hash: &str,
        now: UnixTime,
    ) -> Result<Option<LoginSession>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM login_sessions WHERE cookie_hash = $1 AND expires_at > $2"
        ))
        .bind(cookie_hash)
        .bind(now)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn get(&mut self, id: &str) -> Result<Option<LoginSession>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM login_sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn extend(&mut self, id: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE login_sessions SET expires_at = $2 WHERE id = $1")
            .bind(id)
            .bind(expires_at)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM login_sessions WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_by_subject(&mut self, subject: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_sessions WHERE subject = $1")
            .bind(subject)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_rows("login_sessions", "id", now, limit)
            .await
    }
}

#[async_trait]
impl ClientAssertionRepository for SqlTx {
    async fn record_jti(
        &mut self,
        jti_hash: &str,
        client_id: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO client_assertion_jtis (jti_hash, client_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti_hash) DO NOTHING",
        )
        .bind(jti_hash)
        .bind(client_id)
        .bind(expires_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_rows("client_assertion_jtis", "jti_hash", now, limit)
            .await
    }
}
