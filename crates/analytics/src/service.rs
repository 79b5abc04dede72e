//! The analytics use cases: validation, authorization, the state machine
//! applied as a compare-and-swap, group-committed page visits, and the
//! reports built from the store's bucket aggregates.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Instant;

use futures_channel::oneshot;

use kernel::{Clock, Duration, OffsetDateTime, Uuid, Violations};

use crate::{
    AnalyticsError, App, DailyTime, DetailEntry, DetailPage, EventKind, EventSpan, Heatmap,
    MostActive, MsRange, PagePath, PagePosition, PageStats, PageTime, PageTotal, PageVisit,
    SessionBucket, Stats, Subject, Summary, TimeSpent, TimelineEntry, TimelinePage,
    TimelinePosition, TrackedSession, TrackingStore, Tz, parse_bound, parse_username,
};

/// How often a transition is retried when the session changed between
/// reading it and the compare-and-swap. Each retry re-reads the session
/// and re-checks the state machine, so a concurrent identical step ends in
/// 409, not in a loop; the bound only guards against a store that never
/// confirms.
const MAX_CAS_ATTEMPTS: usize = 16;

/// Most page visits written in one group commit.
const MAX_BATCH: usize = 1000;

/// How often the page batcher folds the visits it wrote into the
/// aggregates ([`TrackingStore::fold_pages`]): one fold adds the visits of
/// many batches at once, and until it does, reports read them raw, so this
/// bounds how many they read raw.
const FOLD_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// How far behind the clock a fold stays. A visit the server dates itself
/// reaches the store milliseconds after its time; one that arrives dated
/// before the fold's watermark is aggregated by its own batch, which costs
/// more, so the watermark stays clear of visits still on their way.
const FOLD_LAG: Duration = Duration::milliseconds(250);

/// Stale sessions fetched per sweep round.
const SWEEP_BATCH: u32 = 500;

/// Default and largest timeline page (sessions).
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// Default and largest page of time-by-page and pages/stats (pages). One
/// page path is at most 2048 characters, so an answer stays within a few
/// megabytes however many pages a user has.
const DEFAULT_PAGES_LIMIT: i64 = 1000;
const MAX_PAGES_LIMIT: i64 = 1000;

/// Most events on one page of the detailed timeline. Sessions are shown
/// whole while they fit; a session whose events do not fit is cut there,
/// and the next page opens with the same session and the rest of its
/// events. A session can hold any number of events (pause and resume
/// have no limit), so only a cut inside a session keeps every answer
/// bounded.
pub const MAX_DETAIL_EVENTS: i32 = 10_000;

/// Who is calling, from a verified bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's username.
    pub username: String,
    /// The token's app.
    pub app: String,
    /// Whether the account has the admin role.
    pub is_admin: bool,
}

/// Configuration of the analytics use cases.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// `/api/pages/track` works without a token.
    pub public_tracking: bool,
    /// `public-summary` and `public-timeline` are on.
    pub public_analytics: bool,
    /// Open tracked sessions without events for this long are closed.
    pub idle_timeout: Duration,
}

/// `POST /api/sessions/start`, fields as received.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Username to track.
    pub user: String,
    /// Application.
    pub app: String,
    /// Event time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
    /// Must be `active` when given.
    pub status: Option<String>,
}

/// `POST /api/sessions/pause|resume|end`, fields as received.
#[derive(Debug, Clone, Default)]
pub struct TransitionRequest {
    /// Username.
    pub user: String,
    /// Application.
    pub app: String,
    /// The tracked session (as received; not a UUID → 404).
    pub session_id: String,
    /// Event time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
}

/// `POST /api/pages/track`, fields as received.
#[derive(Debug, Clone, Default)]
pub struct TrackPageRequest {
    /// Username.
    pub user: String,
    /// Page path.
    pub page: String,
    /// Seconds spent; the HTTP layer passes `None` when the JSON value is
    /// not a whole number (a 422 names the field).
    pub timespent: Option<i64>,
    /// Application.
    pub app: String,
    /// Tracked session, optional (must be of this app and user).
    pub session_id: Option<String>,
    /// Visit time (RFC 3339 with offset); the server clock when absent.
    pub time: Option<String>,
}

/// Any report request, fields as received.
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
    /// Application.
    pub app: String,
    /// Username or `all`.
    pub user: String,
    /// Inclusive start (RFC 3339 or `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Exclusive end (timestamp) or last day included (date).
    pub to: Option<String>,
    /// IANA zone, default `UTC`.
    pub tz: Option<String>,
    /// Page size of the paged reports, 1–1000: sessions for the timelines
    /// (default 100), pages for time-by-page and pages/stats (default
    /// 1000). Ignored by the other reports.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page of the same paged report.
    pub cursor: Option<String>,
}

/// The analytics use cases.
pub struct AnalyticsService {
    store: Arc<dyn TrackingStore>,
    clock: Arc<dyn Clock>,
    settings: AnalyticsSettings,
    pages: Batcher,
    /// Events acknowledged (session steps and page visits), for metrics;
    /// shared with the batcher, which counts visits per batch.
    ingested: Arc<AtomicU64>,
}

impl AnalyticsService {
    /// Wires the use cases. Page visits are written through a group-commit
    /// batcher owned by the service (a background thread).
    pub fn new(
        store: Arc<dyn TrackingStore>,
        clock: Arc<dyn Clock>,
        settings: AnalyticsSettings,
    ) -> Self {
        let ingested = Arc::new(AtomicU64::new(0));
        let pages = Batcher::start(store.clone(), clock.clone(), ingested.clone());
        Self { store, clock, settings, pages, ingested }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AnalyticsSettings {
        &self.settings
    }

    /// Starts a tracked session.
    pub fn start(
        &self,
        caller: &Caller,
        req: StartRequest,
    ) -> Result<TrackedSession, AnalyticsError> {
        let mut v = Violations::new();
        let user = v.check("user", parse_username(&req.user));
        let app = v.check("app", App::parse(&req.app));
        let at = req.time.as_deref().and_then(|t| v.check("time", self.parse_event_time(t)));
        if let Some(status) = req.status.as_deref()
            && status != "active"
        {
            v.add("status", "must be \"active\" when given");
        }
        let (Some(user), Some(app), true) = (user, app, v.is_empty()) else {
            return Err(AnalyticsError::Invalid(v));
        };
        authorize(caller, &app, &Subject::User(user.clone()))?;
        let now = self.now();
        let at = at.unwrap_or(now);
        let session = TrackedSession {
            last_seen_at: now,
            ..TrackedSession::start(kernel::new_id(), app.0, user, at)
        };
        self.store.insert_session(&session)?;
        self.count_ingested();
        Ok(session)
    }

    /// Pauses an active session.
    pub fn pause(
        &self,
        caller: &Caller,
        req: TransitionRequest,
    ) -> Result<TrackedSession, AnalyticsError> {
        self.transition(caller, req, EventKind::Pause)
    }

    /// Resumes a paused session.
    pub fn resume(
        &self,
        caller: &Caller,
        req: TransitionRequest,
    ) -> Result<TrackedSession, AnalyticsError> {
        self.transition(caller, req, EventKind::Resume)
    }

    /// Ends an active or paused session.
    pub fn end(
        &self,
        caller: &Caller,
        req: TransitionRequest,
    ) -> Result<TrackedSession, AnalyticsError> {
        self.transition(caller, req, EventKind::End)
    }

    /// Validates, authorizes, then applies the step as a compare-and-swap
    /// on the stored session, re-reading and re-deciding when it changed.
    fn transition(
        &self,
        caller: &Caller,
        req: TransitionRequest,
        kind: EventKind,
    ) -> Result<TrackedSession, AnalyticsError> {
        let mut v = Violations::new();
        let user = v.check("user", parse_username(&req.user));
        let app = v.check("app", App::parse(&req.app));
        let at = req.time.as_deref().and_then(|t| v.check("time", self.parse_event_time(t)));
        let (Some(user), Some(app), true) = (user, app, v.is_empty()) else {
            return Err(AnalyticsError::Invalid(v));
        };
        authorize(caller, &app, &Subject::User(user.clone()))?;
        // A malformed id answers like another user's: 404.
        let id = Uuid::parse_str(&req.session_id).map_err(|_| AnalyticsError::SessionNotFound)?;
        let at = at.unwrap_or_else(|| self.now());
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self
                .store
                .get_session(app.as_str(), id)?
                .filter(|s| s.app == app.as_str() && (caller.is_admin || s.user == user))
                .ok_or(AnalyticsError::SessionNotFound)?;
            let mut t = current.apply(kind, at)?;
            t.after.last_seen_at = self.now();
            let closed = t.closed.filter(|i| i.to > i.from);
            if self.store.apply_transition(&current, &t.after, &t.event(kind), closed)? {
                self.count_ingested();
                return Ok(t.after);
            }
        }
        Err(AnalyticsError::Unknown(anyhow::anyhow!(
            "tracked session {id} kept changing; gave up after {MAX_CAS_ATTEMPTS} attempts"
        )))
    }

    /// Records a page visit; returns once it is durable. `caller` is `None`
    /// for an anonymous request (allowed only with public tracking).
    ///
    /// The blocking form of [`check_page_visit`](Self::check_page_visit),
    /// [`confirm_page_visit`](Self::confirm_page_visit) and
    /// [`record_page_visit`](Self::record_page_visit), for callers on a
    /// thread that may wait.
    pub fn track_page(
        &self,
        caller: Option<&Caller>,
        req: TrackPageRequest,
    ) -> Result<PageVisit, AnalyticsError> {
        let visit = self.confirm_page_visit(self.check_page_visit(caller, req)?)?;
        self.pages.write(self.store.as_ref(), visit.0)
    }

    /// Validates and authorizes a page visit without any I/O: the fields,
    /// whether an anonymous visit is allowed, and that a caller's token
    /// covers the user and app. The visit gets its id, and the server's
    /// clock as its time when the request has none.
    pub fn check_page_visit(
        &self,
        caller: Option<&Caller>,
        req: TrackPageRequest,
    ) -> Result<VisitRequest, AnalyticsError> {
        if caller.is_none() && !self.settings.public_tracking {
            return Err(AnalyticsError::Unauthenticated);
        }
        let mut v = Violations::new();
        let user = v.check("user", parse_username(&req.user));
        let page = v.check("page", PagePath::parse(&req.page));
        let timespent = match req.timespent {
            Some(t) => v.check("timespent", TimeSpent::parse(t)),
            None => {
                v.add("timespent", "must be a whole number of seconds");
                None
            }
        };
        let app = v.check("app", App::parse(&req.app));
        let session_id = req.session_id.as_deref().and_then(|s| {
            v.check("session_id", Uuid::parse_str(s).map_err(|_| "must be a session id (UUID)"))
        });
        let at = req.time.as_deref().and_then(|t| v.check("time", self.parse_event_time(t)));
        let (Some(user), Some(page), Some(timespent), Some(app), true) =
            (user, page, timespent, app, v.is_empty())
        else {
            return Err(AnalyticsError::Invalid(v));
        };
        if let Some(caller) = caller {
            authorize(caller, &app, &Subject::User(user.clone()))?;
        }
        Ok(VisitRequest(PageVisit {
            id: kernel::new_id(),
            app: app.0,
            user,
            page: page.0,
            timespent: timespent.0,
            session_id,
            at: at.unwrap_or_else(|| self.now()),
        }))
    }

