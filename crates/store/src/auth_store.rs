//! `auth::PrincipalStore` and `auth::AuditLog`.

use auth::{AuditEvent, AuditLog, PrincipalStore};
use diesel::prelude::*;
use kernel::{Uuid, to_millis};

use crate::Store;
use crate::accounts_store::UserRow;
use crate::schema::{audit_events, device_sessions, users};
use crate::sessions_store::SessionRow;

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

impl AuditLog for Store {
    fn record(&self, event: &AuditEvent) -> anyhow::Result<()> {
        let row = AuditRow {
            id: event.id.to_string(),
            at_ms: to_millis(event.at),
            action: event.action.as_str(),
            user_id: event.user_id.map(|id| id.to_string()),
            session_id: event.session_id.map(|id| id.to_string()),
            ip_address: event.ip_address.as_deref(),
            user_agent: event.user_agent.as_deref(),
            request_id: event.request_id.as_deref(),
            outcome: event.outcome.as_str(),
        };
        self.run("recording an audit event", |c| {
            diesel::insert_into(audit_events::table).values(&row).execute(c)
        })?;
        Ok(())
    }
}
