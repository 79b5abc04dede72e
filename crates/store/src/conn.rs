//! Connections: one enum over both backends, and the r2d2 manager that opens
//! and prepares them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use diesel::r2d2::R2D2Connection as _;
use diesel::{Connection as _, PgConnection, SqliteConnection};

use crate::Backend;

/// A connection to either database. The derive generates `MultiBackend`, the
/// backend of the queries that are written once for both.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL (libpq).
    Pg(PgConnection),
    /// SQLite (bundled).
    Sqlite(SqliteConnection),
}

/// Where the connections go, parsed from the URL.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A libpq connection URI.
    Pg(String),
    /// A database file (or `:memory:`).
    Sqlite(PathBuf),
}

impl Target {
    /// Parses `postgres://…`, `postgresql://…`, `sqlite://path` or `sqlite:path`.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Pg(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unsupported database URL: expected postgres://, postgresql:// or sqlite://"
                )
            })?;
        // `sqlite://db.sqlite3?mode=rwc` (sqlx style): the query is not part
        // of the file name.
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        if path.is_empty() {
            anyhow::bail!("the SQLite URL names no file");
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Pg(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub(crate) fn is_memory(&self) -> bool {
        matches!(self, Self::Sqlite(p) if p.as_os_str() == ":memory:")
    }
}

/// Adds libpq's `connect_timeout` (whole seconds, at least 2 as libpq wants)
/// unless the URL sets one, so that an unreachable server fails fast.
pub(crate) fn with_connect_timeout(url: &str, timeout: Duration) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let secs = (timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)).max(2);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={secs}")
}

/// Opens and prepares pooled connections.
#[derive(Debug, Clone)]
pub(crate) struct Manager {
    pub(crate) target: Target,
    pub(crate) timeout: Duration,
}

impl Manager {
    pub(crate) fn open(&self) -> Result<DbConn, diesel::r2d2::Error> {
        use diesel::r2d2::Error;
        let ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        match &self.target {
            Target::Pg(url) => {
                let mut c = PgConnection::establish(&with_connect_timeout(url, self.timeout))
                    .map_err(Error::ConnectionError)?;
                // A statement that waits longer than the timeout (a lock, a
                // stuck server) fails instead of holding a request forever.
                // No JIT: every statement here reads or writes a few
                // thousand rows at most, and compiling one whose estimated
                // cost crosses `jit_above_cost` took longer (measured:
                // 27 ms) than running it (3 ms).
                c.batch_execute(&format!("SET statement_timeout = {ms}; SET jit = off"))
                    .map_err(Error::QueryError)?;
                Ok(DbConn::Pg(c))
            }
            Target::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    Error::ConnectionError(diesel::ConnectionError::InvalidConnectionUrl(
                        "the SQLite path is not UTF-8".into(),
                    ))
                })?;
                let mut c = SqliteConnection::establish(path).map_err(Error::ConnectionError)?;
                // busy_timeout first: switching to WAL needs a lock that a
                // concurrently opening connection may hold. `synchronous =
                // FULL` syncs the WAL at every commit: what was answered
                // 2xx survives a power loss too, not only a crash of the
                // process (NORMAL would be faster and only crash-safe).
                // A page cache of 512 KiB per connection instead of 2 MiB:
                // the file's pages stay in the OS's cache anyway, and
                // sixteen pooled connections each filling 2 MiB were a
                // third of a busy server's memory.
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                     PRAGMA cache_size = -512;",
                    ms.max(5000)
                ))
                .map_err(Error::QueryError)?;
                Ok(DbConn::Sqlite(c))
            }
        }
    }
}

/// How long after a use without error a pooled connection is handed out
/// again without a `SELECT 1` first.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// A pooled connection and when it last served a use without error.
///
/// The pool pings a connection before handing it out, except one that
/// served a use without error less than [`TRUSTED_FOR`] ago: on a busy
/// server that saves a round trip per request (a refresh takes two
/// connections), while a connection that sat idle, or whose last use
/// failed in any way, is still checked first. The cost: a database that
/// died within that second fails the requests on such connections
/// (503) instead of the pool finding out first.
pub struct PoolConn {
    db: DbConn,
    last_ok: Option<Instant>,
}

