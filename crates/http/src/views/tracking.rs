//! What the API shows of the analytics domain (seed 004's shapes): the
//! tracked-session answers and the reports. Durations are `HH:MM:SS`
//! ([`kernel::format_hms`]), instants RFC 3339 UTC with milliseconds
//! ([`kernel::format_instant`]); weekday and hour keys are strings on the
//! wire, in numeric order.

use std::collections::BTreeMap;

use analytics::{
    DailyTime, DetailPage, Heatmap, MostActive, PageStats, PageTime, PageVisit, Stats, Summary,
    TimelinePage, TrackedSession,
};
use kernel::{format_hms, format_instant};
use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

/// A JSON object whose members are written in the order given. The page
/// reports list pages by total time, not by path, and this workspace's
/// `serde_json` keeps its maps sorted by key (no `preserve_order`), so the
/// object is serialised straight from the list, never through a `Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Whole seconds of a duration in milliseconds, rounded down.
fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// `data` of `/api/sessions/start`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
    "user": "john_doe",
    "start_time": "2024-01-01T12:00:00.000Z",
    "status": "active"
}))]
pub struct SessionStartedData {
    /// The new tracked session's id (UUID).
    pub session_id: String,
    /// Whose session it is (the username, lowercased).
    pub user: String,
    /// The start event's time.
    pub start_time: String,
    /// Always `active`.
    pub status: &'static str,
}

impl From<&TrackedSession> for SessionStartedData {
    fn from(s: &TrackedSession) -> Self {
        Self {
            session_id: s.id.to_string(),
            user: s.user.clone(),
            start_time: format_instant(s.started_at),
            status: s.state.as_str(),
        }
    }
}

/// `data` of `/api/sessions/pause`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
    "status": "paused",
    "pause_time": "2024-01-01T12:30:00.000Z"
}))]
pub struct SessionPausedData {
    /// The session's id (UUID).
    pub session_id: String,
    /// Always `paused`.
    pub status: &'static str,
    /// The pause event's time.
    pub pause_time: String,
}

impl From<&TrackedSession> for SessionPausedData {
    fn from(s: &TrackedSession) -> Self {
        Self {
            session_id: s.id.to_string(),
            status: s.state.as_str(),
            pause_time: format_instant(s.last_event_at),
        }
    }
}

/// `data` of `/api/sessions/resume`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
    "status": "active",
    "resume_time": "2024-01-01T12:45:00.000Z"
}))]
pub struct SessionResumedData {
    /// The session's id (UUID).
    pub session_id: String,
    /// Always `active`.
    pub status: &'static str,
    /// The resume event's time.
    pub resume_time: String,
}

impl From<&TrackedSession> for SessionResumedData {
    fn from(s: &TrackedSession) -> Self {
        Self {
            session_id: s.id.to_string(),
            status: s.state.as_str(),
            resume_time: format_instant(s.last_event_at),
        }
    }
}

/// `data` of `/api/sessions/end`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
    "status": "ended",
    "end_time": "2024-01-01T13:00:00.000Z",
    "total_duration": "01:00:00"
}))]
pub struct SessionEndedData {
    /// The session's id (UUID).
    pub session_id: String,
    /// Always `ended`.
    pub status: &'static str,
    /// The end event's time.
    pub end_time: String,
    /// Active time of the whole session (pauses excluded), `HH:MM:SS`.
    pub total_duration: String,
}

impl From<&TrackedSession> for SessionEndedData {
    fn from(s: &TrackedSession) -> Self {
        Self {
            session_id: s.id.to_string(),
            status: s.state.as_str(),
            end_time: format_instant(s.ended_at.unwrap_or(s.last_event_at)),
            total_duration: format_hms(seconds(s.active_ms)),
        }
    }
}

/// First and last local day with a session start.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DateRangeView {
    /// The first day (`YYYY-MM-DD`); null when there is none.
    #[schema(required = true, example = "2024-01-15")]
    pub start_date: Option<String>,
    /// The last day (`YYYY-MM-DD`); null when there is none.
    #[schema(required = true, example = "2024-01-17")]
    pub end_date: Option<String>,
}

