//! Storage adapter of sessiond: one [`Store`] implements every store port
//! (`accounts::UserStore`, `sessions::SessionStore`,
//! `tokens::RefreshTokenStore`, `tokens::KeyStore`, `tokens::SigningKeyStore`, `auth::PrincipalStore`,
//! `auth::AuditLog`, `analytics::TrackingStore`) over PostgreSQL and SQLite
//! from one set of diesel queries.
//!
//! The queries are written once against a `#[derive(MultiConnection)]` enum
//! over `PgConnection` and `SqliteConnection`; the few that need a dialect
//! feature the common backend lacks (`ON CONFLICT`, `RETURNING`) are
//! compiled once per backend by a macro, which also picks the backend's
//! own text for the few raw SQL reads. Ids are UUID strings, instants are
//! milliseconds since the epoch and enums are their storage names, so both
//! schemas have the same tables and columns. Each backend has its own
//! sequence of migrations (`migrations/postgres`, `migrations/sqlite`):
//! the names and numbers differ, since PostgreSQL has more of them (the
//! PL/pgSQL functions of ingest, folds and refresh rotation, and the
//! invalidation triggers), whose work SQLite does in Rust.
//!
//! Every method is synchronous and blocks on the pool and the database: call
//! it from a blocking thread pool, never from an async executor.
//!
//! [`PageBatcher`] implements `analytics::PageWriter` over the store: page
//! visits group-committed by its own threads, and folded into the page
//! aggregates behind them.
//!
//! ```no_run
//! let store = store::Store::connect("sqlite://sessiond.db", &store::StoreOptions::default())?;
//! store.migrate()?;
//! store.ping()?;
//! # anyhow::Ok(())
//! ```

mod accounts_store;
mod analytics_store;
mod auth_store;
#[cfg(any(test, feature = "bulk"))]
pub mod bulk;
mod conn;
mod keys_store;
pub mod notify;
mod page_batcher;
mod schema;
mod sessions_store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod throttle_store;
mod tokens_store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness as _, embed_migrations};

use conn::{DbConn, Manager, Target};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Key of the PostgreSQL advisory lock that serialises concurrent
/// migrations (two instances starting at once).
const MIGRATION_LOCK: i64 = 0x5e55_10d0_0001;

/// Jobs that one process at a time should run against a shared database
/// (see [`Store::exclusively`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// The background sweepers (retention purge, abandoned tracked
    /// sessions).
    Sweep,
}

impl Job {
    /// The job's PostgreSQL advisory lock key.
    fn lock_key(self) -> i64 {
        match self {
            Self::Sweep => 0x5e55_10d0_0002,
        }
    }
}

/// What the pool has been through: checkouts and their waits (counted by
/// [`Store::conn`]), and whether the database is unreachable now (told by
/// r2d2's handlers, which the pool owns: hence the shared wrapper).
#[derive(Debug, Default)]
struct PoolEvents {
    checkouts: AtomicU64,
    wait_nanos: AtomicU64,
    timeouts: AtomicU64,
    /// The latest attempt to open a connection failed, and none succeeded
    /// since. r2d2 retries a failed attempt in the background (every
    /// second at most) until one succeeds, which clears this.
    unreachable: AtomicBool,
}

#[derive(Debug)]
struct SharedPoolEvents(Arc<PoolEvents>);

impl r2d2::HandleEvent for SharedPoolEvents {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        if self.0.unreachable.swap(false, Ordering::AcqRel) {
            tracing::info!("database reachable again");
        }
    }
}

impl r2d2::HandleError<diesel::r2d2::Error> for SharedPoolEvents {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        // A failed check of an open connection says little about the
        // server (a proxy may have dropped an idle one); a failed attempt
        // to open one says it cannot be reached.
        if matches!(error, diesel::r2d2::Error::ConnectionError(_)) {
            self.0.unreachable.store(true, Ordering::Release);
        }
        tracing::warn!(%error, "database connection failed");
    }
}

