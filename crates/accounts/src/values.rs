//! Parsed account values.

use std::fmt;

use kernel::string_value;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// Whether `c` is a control character (Unicode Cc: NUL, line breaks,
/// escapes) or an invisible format character (Cf: the bidirectional
/// overrides such as U+202E, the byte-order mark U+FEFF, zero-width
/// spaces). Those show as nothing, or reorder the text around them, so a
/// name holding one can be shown as something it is not (display
/// spoofing), and a password holding one cannot reliably be typed again.
/// The zero-width joiner and non-joiner (U+200D, U+200C) are Cf too but
/// are kept, as PRECIS (RFC 8264) keeps them: Persian and Indic writing
/// and emoji sequences need them, and they reorder nothing.
fn is_control_or_format(c: char) -> bool {
    c.is_control()
        || (c.general_category() == GeneralCategory::Format
            && !matches!(c, '\u{200C}' | '\u{200D}'))
}

/// The username, one type for every crate: its rules live in the kernel.
pub use kernel::Username;

/// An email address: a bare RFC 5321 mailbox as the `email_address`
/// crate parses it (UTF-8 local parts and internationalised domains
/// included), with a domain name of at least two labels (`a@b` is far more
/// often a typo than a mailbox), and no display name (`Ann <a@x.com>`),
/// angle brackets, domain literal (`a@[192.0.2.1]`), whitespace, control
/// or format character: the value is shown as it was given, so it must be
/// just the address. At most 254 bytes, a local part of at most 64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);
string_value!(Email);

impl Email {
    /// Parses an email address.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        use email_address::{EmailAddress, Error, Options};
        const BARE: &str =
            "must be a bare address such as name@example.com, without a name or angle brackets";
        if s.len() > 254 {
            return Err("must be at most 254 bytes long");
        }
        let options =
            Options::default().with_required_tld().without_domain_literal().without_display_text();
        match EmailAddress::parse_with_options(s, options) {
            Ok(_) => {}
            Err(Error::UnsupportedDisplayName | Error::MissingEndBracket) => return Err(BARE),
            Err(_) if s.starts_with('<') || s.ends_with('>') => return Err(BARE),
            Err(Error::UnsupportedDomainLiteral) => {
                return Err("must have a domain name, not an address literal");
            }
            Err(_) => return Err("must be a valid email address"),
        }
        // The parser takes any non-ASCII character for a letter, and spaces
        // inside a quoted local part (`"a b"@x.com`).
        if s.chars().any(|c| c.is_whitespace() || is_control_or_format(c)) {
            return Err("must not contain spaces, control or format characters");
        }
        Ok(Self(s.to_owned()))
    }
}

/// A password as typed: 8–1024 Unicode characters, none of them a control
/// or format character (as for display names). Spaces are fine, even all
/// of them: a passphrase is a good password.
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
        if s.chars().any(is_control_or_format) {
            return Err("must not contain control characters (such as NUL or a line break) \
                 or invisible format characters (such as U+202E or U+FEFF)");
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself; only for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name: at most 200 characters, no control or format character
/// (Unicode Cc and Cf, bar the zero-width joiners) and no line or
/// paragraph separator (U+2028, U+2029): a name is shown on one line, as
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);
string_value!(DisplayName);

impl DisplayName {
    /// Parses a display name.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.chars().count() > 200 {
            return Err("must be at most 200 characters long");
        }
        if s.chars().any(|c| is_control_or_format(c) || matches!(c, '\u{2028}' | '\u{2029}')) {
            return Err("must not contain control characters (such as a line break) \
                 or invisible format characters (such as U+202E or U+FEFF)");
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
    fn ordinary_and_international_emails_pass() {
        for good in [
            "a.b+tag@example.co.uk",
            "first_last-1@sub.example.org",
            "o'brien@example.ie",
            "x@bücher.de",
            "用户@例子.广告",
            "δοκιμή@παράδειγμα.δοκιμή",
            "1@2.example",
        ] {
            assert_eq!(Email::parse(good).map(Email::into_inner), Ok(good.to_owned()), "{good}");
        }
    }

    #[test]
    fn display_forms_dots_and_hidden_characters_are_not_emails() {
        const BARE: &str =
            "must be a bare address such as name@example.com, without a name or angle brackets";
        for bad in ["<a@x.com>", "a@x.com>", "<a@x.com", "Ann <a@x.com>", "\"Ann\" <a@x.com>"] {
            assert_eq!(Email::parse(bad), Err(BARE), "{bad:?}");
        }
        for bad in [
            ".a@x.com",
            "a.@x.com",
            "a..b@x.com",
            "a@x.com.",
            "a@-x.com",
            "a@x-.com",
            "a@[192.0.2.1]",
            "a@x,com",
            "a(b)@x.com",
            "a@x.com;b@y.com",
            "a@x@y.com",
            "a\u{202E}moc.x@y.com",
            "a@x\u{200B}.com",
            "\u{FEFF}a@x.com",
            "a@x.com\u{0}",
            "a\tb@x.com",
            "a\u{A0}b@x.com",
            "mailto:a@x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let (b, c, d) = ("b".repeat(61), "c".repeat(61), "d".repeat(62));
        let long = format!("{}@{b}.{c}.{d}.com", "a".repeat(64));
        assert_eq!(long.len(), 255);
        assert!(Email::parse(&long).is_err());
        assert!(Email::parse(&long[1..]).is_ok());
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
    fn passwords_refuse_control_and_format_characters() {
        for bad in [
            "\0\0\0\0\0\0\0\0",
            "password\0",
            "pass\nword1",
            "pass\tword1",
            "pass\u{7f}word",
            "pass\u{85}word",
            "pass\u{202E}word",
            "pass\u{200B}word",
            "pass\u{FEFF}word",
            "pass\u{2066}word",
            "pass\u{E0041}word",
        ] {
            assert!(Password::parse(bad).is_err(), "{bad:?} accepted");
        }
        // Spaces (even only spaces), symbols, other scripts, emoji with
        // their joiners, a Persian zero-width non-joiner: all fine.
        for good in [
            "        ",
            "correct horse battery staple",
            "P@ss w0rd!~`\"\\",
            "пароль-пароль",
            "👩\u{200D}💻👩\u{200D}💻👩\u{200D}💻",
            "می\u{200C}خواهم۱۲۳",
            "\u{A0}non-breaking\u{3000}",
        ] {
            assert!(Password::parse(good).is_ok(), "{good:?} refused");
        }
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
    fn display_names_refuse_control_and_format_characters() {
        for bad in [
            "admin\u{202E}nimda",
            "\u{FEFF}Alice",
            "Al\u{200B}ice",
            "Alice\u{2067}",
            "Alice\u{200E}",
            "Alice\u{061C}",
            "Alice\u{AD}",
            "Alice\u{2028}Bob",
            "Alice\u{2029}",
            "Alice\u{9B}",
            "tab\there",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "Ann-Marie O'Neil",
            "José Ñúñez",
            "李小龍",
            "محمد بن سلمان",
            "מרים",
            "می\u{200C}خواهم",
            "👨\u{200D}👩\u{200D}👧 Family",
            "",
        ] {
            assert!(DisplayName::parse(good).is_ok(), "{good:?} refused");
        }
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
