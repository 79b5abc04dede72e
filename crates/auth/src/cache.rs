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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use accounts::User;
use kernel::{Duration, OffsetDateTime, Uuid, from_millis, to_millis};
use sessions::{DeviceSession, SessionBrief, SessionState};

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
    /// The signing keys changed (a rotation): the key set is reloaded; the
    /// session cache is not concerned.
    SigningKeys,
}

/// A cached session: what [`SessionBrief`] holds, less its id (the map's
/// key) and with instants as milliseconds; its user is kept once for all
/// its sessions, in [`Entries::users`]. 64 bytes, so that a process can
/// cache hundreds of thousands of sessions (80 bytes each with the key).
struct Entry {
    user_id: Uuid,
    /// Shared with every entry of the app ([`Entries::apps`]).
    app: Arc<str>,
    expires_ms: i64,
    last_activity_ms: i64,
    loaded_ms: i64,
    state: SessionState,
}

/// A user's `last_activity` in the cache is renewed when a use is at least
/// this much newer: it is shown (`lastActivity`, `isOnline` over five
/// minutes), written behind at most once a minute anyway, and renewing it
/// means a new copy of the user.
const USER_ACTIVITY_GRAIN: Duration = Duration::minutes(1);

/// What the lock guards.
#[derive(Default)]
struct Entries {
    sessions: HashMap<Uuid, Entry>,
    /// The one copy of each cached user, shared by its sessions.
    users: HashMap<Uuid, Arc<User>>,
    /// The one copy of each app's name, shared likewise.
    apps: HashSet<Arc<str>>,
}

impl Entries {
    /// The shared copy of `app`.
    fn app(&mut self, app: &str) -> Arc<str> {
        if let Some(shared) = self.apps.get(app) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(app);
        self.apps.insert(shared.clone());
        shared
    }

    /// Drops users and app names no cached session refers to any more.
    fn prune(&mut self) {
        let Self { sessions, users, apps } = self;
        let referred: HashSet<Uuid> = sessions.values().map(|e| e.user_id).collect();
        users.retain(|id, _| referred.contains(id));
        // Only the set itself holds a name no entry refers to.
        apps.retain(|a| Arc::strong_count(a) > 1);
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
    pub fn get(&self, session_id: Uuid, now: OffsetDateTime) -> Option<(SessionBrief, Arc<User>)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.sessions.get(&session_id)?;
        let age = to_millis(now) - e.loaded_ms;
        if age < 0 || age >= self.ttl.whole_milliseconds() as i64 {
            return None;
        }
        let user = entries.users.get(&e.user_id)?.clone();
        let brief = SessionBrief {
            id: session_id,
            user_id: e.user_id,
            app: e.app.clone(),
            expires_at: from_millis(e.expires_ms),
            last_activity: from_millis(e.last_activity_ms),
            state: e.state,
        };
        Some((brief, user))
    }

