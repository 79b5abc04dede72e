//! `sessions::SessionStore`.

use std::collections::BTreeMap;

use diesel::dsl::{max, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use kernel::{OffsetDateTime, Uuid, from_millis, to_millis};
use sessions::{ActivityMark, DeviceSession, NewSession, SessionState, SessionStore};

use crate::conn::DbConn;
use crate::schema::{device_sessions as ds, users};
use crate::{Store, parse_id, per_backend};

const ACTIVE: &str = "active";

/// When a session died: its end, or its absolute expiry, whichever came
/// first. Written exactly as in the expression index
/// `device_sessions_dead_at_idx` (migration `…_session_location`), so that
/// both databases match it and purging is an index range scan.
const DEAD_AT: &str =
    "(CASE WHEN ended_at_ms < expires_at_ms THEN ended_at_ms ELSE expires_at_ms END)";

/// A row of `device_sessions` as written at login.
#[derive(Insertable)]
#[diesel(table_name = ds)]
pub(crate) struct NewSessionRow<'a> {
    id: String,
    pub(crate) user_id: String,
    app: &'a str,
    ip_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    location: Option<&'a str>,
    login_method: &'a str,
    created_at_ms: i64,
    expires_at_ms: i64,
    pub(crate) last_activity_ms: i64,
    state: &'static str,
    ended_at_ms: Option<i64>,
    refresh_hash: &'a str,
}

impl<'a> NewSessionRow<'a> {
    /// The row of a new session.
    pub(crate) fn of(new: &'a NewSession) -> Self {
        let s = &new.session;
        Self {
            id: s.id.to_string(),
            user_id: s.user_id.to_string(),
            app: &s.app,
            ip_address: s.ip_address.as_deref(),
            user_agent: s.user_agent.as_deref(),
            location: s.location.as_deref(),
            login_method: &s.login_method,
            created_at_ms: to_millis(s.created_at),
            expires_at_ms: to_millis(s.expires_at),
            last_activity_ms: to_millis(s.last_activity),
            state: s.state.as_str(),
            ended_at_ms: s.ended_at.map(to_millis),
            refresh_hash: &new.refresh_hash,
        }
    }
}

/// Inserts a new session (with its first refresh token) and advances its
/// owner's last activity, inside the caller's transaction: a login is
/// activity, so the user's `lastActivity` moves with it.
pub(crate) fn insert_session(conn: &mut DbConn, new: &NewSession) -> QueryResult<()> {
    let row = NewSessionRow::of(new);
    diesel::insert_into(ds::table).values(&row).execute(conn)?;
    advance_user_activity(conn, &row.user_id, row.last_activity_ms)?;
    Ok(())
}

/// Moves a user's `last_activity` forward to `at`, never back.
pub(crate) fn advance_user_activity(
    conn: &mut DbConn,
    user_id: &str,
    at: i64,
) -> QueryResult<usize> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::last_activity_ms.is_null().or(users::last_activity_ms.lt(at))),
    )
    .set(users::last_activity_ms.eq(at))
    .execute(conn)
}

/// A row of `device_sessions` as read (without the refresh hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ds)]
pub(crate) struct SessionRow {
    id: String,
    user_id: String,
    app: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    location: Option<String>,
    login_method: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    last_activity_ms: i64,
    state: String,
    ended_at_ms: Option<i64>,
}

impl SessionRow {
    pub(crate) fn into_session(self) -> anyhow::Result<DeviceSession> {
        Ok(DeviceSession {
            id: parse_id(&self.id)?,
            user_id: parse_id(&self.user_id)?,
            app: self.app,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            location: self.location,
            login_method: self.login_method,
            created_at: from_millis(self.created_at_ms),
            expires_at: from_millis(self.expires_at_ms),
            last_activity: from_millis(self.last_activity_ms),
            state: SessionState::parse(&self.state).ok_or_else(|| {
                anyhow::anyhow!("stored session state {:?} is unknown", self.state)
            })?,
            ended_at: self.ended_at_ms.map(from_millis),
        })
    }
}

