//! Tracked sessions: the state machine and its arithmetic.

use kernel::{OffsetDateTime, Uuid, Violations};

use crate::AnalyticsError;
use crate::ports::{Interval, TrackEvent};

/// Where a tracked session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackState {
    /// Counting time.
    Active,
    /// Not counting time until resumed.
    Paused,
    /// Over (terminal).
    Ended,
}

impl TrackState {
    /// Wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Ended => "ended",
        }
    }

    /// Parses the wire and storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "paused" => Self::Paused,
            "ended" => Self::Ended,
            _ => return None,
        })
    }
}

/// The events of a tracked session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Opened.
    Start,
    /// Active → paused.
    Pause,
    /// Paused → active.
    Resume,
    /// Active or paused → ended.
    End,
}

impl EventKind {
    /// Wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::End => "end",
        }
    }

    /// Parses the wire and storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "start" => Self::Start,
            "pause" => Self::Pause,
            "resume" => Self::Resume,
            "end" => Self::End,
            _ => return None,
        })
    }
}

/// A tracked usage session of `(app, user)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedSession {
    /// Id (UUID v7).
    pub id: Uuid,
    /// Application.
    pub app: String,
    /// Username, lowercased (usernames compare case-insensitively).
    pub user: String,
    /// Current state.
    pub state: TrackState,
    /// Start event time.
    pub started_at: OffsetDateTime,
    /// Time of the latest event (start, pause, resume or end).
    pub last_event_at: OffsetDateTime,
    /// When the latest event ARRIVED, by the server's clock: the sweeper
    /// measures inactivity from it, so a back-dated event (an offline
    /// client catching up) does not get its session closed at once.
    pub last_seen_at: OffsetDateTime,
    /// Start of the running active interval, while active.
    pub active_since: Option<OffsetDateTime>,
    /// Active time of the closed intervals so far, ms; the duration once
    /// ended.
    pub active_ms: i64,
    /// End time, once ended.
    pub ended_at: Option<OffsetDateTime>,
    /// Number of events so far (the start is event 0).
    pub events: i32,
}

/// The outcome of applying an event: the new session and the active
/// interval the event closed, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The session after the event.
    pub after: TrackedSession,
    /// The interval closed by a pause or an end of an active session.
    pub closed: Option<Interval>,
}

/// One page visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageVisit {
    /// Id (UUID v7).
    pub id: Uuid,
    /// Application.
    pub app: String,
    /// Username, lowercased.
    pub user: String,
    /// Page path, starting with `/`.
    pub page: String,
    /// Seconds spent, 0–86400.
    pub timespent: i64,
    /// The tracked session it belongs to, if given.
    pub session_id: Option<Uuid>,
    /// Visit time.
    pub at: OffsetDateTime,
}

impl TrackedSession {
    /// A new session of `(app, user)` started at `at`: active, one event
    /// (the start), no active time yet. `user` is lowercased.
    pub fn start(
        id: Uuid,
        app: impl Into<String>,
        user: impl Into<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            app: app.into(),
            user: user.into().to_ascii_lowercase(),
            state: TrackState::Active,
            started_at: at,
            last_event_at: at,
            last_seen_at: at,
            active_since: Some(at),
            active_ms: 0,
            ended_at: None,
            events: 1,
        }
    }

    /// Applies an event at `at` (the state machine):
    ///
    /// ```text
    /// active --pause--> paused --resume--> active
    /// active | paused --end--> ended
    /// ```
    ///
    /// Any other step (a second start, anything after the end, pausing a
    /// paused session, resuming an active one) is
    /// [`AnalyticsError::InvalidTransition`]; checked before the time, so a
    /// step that is never allowed answers 409 whatever its time. An `at`
    /// earlier than the last event is [`AnalyticsError::Invalid`] on
    /// `time`. A pause or end of an active session closes the running
    /// interval `[active_since, at)`: its length is added to `active_ms`
    /// and it is returned in [`Transition::closed`].
    pub fn apply(&self, kind: EventKind, at: OffsetDateTime) -> Result<Transition, AnalyticsError> {
        use TrackState::{Active, Ended, Paused};
        let refuse = || AnalyticsError::InvalidTransition {
            action: kind.as_str(),
            state: self.state.as_str(),
        };
        let target = match (kind, self.state) {
            (EventKind::Pause, Active) => Paused,
            (EventKind::Resume, Paused) => Active,
            (EventKind::End, Active | Paused) => Ended,
            _ => return Err(refuse()),
        };
        if at < self.last_event_at {
            return Err(AnalyticsError::Invalid(Violations::one(
                "time",
                "is earlier than the session's last event",
            )));
        }
        let closed = match (self.state, self.active_since) {
            (Active, Some(from)) if target != Active => Some(Interval { from, to: at }),
            _ => None,
        };
        let mut after = self.clone();
        after.state = target;
        after.last_event_at = at;
        after.events = self.events.saturating_add(1);
        after.active_since = (target == Active).then_some(at);
        if let Some(interval) = closed {
            after.active_ms = after.active_ms.saturating_add(interval.duration_ms());
        }
        if target == Ended {
            after.ended_at = Some(at);
        }
        Ok(Transition { after, closed })
    }

    /// Active time so far in ms, counting a running interval up to `now`
    /// (never less than the closed intervals).
    pub fn active_ms_at(&self, now: OffsetDateTime) -> i64 {
        let running = match (self.state, self.active_since) {
            (TrackState::Active, Some(from)) if now > from => {
                Interval { from, to: now }.duration_ms()
            }
            _ => 0,
        };
        self.active_ms.saturating_add(running)
    }

    /// The duration in whole seconds (rounded down) once ended; `None`
    /// while open.
    pub fn duration_secs(&self) -> Option<i64> {
        (self.state == TrackState::Ended).then_some(self.active_ms.div_euclid(1000))
    }
}

