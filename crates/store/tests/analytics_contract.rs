//! The contract of `analytics::TrackingStore`, held against both databases
//! like `contract.rs`: each test is a function of `&Store`, run on a fresh
//! SQLite file and on a fresh PostgreSQL schema (skipped with a loud
//! warning when PostgreSQL is unreachable, unless `CI=true`).
//!
//! Expected aggregates are computed by hand (session scenarios) or by brute
//! force over the rows the test wrote (page visits).

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Barrier};
use std::thread;

use EventKind::{End, Pause, Resume, Start};
use analytics::{
    BUCKET_MS, EventKind, EventSpan, Interval, MsRange, PagePosition, PageTotal, PageVisit,
    SessionBucket, Subject, TimelinePosition, TrackEvent, TrackState, TrackedSession,
    TrackingStore,
};
use kernel::{Duration, OffsetDateTime, Uuid, to_millis};
use store::Store;
use time::macros::datetime;

mod common;

use common::{postgres_store, sqlite_store};

contract!(
    session_buckets_are_exact,
    sessions_and_events_round_trip,
    transitions_are_compare_and_swap,
    concurrent_transitions_have_one_winner,
    stale_open_sessions_oldest_first,
    page_totals_match_brute_force,
    page_totals_page_by_total_time_then_path,
    folds_keep_page_totals_exact,
    concurrent_page_batches_are_exact,
    timeline_pages_through_ties,
    events_of_reads_only_the_spans,
);

/// A day in milliseconds.
const DAY: i64 = 86_400_000;

/// One hour before a UTC midnight.
const T0: OffsetDateTime = datetime!(2024-04-05 23:00 UTC);

/// `T0` plus `min` minutes.
fn m(min: i64) -> OffsetDateTime {
    T0 + Duration::minutes(min)
}

/// `T0` plus `sec` seconds.
fn s(sec: i64) -> OffsetDateTime {
    T0 + Duration::seconds(sec)
}

/// [`m`] in milliseconds.
fn ms(min: i64) -> i64 {
    to_millis(m(min))
}

/// `min` minutes as milliseconds (durations).
fn mins(min: i64) -> i64 {
    min * 60_000
}

fn range(from: Option<i64>, to: Option<i64>) -> MsRange {
    MsRange { from, to }
}

fn user(name: &str) -> Subject {
    Subject::User(name.into())
}

// ---------------------------------------------------------------- a tiny domain

/// Starts a session (what the domain does on `start`).
fn start(store: &Store, app: &str, user: &str, at: OffsetDateTime) -> TrackedSession {
    start_with_id(store, kernel::new_id(), app, user, at)
}

fn start_with_id(
    store: &Store,
    id: Uuid,
    app: &str,
    user: &str,
    at: OffsetDateTime,
) -> TrackedSession {
    let session = TrackedSession {
        id,
        app: app.into(),
        user: user.into(),
        state: TrackState::Active,
        started_at: at,
        last_event_at: at,
        last_seen_at: at,
        active_since: Some(at),
        active_ms: 0,
        ended_at: None,
        events: 1,
    };
    store.insert_session(&session).unwrap();
    session
}

/// What the domain computes for an event, as if it arrived at its own time.
fn transition(
    s: &TrackedSession,
    kind: EventKind,
    at: OffsetDateTime,
) -> (TrackedSession, TrackEvent, Option<Interval>) {
    let mut t = s.apply(kind, at).expect("tests only make valid steps");
    t.after.last_seen_at = at;
    let event = t.event(kind);
    (t.after, event, t.closed.filter(|i| i.to > i.from))
}

/// The events `[0, n)` of a session.
fn whole(session_id: Uuid, n: i32) -> EventSpan {
    EventSpan { session_id, from_seq: 0, to_seq: n }
}

/// Every event of `s` as read.
fn all(s: &TrackedSession) -> EventSpan {
    whole(s.id, s.events)
}

/// Applies a step that must win.
fn step(store: &Store, s: &TrackedSession, kind: EventKind, at: OffsetDateTime) -> TrackedSession {
    let (after, event, closed) = transition(s, kind, at);
    assert!(store.apply_transition(s, &after, &event, closed).unwrap(), "{kind:?} at {at}");
    after
}

// ---------------------------------------------------------------- sessions

/// A bucket of the scenario, by its start in minutes after `T0`.
fn b(start_min: i64) -> SessionBucket {
    SessionBucket { bucket_ms: ms(start_min), ..SessionBucket::default() }
}

fn active(bucket: SessionBucket, active_ms: i64) -> SessionBucket {
    SessionBucket { active_ms, ..bucket }
}

fn started(bucket: SessionBucket, starts: i64, durations: &[i64]) -> SessionBucket {
    SessionBucket {
        starts,
        ended: durations.len() as i64,
        dur_sum_ms: durations.iter().sum(),
        dur_min_ms: durations.iter().min().copied(),
        dur_max_ms: durations.iter().max().copied(),
        ..bucket
    }
}

