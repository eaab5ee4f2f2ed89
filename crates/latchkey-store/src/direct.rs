//! Writes through a rusqlite connection, for the SQLite writer thread (`group_commit.rs`).
//!
//! Each function here is the rusqlite twin of a repository method of the sqlx path, and runs the
//! same SQL with the same parameters (the constants and parameter lists beside those methods).
//! Parameters are bound by name (`$1`, …), so a statement that names them out of order still
//! binds each where the sqlx path does.

use std::borrow::Cow::Borrowed;

use latchkey_core::audit::AuditEntry;
use latchkey_core::client::cache::ClientGuard;
use latchkey_core::clock::UnixTime;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::flow::FlowRecord;
use latchkey_core::oauth::records::Grant;
use latchkey_core::oauth::records::{AccessTokenRecord, RefreshTokenRecord};
use latchkey_core::store::{
    ActiveClient, ConsentCompleted, ConsentCompletion, Exchange, Exchanged, FlowStep, Rotation,
    StoreError,
};
use rusqlite::{CachedStatement, Connection};

use crate::audit::{INSERT_AUDIT, audit_params};
use crate::clients::{self, CLIENT_ACTIVE, GUARD_HOLDS};
use crate::columns::Columns as _;
use crate::flows::{INSERT_FLOW, TRANSITION_FLOW, flow_params, transition_params};
use crate::grants::{TOUCH_GRANT, UPSERT_GRANT, grant_params};
use crate::inline_reader::db_err;
use crate::sessions::{INSERT_SESSION, session_params};
use crate::tokens::{
    CLAIM_REFRESH, CONSUME_CODE, INSERT_ACCESS, INSERT_CODE, INSERT_REFRESH, Param, REVOKE_ACCESS,
    REVOKE_FAMILY_ACCESS, REVOKE_FAMILY_REFRESH, SET_SUCCESSOR, access_params, code_params,
    guard_params, refresh_params,
};

/// The names of the parameters, `$1` to `$16`.
const NAMES: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16",
];

/// Binds one parameter at `index` (from 1).
pub(crate) fn bind(
    statement: &mut CachedStatement<'_>,
    index: usize,
    param: &Param<'_>,
) -> Result<(), StoreError> {
    match param {
        Param::Text(v) => statement.raw_bind_parameter(index, v.as_ref()),
        Param::OptText(v) => statement.raw_bind_parameter(index, v),
        Param::Int(v) => statement.raw_bind_parameter(index, v),
        Param::OptInt(v) => statement.raw_bind_parameter(index, v),
    }
    .map_err(db_err)
}

/// A prepared statement with `$1`, `$2`, … bound to `params`, in order.
fn statement<'c, 'p>(
    conn: &'c Connection,
    sql: &str,
    params: impl IntoIterator<Item = Param<'p>>,
) -> Result<CachedStatement<'c>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db_err)?;
    for (i, param) in params.into_iter().enumerate() {
        let name = NAMES
            .get(i)
            .ok_or_else(|| StoreError::Database(format!("too many parameters for: {sql}")))?;
        let index = statement
            .parameter_index(name)
            .map_err(db_err)?
            .ok_or_else(|| StoreError::Database(format!("no parameter {name} in: {sql}")))?;
        bind(&mut statement, index, &param)?;
    }
    Ok(statement)
}

/// Runs a statement that returns no rows; the number of rows it changed.
fn execute<'p>(
    conn: &Connection,
    sql: &str,
    params: impl IntoIterator<Item = Param<'p>>,
) -> Result<usize, StoreError> {
    statement(conn, sql, params)?.raw_execute().map_err(db_err)
}

/// A query's first row, decoded; `None` when it returns none.
fn first_row<'p, T>(
    conn: &Connection,
    sql: &str,
    params: impl IntoIterator<Item = Param<'p>>,
    decode: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = statement(conn, sql, params)?;
    let mut rows = statement.raw_query();
    rows.next().map_err(db_err)?.map(decode).transpose()
}

/// Whether a query returns a row.
fn exists<'p>(
    conn: &Connection,
    sql: &str,
    params: impl IntoIterator<Item = Param<'p>>,
) -> Result<bool, StoreError> {
    Ok(first_row(conn, sql, params, |_| Ok(()))?.is_some())
}

fn text(v: &str) -> Param<'_> {
    Param::Text(Borrowed(v))
}

/// `ClientRepository::guard_holds`.
pub(crate) fn guard_holds(
    conn: &Connection,
    guard: &ClientGuard,
    now: UnixTime,
) -> Result<bool, StoreError> {
    exists(conn, GUARD_HOLDS, guard_params(guard, now))
}

/// `TokenRepository::revoke_access`.
fn revoke_access(conn: &Connection, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
    Ok(execute(conn, REVOKE_ACCESS, [text(hash.as_str()), Param::Int(now)])? == 1)
}

/// `AuditRepository::append`.
fn append_audit(conn: &Connection, e: &AuditEntry) -> Result<(), StoreError> {
    execute(conn, INSERT_AUDIT, audit_params(e))?;
    Ok(())
}

/// [`latchkey_core::store::write_revocation`], statement for statement.
pub(crate) fn write_revocation(
    conn: &Connection,
    hash: &TokenHash,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    let revoked = revoke_access(conn, hash, now)?;
    if revoked {
        append_audit(conn, audit)?;
    }
    Ok(revoked)
}