/// How often a request waiting for a connection checks whether the
/// database was found unreachable meanwhile (and gives up at once).
const CHECKOUT_SLICE: Duration = Duration::from_millis(100);

/// The `counters` row that readiness probes write ([`Store::probe_write`]);
/// its value counts the probes and means nothing else.
const WRITE_PROBE: &str = "write_probe";

/// Pool settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection (and, on PostgreSQL, the longest a
    /// statement may run) before failing: a dead database fails fast
    /// instead of hanging requests.
    pub timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_connections: 16, timeout: Duration::from_secs(2) }
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// The database could not be reached in time: no connection within the
/// timeout, a lost connection, a statement timeout, a database locked for
/// too long. Store errors carry it in their chain (see [`is_unavailable`])
/// so that the HTTP edge can answer 503 rather than 500.
pub use kernel::Unavailable;
pub use page_batcher::PageBatcher;

/// Whether `error` (from any store method) means the database is
/// unavailable rather than a bug.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    Unavailable::in_chain(error.chain())
}

/// The storage adapter: a pool of connections to one database. Cheap to
/// clone; clones share the pool.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    /// Checkouts and their waits, for metrics.
    pool_events: Arc<PoolEvents>,
    /// Opens connections outside the pool (the invalidation listener).
    manager: Manager,
    backend: Backend,
    /// The longest wait for a connection.
    timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

type Pooled = r2d2::PooledConnection<Manager>;

