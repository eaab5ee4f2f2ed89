//! Flows through login and consent.

use std::borrow::Cow::{Borrowed, Owned};

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::flow::{FlowRecord, FlowState};
use latchkey_core::store::{FlowKey, FlowRepository, StoreError};
use sqlx::AnyConnection;

use crate::columns::Columns;
use crate::error::{from_json, map_err, parse_enum, to_json};
use crate::tokens::{Param, bind_params};
use crate::tx::SqlTx;

macro_rules! flow_columns {
    () => {
        "id, client_id, state, login_challenge, login_verifier, consent_challenge, consent_verifier, csrf, \
         subject, data, requested_at, updated_at, expires_at"
    };
}

pub(crate) fn flow_from_row(r: &impl Columns) -> Result<FlowRecord, StoreError> {
    Ok(FlowRecord {
        id: r.text("id")?,
        client_id: r.text("client_id")?,
        state: parse_enum("state", &r.text("state")?, FlowState::parse)?,
        login_challenge: r.text("login_challenge")?,
        login_verifier: r.opt_text("login_verifier")?,
        consent_challenge: r.opt_text("consent_challenge")?,
        consent_verifier: r.opt_text("consent_verifier")?,
        csrf: r.text("csrf")?,
        subject: r.opt_text("subject")?,
        data: from_json("data", &r.text("data")?)?,
        requested_at: r.int("requested_at")?,
        updated_at: r.int("updated_at")?,
        expires_at: r.int("expires_at")?,
    })
}

/// Inserts a flow: its columns in the order of `flow_columns!`.
pub(crate) const INSERT_FLOW: &str = concat!(
    "INSERT INTO flows (",
    flow_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

/// A flow's parameters, in the order of [`INSERT_FLOW`].
pub(crate) fn flow_params(f: &FlowRecord) -> [Param<'_>; 13] {
    [
        Param::Text(Borrowed(f.id.as_str())),
        Param::Text(Borrowed(f.client_id.as_str())),
        Param::Text(Borrowed(f.state.as_str())),
        Param::Text(Borrowed(f.login_challenge.as_str())),
        Param::OptText(f.login_verifier.as_deref()),
        Param::OptText(f.consent_challenge.as_deref()),
        Param::OptText(f.consent_verifier.as_deref()),
        Param::Text(Borrowed(f.csrf.as_str())),
        Param::OptText(f.subject.as_deref()),
        Param::Text(Owned(to_json(&f.data))),
        Param::Int(f.requested_at),
        Param::Int(f.updated_at),
        Param::Int(f.expires_at),
    ]
}

/// Writes a flow's new state only if it is still in state `$9` (see
/// `FlowRepository::transition`).
pub(crate) const TRANSITION_FLOW: &str = "UPDATE flows SET state = $2, login_verifier = $3, \
     consent_challenge = $4, consent_verifier = $5, subject = $6, data = $7, updated_at = $8 \
     WHERE id = $1 AND state = $9";

/// The parameters of [`TRANSITION_FLOW`].
pub(crate) fn transition_params(f: &FlowRecord, from: FlowState) -> [Param<'_>; 9] {
    [
        Param::Text(Borrowed(f.id.as_str())),
        Param::Text(Borrowed(f.state.as_str())),
        Param::OptText(f.login_verifier.as_deref()),
        Param::OptText(f.consent_challenge.as_deref()),
        Param::OptText(f.consent_verifier.as_deref()),
        Param::OptText(f.subject.as_deref()),
        Param::Text(Owned(to_json(&f.data))),
        Param::Int(f.updated_at),
        Param::Text(Borrowed(from.as_str())),
    ]
}

/// A flow by the hash of one of its bearer values: `$1`.
pub(crate) fn flow_by(key: FlowKey) -> &'static str {
    match key {
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
    }
}

/// Inserts a flow on `conn`, outside any explicit transaction (PostgreSQL: one round trip).
pub(crate) async fn insert_flow(
    conn: &mut AnyConnection,
    f: &FlowRecord,
) -> Result<(), StoreError> {
    bind_params(sqlx::query(INSERT_FLOW), flow_params(f))
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// [`TRANSITION_FLOW`] on `conn`, outside any explicit transaction; whether it was made.
pub(crate) async fn transition_flow(
    conn: &mut AnyConnection,
    f: &FlowRecord,
    from: FlowState,
) -> Result<bool, StoreError> {
    let done = bind_params(sqlx::query(TRANSITION_FLOW), transition_params(f, from))
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl FlowRepository for SqlTx {
    async fn insert(&mut self, f: &FlowRecord) -> Result<(), StoreError> {
        insert_flow(self.conn(), f).await
    }

    async fn find(&mut self, key: FlowKey, hash: &str) -> Result<Option<FlowRecord>, StoreError> {
        let row = sqlx::query(flow_by(key))
            .bind(hash)
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        row.as_ref().map(flow_from_row).transpose()
    }

    async fn transition(&mut self, f: &FlowRecord, from: FlowState) -> Result<bool, StoreError> {
        transition_flow(self.conn(), f, from).await
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_rows("flows", "id", now, limit).await
    }
}
