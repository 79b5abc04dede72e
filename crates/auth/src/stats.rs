//! What the use cases have done since the process started, for metrics:
//! plain atomic counters, so the domain needs no metrics library.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Device sessions opened by a login.
    pub sessions_created: u64,
    /// Live sessions ended by logout, logout-all, deletion, deactivation
    /// or a detected refresh-token reuse.
    pub sessions_revoked: u64,
    /// Rotated refresh tokens that came back after the grace window.
    pub refresh_reuse_detected: u64,
    /// Accounts or addresses locked by failed logins.
    pub lockouts: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    created: AtomicU64,
    revoked: AtomicU64,
    reuse: AtomicU64,
    lockouts: AtomicU64,
}

impl Counters {
    pub(crate) fn created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn revoked(&self, n: u64) {
        self.revoked.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn reuse(&self) {
        self.reuse.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lockout(&self) {
        self.lockouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> AuthStats {
        AuthStats {
            sessions_created: self.created.load(Ordering::Relaxed),
            sessions_revoked: self.revoked.load(Ordering::Relaxed),
            refresh_reuse_detected: self.reuse.load(Ordering::Relaxed),
            lockouts: self.lockouts.load(Ordering::Relaxed),
        }
    }
}
