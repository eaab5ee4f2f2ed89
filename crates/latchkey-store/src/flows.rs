//! Flows through login and consent.

use std::borrow::Cow::{Borrowed, Owned};

use async_trait::async_trait;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::flow::{FlowRecord, FlowState};
use latchkey_core::store::{
    ConsentCompleted, ConsentCompletion, FlowKey, FlowRepository, FlowStep, StoreError,
};
use sqlx::{AnyConnection, Row as _};

use crate::audit::{AUDIT_ACCOUNT_ID, AUDIT_TARGET_ID, audit_params, insert_audit_head};
use crate::columns::Columns;
use crate::error::{from_json, map_err, parse_enum, to_json};
use crate::grants::{grant_columns, grant_params, upsert_grant_tail};
use crate::sessions::{session_columns, session_params};
use crate::tokens::{CODE_GRANT_ID, Param, bind_params, code_params};
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

macro_rules! transition_flow {
    () => {
        "UPDATE flows SET state = $2, login_verifier = $3, consent_challenge = $4, \
         consent_verifier = $5, subject = $6, data = $7, updated_at = $8 \
         WHERE id = $1 AND state = $9"
    };
}

/// Writes a flow's new state only if it is still in state `$9` (see
/// `FlowRepository::transition`).
pub(crate) const TRANSITION_FLOW: &str = transition_flow!();

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

/// A flow step that creates a login session, on PostgreSQL as one statement: the step
/// ([`TRANSITION_FLOW`], `$1`–`$9`), then only if it was made the session (`$10`–`$17`).
const STEP_WITH_SESSION: &str = concat!(
    "WITH step AS (",
    transition_flow!(),
    " RETURNING id), s AS (INSERT INTO login_sessions (",
    session_columns!(),
    ") SELECT $10, $11, $12, $13, $14, $15, $16, $17 FROM step) \
     SELECT count(*) AS step FROM step"
);

/// A flow step on PostgreSQL, outside any explicit transaction: one statement, one round trip.
pub(crate) async fn advance_flow(
    conn: &mut AnyConnection,
    step: &FlowStep,
) -> Result<bool, StoreError> {
    let Some(session) = &step.session else {
        return transition_flow(conn, &step.flow, step.from).await;
    };
    let params = transition_params(&step.flow, step.from)
        .into_iter()
        .chain(session_params(session));
    let row = bind_params(sqlx::query(STEP_WITH_SESSION), params)
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    Ok(row.try_get::<i64, _>("step").map_err(map_err)? == 1)
}

/// A consent's completion on PostgreSQL, as one statement: one round trip, one implicit
/// transaction. What `write_consent` (in `latchkey_core::store`) does statement by statement,
/// the data-modifying `WITH` clauses do here, each only if the one before it found or wrote its
/// row: the client `$10` still active, the flow's step ([`TRANSITION_FLOW`], `$1`–`$9`), the
/// grant (`$11`–`$26`, upserted as [`UPSERT_GRANT`] does), the code (`$27`–`$33`, its grant the
/// one written) and the audit entry (`$34`–`$40`, about that grant, in the client's account).
///
/// [`UPSERT_GRANT`]: crate::grants::UPSERT_GRANT
const CONSENT_STATEMENT: &str = concat!(
    "WITH client AS (SELECT owner_account_id FROM clients WHERE id = $10 AND status = 'active'), \
     step AS (",
    transition_flow!(),
    " AND EXISTS (SELECT 1 FROM client) RETURNING id), g AS (INSERT INTO grants (",
    grant_columns!(),
    ") SELECT $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26 \
     WHERE EXISTS (SELECT 1 FROM step) ",
    upsert_grant_tail!(),
    "), code AS (INSERT INTO authorization_codes (code_hash, client_id, grant_id, family_id, \
     data, created_at, expires_at, consumed_at) \
     SELECT $27, $28, g.id, $29, $30, $31, $32, $33 FROM g), \
     entry AS (",
    insert_audit_head!(),
    "SELECT $34, $35, $36, $37, client.owner_account_id, $38, $39, g.id, $40 FROM g, client) \
     SELECT (SELECT count(*) FROM client) AS client, (SELECT count(*) FROM step) AS step, \
     (SELECT id FROM g) AS grant_id"
);

/// Completes a consent on PostgreSQL with [`CONSENT_STATEMENT`].
pub(crate) async fn complete_consent(
    conn: &mut AnyConnection,
    c: &ConsentCompletion,
) -> Result<ConsentCompleted, StoreError> {
    // The code's and the entry's own parameters, without what the statement fills in: the grant
    // id, and the entry's account.
    let code = code_params(&c.code)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != CODE_GRANT_ID)
        .map(|(_, p)| p);
    let entry = audit_params(&c.audit)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != AUDIT_TARGET_ID && *i != AUDIT_ACCOUNT_ID)
        .map(|(_, p)| p);
    let params = transition_params(&c.step.flow, c.step.from)
        .into_iter()
        .chain([Param::Text(Borrowed(c.grant.client_id.as_str()))])
        .chain(grant_params(&c.grant))
        .chain(code)
        .chain(entry);
    let row = bind_params(sqlx::query(CONSENT_STATEMENT), params)
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    let count = |name: &str| row.try_get::<i64, _>(name).map_err(map_err);
    Ok(if count("client")? == 0 {
        ConsentCompleted::ClientGone
    } else if count("step")? == 0 {
        ConsentCompleted::FlowUsed
    } else {
        let grant_id = row.try_get::<String, _>("grant_id").map_err(map_err)?;
        ConsentCompleted::Written { grant_id }
    })
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