fn session_buckets_are_exact(store: &Store) {
    // Minutes after T0 (23:00 UTC); buckets start at 0, 15, 30, 45, 60
    // (midnight), 75, 90, 105.
    // alice S1: active [5, 20) and [40, 70) across midnight, ended: 45 min.
    let s1 = start(store, "app", "alice", m(5));
    let s1 = step(store, &s1, Pause, m(20));
    let s1 = step(store, &s1, Resume, m(40));
    let s1 = step(store, &s1, End, m(70));
    assert_eq!(s1.active_ms, mins(45));
    // alice S2: active [10, 12), ended: 2 min.
    let s2 = start(store, "app", "alice", m(10));
    step(store, &s2, End, m(12));
    // bob S3: active [50, 65), paused, resumed at 80, left open: 15 min so far.
    let s3 = start(store, "app", "bob", m(50));
    let s3 = step(store, &s3, Pause, m(65));
    let s3 = step(store, &s3, Resume, m(80));
    // bob S4: active [76, 77), left paused.
    let s4 = start(store, "app", "bob", m(76));
    step(store, &s4, Pause, m(77));
    // alice S5: active [90.5, 100), ended: 9.5 min.
    let s5 = start(store, "app", "alice", s(90 * 60 + 30));
    step(store, &s5, End, m(100));
    // Elsewhere: must not show.
    let other = start(store, "other", "alice", m(5));
    step(store, &other, End, m(50));

    let all = Subject::All;
    let unbounded = MsRange::default();
    let half = 30_000;
    assert_eq!(
        store.session_buckets("app", &user("alice"), unbounded).unwrap(),
        vec![
            active(started(b(0), 2, &[mins(45), mins(2)]), mins(10 + 2)),
            active(b(15), mins(5)),
            active(b(30), mins(5)),
            active(b(45), mins(15)),
            active(b(60), mins(10)),
            active(started(b(90), 1, &[mins(9) + half]), mins(9) + half),
        ]
    );
    assert_eq!(
        store.session_buckets("app", &user("bob"), unbounded).unwrap(),
        vec![
            active(started(b(45), 1, &[]), mins(10)),
            active(b(60), mins(5)),
            active(started(b(75), 1, &[]), mins(1)),
        ]
    );
    let all_unbounded = vec![
        active(started(b(0), 2, &[mins(45), mins(2)]), mins(12)),
        active(b(15), mins(5)),
        active(b(30), mins(5)),
        active(started(b(45), 1, &[]), mins(15 + 10)),
        active(b(60), mins(10 + 5)),
        active(started(b(75), 1, &[]), mins(1)),
        active(started(b(90), 1, &[mins(9) + half]), mins(9) + half),
    ];
    assert_eq!(store.session_buckets("app", &all, unbounded).unwrap(), all_unbounded);
    assert_eq!(store.session_buckets("nope", &all, unbounded).unwrap(), vec![]);
    assert_eq!(store.session_buckets("app", &user("carol"), unbounded).unwrap(), vec![]);

    // Aligned bounds read whole buckets only.
    assert_eq!(
        store.session_buckets("app", &all, range(Some(ms(45)), Some(ms(75)))).unwrap(),
        all_unbounded[3..5].to_vec()
    );
    assert_eq!(
        store.session_buckets("app", &all, range(Some(ms(-60)), Some(ms(600)))).unwrap(),
        all_unbounded
    );

    // [23:07, 23:52): partial 23:00 and 23:45 buckets recomputed.
    let r1 = range(Some(ms(7)), Some(ms(52)));
    assert_eq!(
        store.session_buckets("app", &user("alice"), r1).unwrap(),
        vec![
            // S2 started at 10 (S1 at 5 did not); active [7, 15) of S1 and
            // [10, 12) of S2.
            active(started(b(0), 1, &[mins(2)]), mins(8 + 2)),
            active(b(15), mins(5)),
            active(b(30), mins(5)),
            // S1's [45, 52).
            active(b(45), mins(7)),
        ]
    );
    assert_eq!(
        store.session_buckets("app", &user("bob"), r1).unwrap(),
        vec![active(started(b(45), 1, &[]), mins(2))]
    );
    assert_eq!(
        store.session_buckets("app", &all, r1).unwrap(),
        vec![
            active(started(b(0), 1, &[mins(2)]), mins(10)),
            active(b(15), mins(5)),
            active(b(30), mins(5)),
            active(started(b(45), 1, &[]), mins(7 + 2)),
        ]
    );

    // Inside one bucket: [00:01, 00:04).
    let r2 = range(Some(ms(61)), Some(ms(64)));
    assert_eq!(store.session_buckets("app", &all, r2).unwrap(), vec![active(b(60), mins(6))]);
    assert_eq!(
        store.session_buckets("app", &user("alice"), r2).unwrap(),
        vec![active(b(60), mins(3))]
    );
    // Across midnight without a whole bucket: [23:58, 00:02).
    let r3 = range(Some(ms(58)), Some(ms(62)));
    assert_eq!(
        store.session_buckets("app", &all, r3).unwrap(),
        vec![active(b(45), mins(4)), active(b(60), mins(4)),]
    );
    // Half-bounded, both sides cut.
    assert_eq!(
        store.session_buckets("app", &user("alice"), range(Some(ms(91)), None)).unwrap(),
        vec![active(b(90), mins(9))]
    );
    assert_eq!(
        store.session_buckets("app", &user("alice"), range(None, Some(ms(6)))).unwrap(),
        vec![active(started(b(0), 1, &[mins(45)]), mins(1))]
    );
    // A start exactly at `to` is excluded, exactly at `from` included.
    assert_eq!(
        store.session_buckets("app", &user("bob"), range(Some(ms(76)), Some(ms(77)))).unwrap(),
        vec![active(started(b(75), 1, &[]), mins(1))]
    );
    assert_eq!(
        store.session_buckets("app", &user("bob"), range(Some(ms(70)), Some(ms(76)))).unwrap(),
        vec![]
    );
    // Empty and reversed ranges.
    assert_eq!(store.session_buckets("app", &all, range(Some(ms(7)), Some(ms(7)))).unwrap(), []);
    assert_eq!(store.session_buckets("app", &all, range(Some(ms(9)), Some(ms(7)))).unwrap(), []);

    // Ending bob's S3 at 110 closes [80, 110) and counts a 45-minute
    // session in its start bucket (23:45).
    let s3 = step(store, &s3, End, m(110));
    assert_eq!(s3.active_ms, mins(45));
    assert_eq!(
        store.session_buckets("app", &user("bob"), unbounded).unwrap(),
        vec![
            active(started(b(45), 1, &[mins(45)]), mins(10)),
            active(b(60), mins(5)),
            active(started(b(75), 1, &[]), mins(1 + 10)),
            active(b(90), mins(15)),
            active(b(105), mins(5)),
        ]
    );
    let all_now = store.session_buckets("app", &all, unbounded).unwrap();
    assert_eq!(all_now[3], active(started(b(45), 1, &[mins(45)]), mins(25)));
    assert_eq!(all_now[0], all_unbounded[0]);
    // The partial window agrees with the stored bucket for the same span.
    assert_eq!(
        store.session_buckets("app", &all, range(Some(ms(45) + 1), Some(ms(60)))).unwrap(),
        vec![active(started(b(45), 1, &[mins(45)]), mins(25) - 1)]
    );
}

