//! The names every layer shares: a [`Username`] and an application's
//! [`AppName`]. Their constructors are the only place their rules live, so
//! that a name one crate accepts every other crate accepts too.

/// A username: 3–64 characters of `[A-Za-z0-9_.-]`, not `all` (any case),
/// which means "every user" in analytics. Kept as given (registration
/// shows it back so), compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a username.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !(3..=64).contains(&s.chars().count()) {
            return Err("must be 3 to 64 characters long");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
            return Err("may contain only letters, digits, '_', '.' and '-'");
        }
        if s.eq_ignore_ascii_case("all") {
            return Err("is reserved");
        }
        Ok(Self(s.to_owned()))
    }

    /// Case-insensitive comparison, the only one usernames have.
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }

    /// The lowercase form: one spelling per user, under which analytics
    /// keeps and compares tracked users.
    pub fn to_lowercase(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// An application name: 1–64 characters of `[A-Za-z0-9_.:-]`, kept as
/// given and compared exactly (case-sensitive): the app a session is for,
/// and the app whose usage is tracked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppName(String);

impl AppName {
    /// Parses an application name.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters long");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')) {
            return Err("may contain only letters, digits, '_', '.', ':' and '-'");
        }
        Ok(Self(s.to_owned()))
    }
}

/// The read side of a parsed text value `$name(String)`: `as_str`,
/// `into_inner`, `AsRef<str>` and `Display`, all showing the value as
/// given. For newtypes whose constructor is their only validation, in
/// every crate that has them.
#[macro_export]
macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            /// The value as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as given, consumed.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_value!(Username);
string_value!(AppName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("bob").is_ok());
        assert!(Username::parse("a.b-c_D9").is_ok());
        assert!(Username::parse(&"x".repeat(64)).is_ok());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
        assert!(Username::parse("bob smith").is_err());
        assert!(Username::parse("bøb").is_err());
        assert!(Username::parse("ALL").is_err());
        assert!(Username::parse("Bob").is_ok_and(|u| u.matches("BOB") && u.as_str() == "Bob"));
        assert_eq!(Username::parse("John_Doe").map(|u| u.to_lowercase()), Ok("john_doe".into()));
        assert!(Username::parse("jo").is_err());
        assert!(Username::parse(&"j".repeat(65)).is_err());
        assert!(Username::parse("jo hn").is_err());
        assert!(Username::parse("jo:hn").is_err());
    }

    #[test]
    fn apps() {
        assert!(AppName::parse("my_app").is_ok());
        assert!(AppName::parse("a").is_ok());
        assert!(AppName::parse("com.example:web-1").is_ok());
        assert!(AppName::parse(&"a".repeat(64)).is_ok());
        assert!(AppName::parse(&"a".repeat(65)).is_err());
        assert!(AppName::parse("").is_err());
        assert!(AppName::parse("my app").is_err());
        assert!(AppName::parse("app/1").is_err());
        assert!(AppName::parse("äpp").is_err());
        assert_eq!(AppName::parse("Web").map(|a| a.to_string()), Ok("Web".into()));
    }
}