    /// Confirms that the tracked session a visit names exists and is the
    /// user's in that app (one store read; none when it names no session).
    pub fn confirm_page_visit(&self, req: VisitRequest) -> Result<CheckedVisit, AnalyticsError> {
        let v = req.0;
        if let Some(id) = v.session_id {
            self.store
                .get_session(&v.app, id)?
                .filter(|s| s.app == v.app && s.user == v.user)
                .ok_or(AnalyticsError::SessionNotFound)?;
        }
        Ok(CheckedVisit(v))
    }

    /// Queues a checked visit for the next group commit. The returned
    /// future, which needs no particular runtime, resolves once the visit
    /// is durable, so an async caller waits without holding a thread. The
    /// visit is written even if the future is dropped first.
    pub fn record_page_visit(&self, visit: CheckedVisit) -> PageCommit {
        self.pages.submit(self.store.as_ref(), visit.0)
    }

    fn count_ingested(&self) {
        self.ingested.fetch_add(1, Ordering::Relaxed);
    }

    /// Tracking events acknowledged by this process since it started
    /// (session steps and page visits): the metrics' counter.
    pub fn events_ingested(&self) -> u64 {
        self.ingested.load(Ordering::Relaxed)
    }

    /// The heatmap: sessions started per local day, and per weekday and
    /// local hour, in the request's zone.
    pub fn heatmap(&self, caller: &Caller, req: ReportRequest) -> Result<Heatmap, AnalyticsError> {
        let scope = self.scope(Some(caller), &req, Paging::No)?;
        Ok(Heatmap::from_buckets(&self.buckets(&scope)?, &scope.tz))
    }

    /// The weekday and local hour with the most session starts.
    pub fn most_active(
        &self,
        caller: &Caller,
        req: ReportRequest,
    ) -> Result<MostActive, AnalyticsError> {
        let scope = self.scope(Some(caller), &req, Paging::No)?;
        Ok(MostActive::from_buckets(&self.buckets(&scope)?, &scope.tz))
    }

    /// Sessions started, active days, and the total and mean duration of
    /// the ended ones.
    pub fn stats(&self, caller: &Caller, req: ReportRequest) -> Result<Stats, AnalyticsError> {
        let scope = self.scope(Some(caller), &req, Paging::No)?;
        Ok(Stats::from_buckets(&self.buckets(&scope)?, &scope.tz))
    }

    /// Sessions started and the total, mean, longest and shortest
    /// duration of the ended ones; `caller` `None` = the public endpoint
    /// (allowed only with public analytics).
    pub fn summary(
        &self,
        caller: Option<&Caller>,
        req: ReportRequest,
    ) -> Result<Summary, AnalyticsError> {
        let scope = self.scope(caller, &req, Paging::No)?;
        Ok(Summary::from_buckets(&self.buckets(&scope)?))
    }

    /// One page of sessions by start time; `caller` `None` = the public
    /// endpoint (allowed only with public analytics).
    pub fn timeline(
        &self,
        caller: Option<&Caller>,
        req: ReportRequest,
    ) -> Result<TimelinePage, AnalyticsError> {
        let scope = self.scope(caller, &req, Paging::Sessions)?;
        let (sessions, next_cursor) = self.sessions_page(&scope)?;
        Ok(TimelinePage {
            timeline: sessions.iter().map(TimelineEntry::from_session).collect(),
            next_cursor,
        })
    }

    /// Active time per local day. The range selects the active time that
    /// falls in `[from, to)`, not sessions by start: see
    /// [`DailyTime::from_buckets`].
    pub fn daily_time_spent(
        &self,
        caller: &Caller,
        req: ReportRequest,
    ) -> Result<DailyTime, AnalyticsError> {
        let scope = self.scope(Some(caller), &req, Paging::No)?;
        Ok(DailyTime::from_buckets(&self.buckets(&scope)?, &scope.tz))
    }

    /// Time spent per page: one page of the report, pages by total time
    /// (most first) then path, at most `limit` (default and most 1000).
    pub fn time_by_page(
        &self,
        caller: &Caller,
        req: ReportRequest,
    ) -> Result<PageTime, AnalyticsError> {
        let scope = self.scope(Some(caller), &req, Paging::Pages)?;
        let (totals, next_cursor) = self.pages_page(&scope)?;
        Ok(PageTime::from_totals(&totals, next_cursor))
    }

    /// One page of sessions by start time, each with its events: at most
    /// `limit` sessions and [`MAX_DETAIL_EVENTS`] events. A session whose
    /// events do not fit in what is left of the page is cut, and the
    /// cursor continues inside it: the next page opens with that session
    /// again, holding its next events. Only the events the page holds are
    /// read, whatever a session's length.
    pub fn session_timeline_detail(
        &self,
        caller: &Caller,
        req: ReportRequest,
    ) -> Result<DetailPage, AnalyticsError> {
        let scope = self.scope(Some(caller), &req, Paging::Events)?;
        let limit = scope.page.limit as usize;
        // A cursor inside a session starts the page AT that session (the
        // store's positions are exclusive); the session must still be
        // selected by the request, so a crafted cursor shows nothing the
        // caller could not see anyway.
        let (after, resume) = match (scope.page.after, scope.page.inside) {
            (Some(p), Some(seq)) => (Some(just_before(p)), Some((p.id, seq))),
            (after, _) => (after, None),
        };
        let sessions = self.store.timeline(
            scope.app.as_str(),
            &scope.subject,
            scope.range,
            after,
            scope.page.limit.saturating_add(1),
        )?;
        let mut budget = MAX_DETAIL_EVENTS;
        let mut shown: Vec<TrackedSession> = Vec::new();
        let mut spans: Vec<EventSpan> = Vec::new();
        let mut last: Option<&TrackedSession> = None;
        let mut next_cursor = None;
        for s in &sessions {
            if shown.len() == limit || budget == 0 {
                // Full, and there is more: go on after the last session.
                next_cursor = last.map(|l| format_cursor(l.started_at, l.id));
                break;
            }
            let from = match resume {
                Some((id, seq)) if id == s.id => seq,
                _ => 0,
            };
            // `events` counts the session's events (seq 0..events) as read
            // with the session, so the span holds exactly that many even if
            // more arrive meanwhile.
            let total = s.events.max(from);
            let take = (total - from).min(budget);
            if take > 0 {
                spans.push(EventSpan { session_id: s.id, from_seq: from, to_seq: from + take });
                shown.push(s.clone());
                budget -= take;
            }
            if from + take < total {
                next_cursor = Some(format_event_cursor(s.started_at, s.id, from + take));
                break;
            }
            last = Some(s);
        }
        // Every session read was handled, but the store had more than the
        // page asked for (a resumed session turned out to hold nothing).
        if next_cursor.is_none() && sessions.len() > limit {
            next_cursor = last.map(|l| format_cursor(l.started_at, l.id));
        }
        let events = if spans.is_empty() { Vec::new() } else { self.store.events_of(&spans)? };
        Ok(DetailPage {
            detailed_timeline: DetailEntry::from_sessions(&shown, &events),
            next_cursor,
        })
    }

    /// Visits, total and average time per page: one page of the report,
    /// pages by total time (most first) then path, at most `limit`
    /// (default and most 1000).
    pub fn page_stats(
        &self,
        caller: &Caller,
        req: ReportRequest,
    ) -> Result<PageStats, AnalyticsError> {
        let scope = self.scope(Some(caller), &req, Paging::Pages)?;
        let (totals, next_cursor) = self.pages_page(&scope)?;
        Ok(PageStats::from_totals(&totals, next_cursor))
    }

    /// Closes open sessions without events for the idle timeout, dated at
    /// their last event; the number closed. Called by the sweeper.
    ///
    /// Each close is the state machine's `end` at the last event's time,
    /// written as a compare-and-swap: a session that received an event
    /// meanwhile is left alone (it is no longer idle, or the next sweep
    /// sees it again).
    pub fn close_idle_sessions(&self) -> Result<u64, AnalyticsError> {
        let cutoff = self.now() - self.settings.idle_timeout;
        let mut closed = 0_u64;
        loop {
            let batch = self.store.stale_open_sessions(cutoff, SWEEP_BATCH)?;
            let mut progress = false;
            for s in &batch {
                let Ok(mut t) = s.apply(EventKind::End, s.last_event_at) else { continue };
                t.after.last_seen_at = self.now();
                let interval = t.closed.filter(|i| i.to > i.from);
                if self.store.apply_transition(s, &t.after, &t.event(EventKind::End), interval)? {
                    closed += 1;
                    progress = true;
                }
            }
            // A short batch was the last; a batch in which nothing could
            // be closed would come back unchanged, so leave it to the next
            // sweep instead of spinning.
            if batch.len() < SWEEP_BATCH as usize || !progress {
                return Ok(closed);
            }
        }
    }

    /// Stops the group-commit batcher after writing what it holds. Visits
    /// tracked afterwards are written directly, one transaction each.
    pub fn shutdown(&self) {
        self.pages.stop();
    }

    /// Folds the page visits dated up to a moment ago into the aggregates
    /// ([`TrackingStore::fold_pages`]); returns how many. The batcher does
    /// this on its own every half second while visits arrive; a caller
    /// that runs it too (a sweeper: visits another process wrote before it
    /// stopped) makes reports cheaper, never different.
    pub fn fold_pages(&self) -> Result<u64, AnalyticsError> {
        Ok(self.store.fold_pages(fold_upto(self.clock.as_ref()))?)
    }

    /// The clock, at the store's precision.
    fn now(&self) -> OffsetDateTime {
        kernel::truncate_millis(self.clock.now())
    }