fn sessions_and_events_round_trip(store: &Store) {
    let s = start(store, "app", "alice", m(0));
    assert_eq!(store.get_session("app", s.id).unwrap(), Some(s.clone()));
    assert_eq!(store.get_session("other", s.id).unwrap(), None);
    assert_eq!(store.get_session("app", kernel::new_id()).unwrap(), None);
    let s = step(store, &s, Pause, m(1));
    let s = step(store, &s, Resume, m(1));
    let s = step(store, &s, End, m(3));
    assert_eq!(store.get_session("app", s.id).unwrap(), Some(s.clone()));
    assert_eq!(
        (s.state, s.active_ms, s.events, s.ended_at),
        (TrackState::Ended, mins(3), 4, Some(m(3)))
    );

    let t = start(store, "app", "bob", m(2));
    let t = step(store, &t, Pause, m(4));
    let events = store.events_of(&[all(&t), all(&s), whole(kernel::new_id(), 9)]).unwrap();
    let kinds: Vec<(Uuid, i32, EventKind, OffsetDateTime)> =
        events.iter().map(|e| (e.session_id, e.seq, e.kind, e.at)).collect();
    assert_eq!(
        kinds,
        vec![
            (t.id, 0, Start, m(2)),
            (t.id, 1, Pause, m(4)),
            (s.id, 0, Start, m(0)),
            (s.id, 1, Pause, m(1)),
            (s.id, 2, Resume, m(1)),
            (s.id, 3, End, m(3)),
        ]
    );
    assert_eq!(store.events_of(&[]).unwrap(), vec![]);
    // "*" is the all-users subject, never a username.
    let mut star = t.clone();
    star.id = kernel::new_id();
    star.user = "*".into();
    assert!(store.insert_session(&star).is_err());
}

fn transitions_are_compare_and_swap(store: &Store) {
    let s = start(store, "app", "alice", m(0));
    let paused = step(store, &s, Pause, m(10));
    let snapshot = || {
        (
            store.get_session("app", s.id).unwrap(),
            store.events_of(&[whole(s.id, 99)]).unwrap(),
            store.session_buckets("app", &Subject::All, MsRange::default()).unwrap(),
        )
    };
    let before = snapshot();

    // A stale `before` (still active): nothing is written.
    let (after, event, closed) = transition(&s, End, m(20));
    assert!(!store.apply_transition(&s, &after, &event, closed).unwrap());
    assert_eq!(snapshot(), before);

    // Same state and time but another event count (it went away and came
    // back within the millisecond): stale too.
    let resumed = step(store, &paused, Resume, m(10));
    let repaused = step(store, &resumed, Pause, m(10));
    let before = snapshot();
    let (after, event, closed) = transition(&paused, Resume, m(15));
    assert!(!store.apply_transition(&paused, &after, &event, closed).unwrap());
    assert_eq!(snapshot(), before);

    // The current one wins.
    let ended = step(store, &repaused, End, m(30));
    assert_eq!(store.get_session("app", s.id).unwrap(), Some(ended.clone()));
    assert_eq!(store.events_of(&[whole(s.id, 99)]).unwrap().len(), 5);
    assert_eq!(
        store.session_buckets("app", &Subject::All, MsRange::default()).unwrap(),
        vec![active(started(b(0), 1, &[mins(10)]), mins(10))]
    );
    // An ended session takes no more steps.
    let (after, event, closed) = transition(&repaused, Resume, m(40));
    assert!(!store.apply_transition(&repaused, &after, &event, closed).unwrap());
}

