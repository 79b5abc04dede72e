//! `auth::PrincipalStore` and `auth::AuditLog`.

use auth::{
    AuditAction, AuditEvent, AuditLog, AuditOutcome, AuditQuery, EndSessions, PasswordChange,
    PrincipalStore,
};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use kernel::{OffsetDateTime, Uuid, from_millis, to_millis};

use sessions::SessionState;

use crate::accounts_store::UserRow;
use crate::conn::DbConn;
use crate::schema::{audit_events, device_sessions, users};
use crate::sessions_store::{SessionRow, end_active_sessions, insert_session};
use crate::tokens_store::rotate;
use crate::{Store, parse_id, write_tx};

impl Store {
    /// Every port of the auth use cases, served by this store (it
    /// implements them all); the place lookup and the clock come from
    /// outside.
    pub fn auth_ports(
        &self,
        locator: std::sync::Arc<dyn sessions::Locator>,
        clock: std::sync::Arc<dyn kernel::Clock>,
    ) -> auth::Ports {
        let shared = std::sync::Arc::new(self.clone());
        auth::Ports {
            users: shared.clone(),
            sessions: shared.clone(),
            refresh: shared.clone(),
            principals: shared.clone(),
            audit: shared.clone(),
            throttle: shared,
            locator,
            clock,
        }
    }
}

impl PrincipalStore for Store {
    fn session_with_user(
        &self,
        session_id: Uuid,
    ) -> anyhow::Result<Option<(sessions::DeviceSession, accounts::User)>> {
        let id = session_id.to_string();
        // The hot path of every authenticated request: one query, two
        // primary-key lookups.
        let row = self.run("loading a session with its user", |c| {
            device_sessions::table
                .inner_join(users::table)
                .filter(device_sessions::id.eq(&id))
                .select((SessionRow::as_select(), UserRow::as_select()))
                .first::<(SessionRow, UserRow)>(c)
                .optional()
        })?;
        row.map(|(s, u)| Ok((s.into_session()?, u.into_user()?))).transpose()
    }

    fn rotate_refresh(
        &self,
        session_id: Uuid,
        expected: &str,
        new_hash: &str,
        now: OffsetDateTime,
        audit: &AuditEvent,
    ) -> anyhow::Result<bool> {
        let id = session_id.to_string();
        let now_ms = to_millis(now);
        let row = AuditRow::of(audit);
        self.run("rotating a refresh token", |conn| {
            // One call of a PL/pgSQL function (migration
            // `000007_rotate_refresh`): one round trip, its own commit, and
            // a prepared statement whose plans the connection keeps.
            if let DbConn::Pg(c) = conn {
                return diesel::select(pg_rotate_refresh(
                    &id,
                    expected,
                    new_hash,
                    now_ms,
                    &row.id,
                    row.at_ms,
                    row.action,
                    row.user_id.as_deref(),
                    row.session_id.as_deref(),
                    row.ip_address,
                    row.user_agent,
                    row.request_id,
                    row.outcome,
                ))
                .get_result::<bool>(c);
            }
            write_tx(conn, |c| {
                let swapped = rotate(c, &id, expected, new_hash, now_ms)?;
                if swapped {
                    diesel::insert_into(audit_events::table).values(&row).execute(c)?;
                }
                Ok(swapped)
            })
        })
    }

    fn open_session(&self, new: &sessions::NewSession, audit: &AuditEvent) -> anyhow::Result<()> {
        let row = AuditRow::of(audit);
        self.write_tx("opening a session", |c| {
            insert_session(c, new)?;
            diesel::insert_into(audit_events::table).values(&row).execute(c)?;
            Ok(())
        })
    }

    fn change_password(&self, change: &PasswordChange, audit: &AuditEvent) -> anyhow::Result<u64> {
        let row = AuditRow::of(audit);
        let (user_id, at_ms) = (change.user_id.to_string(), to_millis(change.at));
        let except = match change.end_sessions {
            EndSessions::None => None,
            EndSessions::AllBut(keep) => Some(Some(keep)),
            EndSessions::All => Some(None),
        };
        self.write_tx("changing a password", |c| {
            let found = diesel::update(users::table.find(&user_id))
                .set((
                    users::password_hash.eq(&change.password_hash),
                    users::updated_at_ms.eq(at_ms),
                ))
                .execute(c)?;
            if found == 0 {
                return Err(diesel::result::Error::NotFound);
            }
            let ended = match except {
                None => 0,
                Some(except) => end_active_sessions(
                    c,
                    change.user_id,
                    except,
                    SessionState::Revoked.as_str(),
                    change.at,
                )?,
            };
            diesel::insert_into(audit_events::table).values(&row).execute(c)?;
            Ok(ended)
        })
    }
}

