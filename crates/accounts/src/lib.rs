//! Accounts domain of sessiond: who can log in, with which credentials.
//!
//! Values are parsed, not validated: a [`Username`], [`Email`], [`Password`]
//! or [`DisplayName`] can only be built through its `parse` constructor, so a
//! value of that type is always valid. A [`PasswordHasher`] turns a password
//! into an Argon2id hash and checks one. Accounts ([`User`]) are kept behind
//! the [`UserStore`] port, which compares usernames and emails
//! case-insensitively; sessiond's `store` crate implements it over
//! PostgreSQL and SQLite, and the `auth` crate builds registration and login
//! on it.
//!
//! ```
//! use accounts::{Email, NewUser, Password, PasswordHasher, Role, UserStore, Username};
//!
//! let username = Username::parse("Alice.Smith")?;
//! assert!(username.matches("alice.smith"));
//! assert!(Username::parse("all").is_err()); // reserved
//! let email = Email::parse("alice@example.com")?;
//! let password = Password::parse("correct horse battery")?;
//!
//! // Argon2id at OWASP's minimum cost, on a shared pool of low-priority threads.
//! let hasher = PasswordHasher::default();
//! let password_hash = hasher.hash(&password);
//! assert!(hasher.verify("correct horse battery", &password_hash));
//! assert!(!hasher.verify("wrong horse battery", &password_hash));
//!
//! // The store behind the port: here SQLite, in memory.
//! let users = store::Store::connect("sqlite::memory:", &Default::default())?;
//! users.migrate()?;
//! let alice = users.create(NewUser {
//!     id: kernel::new_id(),
//!     username,
//!     email: Some(email),
//!     name: None,
//!     password_hash,
//!     role: Role::user(),
//!     created_at: kernel::OffsetDateTime::now_utc(),
//! })?;
//! assert!(alice.user_code.starts_with("USR-")); // assigned by the store
//! assert_eq!(users.find_by_username("ALICE.SMITH")?.map(|u| u.id), Some(alice.id));
//! assert_eq!(users.find_by_email("Alice@Example.com")?.map(|u| u.id), Some(alice.id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod password;
mod values;

pub use password::{CallerThread, CpuRunner, CpuWork, PasswordHasher};
pub use values::{DisplayName, Email, Password, Role, UserStatus, Username};

use kernel::{OffsetDateTime, Uuid};

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Primary id (UUID v7), the `_id` of the user view.
    pub id: Uuid,
    /// Human-friendly number, `USR-<year>-<6-digit sequence>`.
    pub user_code: String,
    /// As registered; compared case-insensitively.
    pub username: String,
    /// As registered; compared case-insensitively.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// PHC string of the Argon2id hash.
    pub password_hash: String,
    /// `user` by default; `admin` has the admin powers.
    pub role: Role,
    /// Suspended users cannot log in and their tokens stop working.
    pub status: UserStatus,
    /// When one of the user's sessions was last seen active.
    pub last_activity: Option<OffsetDateTime>,
    /// Registration time.
    pub created_at: OffsetDateTime,
    /// Last change of the account itself.
    pub updated_at: OffsetDateTime,
}

/// What registration hands to the store; the store assigns `user_code`.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Fresh id.
    pub id: Uuid,
    /// Parsed username.
    pub username: Username,
    /// Parsed email, when given.
    pub email: Option<Email>,
    /// Parsed display name, when given.
    pub name: Option<DisplayName>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Initial role.
    pub role: Role,
    /// Registration time.
    pub created_at: OffsetDateTime,
}

impl NewUser {
    /// The account as it stands once stored under `user_code`: active,
    /// never used, last changed when it was created. What a
    /// [`UserStore::create`] returns.
    pub fn into_user(self, user_code: String) -> User {
        User {
            id: self.id,
            user_code,
            username: self.username.into_inner(),
            email: self.email.map(|e| e.into_inner()),
            name: self.name.map(|n| n.into_inner()),
            password_hash: self.password_hash,
            role: self.role,
            status: UserStatus::Active,
            last_activity: None,
            created_at: self.created_at,
            updated_at: self.created_at,
        }
    }
}

/// A change of an account by an administrator.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New status, when given.
    pub status: Option<UserStatus>,
    /// New role, when given.
    pub role: Option<Role>,
}

impl UserPatch {
    /// Whether this change can take the admin powers from an active admin
    /// (a role other than `admin`, or a suspension): only such a change
    /// needs the last-admin check.
    pub fn may_remove_admin(&self) -> bool {
        self.role.as_ref().is_some_and(|r| !r.is_admin())
            || self.status == Some(UserStatus::Suspended)
    }
}

/// Errors of the accounts domain.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Another account has this username (case-insensitively).
    #[error("username is already taken")]
    UsernameTaken,
    /// Another account has this email (case-insensitively).
    #[error("email is already registered")]
    EmailTaken,
    /// The change would demote or suspend the last active admin, leaving
    /// no one who can administer the server.
    #[error("the last active admin cannot be demoted or suspended")]
    LastAdmin,
    /// Whatever the domain cannot name: the store is down, a bug.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Storage of accounts. Implementations compare usernames and emails
/// case-insensitively and keep them as given.
pub trait UserStore: Send + Sync {
    /// Stores a new account and assigns its `user_code` from a sequence.
    fn create(&self, user: NewUser) -> Result<User, AccountError>;
    /// The account with this id.
    fn find_by_id(&self, id: Uuid) -> Result<Option<User>, AccountError>;
    /// The account with this username, case-insensitively.
    fn find_by_username(&self, username: &str) -> Result<Option<User>, AccountError>;
    /// The account with this email, case-insensitively.
    fn find_by_email(&self, email: &str) -> Result<Option<User>, AccountError>;
    /// Applies `patch`, stamping `updated_at = now`; `None` when no such user.
    ///
    /// Refuses with [`AccountError::LastAdmin`], changing nothing, when the
    /// user is an active admin and no other is: at least one active admin
    /// always remains. The check and the change are one atomic step, so
    /// two admins demoting each other at once cannot both succeed.
    fn update(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: OffsetDateTime,
    ) -> Result<Option<User>, AccountError>;
}

/// A user is shown as online while one of its sessions was active this recently.
pub const ONLINE_WINDOW: kernel::Duration = kernel::Duration::minutes(5);

/// Whether a user whose sessions were last active at `last_active` counts as
/// online at `now`.
pub fn is_online(last_active: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    last_active.is_some_and(|at| now - at <= ONLINE_WINDOW)
}

/// Formats the human-friendly user number.
pub fn user_code(year: i32, sequence: i64) -> String {
    format!("USR-{year}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::Duration;
    use time::macros::datetime;

    #[test]
    fn user_codes_have_six_digits_at_least() {
        assert_eq!(user_code(2024, 1234), "USR-2024-001234");
        assert_eq!(user_code(2024, 1_234_567), "USR-2024-1234567");
    }

    #[test]
    fn online_means_active_in_the_last_five_minutes() {
        let now = datetime!(2024-01-01 12:00 UTC);
        assert!(is_online(Some(now - Duration::minutes(5)), now));
        assert!(!is_online(Some(now - Duration::minutes(5) - Duration::seconds(1)), now));
        assert!(!is_online(None, now));
    }
}
