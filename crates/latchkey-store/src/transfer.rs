//! Export and import: a consistent, streamable snapshot of every table that defines the service,
//! to load into an empty database of either engine (docs/operations.md).
//!
//! The file is JSON Lines: a header (format, version, the schema version, the source database's
//! identity and engine, the revocation cursor at the snapshot), one line per row
//! (`{"table": …, "row": {column: value}}`, tables in [`TABLES`] order, rows by key), and a
//! trailer with the number of rows and the SHA-256 of every line before it. Secrets stay as
//! stored: hashes, and signing keys sealed under the system secret.
//!
//! The export reads in one transaction (PostgreSQL: `REPEATABLE READ, READ ONLY`; SQLite: one
//! read transaction on a reader connection), so the snapshot is of one moment while the service
//! keeps reading and writing; rows are read in pages by key.

use std::io::{BufRead, Write};

use latchkey_core::store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sql::{Columns, Param, params};
use crate::tx::SqlTx;
use crate::{Backend, Engine, SqlStore};

/// What the file says it is.
pub const FORMAT: &str = "latchkey-export";
/// The version of the file's layout. A file of another version is refused.
pub const VERSION: u32 = 1;
/// Rows per page of the export's reads.
const PAGE: u32 = 2000;

/// Every exported table, parents before children, with its key columns (the order of its rows).
/// Adding a table to the schema is one line here (its columns are read from the schema).
pub const TABLES: &[(&str, &[&str])] = &[
    ("accounts", &["id"]),
    ("users", &["id"]),
    ("memberships", &["account_id", "user_id"]),
    ("clients", &["id"]),
    ("client_secrets", &["id"]),
    ("client_registrations", &["client_id"]),
    ("apps", &["client_id"]),
    ("signing_keys", &["kid"]),
    ("login_sessions", &["id"]),
    ("console_sessions", &["id"]),
    ("flows", &["id"]),
    ("grants", &["id"]),
    ("authorization_codes", &["code_hash"]),
    ("access_tokens", &["token_hash"]),
    ("refresh_tokens", &["token_hash"]),
    ("device_codes", &["device_code_hash"]),
    ("device_challenges", &["challenge_hash"]),
    ("trusted_jwt_issuers", &["id"]),
    ("client_assertion_jtis", &["jti_hash"]),
    ("login_throttle", &["throttle_key"]),
    ("audit_log", &["id"]),
    ("revocation_log", &["id"]),
];

/// The first line of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The last migration applied to the source: the importer must be at the same one.
    pub schema_version: i64,
    /// The source database's identity (`instance_identity`).
    pub source_id: String,
    pub source_engine: String,
    /// The revocation log's last cursor at the snapshot: `latchkey sync` starts after it.
    pub revocation_cursor: i64,
    /// When it was taken (Unix seconds).
    pub taken_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct RowLine {
    table: String,
    row: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    end: bool,
    rows: u64,
    sha256: String,
}

/// Why an import was refused (nothing was written).
fn refused(why: impl Into<String>) -> StoreError {
    StoreError::Database(why.into())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn values_of(r: &dyn Columns) -> Result<Vec<Value>, StoreError> {
    r.values()
}

fn text_of(r: &dyn Columns) -> Result<String, StoreError> {
    r.text("v")
}

fn int_of(r: &dyn Columns) -> Result<i64, StoreError> {
    r.int("v")
}

fn param_of(v: &Value) -> Result<Param<'static>, StoreError> {
    Ok(match v {
        Value::Null => Param::OptText(None),
        Value::String(s) => Param::from(s.clone()),
        Value::Bool(b) => Param::from(*b),
        Value::Number(n) => Param::Int(
            n.as_i64()
                .ok_or_else(|| refused(format!("not an integer: {n}")))?,
        ),
        Value::Array(_) | Value::Object(_) => return Err(refused("a value is not a column value")),
    })
}

fn column_of(r: &dyn Columns) -> Result<(String, bool), StoreError> {
    let kind = r.text("t")?.to_ascii_lowercase();
    Ok((r.text("v")?, kind.contains("int")))
}

