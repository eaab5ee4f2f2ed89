//! Schema migrations: `migrations/sqlite` and `migrations/postgres` carry the same version
//! numbers. On PostgreSQL they are applied only when the operator asks (`latchkey migrate up` or
//! `serve --migrate`); the embedded SQLite database is migrated at start.
//!
//! A migration whose first line is `-- no-transaction` runs outside a transaction, as
//! `CREATE INDEX CONCURRENTLY` on PostgreSQL needs.
//!
//! Both engines record what is applied in `_sqlx_migrations` (version, description, success, the
//! SHA-384 checksum of the SQL): sqlx's migrator on PostgreSQL, and on SQLite a runner of its own
//! over the writer connection that keeps the same table, so that a database migrated before keeps
//! its history.

use std::borrow::Cow;
use std::collections::HashMap;

use latchkey_core::store::StoreError;
use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::error::pg_err;
use crate::sql::{Columns, params};
use crate::{Backend, Engine, SqlStore};

/// (version, description, SQL) of each migration, per engine. Keep both lists in step.
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "platform",
        include_str!("../migrations/sqlite/0002_platform.sql"),
    ),
    (
        3,
        "partial grant indexes",
        include_str!("../migrations/sqlite/0003_partial_grant_indexes.sql"),
    ),
    (
        4,
        "external clients",
        include_str!("../migrations/sqlite/0004_external_clients.sql"),
    ),
    (
        5,
        "device, exchange and jwt bearer grants",
        include_str!("../migrations/sqlite/0005_device_exchange_jwt_bearer.sql"),
    ),
    (
        6,
        "operations",
        include_str!("../migrations/sqlite/0006_operations.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "platform",
        include_str!("../migrations/postgres/0002_platform.sql"),
    ),
    (
        3,
        "partial grant indexes",
        include_str!("../migrations/postgres/0003_partial_grant_indexes.sql"),
    ),
    (
        4,
        "external clients",
        include_str!("../migrations/postgres/0004_external_clients.sql"),
    ),
    (
        5,
        "device, exchange and jwt bearer grants",
        include_str!("../migrations/postgres/0005_device_exchange_jwt_bearer.sql"),
    ),
    (
        6,
        "operations",
        include_str!("../migrations/postgres/0006_operations.sql"),
    ),
];

/// The versions this binary carries for `backend`, in order.
#[cfg(test)]
pub(crate) fn versions(backend: Backend) -> Vec<i64> {
    migrations(backend).iter().map(|(v, _, _)| *v).collect()
}

/// How long a PostgreSQL migration statement waits for a lock before it gives up (and the
/// migration is retried): while it waits, every query behind it on the same table waits too,
/// so this bounds how long a migration can block traffic.
pub const MIGRATION_LOCK_TIMEOUT_MS: u64 = 500;
/// How many times a migration that timed out on a lock is tried again.
pub const MIGRATION_LOCK_RETRIES: u32 = 60;

fn lock_timed_out(e: &sqlx::migrate::MigrateError) -> bool {
    let (sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db))
    | sqlx::migrate::MigrateError::ExecuteMigration(sqlx::Error::Database(db), _)) = e
    else {
        return false;
    };
    db.code().is_some_and(|c| c == "55P03")
}

fn migrations(backend: Backend) -> &'static [(i64, &'static str, &'static str)] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

fn migrator() -> Migrator {
    let list = POSTGRES
        .iter()
        .map(|(version, description, sql)| {
            let no_tx = sql
                .lines()
                .next()
                .is_some_and(|l| l.trim() == "-- no-transaction");
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                no_tx,
            )
        })
        .collect();
    Migrator::with_migrations(list)
}

/// SQLite's record of applied migrations, as sqlx keeps it.
const SQLITE_HISTORY: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations ( \
     version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
     installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
     checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)";

fn checksum(sql: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, sql.as_bytes())
        .as_ref()
        .to_vec()
}

