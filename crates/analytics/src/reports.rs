//! Report shapes (what seed 004 shows), built from bucket aggregates.
//! Durations are whole seconds (averages rounded down); the HTTP layer
//! formats them as `HH:MM:SS`. Dates are `YYYY-MM-DD` in the report's zone.
//!
//! The builders are pure functions of the rows the store returns. A bucket
//! is placed in the local day, weekday and hour of its start instant
//! (`bucket_ms`). Every offset the tz database has used since standard
//! time was adopted is a multiple of 15 minutes, so a 15-minute UTC bucket
//! never straddles a local hour or midnight and this placement is exact.
//! (Pre-standard local mean time, e.g. New York's -04:56:02 before 1883,
//! is not a multiple; such a bucket goes wholly to the day and hour in
//! which it begins, and the service passes the range start for a bucket
//! clipped by it, so it goes to the day the range selects.)

use std::collections::{BTreeMap, BTreeSet};

use kernel::{OffsetDateTime, Uuid};

use crate::{EventKind, PageTotal, SessionBucket, TrackEvent, TrackState, TrackedSession, Tz};

/// English weekday names, Monday first (weekday index 0).
pub const WEEKDAYS: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Where an instant falls in a zone: local date, weekday and hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSlot {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// 0–23.
    pub hour: u8,
}

impl LocalSlot {
    /// The local date, weekday and hour of the instant `ms` (milliseconds
    /// since the epoch) in `tz`, daylight saving included.
    pub fn of(ms: i64, tz: &Tz) -> Self {
        let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        let dt = tz.zone().to_datetime(ts);
        let weekday = u8::try_from(dt.weekday().to_monday_zero_offset()).unwrap_or(0);
        let hour = u8::try_from(dt.hour()).unwrap_or(0);
        Self { date: format!("{:04}-{:02}-{:02}", dt.year(), dt.month(), dt.day()), weekday, hour }
    }
}

/// Seconds, rounded down, of a non-negative number of milliseconds.
fn secs(ms: i64) -> i64 {
    ms.max(0) / 1000
}

/// The heatmap report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heatmap {
    /// Local date → sessions started that day (non-zero only).
    pub daily_sessions: BTreeMap<String, i64>,
    /// Weekday (0 = Monday … 6 = Sunday) → local hour (0–23) → sessions
    /// started (non-zero only).
    pub weekly_hourly: BTreeMap<u8, BTreeMap<u8, i64>>,
    /// Sessions started.
    pub total_sessions: i64,
    /// Distinct local dates with a start.
    pub total_days_with_activity: i64,
    /// First and last local date with a start; `None` when empty.
    pub date_range: Option<(String, String)>,
}

/// The most-active report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MostActive {
    /// English weekday name with the most starts (ties: the earlier, Monday first).
    pub most_active_day: Option<String>,
    /// Local hour with the most starts (ties: the lower).
    pub most_active_hour: Option<u8>,
    /// Starts in the busiest weekday-and-hour cell.
    pub peak_sessions: i64,
}

/// The stats report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sessions started.
    pub total_sessions: i64,
    /// Mean duration of the ended ones, seconds, rounded down.
    pub average_session_duration: i64,
    /// Total duration of the ended ones, seconds.
    pub total_time_spent: i64,
    /// Distinct local start dates.
    pub active_days: i64,
}

/// The summary report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Sessions started.
    pub total_sessions: i64,
    /// Total duration of the ended ones, seconds.
    pub total_duration: i64,
    /// Mean duration of the ended ones, seconds, rounded down.
    pub average_duration: i64,
    /// Longest ended session, seconds.
    pub longest_session: i64,
    /// Shortest ended session, seconds.
    pub shortest_session: i64,
}

/// One session in a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The session.
    pub session_id: Uuid,
    /// Start.
    pub start_time: OffsetDateTime,
    /// End; `None` while open.
    pub end_time: Option<OffsetDateTime>,
    /// Duration in seconds; `None` while open.
    pub duration: Option<i64>,
    /// Current state.
    pub status: TrackState,
}

/// A page of a timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelinePage {
    /// Sessions in ascending start time.
    pub timeline: Vec<TimelineEntry>,
    /// Cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Daily active time: local date → seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DailyTime(pub BTreeMap<String, i64>);