    /// The current epoch; pass it to [`Self::put`] after loading.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores a value loaded at `loaded_at`, unless an invalidation happened
    /// since `epoch` was read (the value may then be stale); either way
    /// returns its brief and user, shared with the cache when stored. The
    /// user replaces the cached copy for all its sessions: it is the
    /// latest read.
    pub fn put(
        &self,
        epoch: u64,
        session: &DeviceSession,
        user: User,
        loaded_at: OffsetDateTime,
    ) -> (SessionBrief, Arc<User>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the write lock: invalidations bump the epoch under it too.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return (SessionBrief::from(session), Arc::new(user));
        }
        let loaded_ms = to_millis(loaded_at);
        if entries.sessions.len() >= self.capacity {
            let ttl = self.ttl.whole_milliseconds() as i64;
            entries.sessions.retain(|_, e| loaded_ms - e.loaded_ms < ttl);
            if entries.sessions.len() >= self.capacity {
                entries.sessions.clear();
            }
            entries.prune();
        }
        let user = match entries.users.get(&user.id) {
            Some(cached) if **cached == user => cached.clone(),
            _ => {
                let user = Arc::new(user);
                entries.users.insert(user.id, user.clone());
                user
            }
        };
        let app = entries.app(&session.app);
        let entry = Entry {
            user_id: session.user_id,
            app: app.clone(),
            expires_ms: to_millis(session.expires_at),
            last_activity_ms: to_millis(session.last_activity),
            loaded_ms,
            state: session.state,
        };
        entries.sessions.insert(session.id, entry);
        (SessionBrief::of(session, Some(&app)), user)
    }

    /// Records that this process wrote `last_activity = at` for a session.
    /// Readers holding the old values keep them.
    pub fn note_activity(&self, session_id: Uuid, at: OffsetDateTime) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let Entries { sessions, users, .. } = &mut *entries;
        let Some(e) = sessions.get_mut(&session_id) else { return };
        e.last_activity_ms = e.last_activity_ms.max(to_millis(at));
        // The user's copy is shared by its sessions: a new one only when
        // the shared one's activity is a grain older. Without the grain,
        // every session of a user used once would keep a copy of its own
        // (measured: 330 bytes per cached session).
        let Some(shared) = users.get_mut(&e.user_id) else { return };
        if shared.last_activity.is_some_and(|last| at - last < USER_ACTIVITY_GRAIN) {
            return;
        }
        let mut user = (**shared).clone();
        user.last_activity = Some(user.last_activity.map_or(at, |l| l.max(at)));
        *shared = Arc::new(user);
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
        entries.sessions.retain(|_, e| e.user_id != user_id);
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
            Invalidation::SigningKeys => {}
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
        c.put(c.epoch(), &s, u, t0);
        assert!(c.get(s.id, t0 + Duration::milliseconds(999)).is_some());
        assert!(c.get(s.id, t0 + Duration::seconds(1)).is_none());
    }

    #[test]
    fn invalidation_is_immediate_and_blocks_racing_loads() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 10);
        let (s, u) = pair(t0);
        c.put(c.epoch(), &s, u.clone(), t0);
        c.invalidate_session(s.id);
        assert!(c.get(s.id, t0).is_none());

        // A load that started before an invalidation must not be cached.
        let epoch = c.epoch();
        c.invalidate_user(u.id);
        c.put(epoch, &s, u.clone(), t0);
        assert!(c.get(s.id, t0).is_none());

        c.put(c.epoch(), &s, u.clone(), t0);
        c.invalidate_user(u.id);
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_is_bounded() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 3);
        for _ in 0..10 {
            let (s, u) = pair(t0);
            c.put(c.epoch(), &s, u, t0);
        }
        assert!(c.len() <= 3);
    }

    #[test]
    fn noted_activity_updates_the_entry() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 10);
        let (s, u) = pair(t0);
        c.put(c.epoch(), &s, u, t0);
        let (held, _) = c.get(s.id, t0).expect("cached");
        c.note_activity(s.id, t0 + Duration::seconds(70));
        let (s2, u2) = c.get(s.id, t0).expect("cached");
        assert_eq!(s2.last_activity, t0 + Duration::seconds(70));
        assert_eq!(u2.last_activity, Some(t0 + Duration::seconds(70)));
        // What a reader held before is untouched.
        assert_eq!(held.last_activity, t0);
    }

    #[test]
    fn sessions_of_one_user_share_one_copy_of_it_and_of_the_app() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 10);
        let (s1, u) = pair(t0);
        let s2 = DeviceSession { id: Uuid::now_v7(), ..s1.clone() };
        let (b1, u1) = c.put(c.epoch(), &s1, u.clone(), t0);
        let (b2, u2) = c.put(c.epoch(), &s2, u.clone(), t0);
        assert!(Arc::ptr_eq(&u1, &u2));
        assert!(Arc::ptr_eq(&b1.app, &b2.app));
        let (hit, user) = c.get(s2.id, t0).expect("cached");
        assert!(Arc::ptr_eq(&user, &u1));
        assert_eq!(hit, SessionBrief::from(&s2));
        // A changed user replaces the shared copy.
        let renamed = User { username: "v".into(), ..u };
        let s3 = DeviceSession { id: Uuid::now_v7(), ..s1.clone() };
        let (_, u3) = c.put(c.epoch(), &s3, renamed, t0);
        assert_eq!(u3.username, "v");
        assert!(!Arc::ptr_eq(&u1, &u3));
    }

    #[test]
    fn noted_activity_shares_the_user_within_a_grain() {
        let t0 = datetime!(2024-01-01 12:00 UTC);
        let c = SessionCache::new(Duration::seconds(1), 100);
        let (s, u) = pair(t0);
        let sessions: Vec<DeviceSession> =
            (0..50).map(|_| DeviceSession { id: Uuid::now_v7(), ..s.clone() }).collect();
        for s in &sessions {
            c.put(c.epoch(), s, u.clone(), t0);
        }
        // Each session used once within a minute: one new copy of the user,
        // shared by all of them.
        for (i, s) in sessions.iter().enumerate() {
            c.note_activity(s.id, t0 + Duration::seconds(90 + i as i64));
        }
        let users: Vec<Arc<User>> =
            sessions.iter().map(|s| c.get(s.id, t0).expect("cached").1).collect();
        assert!(users.iter().all(|x| Arc::ptr_eq(x, &users[0])));
        assert_eq!(users[0].last_activity, Some(t0 + Duration::seconds(90)));
        // Every session's own activity is exact.
        let (last, _) = c.get(sessions[49].id, t0).expect("cached");
        assert_eq!(last.last_activity, t0 + Duration::seconds(139));
        // A minute later the user is renewed.
        c.note_activity(sessions[0].id, t0 + Duration::seconds(150));
        let (_, renewed) = c.get(sessions[0].id, t0).expect("cached");
        assert_eq!(renewed.last_activity, Some(t0 + Duration::seconds(150)));
    }
}
