//! Write-behind of `last_activity`: authenticated requests mark their
//! session here instead of writing to the database; a background flush
//! writes the marks in one batch. Each session is marked at most once per
//! write interval, so a session in constant use costs one row update a
//! minute, and reads never turn into writes.

use std::collections::HashMap;
use std::sync::Mutex;

use kernel::{OffsetDateTime, Uuid};
use sessions::ActivityMark;

/// Pending activity marks, newest per session.
#[derive(Debug, Default)]
pub struct ActivityBuffer {
    pending: Mutex<HashMap<Uuid, ActivityMark>>,
}

impl ActivityBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks a session as used at `at` (keeps the latest mark).
    pub fn mark(&self, session_id: Uuid, user_id: Uuid, at: OffsetDateTime) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mark = ActivityMark { session_id, user_id, at };
        pending.entry(session_id).and_modify(|m| m.at = m.at.max(at)).or_insert(mark);
    }

    /// The pending mark of a session, if any: merged into what is read from
    /// the database so that unflushed activity is never mistaken for idleness.
    pub fn pending(&self, session_id: Uuid) -> Option<OffsetDateTime> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).get(&session_id).map(|m| m.at)
    }

    /// The marks to write now. They stay pending until [`Self::written`]
    /// confirms them, so a failed write loses nothing and a read during the
    /// write still sees them.
    pub fn snapshot(&self) -> Vec<ActivityMark> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).values().copied().collect()
    }

    /// Drops the marks that were written, unless a newer mark arrived for
    /// the same session meanwhile.
    pub fn written(&self, marks: &[ActivityMark]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for m in marks {
            if pending.get(&m.session_id).is_some_and(|p| p.at <= m.at) {
                pending.remove(&m.session_id);
            }
        }
        // A burst (a hundred thousand sessions coming back at once) would
        // otherwise keep its table's memory for good.
        let left = pending.len();
        if pending.capacity() > 4 * left.max(1024) {
            pending.shrink_to(2 * left);
        }
    }

    /// Forgets a session's marks (it was deleted or ended).
    pub fn forget(&self, session_id: Uuid) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&session_id);
    }

    /// Number of sessions with pending marks.
    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::Duration;
    use time::macros::datetime;

    #[test]
    fn keeps_the_latest_mark_until_written() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let b = ActivityBuffer::new();
        let (s, u) = (Uuid::now_v7(), Uuid::now_v7());
        b.mark(s, u, t0 + Duration::seconds(5));
        b.mark(s, u, t0);
        assert_eq!(b.pending(s), Some(t0 + Duration::seconds(5)));
        let snap = b.snapshot();
        assert_eq!(snap.len(), 1);
        // A newer mark during the write survives the confirmation.
        b.mark(s, u, t0 + Duration::seconds(9));
        b.written(&snap);
        assert_eq!(b.pending(s), Some(t0 + Duration::seconds(9)));
        b.written(&b.snapshot());
        assert!(b.is_empty());
    }

    #[test]
    fn forgotten_sessions_are_not_written() {
        let b = ActivityBuffer::new();
        let s = Uuid::now_v7();
        b.mark(s, Uuid::now_v7(), datetime!(2024-01-01 12:00 UTC));
        b.forget(s);
        assert!(b.snapshot().is_empty());
    }
}
