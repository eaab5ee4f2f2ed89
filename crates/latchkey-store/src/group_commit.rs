//! Group commit for SQLite's one writer: access tokens issued by concurrent requests are written
//! in one transaction instead of one each.
//!
//! SQLite has one writer at a time, and each transaction costs a `BEGIN IMMEDIATE`, a `COMMIT`
//! (a WAL append and, at checkpoints, more) and a hand-off of the writer connection between
//! requests. Under load, a task takes every insert that is waiting (up to [`MAX_BATCH`]), runs
//! them in one transaction, commits, and only then answers each request: a token is durable
//! (as durable as `synchronous = NORMAL` makes a commit) before its response leaves. At low load
//! a batch is one insert, and nothing waits for company.
//!
//! Each insert is guarded on its own (see `INSERT_ACCESS_GUARDED`): one request's refused guard
//! does not affect the others of its batch.

use latchkey_core::client::cache::ClientGuard;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::AccessTokenRecord;
use latchkey_core::store::StoreError;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use std::collections::HashSet;

use sqlx::Row as _;

use crate::error::map_err;
use crate::tokens::{
    GUARDED_PARAMS, GUARDED_ROW_LEN, INSERT_ACCESS_HEAD, bind_guarded, guarded_row,
};

/// Most inserts committed together.
pub(crate) const MAX_BATCH: usize = 128;

struct Job {
    token: AccessTokenRecord,
    guard: ClientGuard,
    now: UnixTime,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// The handle of the writer task; the task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer task on the current runtime.
    pub(crate) fn start(writer: AnyPool) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(writer, rx));
        Self { jobs }
    }

    /// Writes one guarded access token with whatever else is waiting; `None` when the writer
    /// task is gone (its runtime ended), so the caller writes it alone.
    pub(crate) async fn insert_access(
        &self,
        token: &AccessTokenRecord,
        guard: &ClientGuard,
        now: UnixTime,
    ) -> Option<Result<bool, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            token: token.clone(),
            guard: guard.clone(),
            now,
            reply,
        };
        self.jobs.send(job).ok()?;
        Some(answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the SQLite writer task stopped".into(),
            ))
        }))
    }
}

async fn run(writer: AnyPool, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        metrics::histogram!("latchkey_sqlite_group_commit_size").record(jobs.len() as f64);
        match write(&writer, &jobs).await {
            Ok(results) => {
                for (job, result) in jobs.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                for job in jobs.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One statement for the batch (its own implicit transaction): each row inserted only if its
/// own guard holds; the rows written come back by `RETURNING`. A failure is everyone's answer.
async fn write(
    writer: &AnyPool,
    jobs: &[Job],
) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
    let mut conn = writer.acquire().await.map_err(map_err)?;
    let mut results = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(MAX_ROWS) {
        let sql = batch_sql(chunk.len());
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for job in chunk {
            q = bind_guarded(q, &job.token, &job.guard, job.now);
        }
        let rows = q.fetch_all(&mut *conn).await.map_err(map_err)?;
        let written: HashSet<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("token_hash"))
            .collect::<Result<_, _>>()
            .map_err(map_err)?;
        results.extend(
            chunk
                .iter()
                .map(|job| Ok(written.contains(job.token.token_hash.as_str()))),
        );
    }
    Ok(results)
}

/// Rows per statement: 15 parameters each stays far below SQLite's limit of 32766.
const MAX_ROWS: usize = 64;

/// `INSERT … SELECT <row 1> WHERE <guard 1> UNION ALL SELECT <row 2> WHERE <guard 2> …
/// RETURNING token_hash`.
fn batch_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(200 + rows * GUARDED_ROW_LEN);
    sql.push_str(INSERT_ACCESS_HEAD);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        guarded_row(&mut sql, i * GUARDED_PARAMS);
    }
    sql.push_str(" RETURNING token_hash");
    sql
}
