//! An in-process cache of session-with-user state, so that authenticating a
//! request needs no database round trip while revocation stays immediate.
//!
//! Rules that keep it correct:
//! - Every change this process makes to a session or user invalidates the
//!   affected entries before the change is acknowledged, so the very next
//!   request on this instance sees it.
//! - An entry is trusted for at most [`SessionCache::ttl`] (one second by
//!   default): changes made by another process sharing the database are
//!   seen within that time.
//! - A load that raced with an invalidation is not cached: each
//!   invalidation bumps an epoch, and a loaded value is stored only if the
//!   epoch did not move while it was being read.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use accounts::User;
use kernel::{Duration, OffsetDateTime, Uuid};
use sessions::DeviceSession;

#[derive(Clone)]
struct Entry {
    session: DeviceSession,
    user: User,
    loaded_at: OffsetDateTime,
}

/// The cache. Cheap to read concurrently.
pub struct SessionCache {
    entries: RwLock<HashMap<Uuid, Entry>>,
    epoch: AtomicU64,
    ttl: Duration,
    capacity: usize,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl SessionCache {
    /// A cache trusting entries for `ttl`, holding at most `capacity`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { entries: RwLock::new(HashMap::new()), epoch: AtomicU64::new(0), ttl, capacity }
    }

    /// How long an entry is trusted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached session and user, when fresh at `now`.
    pub fn get(&self, session_id: Uuid, now: OffsetDateTime) -> Option<(DeviceSession, User)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(&session_id)?;
        let age = now - e.loaded_at;
        (age >= Duration::ZERO && age < self.ttl).then(|| (e.session.clone(), e.user.clone()))
    }

    /// The current epoch; pass it to [`Self::put`] after loading.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores a value loaded at `loaded_at`, unless an invalidation happened
    /// since `epoch` was read (the value may then be stale).
    pub fn put(&self, epoch: u64, session: DeviceSession, user: User, loaded_at: OffsetDateTime) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the write lock: invalidations bump the epoch under it too.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, e| loaded_at - e.loaded_at < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(session.id, Entry { session, user, loaded_at });
    }

    /// Records that this process wrote `last_activity = at` for a session.
    pub fn note_activity(&self, session_id: Uuid, at: OffsetDateTime) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get_mut(&session_id) {
            e.session.last_activity = e.session.last_activity.max(at);
            e.user.last_activity = Some(e.user.last_activity.map_or(at, |l| l.max(at)));
        }
    }

    /// Forgets one session.
    pub fn invalidate_session(&self, session_id: Uuid) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(&session_id);
    }

    /// Forgets every session of a user (logout-all, suspension, role change).
    pub fn invalidate_user(&self, user_id: Uuid) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, e| e.user.id != user_id);
    }

    /// Number of entries (for tests and metrics).
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounts::{Role, UserStatus};
    use sessions::SessionState;
    use time::macros::datetime;

    fn pair(now: OffsetDateTime) -> (DeviceSession, User) {
        let user = User {
            id: Uuid::now_v7(),
            user_code: "USR-2024-000001".into(),
            username: "u".into(),
            email: None,
            name: None,
            password_hash: String::new(),
            role: Role::user(),
            status: UserStatus::Active,
            last_activity: None,
            created_at: now,
            updated_at: now,
        };
        let session = DeviceSession {
            id: Uuid::now_v7(),
            user_id: user.id,
            app: "default".into(),
            ip_address: None,
            user_agent: None,
            location: None,
            login_method: "password".into(),
            created_at: now,
            expires_at: now + Duration::hours(1),
            last_activity: now,
            state: SessionState::Active,
            ended_at: None,
        };
        (session, user)
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 10);
        let (s, u) = pair(t0);
        c.put(c.epoch(), s.clone(), u, t0);
        assert!(c.get(s.id, t0 + Duration::milliseconds(999)).is_some());
        assert!(c.get(s.id, t0 + Duration::seconds(1)).is_none());
    }

    #[test]
    fn invalidation_is_immediate_and_blocks_racing_loads() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 10);
        let (s, u) = pair(t0);
        c.put(c.epoch(), s.clone(), u.clone(), t0);
        c.invalidate_session(s.id);
        assert!(c.get(s.id, t0).is_none());

        // A load that started before an invalidation must not be cached.
        let epoch = c.epoch();
        c.invalidate_user(u.id);
        c.put(epoch, s.clone(), u.clone(), t0);
        assert!(c.get(s.id, t0).is_none());

        c.put(c.epoch(), s.clone(), u.clone(), t0);
        c.invalidate_user(u.id);
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_is_bounded() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 3);
        for _ in 0..10 {
            let (s, u) = pair(t0);
            c.put(c.epoch(), s, u, t0);
        }
        assert!(c.len() <= 3);
    }

    #[test]
    fn noted_activity_updates_the_entry() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 10);
        let (s, u) = pair(t0);
        c.put(c.epoch(), s.clone(), u, t0);
        c.note_activity(s.id, t0 + Duration::seconds(70));
        let (s2, u2) = c.get(s.id, t0).expect("cached");
        assert_eq!(s2.last_activity, t0 + Duration::seconds(70));
        assert_eq!(u2.last_activity, Some(t0 + Duration::seconds(70)));
    }
}