/// [`latchkey_core::store::write_family_revocation`], statement for statement.
pub(crate) fn write_family_revocation(
    conn: &Connection,
    family_id: &str,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    let mut revoked = 0;
    for sql in [REVOKE_FAMILY_ACCESS, REVOKE_FAMILY_REFRESH] {
        revoked += execute(conn, sql, [text(family_id), Param::Int(now)])?;
    }
    if revoked > 0 {
        append_audit(conn, audit)?;
    }
    Ok(revoked > 0)
}

/// `TokenRepository::claim_refresh`.
fn claim_refresh(conn: &Connection, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
    Ok(execute(conn, CLAIM_REFRESH, [text(hash.as_str()), Param::Int(now)])? == 1)
}

/// `GrantRepository::touch`.
fn touch_grant(conn: &Connection, id: &str, now: UnixTime) -> Result<bool, StoreError> {
    Ok(execute(conn, TOUCH_GRANT, [text(id), Param::Int(now)])? == 1)
}

/// `TokenRepository::insert_access`.
fn insert_access(conn: &Connection, t: &AccessTokenRecord) -> Result<(), StoreError> {
    execute(conn, INSERT_ACCESS, access_params(t))?;
    Ok(())
}

/// `TokenRepository::insert_refresh`.
fn insert_refresh(conn: &Connection, t: &RefreshTokenRecord) -> Result<(), StoreError> {
    execute(conn, INSERT_REFRESH, refresh_params(t))?;
    Ok(())
}

/// `TokenRepository::set_successor`.
fn set_successor(conn: &Connection, hash: &TokenHash, successor: &str) -> Result<(), StoreError> {
    execute(conn, SET_SUCCESSOR, [text(hash.as_str()), text(successor)])?;
    Ok(())
}

/// `CodeRepository::consume`.
fn consume_code(conn: &Connection, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
    Ok(execute(conn, CONSUME_CODE, [text(hash.as_str()), Param::Int(now)])? == 1)
}

/// [`latchkey_core::store::write_exchange`], statement for statement.
pub(crate) fn write_exchange(
    conn: &Connection,
    e: &Exchange,
    now: UnixTime,
) -> Result<Exchanged, StoreError> {
    if !consume_code(conn, &e.code, now)? {
        return Ok(Exchanged::CodeUsed);
    }
    if !touch_grant(conn, &e.grant_id, now)? {
        return Ok(Exchanged::GrantRevoked);
    }
    insert_access(conn, &e.access)?;
    if let Some(refresh) = &e.refresh {
        insert_refresh(conn, refresh)?;
    }
    Ok(Exchanged::Written)
}

/// `FlowRepository::insert`.
pub(crate) fn insert_flow(conn: &Connection, f: &FlowRecord) -> Result<(), StoreError> {
    execute(conn, INSERT_FLOW, flow_params(f))?;
    Ok(())
}

/// [`latchkey_core::store::write_flow_step`], statement for statement.
pub(crate) fn write_flow_step(conn: &Connection, step: &FlowStep) -> Result<bool, StoreError> {
    if execute(
        conn,
        TRANSITION_FLOW,
        transition_params(&step.flow, step.from),
    )? != 1
    {
        return Ok(false);
    }
    if let Some(session) = &step.session {
        execute(conn, INSERT_SESSION, session_params(session))?;
    }
    Ok(true)
}

/// `ClientRepository::active`.
fn active_client(conn: &Connection, id: &str) -> Result<Option<ActiveClient>, StoreError> {
    first_row(conn, CLIENT_ACTIVE, [text(id)], |row| {
        clients::active_client(row)
    })
}

/// `GrantRepository::upsert_active`: the id of the grant written.
fn upsert_grant(conn: &Connection, g: &Grant) -> Result<String, StoreError> {
    first_row(conn, UPSERT_GRANT, grant_params(g), |row| row.text("id"))?
        .ok_or_else(|| StoreError::Database("the grant upsert returned no row".into()))
}

/// [`latchkey_core::store::write_consent`], statement for statement.
pub(crate) fn write_consent(
    conn: &Connection,
    c: &ConsentCompletion,
) -> Result<ConsentCompleted, StoreError> {
    let Some(client) = active_client(conn, &c.grant.client_id)? else {
        return Ok(ConsentCompleted::ClientGone);
    };
    if !write_flow_step(conn, &c.step)? {
        return Ok(ConsentCompleted::FlowUsed);
    }
    let grant_id = upsert_grant(conn, &c.grant)?;
    execute(conn, INSERT_CODE, code_params(&c.code_of(&grant_id)))?;
    append_audit(conn, &c.audit_of(&grant_id, client.owner_account_id))?;
    Ok(ConsentCompleted::Written { grant_id })
}

/// [`latchkey_core::store::write_rotation`], statement for statement.
pub(crate) fn write_rotation(
    conn: &Connection,
    r: &Rotation,
    now: UnixTime,
) -> Result<bool, StoreError> {
    if !claim_refresh(conn, &r.hash, now)? {
        return Ok(false);
    }
    if let Some(grant_id) = &r.grant_id {
        touch_grant(conn, grant_id, now)?;
    }
    insert_access(conn, &r.access)?;
    if let Some(refresh) = &r.refresh {
        insert_refresh(conn, refresh)?;
    }
    set_successor(conn, &r.hash, &r.successor)?;
    Ok(true)
}
