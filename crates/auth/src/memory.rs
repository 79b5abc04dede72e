//! Every port of the use cases in memory, for fast unit tests of their
//! rules (the adapters' own contract is tested on both databases in
//! `crates/store/tests`). One lock over all the state stands for the
//! database's transactions: each call is atomic, as the store's are.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use accounts::{AccountError, NewUser, User, UserPatch, UserStore};
use kernel::{Clock, OffsetDateTime, Uuid};
use sessions::{ActivityMark, DeviceSession, NewSession, SessionState, SessionStore};
use tokens::{RefreshRecord, RefreshTokenStore};

use crate::{
    AuditEvent, AuditLog, AuditQuery, LoginFailures, LoginThrottleStore, Ports, PrincipalStore,
};

#[derive(Default)]
struct State {
    users: Vec<User>,
    /// Sessions with the hash of their current refresh token.
    sessions: Vec<(DeviceSession, String)>,
    /// Every refresh token ever issued, by hash.
    refresh: HashMap<String, RefreshRecord>,
    audit: Vec<AuditEvent>,
    failures: HashMap<String, LoginFailures>,
    successes: HashMap<String, OffsetDateTime>,
}

/// Ends every active session of `user_id` but `except` as `state`; how
/// many ended.
fn end_active(
    s: &mut State,
    user_id: Uuid,
    except: Option<Uuid>,
    state: SessionState,
    at: OffsetDateTime,
) -> u64 {
    let mut n = 0;
    for (d, _) in &mut s.sessions {
        if d.user_id == user_id && Some(d.id) != except && d.state == SessionState::Active {
            (d.state, d.ended_at) = (state, Some(at));
            n += 1;
        }
    }
    n
}

/// The in-memory store; with `fail_audit` set, writing an audit record
/// fails (as a database error would), to show what is written with it.
#[derive(Default)]
pub(crate) struct Memory {
    state: Mutex<State>,
    pub(crate) fail_audit: std::sync::atomic::AtomicBool,
}

impl Memory {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn audit_fails(&self) -> anyhow::Result<()> {
        match self.fail_audit.load(std::sync::atomic::Ordering::Relaxed) {
            true => Err(anyhow::anyhow!("audit insert failed")),
            false => Ok(()),
        }
    }

    /// The audit trail, oldest first.
    pub(crate) fn events(&self) -> Vec<AuditEvent> {
        self.with(|s| s.audit.clone())
    }

    /// Every session, whatever its state.
    pub(crate) fn sessions(&self) -> Vec<DeviceSession> {
        self.with(|s| s.sessions.iter().map(|(d, _)| d.clone()).collect())
    }

    /// Every port served by `memory`, on `clock`.
    pub(crate) fn ports(memory: &Arc<Self>, clock: Arc<dyn Clock>) -> Ports {
        Ports {
            users: memory.clone(),
            sessions: memory.clone(),
            refresh: memory.clone(),
            principals: memory.clone(),
            audit: memory.clone(),
            throttle: memory.clone(),
            locator: Arc::new(sessions::NoLocator),
            clock,
        }
    }
}

fn insert(s: &mut State, new: &NewSession) {
    s.sessions.push((new.session.clone(), new.refresh_hash.clone()));
    let record = RefreshRecord { session_id: new.session.id, superseded_at: None };
    s.refresh.insert(new.refresh_hash.clone(), record);
    let at = new.session.last_activity;
    if let Some(u) = s.users.iter_mut().find(|u| u.id == new.session.user_id) {
        u.last_activity = Some(u.last_activity.map_or(at, |t| t.max(at)));
    }
}

/// The compare-and-swap of a rotation, as the store does it.
fn swap(s: &mut State, id: Uuid, expected: &str, new: &str, now: OffsetDateTime) -> bool {
    let Some((session, current)) = s.sessions.iter_mut().find(|(d, _)| d.id == id) else {
        return false;
    };
    if session.state != SessionState::Active || session.expires_at <= now || current != expected {
        return false;
    }
    *current = new.to_owned();
    if let Some(old) = s.refresh.get_mut(expected) {
        old.superseded_at = Some(now);
    }
    s.refresh.insert(new.to_owned(), RefreshRecord { session_id: id, superseded_at: None });
    true
}

