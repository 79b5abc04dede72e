//! Parsed request values of the analytics domain. Each type's constructor
//! is its only validation ("parse, don't validate"); the error strings are
//! what a 422 shows for the field.

use jiff::tz::TimeZone;
use kernel::{InstantError, OffsetDateTime, Username};

/// Whose data a report covers: one user (lowercased username) or `all`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// One user, by lowercased username.
    User(String),
    /// Every user of the app (`user: "all"`).
    All,
}

impl Subject {
    /// Parses the `user` of a report: `all` (any case) or a username
    /// (lowercased). Whether `all` is allowed is the caller's business.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        Ok(Self::User(Username::parse(s)?.to_lowercase()))
    }

    /// The lowercased username, unless this is `all`.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::User(u) => Some(u),
            Self::All => None,
        }
    }
}

/// A page path: starts with `/`, at most 2048 characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PagePath(pub(crate) String);

impl PagePath {
    /// Parses a page path.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !s.starts_with('/') {
            return Err("must start with '/'");
        }
        if s.chars().count() > 2048 {
            return Err("must be at most 2048 characters long");
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(s.to_owned()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whole seconds spent on a page, 0–86400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeSpent(pub(crate) i64);

impl TimeSpent {
    /// Parses a number of seconds.
    pub fn parse(seconds: i64) -> Result<Self, &'static str> {
        if (0..=86_400).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err("must be between 0 and 86400 seconds")
        }
    }

    /// The seconds.
    pub fn seconds(self) -> i64 {
        self.0
    }
}

/// An IANA time zone (`UTC` by default), daylight-saving aware.
#[derive(Debug, Clone)]
pub struct Tz(pub(crate) TimeZone);

impl Tz {
    /// UTC, the default zone of reports.
    pub fn utc() -> Self {
        Self(TimeZone::UTC)
    }

    /// Parses an IANA zone name (`Europe/Berlin`, `UTC`, `Etc/UTC`, …) from
    /// the tz database bundled into the binary, so results never depend on
    /// the host's zoneinfo files.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const BAD: &str = "must be an IANA time zone name such as Europe/Berlin or UTC";
        // `Etc/Unknown` is jiff's name for "no idea"; not a zone to report in.
        if s.is_empty() || s.len() > 64 || s.eq_ignore_ascii_case("Etc/Unknown") {
            return Err(BAD);
        }
        TimeZone::get(s).map(Self).map_err(|_| BAD)
    }

    /// The IANA name (`UTC` for the default).
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The jiff zone.
    pub fn zone(&self) -> &TimeZone {
        &self.0
    }
}

impl Default for Tz {
    fn default() -> Self {
        Self::utc()
    }
}

/// Parses a report bound: an RFC 3339 timestamp with an offset, or a date
/// `YYYY-MM-DD` meaning that day in `tz`: its start for `from`, the start
/// of the next day for `to` (so a date `to` includes that whole day).
///
/// A day's start is its local midnight; where a daylight-saving change
/// skips midnight (clocks jump from 23:59:59 to 01:00, as in Chile or
/// Cuba), the "compatible" disambiguation moves it forward by the gap, to
/// the first instant that day actually has.
///
/// Every date up to 9999-12-31 is a bound in every zone. A date `to` whose
/// day ends after [`kernel::MAX_INSTANT`] (9999-12-31 in UTC or west of
/// it) ends the range at that instant instead: nothing can be later, so the
/// range covers the same. A timestamp after it is refused as out of range.
pub fn parse_bound(s: &str, tz: &Tz, is_to: bool) -> Result<OffsetDateTime, String> {
    if is_plain_date(s) {
        let bad = || format!("{s} is not a valid date (YYYY-MM-DD)");
        let date: jiff::civil::Date = s.parse().map_err(|_| bad())?;
        let start = day_start_nanos(date, is_to, &tz.0).ok_or_else(bad)?;
        return match OffsetDateTime::from_unix_timestamp_nanos(start) {
            Ok(at) => Ok(at),
            Err(_) if is_to && start > 0 => Ok(kernel::MAX_INSTANT),
            Err(_) => Err(format!("{s} is out of range")),
        };
    }
    kernel::parse_instant(s).map_err(|e| match e {
        InstantError::MissingOffset | InstantError::OutOfRange => e.to_string(),
        InstantError::Malformed => {
            "must be an RFC 3339 timestamp with an offset or a date YYYY-MM-DD".to_owned()
        }
    })
}