/// The heatmap (`data`, and `heatmap_data` beside it).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "daily_sessions": {"2024-01-15": 5, "2024-01-16": 12, "2024-01-17": 8},
    "weekly_hourly": {
        "0": {"9": 5, "10": 12, "11": 8},
        "1": {"9": 3, "10": 15, "11": 10}
    },
    "total_sessions": 25,
    "total_days_with_activity": 3,
    "date_range": {"start_date": "2024-01-15", "end_date": "2024-01-17"}
}))]
pub struct HeatmapData {
    /// Local date (`YYYY-MM-DD`) → sessions started that day; only days
    /// with a start.
    pub daily_sessions: BTreeMap<String, i64>,
    /// Weekday (`"0"` = Monday … `"6"` = Sunday) → local hour (`"0"`–`"23"`)
    /// → sessions started; only non-zero cells.
    #[schema(value_type = BTreeMap<String, BTreeMap<String, i64>>)]
    pub weekly_hourly: BTreeMap<u8, BTreeMap<u8, i64>>,
    /// Sessions started.
    pub total_sessions: i64,
    /// Distinct local days with a start.
    pub total_days_with_activity: i64,
    /// First and last day with a start (nulls when there is none).
    pub date_range: DateRangeView,
}

impl From<&Heatmap> for HeatmapData {
    fn from(h: &Heatmap) -> Self {
        let (start_date, end_date) = match &h.date_range {
            Some((a, b)) => (Some(a.clone()), Some(b.clone())),
            None => (None, None),
        };
        Self {
            daily_sessions: h.daily_sessions.clone(),
            weekly_hourly: h.weekly_hourly.clone(),
            total_sessions: h.total_sessions,
            total_days_with_activity: h.total_days_with_activity,
            date_range: DateRangeView { start_date, end_date },
        }
    }
}

/// The fields of the heatmap answer that sit beside `data` (seed 004 shows
/// `heatmap_data` at the top level).
#[derive(Debug, Serialize)]
pub(crate) struct HeatmapTopLevel<'a> {
    /// The same object as `data`.
    pub(crate) heatmap_data: &'a HeatmapData,
}

/// `data` of most-active.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"most_active_day": "Monday", "most_active_hour": 14, "peak_sessions": 25}))]
pub struct MostActiveData {
    /// English weekday name with the most session starts (ties to the
    /// earlier, Monday first); null when there are none.
    #[schema(required = true, example = "Monday")]
    pub most_active_day: Option<String>,
    /// Local hour (0–23) with the most starts (ties to the lower); null
    /// when there are none.
    #[schema(required = true, minimum = 0, maximum = 23, example = 14)]
    pub most_active_hour: Option<u8>,
    /// Starts in the busiest weekday-and-hour cell; 0 when there are none.
    pub peak_sessions: i64,
}

impl From<&MostActive> for MostActiveData {
    fn from(m: &MostActive) -> Self {
        Self {
            most_active_day: m.most_active_day.clone(),
            most_active_hour: m.most_active_hour,
            peak_sessions: m.peak_sessions,
        }
    }
}

/// `data` of stats.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "total_sessions": 150,
    "average_session_duration": "00:45:30",
    "total_time_spent": "112:15:00",
    "active_days": 45
}))]
pub struct StatsData {
    /// Sessions started.
    pub total_sessions: i64,
    /// Mean active time of the ended sessions (rounded down), `HH:MM:SS`.
    pub average_session_duration: String,
    /// Total active time of the ended sessions, `HH:MM:SS`.
    pub total_time_spent: String,
    /// Distinct local days with a start.
    pub active_days: i64,
}

impl From<&Stats> for StatsData {
    fn from(s: &Stats) -> Self {
        Self {
            total_sessions: s.total_sessions,
            average_session_duration: format_hms(s.average_session_duration),
            total_time_spent: format_hms(s.total_time_spent),
            active_days: s.active_days,
        }
    }
}