fn concurrent_transitions_have_one_winner(store: &Store) {
    const N: usize = 8;
    let s = start(store, "app", "alice", m(0));
    let barrier = Arc::new(Barrier::new(N));
    let outcomes: Vec<(TrackedSession, bool)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                let s = &s;
                scope.spawn(move || {
                    // Each thread ends the session at another minute.
                    let (after, event, closed) = transition(s, End, m(1 + i as i64));
                    barrier.wait();
                    let won = store.apply_transition(s, &after, &event, closed).unwrap();
                    (after, won)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&TrackedSession> =
        outcomes.iter().filter(|(_, won)| *won).map(|(a, _)| a).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = winners[0];
    assert_eq!(store.get_session("app", s.id).unwrap().as_ref(), Some(winner));
    assert_eq!(store.events_of(&[whole(s.id, 99)]).unwrap().len(), 2);
    let d = winner.active_ms;
    assert_eq!(
        store.session_buckets("app", &user("alice"), MsRange::default()).unwrap(),
        vec![active(started(b(0), 1, &[d]), d)]
    );
}

fn stale_open_sessions_oldest_first(store: &Store) {
    let a = start(store, "app", "alice", m(0));
    let a = step(store, &a, Pause, m(30)); // open, last event 30
    let b1 = start(store, "app", "bob", m(10)); // open, last event 10
    let c = start(store, "other", "carol", m(20));
    step(store, &c, End, m(25)); // ended
    let d = start(store, "other", "dave", m(20)); // open, last event 20
    let ids = |v: Vec<TrackedSession>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(store.stale_open_sessions(m(10), 10).unwrap()), Vec::<Uuid>::new());
    assert_eq!(ids(store.stale_open_sessions(m(11), 10).unwrap()), vec![b1.id]);
    assert_eq!(ids(store.stale_open_sessions(m(31), 10).unwrap()), vec![b1.id, d.id, a.id]);
    assert_eq!(ids(store.stale_open_sessions(m(31), 2).unwrap()), vec![b1.id, d.id]);
    let found = store.stale_open_sessions(m(31), 10).unwrap();
    assert_eq!(found[2], a);
    // Ending one removes it.
    step(store, &b1, End, m(10));
    assert_eq!(ids(store.stale_open_sessions(m(31), 10).unwrap()), vec![d.id, a.id]);
}

fn timeline_pages_through_ties(store: &Store) {
    // Ids chosen to straddle the byte order (digits against letters), and
    // v7 ids; most at one millisecond.
    let crafted = [
        0_u128,
        u128::MAX,
        0x0000_0000_0000_7000_8000_0000_0000_0009,
        0x0000_0000_0000_7000_8000_0000_0000_000a,
        0x9fff_ffff_ffff_7fff_bfff_ffff_ffff_ffff,
        0xa000_0000_0000_7000_8000_0000_0000_0000,
        0x0199_0000_0000_7000_8000_0000_0000_0000,
        0x01a0_0000_0000_7000_8000_0000_0000_0000,
    ];
    let tie = T0 + Duration::milliseconds(1);
    let mut mine = Vec::new();
    for (i, raw) in crafted.iter().enumerate() {
        let who = if i % 3 == 2 { "bob" } else { "alice" };
        mine.push(start_with_id(store, Uuid::from_u128(*raw), "app", who, tie));
    }
    for at in [T0, T0 + Duration::milliseconds(2), tie, tie] {
        mine.push(start(store, "app", "alice", at));
    }
    start(store, "other", "alice", tie);
    let key = |s: &TrackedSession| (s.started_at, s.id.to_string());
    mine.sort_by_key(key);

    for (subject, limit) in [(Subject::All, 3), (user("alice"), 2), (user("bob"), 1)] {
        let expected: Vec<TrackedSession> = mine
            .iter()
            .filter(|s| match &subject {
                Subject::User(u) => &s.user == u,
                Subject::All => true,
            })
            .cloned()
            .collect();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.timeline("app", &subject, MsRange::default(), after, limit).unwrap();
            assert!(page.len() <= limit as usize);
            let Some(last) = page.last() else { break };
            after = Some(TimelinePosition { started_at: last.started_at, id: last.id });
            seen.extend(page);
            assert!(seen.len() <= expected.len(), "paging does not end");
        }
        assert_eq!(seen, expected, "{subject:?}");
    }
    // The range is on the start time: [tie, T0 + 2 ms).
    let r = range(Some(to_millis(tie)), Some(to_millis(T0) + 2));
    let page = store.timeline("app", &Subject::All, r, None, 100).unwrap();
    assert_eq!(page.len(), crafted.len() + 2);
    assert!(page.iter().all(|s| s.started_at == tie));
    assert_eq!(store.timeline("app", &Subject::All, r, None, 0).unwrap(), vec![]);
}

