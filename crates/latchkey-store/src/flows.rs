//! Flows through login and consent.

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::flow::{FlowRecord, FlowState};
use latchkey_core::store::{FlowKey, FlowRepository, StoreError};

use crate::sql::{Columns, from_json, params, parse_enum, to_json};
use crate::tx::SqlTx;

macro_rules! flow_columns {
    () => {
        "id, client_id, state, login_challenge, login_verifier, consent_challenge, consent_verifier, csrf, \
         subject, data, requested_at, updated_at, expires_at"
    };
}

fn flow_from_row(r: &dyn Columns) -> Result<FlowRecord, StoreError> {
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

/// A flow by the hash of one of its bearer values: `$1`.
fn flow_by(key: FlowKey) -> &'static str {
    macro_rules! by {
        ($column:literal) => {
            concat!(
                "SELECT ",
                flow_columns!(),
                " FROM flows WHERE ",
                $column,
                " = $1"
            )
        };
    }
    match key {
        FlowKey::LoginChallenge => by!("login_challenge"),
        FlowKey::LoginVerifier => by!("login_verifier"),
        FlowKey::ConsentChallenge => by!("consent_challenge"),
        FlowKey::ConsentVerifier => by!("consent_verifier"),
    }
}

#[async_trait]
impl FlowRepository for SqlTx<'_> {
    async fn insert(&mut self, f: &FlowRecord) -> Result<(), StoreError> {
        self.execute(
            concat!(
                "INSERT INTO flows (",
                flow_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            params![
                &f.id,
                &f.client_id,
                f.state.as_str(),
                &f.login_challenge,
                f.login_verifier.as_deref(),
                f.consent_challenge.as_deref(),
                f.consent_verifier.as_deref(),
                &f.csrf,
                f.subject.as_deref(),
                to_json(&f.data),
                f.requested_at,
                f.updated_at,
                f.expires_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn find(&mut self, key: FlowKey, hash: &str) -> Result<Option<FlowRecord>, StoreError> {
        self.optional(flow_by(key), params![hash], flow_from_row)
            .await
    }

    async fn transition(&mut self, f: &FlowRecord, from: FlowState) -> Result<bool, StoreError> {
        let done = self
            .execute(
                "UPDATE flows SET state = $2, login_verifier = $3, consent_challenge = $4, \
                 consent_verifier = $5, subject = $6, data = $7, updated_at = $8 \
                 WHERE id = $1 AND state = $9",
                params![
                    &f.id,
                    f.state.as_str(),
                    f.login_verifier.as_deref(),
                    f.consent_challenge.as_deref(),
                    f.consent_verifier.as_deref(),
                    f.subject.as_deref(),
                    to_json(&f.data),
                    f.updated_at,
                    from.as_str(),
                ],
            )
            .await?;
        Ok(done == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_kind(latchkey_core::janitor::DeadKind::Flows, now, limit)
            .await
    }
}
