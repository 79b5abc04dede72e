//! Background work of a serving process: writing session activity behind,
//! purging sessions past their retention, forgetting old failed logins,
//! the addresses accounts logged in from past the retention, and idle
//! rate-limit counters, folding page visits left unfolded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use analytics::AnalyticsService;
use auth::AuthService;
use kernel::{Clock as _, SystemClock};
use sessions::SessionStore;
use store::{Job, PageBatcher, Store};

/// How often the signing keys are read again: every instance signs with a
/// new key at most this long after a rotation, even without notifications.
const KEY_RELOAD: Duration = Duration::from_secs(1);

/// Key reloads between two checks of the rotation schedule.
const KEY_HOUSEKEEPING_TICKS: u32 = 60;

/// Sessions deleted per statement, so a large backlog never holds locks
/// for long.
pub const PURGE_BATCH: u32 = 1000;

/// The analytics side of the background work: the use cases (closing
/// idle tracked sessions) and the page batcher (folds, the last drain).
pub struct Tracking {
    /// The analytics use cases.
    pub service: Arc<AnalyticsService>,
    /// The group-commit writer of page visits the service writes through.
    pub pages: Arc<PageBatcher>,
}

/// Running background threads; [`Background::stop`] ends them after a last
/// flush.
pub struct Background {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    auth: Arc<AuthService>,
    pages: Arc<PageBatcher>,
}

impl Background {
    /// Starts the activity flusher and the sweepers (session retention,
    /// abandoned tracked sessions, page visits left unfolded). `flush_every` is how often pending
    /// `last_activity` marks are written: each session is marked at most
    /// once a minute, so it only bounds how stale the database copy is
    /// (and what a crash can lose: activity timestamps, never a session or
    /// token).
    pub fn start(
        auth: Arc<AuthService>,
        tracking: Tracking,
        rate_limits: Arc<http_api::RateLimits>,
        store: Store,
        retention: kernel::Duration,
        sweep_every: Duration,
        flush_every: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flusher = {
            let (auth, stop) = (auth.clone(), stop.clone());
            every(flush_every, stop, move || {
                if let Err(e) = auth.flush_activity() {
                    tracing::warn!(error = %e, "cannot write session activity yet; will retry");
                }
            })
        };
        let Tracking { service: tracked, pages } = tracking;
        let (logins, folds) = (auth.clone(), pages.clone());
        let sweeper = every(sweep_every, stop.clone(), move || {
            // Rate-limit counters are per process: every process forgets
            // its own idle clients.
            rate_limits.housekeep();
            // Several processes sharing PostgreSQL take turns: one sweeps,
            // the others skip this round.
            let swept = store
                .exclusively(Job::Sweep, || sweep(&store, &tracked, &folds, &logins, retention));
            if let Err(e) = swept {
                tracing::warn!(error = %e, "cannot start a sweep; will retry");
            }
        });
        Self { stop, threads: vec![flusher, sweeper], auth, pages }
    }

    /// Adds the signing-key thread. Every second it reloads the keys (the
    /// fallback when a rotation notification was missed, and the only way
    /// on SQLite for a `sessiond keys rotate` run beside the server); every
    /// minute it rotates when the current key is older than `key_rotation`
    /// (one instance wins the compare-and-swap) and forgets retired keys
    /// past their window.
    pub fn with_key_housekeeping(mut self, key_rotation: Option<kernel::Duration>) -> Self {
        let keys = {
            let auth = self.auth.clone();
            let mut tick = 0u32;
            every(KEY_RELOAD, self.stop.clone(), move || {
                if let Err(e) = auth.reload_keys() {
                    tracing::warn!(error = %e, "cannot reload the signing keys; will retry");
                }
                tick = tick.wrapping_add(1);
                if tick % KEY_HOUSEKEEPING_TICKS == 1 {
                    match auth.key_housekeeping(key_rotation) {
                        Ok(true) => tracing::info!("rotated the signing keys on schedule"),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "signing key housekeeping failed; will retry")
                        }
                    }
                }
            })
        };
        self.threads.push(keys);
        self
    }

    /// Stops the threads and writes what is still pending.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            t.thread().unpark();
            let _ = t.join();
        }
        if let Err(e) = self.auth.flush_activity() {
            tracing::warn!(error = %e, "could not write the last session activity");
        }
        // Writes the page visits still queued for a group commit.
        self.pages.stop();
    }
}

/// One round of the sweepers.
fn sweep(
    store: &Store,
    tracked: &AnalyticsService,
    pages: &PageBatcher,
    logins: &AuthService,
    retention: kernel::Duration,
) {
    match purge(store, SystemClock.now() - retention) {
        Ok(0) => {}
        Ok(n) => tracing::info!(purged = n, "purged sessions past their retention"),
        Err(e) => tracing::warn!(error = %e, "session purge failed; will retry"),
    }
    match logins.purge_login_failures() {
        Ok(0) => {}
        Ok(n) => tracing::debug!(forgotten = n, "forgot old failed logins and login addresses"),
        Err(e) => tracing::warn!(error = %e, "forgetting old failed logins failed; will retry"),
    }
    // The page batchers fold what they write; this folds what a process
    // that stopped meanwhile left (reports read it raw until then).
    match pages.fold() {
        Ok(0) => {}
        Ok(n) => tracing::debug!(folded = n, "folded page visits into the aggregates"),
        Err(e) => tracing::warn!(error = %e, "folding page visits failed; will retry"),
    }
    match tracked.close_idle_sessions() {
        Ok(0) => {}
        Ok(n) => tracing::info!(closed = n, "closed abandoned tracked sessions"),
        Err(e) => {
            tracing::warn!(error = %e, "closing idle tracked sessions failed; will retry")
        }
    }
}

/// Deletes sessions that ended or expired before `cutoff`, batch by batch.
pub fn purge(sessions: &dyn SessionStore, cutoff: kernel::OffsetDateTime) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let n = sessions.purge_sessions(cutoff, PURGE_BATCH)?;
        total += n;
        if n < u64::from(PURGE_BATCH) {
            return Ok(total);
        }
    }
}

fn every(
    period: Duration,
    stop: Arc<AtomicBool>,
    mut work: impl FnMut() + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            std::thread::park_timeout(period);
            if stop.load(Ordering::Acquire) {
                break;
            }
            work();
        }
    })
}