/// A detailed timeline reads only the events its page holds: `events_of`
/// returns each span's `[from_seq, to_seq)`, span after span in the order
/// asked, over more spans than one statement takes.
fn events_of_reads_only_the_spans(store: &Store) {
    // alice: 301 events (150 pauses and resumes, one second apart).
    let mut long = start(store, "app", "alice", T0);
    for k in 0..150 {
        long = step(store, &long, Pause, s(2 * k + 1));
        long = step(store, &long, Resume, s(2 * k + 2));
    }
    assert_eq!(long.events, 301);
    let short = step(store, &start(store, "app", "bob", m(1)), Pause, m(2));
    let span = |s: &TrackedSession, from_seq: i32, to_seq: i32| EventSpan {
        session_id: s.id,
        from_seq,
        to_seq,
    };
    let seqs = |events: Vec<TrackEvent>| -> Vec<(Uuid, i32)> {
        events.into_iter().map(|e| (e.session_id, e.seq)).collect()
    };
    let got = store.events_of(&[span(&long, 10, 13), span(&short, 0, 2)]).unwrap();
    assert_eq!(got[0], TrackEvent { session_id: long.id, seq: 10, kind: Resume, at: s(10) });
    assert_eq!(
        seqs(got),
        [(long.id, 10), (long.id, 11), (long.id, 12), (short.id, 0), (short.id, 1)]
    );
    // In the order asked; a span past the end holds what there is; empty
    // spans and unknown sessions hold nothing.
    let got = store.events_of(&[span(&short, 1, 2), span(&long, 295, 1000)]).unwrap();
    let want: Vec<(Uuid, i32)> =
        [(short.id, 1)].into_iter().chain((295..301).map(|q| (long.id, q))).collect();
    assert_eq!(seqs(got), want);
    let nobody = TrackedSession { id: kernel::new_id(), ..short.clone() };
    let got = store.events_of(&[span(&long, 7, 7), span(&nobody, 0, 9), span(&long, 9, 5)]);
    assert_eq!(got.unwrap(), vec![]);

    // 230 sessions (more than one statement's worth of spans), asked for
    // newest first, two events each.
    let mut many: Vec<TrackedSession> = (0..230)
        .map(|i| step(store, &start(store, "many", "carol", m(i)), End, m(i + 1)))
        .collect();
    many.reverse();
    let spans: Vec<EventSpan> = many.iter().map(|s| span(s, 0, 2)).collect();
    let want: Vec<(Uuid, i32)> = many.iter().flat_map(|s| [(s.id, 0), (s.id, 1)]).collect();
    assert_eq!(seqs(store.events_of(&spans).unwrap()), want);
    assert_eq!(store.events_of(&[]).unwrap(), vec![]);
}

// ---------------------------------------------------------------- pages

/// A small deterministic generator (no dependency for tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn brute_force(visits: &[PageVisit], app: &str, subject: &Subject, r: MsRange) -> Vec<PageTotal> {
    let mut sums: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for v in visits {
        let at = to_millis(v.at);
        let in_range = r.from.is_none_or(|f| at >= f) && r.to.is_none_or(|t| at < t);
        let mine = match subject {
            Subject::User(u) => &v.user == u,
            Subject::All => true,
        };
        if v.app == app && mine && in_range {
            let e = sums.entry(&v.page).or_default();
            e.0 += 1;
            e.1 += v.timespent;
        }
    }
    let mut out: Vec<PageTotal> = sums
        .into_iter()
        .map(|(page, (visits, time_sum))| PageTotal { page: page.into(), visits, time_sum })
        .collect();
    in_report_order(&mut out);
    out
}

/// The order of the page reports: total time, most first, then path in
/// byte order (Rust's `str` order is byte order).
fn in_report_order(totals: &mut [PageTotal]) {
    totals.sort_by(|a, b| b.time_sum.cmp(&a.time_sum).then_with(|| a.page.cmp(&b.page)));
}

/// Every page of a page report, `limit` a call, each call going on after
/// the last page of the one before; asserts that no call returns more than
/// `limit`, and that only the last returns fewer.
fn paged_totals(
    store: &Store,
    app: &str,
    subject: &Subject,
    r: MsRange,
    limit: u32,
) -> Vec<PageTotal> {
    let mut out = Vec::new();
    let mut after: Option<PagePosition> = None;
    loop {
        let page = store.page_totals(app, subject, r, after.as_ref(), limit).unwrap();
        assert!(page.len() <= limit as usize, "{} > {limit}", page.len());
        let last = page.len() < limit as usize;
        after = page.last().map(PageTotal::position);
        out.extend(page);
        if last {
            return out;
        }
        assert!(out.len() < 1_000_000, "paging does not end");
    }
}

/// Every page of a page report in one call (they are few in these tests).
fn totals(store: &Store, app: &str, subject: &Subject, r: MsRange) -> Vec<PageTotal> {
    let all = store.page_totals(app, subject, r, None, 1000).unwrap();
    assert!(all.len() < 1000, "more pages than one call holds");
    all
}

/// `n` visits over the three days from `day0`: a third of them on bucket
/// edges (and some on day edges), the rest anywhere to the millisecond;
/// one in ten is of the app "other".
fn random_visits(seed: u64, n: usize, day0: i64) -> Vec<PageVisit> {
    let users = ["alice", "bob", "carol"];
    let pages = ["/", "/a", "/b", "/c/d", "/e?x=1"];
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let at = match i % 3 {
                0 => day0 + (rng.next(3 * 96) as i64) * BUCKET_MS,
                1 => day0 + (rng.next(4) as i64) * DAY - 1 + rng.next(2) as i64,
                _ => day0 + rng.next(3 * DAY as u64) as i64,
            };
            PageVisit {
                id: kernel::new_id(),
                app: if i % 10 == 9 { "other".into() } else { "app".into() },
                user: users[rng.next(3) as usize].into(),
                page: pages[rng.next(5) as usize].into(),
                timespent: rng.next(86_401) as i64,
                session_id: (i % 4 == 0).then(kernel::new_id),
                at: kernel::from_millis(at),
            }
        })
        .collect()
}

/// Writes `visits` in batches of uneven sizes, many duplicate keys within
/// each.
fn record_in_batches(store: &Store, visits: &[PageVisit]) {
    let mut rest = visits;
    for size in [1, 97, 400, 2, 1000].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (batch, tail) = rest.split_at(size.min(rest.len()));
        store.record_pages(batch).unwrap();
        rest = tail;
    }
}