impl Store {
    /// Opens a pool to `url`: `sqlite://path` or `sqlite:path` (the file and
    /// its directory are created when missing; `sqlite::memory:` gives a
    /// private in-memory database on a single connection), or `postgres://`
    /// / `postgresql://` (a libpq URI). Fails when no connection can be
    /// made within the timeout. Does not migrate.
    pub fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Store> {
        let target = Target::parse(url)?;
        let backend = target.backend();
        let memory = target.is_memory();
        if let Target::Sqlite(path) = &target
            && !memory
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).context("creating the SQLite database directory")?;
        }
        let timeout = options.timeout.max(Duration::from_millis(1));
        let pool_events = Arc::new(PoolEvents::default());
        let mut builder = r2d2::Pool::builder()
            .max_size(options.max_connections.max(1))
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .error_handler(Box::new(SharedPoolEvents(pool_events.clone())))
            .event_handler(Box::new(SharedPoolEvents(pool_events.clone())));
        if memory {
            // Every connection to `:memory:` is its own database: keep one,
            // forever.
            builder = builder.max_size(1).idle_timeout(None).max_lifetime(None);
        }
        let manager = Manager { target, timeout };
        let pool = builder
            .build(manager.clone())
            .map_err(|e| anyhow::Error::new(Unavailable(Box::new(e))))
            .context("connecting to the database")?;
        Ok(Store { pool, pool_events, manager, backend, timeout })
    }

    /// Applies the pending embedded migrations of the backend. Safe when
    /// several instances start at once: PostgreSQL serialises them with an
    /// advisory lock, SQLite with an immediate transaction.
    pub fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self.conn()?;
        let applied = match &mut **conn {
            DbConn::Pg(c) => c.transaction(|c| {
                // Waiting for another instance's migration, or building an
                // index on a big table, may take longer than a request may.
                c.batch_execute("SET LOCAL statement_timeout = 0")?;
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                    .execute(c)?;
                c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len())
            }),
            DbConn::Sqlite(c) => c.immediate_transaction(|c| {
                c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len())
            }),
        }
        .map_err(|e| anyhow::anyhow!(e))
        .context("migrating the database")?;
        if applied > 0 {
            tracing::info!(applied, backend = ?self.backend, "database migrated");
        }
        Ok(())
    }

    /// Checks that the database answers (`SELECT 1`).
    pub fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.conn()?;
        diesel::sql_query("SELECT 1")
            .execute(&mut **conn)
            .map_err(|e| db_err(e, "pinging the database"))?;
        Ok(())
    }

    /// Checks that the database takes a write, for readiness probes: one
    /// committed write transaction (an upsert of the `write_probe` row of
    /// `counters`). A database that answers reads but refuses writes (a
    /// full disk, a read-only file or file system, a PostgreSQL standby)
    /// cannot serve logins or tracking, so it is not ready; and since the
    /// probe really commits, readiness turns ready again by itself as soon
    /// as writes succeed.
    pub fn probe_write(&self) -> anyhow::Result<()> {
        self.write_tx("probing a database write", |c| {
            per_backend!(c, |c| diesel::insert_into(schema::counters::table)
                .values(
                    (schema::counters::name.eq(WRITE_PROBE), schema::counters::value.eq(0_i64),)
                )
                .on_conflict(schema::counters::name)
                .do_update()
                .set(schema::counters::value.eq(schema::counters::value + 1_i64))
                .execute(c))
        })?;
        Ok(())
    }

    /// The database behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `f` unless another process sharing the database is running the
    /// same `job`: `Ok(None)` then. On PostgreSQL a session-level advisory
    /// lock, held on one pooled connection while `f` runs (on others), and
    /// released with the connection if this process dies; on SQLite, where
    /// one process serves a database, `f` simply runs. The jobs are
    /// idempotent, so this is about not wasting work and not fighting over
    /// rows, not about correctness.
    pub fn exclusively<T>(&self, job: Job, f: impl FnOnce() -> T) -> anyhow::Result<Option<T>> {
        if self.backend != Backend::Postgres {
            return Ok(Some(f()));
        }
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let key = job.lock_key();
        let mut conn = self.conn()?;
        let got: Locked =
            diesel::sql_query(format!("SELECT pg_try_advisory_lock({key}) AS locked"))
                .get_result(&mut **conn)
                .map_err(|e| db_err(e, "taking a job lock"))?;
        if !got.locked {
            return Ok(None);
        }
        let value = f();
        // Unlocking fails only on a broken connection, which the pool then
        // discards: closing the database session releases the lock too.
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
            .map_err(|e| db_err(e, "releasing a job lock"))?;
        Ok(Some(value))
    }

    /// The connection pool now, and its checkouts since start.
    pub fn pool_stats(&self) -> kernel::PoolStats {
        let state = self.pool.state();
        kernel::PoolStats {
            max: self.pool.max_size(),
            open: state.connections,
            idle: state.idle_connections,
            checkouts: self.pool_events.checkouts.load(Ordering::Relaxed),
            wait_nanos: self.pool_events.wait_nanos.load(Ordering::Relaxed),
            timeouts: self.pool_events.timeouts.load(Ordering::Relaxed),
        }
    }

    /// A pooled connection, or [`Unavailable`]: after the timeout, or at
    /// once while the database is known to be unreachable and no
    /// connection is open (waiting could only end the same way, and a
    /// pile of requests each holding a thread for the whole timeout is
    /// what takes a server down during an outage).
    fn conn(&self) -> anyhow::Result<Pooled> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let got = loop {
            if self.pool_events.unreachable.load(Ordering::Acquire)
                && self.pool.state().connections == 0
            {
                break Err(anyhow::anyhow!("the database is unreachable"));
            }
            let slice = deadline.saturating_duration_since(Instant::now()).min(CHECKOUT_SLICE);
            match self.pool.get_timeout(slice) {
                Ok(conn) => break Ok(conn),
                Err(e) if Instant::now() >= deadline => break Err(anyhow::Error::new(e)),
                Err(_) => {}
            }
        };
        let events = &self.pool_events;
        match got {
            Ok(conn) => {
                events.checkouts.fetch_add(1, Ordering::Relaxed);
                let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                events.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
                Ok(conn)
            }
            Err(e) => {
                events.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(anyhow::Error::new(Unavailable(e.into()))
                    .context("getting a database connection"))
            }
        }
    }

    /// Runs `f` in a transaction on a pooled connection. On SQLite the
    /// transaction is `BEGIN IMMEDIATE`: it takes the write lock up front, so
    /// a transaction that reads before it writes can never fail with
    /// `SQLITE_BUSY_SNAPSHOT` (busy_timeout only helps when waiting for the
    /// lock, not for a stale snapshot).
    fn write_tx<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut DbConn) -> QueryResult<T>,
    ) -> anyhow::Result<T> {
        let mut conn = self.conn()?;
        let done = write_tx(&mut conn, f);
        conn.used(done).map_err(|e| db_err(e, what))
    }

    /// Runs `f` on a pooled connection, outside of any explicit transaction.
    fn run<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut DbConn) -> QueryResult<T>,
    ) -> anyhow::Result<T> {
        let mut conn = self.conn()?;
        let done = f(&mut conn);
        conn.used(done).map_err(|e| db_err(e, what))
    }
}

