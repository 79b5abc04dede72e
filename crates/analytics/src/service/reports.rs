//! The report use cases: a request validated and authorised into a scope,
//! then the store's bucket aggregates, page totals or sessions of that
//! scope, paged where a report can grow without bound.

use kernel::{AppName, OffsetDateTime};

use super::AnalyticsService;
use crate::authorisation::authorize;
use crate::cursor::{format_cursor, format_event_cursor, format_page_cursor, just_before};
use crate::{
    AnalyticsError, Caller, DailyTime, DetailEntry, DetailPage, EventSpan, Heatmap, MostActive,
    MsRange, PageStats, PageTime, PageTotal, Paging, ReportPage, ReportRequest, SessionBucket,
    Stats, Subject, Summary, TimelineEntry, TimelinePage, TrackedSession, Tz,
};

/// Most events on one page of the detailed timeline. Sessions are shown
/// whole while they fit; a session whose events do not fit is cut there,
/// and the next page opens with the same session and the rest of its
/// events. A session can hold any number of events (pause and resume
/// have no limit), so only a cut inside a session keeps every answer
/// bounded.
pub const MAX_DETAIL_EVENTS: i32 = 10_000;

impl AnalyticsService {
    /// The heatmap: sessions started per local day, and per weekday and
    /// local hour, in the request's zone.
    pub fn heatmap(&self, caller: &Caller, req: ReportRequest) -> Result<Heatmap, AnalyticsError> {
        let scope = self.scope(Some(caller), req, Paging::No)?;
        Ok(Heatmap::from_buckets(&self.buckets(&scope)?, &scope.tz))
    }

    /// The weekday and local hour with the most session starts.
    pub fn most_active(
        &self,
        caller: &Caller,
        req: ReportRequest,
    ) -> Result<MostActive, AnalyticsError> {
        let scope = self.scope(Some(caller), req, Paging::No)?;
        Ok(MostActive::from_buckets(&self.buckets(&scope)?, &scope.tz))
    }

    /// Sessions started, active days, and the total and mean duration of
    /// the ended ones.
    pub fn stats(&self, caller: &Caller, req: ReportRequest) -> Result<Stats, AnalyticsError> {
        let scope = self.scope(Some(caller), req, Paging::No)?;
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
        let scope = self.scope(caller, req, Paging::No)?;
        Ok(Summary::from_buckets(&self.buckets(&scope)?))
    }

    /// One page of sessions by start time; `caller` `None` = the public
    /// endpoint (allowed only with public analytics).
    pub fn timeline(
        &self,
        caller: Option<&Caller>,
        req: ReportRequest,
    ) -> Result<TimelinePage, AnalyticsError> {
        let scope = self.scope(caller, req, Paging::Sessions)?;
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
        let scope = self.scope(Some(caller), req, Paging::No)?;
        Ok(DailyTime::from_buckets(&self.buckets(&scope)?, &scope.tz))
    }

    /// Time spent per page: one page of the report, pages by total time
    /// (most first) then path, at most `limit` (default and most 1000).
    pub fn time_by_page(
        &self,
        caller: &Caller,
        req: ReportRequest,
    ) -> Result<PageTime, AnalyticsError> {
        let scope = self.scope(Some(caller), req, Paging::Pages)?;
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
        let scope = self.scope(Some(caller), req, Paging::Events)?;
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
        let scope = self.scope(Some(caller), req, Paging::Pages)?;
        let (totals, next_cursor) = self.pages_page(&scope)?;
        Ok(PageStats::from_totals(&totals, next_cursor))
    }

    /// Closes open sessions without events for the idle timeout, dated at
    /// their last event; the number closed. Called by the sweeper.
    ///
    /// Each close is the state machine's `end` at the last event's time,
    /// written as a compare-and-swap: a session that received an event
    /// meanwhile is left alone (it is no longer idle, or the next sweep
    /// Whether `caller` may ask for reports at all: anyone with a token,
    /// and the public endpoints (`None`) only with public analytics (else
    /// [`AnalyticsError::Disabled`]). Every report asks it first; an edge
    /// asks it before parsing the request, so that a switched-off public
    /// endpoint answers so before any 422.
    pub fn may_report(&self, caller: Option<&Caller>) -> Result<(), AnalyticsError> {
        if caller.is_none() && !self.settings.public_analytics {
            return Err(AnalyticsError::Disabled);
        }
        Ok(())
    }

