//! Flows through login and consent.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::flow::{FlowRecord, FlowState};
use latchkey_core::store::{FlowKey, FlowRepository, StoreError};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::error::{from_json, map_err, parse_enum, to_json};
use crate::tx::SqlTx;

macro_rules! flow_columns {
    () => {
        "id, client_id, state, login_challenge, login_verifier, consent_challenge, consent_verifier, csrf, \
         subject, data, requested_at, updated_at, expires_at"
    };
}

fn flow_from_row(r: &AnyRow) -> Result<FlowRecord, StoreError> {
    let state: String = r.try_get("state").map_err(map_err)?;
    let data: String = r.try_get("data").map_err(map_err)?;
    Ok(FlowRecord {
        id: r.try_get("id").map_err(map_err)?,
        client_id: r.try_get("client_id").map_err(map_err)?,
        state: parse_enum("state", &state, FlowState::parse)?,
        login_challenge: r.try_get("login_challenge").map_err(map_err)?,
        login_verifier: r.try_get("login_verifier").map_err(map_err)?,
        consent_challenge: r.try_get("consent_challenge").map_err(map_err)?,
        consent_verifier: r.try_get("consent_verifier").map_err(map_err)?,
        csrf: r.try_get("csrf").map_err(map_err)?,
        subject: r.try_get("subject").map_err(map_err)?,
        data: from_json("data", &data)?,
        requested_at: r.try_get("requested_at").map_err(map_err)?,
        updated_at: r.try_get("updated_at").map_err(map_err)?,
        expires_at: r.try_get("expires_at").map_err(map_err)?,
    })
}

#[async_trait]
impl FlowRepository for SqlTx {
    async fn insert(&mut self, f: &FlowRecord) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO flows (",
            flow_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(f.id.as_str())
        .bind(f.client_id.as_str())
        .bind(f.state.as_str())
        .bind(f.login_challenge.as_str())
        .bind(f.login_verifier.as_deref())
        .bind(f.consent_challenge.as_deref())
        .bind(f.consent_verifier.as_deref())
        .bind(f.csrf.as_str())
        .bind(f.subject.as_deref())
        .bind(to_json(&f.data))
        .bind(f.requested_at)
        .bind(f.updated_at)
        .bind(f.expires_at)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find(&mut self, key: FlowKey, hash: &str) -> Result<Option<FlowRecord>, StoreError> {
        let sql = match key {
            FlowKey::LoginChallenge => concat!(
                "SELECT ",
                flow_columns!(),
                " FROM flows WHERE login_challenge = $1"
            ),
            FlowKey::LoginVerifier => concat!(
                "SELECT ",
                flow_columns!(),
                " FROM flows WHERE login_verifier = $1"
            ),
            FlowKey::ConsentChallenge => concat!(
                "SELECT ",
                flow_columns!(),
                " FROM flows WHERE consent_challenge = $1"
            ),
            FlowKey::ConsentVerifier => concat!(
                "SELECT ",
                flow_columns!(),
                " FROM flows WHERE consent_verifier = $1"
            ),
        };
        let row = sqlx::query(sql)
            .bind(hash)
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        row.as_ref().map(flow_from_row).transpose()
    }

    async fn transition(&mut self, f: &FlowRecord, from: FlowState) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE flows SET state = $2, login_verifier = $3, consent_challenge = $4, consent_verifier = $5, \
             subject = $6, data = $7, updated_at = $8 WHERE id = $1 AND state = $9",
        )
        .bind(f.id.as_str())
        .bind(f.state.as_str())
        .bind(f.login_verifier.as_deref())
        .bind(f.consent_challenge.as_deref())
        .bind(f.consent_verifier.as_deref())
        .bind(f.subject.as_deref())
        .bind(to_json(&f.data))
        .bind(f.updated_at)
        .bind(from.as_str())
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_rows("flows", "id", now, limit).await
    }
}
