//! An in-memory [`TrackingStore`] under the real [`AnalyticsService`], so
//! that the tracking routes' tests check routing, bodies, the envelope and
//! the error mapping end to end.

pub(crate) use std::collections::BTreeMap;
pub(crate) use std::sync::Mutex;

pub(crate) use analytics::{
    AnalyticsService, AnalyticsSettings, BUCKET_MS, EventKind, EventSpan, Interval, MsRange,
    PagePosition, PageTotal, PageVisit, SessionBucket, Subject, TimelinePosition, TrackEvent,
    TrackState, TrackedSession, TrackingStore,
};

use super::*;

/// Tracked sessions, events, intervals and visits in memory; with `down`
/// set, every call fails like an unreachable database.
#[derive(Default)]
pub(crate) struct MemTracking {
    data: Mutex<Mem>,
    pub(crate) down: AtomicBool,
}

#[derive(Default)]
struct Mem {
    sessions: Vec<TrackedSession>,
    events: Vec<TrackEvent>,
    intervals: Vec<(Uuid, Interval)>,
    visits: Vec<PageVisit>,
}

fn of(subject: &Subject, user: &str) -> bool {
    match subject {
        Subject::All => true,
        Subject::User(u) => u == user,
    }
}

fn within(range: MsRange, ms: i64) -> bool {
    range.from.is_none_or(|f| ms >= f) && range.to.is_none_or(|t| ms < t)
}

fn bucket_of(ms: i64) -> i64 {
    ms.div_euclid(BUCKET_MS) * BUCKET_MS
}

impl MemTracking {
    fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> anyhow::Result<T> {
        if self.down.load(Ordering::Relaxed) {
            let cause: Box<dyn std::error::Error + Send + Sync> = "connection refused".into();
            return Err(anyhow::Error::new(kernel::Unavailable(cause)));
        }
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        Ok(f(&mut data))
    }
}

impl TrackingStore for MemTracking {
    fn insert_session(&self, s: &TrackedSession) -> anyhow::Result<()> {
        self.with(|m| {
            m.events.push(TrackEvent {
                session_id: s.id,
                seq: 0,
                kind: EventKind::Start,
                at: s.started_at,
            });
            m.sessions.push(s.clone());
        })
    }

    fn get_session(&self, app: &str, id: Uuid) -> anyhow::Result<Option<TrackedSession>> {
        self.with(|m| m.sessions.iter().find(|s| s.id == id && s.app == app).cloned())
    }

    fn apply_transition(
        &self,
        before: &TrackedSession,
        after: &TrackedSession,
        event: &TrackEvent,
        closed: Option<Interval>,
    ) -> anyhow::Result<bool> {
        self.with(|m| {
            let Some(s) = m.sessions.iter_mut().find(|s| s.id == before.id) else {
                return false;
            };
            if s.state != before.state || s.last_event_at != before.last_event_at {
                return false;
            }
            *s = after.clone();
            m.events.push(*event);
            m.intervals.extend(closed.map(|i| (after.id, i)));
            true
        })
    }

    fn stale_open_sessions(
        &self,
        cutoff: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        self.with(|m| {
            let mut open: Vec<TrackedSession> = m
                .sessions
                .iter()
                .filter(|s| s.state != TrackState::Ended && s.last_event_at < cutoff)
                .cloned()
                .collect();
            open.sort_by_key(|s| s.last_event_at);
            open.truncate(limit as usize);
            open
        })
    }

    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()> {
        self.with(|m| m.visits.extend_from_slice(visits))
    }