diesel::define_sql_function! {
    /// PostgreSQL refresh rotation with its audit record (migration
    /// `000007_rotate_refresh`); see [`PrincipalStore::rotate_refresh`].
    #[sql_name = "sessiond_rotate_refresh"]
    #[expect(clippy::too_many_arguments, reason = "one parameter per column of the SQL function")]
    fn pg_rotate_refresh(
        p_session: Text,
        p_expected: Text,
        p_new: Text,
        p_now: BigInt,
        a_id: Text,
        a_at: BigInt,
        a_action: Text,
        a_user: Nullable<Text>,
        a_session: Nullable<Text>,
        a_ip: Nullable<Text>,
        a_agent: Nullable<Text>,
        a_request: Nullable<Text>,
        a_outcome: Text,
    ) -> Bool;
}

/// A row of `audit_events`.
#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct AuditRow<'a> {
    id: String,
    at_ms: i64,
    action: &'static str,
    user_id: Option<String>,
    session_id: Option<String>,
    ip_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    request_id: Option<&'a str>,
    outcome: &'static str,
}

/// A row of `audit_events` as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct StoredAuditRow {
    id: String,
    at_ms: i64,
    action: String,
    user_id: Option<String>,
    session_id: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    outcome: String,
}

impl StoredAuditRow {
    fn into_event(self) -> anyhow::Result<AuditEvent> {
        let opt_id = |s: Option<String>| s.as_deref().map(parse_id).transpose();
        Ok(AuditEvent {
            id: parse_id(&self.id)?,
            at: from_millis(self.at_ms),
            action: AuditAction::parse(&self.action)
                .ok_or_else(|| anyhow::anyhow!("unknown audit action {:?}", self.action))?,
            user_id: opt_id(self.user_id)?,
            session_id: opt_id(self.session_id)?,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            request_id: self.request_id,
            outcome: match self.outcome.as_str() {
                "success" => AuditOutcome::Success,
                "failure" => AuditOutcome::Failure,
                other => anyhow::bail!("unknown audit outcome {other:?}"),
            },
        })
    }
}

impl<'a> AuditRow<'a> {
    fn of(event: &'a AuditEvent) -> Self {
        AuditRow {
            id: event.id.to_string(),
            at_ms: to_millis(event.at),
            action: event.action.as_str(),
            user_id: event.user_id.map(|id| id.to_string()),
            session_id: event.session_id.map(|id| id.to_string()),
            ip_address: event.ip_address.as_deref(),
            user_agent: event.user_agent.as_deref(),
            request_id: event.request_id.as_deref(),
            outcome: event.outcome.as_str(),
        }
    }
}

impl AuditLog for Store {
    fn record(&self, event: &AuditEvent) -> anyhow::Result<()> {
        let row = AuditRow::of(event);
        self.run("recording an audit event", |c| {
            diesel::insert_into(audit_events::table).values(&row).execute(c)
        })?;
        Ok(())
    }

    fn list_events(&self, query: &AuditQuery) -> anyhow::Result<Vec<AuditEvent>> {
        use audit_events as ae;
        let user_id = query.user_id.map(|id| id.to_string());
        let after = query.after.map(|p| (to_millis(p.at), p.id.to_string()));
        let rows = self.run("listing audit events", |c| {
            // Ids compare as bytes in both databases (BINARY on SQLite,
            // the column's "C" collation on PostgreSQL), so the order of the
            // listing and of the cursor comparison agree everywhere. Each
            // filter has an index ending in (at_ms, id): a backward range
            // scan that stops after `limit` rows.
            let mut q = ae::table
                .select(StoredAuditRow::as_select())
                .order((ae::at_ms.desc(), ae::id.desc()))
                .limit(i64::from(query.limit))
                .into_boxed();
            if let Some(user_id) = &user_id {
                q = q.filter(ae::user_id.eq(user_id));
            }
            if let Some(action) = query.action {
                q = q.filter(ae::action.eq(action.as_str()));
            }
            if let Some(from) = query.from {
                q = q.filter(ae::at_ms.ge(to_millis(from)));
            }
            if let Some(to) = query.to {
                q = q.filter(ae::at_ms.lt(to_millis(to)));
            }
            if let Some((at, id)) = &after {
                // Strictly after (at, id) in the newest-first order. The
                // first conjunct is implied by the second; it is there to
                // bound the index scan.
                q = q
                    .filter(ae::at_ms.le(*at))
                    .filter(ae::at_ms.lt(*at).or(ae::at_ms.eq(*at).and(ae::id.lt(id))));
            }
            q.load(c)
        })?;
        rows.into_iter().map(StoredAuditRow::into_event).collect()
    }
}
