//! SQLite through rusqlite, its one driver: the statements, the readers and the writer thread.
//!
//! - **Reads** run on the caller's thread, on a connection taken from a small pool ([`Readers`]):
//!   a WAL reader never waits for the writer, and the pages it needs are in memory, so a read is
//!   as short as a signature check and needs no hand-off to another thread.
//! - **Writes** all go through one thread that owns the one writer connection ([`Writer`]). It
//!   takes work from a bounded queue: a unit of work (a use case's whole write, see
//!   `latchkey_core::store::Store::run`) is run with the others waiting in one transaction, each
//!   inside a savepoint of its own, and answered once that transaction committed (group commit:
//!   one sync of the log for the whole group). A transaction opened by a service
//!   (`Store::begin`) has the thread to itself, statement by statement, until it commits, rolls
//!   back, or stays idle past [`StoreOptions::transaction_idle_timeout`](crate::StoreOptions),
//!   when it is rolled back so that the writes queued behind it go on.
//! - The writer runs with `synchronous = FULL`: an acknowledged write survives power loss.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use latchkey_core::store::{StoreError, Work};
use rusqlite::{CachedStatement, Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::error::sqlite_err;
use crate::sql::{Columns, Decode, Param};
use crate::tx::SqlTx;

/// The names of the parameters, `$1` to `$32`.
const NAMES: [&str; 32] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16", "$17", "$18", "$19", "$20", "$21", "$22", "$23", "$24", "$25", "$26", "$27", "$28",
    "$29", "$30", "$31", "$32",
];

/// A prepared statement with `$1`, `$2`, … bound to `params` by name, so that a statement that
/// names them out of order binds each where PostgreSQL does.
fn statement<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Param<'_>],
) -> Result<CachedStatement<'c>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(sqlite_err)?;
    for (i, param) in params.iter().enumerate() {
        let name = NAMES
            .get(i)
            .ok_or_else(|| StoreError::Database(format!("too many parameters for: {sql}")))?;
        let Some(index) = statement.parameter_index(name).map_err(sqlite_err)? else {
            // A parameter the statement does not use (SQLite drops unused ones).
            continue;
        };
        match param {
            Param::Text(v) => statement.raw_bind_parameter(index, v.as_ref()),
            Param::OptText(v) => statement.raw_bind_parameter(index, v.as_deref()),
            Param::Int(v) => statement.raw_bind_parameter(index, v),
            Param::OptInt(v) => statement.raw_bind_parameter(index, v),
        }
        .map_err(sqlite_err)?;
    }
    Ok(statement)
}