impl Transition {
    /// The event record of this transition (its `seq` is the number of
    /// events before it), as [`crate::TrackingStore::apply_transition`]
    /// appends it.
    pub fn event(&self, kind: EventKind) -> TrackEvent {
        TrackEvent {
            session_id: self.after.id,
            seq: self.after.events.saturating_sub(1),
            kind,
            at: self.after.last_event_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn session() -> TrackedSession {
        TrackedSession::start(Uuid::nil(), "app", "Alice", datetime!(2024-01-01 9:00 UTC))
    }

    fn refused(s: &TrackedSession, kind: EventKind) -> (&'static str, &'static str) {
        match s.apply(kind, s.last_event_at) {
            Err(AnalyticsError::InvalidTransition { action, state }) => (action, state),
            other => panic!("expected a refused {kind:?}, got {other:?}"),
        }
    }

    fn step(s: &TrackedSession, kind: EventKind, at: OffsetDateTime) -> Transition {
        s.apply(kind, at).expect("allowed step")
    }

    #[test]
    fn a_new_session_is_active_with_one_event() {
        let s = session();
        assert_eq!(s.state, TrackState::Active);
        assert_eq!(s.user, "alice");
        assert_eq!(s.active_since, Some(s.started_at));
        assert_eq!((s.events, s.active_ms, s.ended_at), (1, 0, None));
    }

    #[test]
    fn pause_closes_the_running_interval() {
        let s = session();
        let t = step(&s, EventKind::Pause, datetime!(2024-01-01 9:30 UTC));
        assert_eq!(t.after.state, TrackState::Paused);
        assert_eq!(t.after.active_since, None);
        assert_eq!(t.after.active_ms, 30 * 60_000);
        assert_eq!(t.after.last_event_at, datetime!(2024-01-01 9:30 UTC));
        assert_eq!(
            t.closed,
            Some(Interval {
                from: datetime!(2024-01-01 9:00 UTC),
                to: datetime!(2024-01-01 9:30 UTC)
            })
        );
        assert_eq!(
            t.event(EventKind::Pause),
            TrackEvent {
                session_id: s.id,
                seq: 1,
                kind: EventKind::Pause,
                at: t.after.last_event_at
            }
        );
    }

    #[test]
    fn resume_reopens_without_closing_anything() {
        let p = step(&session(), EventKind::Pause, datetime!(2024-01-01 9:30 UTC)).after;
        let t = step(&p, EventKind::Resume, datetime!(2024-01-01 9:45 UTC));
        assert_eq!(t.after.state, TrackState::Active);
        assert_eq!(t.after.active_since, Some(datetime!(2024-01-01 9:45 UTC)));
        assert_eq!(t.after.active_ms, 30 * 60_000);
        assert_eq!(t.closed, None);
        assert_eq!(t.event(EventKind::Resume).seq, 2);
    }

    #[test]
    fn end_from_active_closes_the_interval() {
        let t = step(&session(), EventKind::End, datetime!(2024-01-01 10:00 UTC));
        assert_eq!(t.after.state, TrackState::Ended);
        assert_eq!(t.after.ended_at, Some(datetime!(2024-01-01 10:00 UTC)));
        assert_eq!(t.after.active_since, None);
        assert_eq!(t.after.active_ms, 3_600_000);
        assert_eq!(t.after.duration_secs(), Some(3600));
        assert!(t.closed.is_some());
    }

    #[test]
    fn end_from_paused_closes_nothing() {
        let p = step(&session(), EventKind::Pause, datetime!(2024-01-01 9:10 UTC)).after;
        let t = step(&p, EventKind::End, datetime!(2024-01-01 12:00 UTC));
        assert_eq!(t.after.state, TrackState::Ended);
        assert_eq!(t.closed, None);
        assert_eq!(t.after.active_ms, 10 * 60_000);
        assert_eq!(t.after.ended_at, Some(datetime!(2024-01-01 12:00 UTC)));
    }

    #[test]
    fn every_other_step_is_refused() {
        let active = session();
        let paused = step(&active, EventKind::Pause, active.started_at).after;
        let ended = step(&active, EventKind::End, active.started_at).after;
        assert_eq!(refused(&active, EventKind::Start), ("start", "active"));
        assert_eq!(refused(&active, EventKind::Resume), ("resume", "active"));
        assert_eq!(refused(&paused, EventKind::Start), ("start", "paused"));
        assert_eq!(refused(&paused, EventKind::Pause), ("pause", "paused"));
        for kind in [EventKind::Start, EventKind::Pause, EventKind::Resume, EventKind::End] {
            assert_eq!(refused(&ended, kind), (kind.as_str(), "ended"));
        }
    }

    #[test]
    fn events_may_not_go_back_in_time() {
        let s = session();
        match s.apply(EventKind::Pause, datetime!(2024-01-01 8:59:59.999 UTC)) {
            Err(AnalyticsError::Invalid(v)) => {
                assert_eq!(v.iter().map(|(f, _)| f).collect::<Vec<_>>(), ["time"]);
            }
            other => panic!("expected 422, got {other:?}"),
        }
        // The same instant is fine (a zero-length interval).
        let t = step(&s, EventKind::Pause, s.started_at);
        assert_eq!(t.after.active_ms, 0);
        // A refused step is 409 whatever its time.
        let ended = step(&s, EventKind::End, s.started_at).after;
        assert!(matches!(
            ended.apply(EventKind::Pause, datetime!(2000-01-01 0:00 UTC)),
            Err(AnalyticsError::InvalidTransition { .. })
        ));
    }

    #[test]
    fn pauses_do_not_count() {
        // 09:00 start, 09:30 pause, 09:45 resume, 10:30 end: 30 + 45 min.
        let s = session();
        let s = step(&s, EventKind::Pause, datetime!(2024-01-01 9:30 UTC)).after;
        let s = step(&s, EventKind::Resume, datetime!(2024-01-01 9:45 UTC)).after;
        assert_eq!(s.active_ms_at(datetime!(2024-01-01 10:00 UTC)), 45 * 60_000);
        let t = step(&s, EventKind::End, datetime!(2024-01-01 10:30 UTC));
        assert_eq!(
            t.closed,
            Some(Interval {
                from: datetime!(2024-01-01 9:45 UTC),
                to: datetime!(2024-01-01 10:30 UTC)
            })
        );
        assert_eq!(t.after.active_ms, 75 * 60_000);
        assert_eq!(t.after.events, 4);
        assert_eq!(t.event(EventKind::End).seq, 3);
        assert_eq!(t.after.duration_secs().map(kernel::format_hms), Some("01:15:00".into()));
        // Many short pauses: 100 × (1.5 s active + 1 s paused).
        let mut s = session();
        let mut at = s.started_at;
        for _ in 0..100 {
            at += time::Duration::milliseconds(1500);
            s = step(&s, EventKind::Pause, at).after;
            at += time::Duration::seconds(1);
            s = step(&s, EventKind::Resume, at).after;
        }
        let s = step(&s, EventKind::End, at).after;
        assert_eq!(s.active_ms, 150_000);
        assert_eq!(s.duration_secs(), Some(150));
    }

    #[test]
    fn open_sessions_have_no_duration() {
        let s = session();
        assert_eq!(s.duration_secs(), None);
        assert_eq!(s.active_ms_at(datetime!(2024-01-01 9:00:01.5 UTC)), 1500);
        let p = step(&s, EventKind::Pause, datetime!(2024-01-01 9:00:02 UTC)).after;
        assert_eq!(p.active_ms_at(datetime!(2024-01-02 0:00 UTC)), 2000);
    }

    #[test]
    fn names_round_trip() {
        for k in [EventKind::Start, EventKind::Pause, EventKind::Resume, EventKind::End] {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        for s in [TrackState::Active, TrackState::Paused, TrackState::Ended] {
            assert_eq!(TrackState::parse(s.as_str()), Some(s));
        }
        assert_eq!(EventKind::parse("stop"), None);
    }
}
