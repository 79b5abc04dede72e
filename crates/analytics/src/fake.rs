//! The analytics domain's test double: a naive in-memory
//! [`TrackingStore`] and the fixtures the use-case tests share.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kernel::{
    AppName, Duration, ManualClock, OffsetDateTime, Username, Uuid, from_millis, parse_instant,
    to_millis,
};

use crate::{
    AnalyticsError, AnalyticsService, AnalyticsSettings, BUCKET_MS, Caller, DailyTime, DetailPage,
    EventKind, EventSpan, Heatmap, Interval, MostActive, MsRange, PagePosition, PageStats,
    PageTime, PageTotal, PageVisit, Paging, RawReport, RawStart, RawTrackPage, RawTransition,
    ReportRequest, SessionBucket, StartRequest, Stats, Subject, Summary, TimelinePage,
    TimelinePosition, TrackEvent, TrackPageRequest, TrackState, TrackedSession, TrackingStore,
    TransitionRequest, VisitRequest,
};

/// A deliberately naive in-memory store: a test double for the domain
/// (the real stores have their own contract tests). Buckets are
/// computed from the rows on every call.
#[derive(Default)]
pub(crate) struct MemStore {
    pub(crate) sessions: Mutex<HashMap<Uuid, TrackedSession>>,
    pub(crate) events: Mutex<Vec<TrackEvent>>,
    pub(crate) intervals: Mutex<Vec<(String, String, Interval)>>,
    pub(crate) visits: Mutex<Vec<PageVisit>>,
    /// When set, the next `apply_transition` first lets a concurrent
    /// request win with this step (at the same time) and reports the
    /// conflict.
    pub(crate) race_once: Mutex<Option<EventKind>>,
    pub(crate) cas_calls: AtomicUsize,
    /// How many events each `events_of` call returned.
    pub(crate) events_read: Mutex<Vec<usize>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn covers(range: MsRange, ms: i64) -> bool {
    range.from.is_none_or(|f| ms >= f) && range.to.is_none_or(|t| ms < t)
}

fn of(subject: &Subject, user: &str) -> bool {
    subject.user().is_none_or(|u| u == user)
}

impl TrackingStore for MemStore {
    fn insert_session(&self, session: &TrackedSession) -> anyhow::Result<()> {
        lock(&self.sessions).insert(session.id, session.clone());
        lock(&self.events).push(TrackEvent {
            session_id: session.id,
            seq: 0,
            kind: EventKind::Start,
            at: session.started_at,
        });
        Ok(())
    }

    fn get_session(&self, app: &str, id: Uuid) -> anyhow::Result<Option<TrackedSession>> {
        Ok(lock(&self.sessions).get(&id).filter(|s| s.app == app).cloned())
    }

    fn apply_transition(
        &self,
        before: &TrackedSession,
        after: &TrackedSession,
        event: &TrackEvent,
        closed: Option<Interval>,
    ) -> anyhow::Result<bool> {
        self.cas_calls.fetch_add(1, Ordering::SeqCst);
        let mut sessions = lock(&self.sessions);
        if let Some(kind) = lock(&self.race_once).take() {
            let racer = before.apply(kind, after.last_event_at)?.after;
            sessions.insert(racer.id, racer);
            return Ok(false);
        }
        let Some(current) = sessions.get_mut(&before.id) else { return Ok(false) };
        if current.state != before.state || current.last_event_at != before.last_event_at {
            return Ok(false);
        }
        *current = after.clone();
        lock(&self.events).push(*event);
        if let Some(i) = closed {
            lock(&self.intervals).push((after.app.clone(), after.user.clone(), i));
        }
        Ok(true)
    }

    fn stale_open_sessions(
        &self,
        cutoff: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        let mut v: Vec<TrackedSession> = lock(&self.sessions)
            .values()
            .filter(|s| s.state != TrackState::Ended && s.last_seen_at < cutoff)
            .cloned()
            .collect();
        v.sort_by_key(|s| (s.last_seen_at, s.id));
        v.truncate(limit as usize);
        Ok(v)
    }

    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()> {
        lock(&self.visits).extend_from_slice(visits);
        Ok(())
    }

