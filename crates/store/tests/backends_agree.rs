//! Where one algorithm is written twice, once in PL/pgSQL for PostgreSQL
//! and once in Rust for SQLite, the two must give the same answers: these
//! tests run the same inputs through a fresh SQLite file and a fresh
//! PostgreSQL schema and compare what each leaves behind, step by step.
//!
//! - Page ingest and folds (`sessiond_track_visits` and
//!   `sessiond_fold_pages` against the SQLite writers): the same
//!   aggregates and watermarks after every batch and every fold step,
//!   with visits on day and bucket edges, given in other UTC offsets,
//!   before the epoch, more in one millisecond than a step's budget, and
//!   dated below the watermark.
//! - Refresh-token rotation (`sessiond_rotate_refresh` against the Rust
//!   compare-and-swap, through both `rotate_refresh` and `replace_refresh`):
//!   the same outcomes for a rotation, a reused (superseded) token, an
//!   expired, an ended and an unknown session, and a failing audit insert.
//!
//! Skipped with a loud warning when PostgreSQL is unreachable, unless
//! `CI=true`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use accounts::{NewUser, Role, UserStore};
use analytics::{BUCKET_MS, PageVisit, TrackingStore};
use auth::{AuditAction, AuditEvent, AuditLog, AuditOutcome, AuditQuery, PrincipalStore};
use kernel::{Duration, OffsetDateTime, Uuid, from_millis, to_millis};
use sessions::{DeviceSession, NewSession, SessionState, SessionStore};
use store::{Store, testing};
use time::macros::datetime;
use tokens::RefreshTokenStore;

mod common;

const DAY: i64 = 24 * 3_600_000;

/// A fresh SQLite store and a fresh PostgreSQL one; `None` when PostgreSQL
/// is unreachable outside CI.
fn both() -> Option<[Store; 2]> {
    let pg = common::postgres_store()?;
    Some([common::sqlite_store(), pg])
}

/// A small deterministic generator (no dependency, same sequence on every
/// run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// `n` visits of three apps (whose byte order is not their
/// case-insensitive order) around `day0`: on bucket edges, one
/// millisecond either side of day edges, and anywhere over three days.
fn visits(seed: u64, n: usize, day0: i64) -> Vec<PageVisit> {
    const APPS: [&str; 3] = ["b", "B", "a-z"];
    const USERS: [&str; 3] = ["alice", "bob", "zoë"];
    const PAGES: [&str; 5] = ["/", "/x", "/Y", "/é", "/x/y"];
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let at = match rng.next(3) {
                0 => day0 + (rng.next(3 * 96) as i64) * BUCKET_MS,
                1 => day0 + (rng.next(4) as i64) * DAY - 1 + rng.next(2) as i64,
                _ => day0 + rng.next(3 * DAY as u64) as i64,
            };
            visit(
                APPS[rng.next(3) as usize],
                USERS[rng.next(3) as usize],
                PAGES[rng.next(5) as usize],
                rng.next(600) as i64,
                at,
            )
        })
        .collect()
}

fn visit(app: &str, user: &str, page: &str, timespent: i64, at_ms: i64) -> PageVisit {
    PageVisit {
        id: kernel::new_id(),
        app: app.into(),
        user: user.into(),
        page: page.into(),
        timespent,
        session_id: None,
        at: from_millis(at_ms),
    }
}

/// Records `visits` on every store in batches of 97, comparing the
/// aggregates after each batch.
fn record(stores: &[Store; 2], visits: &[PageVisit], when: &str) {
    for (i, batch) in visits.chunks(97).enumerate() {
        for store in stores {
            store.record_pages(batch).unwrap();
        }
        assert_same(stores, &format!("{when}, batch {i}"));
    }
}

/// Folds every store up to `upto` in steps of `budget` visits, comparing
/// each step's answer and the aggregates after it. Returns the visits
/// folded.
fn fold(stores: &[Store; 2], upto: i64, budget: u32, when: &str) -> i64 {
    let mut total = 0;
    for step in 0.. {
        let answers: Vec<(i64, bool)> = stores
            .iter()
            .map(|s| testing::fold_step(s, from_millis(upto), budget).unwrap())
            .collect();
        assert_eq!(
            answers[0], answers[1],
            "{when}, step {step}: (folded, done), SQLite vs PostgreSQL"
        );
        assert_same(stores, &format!("{when}, step {step}"));
        total += answers[0].0;
        if answers[0].1 {
            break;
        }
    }
    total
}

