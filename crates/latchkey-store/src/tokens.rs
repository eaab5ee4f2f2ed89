//! Authorization codes, access tokens and refresh tokens.

use async_trait::async_trait;
use latchkey_core::audit::AuditEntry;
use latchkey_core::client::cache::ClientGuard;
use latchkey_core::clock::UnixTime;
use latchkey_core::crypto::TokenHash;
use latchkey_core::oauth::records::{
    AccessTokenRecord, AuthorizationCode, RefreshTokenRecord, TokenLookup,
};
use latchkey_core::store::{
    CodeRepository, Exchange, Exchanged, Rotation, StoreError, TokenRepository,
};
use latchkey_types::Scope;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, Row as _};

use crate::audit::{audit_params, insert_audit_head};
use crate::clients::guard_holds;
use crate::columns::Columns;
use crate::error::{from_json, map_err, to_json};
use crate::tx::SqlTx;

fn scope(r: &impl Columns) -> Result<Scope, StoreError> {
    let s = r.text("scope")?;
    Scope::parse(&s).map_err(|e| StoreError::Corrupt(format!("scope: {e}")))
}

pub(crate) fn code_from_row(r: &impl Columns) -> Result<AuthorizationCode, StoreError> {
    Ok(AuthorizationCode {
        code_hash: TokenHash(r.text("code_hash")?),
        client_id: r.text("client_id")?,
        grant_id: r.text("grant_id")?,
        family_id: r.text("family_id")?,
        data: from_json("data", &r.text("data")?)?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        consumed_at: r.opt_int("consumed_at")?,
    })
}

/// Inserts an authorization code.
pub(crate) const INSERT_CODE: &str = "INSERT INTO authorization_codes (code_hash, client_id, \
     grant_id, family_id, data, created_at, expires_at, consumed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Where `grant_id` is in [`code_params`].
pub(crate) const CODE_GRANT_ID: usize = 2;

/// A code's parameters, in the order of [`INSERT_CODE`].
pub(crate) fn code_params(c: &AuthorizationCode) -> [Param<'_>; 8] {
    use std::borrow::Cow::{Borrowed, Owned};
    [
        Param::Text(Borrowed(c.code_hash.as_str())),
        Param::Text(Borrowed(c.client_id.as_str())),
        Param::Text(Borrowed(c.grant_id.as_str())),
        Param::Text(Borrowed(c.family_id.as_str())),
        Param::Text(Owned(to_json(&c.data))),
        Param::Int(c.created_at),
        Param::Int(c.expires_at),
        Param::OptInt(c.consumed_at),
    ]
}

/// An authorization code by its hash: `$1`.
pub(crate) const CODE_BY_HASH: &str = "SELECT code_hash, client_id, grant_id, family_id, data, \
     created_at, expires_at, consumed_at FROM authorization_codes WHERE code_hash = $1";

/// Marks a code used, if it is not: `$1` its hash, `$2` now.
pub(crate) const CONSUME_CODE: &str =
    "UPDATE authorization_codes SET consumed_at = $2 WHERE code_hash = $1 AND consumed_at IS NULL";

