//! Shared building blocks of sessiond: ids, the [`Clock`] port and the wire
//! formats for instants and durations that every other crate agrees on,
//! the names every layer shares ([`Username`], [`AppName`]), plus the
//! error pieces every layer shares ([`Violations`] for refused
//! input, [`Unavailable`] for an unreachable database).
//!
//! Domain rules take a `&dyn Clock` (or an `Arc<dyn Clock>`) rather than
//! reading the system time: production passes [`SystemClock`], tests a
//! [`ManualClock`] that moves only when told to.
//!
//! ```
//! use kernel::{Clock, Duration, ManualClock, Violations};
//! use kernel::{format_hms, format_instant, new_id, parse_instant};
//!
//! fn expires_at(clock: &dyn Clock) -> String {
//!     format_instant(clock.now() + Duration::minutes(15))
//! }
//!
//! // Requests carry RFC 3339 with an offset; responses are UTC, milliseconds, `Z`.
//! let clock = ManualClock::at(parse_instant("2024-04-05T14:00:00+02:00")?);
//! assert_eq!(expires_at(&clock), "2024-04-05T12:15:00.000Z");
//! clock.advance(Duration::hours(1));
//! assert_eq!(expires_at(&clock), "2024-04-05T13:15:00.000Z");
//! assert!(parse_instant("2024-04-05T14:00:00").is_err()); // no offset: ambiguous
//! assert_eq!(format_hms(112 * 3600 + 15 * 60), "112:15:00");
//!
//! // Ids are UUID v7: they sort by creation.
//! let (first, second) = (new_id(), new_id());
//! assert!(first < second);
//!
//! // Refused input, field by field (the HTTP edge answers 422 with them).
//! let mut v = Violations::new();
//! let app = v.check("app", kernel::AppName::parse("my app"));
//! let user = v.check("user", kernel::Username::parse("alice"));
//! assert_eq!((app, user.map(|u| u.to_string())), (None, Some("alice".into())));
//! assert_eq!(v.to_string(), "app: may contain only letters, digits, '_', '.', ':' and '-'");
//! # Ok::<(), kernel::InstantError>(())
//! ```

use std::sync::Mutex;

mod names;

pub use names::{AppName, Username};
pub use time::{Duration, OffsetDateTime};
pub use uuid::Uuid;

/// A source of the current time. Domain rules take a clock instead of reading
/// the system time so that tests can move time forward deterministically.
pub trait Clock: Send + Sync {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    unix_nanos: Mutex<i128>,
}

impl ManualClock {
    /// A clock standing at `at`.
    pub fn at(at: OffsetDateTime) -> Self {
        Self { unix_nanos: Mutex::new(at.unix_timestamp_nanos()) }
    }

    /// Moves the clock forward (or backward for a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut n = self.unix_nanos.lock().unwrap_or_else(|e| e.into_inner());
        *n += by.whole_nanoseconds();
    }

    /// Puts the clock at `at`.
    pub fn set(&self, at: OffsetDateTime) {
        *self.unix_nanos.lock().unwrap_or_else(|e| e.into_inner()) = at.unix_timestamp_nanos();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let n = *self.unix_nanos.lock().unwrap_or_else(|e| e.into_inner());
        OffsetDateTime::from_unix_timestamp_nanos(n).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// A new time-ordered id (UUID v7): ids sort by creation, which keeps
/// "newest first" listings and B-tree inserts cheap.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The latest instant a timestamp can name: UTC dates have four-digit
/// years. A range that would end later ends here instead, which changes
/// nothing it covers.
pub const MAX_INSTANT: OffsetDateTime =
    time::macros::datetime!(9999-12-31 23:59:59.999_999_999 UTC);

/// Milliseconds since the Unix epoch: how instants are stored, so that both
/// databases compare and index them as plain integers.
pub fn to_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The inverse of [`to_millis`]; out-of-range values saturate.
pub fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(if ms < 0 {
        OffsetDateTime::UNIX_EPOCH
    } else {
        time::macros::datetime!(9999-12-31 23:59:59.999 UTC)
    })
}

/// Truncates an instant to whole milliseconds, the precision of the store.
pub fn truncate_millis(at: OffsetDateTime) -> OffsetDateTime {
    from_millis(to_millis(at))
}

/// Formats an instant the way every response does: RFC 3339, UTC,
/// milliseconds, `Z` (`2024-04-05T12:00:00.000Z`).
pub fn format_instant(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Why a timestamp in a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstantError {
    /// Not RFC 3339 at all.
    Malformed,
    /// A date and time without an offset: ambiguous, so refused.
    MissingOffset,
    /// A valid timestamp whose instant lies after 9999-12-31T23:59:59 UTC
    /// (`9999-12-31T23:00:00-12:00`): instants are kept as UTC dates with
    /// four-digit years, so it cannot be represented.
    OutOfRange,
}

impl std::fmt::Display for InstantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => f.write_str("must be an RFC 3339 timestamp with an offset"),
            Self::MissingOffset => f.write_str("timestamp has no offset (add Z or +hh:mm)"),
            Self::OutOfRange => {
                f.write_str("is out of range: the latest instant is 9999-12-31T23:59:59.999Z")
            }
        }
    }
}

impl std::error::Error for InstantError {}