fn assert_same(stores: &[Store; 2], when: &str) {
    let [sqlite, pg] = stores.each_ref().map(|s| testing::page_aggregates(s).unwrap());
    assert_eq!(sqlite, pg, "{when}: page aggregates, SQLite vs PostgreSQL");
}

#[test]
fn page_folds_agree() {
    let Some(stores) = both() else { return };
    let day0 = to_millis(datetime!(2024-03-31 00:00 UTC));
    let mut first = visits(3, 900, day0);
    // Around the epoch: negative instants floor to the day and bucket
    // before, not towards zero.
    for at in [-DAY - 1, -BUCKET_MS - 1, -BUCKET_MS, -1, 0, 1, BUCKET_MS - 1] {
        first.push(visit("b", "alice", "/epoch", 7, at));
    }
    // Instants given in other offsets: the day is the UTC day (the first
    // is 22:30 UTC on the first day, the second 00:59:59.999 UTC on the
    // second).
    for at in [datetime!(2024-04-01 00:30 +02:00), datetime!(2024-03-31 19:59:59.999 -05:00)] {
        first.push(visit("a-z", "bob", "/offset", 3, to_millis(at)));
    }
    // Thirty visits of one millisecond: a step budget smaller than that
    // cannot end inside it, so the step folds that millisecond whole.
    let same_ms = day0 + DAY + 5 * BUCKET_MS + 11;
    for i in 0..30 {
        first.push(visit("B", "bob", "/same", i, same_ms));
    }
    record(&stores, &first, "first visits");

    // A watermark inside a bucket of the second day, in small steps.
    let w1 = day0 + DAY + 7 * BUCKET_MS + 123;
    let folded = fold(&stores, w1, 13, "fold to w1");
    assert!(folded > 300, "the fold must fold something to compare: {folded}");

    // Late visits: below the watermark (aggregated at ingest), on it, and
    // above it (raw until the next fold); and a new app.
    let mut late = visits(5, 300, day0);
    late.push(visit("b", "zoë", "/late", 9, w1 - 1));
    late.push(visit("b", "zoë", "/late", 9, w1));
    late.push(visit("new", "alice", "/", 1, w1 - 1));
    record(&stores, &late, "late visits");

    // Budgets of one and of ten visits (stuck on the thirty of one
    // millisecond), then everything.
    fold(&stores, day0 + 2 * DAY, 1, "fold to day 2 by 1");
    fold(&stores, day0 + 2 * DAY + 1, 10, "fold past day 2 by 10");
    let rest = fold(&stores, day0 + 10 * DAY, 10_000, "fold everything");
    assert!(rest > 0);
    // Nothing is left to fold: both say so at once.
    assert_eq!(fold(&stores, day0 + 10 * DAY, 10_000, "fold again"), 0);
    let aggregates = testing::page_aggregates(&stores[0]).unwrap();
    let visits_in_totals: i64 = aggregates.totals.iter().filter(|t| t.1 == "*").map(|t| t.3).sum();
    assert_eq!(visits_in_totals, (first.len() + late.len()) as i64);
}

/// What a rotation scenario saw: each call's answer (`None` for an error)
/// with the session's current hash and the lookup of every hash after it.
type Transcript = Vec<(Option<bool>, Option<String>, Vec<Option<(Uuid, Option<OffsetDateTime>)>>)>;

const T0: OffsetDateTime = datetime!(2024-04-05 12:00 UTC);

/// The rotation's path: with its audit record (`PrincipalStore`, a
/// PL/pgSQL function on PostgreSQL) or without (`RefreshTokenStore`, the
/// Rust compare-and-swap on both).
#[derive(Debug, Clone, Copy)]
enum Via {
    Audited,
    Plain,
}

