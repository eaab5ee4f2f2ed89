//! Group commit for SQLite's one writer: access tokens issued by concurrent requests are written
//! by one statement instead of one transaction each.
//!
//! SQLite has one writer at a time. A thread of its own takes every insert that is waiting (up to
//! [`MAX_BATCH`]) and writes them with one multi-row `INSERT … SELECT … UNION ALL …` (its own
//! implicit transaction), and only then answers each request: a token is committed (as durable as
//! `synchronous = NORMAL` makes a commit) before its response leaves. At low load a batch is one
//! insert, and nothing waits for company.
//!
//! The thread writes through its own rusqlite connection, not through sqlx: sqlx runs each SQLite
//! connection on a thread of its own, and every statement (and every return of a connection to
//! its pool, which pings it) would be a hand-off to that thread and back. While it writes, it
//! holds the store's write turn ([`WriteTurn`]), which every write transaction through sqlx holds
//! too, so that the two connections take turns rather than meet in SQLite's busy handler, which
//! sleeps in whole milliseconds. (Holding sqlx's writer connection instead would cost a ping of
//! that connection, on its own thread, every time it went back to the pool.)
//!
//! Each row is guarded on its own (see `guarded_row` in `tokens.rs`): one request's failed guard
//! does not affect the others of its batch.
//!
//! Other short write transactions that need no decision from the engine between their statements
//! (revoking an access token, rotating a refresh token: each the guard, then its writes) are sent
//! to the same thread as closures over the connection ([`GroupCommit::run`]): those waiting are
//! run in one transaction, each inside a savepoint of its own so that one failure undoes only its
//! own writes, and answered after the commit. Their statements are the sqlx path's SQL, bound by
//! parameter name (`$1`, …).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use latchkey_core::client::cache::ClientGuard;
use latchkey_core::clock::UnixTime;
use latchkey_core::oauth::records::AccessTokenRecord;
use latchkey_core::store::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::direct::bind;
use crate::inline_reader::db_err;
use crate::tokens::{
    GUARDED_PARAMS, GUARDED_ROW_LEN, INSERT_ACCESS_HEAD, guarded_params, guarded_row,
};

/// The turn of SQLite's one writer, between the connections of this process that write: the
/// writer thread holds it while it writes, and every write transaction through sqlx for as long
/// as it is open (`SqlTx`).
pub(crate) type WriteTurn = std::sync::Arc<tokio::sync::Mutex<()>>;

/// Most inserts committed together.
pub(crate) const MAX_BATCH: usize = 128;

struct Job {
    token: AccessTokenRecord,
    guard: ClientGuard,
    now: UnixTime,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// What the writer thread is sent.
#[expect(
    clippy::large_enum_variant,
    reason = "a token insert is the hottest message: boxing it would allocate once more per token"
)]
enum Message {
    Insert(Job),
    Work(Box<dyn Work>),
}

/// A closure sent to the writer thread, run inside the round's transaction and answered once the
/// transaction committed (or failed).
trait Work: Send {
    fn run(&mut self, conn: &Connection);
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Task<T, F> {
    work: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Work for Task<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) {
        if let Some(work) = self.work.take() {
            self.out = Some(in_savepoint(conn, work));
        }
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        let out = match (committed, self.out) {
            (Ok(()), Some(out)) => out,
            (Err(e), _) => Err(e.clone()),
            (Ok(()), None) => Err(StoreError::Database("the write was not run".into())),
        };
        let _ = self.reply.send(out);
    }
}

/// Runs `work` inside a savepoint: its writes are undone if it fails, and only its own.
fn in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT work").map_err(db_err)?;
    let out = work(conn);
    let end = if out.is_ok() {
        "RELEASE work"
    } else {
        "ROLLBACK TO work; RELEASE work"
    };
    conn.execute_batch(end).map_err(db_err)?;
    out
}

/// The handle of the writer task; the task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Message>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer thread for the database file `path`; it writes while holding `turn`.
    pub(crate) fn start(path: &Path, turn: WriteTurn) -> Result<Self, StoreError> {
        let conn = open_writer(path)?;
        let (jobs, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("latchkey-sqlite-commit".into())
            .spawn(move || run(&conn, &turn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { jobs })
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
        self.jobs.send(Message::Insert(job)).ok()?;
        Some(answer.await.unwrap_or_else(|_| Err(stopped())))
    }

    /// Whether the writer thread still takes work (it has not ended on a panic); when it does
    /// not, callers do their work through sqlx.
    pub(crate) fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Runs `work` on the writer thread, in a transaction shared with the other closures waiting
    /// (inside a savepoint of its own), and answers once that transaction committed.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let task = Task {
            work: Some(work),
            out: None,
            reply,
        };
        self.jobs
            .send(Message::Work(Box::new(task)))
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// [`GroupCommit::run`], writing only while `guard` holds at `now`: `None`, and nothing
    /// written, when it does not.
    pub(crate) async fn run_guarded<T, F>(
        &self,
        guard: &ClientGuard,
        now: UnixTime,
        write: F,
    ) -> Result<Option<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let guard = guard.clone();
        self.run(move |conn| {
            if !crate::direct::guard_holds(conn, &guard, now)? {
                return Ok(None);
            }
            write(conn).map(Some)
        })
        .await
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread stopped".into())
}