/// Ends every active session of `user_id` but `except` as `state` (a
/// storage name of an ended state) at `now`, on `c` (inside the caller's
/// transaction, if any); how many ended.
pub(crate) fn end_active_sessions(
    c: &mut DbConn,
    user_id: Uuid,
    except: Option<Uuid>,
    state: &'static str,
    now: OffsetDateTime,
) -> QueryResult<u64> {
    let (user_id, except) = (user_id.to_string(), except.map(|id| id.to_string()));
    let target = ds::table.filter(ds::user_id.eq(&user_id)).filter(ds::state.eq(ACTIVE));
    let set = (ds::state.eq(state), ds::ended_at_ms.eq(to_millis(now)));
    let n = match &except {
        Some(except) => diesel::update(target.filter(ds::id.ne(except))).set(set).execute(c)?,
        None => diesel::update(target).set(set).execute(c)?,
    };
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

fn ended_state(state: SessionState) -> anyhow::Result<&'static str> {
    if state == SessionState::Active {
        anyhow::bail!("a session cannot be ended into the active state");
    }
    Ok(state.as_str())
}

impl SessionStore for Store {
    fn create_session(&self, new: &NewSession) -> anyhow::Result<()> {
        self.write_tx("creating a session", |c| insert_session(c, new))?;
        Ok(())
    }

    fn get_session(&self, id: Uuid) -> anyhow::Result<Option<DeviceSession>> {
        let id = id.to_string();
        self.run("loading a session", |c| {
            ds::table.find(&id).select(SessionRow::as_select()).first(c).optional()
        })?
        .map(SessionRow::into_session)
        .transpose()
    }

    fn list_sessions(
        &self,
        user_id: Uuid,
        include_inactive: bool,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<DeviceSession>> {
        let user_id = user_id.to_string();
        let now = to_millis(now);
        let rows = self.run("listing sessions", |c| {
            let mut q = ds::table
                .filter(ds::user_id.eq(&user_id))
                .select(SessionRow::as_select())
                .order((ds::created_at_ms.desc(), ds::id.desc()))
                .into_boxed();
            if !include_inactive {
                q = q.filter(ds::state.eq(ACTIVE)).filter(ds::expires_at_ms.gt(now));
            }
            q.load(c)
        })?;
        rows.into_iter().map(SessionRow::into_session).collect()
    }

    fn end_session(
        &self,
        id: Uuid,
        state: SessionState,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let state = ended_state(state)?;
        let id = id.to_string();
        let n = self.run("ending a session", |c| {
            diesel::update(ds::table.find(&id).filter(ds::state.eq(ACTIVE)))
                .set((ds::state.eq(state), ds::ended_at_ms.eq(to_millis(now))))
                .execute(c)
        })?;
        Ok(n == 1)
    }

    fn end_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        state: SessionState,
        now: OffsetDateTime,
    ) -> anyhow::Result<u64> {
        let state = ended_state(state)?;
        self.run("ending a user's sessions", |c| {
            end_active_sessions(c, user_id, except, state, now)
        })
    }

    fn delete_session(&self, id: Uuid) -> anyhow::Result<bool> {
        let id = id.to_string();
        // Superseded refresh tokens go with it (ON DELETE CASCADE).
        let n =
            self.run("deleting a session", |c| diesel::delete(ds::table.find(&id)).execute(c))?;
        Ok(n == 1)
    }