    fn session_buckets(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
    ) -> anyhow::Result<Vec<SessionBucket>> {
        let mut by: BTreeMap<i64, SessionBucket> = BTreeMap::new();
        let bucket = |by: &mut BTreeMap<i64, SessionBucket>, ms: i64| {
            let bucket_ms = ms.div_euclid(BUCKET_MS) * BUCKET_MS;
            *by.entry(bucket_ms).or_insert(SessionBucket { bucket_ms, ..Default::default() })
        };
        for s in lock(&self.sessions).values() {
            let start = to_millis(s.started_at);
            if s.app != app || !of(subject, &s.user) || !covers(range, start) {
                continue;
            }
            let mut b = bucket(&mut by, start);
            b.starts += 1;
            if s.state == TrackState::Ended {
                b.ended += 1;
                b.dur_sum_ms += s.active_ms;
                b.dur_min_ms = Some(b.dur_min_ms.map_or(s.active_ms, |m| m.min(s.active_ms)));
                b.dur_max_ms = Some(b.dur_max_ms.map_or(s.active_ms, |m| m.max(s.active_ms)));
            }
            by.insert(b.bucket_ms, b);
        }
        for (a, u, i) in lock(&self.intervals).iter() {
            if a != app || !of(subject, u) {
                continue;
            }
            // Clip to the range, as the port promises.
            let from = range.from.map_or(to_millis(i.from), |f| f.max(to_millis(i.from)));
            let to = range.to.map_or(to_millis(i.to), |t| t.min(to_millis(i.to)));
            let clipped = Interval { from: from_millis(from), to: from_millis(to) };
            for (bucket_ms, piece) in clipped.split_by_bucket() {
                let mut b = bucket(&mut by, bucket_ms);
                b.active_ms += piece;
                by.insert(bucket_ms, b);
            }
        }
        Ok(by.into_values().collect())
    }