/// Applies SQLite's pending migrations on the writer connection, each in a transaction with its
/// row in the history.
fn migrate_sqlite(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    use crate::error::sqlite_err;
    conn.execute_batch(SQLITE_HISTORY).map_err(sqlite_err)?;
    let failed: Option<i64> = conn
        .query_row(
            "SELECT MIN(version) FROM _sqlx_migrations WHERE NOT success",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    if let Some(version) = failed {
        return Err(dirty(version));
    }
    for (version, description, sql) in SQLITE {
        let applied: Option<(bool, Vec<u8>)> = conn
            .query_row(
                "SELECT success, checksum FROM _sqlx_migrations WHERE version = ?1",
                [version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(sqlite_err)?;
        match applied {
            Some((false, _)) => return Err(dirty(*version)),
            Some((true, sum)) if sum != checksum(sql) => return Err(mismatch(*version)),
            Some(_) => continue,
            None => {}
        }
        let started = std::time::Instant::now();
        let tx = conn.transaction().map_err(sqlite_err)?;
        tx.execute_batch(sql).map_err(sqlite_err)?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            rusqlite::params![
                version,
                description,
                checksum(sql),
                started.elapsed().as_nanos() as i64
            ],
        )
        .map_err(sqlite_err)?;
        tx.commit().map_err(sqlite_err)?;
    }
    Ok(())
}

fn dirty(version: i64) -> StoreError {
    StoreError::Database(format!(
        "migration {version} failed half-way earlier; repair the database by hand, then delete its row from _sqlx_migrations"
    ))
}

fn mismatch(version: i64) -> StoreError {
    StoreError::Database(format!(
        "applied migration {version} differs from the one this binary carries"
    ))
}

fn applied_from_row(r: &dyn Columns) -> Result<(i64, bool), StoreError> {
    Ok((r.int("version")?, r.int("ok")? != 0))
}

fn count_from_row(r: &dyn Columns) -> Result<i64, StoreError> {
    r.int("n")
}

/// Where a migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationState {
    Applied,
    Pending,
    /// Started and did not finish: the database needs an operator.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: i64,
    pub description: &'static str,
    pub state: MigrationState,
}

impl SqlStore {
    /// Applies every pending migration. Fails, changing nothing more, when an earlier migration
    /// failed half-way or an applied one was edited.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Postgres { pool } => {
                // Every statement waits at most MIGRATION_LOCK_TIMEOUT_MS for its lock; a
                // migration that timed out rolled back (or, in a `-- no-transaction` file, is
                // written to be run again: see migrate_lint.rs) and is tried again.
                let mut attempt = 0;
                loop {
                    let mut conn = pool.acquire().await.map_err(pg_err)?.detach();
                    sqlx::Executor::execute(
                        &mut conn,
                        sqlx::AssertSqlSafe(format!(
                            "SET lock_timeout = {MIGRATION_LOCK_TIMEOUT_MS}"
                        )),
                    )
                    .await
                    .map_err(pg_err)?;
                    let ran = migrator().run_direct(None, &mut conn, false).await;
                    // The connection carries the migration's lock_timeout: it is not given
                    // back to the pool.
                    let _ = sqlx::Connection::close(conn).await;
                    match ran {
                        Ok(()) => return Ok(()),
                        Err(e) if lock_timed_out(&e) && attempt < MIGRATION_LOCK_RETRIES => {
                            attempt += 1;
                            tracing::warn!(attempt, error = %e, "a migration statement timed out waiting for a lock; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(
                                200 * u64::from(attempt.min(10)),
                            ))
                            .await;
                        }
                        Err(e) => {
                            return Err(match e {
                                sqlx::migrate::MigrateError::Dirty(v) => dirty(v),
                                sqlx::migrate::MigrateError::VersionMismatch(v) => mismatch(v),
                                other => StoreError::Database(format!("migration failed: {other}")),
                            });
                        }
                    }
                }
            }
            Engine::Sqlite { writer, .. } => writer.exclusive(migrate_sqlite).await,
        }
    }

    /// Every migration this binary carries and whether it is applied. Changes nothing.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StoreError> {
        let backend = self.backend();
        let mut tx = self.sql_read().await?;
        let exists_sql = match backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let exists = tx
            .optional(exists_sql, params![], count_from_row)
            .await?
            .unwrap_or(0);
        let mut applied: HashMap<i64, bool> = HashMap::new();
        if exists > 0 {
            applied.extend(
                tx.all(
                    "SELECT version, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT) AS ok \
                     FROM _sqlx_migrations",
                    params![],
                    applied_from_row,
                )
                .await?,
            );
        }
        Ok(migrations(backend)
            .iter()
            .map(|(version, description, _)| MigrationStatus {
                version: *version,
                description,
                state: match applied.get(version) {
                    Some(true) => MigrationState::Applied,
                    Some(false) => MigrationState::Failed,
                    None => MigrationState::Pending,
                },
            })
            .collect())
    }

    /// True when every migration is applied.
    pub async fn is_migrated(&self) -> Result<bool, StoreError> {
        Ok(self
            .migration_status()
            .await?
            .iter()
            .all(|m| m.state == MigrationState::Applied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_engines_carry_the_same_versions() {
        let s: Vec<_> = SQLITE.iter().map(|(v, d, _)| (*v, *d)).collect();
        let p: Vec<_> = POSTGRES.iter().map(|(v, d, _)| (*v, *d)).collect();
        assert_eq!(s, p);
    }
}