/// `data` of summary and public-summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "total_sessions": 150,
    "total_duration": "112:15:00",
    "average_duration": "00:45:30",
    "longest_session": "02:30:45",
    "shortest_session": "00:05:12"
}))]
pub struct SummaryData {
    /// Sessions started.
    pub total_sessions: i64,
    /// Total active time of the ended sessions, `HH:MM:SS`.
    pub total_duration: String,
    /// Mean active time of the ended sessions (rounded down), `HH:MM:SS`.
    pub average_duration: String,
    /// The longest ended session, `HH:MM:SS`.
    pub longest_session: String,
    /// The shortest ended session, `HH:MM:SS`.
    pub shortest_session: String,
}

impl From<&Summary> for SummaryData {
    fn from(s: &Summary) -> Self {
        Self {
            total_sessions: s.total_sessions,
            total_duration: format_hms(s.total_duration),
            average_duration: format_hms(s.average_duration),
            longest_session: format_hms(s.longest_session),
            shortest_session: format_hms(s.shortest_session),
        }
    }
}

/// One session of a timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntryView {
    /// The session's id (UUID).
    #[schema(example = "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e")]
    pub session_id: String,
    /// When it started.
    #[schema(example = "2024-01-01T09:00:00.000Z")]
    pub start_time: String,
    /// When it ended; null while open.
    #[schema(required = true, example = "2024-01-01T10:30:00.000Z")]
    pub end_time: Option<String>,
    /// Its active time, `HH:MM:SS`; null while open.
    #[schema(required = true, example = "01:30:00")]
    pub duration: Option<String>,
    /// `active`, `paused` or `ended`.
    #[schema(example = "ended")]
    pub status: &'static str,
}

/// `data` of timeline and public-timeline: a page of sessions in ascending
/// start time.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "timeline": [{
        "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
        "start_time": "2024-01-01T09:00:00.000Z",
        "end_time": "2024-01-01T10:30:00.000Z",
        "duration": "01:30:00",
        "status": "ended"
    }],
    "next_cursor": null
}))]
pub struct TimelineData {
    /// The sessions, in ascending start time.
    pub timeline: Vec<TimelineEntryView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<&TimelinePage> for TimelineData {
    fn from(p: &TimelinePage) -> Self {
        Self {
            timeline: p
                .timeline
                .iter()
                .map(|e| TimelineEntryView {
                    session_id: e.session_id.to_string(),
                    start_time: format_instant(e.start_time),
                    end_time: e.end_time.map(format_instant),
                    duration: e.duration.map(format_hms),
                    status: e.status.as_str(),
                })
                .collect(),
            next_cursor: p.next_cursor.clone(),
        }
    }
}

/// `data` of daily-time-spent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "daily_time": {"2024-01-01": "02:30:00", "2024-01-02": "03:15:00", "2024-01-03": "01:45:00"}
}))]
pub struct DailyTimeData {
    /// Local date (`YYYY-MM-DD`) → active time that day, `HH:MM:SS`.
    pub daily_time: BTreeMap<String, String>,
}

impl From<&DailyTime> for DailyTimeData {
    fn from(d: &DailyTime) -> Self {
        Self { daily_time: d.0.iter().map(|(day, s)| (day.clone(), format_hms(*s))).collect() }
    }
}

/// `data` of time-by-page: one page of the report.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "page_time": {"/dashboard": "05:30:00", "/profile": "02:15:00", "/settings": "01:10:00"},
    "next_cursor": null
}))]
pub struct PageTimeData {
    /// Page path → total time spent on it, `HH:MM:SS`; at most `limit`
    /// pages, written in report order: total time, most first, then path
    /// (byte order).
    #[schema(value_type = BTreeMap<String, String>)]
    pub page_time: OrderedMap<String>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<&PageTime> for PageTimeData {
    fn from(p: &PageTime) -> Self {
        Self {
            page_time: OrderedMap(
                p.page_time.iter().map(|(page, s)| (page.clone(), format_hms(*s))).collect(),
            ),
            next_cursor: p.next_cursor.clone(),
        }
    }
}

/// One event of a tracked session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionEventView {
    /// `start`, `pause`, `resume` or `end`.
    #[serde(rename = "type")]
    #[schema(example = "start")]
    pub kind: &'static str,
    /// When it happened.
    #[schema(example = "2024-01-01T09:00:00.000Z")]
    pub timestamp: String,
}