    fn page_totals(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<&PagePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<PageTotal>> {
        let mut by: BTreeMap<String, PageTotal> = BTreeMap::new();
        for v in lock(&self.visits).iter() {
            if v.app == app && of(subject, &v.user) && covers(range, to_millis(v.at)) {
                let t = by.entry(v.page.clone()).or_insert(PageTotal {
                    page: v.page.clone(),
                    visits: 0,
                    time_sum: 0,
                });
                t.visits += 1;
                t.time_sum += v.timespent;
            }
        }
        let mut v: Vec<PageTotal> =
            by.into_values().filter(|t| after.is_none_or(|a| a.precedes(t))).collect();
        v.sort_by(|a, b| b.time_sum.cmp(&a.time_sum).then_with(|| a.page.cmp(&b.page)));
        v.truncate(limit as usize);
        Ok(v)
    }

    fn timeline(
        &self,
        app: &str,
        subject: &Subject,
        range: MsRange,
        after: Option<TimelinePosition>,
        limit: u32,
    ) -> anyhow::Result<Vec<TrackedSession>> {
        let mut v: Vec<TrackedSession> = lock(&self.sessions)
            .values()
            .filter(|s| {
                s.app == app
                    && of(subject, &s.user)
                    && covers(range, to_millis(s.started_at))
                    && after.is_none_or(|p| (s.started_at, s.id) > (p.started_at, p.id))
            })
            .cloned()
            .collect();
        v.sort_by_key(|s| (s.started_at, s.id));
        v.truncate(limit as usize);
        Ok(v)
    }

    fn events_of(&self, spans: &[EventSpan]) -> anyhow::Result<Vec<TrackEvent>> {
        let events = lock(&self.events);
        let mut out = Vec::new();
        for span in spans {
            let mut v: Vec<TrackEvent> = events
                .iter()
                .filter(|e| e.session_id == span.session_id)
                .filter(|e| (span.from_seq..span.to_seq).contains(&e.seq))
                .copied()
                .collect();
            v.sort_by_key(|e| e.seq);
            out.extend(v);
        }
        lock(&self.events_read).push(out.len());
        Ok(out)
    }
}

/// A service over a [`MemStore`], with the clock it reads.
pub(crate) struct Fixture {
    pub(crate) store: Arc<MemStore>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) svc: AnalyticsService,
}

pub(crate) fn fixture_with(public: bool) -> Fixture {
    fixture_on(Arc::new(MemStore::default()), public)
}

pub(crate) fn fixture_on(store: Arc<MemStore>, public: bool) -> Fixture {
    let clock = Arc::new(ManualClock::at(at("2024-06-01T12:00:00Z")));
    let svc = AnalyticsService::new(
        store.clone(),
        clock.clone(),
        AnalyticsSettings {
            public_tracking: public,
            public_analytics: public,
            idle_timeout: Duration::hours(12),
        },
    );
    Fixture { store, clock, svc }
}

pub(crate) fn fixture() -> Fixture {
    fixture_with(true)
}

pub(crate) fn at(s: &str) -> OffsetDateTime {
    parse_instant(s).expect("instant")
}

pub(crate) fn caller(username: &str, app: &str, is_admin: bool) -> Caller {
    Caller {
        username: Username::parse(username).expect("username"),
        app: AppName::parse(app).expect("app"),
        is_admin,
    }
}

pub(crate) fn alice() -> Caller {
    caller("Alice", "web", false)
}

pub(crate) fn admin() -> Caller {
    caller("root", "other", true)
}

pub(crate) fn start_req(user: &str, time: &str) -> RawStart {
    RawStart { user: user.into(), app: "web".into(), time: Some(time.into()), status: None }
}

pub(crate) fn step_req(user: &str, id: Uuid, time: &str) -> RawTransition {
    RawTransition {
        user: user.into(),
        app: "web".into(),
        session_id: id.to_string(),
        time: Some(time.into()),
    }
}

/// The tracking use cases over requests as received, parsed as an edge
/// does: with the service's clock, and page visits after the gate.
pub(crate) trait Raw {
    fn start_raw(&self, c: &Caller, r: RawStart) -> Result<TrackedSession, AnalyticsError>;
    fn pause_raw(&self, c: &Caller, r: RawTransition) -> Result<TrackedSession, AnalyticsError>;
    fn resume_raw(&self, c: &Caller, r: RawTransition) -> Result<TrackedSession, AnalyticsError>;
    fn end_raw(&self, c: &Caller, r: RawTransition) -> Result<TrackedSession, AnalyticsError>;
    fn track_page_raw(
        &self,
        c: Option<&Caller>,
        r: RawTrackPage,
    ) -> Result<PageVisit, AnalyticsError>;
    fn check_page_visit_raw(
        &self,
        c: Option<&Caller>,
        r: RawTrackPage,
    ) -> Result<VisitRequest, AnalyticsError>;
}

impl Raw for AnalyticsService {
    fn start_raw(&self, c: &Caller, r: RawStart) -> Result<TrackedSession, AnalyticsError> {
        self.start(c, StartRequest::parse(r, self.now())?)
    }
    fn pause_raw(&self, c: &Caller, r: RawTransition) -> Result<TrackedSession, AnalyticsError> {
        self.pause(c, TransitionRequest::parse(r, self.now())?)
    }
    fn resume_raw(&self, c: &Caller, r: RawTransition) -> Result<TrackedSession, AnalyticsError> {
        self.resume(c, TransitionRequest::parse(r, self.now())?)
    }
    fn end_raw(&self, c: &Caller, r: RawTransition) -> Result<TrackedSession, AnalyticsError> {
        self.end(c, TransitionRequest::parse(r, self.now())?)
    }
    fn track_page_raw(
        &self,
        c: Option<&Caller>,
        r: RawTrackPage,
    ) -> Result<PageVisit, AnalyticsError> {
        self.may_track_pages(c)?;
        self.track_page(c, TrackPageRequest::parse(r, self.now())?)
    }
    fn check_page_visit_raw(
        &self,
        c: Option<&Caller>,
        r: RawTrackPage,
    ) -> Result<VisitRequest, AnalyticsError> {
        self.may_track_pages(c)?;
        self.check_page_visit(c, TrackPageRequest::parse(r, self.now())?)
    }
}

pub(crate) fn report(user: &str) -> RawReport {
    RawReport { app: "web".into(), user: user.into(), ..Default::default() }
}

/// The report use cases over requests as received, parsed as an edge
/// does: for the report's paging, after the gate.
pub(crate) trait RawReports {
    fn parsed(
        &self,
        c: Option<&Caller>,
        r: RawReport,
        paging: Paging,
    ) -> Result<ReportRequest, AnalyticsError>;
    fn heatmap_raw(&self, c: &Caller, r: RawReport) -> Result<Heatmap, AnalyticsError>;
    fn most_active_raw(&self, c: &Caller, r: RawReport) -> Result<MostActive, AnalyticsError>;
    fn stats_raw(&self, c: &Caller, r: RawReport) -> Result<Stats, AnalyticsError>;
    fn summary_raw(&self, c: Option<&Caller>, r: RawReport) -> Result<Summary, AnalyticsError>;
    fn timeline_raw(
        &self,
        c: Option<&Caller>,
        r: RawReport,
    ) -> Result<TimelinePage, AnalyticsError>;
    fn daily_time_spent_raw(&self, c: &Caller, r: RawReport) -> Result<DailyTime, AnalyticsError>;
    fn time_by_page_raw(&self, c: &Caller, r: RawReport) -> Result<PageTime, AnalyticsError>;
    fn session_timeline_detail_raw(
        &self,
        c: &Caller,
        r: RawReport,
    ) -> Result<DetailPage, AnalyticsError>;
    fn page_stats_raw(&self, c: &Caller, r: RawReport) -> Result<PageStats, AnalyticsError>;
}

impl RawReports for AnalyticsService {
    fn parsed(
        &self,
        c: Option<&Caller>,
        r: RawReport,
        paging: Paging,
    ) -> Result<ReportRequest, AnalyticsError> {
        self.may_report(c)?;
        ReportRequest::parse(r, paging)
    }
    fn heatmap_raw(&self, c: &Caller, r: RawReport) -> Result<Heatmap, AnalyticsError> {
        self.heatmap(c, self.parsed(Some(c), r, Paging::No)?)
    }
    fn most_active_raw(&self, c: &Caller, r: RawReport) -> Result<MostActive, AnalyticsError> {
        self.most_active(c, self.parsed(Some(c), r, Paging::No)?)
    }
    fn stats_raw(&self, c: &Caller, r: RawReport) -> Result<Stats, AnalyticsError> {
        self.stats(c, self.parsed(Some(c), r, Paging::No)?)
    }
    fn summary_raw(&self, c: Option<&Caller>, r: RawReport) -> Result<Summary, AnalyticsError> {
        self.summary(c, self.parsed(c, r, Paging::No)?)
    }
    fn timeline_raw(
        &self,
        c: Option<&Caller>,
        r: RawReport,
    ) -> Result<TimelinePage, AnalyticsError> {
        self.timeline(c, self.parsed(c, r, Paging::Sessions)?)
    }
    fn daily_time_spent_raw(&self, c: &Caller, r: RawReport) -> Result<DailyTime, AnalyticsError> {
        self.daily_time_spent(c, self.parsed(Some(c), r, Paging::No)?)
    }
    fn time_by_page_raw(&self, c: &Caller, r: RawReport) -> Result<PageTime, AnalyticsError> {
        self.time_by_page(c, self.parsed(Some(c), r, Paging::Pages)?)
    }
    fn session_timeline_detail_raw(
        &self,
        c: &Caller,
        r: RawReport,
    ) -> Result<DetailPage, AnalyticsError> {
        self.session_timeline_detail(c, self.parsed(Some(c), r, Paging::Events)?)
    }
    fn page_stats_raw(&self, c: &Caller, r: RawReport) -> Result<PageStats, AnalyticsError> {
        self.page_stats(c, self.parsed(Some(c), r, Paging::Pages)?)
    }
}

pub(crate) fn fields(e: AnalyticsError) -> Vec<String> {
    match e {
        AnalyticsError::Invalid(v) => v.iter().map(|(f, _)| f.to_owned()).collect(),
        other => panic!("expected 422, got {other:?}"),
    }
}

pub(crate) fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.expect("use case should succeed")
}

/// Alice's visit to `page` in `web`, two minutes spent, dated now.
pub(crate) fn visit(user: &str, page: &str) -> RawTrackPage {
    RawTrackPage {
        user: user.into(),
        page: page.into(),
        timespent: Some(120),
        app: "web".into(),
        session_id: None,
        time: None,
    }
}