/// Runs a statement that returns no rows; how many rows it changed.
pub(crate) fn execute(
    conn: &Connection,
    sql: &str,
    params: &[Param<'_>],
) -> Result<u64, StoreError> {
    Ok(statement(conn, sql, params)?
        .raw_execute()
        .map_err(sqlite_err)? as u64)
}

/// Runs a query; its rows, decoded.
pub(crate) fn fetch<T>(
    conn: &Connection,
    sql: &str,
    params: &[Param<'_>],
    decode: Decode<T>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = statement(conn, sql, params)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        out.push(decode(row as &dyn Columns)?);
    }
    Ok(out)
}

/// The database file of a SQLite URL (`sqlite://PATH?…` or `sqlite:PATH`). An in-memory
/// database is refused: the readers and the writer are separate connections.
pub(crate) fn file_of(url: &str) -> Result<PathBuf, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Database("not a SQLite URL".into()))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return Err(StoreError::Database(
            "SQLite needs a database file (an in-memory database is not supported)".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

/// How long a connection waits for another process's lock (a second replica, the CLI).
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// How often it looks again: SQLite's own busy handler sleeps 1, 2, 5, 10 ms between looks.
const BUSY_POLL: Duration = Duration::from_micros(250);

/// A busy handler that looks again every [`BUSY_POLL`], for [`BUSY_WAIT`] at most.
pub(crate) fn wait_briefly(tries: i32) -> bool {
    let waited = BUSY_POLL * u32::try_from(tries).unwrap_or(u32::MAX);
    if waited >= BUSY_WAIT {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

/// Opens a connection to `path` (created if missing) with `pragmas`.
pub(crate) fn open(path: &Path, pragmas: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    conn.busy_handler(Some(wait_briefly)).map_err(sqlite_err)?;
    conn.execute_batch(pragmas).map_err(sqlite_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The writer's pragmas. `synchronous = FULL`: a commit is on disk when it returns. The writer
/// checkpoints only as a backstop; `checkpoint.rs` does it off the writer's path.
fn writer_pragmas() -> String {
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA wal_autocheckpoint = {};",
        crate::checkpoint::WRITER_AUTOCHECKPOINT
    )
}

/// Readers keep a page cache of 1 MiB each (SQLite's default is 2 MiB): the operating system
/// caches the pages anyway.
const READER_PRAGMAS: &str =
    "PRAGMA query_only = ON; PRAGMA foreign_keys = ON; PRAGMA cache_size = -1024;";

/// SQLite's read connections, used on the caller's thread.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    keep: usize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.path)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl Readers {
    /// Readers of `path`, keeping at most `keep` idle connections.
    pub(crate) fn new(path: PathBuf, keep: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::with_capacity(keep)),
            keep,
        }
    }

    /// An idle connection, or a new one.
    pub(crate) fn take(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match idle {
            Some(c) => Ok(c),
            None => open(&self.path, READER_PRAGMAS),
        }
    }

    /// Keeps `conn` for the next read, unless enough are kept.
    pub(crate) fn give_back(&self, conn: Connection) {
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(conn);
        }
    }
}

/// A statement of an open transaction, run on the writer thread.
pub(crate) type Statement = Box<dyn FnOnce(&mut Connection) + Send>;

/// What a transaction opened by a service sends the writer thread.
pub(crate) enum Step {
    Run(Statement),
    Commit(oneshot::Sender<Result<(), StoreError>>),
}

/// What the writer thread is sent.
enum Job {
    /// A unit of work, committed with the others waiting.
    Unit {
        work: Work,
        reply: oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
    },
    /// Work that has the connection to itself, outside any transaction (migrations, tooling).
    Exclusive(Statement),
    /// A transaction opened by a service: the thread runs its steps until it ends.
    Session {
        begun: oneshot::Sender<Result<(), StoreError>>,
        steps: std::sync::mpsc::Receiver<Step>,
    },
}

/// Most units of work committed together.
const MAX_GROUP: usize = 128;

/// The handle of the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// The answer when the queue is full: the caller answers 503 with `Retry-After`.
fn queue_full() -> StoreError {
    StoreError::Unavailable("the SQLite writer's queue is full".into())
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer stopped".into())
}

impl Writer {
    /// Opens the writer connection to `path` (creating the file and putting it in WAL mode) and
    /// starts its thread, with a queue of `queue` jobs.
    pub(crate) fn start(path: &Path, queue: usize, idle: Duration) -> Result<Self, StoreError> {
        let mut conn = open(path, &writer_pragmas())?;
        let (jobs, rx) = mpsc::channel(queue.max(1));
        std::thread::Builder::new()
            .name("latchkey-sqlite-writer".into())
            .spawn(move || run(&mut conn, rx, idle))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { jobs })
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => queue_full(),
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })
    }

    /// Runs a unit of work with the others waiting, and answers once they committed.
    pub(crate) async fn unit(&self, work: Work) -> Result<Box<dyn Any + Send>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Unit { work, reply })?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Runs `work` on the writer connection, alone and outside any transaction.
    pub(crate) async fn exclusive<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Exclusive(Box::new(move |conn| {
            let _ = reply.send(work(conn));
        })))?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Opens a transaction on the writer thread: its steps go through the sender returned.
    pub(crate) async fn session(&self) -> Result<std::sync::mpsc::Sender<Step>, StoreError> {
        let (begun, answer) = oneshot::channel();
        let (steps, rx) = std::sync::mpsc::channel();
        self.send(Job::Session { begun, steps: rx })?;
        answer.await.unwrap_or_else(|_| Err(stopped()))?;
        Ok(steps)
    }
}