/// Parses a request timestamp: any RFC 3339 timestamp with an offset
/// whose instant is at most 9999-12-31T23:59:59.999999999Z.
pub fn parse_instant(s: &str) -> Result<OffsetDateTime, InstantError> {
    match OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        // A late local time west of UTC is a UTC date in year 10000, which
        // `to_offset` would panic on.
        Ok(at) => at.checked_to_offset(time::UtcOffset::UTC).ok_or(InstantError::OutOfRange),
        Err(_) => {
            let naive = time::PrimitiveDateTime::parse(
                s,
                time::macros::format_description!(
                    version = 2,
                    "[year]-[month]-[day][first [T][t][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
                ),
            );
            Err(if naive.is_ok() { InstantError::MissingOffset } else { InstantError::Malformed })
        }
    }
}

/// Formats whole seconds as `HH:MM:SS` with at least two, and unbounded,
/// hour digits (`112:15:00`). Negative input is treated as zero.
pub fn format_hms(total_seconds: i64) -> String {
    let s = total_seconds.max(0);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// A database connection pool's state and history, as the store reports
/// it and `/metrics` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Most connections the pool opens.
    pub max: u32,
    /// Connections open now.
    pub open: u32,
    /// Of those, not checked out.
    pub idle: u32,
    /// Connections handed out since start.
    pub checkouts: u64,
    /// Time spent waiting for them, in total, in nanoseconds.
    pub wait_nanos: u64,
    /// Requests for a connection that got none: the database timeout ran
    /// out, or the database was known to be unreachable.
    pub timeouts: u64,
}

/// A dependency (the database) could not be reached in time. Adapters put
/// it into the chain of an `anyhow` error so that the HTTP edge can answer
/// 503 instead of 500 without knowing the adapter.
#[derive(Debug)]
pub struct Unavailable(pub Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("database unavailable")
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl Unavailable {
    /// Whether any error in `chain` is an [`Unavailable`].
    pub fn in_chain<'a>(
        mut chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>,
    ) -> bool {
        chain.any(|e| e.is::<Self>())
    }
}

/// Field-by-field reasons why a request was refused, in a stable order; the
/// HTTP edge answers 422 with this map as `details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(std::collections::BTreeMap<String, String>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is wrong because of `problem` (the first problem
    /// of a field wins).
    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| problem.into());
    }

    /// A single violation.
    pub fn one(field: impl Into<String>, problem: impl Into<String>) -> Self {
        let mut v = Self::new();
        v.add(field, problem);
        v
    }

    /// Keeps the value of `r` or records its error under `field`.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.add(field, e.to_string())).ok()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The fields and their problems.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in self.iter() {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{k}: {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_format_in_utc_with_millis() {
        assert_eq!(
            format_instant(datetime!(2024-04-05 14:00:00.1234 +02:00)),
            "2024-04-05T12:00:00.123Z"
        );
    }

    #[test]
    fn parse_requires_an_offset() {
        assert_eq!(parse_instant("2024-01-01T12:00:00"), Err(InstantError::MissingOffset));
        assert_eq!(parse_instant("2024-01-01T12:00:00.000"), Err(InstantError::MissingOffset));
        assert_eq!(parse_instant("yesterday"), Err(InstantError::Malformed));
        assert_eq!(
            parse_instant("2024-01-01T12:00:00+05:30").map(format_instant),
            Ok("2024-01-01T06:30:00.000Z".into())
        );
    }

    #[test]
    fn instants_beyond_the_representable_range_are_refused_not_a_panic() {
        // 23:59:59 at -12:00 is 11:59:59 UTC on 10000-01-01.
        assert_eq!(parse_instant("9999-12-31T23:59:59-12:00"), Err(InstantError::OutOfRange));
        assert_eq!(parse_instant("9999-12-31T12:00:00-12:00"), Err(InstantError::OutOfRange));
        assert_eq!(
            parse_instant("9999-12-31T11:59:59.999-12:00").map(format_instant),
            Ok("9999-12-31T23:59:59.999Z".into())
        );
        assert_eq!(
            parse_instant("9999-12-31T23:59:59.999Z").map(format_instant),
            Ok("9999-12-31T23:59:59.999Z".into())
        );
        assert_eq!(
            parse_instant("0000-01-01T00:00:00+14:00").map(|t| t.year()),
            Ok(-1),
            "year 0 east of UTC is year -1 in UTC, which is representable"
        );
        assert!(InstantError::OutOfRange.to_string().contains("out of range"));
    }

    #[test]
    fn hms_has_unbounded_hours() {
        assert_eq!(format_hms(0), "00:00:00");
        assert_eq!(format_hms(59), "00:00:59");
        assert_eq!(format_hms(100 * 3600 + 1), "100:00:01");
        assert_eq!(format_hms(-5), "00:00:00");
    }

    #[test]
    fn millis_round_trip() {
        let at = datetime!(2024-04-05 12:00:00.123 UTC);
        assert_eq!(from_millis(to_millis(at)), at);
        assert_eq!(truncate_millis(datetime!(2024-04-05 12:00:00.123999 UTC)), at);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(datetime!(2024-01-01 0:00 UTC));
        c.advance(Duration::seconds(90));
        assert_eq!(c.now(), datetime!(2024-01-01 0:01:30 UTC));
    }
}