/// The first instant of `date` in `tz` (of the day after it when `next`),
/// in nanoseconds since the epoch.
///
/// jiff keeps instants before 9999-12-30T22:00Z (so that each has a civil
/// time at every offset) and civil dates within year 9999, so the last days
/// of year 9999 and the day after them are computed 400 years earlier and
/// moved back: 400 Gregorian years are exactly 146,097 days (whole weeks
/// too), and that far from today a zone follows the yearly rule of its
/// POSIX TZ string, so local midnight has the same offset on both dates.
fn day_start_nanos(date: jiff::civil::Date, next: bool, tz: &TimeZone) -> Option<i128> {
    const CYCLE_NANOS: i128 = 146_097 * 86_400 * 1_000_000_000;
    let (date, shift) = if date.year() == 9999 {
        (jiff::civil::Date::new(date.year() - 400, date.month(), date.day()).ok()?, CYCLE_NANOS)
    } else {
        (date, 0)
    };
    let day = if next { date.tomorrow().ok()? } else { date };
    let start = tz
        .to_ambiguous_timestamp(day.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .ok()?;
    Some(start.as_nanosecond() + shift)
}

/// `YYYY-MM-DD` exactly (jiff would also take other ISO 8601 forms).
fn is_plain_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter()
            .enumerate()
            .all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::format_instant;

    fn bound(s: &str, tz: &str, is_to: bool) -> String {
        let tz = Tz::parse(tz).expect("zone");
        format_instant(parse_bound(s, &tz, is_to).expect("bound"))
    }

    #[test]
    fn users_and_subjects() {
        assert_eq!(Subject::parse("All"), Ok(Subject::All));
        assert_eq!(Subject::parse("Bob.Smith"), Ok(Subject::User("bob.smith".into())));
        assert_eq!(
            Subject::parse("Bob").map(|s| s.user().map(str::to_owned)),
            Ok(Some("bob".into()))
        );
        assert!(Subject::parse("").is_err());
    }

    #[test]
    fn pages_and_timespent() {
        assert!(PagePath::parse("/").is_ok());
        assert!(PagePath::parse("/dashboard?tab=1#x").is_ok());
        assert!(PagePath::parse("dashboard").is_err());
        assert!(PagePath::parse("").is_err());
        assert!(PagePath::parse("/a\nb").is_err());
        assert!(PagePath::parse("/a\u{7f}").is_err());
        assert!(PagePath::parse(&format!("/{}", "é".repeat(2047))).is_ok());
        assert!(PagePath::parse(&format!("/{}", "a".repeat(2048))).is_err());
        assert_eq!(TimeSpent::parse(0).map(TimeSpent::seconds), Ok(0));
        assert_eq!(TimeSpent::parse(86_400).map(TimeSpent::seconds), Ok(86_400));
        assert!(TimeSpent::parse(86_401).is_err());
        assert!(TimeSpent::parse(-1).is_err());
    }

    #[test]
    fn zones() {
        assert_eq!(Tz::parse("UTC").map(|t| t.name().to_owned()), Ok("UTC".into()));
        assert!(Tz::parse("Etc/UTC").is_ok());
        assert_eq!(
            Tz::parse("America/New_York").map(|t| t.name().to_owned()),
            Ok("America/New_York".into())
        );
        assert!(Tz::parse("Asia/Kolkata").is_ok());
        assert!(Tz::parse("Mars/Olympus_Mons").is_err());
        assert!(Tz::parse("").is_err());
        assert!(Tz::parse("Etc/Unknown").is_err());
        assert!(Tz::parse("+05:00").is_err());
        assert_eq!(Tz::default().name(), "UTC");
    }

    #[test]
    fn timestamp_bounds_need_an_offset() {
        assert_eq!(bound("2024-01-01T12:00:00+05:30", "UTC", false), "2024-01-01T06:30:00.000Z");
        assert_eq!(
            bound("2024-01-01T12:00:00Z", "America/New_York", true),
            "2024-01-01T12:00:00.000Z"
        );
        let utc = Tz::utc();
        assert!(parse_bound("2024-01-01T12:00:00", &utc, false).is_err());
        assert!(parse_bound("yesterday", &utc, false).is_err());
        assert!(parse_bound("2024-02-30", &utc, false).is_err());
        assert!(parse_bound("20240101", &utc, false).is_err());
        assert!(parse_bound("2024-1-01", &utc, false).is_err());
    }

    #[test]
    fn date_bounds_are_local_midnights() {
        assert_eq!(bound("2024-01-01", "UTC", false), "2024-01-01T00:00:00.000Z");
        assert_eq!(bound("2024-01-01", "UTC", true), "2024-01-02T00:00:00.000Z");
        assert_eq!(bound("2024-12-31", "UTC", true), "2025-01-01T00:00:00.000Z");
        // +05:30: local midnight is 18:30 UTC the day before.
        assert_eq!(bound("2024-01-02", "Asia/Kolkata", false), "2024-01-01T18:30:00.000Z");
        assert_eq!(bound("2024-01-02", "Asia/Kolkata", true), "2024-01-02T18:30:00.000Z");
    }

    #[test]
    fn every_date_up_to_9999_12_31_is_a_bound_in_every_zone() {
        // Ends after the last instant there is: the range runs to it.
        assert_eq!(bound("9999-12-31", "UTC", true), "9999-12-31T23:59:59.999Z");
        assert_eq!(bound("9999-12-31", "Etc/GMT+12", true), "9999-12-31T23:59:59.999Z");
        assert_eq!(bound("9999-12-31", "America/New_York", true), "9999-12-31T23:59:59.999Z");
        assert_eq!(bound("9999-12-30", "UTC", true), "9999-12-31T00:00:00.000Z");
        assert_eq!(bound("9999-12-31", "UTC", false), "9999-12-31T00:00:00.000Z");
        // Etc/GMT+12 is UTC-12; Kiritimati is UTC+14.
        assert_eq!(bound("9999-12-31", "Etc/GMT+12", false), "9999-12-31T12:00:00.000Z");
        assert_eq!(bound("9999-12-30", "Etc/GMT+12", true), "9999-12-31T12:00:00.000Z");
        assert_eq!(bound("9999-12-31", "Pacific/Kiritimati", false), "9999-12-30T10:00:00.000Z");
        assert_eq!(bound("9999-12-31", "Pacific/Kiritimati", true), "9999-12-31T10:00:00.000Z");
        assert_eq!(bound("9999-12-31", "Asia/Kolkata", true), "9999-12-31T18:30:00.000Z");
        // The 400-year shift keeps daylight saving: New York is on EDT in July.
        assert_eq!(bound("9999-07-04", "America/New_York", false), "9999-07-04T04:00:00.000Z");
        assert_eq!(bound("9999-01-15", "America/New_York", true), "9999-01-16T05:00:00.000Z");
        assert_eq!(bound("9999-02-28", "UTC", true), "9999-03-01T00:00:00.000Z");
        assert_eq!(bound("9998-12-31", "Etc/GMT+12", true), "9999-01-01T12:00:00.000Z");
        assert_eq!(bound("0000-01-01", "Pacific/Kiritimati", false), "0000-01-01T10:29:20.000Z");
        // Every zone, first and last dates, both ends.
        for name in jiff::tz::db().available() {
            let Ok(tz) = Tz::parse(name.as_str()) else { continue };
            for date in ["0000-01-01", "9999-12-30", "9999-12-31"] {
                for is_to in [false, true] {
                    assert!(parse_bound(date, &tz, is_to).is_ok(), "{date} {is_to} in {name}");
                }
            }
        }
    }

    #[test]
    fn timestamps_after_the_last_instant_are_out_of_range() {
        let utc = Tz::utc();
        let e = parse_bound("9999-12-31T23:00:00-12:00", &utc, true);
        assert!(e.as_ref().is_err_and(|e| e.contains("out of range")), "{e:?}");
        assert_eq!(bound("9999-12-31T23:59:59.999Z", "UTC", true), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn date_bounds_on_dst_days() {
        // 2024-03-10 in New York has 23 hours: 05:00Z to 04:00Z next day.
        assert_eq!(bound("2024-03-10", "America/New_York", false), "2024-03-10T05:00:00.000Z");
        assert_eq!(bound("2024-03-10", "America/New_York", true), "2024-03-11T04:00:00.000Z");
        // 2024-11-03 has 25 hours: 04:00Z to 05:00Z next day.
        assert_eq!(bound("2024-11-03", "America/New_York", false), "2024-11-03T04:00:00.000Z");
        assert_eq!(bound("2024-11-03", "America/New_York", true), "2024-11-04T05:00:00.000Z");
        // Chile springs forward AT midnight (2024-09-08 00:00 -04 → 01:00
        // -03): the day starts at 01:00 local = 04:00Z.
        assert_eq!(bound("2024-09-08", "America/Santiago", false), "2024-09-08T04:00:00.000Z");
        assert_eq!(bound("2024-09-07", "America/Santiago", true), "2024-09-08T04:00:00.000Z");
    }
}