fn run(conn: &mut Connection, mut rx: mpsc::Receiver<Job>, idle: Duration) {
    let mut next = None;
    loop {
        let Some(job) = next.take().or_else(|| rx.blocking_recv()) else {
            return;
        };
        match job {
            Job::Unit { work, reply } => {
                let mut group = vec![(work, reply)];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(Job::Unit { work, reply }) => group.push((work, reply)),
                        Ok(session) => {
                            next = Some(session);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(conn, group);
            }
            Job::Session { begun, steps } => run_session(conn, begun, &steps, idle),
            Job::Exclusive(work) => work(conn),
        }
    }
}

type Reply = oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>;

/// Runs the units of work of a group in one transaction, each in a savepoint of its own (a
/// failure undoes its own writes only), and answers each once the transaction committed. A unit
/// whose caller is gone (the request was cancelled) is not run.
fn commit_group(conn: &mut Connection, group: Vec<(Work, Reply)>) {
    let group: Vec<_> = group.into_iter().filter(|(_, r)| !r.is_closed()).collect();
    if group.is_empty() {
        return;
    }
    metrics::histogram!("latchkey_sqlite_group_commit_size").record(group.len() as f64);
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_err) {
        for (_, reply) in group {
            let _ = reply.send(Err(e.clone()));
        }
        return;
    }
    let mut outcomes = Vec::with_capacity(group.len());
    for (work, reply) in group {
        outcomes.push((in_savepoint(conn, work), reply));
    }
    let committed = conn.execute_batch("COMMIT").map_err(sqlite_err);
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for (outcome, reply) in outcomes {
        let answer = match &committed {
            Ok(()) => outcome,
            Err(e) => Err(e.clone()),
        };
        let _ = reply.send(answer);
    }
}

/// Runs one unit of work inside a savepoint. Its future only ever waits on this connection, which
/// answers at once, so it is driven to its end here.
fn in_savepoint(conn: &mut Connection, work: Work) -> Result<Box<dyn Any + Send>, StoreError> {
    conn.execute_batch("SAVEPOINT unit").map_err(sqlite_err)?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut tx = SqlTx::writer(conn);
        futures_executor::block_on(work(&mut tx))
    }))
    .unwrap_or_else(|_| Err(StoreError::Database("a unit of work panicked".into())));
    let end = if outcome.is_ok() {
        "RELEASE unit"
    } else {
        "ROLLBACK TO unit; RELEASE unit"
    };
    conn.execute_batch(end).map_err(sqlite_err)?;
    outcome
}

/// Runs a transaction opened by a service, step by step, until it commits or ends. One idle for
/// longer than `idle` is rolled back, so that a task that holds it while it waits for another
/// write of its own cannot stop every writer.
fn run_session(
    conn: &mut Connection,
    begun: oneshot::Sender<Result<(), StoreError>>,
    steps: &std::sync::mpsc::Receiver<Step>,
    idle: Duration,
) {
    if begun.is_closed() {
        return;
    }
    let started = conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_err);
    let ok = started.is_ok();
    if begun.send(started).is_err() || !ok {
        if ok {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return;
    }
    loop {
        match steps.recv_timeout(idle) {
            Ok(Step::Run(statement)) => statement(conn),
            Ok(Step::Commit(reply)) => {
                let committed = conn.execute_batch("COMMIT").map_err(sqlite_err);
                if committed.is_err() && !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                let _ = reply.send(committed);
                return;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    idle_ms = idle.as_millis() as u64,
                    "a SQLite write transaction sat idle too long and was rolled back"
                );
                let _ = conn.execute_batch("ROLLBACK");
                return;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = conn.execute_batch("ROLLBACK");
                return;
            }
        }
    }
}