/// The columns of `table`, in order, read from the schema: name, and whether it holds integers.
async fn columns(
    tx: &mut SqlTx<'_>,
    backend: Backend,
    table: &str,
) -> Result<Vec<(String, bool)>, StoreError> {
    let sql = match backend {
        Backend::Sqlite => {
            format!("SELECT name AS v, type AS t FROM pragma_table_info('{table}') ORDER BY cid")
        }
        Backend::Postgres => format!(
            "SELECT CAST(column_name AS TEXT) AS v, CAST(data_type AS TEXT) AS t FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
    };
    let cols = tx.all_text(sql.into(), params![], column_of).await?;
    if cols.is_empty() {
        return Err(refused(format!("the table {table} does not exist here")));
    }
    Ok(cols)
}

/// The last migration applied.
async fn schema_version(tx: &mut SqlTx<'_>) -> Result<i64, StoreError> {
    Ok(tx
        .all(
            "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM _sqlx_migrations",
            params![],
            int_of,
        )
        .await?
        .into_iter()
        .next()
        .unwrap_or(0))
}

impl SqlStore {
    /// A write transaction as the store's own type.
    async fn sql_begin(&self) -> Result<SqlTx<'static>, StoreError> {
        Ok(match &self.engine {
            Engine::Sqlite { writer, .. } => SqlTx::session(writer.session().await?),
            Engine::Postgres { pool } => {
                SqlTx::pg_tx(pool.begin().await.map_err(crate::error::pg_err)?)
            }
        })
    }

    /// A read transaction that sees one moment: PostgreSQL `REPEATABLE READ, READ ONLY`, SQLite
    /// a read transaction on a reader connection. End it with [`SqlStore::end_snapshot`].
    async fn snapshot_tx(&self) -> Result<SqlTx<'static>, StoreError> {
        Ok(match &self.engine {
            Engine::Postgres { pool } => {
                let mut tx = SqlTx::pg_tx(pool.begin().await.map_err(crate::error::pg_err)?);
                tx.execute(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                    params![],
                )
                .await?;
                tx
            }
            Engine::Sqlite { .. } => {
                let mut tx = self.sql_read().await?;
                tx.execute("BEGIN", params![]).await?;
                tx
            }
        })
    }

    async fn end_snapshot(&self, mut tx: SqlTx<'static>) -> Result<(), StoreError> {
        match self.backend() {
            Backend::Sqlite => tx.execute("COMMIT", params![]).await.map(|_| ()),
            Backend::Postgres => tx.finish().await,
        }
    }

    /// This database's identity, made (as `new_id`) the first time it is asked for.
    pub async fn identity(&self, new_id: &str, now: i64) -> Result<String, StoreError> {
        let mut tx = self.sql_begin().await?;
        tx.execute(
            "INSERT INTO instance_identity (id, created_at) SELECT $1, $2 \
             WHERE NOT EXISTS (SELECT 1 FROM instance_identity)",
            params![new_id, now],
        )
        .await?;
        let id = tx
            .all("SELECT id AS v FROM instance_identity", params![], text_of)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| refused("no identity"))?;
        tx.finish().await?;
        Ok(id)
    }

    /// Writes a snapshot of every table in [`TABLES`] to `out`; the header it wrote. `source_id`
    /// is this database's [`SqlStore::identity`].
    pub async fn export(
        &self,
        out: &mut dyn Write,
        source_id: &str,
        now: i64,
    ) -> Result<(Header, u64), StoreError> {
        let backend = self.backend();
        let mut tx = self.snapshot_tx().await?;
        let result = export_in(&mut tx, backend, out, source_id, now).await;
        self.end_snapshot(tx).await?;
        result
    }

    /// Loads a snapshot written by [`SqlStore::export`] into this database, which must be empty.
    /// `open` opens the file again: it is read twice, first to check it whole (version, schema,
    /// trailer, checksum), then to load it in one transaction. Nothing is written when it is
    /// refused.
    pub async fn import<R: BufRead>(
        &self,
        open: impl Fn() -> std::io::Result<R>,
        now: i64,
    ) -> Result<(Header, u64), StoreError> {
        let io = |e: std::io::Error| refused(format!("cannot read the snapshot: {e}"));
        // 1. The file, whole.
        let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut header: Option<Header> = None;
        let mut trailer: Option<Trailer> = None;
        let mut rows = 0u64;
        for line in open().map_err(io)?.lines() {
            let line = line.map_err(io)?;
            if trailer.is_some() {
                return Err(refused(
                    "the snapshot goes on after its trailer: it was tampered with",
                ));
            }
            if header.is_none() {
                let h: Header = serde_json::from_str(&line)
                    .map_err(|_| refused("this is not a Latchkey snapshot (no header line)"))?;
                if h.format != FORMAT {
                    return Err(refused("this is not a Latchkey snapshot"));
                }
                if h.version != VERSION {
                    return Err(refused(format!(
                        "the snapshot is version {} of the format; this Latchkey reads version {VERSION}",
                        h.version
                    )));
                }
                header = Some(h);
            } else if let Ok(t) = serde_json::from_str::<Trailer>(&line) {
                trailer = Some(t);
                continue;
            } else {
                rows += 1;
            }
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
        let header = header.ok_or_else(|| refused("the snapshot is empty"))?;
        let trailer = trailer.ok_or_else(|| {
            refused("the snapshot has no trailer: it is truncated (the export did not finish, or the copy was cut)")
        })?;
        if !trailer.end || trailer.rows != rows || trailer.sha256 != hex(hasher.finish().as_ref()) {
            return Err(refused(
                "the snapshot does not match its checksum: it was truncated or tampered with",
            ));
        }
        let backend = self.backend();
        let mut tx = self.sql_begin().await?;
        let ours = schema_version(&mut tx).await?;
        if header.schema_version != ours {
            return Err(refused(format!(
                "the snapshot's schema is at migration {}, this database at {ours}: migrate both to the same version first",
                header.schema_version
            )));
        }
        // 2. An empty database.
        let mut tables: Vec<(&str, Vec<(String, bool)>)> = Vec::new();
        for (table, _) in TABLES {
            let cols = columns(&mut tx, backend, table).await?;
            let n = tx
                .all_text(
                    format!("SELECT CAST(COUNT(*) AS BIGINT) AS v FROM {table}").into(),
                    params![],
                    int_of,
                )
                .await?
                .into_iter()
                .next()
                .unwrap_or(0);
            if n > 0 {
                return Err(refused(format!(
                    "the database is not empty ({table} has {n} rows): import only into a new database"
                )));
            }
            tables.push((table, cols));
        }
        let taken = tx
            .all(
                "SELECT CAST(COUNT(*) AS BIGINT) AS v FROM import_source",
                params![],
                int_of,
            )
            .await?;
        if taken.first().copied().unwrap_or(0) > 0 {
            return Err(refused("the database has had an import already"));
        }
        // 3. The rows, in one transaction.
        let mut loaded = 0u64;
        for (i, line) in open().map_err(io)?.lines().enumerate() {
            let line = line.map_err(io)?;
            if i == 0 || serde_json::from_str::<Trailer>(&line).is_ok() {
                continue;
            }
            let r: RowLine = serde_json::from_str(&line)
                .map_err(|e| refused(format!("line {}: not a row: {e}", i + 1)))?;
            let Some((table, cols)) = tables.iter().find(|(t, _)| *t == r.table) else {
                return Err(refused(format!(
                    "line {}: unknown table {:?}",
                    i + 1,
                    r.table
                )));
            };
            let mut names = Vec::new();
            let mut values = Vec::new();
            for (col, v) in &r.row {
                // Only names read from this database's schema go into the statement.
                let Some((name, int)) = cols.iter().find(|(c, _)| c == col) else {
                    return Err(refused(format!(
                        "line {}: {table} has no column {col:?} here",
                        i + 1
                    )));
                };
                names.push(name.as_str());
                values.push(match v {
                    Value::Null if *int => Param::OptInt(None),
                    v => param_of(v)?,
                });
            }
            let placeholders: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
            let overriding = if backend == Backend::Postgres && *table == "revocation_log" {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            };
            let sql = format!(
                "INSERT INTO {table} ({}){overriding} VALUES ({})",
                names.join(", "),
                placeholders.join(", ")
            );
            tx.execute_text(sql.into(), values).await?;
            loaded += 1;
        }
        if backend == Backend::Postgres {
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('revocation_log', 'id'), \
                 COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM revocation_log",
                params![],
            )
            .await?;
        }
        tx.execute(
            "INSERT INTO import_source (source_id, revocation_cursor, imported_at) VALUES ($1, $2, $3)",
            params![&header.source_id, header.revocation_cursor, now],
        )
        .await?;
        tx.finish().await?;
        Ok((header, loaded))
    }
}