    /// Authorizes the caller for a parsed report request (`None` = a
    /// public endpoint, which covers any user, `all` included, when public
    /// analytics are on). A paged report's request must have been parsed
    /// for its paging.
    fn scope(
        &self,
        caller: Option<&Caller>,
        req: ReportRequest,
        paging: Paging,
    ) -> Result<Scope, AnalyticsError> {
        self.may_report(caller)?;
        if paging != Paging::No && req.page.paging != paging {
            return Err(AnalyticsError::Unknown(anyhow::anyhow!(
                "a report request parsed for {:?} paging, given to a report of {paging:?}",
                req.page.paging
            )));
        }
        let ReportRequest { app, subject, tz, from, to, page } = req;
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

/// A validated, authorized report request.
struct Scope {
    app: AppName,
    subject: Subject,
    tz: Tz,
    range: MsRange,
    page: ReportPage,
}

/// An instant as whole milliseconds, rounded up: stored instants are whole
/// milliseconds, so `t >= bound` and `t < bound` mean the same for them
/// with the rounded-up bound.
fn ceil_millis(at: OffsetDateTime) -> i64 {
    let nanos = at.unix_timestamp_nanos();
    let ms = nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kernel::{Uuid, format_hms, from_millis, to_millis};

    use super::*;
    use crate::cursor::parse_cursor;
    use crate::fake::*;
    use crate::{EventKind, RawReport, TrackState};

    fn seed_sessions(f: &Fixture) -> Vec<TrackedSession> {
        // alice: 3 sessions (2 ended), bob: 1 ended.
        let mut out = Vec::new();
        for (user, start, end) in [
            ("alice", "2024-01-15T10:00:00Z", Some("2024-01-15T11:00:00Z")),
            ("alice", "2024-01-16T10:00:00Z", Some("2024-01-16T10:30:00.500Z")),
            ("alice", "2024-01-17T23:30:00Z", None),
            ("bob", "2024-01-15T10:05:00Z", Some("2024-01-15T12:05:00Z")),
        ] {
            let s = ok(f.svc.start_raw(&admin(), start_req(user, start)));
            if let Some(end) = end {
                ok(f.svc.end_raw(&admin(), step_req(user, s.id, end)));
            }
            out.push(s);
        }
        out
    }

    /// Tracks one visit of `secs` seconds to `page` for alice.
    fn track(f: &Fixture, page: &str, secs: i64) {
        let mut v = visit("alice", page);
        v.timespent = Some(secs);
        ok(f.svc.track_page_raw(None, v));
    }

    /// Starts a session for alice at `start` with `pauses` pause and resume
    /// pairs one millisecond apart (so `1 + 2 * pauses` events).
    fn long_session(f: &Fixture, start: &str, pauses: i64) -> TrackedSession {
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", start)));
        let t0 = to_millis(s.started_at);
        for k in 0..pauses {
            for (i, kind) in [EventKind::Pause, EventKind::Resume].into_iter().enumerate() {
                let at = kernel::format_instant(from_millis(t0 + 2 * k + 1 + i as i64));
                let req = step_req("alice", s.id, &at);
                ok(match kind {
                    EventKind::Pause => f.svc.pause_raw(&alice(), req),
                    _ => f.svc.resume_raw(&alice(), req),
                });
            }
        }
        s
    }

    #[test]
    fn reports_authorize_and_validate() {
        let f = fixture();
        seed_sessions(&f);
        assert_eq!(ok(f.svc.summary_raw(Some(&alice()), report("alice"))).total_sessions, 3);
        assert!(matches!(
            f.svc.stats_raw(&alice(), report("all")),
            Err(AnalyticsError::Forbidden(_))
        ));
        assert!(matches!(
            f.svc.stats_raw(&alice(), report("bob")),
            Err(AnalyticsError::Forbidden(_))
        ));
        let mut other = report("alice");
        other.app = "mobile".into();
        assert!(matches!(f.svc.heatmap_raw(&alice(), other), Err(AnalyticsError::Forbidden(_))));
        assert_eq!(ok(f.svc.stats_raw(&admin(), report("ALL"))).total_sessions, 4);
        // Public endpoints: anyone, "all" included, while switched on.
        assert_eq!(ok(f.svc.summary_raw(None, report("all"))).total_sessions, 4);
        assert_eq!(ok(f.svc.timeline_raw(None, report("bob"))).timeline.len(), 1);
        let off = fixture_with(false);
        assert!(matches!(off.svc.summary_raw(None, report("all")), Err(AnalyticsError::Disabled)));
        assert!(matches!(off.svc.timeline_raw(None, report("all")), Err(AnalyticsError::Disabled)));
        // The use case says so too, whatever it is given.
        let parsed = |paging| ok(ReportRequest::parse(report("all"), paging));
        assert!(matches!(off.svc.summary(None, parsed(Paging::No)), Err(AnalyticsError::Disabled)));
        // A request parsed for another paging is the edge's bug: a 500.
        assert!(matches!(
            f.svc.timeline(None, parsed(Paging::Pages)),
            Err(AnalyticsError::Unknown(_))
        ));
        assert_eq!(ok(f.svc.summary(None, parsed(Paging::Sessions))).total_sessions, 4);

        let bad = RawReport {
            app: "web".into(),
            user: "alice".into(),
            from: Some("2024-01-02".into()),
            to: Some("2024-01-01T00:00:00Z".into()),
            tz: Some("Nowhere/City".into()),
            limit: Some(0),
            cursor: Some("abc".into()),
        };
        assert_eq!(fields(f.svc.heatmap_raw(&alice(), bad.clone()).expect_err("bad")), ["tz"]);
        assert_eq!(
            fields(f.svc.timeline_raw(Some(&alice()), bad.clone()).expect_err("bad")),
            ["cursor", "limit", "tz"]
        );
        let bad = RawReport { tz: None, limit: Some(1001), ..bad };
        assert_eq!(
            fields(f.svc.timeline_raw(Some(&alice()), bad.clone()).expect_err("bad")),
            ["cursor", "limit", "to"]
        );
        let same = RawReport {
            from: Some("2024-01-01T00:00:00Z".into()),
            to: Some("2024-01-01T00:00:00Z".into()),
            ..report("alice")
        };
        assert_eq!(fields(f.svc.stats_raw(&alice(), same).expect_err("empty range")), ["to"]);
        let no_offset = RawReport { from: Some("2024-01-01T00:00:00".into()), ..report("alice") };
        assert_eq!(fields(f.svc.stats_raw(&alice(), no_offset).expect_err("no offset")), ["from"]);
    }

    #[test]
    fn reports_from_the_store() {
        let f = fixture();
        seed_sessions(&f);
        let h = ok(f.svc.heatmap_raw(&alice(), report("alice")));
        assert_eq!(h.total_sessions, 3);
        assert_eq!(h.date_range, Some(("2024-01-15".into(), "2024-01-17".into())));
        let m = ok(f.svc.most_active_raw(&admin(), report("all")));
        assert_eq!(
            (m.most_active_day.as_deref(), m.most_active_hour, m.peak_sessions),
            (Some("Monday"), Some(10), 2)
        );
        let s = ok(f.svc.stats_raw(&alice(), report("alice")));
        assert_eq!(
            (
                s.total_sessions,
                format_hms(s.total_time_spent),
                format_hms(s.average_session_duration)
            ),
            (3, "01:30:00".to_owned(), "00:45:00".to_owned())
        );
        let m = ok(f.svc.summary_raw(Some(&alice()), report("alice")));
        assert_eq!((m.longest_session, m.shortest_session), (3600, 1800));
        // A date `to` includes the whole day; in Kolkata the 23:30Z start
        // is on the 18th.
        let r = RawReport {
            from: Some("2024-01-16".into()),
            to: Some("2024-01-17".into()),
            tz: Some("Asia/Kolkata".into()),
            ..report("alice")
        };
        let h = ok(f.svc.heatmap_raw(&alice(), r));
        assert_eq!(h.daily_sessions, BTreeMap::from([("2024-01-16".into(), 1)]));
        let r = RawReport { to: Some("2024-01-17".into()), ..report("alice") };
        assert_eq!(ok(f.svc.stats_raw(&alice(), r)).total_sessions, 3);
        let r = RawReport { to: Some("2024-01-17T23:30:00Z".into()), ..report("alice") };
        assert_eq!(
            ok(f.svc.stats_raw(&alice(), r)).total_sessions,
            2,
            "a timestamp `to` is exclusive"
        );
    }

    #[test]
    fn daily_time_spent_over_dst_through_the_service() {
        let f = fixture();
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-03-09T23:30:00-05:00")));
        ok(f.svc.end_raw(&alice(), step_req("alice", s.id, "2024-03-10T04:00:00-04:00")));
        let r = RawReport { tz: Some("America/New_York".into()), ..report("alice") };
        let d = ok(f.svc.daily_time_spent_raw(&alice(), r.clone()));
        assert_eq!(
            d.0,
            BTreeMap::from([("2024-03-09".into(), 1800), ("2024-03-10".into(), 10_800)])
        );
        // The range selects active time, not sessions by start.
        let r = RawReport { from: Some("2024-03-10".into()), ..r };
        let d = ok(f.svc.daily_time_spent_raw(&alice(), r));
        assert_eq!(d.0, BTreeMap::from([("2024-03-10".into(), 10_800)]));
    }

    #[test]
    fn pages_reports() {
        let f = fixture();
        for (page, secs) in [("/dashboard", 100), ("/dashboard", 51), ("/profile", 7)] {
            let mut v = visit("alice", page);
            v.timespent = Some(secs);
            ok(f.svc.track_page_raw(None, v));
        }
        ok(f.svc.track_page_raw(None, visit("bob", "/dashboard")));
        let t = ok(f.svc.time_by_page_raw(&alice(), report("alice")));
        assert_eq!(t.page_time, [("/dashboard".into(), 151), ("/profile".into(), 7)]);
        assert_eq!(t.next_cursor, None);
        let s = ok(f.svc.page_stats_raw(&admin(), report("all")));
        assert_eq!(
            s.page_stats.first().map(|(p, s)| (p.as_str(), s.visits, s.total_time, s.average_time)),
            Some(("/dashboard", 3, 271, 90))
        );
        let r = RawReport { to: Some("2024-06-01T12:00:00Z".into()), ..report("alice") };
        let s = ok(f.svc.page_stats_raw(&alice(), r));
        assert!(s.page_stats.is_empty(), "visits are selected by time");
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
                let r = RawReport { limit, cursor: cursors.0.clone(), ..report("alice") };
                let t = ok(f.svc.time_by_page_raw(&alice(), r));
                let r = RawReport { limit, cursor: cursors.1.clone(), ..report("alice") };
                let s = ok(f.svc.page_stats_raw(&alice(), r));
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
        let r = RawReport { limit: Some(1000), ..report("alice") };
        let mut cursor = ok(f.svc.page_stats_raw(&alice(), r.clone())).next_cursor;
        let r = RawReport { cursor: cursor.take(), ..r };
        let second = ok(f.svc.page_stats_raw(&alice(), r.clone()));
        let r = RawReport { cursor: second.next_cursor, ..r };
        let third = ok(f.svc.page_stats_raw(&alice(), r));
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
            let r = RawReport { limit, cursor: cursor.map(Into::into), ..report("alice") };
            let e = f.svc.time_by_page_raw(&alice(), r.clone()).expect_err("bad");
            assert_eq!(fields(e), bad, "{limit:?} {cursor:?}");
            let e = f.svc.page_stats_raw(&alice(), r).expect_err("bad");
            assert_eq!(fields(e), bad, "{limit:?} {cursor:?}");
        }
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
            let r = RawReport { cursor: cursor.take(), ..report("alice") };
            let page = ok(f.svc.session_timeline_detail_raw(&alice(), r));
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
        let r = RawReport { limit: Some(2), ..report("alice") };
        let page = ok(f.svc.session_timeline_detail_raw(&alice(), r.clone()));
        assert_eq!(page.detailed_timeline.len(), 2);
        let next = page.next_cursor.expect("more");
        assert!(parse_cursor(&next).is_ok(), "after a whole session: a timeline cursor");
        let page =
            ok(f.svc.session_timeline_detail_raw(&alice(), RawReport { cursor: Some(next), ..r }));
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
            let r = RawReport { cursor: Some(junk.clone()), ..report("alice") };
            let err = f.svc.session_timeline_detail_raw(&alice(), r).expect_err("junk");
            assert_eq!(fields(err), ["cursor"], "{junk}");
        }
        let r = RawReport { cursor: Some(inside), ..report("alice") };
        let page = ok(f.svc.session_timeline_detail_raw(&alice(), r));
        assert_eq!(page.detailed_timeline[0].session_id, d.id);
        assert_eq!(page.detailed_timeline[0].events.len(), 10_000);
        assert_eq!(page.detailed_timeline[0].events[0], d_events[5]);
        let r = RawReport {
            cursor: Some(format_event_cursor(d.started_at, d.id, 5)),
            from: Some("2024-01-04T00:00:01Z".into()),
            ..report("alice")
        };
        let page = ok(f.svc.session_timeline_detail_raw(&alice(), r));
        assert_eq!(
            page.detailed_timeline.iter().map(|d| d.session_id).collect::<Vec<_>>(),
            [e.id],
            "d is not selected by the range"
        );
    }

