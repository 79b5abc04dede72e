//! `accounts::UserStore`.

use accounts::{AccountError, NewUser, Role, User, UserPatch, UserStatus, UserStore};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use kernel::{OffsetDateTime, Uuid, from_millis, to_millis};

use crate::conn::DbConn;
use crate::schema::{counters, users};
use crate::{Store, parse_id};

/// The counter behind `user_code`.
const USER_SEQ: &str = "user_seq";

/// Key of the PostgreSQL advisory lock (transaction-scoped) that every
/// change able to take the admin powers from someone holds; see
/// [`UserStore::update`] on [`Store`].
const ADMIN_LOCK: i64 = 0x5e55_10d0_00ad;

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub(crate) id: String,
    pub(crate) seq: i64,
    pub(crate) user_code: String,
    pub(crate) username: String,
    pub(crate) username_lower: String,
    pub(crate) email: Option<String>,
    pub(crate) email_lower: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) password_hash: String,
    pub(crate) role: String,
    pub(crate) status: String,
    pub(crate) last_activity_ms: Option<i64>,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
}

impl UserRow {
    pub(crate) fn into_user(self) -> anyhow::Result<User> {
        Ok(User {
            id: parse_id(&self.id)?,
            user_code: self.user_code,
            username: self.username,
            email: self.email,
            name: self.name,
            password_hash: self.password_hash,
            role: Role::parse(&self.role)
                .map_err(|e| anyhow::anyhow!("stored role {:?} {e}", self.role))?,
            status: UserStatus::parse(&self.status)
                .map_err(|e| anyhow::anyhow!("stored status {:?} {e}", self.status))?,
            last_activity: self.last_activity_ms.map(from_millis),
            created_at: from_millis(self.created_at_ms),
            updated_at: from_millis(self.updated_at_ms),
        })
    }
}

/// The case-insensitive key of a username or email.
fn fold(s: &str) -> String {
    s.to_lowercase()
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChanges<'a> {
    role: Option<&'a str>,
    status: Option<&'a str>,
    updated_at_ms: i64,
}

impl Store {
    fn find_user_by(
        &self,
        what: &'static str,
        filter: impl FnOnce(&mut DbConn) -> QueryResult<Option<UserRow>>,
    ) -> Result<Option<User>, AccountError> {
        let row = self.run(what, filter)?;
        Ok(row.map(UserRow::into_user).transpose()?)
    }

    /// After a unique violation: which of the account's names is taken?
    /// The username is reported first when both are, whatever constraint
    /// the database happened to check first. The other registration has
    /// committed by now (a unique violation is only raised against
    /// committed rows), so a fresh read sees it.
    fn classify_conflict(&self, user: &NewUser, violation: DieselError) -> AccountError {
        match self.find_by_username(user.username.as_str()) {
            Ok(Some(_)) => return AccountError::UsernameTaken,
            Ok(None) => {}
            Err(e) => return e,
        }
        if let Some(email) = &user.email {
            match self.find_by_email(email.as_str()) {
                Ok(Some(_)) => return AccountError::EmailTaken,
                Ok(None) => {}
                Err(e) => return e,
            }
        }
        // Not a name: the id or the sequence collided, which is a bug.
        AccountError::Unknown(anyhow::Error::new(violation).context("creating a user"))
    }
}

impl UserStore for Store {
    fn create(&self, user: NewUser) -> Result<User, AccountError> {
        let created_at_ms = to_millis(user.created_at);
        let year = user.created_at.year();
        let mut row = UserRow {
            id: user.id.to_string(),
            seq: 0,
            user_code: String::new(),
            username: user.username.as_str().to_owned(),
            username_lower: fold(user.username.as_str()),
            email: user.email.as_ref().map(|e| e.as_str().to_owned()),
            email_lower: user.email.as_ref().map(|e| fold(e.as_str())),
            name: user.name.as_ref().map(|n| n.as_str().to_owned()),
            password_hash: user.password_hash.clone(),
            role: user.role.as_str().to_owned(),
            status: UserStatus::Active.as_str().to_owned(),
            last_activity_ms: None,
            created_at_ms,
            updated_at_ms: created_at_ms,
        };
        let mut conn = self.conn()?;
        // The counter update comes first: it takes the write lock (row lock
        // on PostgreSQL), so registrations serialise and a failed insert
        // rolls the number back: no gaps from conflicts.
        let inserted = crate::write_tx(&mut conn, |c| {
            let seq: i64 = diesel::update(counters::table.find(USER_SEQ))
                .set(counters::value.eq(counters::value + 1))
                .returning(counters::value)
                .get_result(c)?;
            row.seq = seq;
            row.user_code = accounts::user_code(year, seq);
            diesel::insert_into(users::table).values(&row).execute(c)?;
            Ok(row)
        });
        drop(conn);
        match inserted {
            Ok(row) => Ok(row.into_user()?),
            Err(e @ DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(self.classify_conflict(&user, e))
            }
            Err(e) => Err(crate::db_err(e, "creating a user").into()),
        }
    }