async fn export_in(
    tx: &mut SqlTx<'_>,
    backend: Backend,
    out: &mut dyn Write,
    source_id: &str,
    now: i64,
) -> Result<(Header, u64), StoreError> {
    let io = |e: std::io::Error| StoreError::Database(format!("cannot write the snapshot: {e}"));
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut emit = |line: &str, out: &mut dyn Write| -> Result<(), StoreError> {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)
    };
    let cursor = tx
        .all(
            "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS v FROM revocation_log",
            params![],
            int_of,
        )
        .await?
        .into_iter()
        .next()
        .unwrap_or(0);
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        schema_version: schema_version(tx).await?,
        source_id: source_id.to_owned(),
        source_engine: backend.name().to_owned(),
        revocation_cursor: cursor,
        taken_at: now,
    };
    emit(&crate::sql::to_json(&header), out)?;
    let mut rows = 0u64;
    for (table, keys) in TABLES {
        let cols: Vec<String> = columns(tx, backend, table)
            .await?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        let key_at: Vec<usize> = keys
            .iter()
            .map(|k| {
                cols.iter()
                    .position(|c| c == k)
                    .ok_or_else(|| refused(format!("{table} has no key column {k}")))
            })
            .collect::<Result<_, _>>()?;
        let list = cols.join(", ");
        let order = keys.join(", ");
        let mut after: Option<Vec<Value>> = None;
        loop {
            let (sql, params): (String, Vec<Param<'static>>) = match &after {
                None => (
                    format!("SELECT {list} FROM {table} ORDER BY {order} LIMIT {PAGE}"),
                    vec![],
                ),
                Some(last) => {
                    let ph: Vec<String> = (1..=keys.len()).map(|n| format!("${n}")).collect();
                    (
                        format!(
                            "SELECT {list} FROM {table} WHERE ({order}) > ({}) ORDER BY {order} LIMIT {PAGE}",
                            ph.join(", ")
                        ),
                        last.iter().map(param_of).collect::<Result<_, _>>()?,
                    )
                }
            };
            let page = tx.all_text(sql.into(), params, values_of).await?;
            for values in &page {
                let row: Map<String, Value> =
                    cols.iter().cloned().zip(values.iter().cloned()).collect();
                emit(
                    &crate::sql::to_json(&RowLine {
                        table: (*table).to_owned(),
                        row,
                    }),
                    out,
                )?;
                rows += 1;
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => {
                    after = Some(key_at.iter().map(|i| last[*i].clone()).collect());
                }
                _ => break,
            }
        }
    }
    let trailer = Trailer {
        end: true,
        rows,
        sha256: hex(hasher.finish().as_ref()),
    };
    // The trailer is not part of what it sums.
    let line = crate::sql::to_json(&trailer);
    out.write_all(line.as_bytes()).map_err(io)?;
    out.write_all(b"\n").map_err(io)?;
    out.flush().map_err(io)?;
    Ok((header, rows))
}

