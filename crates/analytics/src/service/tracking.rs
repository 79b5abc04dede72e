//! The tracking use cases: session steps validated, authorised and applied
//! as a compare-and-swap on the stored session, page visits checked
//! without I/O and handed to the page writer, and idle sessions closed.

use super::{AnalyticsService, PageCommit};
use crate::authorisation::authorize;
use crate::{
    AnalyticsError, Caller, CheckedVisit, EventKind, PageVisit, StartRequest, Subject,
    TrackPageRequest, TrackedSession, TransitionRequest, VisitRequest,
};

/// How often a transition is retried when the session changed between
/// reading it and the compare-and-swap. Each retry re-reads the session
/// and re-checks the state machine, so a concurrent identical step ends in
/// 409, not in a loop; the bound only guards against a store that never
/// confirms.
const MAX_CAS_ATTEMPTS: usize = 16;

/// Stale sessions fetched per sweep round.
const SWEEP_BATCH: u32 = 500;

impl AnalyticsService {
    /// Starts a tracked session.
    pub fn start(
        &self,
        caller: &Caller,
        req: StartRequest,
    ) -> Result<TrackedSession, AnalyticsError> {
        let StartRequest { user, app, time: at } = req;
        let user = user.to_lowercase();
        authorize(caller, &app, &Subject::User(user.clone()))?;
        let now = self.now();
        let at = at.unwrap_or(now);
        let session = TrackedSession {
            last_seen_at: now,
            ..TrackedSession::start(kernel::new_id(), app.into_inner(), user, at)
        };
        self.store.insert_session(&session)?;
        self.count_step();
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
        let TransitionRequest { user, app, session_id, time: at } = req;
        let user = user.to_lowercase();
        authorize(caller, &app, &Subject::User(user.clone()))?;
        // A malformed id answers like another user's: 404.
        let id = session_id.ok_or(AnalyticsError::SessionNotFound)?;
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
                self.count_step();
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
        Ok(self.pages.write(visit.0)?)
    }

    /// Whether `caller` may track page visits at all: anyone with a token,
    /// and anonymous callers (`None`) only with public tracking (else
    /// 401). [`check_page_visit`](Self::check_page_visit) asks it first;
    /// an edge asks it before parsing the request, so that an anonymous
    /// caller is refused before any 422.
    pub fn may_track_pages(&self, caller: Option<&Caller>) -> Result<(), AnalyticsError> {
        if caller.is_none() && !self.settings.public_tracking {
            return Err(AnalyticsError::Unauthenticated);
        }
        Ok(())
    }