impl UserStore for Memory {
    fn create(&self, u: NewUser) -> Result<User, AccountError> {
        self.with(|s| {
            let taken = |name: &str| s.users.iter().any(|x| x.username.eq_ignore_ascii_case(name));
            if taken(u.username.as_str()) {
                return Err(AccountError::UsernameTaken);
            }
            let user = u.into_user(format!("USR-2024-{:06}", s.users.len() + 1));
            s.users.push(user.clone());
            Ok(user)
        })
    }
    fn find_by_id(&self, id: Uuid) -> Result<Option<User>, AccountError> {
        Ok(self.with(|s| s.users.iter().find(|u| u.id == id).cloned()))
    }
    fn find_by_username(&self, name: &str) -> Result<Option<User>, AccountError> {
        Ok(self.with(|s| s.users.iter().find(|u| u.username.eq_ignore_ascii_case(name)).cloned()))
    }
    fn find_by_email(&self, email: &str) -> Result<Option<User>, AccountError> {
        let same = |u: &&User| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email));
        Ok(self.with(|s| s.users.iter().find(same).cloned()))
    }
    fn update(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: OffsetDateTime,
    ) -> Result<Option<User>, AccountError> {
        Ok(self.with(|s| {
            let u = s.users.iter_mut().find(|u| u.id == id)?;
            if let Some(status) = patch.status {
                u.status = status;
            }
            if let Some(role) = &patch.role {
                u.role = role.clone();
            }
            u.updated_at = now;
            Some(u.clone())
        }))
    }
}