/// What one `sync` brought.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Rows of the source inserted or merged, over every table.
    pub rows: u64,
    /// Revocation log entries applied (deletions: clients, secrets, sessions).
    pub log_entries: u64,
    /// The source's revocation cursor this sync reached.
    pub cursor: i64,
}

/// Columns that, once set, stay set: the event a row records (a revocation, a use). A merge
/// keeps the first value either side wrote.
const STICKY: &[&str] = &[
    "revoked_at",
    "used_at",
    "consumed_at",
    "successor",
    "retired_at",
];

/// The merge of `table`'s row from the source into an existing one: sticky columns keep the
/// first value set; in a table with `updated_at`, the other columns take the newer row's;
/// otherwise the row is immutable and stays.
fn upsert_sql(backend: Backend, table: &str, cols: &[String], keys: &[&str]) -> String {
    let has_updated = cols.iter().any(|c| c == "updated_at");
    let sets: Vec<String> = cols
        .iter()
        .filter(|c| !keys.contains(&c.as_str()) && *c != "updated_at")
        .filter_map(|c| {
            if STICKY.contains(&c.as_str()) {
                Some(format!("{c} = COALESCE({table}.{c}, excluded.{c})"))
            } else if has_updated {
                Some(format!(
                    "{c} = CASE WHEN excluded.updated_at > {table}.updated_at THEN excluded.{c} ELSE {table}.{c} END"
                ))
            } else {
                None
            }
        })
        .chain(has_updated.then(|| {
            format!("updated_at = CASE WHEN excluded.updated_at > {table}.updated_at THEN excluded.updated_at ELSE {table}.updated_at END")
        }))
        .collect();
    let placeholders: Vec<String> = (1..=cols.len()).map(|n| format!("${n}")).collect();
    let overriding = if backend == Backend::Postgres && table == "revocation_log" {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let action = if sets.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}", sets.join(", "))
    };
    format!(
        "INSERT INTO {table} ({}){overriding} VALUES ({}) ON CONFLICT ({}) {action}",
        cols.join(", "),
        placeholders.join(", "),
        keys.join(", ")
    )
}