    /// Validates a report request and authorizes the caller (`None` = a
    /// public endpoint, which covers any user, `all` included, when public
    /// analytics are on). A paged report also reads `limit` and `cursor`.
    fn scope(
        &self,
        caller: Option<&Caller>,
        req: &ReportRequest,
        paging: Paging,
    ) -> Result<Scope, AnalyticsError> {
        if caller.is_none() && !self.settings.public_analytics {
            return Err(AnalyticsError::Disabled);
        }
        let mut v = Violations::new();
        let app = v.check("app", App::parse(&req.app));
        let subject = v.check("user", Subject::parse(&req.user));
        let tz = match req.tz.as_deref() {
            None => Some(Tz::utc()),
            Some(name) => v.check("tz", Tz::parse(name)),
        };
        // Dates are read in the zone asked for; if that zone is invalid the
        // request fails on `tz` anyway.
        let date_tz = tz.clone().unwrap_or_default();
        let from =
            req.from.as_deref().and_then(|s| v.check("from", parse_bound(s, &date_tz, false)));
        let to = req.to.as_deref().and_then(|s| v.check("to", parse_bound(s, &date_tz, true)));
        // (Dates read in a zone that is not valid mean nothing to compare.)
        if let (Some(from), Some(to), Some(_)) = (from, to, &tz)
            && from >= to
        {
            v.add("to", "must be later than from");
        }
        let (default, max) = match paging {
            Paging::Pages => (DEFAULT_PAGES_LIMIT, MAX_PAGES_LIMIT),
            _ => (DEFAULT_LIMIT, MAX_LIMIT),
        };
        let mut page = Page { limit: u32::try_from(default).unwrap_or(1), ..Page::default() };
        if paging != Paging::No {
            match req.limit {
                None => {}
                Some(l) if (1..=max).contains(&l) => {
                    page.limit = u32::try_from(l).unwrap_or(page.limit);
                }
                Some(_) => v.add("limit", format!("must be between 1 and {max}")),
            }
        }
        if let Some(c) = req.cursor.as_deref() {
            match paging {
                Paging::No => {}
                Paging::Sessions => page.after = v.check("cursor", parse_cursor(c)),
                Paging::Events => {
                    if let Some((after, inside)) = v.check("cursor", parse_event_cursor(c)) {
                        (page.after, page.inside) = (Some(after), inside);
                    }
                }
                Paging::Pages => page.after_page = v.check("cursor", parse_page_cursor(c)),
            }
        }
        let (Some(app), Some(subject), Some(tz), true) = (app, subject, tz, v.is_empty()) else {
            return Err(AnalyticsError::Invalid(v));
        };
        if let Some(caller) = caller {
            authorize(caller, &app, &subject)?;
        }
        let range = MsRange { from: from.map(ceil_millis), to: to.map(ceil_millis) };
        Ok(Scope { app, subject, tz, range, page })
    }

    /// The buckets of a scope, each placed at the first instant of it that
    /// is inside the range (see the module doc of `reports`).
    fn buckets(&self, scope: &Scope) -> Result<Vec<SessionBucket>, AnalyticsError> {
        let mut buckets =
            self.store.session_buckets(scope.app.as_str(), &scope.subject, scope.range)?;
        if let Some(from) = scope.range.from {
            for b in &mut buckets {
                b.bucket_ms = b.bucket_ms.max(from);
            }
        }
        Ok(buckets)
    }

    /// One page of the page reports, and the cursor of the next (asking
    /// for one more than the page tells whether there is one). The store
    /// groups, orders and limits, so at most `limit + 1` pages are held.
    fn pages_page(
        &self,
        scope: &Scope,
    ) -> Result<(Vec<PageTotal>, Option<String>), AnalyticsError> {
        let mut totals = self.store.page_totals(
            scope.app.as_str(),
            &scope.subject,
            scope.range,
            scope.page.after_page.as_ref(),
            scope.page.limit.saturating_add(1),
        )?;
        let limit = scope.page.limit as usize;
        let next = if totals.len() > limit {
            totals.truncate(limit);
            totals.last().map(|t| format_page_cursor(&t.position()))
        } else {
            None
        };
        Ok((totals, next))
    }

    /// One page of sessions by start time, and the cursor of the next
    /// (asking for one more than the page tells whether there is one).
    fn sessions_page(
        &self,
        scope: &Scope,
    ) -> Result<(Vec<TrackedSession>, Option<String>), AnalyticsError> {
        let mut sessions = self.store.timeline(
            scope.app.as_str(),
            &scope.subject,
            scope.range,
            scope.page.after,
            scope.page.limit.saturating_add(1),
        )?;
        let limit = scope.page.limit as usize;
        let next = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions.last().map(|s| format_cursor(s.started_at, s.id))
        } else {
            None
        };
        Ok((sessions, next))
    }
}

impl Drop for AnalyticsService {
    fn drop(&mut self) {
        self.pages.stop();
    }
}

/// A validated, authorized report request.
struct Scope {
    app: App,
    subject: Subject,
    tz: Tz,
    range: MsRange,
    page: Page,
}

/// Which paging a report takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paging {
    /// None: `limit` and `cursor` are ignored.
    No,
    /// Sessions by start time (timelines).
    Sessions,
    /// Sessions by start time, with a cursor that may point inside a
    /// session (the detailed timeline).
    Events,
    /// Pages by total time (time-by-page, pages/stats).
    Pages,
}

/// Where a page of a paged report starts, and how long it is.
#[derive(Debug, Default)]
struct Page {
    limit: u32,
    /// Sessions: after this one.
    after: Option<TimelinePosition>,
    /// Detailed timeline: not after but AT the session `after`, from this
    /// event on.
    inside: Option<i32>,
    /// Page reports: after this page.
    after_page: Option<PagePosition>,
}

/// The caller may act for `subject` in `app`: admins for anyone anywhere;
/// everyone else only for themselves (usernames compare
/// case-insensitively) in the app of their token, and never for `all`.
fn authorize(caller: &Caller, app: &App, subject: &Subject) -> Result<(), AnalyticsError> {
    if caller.is_admin {
        return Ok(());
    }
    if app.as_str() != caller.app {
        return Err(AnalyticsError::Forbidden("this token is not for that app"));
    }
    match subject {
        Subject::All => Err(AnalyticsError::Forbidden("user \"all\" needs the admin role")),
        Subject::User(u) if !u.eq_ignore_ascii_case(&caller.username) => {
            Err(AnalyticsError::Forbidden("another user's data needs the admin role"))
        }
        Subject::User(_) => Ok(()),
    }
}

/// An event or visit time: RFC 3339 with an offset, kept to the store's
/// millisecond precision so what is answered is what is stored.
/// How far ahead of the server clock an event time may be (clock skew).
/// Back-dated events are fine (offline clients catch up); far-future ones
/// would only distort reports and can make one interval span years of
/// buckets.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

impl AnalyticsService {
    /// An event or visit time: RFC 3339 with an offset, at most
    /// [`MAX_CLOCK_SKEW`] ahead of the server clock.
    fn parse_event_time(&self, s: &str) -> Result<OffsetDateTime, String> {
        let at =
            kernel::parse_instant(s).map(kernel::truncate_millis).map_err(|e| e.to_string())?;
        if at > self.now() + MAX_CLOCK_SKEW {
            return Err("is in the future".into());
        }
        Ok(at)
    }
}

/// An instant as whole milliseconds, rounded up: stored instants are whole
/// milliseconds, so `t >= bound` and `t < bound` mean the same for them
/// with the rounded-up bound.
fn ceil_millis(at: OffsetDateTime) -> i64 {
    let nanos = at.unix_timestamp_nanos();
    let ms = nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The opaque timeline cursor: `<started_ms>.<id as 32 hex digits>`.
fn format_cursor(started_at: OffsetDateTime, id: Uuid) -> String {
    format!("{}.{}", kernel::to_millis(started_at), id.simple())
}

/// Why a cursor is refused.
const BAD_CURSOR: &str = "is not a cursor from a previous page";

fn parse_cursor(s: &str) -> Result<TimelinePosition, &'static str> {
    const BAD: &str = BAD_CURSOR;
    let (ms, id) = s.split_once('.').ok_or(BAD)?;
    let ms: i64 = ms.parse().map_err(|_| BAD)?;
    if id.len() != 32 {
        return Err(BAD);
    }
    let id = Uuid::try_parse(id).map_err(|_| BAD)?;
    Ok(TimelinePosition { started_at: kernel::from_millis(ms), id })
}

/// The detailed timeline's cursor inside a session: the timeline cursor
/// of the session, then `.<seq>`, the first of its events still to show.
fn format_event_cursor(started_at: OffsetDateTime, id: Uuid, seq: i32) -> String {
    format!("{}.{seq}", format_cursor(started_at, id))
}

/// A detailed-timeline cursor: after a session (a timeline cursor), or
/// inside one (with the event to go on from, at least 1).
fn parse_event_cursor(s: &str) -> Result<(TimelinePosition, Option<i32>), &'static str> {
    let Some((head, seq)) = s.rsplit_once('.').filter(|(head, _)| head.contains('.')) else {
        return Ok((parse_cursor(s)?, None));
    };
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_CURSOR);
    }
    match seq.parse::<i32>() {
        Ok(seq) if seq >= 1 => Ok((parse_cursor(head)?, Some(seq))),
        _ => Err(BAD_CURSOR),
    }
}

/// The position just before `p` in `(started_at, id)` order, so that a
/// page can start AT `p` although the store's positions are exclusive:
/// the id just below at the same instant, or, below the nil id, the
/// greatest id of the millisecond before (instants are whole
/// milliseconds, and ids compare as 128-bit numbers).
fn just_before(p: TimelinePosition) -> TimelinePosition {
    match p.id.as_u128().checked_sub(1) {
        Some(id) => TimelinePosition { started_at: p.started_at, id: Uuid::from_u128(id) },
        None => TimelinePosition {
            started_at: p.started_at - Duration::milliseconds(1),
            id: Uuid::from_u128(u128::MAX),
        },
    }
}

/// The opaque cursor of the page reports: `<total seconds>.<the page path
/// as lowercase hex of its UTF-8 bytes>` (any path fits in a JSON string
/// this way, and reads back exactly).
fn format_page_cursor(p: &PagePosition) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(24 + 2 * p.page.len());
    out.push_str(&p.time_sum.to_string());
    out.push('.');
    for b in p.page.bytes() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn parse_page_cursor(s: &str) -> Result<PagePosition, &'static str> {
    // A page path is at most 2048 characters of at most 4 bytes each.
    const MAX_HEX: usize = 2 * 4 * 2048;
    let (time, hex) = s.split_once('.').ok_or(BAD_CURSOR)?;
    if time.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_CURSOR);
    }
    let time_sum: i64 = time.parse().map_err(|_| BAD_CURSOR)?;
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > MAX_HEX {
        return Err(BAD_CURSOR);
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let bytes = hex
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(BAD_CURSOR)?;
    let page = String::from_utf8(bytes).map_err(|_| BAD_CURSOR)?;
    // Every stored page is a valid path: anything else (another report's
    // cursor, or a NUL, which PostgreSQL text cannot even hold) was never
    // a position in this report.
    let page = PagePath::parse(&page).map_err(|_| BAD_CURSOR)?.0;
    Ok(PagePosition { time_sum, page })
}

/// The outcome of a group commit for one visit: the visit back, or the
/// batch's error, shared by every visit of the batch.
type Outcome = Result<PageVisit, Arc<anyhow::Error>>;

/// A page visit that passed [`AnalyticsService::check_page_visit`]: valid
/// and authorized. If it names a tracked session, that session is still to
/// be confirmed ([`AnalyticsService::confirm_page_visit`]) before it can be
/// recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRequest(PageVisit);

impl VisitRequest {
    /// The visit as it will be recorded.
    pub fn visit(&self) -> &PageVisit {
        &self.0
    }

    /// The visit, ready to record without I/O when it names no tracked
    /// session; otherwise the request back, for
    /// [`AnalyticsService::confirm_page_visit`] (a store read).
    pub fn ready(self) -> Readiness {
        if self.0.session_id.is_none() {
            Readiness::Ready(CheckedVisit(self.0))
        } else {
            Readiness::SessionToConfirm(self)
        }
    }
}

