//! Login sessions and client assertion ids.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::LoginSession;
use latchkey_core::store::{ClientAssertionRepository, LoginSessionRepository, StoreError};

use crate::sql::{Columns, from_json, params, to_json};
use crate::tx::SqlTx;

macro_rules! session_columns {
    () => {
        "id, cookie_hash, subject, authenticated_at, remember, data, created_at, expires_at, last_active_at"
    };
}

fn session_from_row(r: &dyn Columns) -> Result<LoginSession, StoreError> {
    Ok(LoginSession {
        id: r.text("id")?,
        cookie_hash: r.text("cookie_hash")?,
        subject: r.text("subject")?,
        authenticated_at: r.int("authenticated_at")?,
        remember: r.int("remember")? != 0,
        data: from_json("data", &r.text("data")?)?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        last_active_at: r.opt_int("last_active_at")?,
    })
}

#[async_trait]
impl LoginSessionRepository for SqlTx<'_> {
    async fn insert(&mut self, s: &LoginSession) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO login_sessions (",
                session_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            params![
                &s.id,
                &s.cookie_hash,
                &s.subject,
                s.authenticated_at,
                s.remember,
                to_json(&s.data),
                s.created_at,
                s.expires_at,
                s.last_active_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn by_cookie(
        &mut self,
        cookie_hash: &str,
        now: UnixTime,
    ) -> Result<Option<LoginSession>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                session_columns!(),
                " FROM login_sessions WHERE cookie_hash = $1 AND expires_at > $2"
            ),
            params![cookie_hash, now],
            session_from_row,
        )
        .await
    }

    async fn get(&mut self, id: &str) -> Result<Option<LoginSession>, StoreError> {
        self.optional(
            concat!(
                "SELECT ",
                session_columns!(),
                " FROM login_sessions WHERE id = $1"
            ),
            params![id],
            session_from_row,
        )
        .await
    }

    async fn extend(&mut self, id: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE login_sessions SET expires_at = $2 WHERE id = $1",
                params![id, expires_at],
            )
            .await?;
        Ok(done == 1)
    }

    async fn delete(&mut self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .execute("DELETE FROM login_sessions WHERE id = $1", params![id])
            .await?;
        Ok(done == 1)
    }

    async fn delete_by_subject(&mut self, subject: &str) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM login_sessions WHERE subject = $1",
            params![subject],
        )
        .await
    }

    async fn list_for_subject(&mut self, subject: &str) -> Result<Vec<LoginSession>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                session_columns!(),
                " FROM login_sessions WHERE subject = $1 ORDER BY created_at DESC, id DESC"
            ),
            params![subject],
            session_from_row,
        )
        .await
    }

    async fn touch(&mut self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE login_sessions SET last_active_at = $2 WHERE id = $1",
                params![id, now],
            )
            .await?;
        Ok(done == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_kind(latchkey_core::janitor::DeadKind::LoginSessions, now, limit)
            .await
    }
}

#[async_trait]
impl ClientAssertionRepository for SqlTx<'_> {
    async fn record_jti(
        &mut self,
        jti_hash: &str,
        client_id: &str,
        expires_at: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "INSERT INTO client_assertion_jtis (jti_hash, client_id, expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (jti_hash) DO NOTHING",
                params![jti_hash, client_id, expires_at],
            )
            .await?;
        Ok(done == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_kind(latchkey_core::janitor::DeadKind::AssertionIds, now, limit)
            .await
    }
}