/// The same rotations on `store`: ids, hashes and instants are fixed, so
/// every store and path must write the same transcript.
fn rotations(store: &Store, via: Via, user_id: Uuid, ids: [Uuid; 3]) -> (Transcript, usize) {
    store
        .create(NewUser {
            id: user_id,
            username: accounts::Username::parse("alice").unwrap(),
            email: None,
            name: None,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: Role::user(),
            created_at: T0,
        })
        .unwrap();
    let [live, ended, unknown] = ids;
    let expires_at = T0 + Duration::hours(1);
    for (id, hash) in [(live, "h1"), (ended, "e1")] {
        let session = DeviceSession {
            id,
            user_id,
            app: "default".into(),
            ip_address: None,
            user_agent: None,
            location: None,
            login_method: "password".into(),
            created_at: T0,
            expires_at,
            last_activity: T0,
            state: SessionState::Active,
            ended_at: None,
        };
        store.create_session(&NewSession { session, refresh_hash: hash.into() }).unwrap();
    }
    assert!(store.end_session(ended, SessionState::LoggedOut, T0).unwrap());
    let audit_id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
    let rotate = |session: Uuid, expected: &str, new: &str, at: OffsetDateTime, id: Uuid| {
        let r = match via {
            Via::Audited => {
                let event = AuditEvent {
                    id,
                    at,
                    action: AuditAction::Refresh,
                    user_id: Some(user_id),
                    session_id: Some(session),
                    ip_address: None,
                    user_agent: None,
                    request_id: None,
                    outcome: AuditOutcome::Success,
                };
                store.rotate_refresh(session, expected, new, at, &event)
            }
            Via::Plain => store.replace_refresh(session, expected, new, at),
        };
        r.ok()
    };
    let t = |min: i64| T0 + Duration::minutes(min);
    let next_id = |n: u128| Uuid::from_u128(audit_id.as_u128() + n);
    let steps = [
        // A rotation.
        (live, "h1", "h2", t(1), audit_id),
        // The superseded token again (reuse): refused, nothing written.
        (live, "h1", "h3", t(2), next_id(1)),
        // The current token, but the audit id is taken: all or nothing
        // (an error with the audit record, a swap without).
        (live, "h2", "h3", t(3), audit_id),
        // The last millisecond before expiry, then expiry itself.
        (live, "h2", "h4", expires_at - Duration::milliseconds(1), next_id(2)),
        (live, "h3", "h4", expires_at - Duration::milliseconds(1), next_id(3)),
        (live, "h4", "h5", expires_at, next_id(4)),
        // An ended session, and one that never was.
        (ended, "e1", "e2", t(4), next_id(5)),
        (unknown, "h1", "u2", t(5), next_id(6)),
    ];
    let hashes = ["h1", "h2", "h3", "h4", "h5", "e1", "e2", "u2"];
    let transcript = steps
        .into_iter()
        .map(|(session, expected, new, at, id)| {
            let answer = rotate(session, expected, new, at, id);
            let lookups = hashes
                .iter()
                .map(|h| store.find_refresh(h).unwrap().map(|r| (r.session_id, r.superseded_at)))
                .collect();
            (answer, store.current_refresh(live).unwrap(), lookups)
        })
        .collect();
    let query = AuditQuery { action: Some(AuditAction::Refresh), limit: 100, ..Default::default() };
    (transcript, store.list_events(&query).unwrap().len())
}

#[test]
fn refresh_rotation_agrees() {
    let user_id = kernel::new_id();
    let ids = [kernel::new_id(), kernel::new_id(), kernel::new_id()];
    for via in [Via::Audited, Via::Plain] {
        let Some(stores) = both() else { return };
        let [sqlite, pg] = stores.each_ref().map(|s| rotations(s, via, user_id, ids));
        assert_eq!(sqlite, pg, "{via:?}: SQLite vs PostgreSQL");
        // Not vacuous: the rotations that win are the expected ones (the
        // one refused for its taken audit id wins without an audit).
        let wins = match via {
            Via::Audited => 2,
            Via::Plain => 3,
        };
        assert_eq!(sqlite.0.iter().filter(|step| step.0 == Some(true)).count(), wins, "{via:?}");
        let errors = sqlite.0.iter().filter(|step| step.0.is_none()).count();
        assert_eq!(errors, usize::from(matches!(via, Via::Audited)), "{via:?}");
    }
}