    #[test]
    fn timelines_page_with_cursors() {
        let f = fixture();
        let mut ids = Vec::new();
        for i in 0..5 {
            let s = ok(f
                .svc
                .start_raw(&alice(), start_req("alice", &format!("2024-01-0{}T09:00:00Z", i + 1))));
            ids.push(s.id);
        }
        ok(f.svc.pause_raw(&alice(), step_req("alice", ids[0], "2024-01-01T09:10:00Z")));
        ok(f.svc.end_raw(&alice(), step_req("alice", ids[0], "2024-01-01T09:20:00Z")));
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let r = RawReport { limit: Some(2), cursor: cursor.clone(), ..report("alice") };
            let page = ok(f.svc.timeline_raw(Some(&alice()), r));
            pages += 1;
            seen.extend(page.timeline.iter().map(|e| e.session_id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids);
        let first = ok(f.svc.timeline_raw(Some(&alice()), report("alice")));
        assert_eq!(first.next_cursor, None);
        assert_eq!(first.timeline[0].duration, Some(600));
        assert_eq!(first.timeline[0].status, TrackState::Ended);
        assert_eq!((first.timeline[1].end_time, first.timeline[1].duration), (None, None));

        let r = RawReport { limit: Some(1), ..report("alice") };
        let d = ok(f.svc.session_timeline_detail_raw(&alice(), r));
        assert_eq!(d.detailed_timeline.len(), 1);
        assert_eq!(
            d.detailed_timeline[0].events.iter().map(|e| e.0).collect::<Vec<_>>(),
            [EventKind::Start, EventKind::Pause, EventKind::End]
        );
        let next = d.next_cursor.expect("more pages");
        assert!(parse_cursor(&next).is_ok());
        let r = RawReport { limit: Some(1000), cursor: Some(next), ..report("alice") };
        let d = ok(f.svc.session_timeline_detail_raw(&alice(), r));
        assert_eq!(d.detailed_timeline.len(), 4);
        assert_eq!(d.next_cursor, None);
    }
}