/// Ranges around `day0` that read every part of the store: all time, whole
/// days, whole buckets, ranges cut anywhere, exactly at `edge` (a visit's
/// instant), half-bounded and empty ones.
fn page_ranges(day0: i64, edge: i64) -> [MsRange; 16] {
    let q = |at: i64| Some(at);
    [
        MsRange::default(),
        // Whole days.
        range(q(day0 + DAY), q(day0 + 3 * DAY)),
        range(q(day0), q(day0 + DAY)),
        // Whole buckets.
        range(q(day0 + 5 * BUCKET_MS), q(day0 + DAY + 9 * BUCKET_MS)),
        // Arbitrary, across days, inside a day, inside a bucket, across one
        // bucket edge only.
        range(q(day0 + 13 * 3_600_000 + 433_500), q(day0 + 2 * DAY + 5 * 3_600_000 + 3)),
        range(q(day0 + DAY + 1), q(day0 + 2 * DAY - 1)),
        range(q(day0 + 7 * BUCKET_MS + 10), q(day0 + 7 * BUCKET_MS + 500_000)),
        range(q(day0 + 8 * BUCKET_MS - 5000), q(day0 + 8 * BUCKET_MS + 5000)),
        range(q(edge), q(edge + 1)),
        range(q(edge - 1), q(edge)),
        // Half-bounded.
        range(q(day0 + DAY + 12_345), None),
        range(None, q(day0 + 2 * DAY - BUCKET_MS - 77)),
        range(None, q(day0 + DAY)),
        // Empty.
        range(q(day0 + DAY), q(day0 + DAY)),
        range(q(day0 + DAY), q(day0)),
        range(q(day0 + 10 * DAY), None),
    ]
}

/// Every report of [`page_ranges`] for everyone and some users of "app",
/// and all time of "other", against brute force over `visits`: in one
/// call, and two pages a call.
fn assert_page_totals(store: &Store, visits: &[PageVisit], day0: i64, edge: i64, when: &str) {
    for subject in [Subject::All, user("alice"), user("bob"), user("nobody")] {
        for r in page_ranges(day0, edge) {
            let expected = brute_force(visits, "app", &subject, r);
            let ctx = format!("{when}: {subject:?} {r:?}");
            assert_eq!(totals(store, "app", &subject, r), expected, "{ctx}");
            assert_eq!(paged_totals(store, "app", &subject, r, 2), expected, "{ctx}, by 2");
        }
    }
    let expected = brute_force(visits, "other", &Subject::All, MsRange::default());
    assert_eq!(
        totals(store, "other", &Subject::All, MsRange::default()),
        expected,
        "{when}: other"
    );
}

fn page_totals_match_brute_force(store: &Store) {
    let day0 = to_millis(datetime!(2024-04-05 00:00 UTC));
    let visits = random_visits(7, 1500, day0);
    record_in_batches(store, &visits);
    store.record_pages(&[]).unwrap();
    let edge = to_millis(visits[4].at); // a visit exactly on a bound
    assert_page_totals(store, &visits, day0, edge, "unfolded");
    let expected = brute_force(&visits, "other", &Subject::All, MsRange::default());
    assert_eq!(expected.iter().map(|t| t.visits).sum::<i64>(), 150);
    assert_eq!(totals(store, "nope", &Subject::All, MsRange::default()), vec![]);

    // Folded (all of it), the same answers from the aggregates.
    let folded = store.fold_pages(kernel::from_millis(day0 + 4 * DAY)).unwrap();
    assert_eq!(folded, visits.len() as u64);
    assert_page_totals(store, &visits, day0, edge, "folded");

    // A duplicate id fails the whole batch: nothing of it is counted.
    let before = totals(store, "app", &Subject::All, MsRange::default());
    let mut fresh = visits[0].clone();
    fresh.id = kernel::new_id();
    assert!(store.record_pages(&[fresh, visits[1].clone()]).is_err());
    assert_eq!(totals(store, "app", &Subject::All, MsRange::default()), before);
    let ids: HashSet<Uuid> = visits.iter().map(|v| v.id).collect();
    assert_eq!(ids.len(), visits.len());
}