/// A page of the time-by-page report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageTime {
    /// `(page, seconds spent)`, by seconds (most first), then path.
    pub page_time: Vec<(String, i64)>,
    /// Cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// One session with its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailEntry {
    /// The session.
    pub session_id: Uuid,
    /// Its events in order.
    pub events: Vec<(EventKind, OffsetDateTime)>,
}

/// A page of the detailed timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetailPage {
    /// Sessions in ascending start time, with events: at most
    /// [`crate::MAX_DETAIL_EVENTS`] events in all. A session whose events
    /// do not fit is cut, and the next page opens with it again, holding
    /// the rest of its events.
    pub detailed_timeline: Vec<DetailEntry>,
    /// Cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Per-page statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageStat {
    /// Visits.
    pub visits: i64,
    /// Sum of time spent, seconds.
    pub total_time: i64,
    /// Mean time spent, seconds, rounded down.
    pub average_time: i64,
}

/// A page of the pages/stats report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageStats {
    /// `(page, statistics)`, by total time (most first), then path.
    pub page_stats: Vec<(String, PageStat)>,
    /// Cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

impl Heatmap {
    /// Session starts per local date and per local weekday × hour.
    pub fn from_buckets(buckets: &[SessionBucket], tz: &Tz) -> Self {
        let mut map = Self::default();
        for b in buckets.iter().filter(|b| b.starts > 0) {
            let slot = LocalSlot::of(b.bucket_ms, tz);
            *map.weekly_hourly.entry(slot.weekday).or_default().entry(slot.hour).or_default() +=
                b.starts;
            *map.daily_sessions.entry(slot.date).or_default() += b.starts;
            map.total_sessions += b.starts;
        }
        map.total_days_with_activity = i64::try_from(map.daily_sessions.len()).unwrap_or(i64::MAX);
        map.date_range = match (map.daily_sessions.keys().next(), map.daily_sessions.keys().last())
        {
            (Some(first), Some(last)) => Some((first.clone(), last.clone())),
            _ => None,
        };
        map
    }
}