/// What a [`VisitRequest`] still needs before it can be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Nothing: record it.
    Ready(CheckedVisit),
    /// Its tracked session confirmed ([`AnalyticsService::confirm_page_visit`]).
    SessionToConfirm(VisitRequest),
}

/// A page visit ready to record: valid, authorized, and its tracked
/// session (if any) confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedVisit(PageVisit);

impl CheckedVisit {
    /// The visit as it will be recorded.
    pub fn visit(&self) -> &PageVisit {
        &self.0
    }
}

/// Where a visit's outcome goes: a waiting thread or a waiting task.
enum Reply {
    Thread(mpsc::Sender<Outcome>),
    Task(oneshot::Sender<Outcome>),
}

impl Reply {
    /// Hands over the outcome; a submitter that stopped waiting (a client
    /// that went away) does not matter, the visit is written regardless.
    fn send(self, outcome: Outcome) {
        let _gone = match self {
            Self::Thread(tx) => tx.send(outcome).is_ok(),
            Self::Task(tx) => tx.send(outcome).is_ok(),
        };
    }
}

/// A visit waiting for its batch, with where to report the outcome.
struct Job {
    visit: PageVisit,
    reply: Reply,
}

/// A page visit on its way to durability
/// ([`AnalyticsService::record_page_visit`]): resolves to the visit once
/// its group commit is durable, or to the commit's error.
#[must_use = "the visit is written either way, but only the future says when it is durable"]
#[derive(Debug)]
pub struct PageCommit(oneshot::Receiver<Outcome>);

impl Future for PageCommit {
    type Output = Result<PageVisit, AnalyticsError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| received(r.ok()))
    }
}

/// A submitter's result from what its batch sent (`None`: the batcher
/// went away without answering).
fn received(outcome: Option<Outcome>) -> Result<PageVisit, AnalyticsError> {
    match outcome {
        Some(Ok(visit)) => Ok(visit),
        // The last submitter of a batch holds the only remaining
        // reference, so a batch of one hands back the original error.
        Some(Err(shared)) => Err(AnalyticsError::Unknown(match Arc::try_unwrap(shared) {
            Ok(e) => e,
            Err(shared) => anyhow::Error::new(BatchFailed(shared)),
        })),
        None => Err(AnalyticsError::Unknown(anyhow::anyhow!(
            "the page batcher stopped before writing the visit"
        ))),
    }
}

/// The group-commit writer of page visits: [`TrackingStore::page_writers`]
/// threads, each of which takes whatever is queued (up to [`MAX_BATCH`]),
/// writes it with one [`TrackingStore::record_pages`] call, and answers
/// every submitter. With two or more, one batch fills while another waits
/// for its commit to be durable, so the fsync no longer idles the database.
///
/// Submitters are threads (which block on a channel) or tasks (which
/// await a oneshot): an async caller costs no thread while it waits, and a
/// batch wakes each waiting task once, with nothing in between.
struct Batcher {
    /// `None` once stopped (or if no thread could be started): visits
    /// are then written directly.
    queue: RwLock<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Visits acknowledged, for metrics: added once per batch.
    ingested: Arc<AtomicU64>,
}

/// When the batcher threads fold ([`FOLD_EVERY`], only after writing):
/// shared, so that one of them folds per interval.
struct Folds {
    clock: Arc<dyn Clock>,
    /// When the last fold began (real time: the interval paces work, it is
    /// not a date).
    last: Mutex<Instant>,
    /// Visits were written since the last fold began.
    pending: AtomicBool,
}

impl Folds {
    /// Folds when visits were written and the interval has passed since the
    /// last fold. A failure leaves the visits for the next fold: they stay
    /// counted (raw) meanwhile, so nothing is lost or wrong, only dearer.
    fn maybe_fold(&self, store: &dyn TrackingStore) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < FOLD_EVERY {
                return;
            }
            *last = Instant::now();
        }
        self.pending.store(false, Ordering::Release);
        let upto = fold_upto(self.clock.as_ref());
        let folded = std::panic::catch_unwind(AssertUnwindSafe(|| store.fold_pages(upto)));
        if !matches!(folded, Ok(Ok(_))) {
            self.pending.store(true, Ordering::Release);
        }
    }
}

/// Where a fold run now stops: [`FOLD_LAG`] behind the clock.
fn fold_upto(clock: &dyn Clock) -> OffsetDateTime {
    kernel::truncate_millis(clock.now()) - FOLD_LAG
}

/// What a batcher thread found in the queue.
enum Next {
    Batch(Vec<Job>),
    /// Nothing for [`FOLD_EVERY`].
    Idle,
    /// Every sender is gone and the queue is empty.
    Closed,
}

impl Batcher {
    fn start(
        store: Arc<dyn TrackingStore>,
        clock: Arc<dyn Clock>,
        ingested: Arc<AtomicU64>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let folds = Arc::new(Folds {
            clock,
            last: Mutex::new(Instant::now()),
            pending: AtomicBool::new(false),
        });
        let threads: Vec<JoinHandle<()>> = (0..store.page_writers().max(1))
            .map_while(|n| {
                let (store, rx) = (store.clone(), rx.clone());
                let (ingested, folds) = (ingested.clone(), folds.clone());
                std::thread::Builder::new()
                    .name(format!("analytics-pages-{n}"))
                    .spawn(move || Self::run(store.as_ref(), &rx, &ingested, &folds))
                    .ok()
            })
            .collect();
        let queue = if threads.is_empty() { None } else { Some(tx) };
        Self { queue: RwLock::new(queue), threads: Mutex::new(threads), ingested }
    }

    /// Takes the next batch: waits for one visit (at most [`FOLD_EVERY`]),
    /// then adds whatever else is queued. The receiver is held only while
    /// taking, never while writing.
    fn next_batch(rx: &Mutex<mpsc::Receiver<Job>>) -> Next {
        let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
        let mut jobs = match rx.recv_timeout(FOLD_EVERY) {
            Ok(job) => vec![job],
            Err(mpsc::RecvTimeoutError::Timeout) => return Next::Idle,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Next::Closed,
        };
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        Next::Batch(jobs)
    }

    /// A batcher thread: runs until every sender is gone and the queue is
    /// drained, so a stop never drops an accepted visit. Folds after
    /// answering a batch, never before, and when the queue is idle.
    fn run(
        store: &dyn TrackingStore,
        rx: &Mutex<mpsc::Receiver<Job>>,
        ingested: &AtomicU64,
        folds: &Folds,
    ) {
        loop {
            match Self::next_batch(rx) {
                Next::Batch(jobs) => {
                    let (visits, replies): (Vec<PageVisit>, Vec<Reply>) =
                        jobs.into_iter().map(|j| (j.visit, j.reply)).unzip();
                    let outcome = Self::write_batch(store, &visits, ingested);
                    if outcome.is_ok() {
                        folds.pending.store(true, Ordering::Release);
                    }
                    for (visit, reply) in visits.into_iter().zip(replies) {
                        reply.send(outcome.clone().map(|()| visit));
                    }
                }
                Next::Idle => {}
                Next::Closed => return,
            }
            folds.maybe_fold(store);
        }
    }

