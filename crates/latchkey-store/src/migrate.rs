//! Schema migrations: `migrations/sqlite` and `migrations/postgres` carry the same version
//! numbers. On PostgreSQL they are applied only when the operator asks (`latchkey migrate up` or
//! `serve --migrate`); the embedded SQLite database is migrated at start.
//!
//! A migration whose first line is `-- no-transaction` runs outside a transaction, as
//! `CREATE INDEX CONCURRENTLY` on PostgreSQL needs.

use std::borrow::Cow;
use std::collections::HashMap;

use latchkey_core::store::StoreError;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Row as _, SqlSafeStr as _};

use crate::error::map_err;
use crate::{Backend, SqlStore};

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
];

fn migrations(backend: Backend) -> &'static [(i64, &'static str, &'static str)] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

fn migrator(backend: Backend) -> Migrator {
    let list = migrations(backend)
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
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        migrator(self.backend).run_direct(None, &mut *conn, false).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Dirty(v) => StoreError::Database(format!(
                "migration {v} failed half-way earlier; repair the database by hand, then delete its row from _sqlx_migrations"
            )),
            sqlx::migrate::MigrateError::VersionMismatch(v) => {
                StoreError::Database(format!("applied migration {v} differs from the one this binary carries"))
            }
            other => StoreError::Database(format!("migration failed: {other}")),
        })
    }

    /// Every migration this binary carries and whether it is applied. Changes nothing.
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        let exists_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let exists: i64 = sqlx::query(exists_sql)
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?
            .try_get("n")
            .map_err(map_err)?;
        let mut applied: HashMap<i64, bool> = HashMap::new();
        if exists > 0 {
            let rows = sqlx::query("SELECT version, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT) AS ok FROM _sqlx_migrations")
                .fetch_all(&mut *conn)
                .await
                .map_err(map_err)?;
            for r in rows {
                let version: i64 = r.try_get("version").map_err(map_err)?;
                let ok: i64 = r.try_get("ok").map_err(map_err)?;
                applied.insert(version, ok != 0);
            }
        }
        Ok(migrations(self.backend)
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
