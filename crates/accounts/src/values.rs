//! Parsed account values.

use std::fmt;

macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            /// The value as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value, consumed.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A username: 3–64 characters of `[A-Za-z0-9_.-]`, not `all` (reserved for
/// "every user" in analytics). Kept as given, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);
string_value!(Username);

impl Username {
    /// Parses a username.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        kernel::check_username(s)?;
        if s.eq_ignore_ascii_case("all") {
            return Err("is reserved");
        }
        Ok(Self(s.to_owned()))
    }

    /// Case-insensitive comparison, the only one usernames have.
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

/// An email address: one `@`, a non-empty local part of at most 64 bytes, a
/// domain with a dot and no empty labels, at most 254 bytes, no spaces or
/// control characters. Deliberately no full RFC 5322 grammar: what matters is
/// that a typo is caught and the value is safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);
string_value!(Email);

impl Email {
    /// Parses an email address.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const BAD: &str = "must be a valid email address";
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BAD);
        }
        let (local, domain) = s.split_once('@').ok_or(BAD)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(BAD);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
        {
            return Err(BAD);
        }
        Ok(Self(s.to_owned()))
    }
}

/// A password as typed: 8–1024 Unicode characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    /// Parses a new password.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let len = s.chars().count();
        if len < 8 {
            return Err("must be at least 8 characters long");
        }
        if len > 1024 {
            return Err("must be at most 1024 characters long");
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself; only for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name: at most 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);
string_value!(DisplayName);

impl DisplayName {
    /// Parses a display name.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.chars().count() > 200 {
            return Err("must be at most 200 characters long");
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(s.to_owned()))
    }
}

/// A role name: 1–32 characters of `[a-z0-9_-]`. `user` is the default and
/// `admin` carries the admin powers; other names are kept for the
/// applications that use them (seed 002 shows `agent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Role(String);
string_value!(Role);

impl Role {
    /// The default role.
    pub fn user() -> Self {
        Self("user".into())
    }

    /// The administrator role.
    pub fn admin() -> Self {
        Self("admin".into())
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() || s.len() > 32 {
            return Err("must be 1 to 32 characters long");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
        {
            return Err("may contain only lowercase letters, digits, '_' and '-'");
        }
        Ok(Self(s.to_owned()))
    }

    /// Whether this role has the admin powers.
    pub fn is_admin(&self) -> bool {
        self.0 == "admin"
    }
}

/// Whether an account may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// May log in.
    Active,
    /// Cannot log in; its tokens stop working.
    Suspended,
}

impl UserStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    /// Parses the wire and storage name.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            _ => Err("must be 'active' or 'suspended'"),
        }
    }
}

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
    }

    #[test]
    fn emails() {
        assert!(Email::parse("john.doe@example.com").is_ok());
        assert!(Email::parse("John@Sub.Example.org").is_ok());
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            "a@.b.com",
            "a@b.com\n",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords_count_unicode_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        // 8 characters, 16 bytes.
        assert!(Password::parse("éééééééé").is_ok());
        assert!(Password::parse("ééééééé").is_err());
        assert!(Password::parse(&"é".repeat(1024)).is_ok());
        assert!(Password::parse(&"é".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret123").unwrap_or_else(|_| unreachable!())),
            "Password(***)"
        );
    }

    #[test]
    fn display_names() {
        assert!(DisplayName::parse("John Doe").is_ok());
        assert!(DisplayName::parse(&"é".repeat(200)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(201)).is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
        assert!(DisplayName::parse("line\nbreak").is_err());
    }

    #[test]
    fn roles_and_statuses() {
        assert!(Role::parse("admin").is_ok_and(|r| r.is_admin()));
        assert!(Role::parse("agent").is_ok_and(|r| !r.is_admin()));
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("").is_err());
        assert_eq!(UserStatus::parse("suspended"), Ok(UserStatus::Suspended));
        assert!(UserStatus::parse("banned").is_err());
    }
}