fn revoked_grant(r: &dyn Columns) -> Result<(String, i64), StoreError> {
    Ok((r.text("id")?, r.int("revoked_at")?))
}

fn source_of(r: &dyn Columns) -> Result<(String, i64), StoreError> {
    Ok((r.text("source_id")?, r.int("revocation_cursor")?))
}

impl SqlStore {
    /// Brings what changed on `source` (blue) since the snapshot this database was loaded from,
    /// or since the last sync: every row of the source, inserted or merged ([`upsert_sql`]),
    /// then the deletions its revocation log records after the cursor reached last time.
    /// Refused, changing nothing, when `source` is not the database the snapshot came from.
    pub async fn sync_from(&self, source: &SqlStore) -> Result<SyncReport, StoreError> {
        let mut green = self.sql_begin().await?;
        let (source_id, from_cursor) = green
            .all(
                "SELECT source_id, revocation_cursor FROM import_source",
                params![],
                source_of,
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                refused("this database was not loaded by `latchkey import`: nothing to sync")
            })?;
        let mut blue = source.snapshot_tx().await?;
        let result = sync_in(
            &mut blue,
            source.backend(),
            &mut green,
            self.backend(),
            &source_id,
            from_cursor,
        )
        .await;
        source.end_snapshot(blue).await?;
        let report = result?;
        green.finish().await?;
        Ok(report)
    }
}

