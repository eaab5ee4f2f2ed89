//! Logout requests, the apps of each login session, and the back-channel logout outbox.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::logout::{
    BackchannelDelivery, LogoutKey, LogoutRecord, LogoutState, Participant,
};
use latchkey_core::store::{LogoutRepository, StoreError};

use crate::sql::{Columns, from_json, params, parse_enum, to_json};
use crate::tx::SqlTx;

macro_rules! request_columns {
    () => {
        "id, state, challenge, verifier, csrf, subject, sid, client_id, data, requested_at, expires_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "id, client_id, uri, subject, sid, include_sid, attempts, next_attempt_at, delivered_at, \
         last_error, created_at"
    };
}

fn request_from_row(r: &dyn Columns) -> Result<LogoutRecord, StoreError> {
    Ok(LogoutRecord {
        id: r.text("id")?,
        state: parse_enum("state", &r.text("state")?, LogoutState::parse)?,
        challenge: r.text("challenge")?,
        verifier: r.opt_text("verifier")?,
        csrf: r.text("csrf")?,
        subject: r.text("subject")?,
        sid: r.text("sid")?,
        client_id: r.opt_text("client_id")?,
        data: from_json("data", &r.text("data")?)?,
        requested_at: r.int("requested_at")?,
        expires_at: r.int("expires_at")?,
    })
}

fn delivery_from_row(r: &dyn Columns) -> Result<BackchannelDelivery, StoreError> {
    Ok(BackchannelDelivery {
        id: r.text("id")?,
        client_id: r.text("client_id")?,
        uri: r.text("uri")?,
        subject: r.text("subject")?,
        sid: r.text("sid")?,
        include_sid: r.int("include_sid")? != 0,
        attempts: r.int("attempts")?,
        next_attempt_at: r.opt_int("next_attempt_at")?,
        delivered_at: r.opt_int("delivered_at")?,
        last_error: r.opt_text("last_error")?,
        created_at: r.int("created_at")?,
    })
}

fn participant_from_row(r: &dyn Columns) -> Result<Participant, StoreError> {
    Ok(Participant {
        client_id: r.text("client_id")?,
        client_name: r.text("client_name")?,
        channels: from_json("logout_channels", &r.text("logout_channels")?)?,
    })
}

#[async_trait]
impl LogoutRepository for SqlTx<'_> {
    async fn insert_request(&mut self, q: &LogoutRecord) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO logout_requests (",
                request_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            params![
                &q.id,
                q.state.as_str(),
                &q.challenge,
                q.verifier.as_deref(),
                &q.csrf,
                &q.subject,
                &q.sid,
                q.client_id.as_deref(),
                to_json(&q.data),
                q.requested_at,
                q.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn find_request(
        &mut self,
        key: LogoutKey,
        hash: &str,
    ) -> Result<Option<LogoutRecord>, StoreError> {
        let sql = match key {
            LogoutKey::Challenge => concat!(
                "SELECT ",
                request_columns!(),
                " FROM logout_requests WHERE challenge = $1"
            ),
            LogoutKey::Verifier => concat!(
                "SELECT ",
                request_columns!(),
                " FROM logout_requests WHERE verifier = $1"
            ),
        };
        self.optional(sql, params![hash], request_from_row).await
    }

    async fn transition_request(
        &mut self,
        q: &LogoutRecord,
        from: LogoutState,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE logout_requests SET state = $2, verifier = $3 WHERE id = $1 AND state = $4",
                params![
                    &q.id,
                    q.state.as_str(),
                    q.verifier.as_deref(),
                    from.as_str()
                ],
            )
            .await?;
        Ok(done == 1)
    }

    async fn join_session(
        &mut self,
        sid: &str,
        client_id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO login_session_clients (session_id, client_id, joined_at) \
             VALUES ($1, $2, $3) ON CONFLICT (session_id, client_id) DO NOTHING",
            params![sid, client_id, now],
        )
        .await?;
        Ok(())
    }

    async fn participants(&mut self, sid: &str) -> Result<Vec<Participant>, StoreError> {
        self.all(
            "SELECT c.id AS client_id, c.client_name AS client_name, \
             c.logout_channels AS logout_channels FROM login_session_clients j \
             JOIN clients c ON c.id = j.client_id WHERE j.session_id = $1 \
             ORDER BY j.joined_at, c.id",
            params![sid],
            participant_from_row,
        )
        .await
    }

    async fn forget_session(&mut self, sid: &str) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM login_session_clients WHERE session_id = $1",
            params![sid],
        )
        .await
    }

    async fn enqueue(&mut self, d: &BackchannelDelivery) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO backchannel_logouts (",
                delivery_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            params![
                &d.id,
                &d.client_id,
                &d.uri,
                &d.subject,
                &d.sid,
                d.include_sid,
                d.attempts,
                d.next_attempt_at,
                d.delivered_at,
                d.last_error.as_deref(),
                d.created_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn due(
        &mut self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<BackchannelDelivery>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM backchannel_logouts WHERE next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT $2"
            ),
            params![now, limit],
            delivery_from_row,
        )
        .await
    }

    async fn claim(
        &mut self,
        d: &BackchannelDelivery,
        until: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE backchannel_logouts SET next_attempt_at = $2 \
                 WHERE id = $1 AND next_attempt_at = $3 AND attempts = $4",
                params![&d.id, until, d.next_attempt_at, d.attempts],
            )
            .await?;
        Ok(done == 1)
    }

    async fn record_attempt(&mut self, d: &BackchannelDelivery) -> Result<(), StoreError> {
        self.execute(
            "UPDATE backchannel_logouts SET attempts = $2, next_attempt_at = $3, \
             delivered_at = $4, last_error = $5 WHERE id = $1",
            params![
                &d.id,
                d.attempts,
                d.next_attempt_at,
                d.delivered_at,
                d.last_error.as_deref(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn deliveries(&mut self, sid: &str) -> Result<Vec<BackchannelDelivery>, StoreError> {
        self.all(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM backchannel_logouts WHERE sid = $1 ORDER BY id"
            ),
            params![sid],
            delivery_from_row,
        )
        .await
    }
}