/// A user with more pages than one call holds (issue 17: anyone can track
/// pages for anyone): the store hands them out `limit` at a time, by total
/// time (most first) then path in byte order, each call going on after the
/// previous call's last page; together they are exactly the brute-force
/// totals, whether a page's visits are folded into the aggregates, raw
/// after the watermark, dated before it but written after the fold, or
/// all of these at once.
fn page_totals_page_by_total_time_then_path(store: &Store) {
    let day0 = to_millis(datetime!(2024-06-03 00:00 UTC));
    let mut rng = Lcg(17);
    // 2,600 pages of mallory's, one to three visits each, totals of 0–6
    // seconds (so ties run across every call's edge); paths whose byte
    // order is not a locale's ("/B" < "/a" < "/é"), some 2048 characters
    // long. bob visits some of the same paths.
    let mut visits: Vec<PageVisit> = Vec::new();
    for i in 0..2600 {
        let page = match i % 4 {
            0 => format!("/a/{i}"),
            1 => format!("/B/{i}"),
            2 => format!("/é/{i}"),
            _ => format!("/{i:05}{}", "z".repeat(2042)),
        };
        for _ in 0..=rng.next(3) {
            for who in ["mallory", "mallory", "bob"].iter().take(if i % 7 == 0 { 3 } else { 1 }) {
                visits.push(PageVisit {
                    id: kernel::new_id(),
                    app: "app".into(),
                    user: (*who).into(),
                    page: page.clone(),
                    timespent: rng.next(3) as i64,
                    session_id: None,
                    at: kernel::from_millis(day0 + rng.next(3 * DAY as u64) as i64),
                });
            }
        }
    }
    assert!(visits.iter().any(|v| v.page.chars().count() == 2048));
    // Half written and folded up to the middle of the second day; then the
    // rest, some of it dated before that watermark (late).
    let later = visits.split_off(visits.len() / 2);
    record_in_batches(store, &visits);
    let mark = day0 + DAY + DAY / 2 + 7;
    assert!(store.fold_pages(kernel::from_millis(mark)).unwrap() > 0);
    record_in_batches(store, &later);
    visits.extend(later);
    let straddling = {
        let mut sides: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
        for v in &visits {
            let e = sides.entry(&v.page).or_default();
            if to_millis(v.at) < mark { e.0 = true } else { e.1 = true }
        }
        sides.values().filter(|(a, b)| *a && *b).count()
    };
    assert!(straddling > 100, "pages both folded and raw: {straddling}");

    let cut = range(Some(day0 + 5 * 3_600_000 + 1), Some(day0 + 2 * DAY + 3 * 3_600_000 - 1));
    for subject in [user("mallory"), Subject::All, user("bob")] {
        for r in [MsRange::default(), cut] {
            let expected = brute_force(&visits, "app", &subject, r);
            for limit in [1000, 333] {
                let got = paged_totals(store, "app", &subject, r, limit);
                assert_eq!(got.len(), expected.len(), "{subject:?} {r:?} by {limit}");
                assert!(got == expected, "{subject:?} {r:?} by {limit}: not brute force");
            }
        }
    }
    let mallory = brute_force(&visits, "app", &user("mallory"), MsRange::default());
    assert_eq!(mallory.len(), 2600);
    // A call holds at most `limit`, the first ones in order; after the
    // last page there is nothing; a limit of 0 holds nothing.
    let first = store.page_totals("app", &user("mallory"), MsRange::default(), None, 1000).unwrap();
    assert!(first == mallory[..1000], "the first 1000 in report order");
    let at = |i: usize| Some(mallory[i].position());
    let next = store.page_totals("app", &user("mallory"), MsRange::default(), at(999).as_ref(), 3);
    assert!(next.unwrap() == mallory[1000..1003], "goes on after the position");
    let end = store.page_totals("app", &user("mallory"), MsRange::default(), at(2599).as_ref(), 9);
    assert_eq!(end.unwrap(), vec![]);
    assert_eq!(
        store.page_totals("app", &user("mallory"), MsRange::default(), None, 0).unwrap(),
        vec![]
    );
    // A position between two pages (one that is not a page): the next one.
    let between =
        PagePosition { time_sum: mallory[5].time_sum, page: format!("{}!", mallory[5].page) };
    let got = store.page_totals("app", &user("mallory"), MsRange::default(), Some(&between), 1);
    assert!(got.unwrap() == mallory[6..7]);
}

/// Folds move visits from the raw tail into the aggregates without
/// changing a report: before, between and after folds whose watermarks cut
/// days, buckets and the visits of one millisecond, in steps of any size;
/// visits dated before the watermark (late) and those of an app never seen
/// are counted at once.
fn folds_keep_page_totals_exact(store: &Store) {
    let day0 = to_millis(datetime!(2024-05-01 00:00 UTC));
    let mut visits = random_visits(11, 1200, day0);
    let later = visits.split_off(800);
    record_in_batches(store, &visits);
    let edge = to_millis(visits[4].at);
    let folded_before = |visits: &[PageVisit], upto: i64| {
        visits.iter().filter(|v| to_millis(v.at) < upto).count() as u64
    };

    // A watermark inside a bucket of the second day, in steps of 7.
    let w1 = day0 + DAY + 7 * BUCKET_MS + 123;
    let n = store.fold_pages_in_steps(kernel::from_millis(w1), 7).unwrap();
    assert_eq!(n, folded_before(&visits, w1));
    assert_page_totals(store, &visits, day0, edge, "folded to w1");
    assert_eq!(store.fold_pages_in_steps(kernel::from_millis(w1), 7).unwrap(), 0);
    // A watermark below the current one folds nothing.
    assert_eq!(store.fold_pages(kernel::from_millis(day0)).unwrap(), 0);

    // The rest: some late (before w1, aggregated by their own batch), some
    // not; and twenty visits of one millisecond after w1.
    record_in_batches(store, &later);
    visits.extend(later);
    let same_ms = day0 + 2 * DAY + 5;
    let burst: Vec<PageVisit> = (0..20)
        .map(|i| PageVisit {
            id: kernel::new_id(),
            app: "app".into(),
            user: ["alice", "bob"][i % 2].into(),
            page: "/burst".into(),
            timespent: i as i64,
            session_id: None,
            at: kernel::from_millis(same_ms),
        })
        .collect();
    store.record_pages(&burst).unwrap();
    visits.extend(burst);
    assert_page_totals(store, &visits, day0, same_ms, "late visits");

    // Steps of 3 never split the millisecond of twenty visits, and move on.
    let w2 = same_ms + 1;
    let n = store.fold_pages_in_steps(kernel::from_millis(w2), 3).unwrap();
    let late = visits[800..].iter().filter(|v| to_millis(v.at) < w1).count() as u64;
    assert_eq!(n, folded_before(&visits, w2) - folded_before(&visits[..800], w1) - late);
    assert_page_totals(store, &visits, day0, same_ms, "folded to w2");

    // An app never seen: nothing of it is aggregated until a fold.
    let fresh = PageVisit { app: "fresh".into(), ..visits[0].clone() };
    let fresh = PageVisit { id: kernel::new_id(), ..fresh };
    store.record_pages(std::slice::from_ref(&fresh)).unwrap();
    let only =
        |v: &PageVisit| vec![PageTotal { page: v.page.clone(), visits: 1, time_sum: v.timespent }];
    assert_eq!(totals(store, "fresh", &Subject::All, MsRange::default()), only(&fresh));

    // Everything folded, then a late visit: still exact.
    store.fold_pages(kernel::from_millis(day0 + 4 * DAY)).unwrap();
    assert_page_totals(store, &visits, day0, same_ms, "all folded");
    assert_eq!(totals(store, "fresh", &Subject::All, MsRange::default()), only(&fresh));
    let late = PageVisit { id: kernel::new_id(), ..visits[1].clone() };
    store.record_pages(std::slice::from_ref(&late)).unwrap();
    visits.push(late);
    assert_page_totals(store, &visits, day0, same_ms, "late after all folded");
    assert_eq!(store.fold_pages(kernel::from_millis(day0 + 4 * DAY)).unwrap(), 0);
}