/// Index of the first maximum (ties go to the earlier index); `None` when
/// every value is zero.
fn first_max(values: &[i64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in values.iter().enumerate() {
        if *v > 0 && best.is_none_or(|b| *v > values[b]) {
            best = Some(i);
        }
    }
    best
}

impl MostActive {
    /// The weekday and the hour with the most starts, each on its own
    /// (the day is the weekday with the highest total over all hours; the
    /// hour is the hour of day with the highest total over all weekdays);
    /// ties go to the earlier (Monday first, the lower hour).
    /// `peak_sessions` is the largest weekday × hour cell, which need not
    /// be the cell of the chosen day and hour.
    pub fn from_buckets(buckets: &[SessionBucket], tz: &Tz) -> Self {
        let mut cells = [[0_i64; 24]; 7];
        for b in buckets.iter().filter(|b| b.starts > 0) {
            let slot = LocalSlot::of(b.bucket_ms, tz);
            cells[usize::from(slot.weekday) % 7][usize::from(slot.hour) % 24] += b.starts;
        }
        let days: Vec<i64> = cells.iter().map(|row| row.iter().sum()).collect();
        let hours: Vec<i64> = (0..24).map(|h| cells.iter().map(|row| row[h]).sum()).collect();
        Self {
            most_active_day: first_max(&days).map(|d| WEEKDAYS[d].to_owned()),
            most_active_hour: first_max(&hours).and_then(|h| u8::try_from(h).ok()),
            peak_sessions: cells.iter().flatten().copied().max().unwrap_or(0),
        }
    }
}

/// Sums over the ended sessions of a bucket list.
#[derive(Default)]
struct Ended {
    starts: i64,
    count: i64,
    sum_ms: i64,
    min_ms: Option<i64>,
    max_ms: Option<i64>,
}

impl Ended {
    fn of(buckets: &[SessionBucket]) -> Self {
        let mut e = Self::default();
        for b in buckets {
            e.starts += b.starts;
            e.count += b.ended;
            e.sum_ms += b.dur_sum_ms;
            e.min_ms = match (e.min_ms, b.dur_min_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            e.max_ms = e.max_ms.max(b.dur_max_ms);
        }
        e
    }

    fn total_secs(&self) -> i64 {
        secs(self.sum_ms)
    }

    /// Mean duration, rounded down to whole seconds.
    fn average_secs(&self) -> i64 {
        if self.count > 0 { self.sum_ms.max(0) / self.count / 1000 } else { 0 }
    }
}

impl Stats {
    /// Starts, distinct local start dates, and the total and mean duration
    /// of the ended sessions (whole seconds, rounded down).
    pub fn from_buckets(buckets: &[SessionBucket], tz: &Tz) -> Self {
        let ended = Ended::of(buckets);
        let days: BTreeSet<String> = buckets
            .iter()
            .filter(|b| b.starts > 0)
            .map(|b| LocalSlot::of(b.bucket_ms, tz).date)
            .collect();
        Self {
            total_sessions: ended.starts,
            average_session_duration: ended.average_secs(),
            total_time_spent: ended.total_secs(),
            active_days: i64::try_from(days.len()).unwrap_or(i64::MAX),
        }
    }
}

impl Summary {
    /// Starts, and over the ended sessions the total, mean, longest and
    /// shortest duration (whole seconds, rounded down; 0 when none ended).
    /// Independent of the zone: only the range selects.
    pub fn from_buckets(buckets: &[SessionBucket]) -> Self {
        let ended = Ended::of(buckets);
        let (longest, shortest) = if ended.count > 0 {
            (ended.max_ms.map_or(0, secs), ended.min_ms.map_or(0, secs))
        } else {
            (0, 0)
        };
        Self {
            total_sessions: ended.starts,
            total_duration: ended.total_secs(),
            average_duration: ended.average_secs(),
            longest_session: longest,
            shortest_session: shortest,
        }
    }
}

impl DailyTime {
    /// Active time per local date, whole seconds rounded down, listing
    /// only days with at least one whole second.
    ///
    /// Unlike the other session reports, which select sessions by their
    /// START, this is a per-day measure of ACTIVE TIME: the range selects
    /// the active time that falls in `[from, to)` (the store clips the
    /// buckets' `active_ms` to the range), so a session started before
    /// `from` contributes its time after `from`, and one running past `to`
    /// is cut there. Intervals crossing a local midnight are split between
    /// the days (by the 15-minute buckets, which never straddle one);
    /// overlapping sessions add up; an open session counts its closed
    /// intervals, i.e. up to its last event.
    pub fn from_buckets(buckets: &[SessionBucket], tz: &Tz) -> Self {
        let mut ms: BTreeMap<String, i64> = BTreeMap::new();
        for b in buckets.iter().filter(|b| b.active_ms > 0) {
            *ms.entry(LocalSlot::of(b.bucket_ms, tz).date).or_default() += b.active_ms;
        }
        Self(ms.into_iter().map(|(d, ms)| (d, secs(ms))).filter(|(_, s)| *s > 0).collect())
    }
}

impl PageTime {
    /// Sum of `timespent` per page, in the order of `totals` (the store's:
    /// one row per page, in report order).
    pub fn from_totals(totals: &[PageTotal], next_cursor: Option<String>) -> Self {
        Self {
            page_time: totals.iter().map(|t| (t.page.clone(), t.time_sum)).collect(),
            next_cursor,
        }
    }
}

impl PageStat {
    /// Visits, total and mean time (rounded down) of one page.
    pub fn of(t: &PageTotal) -> Self {
        Self {
            visits: t.visits,
            total_time: t.time_sum,
            average_time: if t.visits > 0 { t.time_sum.max(0) / t.visits } else { 0 },
        }
    }
}

impl PageStats {
    /// Visits, total and mean time per page, in the order of `totals` (the
    /// store's: one row per page, in report order).
    pub fn from_totals(totals: &[PageTotal], next_cursor: Option<String>) -> Self {
        Self {
            page_stats: totals.iter().map(|t| (t.page.clone(), PageStat::of(t))).collect(),
            next_cursor,
        }
    }
}

impl TimelineEntry {
    /// A session as a timeline entry: open sessions have no end and no
    /// duration; an ended one's duration is its active time in whole
    /// seconds, rounded down.
    pub fn from_session(s: &TrackedSession) -> Self {
        Self {
            session_id: s.id,
            start_time: s.started_at,
            end_time: if s.state == TrackState::Ended { s.ended_at } else { None },
            duration: s.duration_secs(),
            status: s.state,
        }
    }
}

impl DetailEntry {
    /// Each session (in the given order) with its events in `seq` order;
    /// events of other sessions are ignored.
    pub fn from_sessions(sessions: &[TrackedSession], events: &[TrackEvent]) -> Vec<Self> {
        let mut by_session: BTreeMap<Uuid, Vec<&TrackEvent>> = BTreeMap::new();
        for e in events {
            by_session.entry(e.session_id).or_default().push(e);
        }
        sessions
            .iter()
            .map(|s| {
                let mut evs = by_session.remove(&s.id).unwrap_or_default();
                evs.sort_by_key(|e| e.seq);
                Self { session_id: s.id, events: evs.iter().map(|e| (e.kind, e.at)).collect() }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BUCKET_MS, Interval};
    use kernel::{format_hms, parse_instant, to_millis};

    fn tz(name: &str) -> Tz {
        Tz::parse(name).expect("zone")
    }

    fn at(s: &str) -> OffsetDateTime {
        parse_instant(s).expect("instant")
    }

    fn ms(s: &str) -> i64 {
        to_millis(at(s))
    }

    /// Buckets holding session starts at these instants (all ended with
    /// the given durations when `Some`).
    fn starts(list: &[(&str, Option<i64>)]) -> Vec<SessionBucket> {
        let mut by: BTreeMap<i64, SessionBucket> = BTreeMap::new();
        for (when, dur) in list {
            let bucket_ms = ms(when).div_euclid(BUCKET_MS) * BUCKET_MS;
            let b =
                by.entry(bucket_ms).or_insert(SessionBucket { bucket_ms, ..Default::default() });
            b.starts += 1;
            if let Some(d) = dur {
                b.ended += 1;
                b.dur_sum_ms += d;
                b.dur_min_ms = Some(b.dur_min_ms.map_or(*d, |m| m.min(*d)));
                b.dur_max_ms = Some(b.dur_max_ms.map_or(*d, |m| m.max(*d)));
            }
        }
        by.into_values().collect()
    }

    /// Buckets holding the active time of these intervals, split the way
    /// the store splits them.
    fn active(intervals: &[(&str, &str)]) -> Vec<SessionBucket> {
        let mut by: BTreeMap<i64, SessionBucket> = BTreeMap::new();
        for (from, to) in intervals {
            for (bucket_ms, piece) in (Interval { from: at(from), to: at(to) }).split_by_bucket() {
                by.entry(bucket_ms)
                    .or_insert(SessionBucket { bucket_ms, ..Default::default() })
                    .active_ms += piece;
            }
        }
        by.into_values().collect()
    }

    fn daily(intervals: &[(&str, &str)], zone: &str) -> Vec<(String, String)> {
        DailyTime::from_buckets(&active(intervals), &tz(zone))
            .0
            .into_iter()
            .map(|(d, s)| (d, format_hms(s)))
            .collect()
    }

    fn day(d: &str, hms: &str) -> (String, String) {
        (d.to_owned(), hms.to_owned())
    }

    #[test]
    fn intervals_split_at_bucket_edges() {
        let i = Interval { from: at("2024-01-01T00:10:00Z"), to: at("2024-01-01T00:40:00.5Z") };
        let base = ms("2024-01-01T00:00:00Z");
        assert_eq!(
            i.split_by_bucket(),
            [
                (base, 5 * 60_000),
                (base + BUCKET_MS, BUCKET_MS),
                (base + 2 * BUCKET_MS, 10 * 60_000 + 500)
            ]
        );
        assert_eq!(i.duration_ms(), 30 * 60_000 + 500);
        let empty = Interval { from: i.to, to: i.from };
        assert!(empty.split_by_bucket().is_empty());
        assert_eq!(empty.duration_ms(), 0);
    }

    #[test]
    fn local_slots_follow_the_zone() {
        // Monday 2024-01-01 02:00Z is Sunday 21:00 in New York.
        let s = LocalSlot::of(ms("2024-01-01T02:00:00Z"), &tz("America/New_York"));
        assert_eq!(s, LocalSlot { date: "2023-12-31".into(), weekday: 6, hour: 21 });
        let s = LocalSlot::of(ms("2024-01-01T02:00:00Z"), &Tz::utc());
        assert_eq!(s, LocalSlot { date: "2024-01-01".into(), weekday: 0, hour: 2 });
        // Kolkata (+05:30): 18:30Z is local midnight.
        let k = tz("Asia/Kolkata");
        assert_eq!(LocalSlot::of(ms("2024-01-01T18:15:00Z"), &k).date, "2024-01-01");
        assert_eq!(LocalSlot::of(ms("2024-01-01T18:30:00Z"), &k).date, "2024-01-02");
        assert_eq!(LocalSlot::of(ms("2024-01-01T18:30:00Z"), &k).hour, 0);
    }

    #[test]
    fn daily_time_splits_at_local_midnight_on_the_short_dst_day() {
        // 2024-03-09T23:30-05:00 → 2024-03-10T04:00-04:00 (3 h 30 min of
        // real time; the clocks skip 02:00–03:00).
        assert_eq!(
            daily(
                &[("2024-03-09T23:30:00-05:00", "2024-03-10T04:00:00-04:00")],
                "America/New_York"
            ),
            [day("2024-03-09", "00:30:00"), day("2024-03-10", "03:00:00")]
        );
        // The whole 23-hour day.
        assert_eq!(
            daily(
                &[("2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00")],
                "America/New_York"
            ),
            [day("2024-03-10", "23:00:00")]
        );
    }

    #[test]
    fn daily_time_on_the_long_dst_day() {
        // 2024-11-03 in New York has 25 hours.
        assert_eq!(
            daily(
                &[("2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00")],
                "America/New_York"
            ),
            [day("2024-11-03", "25:00:00")]
        );
        // 23:00 EDT the day before to 01:30 EST (the second 01:30): 1 h on
        // 11-02; on 11-03 00:00–02:00 EDT (= 01:00 EST), then to 01:30 EST:
        // 2 h 30 min of real time.
        assert_eq!(
            daily(
                &[("2024-11-02T23:00:00-04:00", "2024-11-03T01:30:00-05:00")],
                "America/New_York"
            ),
            [day("2024-11-02", "01:00:00"), day("2024-11-03", "02:30:00")]
        );
    }

    #[test]
    fn daily_time_in_a_half_hour_zone() {
        // 18:00Z–19:00Z is 23:30–00:30 in Kolkata.
        assert_eq!(
            daily(&[("2024-01-01T18:00:00Z", "2024-01-01T19:00:00Z")], "Asia/Kolkata"),
            [day("2024-01-01", "00:30:00"), day("2024-01-02", "00:30:00")]
        );
        assert_eq!(
            daily(&[("2024-01-01T18:00:00Z", "2024-01-01T19:00:00Z")], "UTC"),
            [day("2024-01-01", "01:00:00")]
        );
    }

    #[test]
    fn daily_time_adds_overlaps_and_drops_empty_days() {
        let d = daily(
            &[
                ("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"),
                ("2024-01-01T10:30:00Z", "2024-01-01T11:30:00Z"),
                ("2024-01-03T10:00:00Z", "2024-01-03T10:00:00.900Z"),
            ],
            "UTC",
        );
        assert_eq!(d, [day("2024-01-01", "02:00:00")]);
        // Above 99 hours once summed over many days is a stats matter; a
        // day's total is at most 25 h, but formatting is unbounded.
        assert_eq!(format_hms(112 * 3600 + 15 * 60), "112:15:00");
        assert_eq!(DailyTime::from_buckets(&[], &Tz::utc()), DailyTime::default());
    }

    #[test]
    fn heatmap_counts_starts_in_local_cells() {
        let b = starts(&[
            ("2024-01-15T09:10:00Z", None),
            ("2024-01-15T09:50:00Z", None),
            ("2024-01-16T10:00:00Z", None),
            ("2024-01-17T23:59:59Z", None),
        ]);
        let h = Heatmap::from_buckets(&b, &Tz::utc());
        assert_eq!(h.total_sessions, 4);
        assert_eq!(h.total_days_with_activity, 3);
        assert_eq!(h.date_range, Some(("2024-01-15".into(), "2024-01-17".into())));
        assert_eq!(
            h.daily_sessions,
            BTreeMap::from([
                ("2024-01-15".into(), 2),
                ("2024-01-16".into(), 1),
                ("2024-01-17".into(), 1)
            ])
        );
        assert_eq!(
            h.weekly_hourly,
            BTreeMap::from([
                (0, BTreeMap::from([(9, 2)])),
                (1, BTreeMap::from([(10, 1)])),
                (2, BTreeMap::from([(23, 1)])),
            ])
        );
        // In Kolkata the last start is Thursday 05:29 on the 18th.
        let h = Heatmap::from_buckets(&b, &tz("Asia/Kolkata"));
        assert_eq!(h.date_range, Some(("2024-01-15".into(), "2024-01-18".into())));
        assert_eq!(h.weekly_hourly.get(&3), Some(&BTreeMap::from([(5, 1)])));
        assert_eq!(h.total_days_with_activity, 3);
    }

    #[test]
    fn heatmap_on_the_long_dst_day_folds_the_repeated_hour() {
        // 01:30 EDT and 01:30 EST are both hour 1 of Sunday 2024-11-03.
        let b = starts(&[("2024-11-03T01:30:00-04:00", None), ("2024-11-03T01:30:00-05:00", None)]);
        let h = Heatmap::from_buckets(&b, &tz("America/New_York"));
        assert_eq!(h.weekly_hourly, BTreeMap::from([(6, BTreeMap::from([(1, 2)]))]));
        assert_eq!(h.daily_sessions, BTreeMap::from([("2024-11-03".into(), 2)]));
    }

    #[test]
    fn empty_reports() {
        let empty = [SessionBucket { bucket_ms: 0, active_ms: 5000, ..Default::default() }];
        for b in [&[][..], &empty[..]] {
            let h = Heatmap::from_buckets(b, &Tz::utc());
            assert_eq!(h, Heatmap::default());
            assert_eq!(h.date_range, None);
            assert_eq!(MostActive::from_buckets(b, &Tz::utc()), MostActive::default());
            assert_eq!(Stats::from_buckets(b, &Tz::utc()), Stats::default());
            assert_eq!(Summary::from_buckets(b), Summary::default());
        }
    }

    #[test]
    fn most_active_picks_day_and_hour_independently() {
        // Mon 10:00 ×3; Tue 09:00 ×2; Tue 11:00 ×2.
        let b = starts(&[
            ("2024-01-15T10:00:00Z", None),
            ("2024-01-15T10:01:00Z", None),
            ("2024-01-15T10:20:00Z", None),
            ("2024-01-16T09:00:00Z", None),
            ("2024-01-16T09:40:00Z", None),
            ("2024-01-16T11:00:00Z", None),
            ("2024-01-16T11:59:00Z", None),
        ]);
        let m = MostActive::from_buckets(&b, &Tz::utc());
        assert_eq!(m.most_active_day.as_deref(), Some("Tuesday"));
        assert_eq!(m.most_active_hour, Some(10));
        assert_eq!(m.peak_sessions, 3);
    }

    #[test]
    fn most_active_ties_go_to_the_earlier() {
        // Sunday 08:00 and Monday 09:00, one each; then Wednesday 20:00 and
        // Tuesday 21:00.
        let b = starts(&[("2024-01-14T08:00:00Z", None), ("2024-01-15T09:00:00Z", None)]);
        let m = MostActive::from_buckets(&b, &Tz::utc());
        assert_eq!(m.most_active_day.as_deref(), Some("Monday"));
        assert_eq!(m.most_active_hour, Some(8));
        assert_eq!(m.peak_sessions, 1);
        let b = starts(&[("2024-01-17T20:00:00Z", None), ("2024-01-16T21:00:00Z", None)]);
        let m = MostActive::from_buckets(&b, &Tz::utc());
        assert_eq!(m.most_active_day.as_deref(), Some("Tuesday"));
        assert_eq!(m.most_active_hour, Some(20));
        // The zone decides the weekday: 2024-01-15T02:00Z is Sunday evening
        // in New York.
        let b = starts(&[("2024-01-15T02:00:00Z", None)]);
        let m = MostActive::from_buckets(&b, &tz("America/New_York"));
        assert_eq!((m.most_active_day.as_deref(), m.most_active_hour), (Some("Sunday"), Some(21)));
    }

    #[test]
    fn stats_and_summary_round_down() {
        let b = starts(&[
            ("2024-01-15T10:00:00Z", Some(1999)),
            ("2024-01-15T10:05:00Z", Some(1000)),
            ("2024-01-16T23:30:00Z", None),
        ]);
        let s = Stats::from_buckets(&b, &Tz::utc());
        assert_eq!(
            s,
            Stats {
                total_sessions: 3,
                average_session_duration: 1,
                total_time_spent: 2,
                active_days: 2
            }
        );
        // In Kolkata the open session starts on the 17th: still 2 days.
        assert_eq!(Stats::from_buckets(&b, &tz("Asia/Kolkata")).active_days, 2);
        assert_eq!(
            Summary::from_buckets(&b),
            Summary {
                total_sessions: 3,
                total_duration: 2,
                average_duration: 1,
                longest_session: 1,
                shortest_session: 1,
            }
        );
        // Started but none ended: durations are 0.
        let open = starts(&[("2024-01-15T10:00:00Z", None)]);
        assert_eq!(
            Summary::from_buckets(&open),
            Summary { total_sessions: 1, ..Default::default() }
        );
    }

    #[test]
    fn long_totals_format_above_99_hours() {
        // 150 sessions of 44 min 54 s = 112 h 15 min.
        let list: Vec<(String, Option<i64>)> = (0..150)
            .map(|i| (format!("2024-01-{:02}T10:00:00Z", 1 + i % 28), Some(2_694_000)))
            .collect();
        let refs: Vec<(&str, Option<i64>)> = list.iter().map(|(s, d)| (s.as_str(), *d)).collect();
        let b = starts(&refs);
        let s = Stats::from_buckets(&b, &Tz::utc());
        assert_eq!(format_hms(s.total_time_spent), "112:15:00");
        assert_eq!(format_hms(s.average_session_duration), "00:44:54");
        assert_eq!(s.active_days, 28);
        let m = Summary::from_buckets(&b);
        assert_eq!(format_hms(m.longest_session), "00:44:54");
        assert_eq!(format_hms(m.total_duration), "112:15:00");
    }

    #[test]
    fn page_reports() {
        let totals = [
            PageTotal { page: "/dashboard".into(), visits: 45, time_sum: 8130 },
            PageTotal { page: "/profile".into(), visits: 3, time_sum: 5 },
            PageTotal { page: "/empty".into(), visits: 0, time_sum: 0 },
        ];
        let t = PageTime::from_totals(&totals, Some("next".into()));
        assert_eq!(
            t.page_time,
            [("/dashboard".into(), 8130), ("/profile".into(), 5), ("/empty".into(), 0)],
            "in the store's order"
        );
        assert_eq!(t.next_cursor.as_deref(), Some("next"));
        let s = PageStats::from_totals(&totals, None);
        assert_eq!(
            s.page_stats,
            [
                ("/dashboard".into(), PageStat { visits: 45, total_time: 8130, average_time: 180 }),
                ("/profile".into(), PageStat { visits: 3, total_time: 5, average_time: 1 }),
                ("/empty".into(), PageStat::default()),
            ]
        );
        assert_eq!(s.next_cursor, None);
    }

    #[test]
    fn timeline_entries_and_details() {
        let open = TrackedSession::start(Uuid::from_u128(1), "a", "u", at("2024-01-01T09:00:00Z"));
        let ended = open.apply(EventKind::End, at("2024-01-01T10:30:00.999Z")).expect("end").after;
        let e = TimelineEntry::from_session(&open);
        assert_eq!((e.end_time, e.duration, e.status), (None, None, TrackState::Active));
        let e = TimelineEntry::from_session(&ended);
        assert_eq!(e.end_time, Some(at("2024-01-01T10:30:00.999Z")));
        assert_eq!(e.duration, Some(5400));
        assert_eq!(e.status, TrackState::Ended);

        let other = TrackedSession::start(Uuid::from_u128(2), "a", "u", at("2024-01-01T11:00:00Z"));
        let ev = |id: u128, seq: i32, kind: EventKind, t: &str| TrackEvent {
            session_id: Uuid::from_u128(id),
            seq,
            kind,
            at: at(t),
        };
        let events = [
            ev(1, 1, EventKind::End, "2024-01-01T10:30:00Z"),
            ev(2, 0, EventKind::Start, "2024-01-01T11:00:00Z"),
            ev(1, 0, EventKind::Start, "2024-01-01T09:00:00Z"),
            ev(9, 0, EventKind::Start, "2024-01-01T09:00:00Z"),
        ];
        let d = DetailEntry::from_sessions(&[ended, other], &events);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].events,
            [
                (EventKind::Start, at("2024-01-01T09:00:00Z")),
                (EventKind::End, at("2024-01-01T10:30:00Z"))
            ]
        );
        assert_eq!(d[1].session_id, Uuid::from_u128(2));
        assert_eq!(d[1].events.len(), 1);
    }
}