    fn latest_live_activity(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> anyhow::Result<Option<OffsetDateTime>> {
        let user_id = user_id.to_string();
        let latest: Option<i64> = self.run("loading the latest activity", |c| {
            ds::table
                .filter(ds::user_id.eq(&user_id))
                .filter(ds::state.eq(ACTIVE))
                .filter(ds::expires_at_ms.gt(to_millis(now)))
                .select(max(ds::last_activity_ms))
                .first(c)
        })?;
        Ok(latest.map(from_millis))
    }

    fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<Uuid>> {
        let user_id = user_id.to_string();
        let except = except.map(|id| id.to_string());
        // One statement (so one transaction): the rows are deleted, their
        // refresh tokens with them (ON DELETE CASCADE), and RETURNING tells
        // exactly which of the deleted rows were live, even when a login
        // races the deletion.
        let deleted: Vec<(String, String, i64)> =
            self.run("deleting a user's sessions", |conn| {
                per_backend!(conn, |c| {
                    let mine = ds::table.filter(ds::user_id.eq(&user_id));
                    let returned = (ds::id, ds::state, ds::expires_at_ms);
                    match &except {
                        Some(except) => diesel::delete(mine.filter(ds::id.ne(except)))
                            .returning(returned)
                            .get_results(c),
                        None => diesel::delete(mine).returning(returned).get_results(c),
                    }
                })
            })?;
        let now = to_millis(now);
        deleted
            .into_iter()
            .filter(|(_, state, expires_at)| state == ACTIVE && *expires_at > now)
            .map(|(id, _, _)| parse_id(&id))
            .collect()
    }

    fn record_activity(&self, batch: &[ActivityMark]) -> anyhow::Result<u64> {
        // The latest mark of each session, in id order: concurrent flushes
        // (several instances) then lock rows in the same order, sessions
        // before users, and cannot deadlock on PostgreSQL.
        let mut latest: BTreeMap<String, (String, i64)> = BTreeMap::new();
        for mark in batch {
            let at = to_millis(mark.at);
            let entry = latest
                .entry(mark.session_id.to_string())
                .or_insert_with(|| (mark.user_id.to_string(), at));
            if at > entry.1 {
                *entry = (mark.user_id.to_string(), at);
            }
        }
        if latest.is_empty() {
            return Ok(0);
        }
        self.write_tx("recording session activity", |c| {
            let mut changed = 0_u64;
            let mut user_latest: BTreeMap<&str, i64> = BTreeMap::new();
            for (id, (user_id, at)) in &latest {
                // Forward only; a deleted session (or a mark naming the
                // wrong user) matches no row and is skipped.
                let n = diesel::update(
                    ds::table
                        .find(id)
                        .filter(ds::user_id.eq(user_id))
                        .filter(ds::last_activity_ms.lt(*at)),
                )
                .set(ds::last_activity_ms.eq(*at))
                .execute(c)?;
                if n > 0 {
                    changed += 1;
                    let user_at = user_latest.entry(user_id).or_insert(*at);
                    *user_at = (*user_at).max(*at);
                }
            }
            // A session row left alone was already at least as late, and
            // whatever wrote it moved its user too.
            for (user_id, at) in user_latest {
                advance_user_activity(c, user_id, at)?;
            }
            Ok(changed)
        })
    }

    fn purge_sessions(&self, cutoff: OffsetDateTime, limit: u32) -> anyhow::Result<u64> {
        let cutoff = to_millis(cutoff);
        // Neither database deletes with a LIMIT portably: delete the ids of
        // a limited subquery. `DEAD_AT < cutoff` is `ended_at_ms < cutoff
        // OR expires_at_ms < cutoff`, as one indexable expression.
        let n = self.run("purging dead sessions", |c| {
            // Aliased: diesel only accepts a subquery over another table.
            let dead = diesel::alias!(ds as dead);
            let oldest_dead = dead
                .select(dead.field(ds::id))
                .filter(sql::<BigInt>(DEAD_AT).lt(cutoff))
                .order(sql::<BigInt>(DEAD_AT).asc())
                .limit(i64::from(limit));
            diesel::delete(ds::table.filter(ds::id.eq_any(oldest_dead))).execute(c)
        })?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}