/// Several group-commit writers at once (the service runs two on
/// PostgreSQL), every batch on the same few aggregate rows, and folds
/// meanwhile: none fails (no deadlock, no lost update) and the totals are
/// exact.
fn concurrent_page_batches_are_exact(store: &Store) {
    let day0 = to_millis(datetime!(2024-03-01 00:00 UTC));
    let writers = 4;
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers as u64)
        .map(|w| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                let mut rng = Lcg(w + 11);
                let mut mine = Vec::new();
                barrier.wait();
                for _ in 0..15 {
                    let batch: Vec<PageVisit> = (0..40)
                        .map(|_| PageVisit {
                            id: kernel::new_id(),
                            app: "app".into(),
                            user: ["alice", "bob"][rng.next(2) as usize].into(),
                            page: ["/", "/a", "/b"][rng.next(3) as usize].into(),
                            timespent: rng.next(100) as i64,
                            session_id: None,
                            // Two buckets of one day, and the next day.
                            at: kernel::from_millis(
                                day0 + rng.next(2) as i64 * BUCKET_MS + rng.next(2) as i64 * DAY,
                            ),
                        })
                        .collect();
                    store.record_pages(&batch).unwrap();
                    mine.extend(batch);
                }
                mine
            })
        })
        .collect();
    // A fold runs now and then meanwhile, its watermark moving through the
    // visits' instants, so that batches land on both sides of it.
    let folder = {
        let store = store.clone();
        thread::spawn(move || {
            let mut folded = 0;
            for k in 1..=12 {
                let upto = day0 + k * (2 * DAY + 2 * BUCKET_MS) / 12;
                folded += store.fold_pages_in_steps(kernel::from_millis(upto), 50).unwrap();
                thread::sleep(std::time::Duration::from_millis(5));
            }
            folded
        })
    };
    let visits: Vec<PageVisit> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let folded = folder.join().unwrap();
    assert_eq!(visits.len(), writers * 15 * 40);
    assert!(folded <= visits.len() as u64);
    for subject in [Subject::All, user("alice"), user("bob")] {
        for r in [
            MsRange::default(),
            range(Some(day0), Some(day0 + DAY)),
            range(Some(day0 + BUCKET_MS), Some(day0 + DAY + BUCKET_MS)),
        ] {
            let expected = brute_force(&visits, "app", &subject, r);
            assert_eq!(totals(store, "app", &subject, r), expected, "{subject:?}");
        }
    }
}

// ---------------------------------------------------------------- throughput

/// Page-visit ingest rate through `record_pages` on PostgreSQL (or SQLite
/// with env BACKEND=sqlite), batches of
/// 300 from 4 writers, 1000 users, 50 pages (env WRITERS, BATCH, BATCHES,
/// USERS; `cargo test -p store --release --test
/// analytics_contract -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn record_pages_throughput() {
    let store = if std::env::var("BACKEND").is_ok_and(|b| b == "sqlite") {
        sqlite_store()
    } else {
        let Some(store) = postgres_store() else { return };
        store
    };
    let env = |name: &str, default: usize| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let (writers, batches, batch, users) =
        (env("WRITERS", 4), env("BATCHES", 50), env("BATCH", 300), env("USERS", 1000) as u64);
    let now = to_millis(T0);
    let started = std::time::Instant::now();
    thread::scope(|scope| {
        for w in 0..writers {
            let store = &store;
            scope.spawn(move || {
                let mut rng = Lcg(w as u64 + 1);
                for i in 0..batches {
                    let batch: Vec<PageVisit> = (0..batch)
                        .map(|k| PageVisit {
                            id: kernel::new_id(),
                            app: "app".into(),
                            user: format!("user{}", rng.next(users)),
                            page: format!("/page/{}", rng.next(50)),
                            timespent: rng.next(600) as i64,
                            session_id: None,
                            at: kernel::from_millis(now + (i * batch + k) as i64 * 10),
                        })
                        .collect();
                    store.record_pages(&batch).unwrap();
                }
            });
        }
    });
    let n = writers * batches * batch;
    let secs = started.elapsed().as_secs_f64();
    println!("{n} visits in {secs:.2} s: {:.0} visits/s", n as f64 / secs);
    let total: i64 =
        totals(&store, "app", &Subject::All, MsRange::default()).iter().map(|t| t.visits).sum();
    assert_eq!(total, n as i64);
}
