//! An in-process cache of session-with-user state, so that authenticating a
//! request needs no database round trip while revocation stays immediate.
//!
//! Rules that keep it correct:
//! - Every change this process makes to a session or user invalidates the
//!   affected entries before the change is acknowledged, so the very next
//!   request on this instance sees it.
//! - Changes made by another process sharing the database arrive as
//!   [`Invalidation`]s (on PostgreSQL, through `LISTEN/NOTIFY`), normally
//!   within milliseconds of their commit.
//! - Whether or not they arrive, an entry is trusted for at most
//!   [`SessionCache::ttl`] (one second by default): a lost notification or
//!   a dead channel can never make a stale "active" answer outlive it.
//! - A load that raced with an invalidation is not cached: each
//!   invalidation bumps an epoch, and a loaded value is stored only if the
//!   epoch did not move while it was being read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use accounts::User;
use kernel::{Duration, OffsetDateTime, Uuid};
use sessions::DeviceSession;

/// A change to cached state that happened elsewhere (another process, or
/// anything this process learns only from the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// A session ended, was deleted, or its lifetime changed.
    Session(Uuid),
    /// A user changed (status, role, profile) or was deleted.
    User(Uuid),
    /// Anything may have changed (e.g. notifications were missed).
    Everything,
}

/// A cached session. Session and user are shared, not copied: a hit hands
/// out two reference counts, and all the sessions of one user point to one
/// copy of the user.
#[derive(Clone)]
struct Entry {
    session: Arc<DeviceSession>,
    user: Arc<User>,
    loaded_at: OffsetDateTime,
}

/// What the lock guards.
#[derive(Default)]
struct Entries {
    sessions: HashMap<Uuid, Entry>,
    /// The one copy of each cached user, shared by its sessions' entries.
    users: HashMap<Uuid, Arc<User>>,
}

impl Entries {
    /// The shared copy of `user`: the cached one when equal, else `user`,
    /// which then becomes the cached one.
    fn share(&mut self, user: User) -> Arc<User> {
        match self.users.get(&user.id) {
            Some(cached) if **cached == user => cached.clone(),
            _ => {
                let user = Arc::new(user);
                self.users.insert(user.id, user.clone());
                user
            }
        }
    }

    /// Drops users no session refers to any more.
    fn prune_users(&mut self) {
        // Only the map itself holds an unreferenced user.
        self.users.retain(|_, u| Arc::strong_count(u) > 1);
    }
}

/// The cache. Cheap to read concurrently.
pub struct SessionCache {
    entries: RwLock<Entries>,
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
        Self { entries: RwLock::default(), epoch: AtomicU64::new(0), ttl, capacity }
    }

    /// How long an entry is trusted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached session and user, when fresh at `now`.
    pub fn get(
        &self,
        session_id: Uuid,
        now: OffsetDateTime,
    ) -> Option<(Arc<DeviceSession>, Arc<User>)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.sessions.get(&session_id)?;
        let age = now - e.loaded_at;
        (age >= Duration::ZERO && age < self.ttl).then(|| (e.session.clone(), e.user.clone()))
    }

    /// The current epoch; pass it to [`Self::put`] after loading.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores a value loaded at `loaded_at`, unless an invalidation happened
    /// since `epoch` was read (the value may then be stale).
    pub fn put(
        &self,
        epoch: u64,
        session: Arc<DeviceSession>,
        user: User,
        loaded_at: OffsetDateTime,
    ) -> Arc<User> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the write lock: invalidations bump the epoch under it too.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return Arc::new(user);
        }
        if entries.sessions.len() >= self.capacity {
            let ttl = self.ttl;
            entries.sessions.retain(|_, e| loaded_at - e.loaded_at < ttl);
            if entries.sessions.len() >= self.capacity {
                entries.sessions.clear();
            }
            entries.prune_users();
        }
        let user = entries.share(user);
        entries.sessions.insert(session.id, Entry { session, user: user.clone(), loaded_at });
        user
    }

    /// Records that this process wrote `last_activity = at` for a session.
    /// Copy-on-write: readers holding the old values keep them.
    pub fn note_activity(&self, session_id: Uuid, at: OffsetDateTime) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let Entries { sessions, users } = &mut *entries;
        let Some(e) = sessions.get_mut(&session_id) else { return };
        let session = Arc::make_mut(&mut e.session);
        session.last_activity = session.last_activity.max(at);
        // The user is shared: the new copy becomes the shared one, for
        // entries stored from now on. The user's other cached sessions keep
        // the copy they have until they are reloaded (within the TTL), which
        // is as stale as the database's copy, written behind, may be anyway.
        let mut user = (*e.user).clone();
        user.last_activity = Some(user.last_activity.map_or(at, |l| l.max(at)));
        let user = Arc::new(user);
        users.insert(user.id, user.clone());
        e.user = user;
    }

    /// Forgets one session.
    pub fn invalidate_session(&self, session_id: Uuid) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.sessions.remove(&session_id);
    }

    /// Forgets every session of a user (logout-all, suspension, role change).
    pub fn invalidate_user(&self, user_id: Uuid) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.sessions.retain(|_, e| e.user.id != user_id);
        entries.users.remove(&user_id);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        *entries = Entries::default();
    }

    /// Applies a change heard from elsewhere.
    pub fn invalidate(&self, what: Invalidation) {
        match what {
            Invalidation::Session(id) => self.invalidate_session(id),
            Invalidation::User(id) => self.invalidate_user(id),
            Invalidation::Everything => self.clear(),
        }
    }

    /// Number of entries (for tests and metrics).
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).sessions.len()
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

    fn pair(now: OffsetDateTime) -> (Arc<DeviceSession>, User) {
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
        (Arc::new(session), user)
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
        // Copy on write: what a reader held before is untouched.
        assert_eq!(s.last_activity, t0);
    }

    #[test]
    fn sessions_of_one_user_share_one_copy_of_it() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 10);
        let (s1, u) = pair(t0);
        let s2 = Arc::new(DeviceSession { id: Uuid::now_v7(), ..(*s1).clone() });
        let u1 = c.put(c.epoch(), s1.clone(), u.clone(), t0);
        let u2 = c.put(c.epoch(), s2.clone(), u.clone(), t0);
        assert!(Arc::ptr_eq(&u1, &u2));
        let (_, hit) = c.get(s2.id, t0).expect("cached");
        assert!(Arc::ptr_eq(&hit, &u1));
        // A changed user replaces the shared copy.
        let renamed = User { username: "v".into(), ..u };
        let s3 = Arc::new(DeviceSession { id: Uuid::now_v7(), ..(*s1).clone() });
        let u3 = c.put(c.epoch(), s3, renamed, t0);
        assert_eq!(u3.username, "v");
        assert!(!Arc::ptr_eq(&u1, &u3));
    }
}