#[async_trait]
impl CodeRepository for SqlTx {
    async fn insert(&mut self, c: &AuthorizationCode) -> Result<(), StoreError> {
        bind_params(sqlx::query(INSERT_CODE), code_params(c))
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get(&mut self, hash: &TokenHash) -> Result<Option<AuthorizationCode>, StoreError> {
        let row = sqlx::query(CODE_BY_HASH)
            .bind(hash.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        row.as_ref().map(code_from_row).transpose()
    }

    async fn consume(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(CONSUME_CODE)
            .bind(hash.as_str())
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        self.purge_expired_rows("authorization_codes", "code_hash", now, limit)
            .await
    }
}

macro_rules! access_columns {
    () => {
        "a.token_hash, a.client_id, a.grant_id, a.family_id, a.subject, a.scope, a.audience, a.data, a.issued_at, \
         a.expires_at, a.revoked_at"
    };
}

macro_rules! refresh_columns {
    () => {
        "a.token_hash, a.client_id, a.grant_id, a.family_id, a.subject, a.scope, a.audience, a.data, a.issued_at, \
         a.expires_at, a.used_at, a.reuse_count, a.successor, a.revoked_at"
    };
}

/// The state of what a token depends on, read in the same statement as the token.
macro_rules! dependency_columns {
    () => {
        "c.status AS client_status, g.revoked_at AS grant_revoked_at"
    };
}

/// `SELECT` a token of `$table` (its columns: the macro `$columns`) by its hash, with the state
/// of its client and grant.
macro_rules! by_hash {
    ($table:literal, $columns:ident) => {
        concat!(
            "SELECT ",
            $columns!(),
            ", ",
            dependency_columns!(),
            " FROM ",
            $table,
            " a JOIN clients c ON c.id = a.client_id \
             LEFT JOIN grants g ON g.id = a.grant_id WHERE a.token_hash = $1"
        )
    };
}

/// An access token by its hash, with the state of its client and grant.
pub(crate) const ACCESS_BY_HASH: &str = by_hash!("access_tokens", access_columns);

/// A refresh token by its hash, with the state of its client and grant.
pub(crate) const REFRESH_BY_HASH: &str = by_hash!("refresh_tokens", refresh_columns);

pub(crate) fn lookup<T>(r: &impl Columns, token: T) -> Result<TokenLookup<T>, StoreError> {
    let status = r.text("client_status")?;
    let grant_revoked = r.opt_int("grant_revoked_at")?;
    Ok(TokenLookup {
        token,
        client_active: status == "active",
        grant_revoked: grant_revoked.is_some(),
    })
}

pub(crate) fn access_from_row(r: &impl Columns) -> Result<AccessTokenRecord, StoreError> {
    Ok(AccessTokenRecord {
        token_hash: TokenHash(r.text("token_hash")?),
        client_id: r.text("client_id")?,
        grant_id: r.opt_text("grant_id")?,
        family_id: r.text("family_id")?,
        subject: r.text("subject")?,
        scope: scope(r)?,
        audience: from_json("audience", &r.text("audience")?)?,
        claims: from_json("data", &r.text("data")?)?,
        issued_at: r.int("issued_at")?,
        expires_at: r.int("expires_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

pub(crate) fn refresh_from_row(r: &impl Columns) -> Result<RefreshTokenRecord, StoreError> {
    Ok(RefreshTokenRecord {
        token_hash: TokenHash(r.text("token_hash")?),
        client_id: r.text("client_id")?,
        grant_id: r.opt_text("grant_id")?,
        family_id: r.text("family_id")?,
        subject: r.text("subject")?,
        scope: scope(r)?,
        audience: from_json("audience", &r.text("audience")?)?,
        claims: from_json("data", &r.text("data")?)?,
        issued_at: r.int("issued_at")?,
        expires_at: r.int("expires_at")?,
        used_at: r.opt_int("used_at")?,
        reuse_count: r.int("reuse_count")?,
        successor: r.opt_text("successor")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

/// Revokes one access token: `$1` its hash, `$2` now.
pub(crate) const REVOKE_ACCESS: &str =
    "UPDATE access_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL";

/// Revokes the access tokens of the family `$1` at `$2` that are not revoked yet.
pub(crate) const REVOKE_FAMILY_ACCESS: &str =
    "UPDATE access_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL";
/// Revokes the refresh tokens of the family `$1` at `$2` that are not revoked yet, dropping any
/// response kept for a retry.
pub(crate) const REVOKE_FAMILY_REFRESH: &str = "UPDATE refresh_tokens SET revoked_at = $2, \
     successor = NULL WHERE family_id = $1 AND revoked_at IS NULL";

/// Marks a refresh token used, if it is neither used nor revoked: `$1` its hash, `$2` now.
pub(crate) const CLAIM_REFRESH: &str = "UPDATE refresh_tokens SET used_at = $2 \
     WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL";

/// Keeps the (sealed) response of a rotation: `$1` the hash, `$2` the successor.
pub(crate) const SET_SUCCESSOR: &str =
    "UPDATE refresh_tokens SET successor = $2 WHERE token_hash = $1 AND revoked_at IS NULL";

macro_rules! insert_access_head {
    () => {
        "INSERT INTO access_tokens (token_hash, client_id, grant_id, family_id, subject, scope, \
         audience, data, issued_at, expires_at, revoked_at) "
    };
}

pub(crate) const INSERT_ACCESS_HEAD: &str = insert_access_head!();

pub(crate) const INSERT_ACCESS: &str = concat!(
    insert_access_head!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);

macro_rules! insert_refresh_head {
    () => {
        "INSERT INTO refresh_tokens (token_hash, client_id, grant_id, family_id, subject, scope, \
         audience, data, issued_at, expires_at, used_at, reuse_count, successor, revoked_at) "
    };
}

pub(crate) const INSERT_REFRESH: &str = concat!(
    insert_refresh_head!(),
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);

/// `touched`, a `WITH` clause of the code exchange and the refresh rotation: the grant of the row
/// that `$source` returned, marked used at `$4` unless it is revoked, and returned with its
/// `revoked_at` (those who read it keep the rows where that is null).
///
/// The grant is found by its primary key alone. With `revoked_at IS NULL` in the `WHERE` clause
/// instead, the partial index `grants_active_idx` (whose predicate that is) also qualifies, and
/// before the table's first `ANALYZE` PostgreSQL costs a walk of that whole index the same as the
/// key's lookup and may pick it, for as long as the connection keeps the prepared statement's
/// plan: every exchange then read every active grant, which made a young database cost more per
/// flow than one autovacuum had analysed. A revocation that commits while this statement waits
/// for the row is still seen: the `CASE` and `RETURNING` read the row's latest version.
macro_rules! touch_grant {
    ($source:literal) => {
        concat!(
            "touched AS (UPDATE grants SET last_used_at = \
             CASE WHEN revoked_at IS NULL THEN $4 ELSE last_used_at END \
             WHERE id = (SELECT grant_id FROM ",
            $source,
            ") RETURNING revoked_at)"
        )
    };
}

/// A code exchange on PostgreSQL, as one statement: one round trip, and one implicit transaction.
/// What `write_exchange` (in `latchkey_core::store`) does statement by statement, the
/// data-modifying `WITH` clauses do here, each only if the one before it wrote: `guard` (the
/// condition of `GUARD_HOLDS`, `$1`–`$4`), the code `$5` marked used, its grant marked used while
/// still granted, the access token (`$6`–`$16`), and with `refresh`, the refresh token
/// (`$17`–`$30`). The row says what each step found.
pub(crate) fn exchange_statement(refresh: bool) -> &'static str {
    macro_rules! exchange {
        ($($refresh:literal)?) => {
            concat!(
                "WITH guard AS (SELECT 1 FROM clients c WHERE ",
                guard_holds!(),
                "), consumed AS (UPDATE authorization_codes SET consumed_at = $4 \
                 WHERE code_hash = $5 AND consumed_at IS NULL AND EXISTS (SELECT 1 FROM guard) \
                 RETURNING grant_id), ",
                touch_grant!("consumed"),
                ", access AS (",
                insert_access_head!(),
                "SELECT $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16 FROM touched \
                 WHERE revoked_at IS NULL)",
                $(
                    ", refresh AS (",
                    insert_refresh_head!(),
                    $refresh,
                    " FROM touched WHERE revoked_at IS NULL)",
                )?
                " SELECT (SELECT count(*) FROM guard) AS guard, \
                 (SELECT count(*) FROM consumed) AS consumed, \
                 (SELECT count(*) FROM touched WHERE revoked_at IS NULL) AS touched"
            )
        };
    }
    if refresh {
        exchange!("SELECT $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30")
    } else {
        exchange!()
    }
}

/// Parameters of one guarded row: the 11 columns, then the guard's client id, `updated_at`,
/// secret id, and now.
pub(crate) const GUARDED_PARAMS: usize = 15;
/// About the length of one guarded row's SQL.
pub(crate) const GUARDED_ROW_LEN: usize = 420;

/// Appends `SELECT <the row> WHERE <the guard holds>` with parameters from `$(base + 1)`: the
/// condition of `guard_holds` in `clients.rs`, so that a client suspended or changed since it was
/// cached gets no token, on every replica.
pub(crate) fn guarded_row(sql: &mut String, base: usize) {
    use std::fmt::Write as _;
    let p = |i: usize| base + i;
    let _ = write!(
        sql,
        "SELECT ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${} WHERE EXISTS (SELECT 1 FROM clients c \
         WHERE c.id = ${} AND c.status = 'active' AND c.updated_at = ${} AND (${} IS NULL OR EXISTS \
         (SELECT 1 FROM client_secrets s WHERE s.client_id = c.id AND s.id = ${} \
         AND (s.expires_at IS NULL OR s.expires_at > ${}))))",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9),
        p(10),
        p(11),
        p(12),
        p(13),
        p(14),
        p(14),
        p(15),
    );
}

/// One bound parameter, for either driver.
pub(crate) enum Param<'a> {
    Text(std::borrow::Cow<'a, str>),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
}

/// The columns access and refresh tokens share, then `$rest`: a token's parameters, in the order
/// of its insert.
macro_rules! token_params {
    ($t:expr; $($rest:expr),+ $(,)?) => {{
        use std::borrow::Cow::{Borrowed, Owned};
        [
            Param::Text(Borrowed($t.token_hash.as_str())),
            Param::Text(Borrowed($t.client_id.as_str())),
            Param::OptText($t.grant_id.as_deref()),
            Param::Text(Borrowed($t.family_id.as_str())),
            Param::Text(Borrowed($t.subject.as_str())),
            Param::Text(Owned($t.scope.to_string())),
            Param::Text(Owned(to_json(&$t.audience))),
            Param::Text(Owned(to_json(&$t.claims))),
            Param::Int($t.issued_at),
            Param::Int($t.expires_at),
            $($rest),+
        ]
    }};
}

/// An access token's columns, in the order of [`INSERT_ACCESS_HEAD`].
pub(crate) fn access_params(t: &AccessTokenRecord) -> [Param<'_>; 11] {
    token_params!(t; Param::OptInt(t.revoked_at))
}

/// A refresh token's columns, in the order of [`INSERT_REFRESH`].
pub(crate) fn refresh_params(t: &RefreshTokenRecord) -> [Param<'_>; 14] {
    token_params!(
        t;
        Param::OptInt(t.used_at),
        Param::Int(t.reuse_count),
        Param::OptText(t.successor.as_deref()),
        Param::OptInt(t.revoked_at),
    )
}

/// One guarded row's parameters, in the order of [`guarded_row`].
pub(crate) fn guarded_params<'a>(
    t: &'a AccessTokenRecord,
    guard: &'a ClientGuard,
    now: UnixTime,
) -> impl Iterator<Item = Param<'a>> {
    access_params(t).into_iter().chain([
        Param::Text(std::borrow::Cow::Borrowed(guard.client_id.as_str())),
        Param::Int(guard.updated_at),
        Param::OptText(guard.secret_id.as_deref()),
        Param::Int(now),
    ])
}

/// Binds parameters to a sqlx query, in order.
pub(crate) fn bind_params<'q>(
    mut q: sqlx::query::Query<'q, Any, AnyArguments>,
    params: impl IntoIterator<Item = Param<'q>>,
) -> sqlx::query::Query<'q, Any, AnyArguments> {
    for p in params {
        q = match p {
            Param::Text(std::borrow::Cow::Borrowed(v)) => q.bind(v),
            Param::Text(std::borrow::Cow::Owned(v)) => q.bind(v),
            Param::OptText(v) => q.bind(v),
            Param::Int(v) => q.bind(v),
            Param::OptInt(v) => q.bind(v),
        };
    }
    q
}

/// Inserts one access token only while its client's guard holds; true when it was written.
pub(crate) async fn insert_access_guarded(
    conn: &mut AnyConnection,
    t: &AccessTokenRecord,
    guard: &ClientGuard,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let mut sql = String::with_capacity(INSERT_ACCESS_HEAD.len() + GUARDED_ROW_LEN);
    sql.push_str(INSERT_ACCESS_HEAD);
    guarded_row(&mut sql, 0);
    let done = bind_params(
        sqlx::query(sqlx::AssertSqlSafe(sql)),
        guarded_params(t, guard, now),
    )
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

/// A plain refresh on PostgreSQL, as one statement: what `write_rotation` (in
/// `latchkey_core::store`) does statement by statement, each data-modifying `WITH` clause only if
/// the refresh token `$5` was claimed: `guard` (`$1`–`$4`, as in the code exchange), the claim
/// with the sealed response `$6` kept at once (one row cannot be updated twice in one statement;
/// the transaction path claims, then keeps it), its grant marked used, the access token
/// (`$7`–`$17`), and with `refresh`, the new refresh token (`$18`–`$31`).
pub(crate) fn rotation_statement(refresh: bool) -> &'static str {
    macro_rules! rotation {
        ($($refresh:literal)?) => {
            concat!(
                "WITH guard AS (SELECT 1 FROM clients c WHERE ",
                guard_holds!(),
                "), claimed AS (UPDATE refresh_tokens SET used_at = $4, successor = $6 \
                 WHERE token_hash = $5 AND used_at IS NULL AND revoked_at IS NULL \
                 AND EXISTS (SELECT 1 FROM guard) RETURNING grant_id), ",
                touch_grant!("claimed"),
                ", access AS (",
                insert_access_head!(),
                "SELECT $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17 FROM claimed)",
                $(
                    ", refresh AS (",
                    insert_refresh_head!(),
                    $refresh,
                    " FROM claimed)",
                )?
                " SELECT (SELECT count(*) FROM guard) AS guard, \
                 (SELECT count(*) FROM claimed) AS claimed"
            )
        };
    }
    if refresh {
        rotation!("SELECT $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31")
    } else {
        rotation!()
    }
}

/// The parameters of a guard (`$1`–`$4` of [`GUARD_HOLDS`](crate::clients::GUARD_HOLDS)).
pub(crate) fn guard_params(guard: &ClientGuard, now: UnixTime) -> [Param<'_>; 4] {
    [
        Param::Text(std::borrow::Cow::Borrowed(guard.client_id.as_str())),
        Param::Int(guard.updated_at),
        Param::OptText(guard.secret_id.as_deref()),
        Param::Int(now),
    ]
}

/// Runs one of the statements that issue tokens behind a guard ([`rotation_statement`],
/// [`exchange_statement`]) and returns the row it answers. Its parameters: the guard's
/// (`$1`–`$4`), `keys` (what the statement claims), the access token's, and the refresh token's
/// when there is one.
async fn issue_guarded<'a, const N: usize>(
    conn: &mut AnyConnection,
    sql: &'static str,
    guard: &'a ClientGuard,
    now: UnixTime,
    keys: [Param<'a>; N],
    access: &'a AccessTokenRecord,
    refresh: Option<&'a RefreshTokenRecord>,
) -> Result<AnyRow, StoreError> {
    let params = guard_params(guard, now)
        .into_iter()
        .chain(keys)
        .chain(access_params(access))
        .chain(refresh.into_iter().flat_map(refresh_params));
    bind_params(sqlx::query(sql), params)
        .fetch_one(conn)
        .await
        .map_err(map_err)
}

/// Rotates a refresh token on PostgreSQL with [`rotation_statement`]; `None` when the guard did
/// not hold, otherwise whether the token was claimed (and everything written).
pub(crate) async fn rotate_refresh_guarded(
    conn: &mut AnyConnection,
    r: &Rotation,
    guard: &ClientGuard,
    now: UnixTime,
) -> Result<Option<bool>, StoreError> {
    let keys = [
        Param::Text(std::borrow::Cow::Borrowed(r.hash.as_str())),
        Param::Text(std::borrow::Cow::Borrowed(r.successor.as_str())),
    ];
    let sql = rotation_statement(r.refresh.is_some());
    let row = issue_guarded(conn, sql, guard, now, keys, &r.access, r.refresh.as_ref()).await?;
    let count = |name: &str| row.try_get::<i64, _>(name).map_err(map_err);
    Ok((count("guard")? != 0)
        .then(|| count("claimed"))
        .transpose()?
        .map(|n| n == 1))
}

/// A revocation on PostgreSQL, as one statement: what `write_revocation` (in
/// `latchkey_core::store`) does after `begin_guarded`, in one round trip instead of five (begin,
/// guard, revocation, audit entry, commit). Each `WITH` clause writes only if the one before it
/// found or wrote its row: `guard` (`$1`–`$4`), the access token `$5` marked revoked at `$4`
/// unless it already was, and the audit entry (`$6`–`$14`) only for a token it revoked.
const REVOKE_ACCESS_STATEMENT: &str = concat!(
    "WITH guard AS (SELECT 1 FROM clients c WHERE ",
    guard_holds!(),
    "), revoked AS (UPDATE access_tokens SET revoked_at = $4 \
     WHERE token_hash = $5 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM guard) RETURNING 1), \
     entry AS (",
    insert_audit_head!(),
    "SELECT $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM revoked) \
     SELECT (SELECT count(*) FROM guard) AS guard, (SELECT count(*) FROM revoked) AS revoked"
);

/// Revokes an access token on PostgreSQL with [`REVOKE_ACCESS_STATEMENT`]; `None` when the guard
/// did not hold, otherwise whether the token was revoked (and audited) by this call.
pub(crate) async fn revoke_access_guarded(
    conn: &mut AnyConnection,
    hash: &TokenHash,
    guard: &ClientGuard,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<Option<bool>, StoreError> {
    revoke_guarded(
        conn,
        REVOKE_ACCESS_STATEMENT,
        hash.as_str(),
        guard,
        now,
        audit,
    )
    .await
}

/// Runs one of the guarded revocations ([`REVOKE_ACCESS_STATEMENT`], [`REVOKE_FAMILY_STATEMENT`]):
/// the guard's parameters, `target` (`$5`), then the audit entry's. `None` when the guard did
/// not hold, otherwise whether the statement revoked anything.
async fn revoke_guarded(
    conn: &mut AnyConnection,
    sql: &'static str,
    target: &str,
    guard: &ClientGuard,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<Option<bool>, StoreError> {
    let params = guard_params(guard, now)
        .into_iter()
        .chain([Param::Text(std::borrow::Cow::Borrowed(target))])
        .chain(audit_params(audit));
    let row = bind_params(sqlx::query(sql), params)
        .fetch_one(conn)
        .await
        .map_err(map_err)?;
    let count = |name: &str| row.try_get::<i64, _>(name).map_err(map_err);
    Ok((count("guard")? != 0)
        .then(|| count("revoked"))
        .transpose()?
        .map(|n| n > 0))
}

/// A refresh token's revocation on PostgreSQL, as one statement: what `write_family_revocation`
/// (in `latchkey_core::store`) does after `begin_guarded`. `guard` (`$1`–`$4`), then the
/// family `$5`'s access and refresh tokens revoked at `$4` (as [`REVOKE_FAMILY_ACCESS`] and
/// [`REVOKE_FAMILY_REFRESH`] do), and the audit entry (`$6`–`$14`) only if any was.
const REVOKE_FAMILY_STATEMENT: &str = concat!(
    "WITH guard AS (SELECT 1 FROM clients c WHERE ",
    guard_holds!(),
    "), a AS (UPDATE access_tokens SET revoked_at = $4 \
     WHERE family_id = $5 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM guard) RETURNING 1), \
     r AS (UPDATE refresh_tokens SET revoked_at = $4, successor = NULL \
     WHERE family_id = $5 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM guard) RETURNING 1), \
     entry AS (",
    insert_audit_head!(),
    "SELECT $6, $7, $8, $9, $10, $11, $12, $13, $14 \
     WHERE EXISTS (SELECT 1 FROM a) OR EXISTS (SELECT 1 FROM r)) \
     SELECT (SELECT count(*) FROM guard) AS guard, \
     (SELECT count(*) FROM a) + (SELECT count(*) FROM r) AS revoked"
);

/// Revokes a refresh token's family on PostgreSQL with [`REVOKE_FAMILY_STATEMENT`]; `None` when
/// the guard did not hold, otherwise whether any token was revoked (and audited) by this call.
pub(crate) async fn revoke_family_guarded(
    conn: &mut AnyConnection,
    family_id: &str,
    guard: &ClientGuard,
    now: UnixTime,
    audit: &AuditEntry,
) -> Result<Option<bool>, StoreError> {
    revoke_guarded(conn, REVOKE_FAMILY_STATEMENT, family_id, guard, now, audit).await
}

/// Exchanges a code on PostgreSQL with [`exchange_statement`]; `None` when the guard did not
/// hold.
pub(crate) async fn exchange_code_guarded(
    conn: &mut AnyConnection,
    e: &Exchange,
    guard: &ClientGuard,
    now: UnixTime,
) -> Result<Option<Exchanged>, StoreError> {
    let keys = [Param::Text(std::borrow::Cow::Borrowed(e.code.as_str()))];
    let sql = exchange_statement(e.refresh.is_some());
    let row = issue_guarded(conn, sql, guard, now, keys, &e.access, e.refresh.as_ref()).await?;
    let count = |name: &str| row.try_get::<i64, _>(name).map_err(map_err);
    Ok(if count("guard")? == 0 {
        None
    } else if count("consumed")? == 0 {
        Some(Exchanged::CodeUsed)
    } else if count("touched")? == 0 {
        Some(Exchanged::GrantRevoked)
    } else {
        Some(Exchanged::Written)
    })
}

#[async_trait]
impl TokenRepository for SqlTx {
    async fn insert_access(&mut self, t: &AccessTokenRecord) -> Result<(), StoreError> {
        bind_params(sqlx::query(INSERT_ACCESS), access_params(t))
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_refresh(&mut self, t: &RefreshTokenRecord) -> Result<(), StoreError> {
        bind_params(sqlx::query(INSERT_REFRESH), refresh_params(t))
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn access(
        &mut self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<AccessTokenRecord>>, StoreError> {
        let row = sqlx::query(ACCESS_BY_HASH)
            .bind(hash.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(|r| lookup(r, access_from_row(r)?))
            .transpose()
    }

    async fn refresh(
        &mut self,
        hash: &TokenHash,
    ) -> Result<Option<TokenLookup<RefreshTokenRecord>>, StoreError> {
        let row = sqlx::query(REFRESH_BY_HASH)
            .bind(hash.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(|r| lookup(r, refresh_from_row(r)?))
            .transpose()
    }

    async fn claim_refresh(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(CLAIM_REFRESH)
            .bind(hash.as_str())
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_successor(&mut self, hash: &TokenHash, successor: &str) -> Result<(), StoreError> {
        sqlx::query(SET_SUCCESSOR)
            .bind(hash.as_str())
            .bind(successor)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn count_reuse(&mut self, hash: &TokenHash, max: u32) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET reuse_count = reuse_count + 1 \
             WHERE token_hash = $1 AND reuse_count < $2 AND revoked_at IS NULL AND successor IS NOT NULL",
        )
        .bind(hash.as_str())
        .bind(i64::from(max))
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn expire_successors(
        &mut self,
        used_before: UnixTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET successor = NULL WHERE token_hash IN \
             (SELECT token_hash FROM refresh_tokens WHERE successor IS NOT NULL AND used_at < $1 LIMIT $2)",
        )
        .bind(used_before)
        .bind(i64::from(limit))
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn revoke_access(&mut self, hash: &TokenHash, now: UnixTime) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE_ACCESS)
            .bind(hash.as_str())
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_family(&mut self, family_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        let a = sqlx::query(REVOKE_FAMILY_ACCESS)
            .bind(family_id)
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        let r = sqlx::query(REVOKE_FAMILY_REFRESH)
            .bind(family_id)
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(map_err)?;
        Ok(a.rows_affected() + r.rows_affected())
    }

    async fn revoke_grant(&mut self, grant_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        let a = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        let r = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2, successor = NULL WHERE grant_id = $1 AND revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(a.rows_affected() + r.rows_affected())
    }

    async fn revoke_client(&mut self, client_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        let a = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        let r = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2, successor = NULL WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .bind(now)
        .execute(self.conn())
        .await
        .map_err(map_err)?;
        Ok(a.rows_affected() + r.rows_affected())
    }

    async fn purge_expired(&mut self, now: UnixTime, limit: u32) -> Result<u64, StoreError> {
        let access = self
            .purge_expired_rows("access_tokens", "token_hash", now, limit)
            .await?;
        let refresh = self
            .purge_expired_rows("refresh_tokens", "token_hash", now, limit)
            .await?;
        Ok(access + refresh)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use latchkey_core::oauth::records::TokenClaims;

    use super::*;
    use crate::testing::TestDatabase;

    /// PostgreSQL only (`LATCHKEY_TEST_POSTGRES_URL`): the code exchange and the refresh rotation
    /// find the grant they mark used by its primary key on a schema no `ANALYZE` has seen, where
    /// `revoked_at IS NULL` in their `WHERE` clause made PostgreSQL walk the whole of
    /// `grants_active_idx` instead ([`touch_grant`]).
    #[tokio::test]
    async fn the_grant_marked_used_is_found_by_its_key_before_any_analyze() {
        let Some(db) = TestDatabase::postgres().await else {
            return;
        };
        let store = db.migrated().await;
        let mut conn = store.writer.acquire().await.expect("connection");
        let guard = ClientGuard {
            client_id: "client-1".into(),
            updated_at: 1_700_000_000,
            secret_id: None,
        };
        let access = AccessTokenRecord {
            token_hash: TokenHash("at".into()),
            client_id: "client-1".into(),
            grant_id: Some("g1".into()),
            family_id: "family-1".into(),
            subject: "alice".into(),
            scope: Scope::parse("openid").expect("scope"),
            audience: vec![],
            claims: TokenClaims::default(),
            issued_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            revoked_at: None,
        };
        let statements = [
            (
                exchange_statement(false),
                vec![Param::Text(Cow::Borrowed("code"))],
            ),
            (
                rotation_statement(false),
                vec![
                    Param::Text(Cow::Borrowed("rt")),
                    Param::Text(Cow::Borrowed("sealed")),
                ],
            ),
        ];
        for (sql, keys) in statements {
            let explain = format!("EXPLAIN {sql}");
            let params = guard_params(&guard, 1_700_000_000)
                .into_iter()
                .chain(keys)
                .chain(access_params(&access));
            let rows = bind_params(sqlx::query(sqlx::AssertSqlSafe(explain)), params)
                .fetch_all(&mut *conn)
                .await
                .expect("explain");
            let plan = rows
                .iter()
                .map(|r| r.try_get::<String, _>(0).expect("plan line"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                plan.contains("Index Scan using grants_pkey on grants"),
                "{plan}"
            );
            assert!(!plan.contains("grants_active_idx"), "{plan}");
        }
    }
}
