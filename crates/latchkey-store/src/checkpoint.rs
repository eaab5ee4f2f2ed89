//! WAL checkpoints for SQLite, off the writer's path.
//!
//! By default SQLite checkpoints in whichever connection commits the transaction that takes the
//! write-ahead log past 1000 pages: that commit then copies the log into the database file and
//! syncs it, and every request queued behind the one writer waits for it (the latency tail of
//! the write-heavy scenarios). The writer instead checkpoints only as a backstop
//! ([`WRITER_AUTOCHECKPOINT`] pages, should this thread fall behind), and a connection of its own
//! runs a `PASSIVE` checkpoint every [`INTERVAL`]: it never takes the write lock, so commits go
//! on while it copies and syncs.
//!
//! A passive checkpoint never lets the log start over while writes keep coming (the writer has
//! always appended more by the time it begins its next transaction), so once the log is past
//! [`RESTART_FRAMES`] and passive passes have copied most of it, the checkpointer asks for
//! a `RESTART` checkpoint: it waits for the writer's current transaction, copies the frames that
//! are left, waits for the readers still reading from the log to finish, and the writer's next
//! transaction starts the log from its beginning.
//!
//! A `RESTART` pass holds the write lock throughout, and every write waits behind it, so it is
//! made short:
//! - Passive passes run back to back until one had at most [`CAUGHT_UP_FRAMES`] to copy. Under a
//!   heavy write load one pass of 10 000 pages took 100 ms on a small machine, and left the
//!   restart the 3 000 appended meanwhile to copy.
//! - The checkpointer has the writer's busy handler ((`sqlite::wait_briefly`)), which looks again every
//!   quarter of a millisecond for the readers to leave the log, where SQLite's own (what
//!   `busy_timeout` sets, and all a connection of sqlx's can have) sleeps 1, 2, 5, 10 ms between
//!   looks.
//!
//! What is left of the pause is the restart's two syncs (the log's last frames, then the
//! database file), 20 ms each or more on a small virtual machine. A longer log makes the pause
//! rarer, not shorter: at 32 768 pages the revoke scenario's P95 fell and its P99 rose.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use latchkey_core::store::StoreError;
use rusqlite::Connection;

use crate::error::sqlite_err as db_err;

/// How often the checkpointer runs.
const INTERVAL: Duration = Duration::from_millis(250);

/// The log length (in pages) past which the checkpointer makes the log start over.
const RESTART_FRAMES: i64 = 4096;

/// A passive pass that had at most this many pages to copy has caught up with the writer.
const CAUGHT_UP_FRAMES: i64 = 256;

/// Most passive passes in a row: each copies what the writer appended while the one before
/// copied, so under a steady load each has less to copy than the one before.
const MAX_PASSES: usize = 6;

/// The writer's own `wal_autocheckpoint`, a backstop only.
pub(crate) const WRITER_AUTOCHECKPOINT: u32 = 20_000;

/// The checkpointer's handle; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Checkpointer {
    _alive: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the checkpointer thread for the database file `path` (in WAL mode already).
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = open(path)?;
        let (alive, ended) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("latchkey-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(INTERVAL) {
                    if let Err(e) = checkpoint(&conn, RESTART_FRAMES) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; the writer's backstop still checkpoints");
                    }
                }
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the SQLite checkpointer: {e}"))
            })?;
        Ok(Self { _alive: alive })
    }
}

/// The checkpointer's connection: a small page cache (it reads nothing but the log's pages it
/// copies), and the writer's busy handler.
fn open(path: &Path) -> Result<Connection, StoreError> {
    crate::sqlite::open(path, "PRAGMA cache_size = -256;")
}

/// Passive passes until one finds little to copy, then a restart when the log is past
/// `restart_frames`: whether the log was made to start over.
fn checkpoint(conn: &Connection, restart_frames: i64) -> Result<bool, StoreError> {
    let (mut log, mut copied) = (0, 0);
    for _ in 0..MAX_PASSES {
        let before = copied;
        (_, log, copied) = pass(conn, "PRAGMA wal_checkpoint(PASSIVE)")?;
        if log - before <= CAUGHT_UP_FRAMES {
            break;
        }
    }
    if log >= restart_frames && copied > 0 {
        let (busy, _, _) = pass(conn, "PRAGMA wal_checkpoint(RESTART)")?;
        return Ok(!busy);
    }
    Ok(false)
}

/// A checkpoint's answer: whether it could not finish (busy), the pages in the log, the pages
/// copied to the database.
fn pass(conn: &Connection, pragma: &str) -> Result<(bool, i64, i64), StoreError> {
    conn.query_row(pragma, [], |row| {
        Ok((row.get::<_, i64>(0)? != 0, row.get(1)?, row.get(2)?))
    })
    .map_err(db_err)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// The restart threshold of the tests.
    const LONG: i64 = 1000;

    /// A database in WAL mode whose log is past [`LONG`] pages, written by a connection that
    /// never checkpoints: one transaction of pages of their own.
    fn long_log(path: &Path) -> Connection {
        let writer = Connection::open(path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA synchronous = OFF; CREATE TABLE t (x BLOB);",
            )
            .expect("schema");
        writer
            .execute(
                "INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                 WHERE i < ?1) SELECT zeroblob(3000) FROM n",
                [LONG + 100],
            )
            .expect("pages");
        writer
    }

    /// The restart waits for a reader still reading from the log (holding the write lock, with
    /// the busy handler) instead of giving up, and the writer's next transaction starts the log
    /// over.
    #[test]
    fn a_long_log_starts_over_once_its_last_reader_is_done() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db.sqlite");
        let writer = long_log(&path);
        // A reader on the log's snapshot, then one more write it does not see.
        let reader = Connection::open(&path).expect("reader");
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM t;")
            .expect("read");
        writer
            .execute("INSERT INTO t VALUES (zeroblob(3000))", [])
            .expect("write");
        // Most of the log copied first (up to what the reader reads), so that the reader is
        // still there when the restart begins.
        let conn = open(&path).expect("checkpointer");
        let (_, log, copied) = pass(&conn, "PRAGMA wal_checkpoint(PASSIVE)").expect("pass");
        assert!(copied > 0 && copied < log, "{copied} of {log}");
        let done = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            reader.execute_batch("COMMIT").expect("end the read");
        });

        assert!(
            checkpoint(&conn, LONG).expect("checkpoint"),
            "the log did not start over"
        );
        done.join().expect("reader");

        writer
            .execute("INSERT INTO t VALUES (zeroblob(10))", [])
            .expect("write");
        let (_, log, _) = pass(&conn, "PRAGMA wal_checkpoint(PASSIVE)").expect("pass");
        assert!(log < 10, "the log went on from frame {log}");
    }

    /// The thread copies the log into the database without anyone asking.
    #[test]
    fn the_thread_checkpoints_a_long_log() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db.sqlite");
        let _writer = long_log(&path);
        let pages = u64::try_from(LONG).expect("frames") * 4096;
        assert!(std::fs::metadata(&path).expect("file").len() < pages);

        let _checkpointer = Checkpointer::start(&path).expect("start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).expect("file").len() < pages {
            assert!(Instant::now() < deadline, "nothing was checkpointed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