    fn session_buckets(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
    ) -> anyhow::Result<Vec<SessionBucket>> {
        self.with(|m| {
            let mut buckets: BTreeMap<i64, SessionBucket> = BTreeMap::new();
            let mine = |s: &TrackedSession| s.app == app && of(subject, &s.user);
            for s in m.sessions.iter().filter(|s| mine(s)) {
                let start = kernel::to_millis(s.started_at);
                if !within(range, start) {
                    continue;
                }
                let b = buckets.entry(bucket_of(start)).or_default();
                b.starts += 1;
                if s.state == TrackState::Ended {
                    b.ended += 1;
                    b.dur_sum_ms += s.active_ms;
                    b.dur_min_ms = Some(b.dur_min_ms.map_or(s.active_ms, |d| d.min(s.active_ms)));
                    b.dur_max_ms = Some(b.dur_max_ms.map_or(s.active_ms, |d| d.max(s.active_ms)));
                }
            }
            for (id, i) in &m.intervals {
                if !m.sessions.iter().any(|s| s.id == *id && mine(s)) {
                    continue;
                }
                let mut from = kernel::to_millis(i.from).max(range.from.unwrap_or(i64::MIN));
                let to = kernel::to_millis(i.to).min(range.to.unwrap_or(i64::MAX));
                while from < to {
                    let edge = (bucket_of(from) + BUCKET_MS).min(to);
                    buckets.entry(bucket_of(from)).or_default().active_ms += edge - from;
                    from = edge;
                }
            }
            buckets.into_iter().map(|(bucket_ms, b)| SessionBucket { bucket_ms, ..b }).collect()
        })
    }

    fn page_totals(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<&PagePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<PageTotal>> {
        self.with(|m| {
            let mut totals: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            for v in &m.visits {
                if v.app == app && of(subject, &v.user) && within(range, kernel::to_millis(v.at)) {
                    let t = totals.entry(v.page.clone()).or_default();
                    t.0 += 1;
                    t.1 += v.timespent;
                }
            }
            let mut list: Vec<PageTotal> = totals
                .into_iter()
                .map(|(page, (visits, time_sum))| PageTotal { page, visits, time_sum })
                .filter(|t| after.is_none_or(|a| a.precedes(t)))
                .collect();
            list.sort_by(|a, b| b.time_sum.cmp(&a.time_sum).then_with(|| a.page.cmp(&b.page)));
            list.truncate(limit as usize);
            list
        })
    }

    fn timeline(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<TimelinePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        self.with(|m| {
            let mut list: Vec<TrackedSession> = m
                .sessions
                .iter()
                .filter(|s| s.app == app && of(subject, &s.user))
                .filter(|s| within(range, kernel::to_millis(s.started_at)))
                .filter(|s| after.is_none_or(|a| (s.started_at, s.id) > (a.started_at, a.id)))
                .cloned()
                .collect();
            list.sort_by_key(|s| (s.started_at, s.id));
            list.truncate(limit as usize);
            list
        })
    }

    fn events_of(&self, spans: &[EventSpan]) -> anyhow::Result<Vec<TrackEvent>> {
        self.with(|m| {
            let mut events: Vec<TrackEvent> = Vec::new();
            for span in spans {
                let mut mine: Vec<TrackEvent> = m
                    .events
                    .iter()
                    .filter(|e| e.session_id == span.session_id)
                    .filter(|e| (span.from_seq..span.to_seq).contains(&e.seq))
                    .copied()
                    .collect();
                mine.sort_by_key(|e| e.seq);
                events.extend(mine);
            }
            events
        })
    }
}

/// The analytics use cases over `store`, public endpoints on or off.
pub(crate) fn service(store: Arc<MemTracking>, public: bool) -> Arc<AnalyticsService> {
    Arc::new(AnalyticsService::new(
        store,
        Arc::new(SystemClock),
        AnalyticsSettings {
            public_tracking: public,
            public_analytics: public,
            idle_timeout: Duration::hours(12),
        },
    ))
}

/// A POST of `body` (raw JSON text) as curl would send it.
pub(crate) fn json_post(path: &str, body: &str) -> atest::TestRequest {
    post(path).insert_header(header::ContentType::json()).set_payload(body.to_owned())
}

pub(crate) fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> =
        v.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    k.sort_unstable();
    k
}