async fn sync_in(
    blue: &mut SqlTx<'_>,
    blue_backend: Backend,
    green: &mut SqlTx<'_>,
    green_backend: Backend,
    source_id: &str,
    from_cursor: i64,
) -> Result<SyncReport, StoreError> {
    let blue_id = blue
        .all("SELECT id AS v FROM instance_identity", params![], text_of)
        .await?
        .into_iter()
        .next();
    if blue_id.as_deref() != Some(source_id) {
        return Err(refused(format!(
            "the source database is {}, not {source_id}, the one this database was loaded from",
            blue_id
                .as_deref()
                .unwrap_or("a database that was never exported")
        )));
    }
    if schema_version(blue).await? != schema_version(green).await? {
        return Err(refused(
            "the two databases are at different migrations: migrate both first",
        ));
    }
    let to_cursor = blue
        .all(
            "SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS v FROM revocation_log",
            params![],
            int_of,
        )
        .await?
        .into_iter()
        .next()
        .unwrap_or(0);
    if to_cursor < from_cursor {
        return Err(refused(
            "the source's revocation log is behind this database's cursor: not the same history",
        ));
    }
    let mut report = SyncReport {
        cursor: to_cursor,
        ..SyncReport::default()
    };
    // Grants revoked on the source first: a subject's new active grant for a client must not
    // meet the old one still active here (one active grant per subject and client).
    let revoked = blue
        .all(
            "SELECT id, revoked_at FROM grants WHERE revoked_at IS NOT NULL",
            params![],
            revoked_grant,
        )
        .await?;
    for (id, at) in revoked {
        green
            .execute(
                "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                params![id, at],
            )
            .await?;
    }
    for (table, keys) in TABLES {
        let cols: Vec<String> = columns(blue, blue_backend, table)
            .await?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        let green_cols = columns(green, green_backend, table).await?;
        let ints: Vec<bool> = cols
            .iter()
            .map(|c| {
                green_cols
                    .iter()
                    .find(|(g, _)| g == c)
                    .map(|(_, int)| *int)
                    .ok_or_else(|| refused(format!("{table}.{c} does not exist here")))
            })
            .collect::<Result<_, _>>()?;
        let upsert = upsert_sql(green_backend, table, &cols, keys);
        let key_at: Vec<usize> = keys
            .iter()
            .filter_map(|k| cols.iter().position(|c| c == k))
            .collect();
        let list = cols.join(", ");
        let order = keys.join(", ");
        let mut after: Option<Vec<Value>> = None;
        loop {
            let (sql, params): (String, Vec<Param<'static>>) = match &after {
                None => (
                    format!("SELECT {list} FROM {table} ORDER BY {order} LIMIT {PAGE}"),
                    vec![],
                ),
                Some(last) => {
                    let ph: Vec<String> = (1..=keys.len()).map(|n| format!("${n}")).collect();
                    (
                        format!(
                            "SELECT {list} FROM {table} WHERE ({order}) > ({}) ORDER BY {order} LIMIT {PAGE}",
                            ph.join(", ")
                        ),
                        last.iter().map(param_of).collect::<Result<_, _>>()?,
                    )
                }
            };
            let page = blue.all_text(sql.into(), params, values_of).await?;
            for values in &page {
                let params = values
                    .iter()
                    .zip(&ints)
                    .map(|(v, int)| match v {
                        Value::Null if *int => Ok(Param::OptInt(None)),
                        v => param_of(v),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                green.execute_text(upsert.clone().into(), params).await?;
                report.rows += 1;
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => {
                    after = Some(key_at.iter().map(|i| last[*i].clone()).collect());
                }
                _ => break,
            }
        }
    }
    // Deletions the rows cannot show: what the log says went.
    let mut cursor = from_cursor;
    loop {
        let entries =
            latchkey_core::store::RevocationLogRepository::after(blue, cursor, PAGE).await?;
        for e in &entries {
            if e.cursor > to_cursor {
                break;
            }
            apply_deletion(green, e).await?;
            report.log_entries += 1;
            cursor = e.cursor;
        }
        if entries.len() < PAGE as usize || cursor >= to_cursor {
            break;
        }
    }
    if green_backend == Backend::Postgres {
        green
            .execute(
                "SELECT setval(pg_get_serial_sequence('revocation_log', 'id'), \
                 COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM revocation_log",
                params![],
            )
            .await?;
    }
    green
        .execute(
            "UPDATE import_source SET revocation_cursor = $1 WHERE source_id = $2",
            params![to_cursor, source_id],
        )
        .await?;
    Ok(report)
}

/// What an entry of the log removed on the source, removed here too.
async fn apply_deletion(
    green: &mut SqlTx<'_>,
    e: &latchkey_core::revocations::RevocationEntry,
) -> Result<(), StoreError> {
    use latchkey_core::revocations::RevocationKind as K;
    let ids = &e.ids;
    match (
        e.kind,
        &ids.client_id,
        &ids.secret_id,
        &ids.subject,
        &ids.sid,
    ) {
        (K::ClientDeleted, Some(client), ..) => {
            green
                .execute("DELETE FROM clients WHERE id = $1", params![client])
                .await?;
        }
        (K::SecretRotatedOut, Some(client), Some(secret), ..) => {
            green
                .execute(
                    "DELETE FROM client_secrets WHERE client_id = $1 AND id = $2",
                    params![client, secret],
                )
                .await?;
        }
        (K::LoginSession | K::Logout, _, _, Some(subject), _) => {
            green
                .execute(
                    "DELETE FROM login_sessions WHERE subject = $1",
                    params![subject],
                )
                .await?;
        }
        (K::LoginSession | K::Logout, _, _, None, Some(sid)) => {
            green
                .execute("DELETE FROM login_sessions WHERE id = $1", params![sid])
                .await?;
        }
        // Every other kind is a column the rows carried over (revoked_at, status, scope).
        _ => {}
    }
    Ok(())
}