/// See [`Store::write_tx`].
fn write_tx<T>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> QueryResult<T>) -> QueryResult<T> {
    if let DbConn::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        match f(conn) {
            Ok(value) => {
                <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
                Ok(value)
            }
            Err(e) => {
                // The first error is the one worth reporting; a failed
                // rollback leaves the connection broken and r2d2 drops it.
                let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(conn);
                Err(e)
            }
        }
    } else {
        conn.transaction(f)
    }
}

/// Wraps a query error with what was being done, marking outages as
/// [`Unavailable`]. Database messages are kept for the logs; they never name
/// SQL text, and the HTTP edge shows a generic 500 anyway.
fn db_err(e: DieselError, what: &'static str) -> anyhow::Error {
    let unavailable = match &e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            // A PostgreSQL that only reads (a standby after a failover, or
            // `default_transaction_read_only`): no write can succeed now.
            | DatabaseErrorKind::ReadOnlyTransaction,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => {
            let m = info.message();
            // PostgreSQL statement_timeout / lost server; SQLite busy past
            // busy_timeout.
            m.contains("canceling statement due to statement timeout")
                || m.contains("server closed the connection")
                // The server shutting down (SQLSTATE 57P01..57P03).
                || m.contains("terminating connection")
                || m.contains("the database system is")
                || m.contains("database is locked")
                || m.contains("database table is locked")
                || storage_failure(m)
        }
        DieselError::BrokenTransactionManager => true,
        _ => false,
    };
    let e = if unavailable {
        anyhow::Error::new(Unavailable(Box::new(e)))
    } else {
        anyhow::Error::new(e)
    };
    e.context(what)
}

/// Whether a database message says the storage under the database refuses
/// writes: a full disk or a file system gone read-only (SQLite's
/// `SQLITE_FULL`, `SQLITE_READONLY`, `SQLITE_IOERR`, `SQLITE_CANTOPEN`;
/// PostgreSQL's `disk_full` and failed file extensions). Nothing about the
/// request is wrong and nothing is lost (the transaction rolled back), so
/// it is an outage (503), and it ends by itself once space is freed or the
/// file is writable again.
fn storage_failure(message: &str) -> bool {
    const MESSAGES: [&str; 7] = [
        "database or disk is full",
        "attempt to write a readonly database",
        "disk I/O error",
        "unable to open database file",
        "No space left on device",
        "could not extend file",
        "could not write to file",
    ];
    MESSAGES.iter().any(|m| message.contains(m))
}

/// Runs `$body` with `$c` bound to the concrete connection of either
/// backend, for the queries the common `MultiBackend` cannot express (it
/// has no `ON CONFLICT` and no `RETURNING`). The body is compiled once per backend.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::conn::DbConn::Pg($c) => $body,
            $crate::conn::DbConn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// Parses a stored id.
fn parse_id(s: &str) -> anyhow::Result<kernel::Uuid> {
    kernel::Uuid::parse_str(s).with_context(|| format!("stored id {s:?} is not a UUID"))
}