/// Batches written while holding the write turn before it is let go, so that other transactions
/// get theirs.
const MAX_ROUNDS: usize = 8;

/// The writer's pragmas (`SQLITE_PRAGMAS` in `lib.rs`; the file is in WAL mode already), with the
/// checkpoint backstop of `checkpoint.rs`. No `busy_timeout`: the writer has its own busy
/// handler ([`wait_briefly`]), which a `busy_timeout` would replace.
fn pragmas() -> String {
    format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {};",
        crate::checkpoint::WRITER_AUTOCHECKPOINT
    )
}

/// How long the writer waits for the write lock before it gives up (as long as the readers' and
/// sqlx's `busy_timeout`).
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// How often the writer looks again while it waits.
const BUSY_POLL: Duration = Duration::from_micros(250);

/// The busy handler of the writer and of the checkpointer (`checkpoint.rs`), in place of
/// `busy_timeout`'s. SQLite's own handler sleeps 1, 2, 5, 10, 15, 20, 25… ms between tries: a
/// writer that found the lock busy (almost always the checkpointer's `RESTART` pass) went on
/// sleeping up to 10 ms after it was free, and a `RESTART` pass that waits for the readers to
/// leave the log does so holding the write lock, with every request queued behind it. This one
/// looks again every quarter of a millisecond.
pub(crate) fn wait_briefly(tries: i32) -> bool {
    let waited = BUSY_POLL * u32::try_from(tries).unwrap_or(u32::MAX);
    if waited >= BUSY_WAIT {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.execute_batch(&pragmas()).map_err(db_err)?;
    conn.busy_handler(Some(wait_briefly)).map_err(db_err)?;
    // One prepared statement per batch size.
    conn.set_prepared_statement_cache_capacity(MAX_ROWS + 4);
    Ok(conn)
}

/// What is waiting: inserts and closures, at most [`MAX_BATCH`] in all.
#[derive(Default)]
struct Round {
    inserts: Vec<Job>,
    works: Vec<Box<dyn Work>>,
}

impl Round {
    fn len(&self) -> usize {
        self.inserts.len() + self.works.len()
    }

    fn push(&mut self, message: Message) {
        match message {
            Message::Insert(job) => self.inserts.push(job),
            Message::Work(work) => self.works.push(work),
        }
    }

    /// Takes what is waiting, up to [`MAX_BATCH`] in all.
    fn take(&mut self, rx: &mut mpsc::UnboundedReceiver<Message>) {
        while self.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(message) => self.push(message),
                Err(_) => break,
            }
        }
    }

    /// Writes the inserts (their own statements) and the closures (one transaction), then
    /// answers each.
    fn write(&mut self, conn: &Connection) {
        metrics::histogram!("latchkey_sqlite_group_commit_size").record(self.len() as f64);
        if !self.inserts.is_empty() {
            let results = write(conn, &self.inserts);
            for (job, result) in self.inserts.drain(..).zip(results) {
                let _ = job.reply.send(result);
            }
        }
        if !self.works.is_empty() {
            let committed = conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(db_err)
                .and_then(|()| {
                    for work in &mut self.works {
                        work.run(conn);
                    }
                    conn.execute_batch("COMMIT").map_err(db_err)
                });
            if committed.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            for work in self.works.drain(..) {
                work.answer(committed.as_ref().copied());
            }
        }
    }
}

fn run(conn: &Connection, turn: &WriteTurn, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut round = Round::default();
    // Ends when every handle (every clone of the store) is gone.
    while let Some(message) = rx.blocking_recv() {
        round.push(message);
        round.take(&mut rx);
        let lease = turn.blocking_lock();
        for n in 1..=MAX_ROUNDS {
            round.write(conn);
            if n == MAX_ROUNDS || rx.is_empty() {
                break;
            }
            round.take(&mut rx);
        }
        drop(lease);
    }
}

/// One statement per chunk of the batch (each its own implicit transaction, which takes the
/// write lock at once): each row inserted only if its own guard holds; the rows written come
/// back by `RETURNING`. A failed statement is the answer of every request of its chunk.
fn write(conn: &Connection, jobs: &[Job]) -> Vec<Result<bool, StoreError>> {
    let mut results = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(MAX_ROWS) {
        match write_chunk(conn, chunk) {
            Ok(written) => results.extend(
                chunk
                    .iter()
                    .map(|job| Ok(written.contains(job.token.token_hash.as_str()))),
            ),
            Err(e) => results.extend(chunk.iter().map(|_| Err(e.clone()))),
        }
    }
    results
}

fn write_chunk(conn: &Connection, chunk: &[Job]) -> Result<HashSet<String>, StoreError> {
    let mut statement = conn
        .prepare_cached(&batch_sql(chunk.len()))
        .map_err(db_err)?;
    let mut index = 0;
    for job in chunk {
        for param in guarded_params(&job.token, &job.guard, job.now) {
            index += 1;
            bind(&mut statement, index, &param)?;
        }
    }
    let mut rows = statement.raw_query();
    let mut written = HashSet::with_capacity(chunk.len());
    while let Some(row) = rows.next().map_err(db_err)? {
        written.insert(row.get::<_, String>(0).map_err(db_err)?);
    }
    Ok(written)
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
