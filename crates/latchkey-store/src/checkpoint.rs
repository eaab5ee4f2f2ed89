//! WAL checkpoints for SQLite, off the writer's path.
//!
//! By default SQLite checkpoints in whichever connection commits the transaction that takes the
//! write-ahead log past 1000 pages: that commit then copies the log into the database file and
//! syncs it, and every request queued behind the one writer waits for it (the latency tail of
//! the write-heavy scenarios). The writer instead checkpoints only as a backstop
//! ([`WRITER_AUTOCHECKPOINT`] pages, should this task fall behind), and a connection of its own
//! runs a `PASSIVE` checkpoint every [`INTERVAL`]: it never takes the write lock, so commits go
//! on while it copies and syncs.
//!
//! A passive checkpoint never lets the log start over while writes keep coming (the writer has
//! always appended more by the time it begins its next transaction), so once the log is past
//! [`RESTART_FRAMES`] and a passive pass has copied most of it, the checkpointer asks for
//! a `RESTART` checkpoint: it waits for the writer's current transaction, copies the few frames
//! that are left, and the writer's next transaction starts the log from its beginning.

use std::time::Duration;

use sqlx::{AnyPool, Row as _};
use tokio::sync::mpsc;

/// How often the checkpointer runs.
const INTERVAL: Duration = Duration::from_millis(250);

/// The log length (in pages) past which the checkpointer makes the log start over.
const RESTART_FRAMES: i64 = 4096;

/// The writer's own `wal_autocheckpoint`, a backstop only.
pub(crate) const WRITER_AUTOCHECKPOINT: u32 = 20_000;

/// The checkpointer's handle; the task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Checkpointer {
    _alive: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts the task on the current runtime, with `pool` (one read-write connection).
    pub(crate) fn start(pool: AnyPool) -> Self {
        let (alive, mut ended) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ended.recv() => break,
                    _ = tick.tick() => {}
                }
                if pool.is_closed() {
                    break;
                }
                if let Err(e) = checkpoint(&pool).await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer's backstop still checkpoints");
                }
            }
            pool.close().await;
        });
        Self { _alive: alive }
    }
}

/// One passive pass, then a restart when the log is long.
async fn checkpoint(pool: &AnyPool) -> Result<(), sqlx::Error> {
    // The answer: busy (0 or 1), pages in the log, pages copied to the database.
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let (log, copied): (i64, i64) = (row.try_get(1)?, row.try_get(2)?);
    if log >= RESTART_FRAMES && copied > 0 {
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(pool)
            .await?;
    }
    Ok(())
}
