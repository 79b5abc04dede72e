//! Who may act for whom: the one authorisation rule of every analytics
//! use case.

use kernel::AppName;

use crate::{AnalyticsError, Caller, Subject};

/// The caller may act for `subject` in `app`: admins for anyone anywhere;
/// everyone else only for themselves (usernames compare
/// case-insensitively) in the app of their token, and never for `all`.
pub(crate) fn authorize(
    caller: &Caller,
    app: &AppName,
    subject: &Subject,
) -> Result<(), AnalyticsError> {
    if caller.is_admin {
        return Ok(());
    }
    if *app != caller.app {
        return Err(AnalyticsError::Forbidden("this token is not for that app"));
    }
    match subject {
        Subject::All => Err(AnalyticsError::Forbidden("user \"all\" needs the admin role")),
        Subject::User(u) if !caller.username.matches(u) => {
            Err(AnalyticsError::Forbidden("another user's data needs the admin role"))
        }
        Subject::User(_) => Ok(()),
    }
}