impl SessionStore for Memory {
    fn create_session(&self, new: &NewSession) -> anyhow::Result<()> {
        self.with(|s| insert(s, new));
        Ok(())
    }
    fn get_session(&self, id: Uuid) -> anyhow::Result<Option<DeviceSession>> {
        Ok(self.with(|s| s.sessions.iter().find(|(d, _)| d.id == id).map(|(d, _)| d.clone())))
    }
    fn list_sessions(
        &self,
        user_id: Uuid,
        include_inactive: bool,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<DeviceSession>> {
        let listed = |d: &DeviceSession| {
            d.user_id == user_id
                && (include_inactive || (d.state == SessionState::Active && d.expires_at > now))
        };
        let mut all: Vec<DeviceSession> = self
            .with(|s| s.sessions.iter().map(|(d, _)| d.clone()).filter(|d| listed(d)).collect());
        all.sort_by_key(|d| std::cmp::Reverse(d.created_at));
        Ok(all)
    }
    fn end_session(
        &self,
        id: Uuid,
        state: SessionState,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        Ok(self.with(|s| match s.sessions.iter_mut().find(|(d, _)| d.id == id) {
            Some((d, _)) if d.state == SessionState::Active => {
                (d.state, d.ended_at) = (state, Some(now));
                true
            }
            _ => false,
        }))
    }
    fn end_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        state: SessionState,
        now: OffsetDateTime,
    ) -> anyhow::Result<u64> {
        Ok(self.with(|s| end_active(s, user_id, except, state, now)))
    }
    fn delete_session(&self, id: Uuid) -> anyhow::Result<bool> {
        Ok(self.with(|s| {
            let before = s.sessions.len();
            s.sessions.retain(|(d, _)| d.id != id);
            s.refresh.retain(|_, r| r.session_id != id);
            s.sessions.len() < before
        }))
    }
    fn latest_live_activity(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<OffsetDateTime>> {
        Ok(self.with(|s| {
            let live = |d: &&DeviceSession| {
                d.user_id == user_id && d.state == SessionState::Active && d.expires_at > now
            };
            s.sessions.iter().map(|(d, _)| d).filter(live).map(|d| d.last_activity).max()
        }))
    }
    fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<Uuid>> {
        let gone: Vec<Uuid> = self.with(|s| {
            let ours = |d: &DeviceSession| d.user_id == user_id && Some(d.id) != except;
            let live = |d: &DeviceSession| d.state == SessionState::Active && d.expires_at > now;
            s.sessions.iter().map(|(d, _)| d).filter(|d| ours(d) && live(d)).map(|d| d.id).collect()
        });
        for id in &gone {
            self.delete_session(*id)?;
        }
        Ok(gone)
    }
    fn record_activity(&self, batch: &[ActivityMark]) -> anyhow::Result<u64> {
        Ok(self.with(|s| {
            let mut n = 0;
            for m in batch {
                if let Some((d, _)) = s.sessions.iter_mut().find(|(d, _)| d.id == m.session_id)
                    && d.last_activity < m.at
                {
                    d.last_activity = m.at;
                    n += 1;
                }
            }
            n
        }))
    }
    fn purge_sessions(&self, _: OffsetDateTime, _: u32) -> anyhow::Result<u64> {
        Ok(0)
    }
}

impl RefreshTokenStore for Memory {
    fn find_refresh(&self, hash: &str) -> anyhow::Result<Option<RefreshRecord>> {
        Ok(self.with(|s| s.refresh.get(hash).cloned()))
    }
    fn current_refresh(&self, id: Uuid) -> anyhow::Result<Option<String>> {
        Ok(self.with(|s| s.sessions.iter().find(|(d, _)| d.id == id).map(|(_, h)| h.clone())))
    }
    fn replace_refresh(
        &self,
        id: Uuid,
        expected: &str,
        new_hash: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        Ok(self.with(|s| swap(s, id, expected, new_hash, now)))
    }
}

impl PrincipalStore for Memory {
    fn session_with_user(&self, id: Uuid) -> anyhow::Result<Option<(DeviceSession, User)>> {
        Ok(self.with(|s| {
            let (d, _) = s.sessions.iter().find(|(d, _)| d.id == id)?;
            let u = s.users.iter().find(|u| u.id == d.user_id)?;
            Some((d.clone(), u.clone()))
        }))
    }
    fn rotate_refresh(
        &self,
        id: Uuid,
        expected: &str,
        new_hash: &str,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        self.audit_fails()?;
        Ok(self.with(|s| {
            let swapped = swap(s, id, expected, new_hash, now);
            if swapped {
                s.audit.push(audit.clone());
            }
            swapped
        }))
    }
    fn open_session(&self, new: &NewSession, audit: &AuditEvent) -> anyhow::Result<()> {
        // Both or neither, as in one transaction.
        self.audit_fails()?;
        self.with(|s| {
            insert(s, new);
            s.audit.push(audit.clone());
        });
        Ok(())
    }
    fn change_password(
        &self,
        change: &crate::PasswordChange,
        audit: &AuditEvent,
    ) -> anyhow::Result<u64> {
        // All or nothing, as in one transaction.
        self.audit_fails()?;
        self.with(|s| {
            let user = s
                .users
                .iter_mut()
                .find(|u| u.id == change.user_id)
                .ok_or_else(|| anyhow::anyhow!("no such user"))?;
            (user.password_hash, user.updated_at) = (change.password_hash.clone(), change.at);
            let (id, at) = (change.user_id, change.at);
            let n = match change.end_sessions {
                crate::EndSessions::None => 0,
                crate::EndSessions::AllBut(keep) => {
                    end_active(s, id, Some(keep), SessionState::Revoked, at)
                }
                crate::EndSessions::All => end_active(s, id, None, SessionState::Revoked, at),
            };
            s.audit.push(audit.clone());
            Ok(n)
        })
    }
}

impl AuditLog for Memory {
    fn record(&self, event: &AuditEvent) -> anyhow::Result<()> {
        self.audit_fails()?;
        self.with(|s| s.audit.push(event.clone()));
        Ok(())
    }
    fn list_events(&self, q: &AuditQuery) -> anyhow::Result<Vec<AuditEvent>> {
        let mut all = self.with(|s| s.audit.clone());
        all.retain(|e| q.action.is_none_or(|a| e.action == a));
        all.reverse();
        all.truncate(q.limit as usize);
        Ok(all)
    }
}

impl LoginThrottleStore for Memory {
    fn read_failures(&self, keys: &[&str]) -> anyhow::Result<Vec<Option<LoginFailures>>> {
        Ok(self.with(|s| keys.iter().map(|k| s.failures.get(*k).cloned()).collect()))
    }
    fn update_failures(
        &self,
        keys: &[&str],
        _: OffsetDateTime,
        update: &mut dyn FnMut(&mut [Option<LoginFailures>]),
    ) -> anyhow::Result<()> {
        self.with(|s| {
            let mut records: Vec<_> = keys.iter().map(|k| s.failures.get(*k).cloned()).collect();
            update(&mut records);
            for (k, r) in keys.iter().zip(records) {
                match r {
                    Some(r) => s.failures.insert((*k).to_owned(), r),
                    None => s.failures.remove(*k),
                };
            }
        });
        Ok(())
    }
    fn purge_failures(&self, _: OffsetDateTime, _: OffsetDateTime) -> anyhow::Result<u64> {
        Ok(0)
    }
    fn last_success(&self, key: &str) -> anyhow::Result<Option<OffsetDateTime>> {
        Ok(self.with(|s| s.successes.get(key).copied()))
    }
    fn record_success(&self, key: &str, at: OffsetDateTime) -> anyhow::Result<()> {
        self.with(|s| s.successes.insert(key.to_owned(), at));
        Ok(())
    }
    fn purge_successes(&self, _: OffsetDateTime) -> anyhow::Result<u64> {
        Ok(0)
    }
}