    /// One group commit. A panicking store must not take the batcher (and
    /// every later visit) down with it.
    fn write_batch(
        store: &dyn TrackingStore,
        visits: &[PageVisit],
        ingested: &AtomicU64,
    ) -> Result<(), Arc<anyhow::Error>> {
        std::panic::catch_unwind(AssertUnwindSafe(|| store.record_pages(visits)))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the page store panicked")))
            .map_err(Arc::new)?;
        ingested.fetch_add(visits.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Hands a visit to the batcher threads; when they are not running
    /// (stopped at shutdown, or never started) writes it at once in a
    /// transaction of its own, on the caller's thread, and answers it.
    fn enqueue(&self, store: &dyn TrackingStore, job: Job) {
        let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
        let refused = match queue.as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        drop(queue);
        if let Some(Job { visit, reply }) = refused {
            let outcome = Self::write_batch(store, std::slice::from_ref(&visit), &self.ingested);
            reply.send(outcome.map(|()| visit));
        }
    }

    /// Writes one visit through the batcher and waits until its batch is
    /// committed.
    fn write(
        &self,
        store: &dyn TrackingStore,
        visit: PageVisit,
    ) -> Result<PageVisit, AnalyticsError> {
        let (reply, answer) = mpsc::channel();
        self.enqueue(store, Job { visit, reply: Reply::Thread(reply) });
        received(answer.recv().ok())
    }

    /// Queues one visit and returns the future of its commit.
    fn submit(&self, store: &dyn TrackingStore, visit: PageVisit) -> PageCommit {
        let (reply, answer) = oneshot::channel();
        self.enqueue(store, Job { visit, reply: Reply::Task(reply) });
        PageCommit(answer)
    }

    /// Closes the queue, lets the threads write what it holds, and joins
    /// them.
    fn stop(&self) {
        drop(self.queue.write().unwrap_or_else(|e| e.into_inner()).take());
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in threads {
            let _panicked = handle.join();
        }
    }
}

/// A group commit's error as seen by one of several submitters. Its source
/// is the store's error, so the error chain (and with it
/// [`kernel::Unavailable`], which the HTTP edge answers with 503) is the
/// same for every visit of the batch.
#[derive(Debug)]
struct BatchFailed(Arc<anyhow::Error>);

impl std::fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing a batch of page visits failed: {}", self.0)
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let inner: &(dyn std::error::Error + Send + Sync + 'static) = (*self.0).as_ref();
        Some(inner)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::{Barrier, Mutex};

    use kernel::{ManualClock, format_hms, from_millis, parse_instant, to_millis};

    use super::*;
    use crate::{BUCKET_MS, Interval, PageTotal, TrackEvent, TrackState};

    /// A deliberately naive in-memory store: a test double for the domain
    /// (the real stores have their own contract tests). Buckets are
    /// computed from the rows on every call.
    #[derive(Default)]
    struct MemStore {
        sessions: Mutex<HashMap<Uuid, TrackedSession>>,
        events: Mutex<Vec<TrackEvent>>,
        intervals: Mutex<Vec<(String, String, Interval)>>,
        visits: Mutex<Vec<PageVisit>>,
        /// Sizes of the `record_pages` batches.
        batches: Mutex<Vec<usize>>,
        fail_pages: AtomicBool,
        slow_pages: AtomicBool,
        /// While true, `record_pages` waits (a commit that has not
        /// become durable yet).
        held: (Mutex<bool>, std::sync::Condvar),
        /// What `page_writers` answers (0 = the port's default).
        writers: usize,
        /// `record_pages` calls running now, and the most seen at once.
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        /// When set, the next `apply_transition` first lets a concurrent
        /// request win with this step (at the same time) and reports the
        /// conflict.
        race_once: Mutex<Option<EventKind>>,
        cas_calls: AtomicUsize,
        /// `fold_pages` calls: `upto`, and how many visits were stored then.
        folds: Mutex<Vec<(OffsetDateTime, usize)>>,
        /// `fold_pages` fails while true.
        fail_folds: AtomicBool,
        /// How many events each `events_of` call returned.
        events_read: Mutex<Vec<usize>>,
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
            let (held, released) = &self.held;
            drop(released.wait_while(lock(held), |held| *held).expect("gate"));
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if self.slow_pages.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.fail_pages.load(Ordering::SeqCst) {
                return Err(anyhow::Error::new(kernel::Unavailable("db down".into())));
            }
            lock(&self.batches).push(visits.len());
            lock(&self.visits).extend_from_slice(visits);
            Ok(())
        }

        fn fold_pages(&self, upto: OffsetDateTime) -> anyhow::Result<u64> {
            let stored = lock(&self.visits).len();
            lock(&self.folds).push((upto, stored));
            anyhow::ensure!(!self.fail_folds.load(Ordering::SeqCst), "fold failed");
            Ok(0)
        }

        fn page_writers(&self) -> usize {
            if self.writers == 0 { 1 } else { self.writers }
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

    struct Fixture {
        store: Arc<MemStore>,
        clock: Arc<ManualClock>,
        svc: AnalyticsService,
    }

    fn fixture_with(public: bool) -> Fixture {
        fixture_on(Arc::new(MemStore::default()), public)
    }

    fn fixture_on(store: Arc<MemStore>, public: bool) -> Fixture {
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

    fn fixture() -> Fixture {
        fixture_with(true)
    }

    fn at(s: &str) -> OffsetDateTime {
        parse_instant(s).expect("instant")
    }

    fn alice() -> Caller {
        Caller { username: "Alice".into(), app: "web".into(), is_admin: false }
    }

    fn admin() -> Caller {
        Caller { username: "root".into(), app: "other".into(), is_admin: true }
    }

    fn start_req(user: &str, time: &str) -> StartRequest {
        StartRequest { user: user.into(), app: "web".into(), time: Some(time.into()), status: None }
    }

    fn step_req(user: &str, id: Uuid, time: &str) -> TransitionRequest {
        TransitionRequest {
            user: user.into(),
            app: "web".into(),
            session_id: id.to_string(),
            time: Some(time.into()),
        }
    }

    fn report(user: &str) -> ReportRequest {
        ReportRequest { app: "web".into(), user: user.into(), ..Default::default() }
    }

    fn fields(e: AnalyticsError) -> Vec<String> {
        match e {
            AnalyticsError::Invalid(v) => v.iter().map(|(f, _)| f.to_owned()).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
        r.expect("use case should succeed")
    }

    #[test]
    fn start_validates_and_authorizes() {
        let f = fixture();
        let s = ok(f.svc.start(&alice(), start_req("ALICE", "2024-01-01T12:00:00.123456+01:00")));
        assert_eq!(s.user, "alice");
        assert_eq!(s.app, "web");
        assert_eq!(s.state, TrackState::Active);
        assert_eq!(s.started_at, at("2024-01-01T11:00:00.123Z"), "kept to milliseconds");
        assert!(lock(&f.store.sessions).contains_key(&s.id));

        // Defaults to the clock; status "active" is accepted.
        let req = StartRequest {
            user: "alice".into(),
            app: "web".into(),
            time: None,
            status: Some("active".into()),
        };
        assert_eq!(ok(f.svc.start(&alice(), req)).started_at, f.clock.now());

        let bad = StartRequest {
            user: "a".into(),
            app: "we b".into(),
            time: Some("2024-01-01T12:00:00".into()),
            status: Some("paused".into()),
        };
        assert_eq!(
            fields(f.svc.start(&alice(), bad).expect_err("invalid")),
            ["app", "status", "time", "user"]
        );
        assert!(matches!(
            f.svc.start(&alice(), start_req("bob", "2024-01-01T12:00:00Z")),
            Err(AnalyticsError::Forbidden(_))
        ));
        let mut other_app = start_req("alice", "2024-01-01T12:00:00Z");
        other_app.app = "mobile".into();
        assert!(matches!(f.svc.start(&alice(), other_app), Err(AnalyticsError::Forbidden(_))));
        // Admins may start for anyone in any app, but not for "all".
        assert_eq!(ok(f.svc.start(&admin(), start_req("Bob", "2024-01-01T12:00:00Z"))).user, "bob");
        assert_eq!(
            fields(
                f.svc.start(&admin(), start_req("all", "2024-01-01T12:00:00Z")).expect_err("all")
            ),
            ["user"]
        );
    }

    #[test]
    fn the_state_machine_through_the_service() {
        let f = fixture();
        let s = ok(f.svc.start(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let p = ok(f.svc.pause(&alice(), step_req("alice", s.id, "2024-01-01T09:30:00Z")));
        assert_eq!(p.state, TrackState::Paused);
        assert!(matches!(
            f.svc.pause(&alice(), step_req("alice", s.id, "2024-01-01T09:31:00Z")),
            Err(AnalyticsError::InvalidTransition { action: "pause", state: "paused" })
        ));
        assert_eq!(
            fields(
                f.svc
                    .resume(&alice(), step_req("alice", s.id, "2024-01-01T09:29:00Z"))
                    .expect_err("back in time")
            ),
            ["time"]
        );
        ok(f.svc.resume(&alice(), step_req("alice", s.id, "2024-01-01T09:45:00Z")));
        let e = ok(f.svc.end(&alice(), step_req("alice", s.id, "2024-01-01T10:30:00Z")));
        assert_eq!(e.state, TrackState::Ended);
        assert_eq!(e.duration_secs().map(format_hms), Some("01:15:00".into()));
        assert!(matches!(
            f.svc.end(&alice(), step_req("alice", s.id, "2024-01-01T11:00:00Z")),
            Err(AnalyticsError::InvalidTransition { action: "end", state: "ended" })
        ));
        let span = EventSpan { session_id: s.id, from_seq: 0, to_seq: 99 };
        let kinds: Vec<(i32, EventKind)> =
            ok(f.store.events_of(&[span])).iter().map(|e| (e.seq, e.kind)).collect();
        assert_eq!(
            kinds,
            [
                (0, EventKind::Start),
                (1, EventKind::Pause),
                (2, EventKind::Resume),
                (3, EventKind::End)
            ]
        );
        // Zero-length intervals are not sent to the store.
        let z = ok(f.svc.start(&alice(), start_req("alice", "2024-01-02T09:00:00Z")));
        ok(f.svc.end(&alice(), step_req("alice", z.id, "2024-01-02T09:00:00Z")));
        assert_eq!(lock(&f.store.intervals).len(), 2);
    }

    #[test]
    fn sessions_of_others_are_not_found() {
        let f = fixture();
        let s = ok(f.svc.start(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let bob = Caller { username: "bob".into(), app: "web".into(), is_admin: false };
        let not_found = |r: Result<TrackedSession, AnalyticsError>| {
            assert!(matches!(r, Err(AnalyticsError::SessionNotFound)), "{r:?}");
        };
        not_found(f.svc.pause(&bob, step_req("bob", s.id, "2024-01-01T09:10:00Z")));
        not_found(f.svc.pause(&alice(), step_req("alice", Uuid::nil(), "2024-01-01T09:10:00Z")));
        let mut malformed = step_req("alice", s.id, "2024-01-01T09:10:00Z");
        malformed.session_id = "not-a-uuid".into();
        not_found(f.svc.pause(&alice(), malformed));
        // Admins act on any user's session of the app named, not of another app.
        let mut elsewhere = step_req("alice", s.id, "2024-01-01T09:10:00Z");
        elsewhere.app = "mobile".into();
        not_found(f.svc.pause(&admin(), elsewhere));
        assert_eq!(
            ok(f.svc.pause(&admin(), step_req("someone", s.id, "2024-01-01T09:10:00Z"))).state,
            TrackState::Paused
        );
        // Another user's id with the wrong user: authorization comes first.
        assert!(matches!(
            f.svc.resume(&alice(), step_req("bob", s.id, "2024-01-01T09:20:00Z")),
            Err(AnalyticsError::Forbidden(_))
        ));
    }

    #[test]
    fn a_lost_race_is_retried_and_decided_again() {
        let f = fixture();
        let s = ok(f.svc.start(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        // Someone else paused first: our identical pause becomes a 409.
        *lock(&f.store.race_once) = Some(EventKind::Pause);
        let r = f.svc.pause(&alice(), step_req("alice", s.id, "2024-01-01T09:30:00Z"));
        assert!(
            matches!(
                r,
                Err(AnalyticsError::InvalidTransition { action: "pause", state: "paused" })
            ),
            "{r:?}"
        );
        assert_eq!(f.store.cas_calls.load(Ordering::SeqCst), 1);
        // Someone else resumed first: our end is re-decided from active.
        *lock(&f.store.race_once) = Some(EventKind::Resume);
        let e = ok(f.svc.end(&alice(), step_req("alice", s.id, "2024-01-01T10:00:00Z")));
        assert_eq!(e.state, TrackState::Ended);
        assert_eq!(f.store.cas_calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn concurrent_identical_steps_yield_one_success() {
        let f = Arc::new(fixture());
        let s = ok(f.svc.start(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (f, barrier) = (f.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    f.svc.pause(&alice(), step_req("alice", s.id, "2024-01-01T09:30:00Z")).is_ok()
                })
            })
            .collect();
        let wins = join_all(handles).into_iter().filter(|won| *won).count();
        assert_eq!(wins, 1);
        // The losers were told 409, and the session was paused exactly once.
        assert_eq!(lock(&f.store.intervals).len(), 1);
    }

    fn visit(user: &str, page: &str) -> TrackPageRequest {
        TrackPageRequest {
            user: user.into(),
            page: page.into(),
            timespent: Some(120),
            app: "web".into(),
            session_id: None,
            time: None,
        }
    }

    #[test]
    fn track_page_checks_access_and_fields() {
        let f = fixture_with(false);
        assert!(matches!(
            f.svc.track_page(None, visit("alice", "/x")),
            Err(AnalyticsError::Unauthenticated)
        ));
        let v = ok(f.svc.track_page(Some(&alice()), visit("Alice", "/dashboard")));
        assert_eq!((v.user.as_str(), v.page.as_str(), v.timespent), ("alice", "/dashboard", 120));
        assert_eq!(v.at, f.clock.now());
        assert_eq!(lock(&f.store.visits).len(), 1);
        assert!(matches!(
            f.svc.track_page(Some(&alice()), visit("bob", "/x")),
            Err(AnalyticsError::Forbidden(_))
        ));
        let bad = TrackPageRequest {
            user: "all".into(),
            page: "x".into(),
            timespent: None,
            app: "".into(),
            session_id: Some("nope".into()),
            time: Some("noon".into()),
        };
        let e = f.svc.track_page(Some(&alice()), bad).expect_err("invalid");
        match &e {
            AnalyticsError::Invalid(v) => assert_eq!(
                v.iter().find(|(f, _)| *f == "timespent").map(|(_, p)| p),
                Some("must be a whole number of seconds")
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(fields(e), ["app", "page", "session_id", "time", "timespent", "user"]);
        let mut big = visit("alice", "/x");
        big.timespent = Some(86_401);
        assert_eq!(
            fields(f.svc.track_page(Some(&alice()), big).expect_err("range")),
            ["timespent"]
        );
    }

    #[test]
    fn track_page_session_must_be_the_users() {
        let f = fixture();
        let s = ok(f.svc.start(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let mut v = visit("alice", "/a");
        v.session_id = Some(s.id.to_string());
        v.time = Some("2024-01-01T09:05:00+02:00".into());
        let stored = ok(f.svc.track_page(None, v));
        assert_eq!(stored.session_id, Some(s.id));
        assert_eq!(stored.at, at("2024-01-01T07:05:00Z"));
        let mut v = visit("bob", "/a");
        v.session_id = Some(s.id.to_string());
        assert!(matches!(f.svc.track_page(None, v), Err(AnalyticsError::SessionNotFound)));
        let mut v = visit("alice", "/a");
        v.session_id = Some(Uuid::nil().to_string());
        assert!(matches!(f.svc.track_page(None, v), Err(AnalyticsError::SessionNotFound)));
    }

    #[test]
    fn page_visits_are_group_committed() {
        let f = Arc::new(fixture());
        f.store.slow_pages.store(true, Ordering::SeqCst);
        let n = 40;
        let acked = track_at_once(&f, n, 0).into_iter().filter(Result::is_ok).count();
        assert_eq!(acked, n);
        // Every acknowledged visit is stored, in far fewer commits.
        assert_eq!(lock(&f.store.visits).len(), n);
        let batches = lock(&f.store.batches).clone();
        assert_eq!(batches.iter().sum::<usize>(), n);
        assert!(batches.len() < n / 2, "expected group commits, got {batches:?}");
    }

    /// Waits (at most 5 s) until `f`'s store has seen `n` folds.
    fn wait_for_folds(f: &Fixture, n: usize) -> Vec<(OffsetDateTime, usize)> {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let folds = lock(&f.store.folds).clone();
            if folds.len() >= n || Instant::now() > deadline {
                return folds;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn the_batcher_folds_what_it_wrote_behind_the_clock_and_retries_failures() {
        let f = fixture();
        // Nothing written: the idle batcher does not fold.
        std::thread::sleep(FOLD_EVERY * 2);
        assert!(lock(&f.store.folds).is_empty());

        f.store.fail_folds.store(true, Ordering::SeqCst);
        ok(f.svc.track_page(None, visit("alice", "/a")));
        let folds = wait_for_folds(&f, 1);
        let (upto, stored) = folds[0];
        // Behind the service's clock, and after the visit was stored.
        assert_eq!(upto, f.clock.now() - FOLD_LAG);
        assert_eq!(stored, 1);

        // That fold failed: a later one folds again, with no new visit;
        // once one succeeds, the idle batcher stops folding.
        f.store.fail_folds.store(false, Ordering::SeqCst);
        assert!(wait_for_folds(&f, 2).len() >= 2, "a failed fold is retried");
        std::thread::sleep(FOLD_EVERY * 3);
        let settled = lock(&f.store.folds).len();
        std::thread::sleep(FOLD_EVERY * 3);
        assert_eq!(lock(&f.store.folds).len(), settled, "nothing left to fold");

        // The sweeper's own call folds behind the clock as well.
        f.svc.fold_pages().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lock(&f.store.folds)[settled].0, f.clock.now() - FOLD_LAG);
    }

    #[test]
    fn several_writers_commit_batches_at_once_and_lose_nothing() {
        let f =
            Arc::new(fixture_on(Arc::new(MemStore { writers: 3, ..MemStore::default() }), true));
        let store = f.store.clone();
        store.slow_pages.store(true, Ordering::SeqCst);
        let n = 60;
        // Spread over time, so that later visits arrive while earlier
        // batches are being written.
        assert!(track_at_once(&f, n, 1).iter().all(Result::is_ok));
        let mut stored: Vec<String> =
            lock(&store.visits).iter().map(|v| v.page.as_str().to_owned()).collect();
        stored.sort();
        let mut expected: Vec<String> = (0..n).map(|i| format!("/p{i}")).collect();
        expected.sort();
        assert_eq!(stored, expected, "every acknowledged visit exactly once");
        let most = store.max_in_flight.load(Ordering::SeqCst);
        assert!((2..=3).contains(&most), "expected overlapping batches, at most 3: {most}");
        // A stop drains every writer; later visits are written directly.
        f.svc.shutdown();
        ok(f.svc.track_page(None, visit("alice", "/after")));
        assert_eq!(lock(&store.visits).len(), n + 1);
    }

    /// Alice's visits to `/p0` … `/p{n-1}`, tracked from `n` threads
    /// released together, the i-th after a further `i × stagger_ms`.
    fn track_at_once(
        f: &Arc<Fixture>,
        n: usize,
        stagger_ms: u64,
    ) -> Vec<Result<PageVisit, AnalyticsError>> {
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (f.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    std::thread::sleep(std::time::Duration::from_millis(i as u64 * stagger_ms));
                    f.svc.track_page(None, visit("alice", &format!("/p{i}")))
                })
            })
            .collect();
        join_all(handles)
    }

    fn join_all<T>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    }

    #[test]
    fn a_failed_commit_fails_every_visit_of_the_batch() {
        let f = Arc::new(fixture());
        f.store.fail_pages.store(true, Ordering::SeqCst);
        f.store.slow_pages.store(true, Ordering::SeqCst);
        // Each submitter sees the store's error, 503-able through the chain.
        assert!(track_at_once(&f, 10, 0).into_iter().all(|outcome| match outcome {
            Err(AnalyticsError::Unknown(e)) => kernel::Unavailable::in_chain(e.chain()),
            _ => false,
        }));
        assert!(lock(&f.store.visits).is_empty());
    }

    /// Runs a future to completion on this thread (the domain depends on
    /// no runtime, and neither do its tests).
    fn block_on<F: Future>(f: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    fn hold(store: &MemStore, held: bool) {
        *lock(&store.held.0) = held;
        store.held.1.notify_all();
    }

    /// Checks and queues a visit the way an async caller does.
    fn submit(f: &Fixture, req: TrackPageRequest) -> PageCommit {
        match ok(f.svc.check_page_visit(None, req)).ready() {
            Readiness::Ready(checked) => f.svc.record_page_visit(checked),
            Readiness::SessionToConfirm(req) => panic!("no session to confirm: {req:?}"),
        }
    }

    #[test]
    fn async_visits_resolve_once_their_batch_is_durable() {
        let f = fixture();
        hold(&f.store, true);
        // Queued from one thread without waiting: no thread per visit.
        let mut commits: Vec<PageCommit> =
            (0..30).map(|i| submit(&f, visit("alice", &format!("/p{i}")))).collect();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for c in &mut commits {
            assert!(Pin::new(c).poll(&mut cx).is_pending(), "answered before it was durable");
        }
        assert!(lock(&f.store.visits).is_empty());
        assert_eq!(f.svc.events_ingested(), 0);
        hold(&f.store, false);
        let pages: Vec<String> = commits.into_iter().map(|c| ok(block_on(c)).page).collect();
        assert_eq!(pages, (0..30).map(|i| format!("/p{i}")).collect::<Vec<_>>());
        assert_eq!(lock(&f.store.visits).len(), 30);
        assert_eq!(f.svc.events_ingested(), 30);
        // The batch that was waiting at the gate, and everything queued
        // behind it in one more.
        let batches = lock(&f.store.batches).clone();
        assert!(batches.len() <= 2 && batches.iter().sum::<usize>() == 30, "{batches:?}");
    }

    #[test]
    fn an_async_visit_is_written_even_if_nobody_waits() {
        let f = fixture();
        drop(submit(&f, visit("alice", "/gone")));
        f.svc.shutdown();
        assert_eq!(lock(&f.store.visits).len(), 1);
        // After the stop, a visit is written at once, before the future is
        // even polled.
        let late = submit(&f, visit("alice", "/late"));
        assert_eq!(lock(&f.store.visits).len(), 2);
        assert_eq!(ok(block_on(late)).page, "/late");
    }

    #[test]
    fn async_visits_fail_with_their_batch() {
        let f = fixture();
        f.store.fail_pages.store(true, Ordering::SeqCst);
        match block_on(submit(&f, visit("alice", "/x"))) {
            Err(AnalyticsError::Unknown(e)) => assert!(kernel::Unavailable::in_chain(e.chain())),
            other => panic!("expected the store's error, got {other:?}"),
        }
        assert_eq!(f.svc.events_ingested(), 0);
    }

    #[test]
    fn only_a_visit_naming_a_session_needs_the_store_before_it_is_queued() {
        let f = fixture();
        let s = ok(f.svc.start(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let to_confirm = |v| match ok(f.svc.check_page_visit(None, v)).ready() {
            Readiness::SessionToConfirm(req) => req,
            Readiness::Ready(v) => panic!("the session is to be confirmed: {v:?}"),
        };
        assert!(matches!(
            ok(f.svc.check_page_visit(None, visit("alice", "/a"))).ready(),
            Readiness::Ready(_)
        ));
        let mut v = visit("alice", "/a");
        v.session_id = Some(s.id.to_string());
        let pending = to_confirm(v);
        assert_eq!(pending.visit().session_id, Some(s.id));
        let checked = ok(f.svc.confirm_page_visit(pending));
        assert_eq!(ok(block_on(f.svc.record_page_visit(checked))).session_id, Some(s.id));
        let mut v = visit("bob", "/a");
        v.session_id = Some(s.id.to_string());
        assert!(matches!(
            f.svc.confirm_page_visit(to_confirm(v)),
            Err(AnalyticsError::SessionNotFound)
        ));
    }

    #[test]
    fn shutdown_drains_and_later_visits_are_written_directly() {
        let f = fixture();
        ok(f.svc.track_page(None, visit("alice", "/before")));
        f.svc.shutdown();
        f.svc.shutdown();
        ok(f.svc.track_page(None, visit("alice", "/after")));
        assert_eq!(lock(&f.store.visits).len(), 2);
        drop(f);
    }

    fn seed_sessions(f: &Fixture) -> Vec<TrackedSession> {
        // alice: 3 sessions (2 ended), bob: 1 ended.
        let mut out = Vec::new();
        for (user, start, end) in [
            ("alice", "2024-01-15T10:00:00Z", Some("2024-01-15T11:00:00Z")),
            ("alice", "2024-01-16T10:00:00Z", Some("2024-01-16T10:30:00.500Z")),
            ("alice", "2024-01-17T23:30:00Z", None),
            ("bob", "2024-01-15T10:05:00Z", Some("2024-01-15T12:05:00Z")),
        ] {
            let s = ok(f.svc.start(&admin(), start_req(user, start)));
            if let Some(end) = end {
                ok(f.svc.end(&admin(), step_req(user, s.id, end)));
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn reports_authorize_and_validate() {
        let f = fixture();
        seed_sessions(&f);
        assert_eq!(ok(f.svc.summary(Some(&alice()), report("alice"))).total_sessions, 3);
        assert!(matches!(f.svc.stats(&alice(), report("all")), Err(AnalyticsError::Forbidden(_))));
        assert!(matches!(f.svc.stats(&alice(), report("bob")), Err(AnalyticsError::Forbidden(_))));
        let mut other = report("alice");
        other.app = "mobile".into();
        assert!(matches!(f.svc.heatmap(&alice(), other), Err(AnalyticsError::Forbidden(_))));
        assert_eq!(ok(f.svc.stats(&admin(), report("ALL"))).total_sessions, 4);
        // Public endpoints: anyone, "all" included, while switched on.
        assert_eq!(ok(f.svc.summary(None, report("all"))).total_sessions, 4);
        assert_eq!(ok(f.svc.timeline(None, report("bob"))).timeline.len(), 1);
        let off = fixture_with(false);
        assert!(matches!(off.svc.summary(None, report("all")), Err(AnalyticsError::Disabled)));
        assert!(matches!(off.svc.timeline(None, report("all")), Err(AnalyticsError::Disabled)));

        let bad = ReportRequest {
            app: "web".into(),
            user: "alice".into(),
            from: Some("2024-01-02".into()),
            to: Some("2024-01-01T00:00:00Z".into()),
            tz: Some("Nowhere/City".into()),
            limit: Some(0),
            cursor: Some("abc".into()),
        };
        assert_eq!(fields(f.svc.heatmap(&alice(), bad.clone()).expect_err("bad")), ["tz"]);
        assert_eq!(
            fields(f.svc.timeline(Some(&alice()), bad.clone()).expect_err("bad")),
            ["cursor", "limit", "tz"]
        );
        let bad = ReportRequest { tz: None, limit: Some(1001), ..bad };
        assert_eq!(
            fields(f.svc.timeline(Some(&alice()), bad.clone()).expect_err("bad")),
            ["cursor", "limit", "to"]
        );
        let same = ReportRequest {
            from: Some("2024-01-01T00:00:00Z".into()),
            to: Some("2024-01-01T00:00:00Z".into()),
            ..report("alice")
        };
        assert_eq!(fields(f.svc.stats(&alice(), same).expect_err("empty range")), ["to"]);
        let no_offset =
            ReportRequest { from: Some("2024-01-01T00:00:00".into()), ..report("alice") };
        assert_eq!(fields(f.svc.stats(&alice(), no_offset).expect_err("no offset")), ["from"]);
    }

    #[test]
    fn reports_from_the_store() {
        let f = fixture();
        seed_sessions(&f);
        let h = ok(f.svc.heatmap(&alice(), report("alice")));
        assert_eq!(h.total_sessions, 3);
        assert_eq!(h.date_range, Some(("2024-01-15".into(), "2024-01-17".into())));
        let m = ok(f.svc.most_active(&admin(), report("all")));
        assert_eq!(
            (m.most_active_day.as_deref(), m.most_active_hour, m.peak_sessions),
            (Some("Monday"), Some(10), 2)
        );
        let s = ok(f.svc.stats(&alice(), report("alice")));
        assert_eq!(
            (
                s.total_sessions,
                format_hms(s.total_time_spent),
                format_hms(s.average_session_duration)
            ),
            (3, "01:30:00".to_owned(), "00:45:00".to_owned())
        );
        let m = ok(f.svc.summary(Some(&alice()), report("alice")));
        assert_eq!((m.longest_session, m.shortest_session), (3600, 1800));
        // A date `to` includes the whole day; in Kolkata the 23:30Z start
        // is on the 18th.
        let r = ReportRequest {
            from: Some("2024-01-16".into()),
            to: Some("2024-01-17".into()),
            tz: Some("Asia/Kolkata".into()),
            ..report("alice")
        };
        let h = ok(f.svc.heatmap(&alice(), r));
        assert_eq!(h.daily_sessions, BTreeMap::from([("2024-01-16".into(), 1)]));
        let r = ReportRequest { to: Some("2024-01-17".into()), ..report("alice") };
        assert_eq!(ok(f.svc.stats(&alice(), r)).total_sessions, 3);
        let r = ReportRequest { to: Some("2024-01-17T23:30:00Z".into()), ..report("alice") };
        assert_eq!(ok(f.svc.stats(&alice(), r)).total_sessions, 2, "a timestamp `to` is exclusive");
    }

    #[test]
    fn daily_time_spent_over_dst_through_the_service() {
        let f = fixture();
        let s = ok(f.svc.start(&alice(), start_req("alice", "2024-03-09T23:30:00-05:00")));
        ok(f.svc.end(&alice(), step_req("alice", s.id, "2024-03-10T04:00:00-04:00")));
        let r = ReportRequest { tz: Some("America/New_York".into()), ..report("alice") };
        let d = ok(f.svc.daily_time_spent(&alice(), r.clone()));
        assert_eq!(
            d.0,
            BTreeMap::from([("2024-03-09".into(), 1800), ("2024-03-10".into(), 10_800)])
        );
        // The range selects active time, not sessions by start.
        let r = ReportRequest { from: Some("2024-03-10".into()), ..r };
        let d = ok(f.svc.daily_time_spent(&alice(), r));
        assert_eq!(d.0, BTreeMap::from([("2024-03-10".into(), 10_800)]));
    }

    #[test]
    fn pages_reports() {
        let f = fixture();
        for (page, secs) in [("/dashboard", 100), ("/dashboard", 51), ("/profile", 7)] {
            let mut v = visit("alice", page);
            v.timespent = Some(secs);
            ok(f.svc.track_page(None, v));
        }
        ok(f.svc.track_page(None, visit("bob", "/dashboard")));
        let t = ok(f.svc.time_by_page(&alice(), report("alice")));
        assert_eq!(t.page_time, [("/dashboard".into(), 151), ("/profile".into(), 7)]);
        assert_eq!(t.next_cursor, None);
        let s = ok(f.svc.page_stats(&admin(), report("all")));
        assert_eq!(
            s.page_stats.first().map(|(p, s)| (p.as_str(), s.visits, s.total_time, s.average_time)),
            Some(("/dashboard", 3, 271, 90))
        );
        let r = ReportRequest { to: Some("2024-06-01T12:00:00Z".into()), ..report("alice") };
        let s = ok(f.svc.page_stats(&alice(), r));
        assert!(s.page_stats.is_empty(), "visits are selected by time");
    }

    /// Tracks one visit of `secs` seconds to `page` for alice.
    fn track(f: &Fixture, page: &str, secs: i64) {
        let mut v = visit("alice", page);
        v.timespent = Some(secs);
        ok(f.svc.track_page(None, v));
    }

    #[test]
    fn page_reports_page_by_total_time_then_path() {
        let f = fixture();
        // 2,500 pages: totals 0..=9 seconds, so many ties broken by path
        // (in byte order: "/B" before "/a"); one page visited twice.
        let mut want: Vec<(String, i64)> = Vec::new();
        for i in 0..2500_i64 {
            let page = if i % 2 == 0 { format!("/a{i}") } else { format!("/B{i}") };
            track(&f, &page, i % 10);
            want.push((page, i % 10));
        }
        track(&f, "/a0", 50);
        want[0].1 += 50;
        want.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

        // Both reports, default limit (1000) and a small one: every page
        // once, in order, the store asked for one more than the limit.
        for limit in [None, Some(7)] {
            let (mut time, mut stats, mut calls) = (Vec::new(), Vec::new(), 0);
            let mut cursors = (None::<String>, None::<String>);
            loop {
                let r = ReportRequest { limit, cursor: cursors.0.clone(), ..report("alice") };
                let t = ok(f.svc.time_by_page(&alice(), r));
                let r = ReportRequest { limit, cursor: cursors.1.clone(), ..report("alice") };
                let s = ok(f.svc.page_stats(&alice(), r));
                let max = limit.unwrap_or(1000) as usize;
                assert!(t.page_time.len() <= max && s.page_stats.len() <= max);
                assert_eq!(t.next_cursor.is_some(), s.next_cursor.is_some());
                time.extend(t.page_time);
                stats.extend(s.page_stats.into_iter().map(|(p, s)| (p, s.total_time)));
                calls += 1;
                match (t.next_cursor, s.next_cursor) {
                    (Some(a), Some(b)) => cursors = (Some(a), Some(b)),
                    _ => break,
                }
            }
            assert_eq!(time, want, "{limit:?}");
            assert_eq!(stats, want, "{limit:?}");
            assert_eq!(calls, 2501_usize.div_ceil(limit.unwrap_or(1000) as usize));
        }
        // Exactly a full last page: no cursor on it.
        let r = ReportRequest { limit: Some(1000), ..report("alice") };
        let mut cursor = ok(f.svc.page_stats(&alice(), r.clone())).next_cursor;
        let r = ReportRequest { cursor: cursor.take(), ..r };
        let second = ok(f.svc.page_stats(&alice(), r.clone()));
        let r = ReportRequest { cursor: second.next_cursor, ..r };
        let third = ok(f.svc.page_stats(&alice(), r));
        assert_eq!((third.page_stats.len(), third.next_cursor), (500, None));

        // Limits and cursors are validated.
        for (limit, cursor, bad) in [
            (Some(0), None, vec!["limit"]),
            (Some(1001), None, vec!["limit"]),
            (Some(-1), Some("x"), vec!["cursor", "limit"]),
            (None, Some("5"), vec!["cursor"]),
            (None, Some("5.2f6"), vec!["cursor"]),
            (None, Some("5.2F61"), vec!["cursor"]),
            (None, Some("-5.2f61"), vec!["cursor"]),
            (None, Some("5.6162"), vec!["cursor"]),
            (None, Some("5.2fff"), vec!["cursor"]),
            (None, Some("5.2f00"), vec!["cursor"]),
            (None, Some("5.2f0a"), vec!["cursor"]),
            (None, Some("1704067200000.0190f1c27e3a7b4c9d2e1f2a3b4c5d6e"), vec!["cursor"]),
        ] {
            let r = ReportRequest { limit, cursor: cursor.map(Into::into), ..report("alice") };
            let e = f.svc.time_by_page(&alice(), r.clone()).expect_err("bad");
            assert_eq!(fields(e), bad, "{limit:?} {cursor:?}");
            let e = f.svc.page_stats(&alice(), r).expect_err("bad");
            assert_eq!(fields(e), bad, "{limit:?} {cursor:?}");
        }
    }

    #[test]
    fn page_cursors_round_trip_any_path() {
        for page in ["/", "/a.b?c=d#e", "/é/日本/🙂", &format!("/{}", "x".repeat(2047))] {
            let p = PagePosition { time_sum: 86_400 * 3, page: page.into() };
            let c = format_page_cursor(&p);
            assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'), "{c}");
            assert_eq!(parse_page_cursor(&c), Ok(p));
        }
        let huge = format!("1.{}", "2f".repeat(4 * 2048 + 1));
        assert!(parse_page_cursor(&huge).is_err());
    }

    /// Starts a session for alice at `start` with `pauses` pause and resume
    /// pairs one millisecond apart (so `1 + 2 * pauses` events).
    fn long_session(f: &Fixture, start: &str, pauses: i64) -> TrackedSession {
        let s = ok(f.svc.start(&alice(), start_req("alice", start)));
        let t0 = to_millis(s.started_at);
        for k in 0..pauses {
            for (i, kind) in [EventKind::Pause, EventKind::Resume].into_iter().enumerate() {
                let at = kernel::format_instant(from_millis(t0 + 2 * k + 1 + i as i64));
                let req = step_req("alice", s.id, &at);
                ok(match kind {
                    EventKind::Pause => f.svc.pause(&alice(), req),
                    _ => f.svc.resume(&alice(), req),
                });
            }
        }
        s
    }

    #[test]
    fn detail_pages_hold_at_most_ten_thousand_events() {
        let f = fixture();
        // Sessions of 4,001, 5,001, 1 and 12,001 events, then one of 3.
        let a = long_session(&f, "2024-01-01T00:00:00Z", 2000);
        let b = long_session(&f, "2024-01-02T00:00:00Z", 2500);
        let c = long_session(&f, "2024-01-03T00:00:00Z", 0);
        let d = long_session(&f, "2024-01-04T00:00:00Z", 6000);
        let e = long_session(&f, "2024-01-05T00:00:00Z", 1);
        lock(&f.store.events_read).clear();
        let mut pages: Vec<Vec<DetailEntry>> = Vec::new();
        let mut cursor = None;
        loop {
            let r = ReportRequest { cursor: cursor.take(), ..report("alice") };
            let page = ok(f.svc.session_timeline_detail(&alice(), r));
            let held: usize = page.detailed_timeline.iter().map(|d| d.events.len()).sum();
            assert!(held <= MAX_DETAIL_EVENTS as usize, "{held}");
            pages.push(page.detailed_timeline);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(pages.len() < 10, "paging does not end");
        }
        let shape: Vec<Vec<(Uuid, usize)>> = pages
            .iter()
            .map(|p| p.iter().map(|d| (d.session_id, d.events.len())).collect())
            .collect();
        // Page 1: a (4,001) and b (5,001) whole, c (1), then 997 of d.
        // Page 2: the next 10,000 of d. Page 3: d's last 1,004, then e.
        assert_eq!(
            shape,
            [
                vec![(a.id, 4001), (b.id, 5001), (c.id, 1), (d.id, 997)],
                vec![(d.id, 10_000)],
                vec![(d.id, 1004), (e.id, 3)],
            ]
        );
        // d's events, put together, are all of them in order.
        let d_events: Vec<(EventKind, OffsetDateTime)> = pages
            .iter()
            .flatten()
            .filter(|entry| entry.session_id == d.id)
            .flat_map(|entry| entry.events.iter().copied())
            .collect();
        assert_eq!(d_events.len(), 12_001);
        assert_eq!(d_events[0].0, EventKind::Start);
        assert!(d_events.windows(2).all(|w| w[0].1 < w[1].1), "in order, none twice");
        // Only what a page holds was read from the store.
        assert_eq!(*lock(&f.store.events_read), [10_000, 10_000, 1007]);

        // A session limit still applies, and a page may end exactly at a
        // session's end.
        let r = ReportRequest { limit: Some(2), ..report("alice") };
        let page = ok(f.svc.session_timeline_detail(&alice(), r.clone()));
        assert_eq!(page.detailed_timeline.len(), 2);
        let next = page.next_cursor.expect("more");
        assert!(parse_cursor(&next).is_ok(), "after a whole session: a timeline cursor");
        let page =
            ok(f.svc.session_timeline_detail(&alice(), ReportRequest { cursor: Some(next), ..r }));
        assert_eq!(
            page.detailed_timeline
                .iter()
                .map(|d| (d.session_id, d.events.len()))
                .collect::<Vec<_>>(),
            [(c.id, 1), (d.id, 9999)]
        );

        // Junk inside-session cursors are 422; one naming a session the
        // request does not select starts after that position instead.
        let inside = format_event_cursor(d.started_at, d.id, 5);
        for junk in [
            format!("{inside}x"),
            format!("{}.0", format_cursor(d.started_at, d.id)),
            format!("{}.-3", format_cursor(d.started_at, d.id)),
            format!("{}.", format_cursor(d.started_at, d.id)),
        ] {
            let r = ReportRequest { cursor: Some(junk.clone()), ..report("alice") };
            let err = f.svc.session_timeline_detail(&alice(), r).expect_err("junk");
            assert_eq!(fields(err), ["cursor"], "{junk}");
        }
        let r = ReportRequest { cursor: Some(inside), ..report("alice") };
        let page = ok(f.svc.session_timeline_detail(&alice(), r));
        assert_eq!(page.detailed_timeline[0].session_id, d.id);
        assert_eq!(page.detailed_timeline[0].events.len(), 10_000);
        assert_eq!(page.detailed_timeline[0].events[0], d_events[5]);
        let r = ReportRequest {
            cursor: Some(format_event_cursor(d.started_at, d.id, 5)),
            from: Some("2024-01-04T00:00:01Z".into()),
            ..report("alice")
        };
        let page = ok(f.svc.session_timeline_detail(&alice(), r));
        assert_eq!(
            page.detailed_timeline.iter().map(|d| d.session_id).collect::<Vec<_>>(),
            [e.id],
            "d is not selected by the range"
        );
    }

    #[test]
    fn just_before_is_the_predecessor() {
        let when = at("2024-01-01T09:00:00.123Z");
        let p = TimelinePosition { started_at: when, id: Uuid::from_u128(0x100) };
        assert_eq!(
            just_before(p),
            TimelinePosition { started_at: when, id: Uuid::from_u128(0xff) }
        );
        let p = TimelinePosition { started_at: when, id: Uuid::nil() };
        assert_eq!(
            just_before(p),
            TimelinePosition {
                started_at: at("2024-01-01T09:00:00.122Z"),
                id: Uuid::from_u128(u128::MAX)
            }
        );
    }

    #[test]
    fn timelines_page_with_cursors() {
        let f = fixture();
        let mut ids = Vec::new();
        for i in 0..5 {
            let s = ok(f
                .svc
                .start(&alice(), start_req("alice", &format!("2024-01-0{}T09:00:00Z", i + 1))));
            ids.push(s.id);
        }
        ok(f.svc.pause(&alice(), step_req("alice", ids[0], "2024-01-01T09:10:00Z")));
        ok(f.svc.end(&alice(), step_req("alice", ids[0], "2024-01-01T09:20:00Z")));
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let r = ReportRequest { limit: Some(2), cursor: cursor.clone(), ..report("alice") };
            let page = ok(f.svc.timeline(Some(&alice()), r));
            pages += 1;
            seen.extend(page.timeline.iter().map(|e| e.session_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids);
        let first = ok(f.svc.timeline(Some(&alice()), report("alice")));
        assert_eq!(first.next_cursor, None);
        assert_eq!(first.timeline[0].duration, Some(600));
        assert_eq!(first.timeline[0].status, TrackState::Ended);
        assert_eq!((first.timeline[1].end_time, first.timeline[1].duration), (None, None));

        let r = ReportRequest { limit: Some(1), ..report("alice") };
        let d = ok(f.svc.session_timeline_detail(&alice(), r));
        assert_eq!(d.detailed_timeline.len(), 1);
        assert_eq!(
            d.detailed_timeline[0].events.iter().map(|e| e.0).collect::<Vec<_>>(),
            [EventKind::Start, EventKind::Pause, EventKind::End]
        );
        let next = d.next_cursor.expect("more pages");
        assert!(parse_cursor(&next).is_ok());
        let r = ReportRequest { limit: Some(1000), cursor: Some(next), ..report("alice") };
        let d = ok(f.svc.session_timeline_detail(&alice(), r));
        assert_eq!(d.detailed_timeline.len(), 4);
        assert_eq!(d.next_cursor, None);
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let id = kernel::new_id();
        let when = at("2024-01-01T09:00:00.123Z");
        let c = format_cursor(when, id);
        assert_eq!(parse_cursor(&c), Ok(TimelinePosition { started_at: when, id }));
        for junk in ["", "abc", "1.2", "x.00000000000000000000000000000000", &format!("1.{id}")] {
            assert!(parse_cursor(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn idle_sessions_are_closed_at_their_last_event() {
        let f = fixture();
        // Clock: 2024-06-01T12:00Z; idle timeout 12 h. Every event arrives
        // now, whatever time it carries (an offline client catching up).
        let old = ok(f.svc.start(&alice(), start_req("alice", "2024-05-31T23:59:59.999Z")));
        let paused = ok(f.svc.start(&alice(), start_req("alice", "2024-05-31T20:00:00Z")));
        ok(f.svc.pause(&alice(), step_req("alice", paused.id, "2024-05-31T21:00:00Z")));
        // Just arrived: nothing is idle, however old the times are.
        assert_eq!(ok(f.svc.close_idle_sessions()), 0);

        // 11 h later a new event arrives for a third session.
        f.clock.advance(Duration::hours(11));
        let fresh = ok(f.svc.start(&alice(), start_req("alice", "2024-06-01T01:00:00Z")));
        // Idle means strictly longer than the timeout since the last arrival.
        f.clock.advance(Duration::hours(1));
        assert_eq!(ok(f.svc.close_idle_sessions()), 0);
        f.clock.advance(Duration::milliseconds(1));
        assert_eq!(ok(f.svc.close_idle_sessions()), 2);

        // Closed at their last event's own time, pauses not counted.
        let get = |id| ok(f.store.get_session("web", id)).expect("stored");
        let o = get(old.id);
        assert_eq!((o.state, o.ended_at, o.active_ms), (TrackState::Ended, Some(o.started_at), 0));
        let p = get(paused.id);
        assert_eq!(p.ended_at, Some(at("2024-05-31T21:00:00Z")));
        assert_eq!(p.active_ms, 3_600_000);
        assert_eq!(get(fresh.id).state, TrackState::Active);
        assert_eq!(ok(f.svc.close_idle_sessions()), 0);
        f.clock.advance(Duration::hours(11));
        assert_eq!(ok(f.svc.close_idle_sessions()), 1);
        assert_eq!(get(fresh.id).ended_at, Some(at("2024-06-01T01:00:00Z")));
    }

    #[test]
    fn event_times_may_not_run_ahead_of_the_clock() {
        let f = fixture();
        // Clock: 2024-06-01T12:00Z; five minutes of skew are tolerated.
        ok(f.svc.start(&alice(), start_req("alice", "2024-06-01T12:05:00Z")));
        match f.svc.start(&alice(), start_req("alice", "2024-06-01T12:05:00.001Z")) {
            Err(AnalyticsError::Invalid(v)) => {
                assert_eq!(v.iter().collect::<Vec<_>>(), [("time", "is in the future")]);
            }
            other => panic!("expected 422 on time, got {other:?}"),
        }
        // Back-dated events are fine: offline clients catch up.
        ok(f.svc.start(&alice(), start_req("alice", "2020-01-01T00:00:00Z")));
    }

    #[test]
    fn batch_errors_keep_the_chain() {
        let inner = anyhow::Error::new(kernel::Unavailable("down".into())).context("writing pages");
        let shared = Arc::new(inner);
        let e = anyhow::Error::new(BatchFailed(shared.clone()));
        assert!(kernel::Unavailable::in_chain(e.chain()));
        assert!(e.to_string().contains("writing pages"));
    }
}
