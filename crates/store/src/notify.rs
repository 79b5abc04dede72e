//! Cross-process cache invalidation on PostgreSQL: a thread that `LISTEN`s
//! on the channel that the triggers of migration `000006` notify whenever
//! a session ends or a user changes, and hands each change to a callback.
//!
//! The thread owns one connection outside the pool. It polls the socket
//! every 10 ms (a non-blocking read, no round trip), so a change made
//! by another process reaches this one within milliseconds of its commit;
//! every second it runs `SELECT 1` so that a connection that died
//! silently is noticed. After every (re)connection it reports
//! [`Invalidation::Everything`]: what was missed while it was down is
//! unknown. Correctness never depends on it: cached state is trusted for
//! one second at most anyway, so a dead channel only means revocations made
//! elsewhere take up to that second again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use auth::Invalidation;
use diesel::RunQueryDsl as _;
use diesel::connection::SimpleConnection as _;
use kernel::Uuid;

use crate::Store;
use crate::conn::DbConn;

/// The channel the triggers notify (`s:<session id>`, `u:<user id>`, `k:`).
pub const CHANNEL: &str = "sessiond_invalidate";

/// How often the socket is checked for notifications.
const POLL: Duration = Duration::from_millis(10);

/// How often the connection is proven alive with a round trip.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A running listener; dropping it does not stop it, [`Listener::stop`]
/// does.
#[derive(Debug)]
pub struct Listener {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Listener {
    /// Stops the thread (within one poll interval) and waits for it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _panicked = self.thread.join();
    }
}

/// Parses a notification payload; `None` for anything unknown (a newer
/// sessiond sharing the database may send more).
pub fn parse_payload(payload: &str) -> Option<Invalidation> {
    let (kind, id) = payload.split_once(':')?;
    if kind == "k" {
        // Migration 000012: the signing keys changed (`k:`).
        return Some(Invalidation::SigningKeys);
    }
    let id = Uuid::try_parse(id).ok()?;
    match kind {
        "s" => Some(Invalidation::Session(id)),
        "u" => Some(Invalidation::User(id)),
        _ => None,
    }
}

impl Store {
    /// On PostgreSQL, starts the invalidation listener calling `on` for
    /// every change another process (or this one) commits. `None` on
    /// SQLite, where only one process serves a database and invalidates
    /// in-process.
    pub fn listen_invalidations(
        &self,
        on: impl Fn(Invalidation) + Send + 'static,
    ) -> anyhow::Result<Option<Listener>> {
        if self.backend() != crate::Backend::Postgres {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let store = self.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("invalidation-listener".into())
            .spawn(move || store.listen_loop(&flag, &on))?;
        Ok(Some(Listener { stop, thread }))
    }

    fn listen_loop(&self, stop: &AtomicBool, on: &dyn Fn(Invalidation)) {
        let mut backoff = Duration::from_millis(100);
        while !stop.load(Ordering::Acquire) {
            match self.listen_once(stop, on) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "cache invalidation channel down; cached sessions are trusted for one \
                         second at most until it is back"
                    );
                }
            }
            std::thread::park_timeout(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: returns `Ok` when stopped, `Err` when the
    /// connection failed.
    fn listen_once(&self, stop: &AtomicBool, on: &dyn Fn(Invalidation)) -> anyhow::Result<()> {
        let DbConn::Pg(mut conn) = self.manager.open()? else {
            anyhow::bail!("the invalidation listener needs PostgreSQL");
        };
        // Listening never needs a statement timeout; the heartbeat is tiny.
        conn.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        // Whatever changed while not listening is unknown.
        on(Invalidation::Everything);
        tracing::debug!("listening for cache invalidations");
        let mut beat = Instant::now();
        while !stop.load(Ordering::Acquire) {
            for n in conn.notifications_iter() {
                let n = n?;
                match parse_payload(&n.payload) {
                    Some(what) => on(what),
                    None => tracing::debug!(payload = %n.payload, "unknown invalidation"),
                }
            }
            if beat.elapsed() >= HEARTBEAT {
                diesel::sql_query("SELECT 1").execute(&mut conn)?;
                beat = Instant::now();
            }
            std::thread::park_timeout(POLL);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let id = Uuid::now_v7();
        assert_eq!(parse_payload(&format!("s:{id}")), Some(Invalidation::Session(id)));
        assert_eq!(parse_payload(&format!("u:{id}")), Some(Invalidation::User(id)));
        assert_eq!(parse_payload("k:"), Some(Invalidation::SigningKeys));
        assert_eq!(parse_payload("x:1"), None);
        assert_eq!(parse_payload("s:not-a-uuid"), None);
        assert_eq!(parse_payload(""), None);
    }
}