    fn find_by_id(&self, id: Uuid) -> Result<Option<User>, AccountError> {
        let id = id.to_string();
        self.find_user_by("loading a user", |c| {
            users::table.find(&id).select(UserRow::as_select()).first(c).optional()
        })
    }

    fn find_by_username(&self, username: &str) -> Result<Option<User>, AccountError> {
        let key = fold(username);
        self.find_user_by("loading a user by username", |c| {
            users::table
                .filter(users::username_lower.eq(&key))
                .select(UserRow::as_select())
                .first(c)
                .optional()
        })
    }

    fn find_by_email(&self, email: &str) -> Result<Option<User>, AccountError> {
        let key = fold(email);
        self.find_user_by("loading a user by email", |c| {
            users::table
                .filter(users::email_lower.eq(&key))
                .select(UserRow::as_select())
                .first(c)
                .optional()
        })
    }

    fn update(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: OffsetDateTime,
    ) -> Result<Option<User>, AccountError> {
        let id = id.to_string();
        let changes = UserChanges {
            role: patch.role.as_ref().map(Role::as_str),
            status: patch.status.map(UserStatus::as_str),
            updated_at_ms: to_millis(now),
        };
        let guard = patch.may_remove_admin();
        // `RETURNING` a whole row does not work over `MultiBackend` (only
        // single columns do), hence the read back in the same transaction.
        let row = self.write_tx("updating a user", |c| {
            if guard && is_last_active_admin(c, &id)? {
                return Ok(Err(AccountError::LastAdmin));
            }
            if diesel::update(users::table.find(&id)).set(&changes).execute(c)? == 0 {
                return Ok(Ok(None));
            }
            users::table.find(&id).select(UserRow::as_select()).first(c).optional().map(Ok)
        })??;
        Ok(row.map(UserRow::into_user).transpose()?)
    }
}

/// Whether the user `id` is an active admin and no other user is, inside
/// the transaction of a change that may take the admin powers from it.
///
/// Race-free because only such changes lower the number of active
/// admins, and they exclude each other here: SQLite's write transactions
/// (`BEGIN IMMEDIATE`) always do; on PostgreSQL each takes the same
/// transaction-scoped advisory lock before reading. Changes that add
/// admins take no lock: one that commits meanwhile can only make this
/// answer too cautious, and one still uncommitted when the user is read
/// (a promotion of this very user) leaves the count, once both are
/// done, where it was before either. One lock rather than row locks
/// (`SELECT … FOR UPDATE` of the active admins): which rows matter is only
/// known by reading them, and two changes locking the admins and the user
/// changed in different orders could deadlock.
fn is_last_active_admin(c: &mut DbConn, id: &str) -> QueryResult<bool> {
    if let DbConn::Pg(pg) = c {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({ADMIN_LOCK})")).execute(pg)?;
    }
    let (admin, active) = (Role::admin(), UserStatus::Active.as_str());
    let target: Option<(String, String)> =
        users::table.find(id).select((users::role, users::status)).first(c).optional()?;
    if target.is_none_or(|(role, status)| role != admin.as_str() || status != active) {
        return Ok(false);
    }
    let others: i64 = users::table
        .filter(users::role.eq(admin.as_str()))
        .filter(users::status.eq(active))
        .filter(users::id.ne(id))
        .count()
        .get_result(c)?;
    Ok(others == 0)
}