/// One session with its events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DetailEntryView {
    /// The session's id (UUID).
    #[schema(example = "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e")]
    pub session_id: String,
    /// Its events, in order.
    pub events: Vec<SessionEventView>,
}

/// `data` of session-timeline-detail: a page of sessions in ascending start
/// time, each with its events; at most `limit` sessions and 10,000 events.
/// A session whose events do not fit is cut, and the next page opens with
/// it again (the same `session_id`), holding the rest of its events.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "detailed_timeline": [{
        "session_id": "0190f1c2-7e3a-7b4c-9d2e-1f2a3b4c5d6e",
        "events": [
            {"type": "start", "timestamp": "2024-01-01T09:00:00.000Z"},
            {"type": "pause", "timestamp": "2024-01-01T09:30:00.000Z"},
            {"type": "resume", "timestamp": "2024-01-01T09:45:00.000Z"},
            {"type": "end", "timestamp": "2024-01-01T10:30:00.000Z"}
        ]
    }],
    "next_cursor": null
}))]
pub struct DetailTimelineData {
    /// The sessions with their events.
    pub detailed_timeline: Vec<DetailEntryView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<&DetailPage> for DetailTimelineData {
    fn from(p: &DetailPage) -> Self {
        Self {
            detailed_timeline: p
                .detailed_timeline
                .iter()
                .map(|e| DetailEntryView {
                    session_id: e.session_id.to_string(),
                    events: e
                        .events
                        .iter()
                        .map(|(kind, at)| SessionEventView {
                            kind: kind.as_str(),
                            timestamp: format_instant(*at),
                        })
                        .collect(),
                })
                .collect(),
            next_cursor: p.next_cursor.clone(),
        }
    }
}

/// `data` of pages/track.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"page": "/dashboard", "time_spent": 120, "timestamp": "2024-01-01T12:00:00.000Z"}))]
pub struct PageTrackedData {
    /// The page path.
    pub page: String,
    /// Seconds spent on it.
    pub time_spent: i64,
    /// The visit's time.
    pub timestamp: String,
}

impl From<&PageVisit> for PageTrackedData {
    fn from(v: &PageVisit) -> Self {
        Self { page: v.page.clone(), time_spent: v.timespent, timestamp: format_instant(v.at) }
    }
}

/// Statistics of one page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageStatView {
    /// Visits.
    #[schema(example = 45)]
    pub visits: i64,
    /// Total time spent, `HH:MM:SS`.
    #[schema(example = "02:15:30")]
    pub total_time: String,
    /// Mean time per visit (rounded down), `HH:MM:SS`.
    #[schema(example = "00:03:00")]
    pub average_time: String,
}

/// `data` of pages/stats: one page of the report.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "page_stats": {
        "/dashboard": {"visits": 45, "total_time": "02:15:30", "average_time": "00:03:00"},
        "/profile": {"visits": 20, "total_time": "01:30:00", "average_time": "00:04:30"}
    },
    "next_cursor": null
}))]
pub struct PageStatsData {
    /// Page path → its statistics; at most `limit` pages, written in report
    /// order: total time, most first, then path (byte order).
    #[schema(value_type = BTreeMap<String, PageStatView>)]
    pub page_stats: OrderedMap<PageStatView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<&PageStats> for PageStatsData {
    fn from(p: &PageStats) -> Self {
        Self {
            page_stats: OrderedMap(
                p.page_stats
                    .iter()
                    .map(|(page, s)| {
                        (
                            page.clone(),
                            PageStatView {
                                visits: s.visits,
                                total_time: format_hms(s.total_time),
                                average_time: format_hms(s.average_time),
                            },
                        )
                    })
                    .collect(),
            ),
            next_cursor: p.next_cursor.clone(),
        }
    }
}