    /// Authorizes a parsed page visit without any I/O: whether an
    /// anonymous visit is allowed, and that a caller's token covers the
    /// user and app. The visit gets its id, and the server's
    /// clock as its time when the request has none.
    pub fn check_page_visit(
        &self,
        caller: Option<&Caller>,
        req: TrackPageRequest,
    ) -> Result<VisitRequest, AnalyticsError> {
        self.may_track_pages(caller)?;
        let TrackPageRequest { user, page, timespent, app, session_id, time: at } = req;
        let user = user.to_lowercase();
        if let Some(caller) = caller {
            authorize(caller, &app, &Subject::User(user.clone()))?;
        }
        Ok(VisitRequest(PageVisit {
            id: kernel::new_id(),
            app: app.into_inner(),
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
        PageCommit(self.pages.submit(visit.0))
    }

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
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Barrier};
    use std::task::{Context, Poll};
    use std::thread::JoinHandle;

    use kernel::{Clock, Duration, Uuid, format_hms};

    use super::*;
    use crate::fake::*;
    use crate::{EventSpan, RawStart, RawTrackPage, Readiness, TrackState, TrackingStore};

    fn join_all<T>(handles: Vec<JoinHandle<T>>) -> Vec<T> {
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
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

    #[test]
    fn start_validates_and_authorizes() {
        let f = fixture();
        let s =
            ok(f.svc.start_raw(&alice(), start_req("ALICE", "2024-01-01T12:00:00.123456+01:00")));
        assert_eq!(s.user, "alice");
        assert_eq!(s.app, "web");
        assert_eq!(s.state, TrackState::Active);
        assert_eq!(s.started_at, at("2024-01-01T11:00:00.123Z"), "kept to milliseconds");
        assert!(lock(&f.store.sessions).contains_key(&s.id));

        // Defaults to the clock; status "active" is accepted.
        let req = RawStart {
            user: "alice".into(),
            app: "web".into(),
            time: None,
            status: Some("active".into()),
        };
        assert_eq!(ok(f.svc.start_raw(&alice(), req)).started_at, f.clock.now());

        let bad = RawStart {
            user: "a".into(),
            app: "we b".into(),
            time: Some("2024-01-01T12:00:00".into()),
            status: Some("paused".into()),
        };
        assert_eq!(
            fields(f.svc.start_raw(&alice(), bad).expect_err("invalid")),
            ["app", "status", "time", "user"]
        );
        assert!(matches!(
            f.svc.start_raw(&alice(), start_req("bob", "2024-01-01T12:00:00Z")),
            Err(AnalyticsError::Forbidden(_))
        ));
        let mut other_app = start_req("alice", "2024-01-01T12:00:00Z");
        other_app.app = "mobile".into();
        assert!(matches!(f.svc.start_raw(&alice(), other_app), Err(AnalyticsError::Forbidden(_))));
        // Admins may start for anyone in any app, but not for "all".
        assert_eq!(
            ok(f.svc.start_raw(&admin(), start_req("Bob", "2024-01-01T12:00:00Z"))).user,
            "bob"
        );
        assert_eq!(
            fields(
                f.svc
                    .start_raw(&admin(), start_req("all", "2024-01-01T12:00:00Z"))
                    .expect_err("all")
            ),
            ["user"]
        );
    }

    #[test]
    fn the_state_machine_through_the_service() {
        let f = fixture();
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let p = ok(f.svc.pause_raw(&alice(), step_req("alice", s.id, "2024-01-01T09:30:00Z")));
        assert_eq!(p.state, TrackState::Paused);
        assert!(matches!(
            f.svc.pause_raw(&alice(), step_req("alice", s.id, "2024-01-01T09:31:00Z")),
            Err(AnalyticsError::InvalidTransition { action: "pause", state: "paused" })
        ));
        assert_eq!(
            fields(
                f.svc
                    .resume_raw(&alice(), step_req("alice", s.id, "2024-01-01T09:29:00Z"))
                    .expect_err("back in time")
            ),
            ["time"]
        );
        ok(f.svc.resume_raw(&alice(), step_req("alice", s.id, "2024-01-01T09:45:00Z")));
        let e = ok(f.svc.end_raw(&alice(), step_req("alice", s.id, "2024-01-01T10:30:00Z")));
        assert_eq!(e.state, TrackState::Ended);
        assert_eq!(e.duration_secs().map(format_hms), Some("01:15:00".into()));
        assert!(matches!(
            f.svc.end_raw(&alice(), step_req("alice", s.id, "2024-01-01T11:00:00Z")),
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
        let z = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-01-02T09:00:00Z")));
        ok(f.svc.end_raw(&alice(), step_req("alice", z.id, "2024-01-02T09:00:00Z")));
        assert_eq!(lock(&f.store.intervals).len(), 2);
    }

    #[test]
    fn sessions_of_others_are_not_found() {
        let f = fixture();
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let bob = caller("bob", "web", false);
        let not_found = |r: Result<TrackedSession, AnalyticsError>| {
            assert!(matches!(r, Err(AnalyticsError::SessionNotFound)), "{r:?}");
        };
        not_found(f.svc.pause_raw(&bob, step_req("bob", s.id, "2024-01-01T09:10:00Z")));
        not_found(
            f.svc.pause_raw(&alice(), step_req("alice", Uuid::nil(), "2024-01-01T09:10:00Z")),
        );
        let mut malformed = step_req("alice", s.id, "2024-01-01T09:10:00Z");
        malformed.session_id = "not-a-uuid".into();
        not_found(f.svc.pause_raw(&alice(), malformed));
        // Admins act on any user's session of the app named, not of another app.
        let mut elsewhere = step_req("alice", s.id, "2024-01-01T09:10:00Z");
        elsewhere.app = "mobile".into();
        not_found(f.svc.pause_raw(&admin(), elsewhere));
        assert_eq!(
            ok(f.svc.pause_raw(&admin(), step_req("someone", s.id, "2024-01-01T09:10:00Z"))).state,
            TrackState::Paused
        );
        // Another user's id with the wrong user: authorization comes first.
        assert!(matches!(
            f.svc.resume_raw(&alice(), step_req("bob", s.id, "2024-01-01T09:20:00Z")),
            Err(AnalyticsError::Forbidden(_))
        ));
    }

    #[test]
    fn a_lost_race_is_retried_and_decided_again() {
        let f = fixture();
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        // Someone else paused first: our identical pause becomes a 409.
        *lock(&f.store.race_once) = Some(EventKind::Pause);
        let r = f.svc.pause_raw(&alice(), step_req("alice", s.id, "2024-01-01T09:30:00Z"));
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
        let e = ok(f.svc.end_raw(&alice(), step_req("alice", s.id, "2024-01-01T10:00:00Z")));
        assert_eq!(e.state, TrackState::Ended);
        assert_eq!(f.store.cas_calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn concurrent_identical_steps_yield_one_success() {
        let f = Arc::new(fixture());
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (f, barrier) = (f.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    f.svc
                        .pause_raw(&alice(), step_req("alice", s.id, "2024-01-01T09:30:00Z"))
                        .is_ok()
                })
            })
            .collect();
        let wins = join_all(handles).into_iter().filter(|won| *won).count();
        assert_eq!(wins, 1);
        // The losers were told 409, and the session was paused exactly once.
        assert_eq!(lock(&f.store.intervals).len(), 1);
    }

    #[test]
    fn track_page_checks_access_and_fields() {
        let f = fixture_with(false);
        assert!(matches!(
            f.svc.track_page_raw(None, visit("alice", "/x")),
            Err(AnalyticsError::Unauthenticated)
        ));
        let parsed = ok(TrackPageRequest::parse(visit("alice", "/x"), f.svc.now()));
        assert!(matches!(
            f.svc.check_page_visit(None, parsed),
            Err(AnalyticsError::Unauthenticated)
        ));
        let v = ok(f.svc.track_page_raw(Some(&alice()), visit("Alice", "/dashboard")));
        assert_eq!((v.user.as_str(), v.page.as_str(), v.timespent), ("alice", "/dashboard", 120));
        assert_eq!(v.at, f.clock.now());
        assert_eq!(lock(&f.store.visits).len(), 1);
        assert!(matches!(
            f.svc.track_page_raw(Some(&alice()), visit("bob", "/x")),
            Err(AnalyticsError::Forbidden(_))
        ));
        let bad = RawTrackPage {
            user: "all".into(),
            page: "x".into(),
            timespent: None,
            app: "".into(),
            session_id: Some("nope".into()),
            time: Some("noon".into()),
        };
        let e = f.svc.track_page_raw(Some(&alice()), bad).expect_err("invalid");
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
            fields(f.svc.track_page_raw(Some(&alice()), big).expect_err("range")),
            ["timespent"]
        );
    }

    #[test]
    fn track_page_session_must_be_the_users() {
        let f = fixture();
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let mut v = visit("alice", "/a");
        v.session_id = Some(s.id.to_string());
        v.time = Some("2024-01-01T09:05:00+02:00".into());
        let stored = ok(f.svc.track_page_raw(None, v));
        assert_eq!(stored.session_id, Some(s.id));
        assert_eq!(stored.at, at("2024-01-01T07:05:00Z"));
        let mut v = visit("bob", "/a");
        v.session_id = Some(s.id.to_string());
        assert!(matches!(f.svc.track_page_raw(None, v), Err(AnalyticsError::SessionNotFound)));
        let mut v = visit("alice", "/a");
        v.session_id = Some(Uuid::nil().to_string());
        assert!(matches!(f.svc.track_page_raw(None, v), Err(AnalyticsError::SessionNotFound)));
    }

    #[test]
    fn only_a_visit_naming_a_session_needs_the_store_before_it_is_queued() {
        let f = fixture();
        let s = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-01-01T09:00:00Z")));
        let to_confirm = |v| match ok(f.svc.check_page_visit_raw(None, v)).ready() {
            Readiness::SessionToConfirm(req) => req,
            Readiness::Ready(v) => panic!("the session is to be confirmed: {v:?}"),
        };
        assert!(matches!(
            ok(f.svc.check_page_visit_raw(None, visit("alice", "/a"))).ready(),
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
    fn idle_sessions_are_closed_at_their_last_event() {
        let f = fixture();
        // Clock: 2024-06-01T12:00Z; idle timeout 12 h. Every event arrives
        // now, whatever time it carries (an offline client catching up).
        let old = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-05-31T23:59:59.999Z")));
        let paused = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-05-31T20:00:00Z")));
        ok(f.svc.pause_raw(&alice(), step_req("alice", paused.id, "2024-05-31T21:00:00Z")));
        // Just arrived: nothing is idle, however old the times are.
        assert_eq!(ok(f.svc.close_idle_sessions()), 0);

        // 11 h later a new event arrives for a third session.
        f.clock.advance(Duration::hours(11));
        let fresh = ok(f.svc.start_raw(&alice(), start_req("alice", "2024-06-01T01:00:00Z")));
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
        ok(f.svc.start_raw(&alice(), start_req("alice", "2024-06-01T12:05:00Z")));
        match f.svc.start_raw(&alice(), start_req("alice", "2024-06-01T12:05:00.001Z")) {
            Err(AnalyticsError::Invalid(v)) => {
                assert_eq!(v.iter().collect::<Vec<_>>(), [("time", "is in the future")]);
            }
            other => panic!("expected 422 on time, got {other:?}"),
        }
        // Back-dated events are fine: offline clients catch up.
        ok(f.svc.start_raw(&alice(), start_req("alice", "2020-01-01T00:00:00Z")));
    }
}