impl PoolConn {
    /// Records the outcome of a use: success keeps the connection trusted
    /// for [`TRUSTED_FOR`], an error of any kind has it pinged first.
    pub(crate) fn used<T, E>(&mut self, result: Result<T, E>) -> Result<T, E> {
        self.last_ok = result.is_ok().then(Instant::now);
        result
    }
}

impl std::ops::Deref for PoolConn {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        &self.db
    }
}

impl std::ops::DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.db
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PoolConn, Self::Error> {
        Ok(PoolConn { db: self.open()?, last_ok: None })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), Self::Error> {
        // Trust is used up here: only a use that reports its success
        // through `PoolConn::used` earns it again, so a path that does not
        // report has its connection checked next time.
        if conn.last_ok.take().is_some_and(|at| at.elapsed() < TRUSTED_FOR) {
            return Ok(());
        }
        conn.db.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.db.is_broken()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(matches!(Target::parse("postgres://u@h/db"), Ok(Target::Pg(_))));
        assert!(matches!(Target::parse("postgresql://u@h/db"), Ok(Target::Pg(_))));
        for (url, path) in [
            ("sqlite://data/s.db", "data/s.db"),
            ("sqlite:///tmp/s.db", "/tmp/s.db"),
            ("sqlite:s.db", "s.db"),
            ("sqlite://s.db?mode=rwc", "s.db"),
            ("sqlite::memory:", ":memory:"),
        ] {
            match Target::parse(url) {
                Ok(Target::Sqlite(p)) => assert_eq!(p, PathBuf::from(path), "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(Target::parse("mysql://x").is_err());
        assert!(Target::parse("sqlite://").is_err());
    }

    #[test]
    fn connect_timeout_is_added_once() {
        let t = Duration::from_millis(500);
        assert_eq!(with_connect_timeout("postgres://h/db", t), "postgres://h/db?connect_timeout=2");
        assert_eq!(
            with_connect_timeout("postgres://h/db?options=x", Duration::from_secs(3)),
            "postgres://h/db?options=x&connect_timeout=3"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?connect_timeout=9", t),
            "postgres://h/db?connect_timeout=9"
        );
    }

    #[test]
    fn postgres_connections_time_out_and_never_jit() {
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            v: String,
        }
        let Some(url) = crate::testing::fresh_postgres_url() else { return };
        let manager = Manager { target: Target::Pg(url), timeout: Duration::from_millis(1500) };
        let DbConn::Pg(mut c) = manager.open().expect("open") else { unreachable!() };
        use diesel::RunQueryDsl as _;
        let mut show = |name: &str| {
            diesel::sql_query(format!("SELECT current_setting('{name}') AS v"))
                .get_result::<Setting>(&mut c)
                .expect(name)
                .v
        };
        assert_eq!(show("statement_timeout"), "1500ms");
        assert_eq!(show("jit"), "off");
    }

    #[test]
    fn sqlite_connections_are_durable_and_enforce_foreign_keys() {
        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            v: i64,
        }
        let dir = std::env::temp_dir().join(format!("sessiond-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let manager =
            Manager { target: Target::Sqlite(dir.join("t.db")), timeout: Duration::from_secs(2) };
        let DbConn::Sqlite(mut c) = manager.open().expect("open") else { unreachable!() };
        use diesel::RunQueryDsl as _;
        let read = |c: &mut SqliteConnection, pragma: &str| {
            diesel::sql_query(format!("SELECT {pragma} AS v FROM pragma_{pragma}"))
                .get_result::<Setting>(c)
                .expect(pragma)
                .v
        };
        // 2 = FULL: every commit syncs the WAL before it is acknowledged.
        assert_eq!(read(&mut c, "synchronous"), 2);
        assert_eq!(read(&mut c, "foreign_keys"), 1);
        // KiB when negative.
        assert_eq!(read(&mut c, "cache_size"), -512);
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
