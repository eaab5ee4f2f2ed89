//! Driver errors as store errors. A failure to reach the database, or a database that went away
//! (restarted, shut down, a broken connection), is `Unavailable`: the caller answers 503 with
//! `Retry-After`, and the next request gets a fresh connection.

use latchkey_core::store::StoreError;

/// PostgreSQL's SQLSTATEs that say the connection or the server went away: class 08
/// (connection exception), 57P01–57P03 (admin shutdown, crash shutdown, cannot connect now),
/// 53300 (too many connections) and 55P03 (a lock not granted within `lock_timeout`).
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300" | "55P03")
}

pub(crate) fn pg_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| unavailable_state(&c)) => {
            StoreError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

#[expect(clippy::needless_pass_by_value, reason = "the shape of `map_err`")]
pub(crate) fn sqlite_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::ConstraintViolation
                if matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                StoreError::Conflict(e.to_string())
            }
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::CannotOpen
            | C::DiskFull
            | C::SystemIoFailure => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        },
        _ => StoreError::Database(e.to_string()),
    }
}
