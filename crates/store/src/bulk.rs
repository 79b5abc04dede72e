//! Bulk loading of tracked sessions, for benchmarks and imports: many
//! sessions with all their events in one transaction, written as what
//! `TrackingStore::insert_session` followed by one
//! `TrackingStore::apply_transition` per event would have left behind
//! (the same session rows, events, interval pieces and `track_buckets`
//! aggregates for the user and for everyone), only with a few multi-row
//! statements instead of several statements per event.
//!
//! Every session is replayed through the domain's state machine
//! ([`TrackedSession::apply`]), so a sequence the service would refuse is
//! refused here too, and the arithmetic (closed intervals, active time,
//! durations) is the domain's. The aggregates are computed with the same
//! helpers as the one-event path (the store's bucket splitting and
//! per-bucket deltas) and added by upserts, so loading into a database that
//! already holds sessions of the same app is fine.
//!
//! [`Store::bulk_create_sessions`] does the same for device sessions: many
//! rows of `device_sessions` as `SessionStore::create_session` would have
//! written them one login at a time (benchmarks: 100,000 live sessions
//! without 100,000 Argon2 hashes).
//!
//! Behind the `bulk` feature (the benchmark enables it): nothing in the
//! server loads in bulk.

use std::collections::BTreeMap;

use analytics::{BUCKET_MS, EventKind, TrackState, TrackedSession};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
use kernel::{OffsetDateTime, Uuid, to_millis, truncate_millis};
use sessions::NewSession;

use crate::Store;
use crate::analytics_store::{
    ALL, BucketDeltas, CHUNK_ROWS, IntervalPieceRow, MERGE_MAX, MERGE_MIN, TrackedSessionRow,
    check_user, floor_to, split_at_buckets, upsert_buckets,
};
use crate::conn::DbConn;
use crate::per_backend;
use crate::schema::{
    device_sessions as ds, tracked_events as te, tracked_intervals as ti, tracked_sessions as ts,
};
use crate::sessions_store::{NewSessionRow, advance_user_activity};

/// Rows per PostgreSQL statement (one array per column, so no limit on
/// parameters; this only bounds the size of one message).
const PG_CHUNK: usize = 50_000;

const PG_INSERT_SESSIONS: &str = "\
INSERT INTO tracked_sessions (id, app, user_name, state, started_at_ms, last_event_at_ms, \
                              last_seen_at_ms, active_since_ms, active_ms, ended_at_ms, events) \
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], \
                     $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int4[])";

const PG_INSERT_EVENTS: &str = "\
INSERT INTO tracked_events (session_id, seq, kind, at_ms) \
SELECT * FROM unnest($1::text[], $2::int4[], $3::text[], $4::int8[])";

const PG_INSERT_PIECES: &str = "\
INSERT INTO tracked_intervals (session_id, app, user_name, bucket_ms, from_ms, to_ms) \
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])";

/// One tracked session to load: who, and every event in order, the first
/// being its start. Times are kept to the store's millisecond precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSession {
    /// Id (UUID v7 in the service; any UUID here).
    pub id: Uuid,
    /// Application.
    pub app: String,
    /// Username (lowercased by the state machine).
    pub user: String,
    /// `(kind, time)` of every event: a start, then pauses, resumes and at
    /// most one end, as the state machine allows them.
    pub events: Vec<(EventKind, OffsetDateTime)>,
    /// When the last event arrived (the sweeper's measure of inactivity).
    pub last_seen_at: OffsetDateTime,
}

/// What one [`Store::bulk_load_tracking`] call wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkCounts {
    /// Sessions.
    pub sessions: u64,
    /// Events (starts included).
    pub events: u64,
    /// Pieces of closed active intervals (one per bucket overlapped).
    pub interval_pieces: u64,
    /// Upserted `track_buckets` rows (user and all-users rows).
    pub bucket_rows: u64,
}

/// A session after its replay: the row to store and what it adds.
struct Replayed {
    row: TrackedSessionRow,
    /// `(seq, kind, at_ms)`.
    events: Vec<(i32, EventKind, i64)>,
    /// `(bucket, from, to)` pieces of the closed intervals.
    pieces: Vec<(i64, i64, i64)>,
    /// The duration, when ended.
    ended: Option<i64>,
}

fn replay(b: &BulkSession) -> anyhow::Result<Replayed> {
    let mut events = b.events.iter();
    let Some(&(EventKind::Start, at)) = events.next() else {
        anyhow::bail!("session {}: the first event must be a start", b.id);
    };
    let mut s = TrackedSession::start(b.id, b.app.clone(), b.user.clone(), truncate_millis(at));
    check_user(&s.user)?;
    let mut out = Replayed {
        row: TrackedSessionRow::of(&s),
        events: vec![(0, EventKind::Start, to_millis(s.started_at))],
        pieces: Vec::new(),
        ended: None,
    };
    for &(kind, at) in events {
        let t = s
            .apply(kind, truncate_millis(at))
            .map_err(|e| anyhow::anyhow!("session {}: {kind:?} at {at}: {e}", b.id))?;
        // As the service: zero-length intervals are not stored.
        if let Some(i) = t.closed.filter(|i| i.to > i.from) {
            out.pieces.extend(split_at_buckets(to_millis(i.from), to_millis(i.to)));
        }
        if t.after.state == TrackState::Ended && s.state != TrackState::Ended {
            out.ended = Some(t.after.active_ms);
        }
        let event = t.event(kind);
        out.events.push((event.seq, kind, to_millis(event.at)));
        s = t.after;
    }
    s.last_seen_at = truncate_millis(b.last_seen_at);
    out.row = TrackedSessionRow::of(&s);
    Ok(out)
}

impl Store {
    /// Loads `sessions` (with all their events) in ONE transaction, leaving
    /// exactly what `insert_session` and one `apply_transition` per later
    /// event would have: session rows in their final state, every event,
    /// the pieces of every closed active interval, and the `track_buckets`
    /// aggregates of the user and of everyone (added to what is there).
    /// Fails, writing nothing, when a session's events are not a sequence
    /// the state machine allows or an id is already stored.
    ///
    /// For bulk loads (benchmarks, imports): a call holds the write lock
    /// (SQLite) or the bucket rows it touches (PostgreSQL) until it
    /// commits, so keep calls to some tens of thousands of sessions.
    pub fn bulk_load_tracking(&self, sessions: &[BulkSession]) -> anyhow::Result<BulkCounts> {
        let replayed = sessions.iter().map(replay).collect::<anyhow::Result<Vec<Replayed>>>()?;
        // Per app (sorted), per (subject, bucket) (sorted): rows are upserted
        // in primary-key order, like every other writer of track_buckets.
        let mut deltas: BTreeMap<&str, BucketDeltas<'_>> = BTreeMap::new();
        for r in &replayed {
            let d = deltas.entry(r.row.app.as_str()).or_default();
            let user = r.row.user_name.as_str();
            d.add(user, floor_to(r.row.started_at_ms, BUCKET_MS), |b| b.starts += 1);
            for &(bucket, from, to) in &r.pieces {
                d.add(user, bucket, |b| b.active_ms += to - from);
            }
            if let Some(duration) = r.ended {
                d.add(user, floor_to(r.row.started_at_ms, BUCKET_MS), |b| {
                    b.ended += 1;
                    b.dur_sum_ms += duration;
                    b.dur_min_ms = Some(b.dur_min_ms.map_or(duration, |m| m.min(duration)));
                    b.dur_max_ms = Some(b.dur_max_ms.map_or(duration, |m| m.max(duration)));
                });
            }
        }
        let counts = BulkCounts {
            sessions: replayed.len() as u64,
            events: replayed.iter().map(|r| r.events.len() as u64).sum(),
            interval_pieces: replayed.iter().map(|r| r.pieces.len() as u64).sum(),
            bucket_rows: deltas.values().map(|d| d.0.len() as u64).sum(),
        };
        self.write_tx("bulk-loading tracked sessions", |c| {
            match c {
                DbConn::Pg(pg) => pg_write(pg, &replayed, &deltas)?,
                DbConn::Sqlite(_) => sqlite_write(c, &replayed, &deltas)?,
            }
            Ok(())
        })?;
        Ok(counts)
    }
}

fn pg_write(
    c: &mut PgConnection,
    replayed: &[Replayed],
    deltas: &BTreeMap<&str, BucketDeltas<'_>>,
) -> QueryResult<()> {
    for chunk in replayed.chunks(PG_CHUNK) {
        let rows = || chunk.iter().map(|r| &r.row);
        diesel::sql_query(PG_INSERT_SESSIONS)
            .bind::<Array<Text>, _>(rows().map(|r| r.id.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(rows().map(|r| r.app.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(rows().map(|r| r.user_name.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(rows().map(|r| r.state.as_str()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(rows().map(|r| r.started_at_ms).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(rows().map(|r| r.last_event_at_ms).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(rows().map(|r| r.last_seen_at_ms).collect::<Vec<_>>())
            .bind::<Array<Nullable<BigInt>>, _>(
                rows().map(|r| r.active_since_ms).collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(rows().map(|r| r.active_ms).collect::<Vec<_>>())
            .bind::<Array<Nullable<BigInt>>, _>(rows().map(|r| r.ended_at_ms).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(rows().map(|r| r.events).collect::<Vec<_>>())
            .execute(c)?;
    }
    let events: Vec<(&str, i32, &str, i64)> = replayed
        .iter()
        .flat_map(|r| r.events.iter().map(|&(seq, k, at)| (r.row.id.as_str(), seq, k.as_str(), at)))
        .collect();
    for chunk in events.chunks(PG_CHUNK) {
        diesel::sql_query(PG_INSERT_EVENTS)
            .bind::<Array<Text>, _>(chunk.iter().map(|e| e.0).collect::<Vec<_>>())
            .bind::<Array<Integer>, _>(chunk.iter().map(|e| e.1).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|e| e.2).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|e| e.3).collect::<Vec<_>>())
            .execute(c)?;
    }
    let pieces: Vec<(&TrackedSessionRow, i64, i64, i64)> =
        replayed.iter().flat_map(|r| r.pieces.iter().map(|&(b, f, t)| (&r.row, b, f, t))).collect();
    for chunk in pieces.chunks(PG_CHUNK) {
        diesel::sql_query(PG_INSERT_PIECES)
            .bind::<Array<Text>, _>(chunk.iter().map(|p| p.0.id.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|p| p.0.app.as_str()).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                chunk.iter().map(|p| p.0.user_name.as_str()).collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(chunk.iter().map(|p| p.1).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|p| p.2).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|p| p.3).collect::<Vec<_>>())
            .execute(c)?;
    }
    // The same merge as `upsert_buckets`, one array per column.
    let upsert = format!(
        "INSERT INTO track_buckets (app, subject, bucket_ms, starts, ended, dur_sum_ms, \
                                    dur_min_ms, dur_max_ms, active_ms) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], \
                              $6::int8[], $7::int8[], $8::int8[], $9::int8[]) \
         ON CONFLICT (app, subject, bucket_ms) DO UPDATE SET \
           starts = track_buckets.starts + excluded.starts, \
           ended = track_buckets.ended + excluded.ended, \
           dur_sum_ms = track_buckets.dur_sum_ms + excluded.dur_sum_ms, \
           dur_min_ms = {MERGE_MIN}, dur_max_ms = {MERGE_MAX}, \
           active_ms = track_buckets.active_ms + excluded.active_ms"
    );
    // Users' rows of every app first, then the all-users rows, which
    // concurrent writers also touch: held the shortest.
    let mut rows = Vec::new();
    for last in [false, true] {
        for (app, d) in deltas {
            rows.extend(
                d.0.iter()
                    .filter(|((subject, _), _)| (*subject == ALL) == last)
                    .map(|(&(subject, bucket), b)| (*app, subject, bucket, b)),
            );
        }
    }
    for chunk in rows.chunks(PG_CHUNK) {
        diesel::sql_query(upsert.as_str())
            .bind::<Array<Text>, _>(chunk.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(chunk.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|r| r.2).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|r| r.3.starts).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|r| r.3.ended).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(chunk.iter().map(|r| r.3.dur_sum_ms).collect::<Vec<_>>())
            .bind::<Array<Nullable<BigInt>>, _>(
                chunk.iter().map(|r| r.3.dur_min_ms).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<BigInt>>, _>(
                chunk.iter().map(|r| r.3.dur_max_ms).collect::<Vec<_>>(),
            )
            .bind::<Array<BigInt>, _>(chunk.iter().map(|r| r.3.active_ms).collect::<Vec<_>>())
            .execute(c)?;
    }
    Ok(())
}

/// A row of `tracked_events` (SQLite).
#[derive(Insertable)]
#[diesel(table_name = te)]
struct EventRow<'a> {
    session_id: &'a str,
    seq: i32,
    kind: &'a str,
    at_ms: i64,
}

fn sqlite_write(
    c: &mut DbConn,
    replayed: &[Replayed],
    deltas: &BTreeMap<&str, BucketDeltas<'_>>,
) -> QueryResult<()> {
    let DbConn::Sqlite(sq) = &mut *c else {
        return Err(diesel::result::Error::NotFound);
    };
    let rows: Vec<&TrackedSessionRow> = replayed.iter().map(|r| &r.row).collect();
    for chunk in rows.chunks(CHUNK_ROWS) {
        let chunk: Vec<TrackedSessionRow> = chunk.iter().map(|r| (*r).clone()).collect();
        diesel::insert_into(ts::table).values(&chunk).execute(sq)?;
    }
    let events: Vec<EventRow<'_>> = replayed
        .iter()
        .flat_map(|r| {
            r.events.iter().map(|&(seq, kind, at_ms)| EventRow {
                session_id: &r.row.id,
                seq,
                kind: kind.as_str(),
                at_ms,
            })
        })
        .collect();
    for chunk in events.chunks(CHUNK_ROWS) {
        diesel::insert_into(te::table).values(chunk).execute(sq)?;
    }
    let pieces: Vec<IntervalPieceRow<'_>> = replayed
        .iter()
        .flat_map(|r| {
            r.pieces.iter().map(|&(bucket_ms, from_ms, to_ms)| IntervalPieceRow {
                session_id: &r.row.id,
                app: &r.row.app,
                user_name: &r.row.user_name,
                bucket_ms,
                from_ms,
                to_ms,
            })
        })
        .collect();
    for chunk in pieces.chunks(CHUNK_ROWS) {
        diesel::insert_into(ti::table).values(chunk).execute(sq)?;
    }
    for (app, d) in deltas {
        upsert_buckets(c, &d.rows(app))?;
    }
    Ok(())
}

impl Store {
    /// Writes `sessions` in ONE transaction, leaving what one
    /// `SessionStore::create_session` per session would have: the
    /// `device_sessions` rows, and each user's `last_activity` moved
    /// forward to the latest `last_activity` of its new sessions. Fails,
    /// writing nothing, when an id or a refresh hash is already stored or
    /// a user does not exist. Returns the number of sessions written.
    ///
    /// For benchmarks (many live sessions without one Argon2 login each):
    /// a call holds the write lock (SQLite) until it commits, so keep calls
    /// to some tens of thousands of sessions.
    pub fn bulk_create_sessions(&self, sessions: &[NewSession]) -> anyhow::Result<u64> {
        let rows: Vec<NewSessionRow<'_>> = sessions.iter().map(NewSessionRow::of).collect();
        // Each user's latest activity, in id order (the order every other
        // writer of `users` locks rows in).
        let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
        for r in &rows {
            let at = latest.entry(r.user_id.as_str()).or_insert(r.last_activity_ms);
            *at = (*at).max(r.last_activity_ms);
        }
        self.write_tx("bulk-creating device sessions", |conn| {
            // 13 columns × 1000 rows stays below both databases' limits on
            // bind parameters.
            for chunk in rows.chunks(CHUNK_ROWS) {
                per_backend!(&mut *conn, |c| diesel::insert_into(ds::table)
                    .values(chunk)
                    .execute(c))?;
            }
            for (&user_id, &at) in &latest {
                advance_user_activity(conn, user_id, at)?;
            }
            Ok(())
        })?;
        Ok(rows.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use analytics::{TrackEvent, TrackingStore as _};
    use kernel::Duration;

    use super::*;
    use crate::StoreOptions;
    use crate::schema::track_buckets as tb;

    /// Every row of the tracking tables, in a fixed order.
    type Dump = (
        Vec<(String, String, String, i64, i64, i64, Option<i64>, i64, Option<i64>, i32)>,
        Vec<(String, i32, String, i64)>,
        Vec<(String, String, i64, i64, i64)>,
        Vec<(String, String, i64, i64, i64, i64, Option<i64>, Option<i64>, i64)>,
    );

    fn dump(store: &Store) -> Dump {
        let mut c = store.conn().expect("connection");
        let c: &mut DbConn = &mut c;
        let sessions = ts::table
            .order(ts::id)
            .select((
                ts::id,
                ts::user_name,
                ts::state,
                ts::started_at_ms,
                ts::last_event_at_ms,
                ts::last_seen_at_ms,
                ts::active_since_ms,
                ts::active_ms,
                ts::ended_at_ms,
                ts::events,
            ))
            .load(c)
            .expect("sessions");
        let events = te::table
            .order((te::session_id, te::seq))
            .select((te::session_id, te::seq, te::kind, te::at_ms))
            .load(c)
            .expect("events");
        let pieces = ti::table
            .order((ti::session_id, ti::from_ms))
            .select((ti::session_id, ti::user_name, ti::bucket_ms, ti::from_ms, ti::to_ms))
            .load(c)
            .expect("pieces");
        let buckets = tb::table
            .order((tb::app, tb::subject, tb::bucket_ms))
            .select((
                tb::app,
                tb::subject,
                tb::bucket_ms,
                tb::starts,
                tb::ended,
                tb::dur_sum_ms,
                tb::dur_min_ms,
                tb::dur_max_ms,
                tb::active_ms,
            ))
            .load(c)
            .expect("buckets");
        (sessions, events, pieces, buckets)
    }

    /// The one-event path, as `AnalyticsService` drives it.
    fn one_by_one(store: &Store, b: &BulkSession) {
        let (_, at) = b.events[0];
        let mut s = TrackedSession::start(b.id, b.app.clone(), b.user.clone(), at);
        s.last_seen_at = b.last_seen_at;
        store.insert_session(&s).expect("insert");
        for &(kind, at) in &b.events[1..] {
            let mut t = s.apply(kind, at).expect("allowed");
            t.after.last_seen_at = b.last_seen_at;
            let event: TrackEvent = t.event(kind);
            let closed = t.closed.filter(|i| i.to > i.from);
            assert!(store.apply_transition(&s, &t.after, &event, closed).expect("applied"));
            s = t.after;
        }
    }

    fn scenarios() -> Vec<BulkSession> {
        use EventKind::{End, Pause, Resume, Start};
        let t0 = OffsetDateTime::from_unix_timestamp(1_712_358_000).expect("t0"); // 2024-04-05 23:00Z
        let at = |secs: i64, ms: i64| t0 + Duration::seconds(secs) + Duration::milliseconds(ms);
        let plans: Vec<(&str, Vec<(EventKind, OffsetDateTime)>)> = vec![
            // Ended, crossing several buckets and midnight.
            ("Alice", vec![(Start, at(0, 7)), (End, at(5400, 3))]),
            // Pause and resume across bucket edges, then end.
            (
                "alice",
                vec![
                    (Start, at(100, 0)),
                    (Pause, at(1000, 500)),
                    (Resume, at(2000, 0)),
                    (End, at(4000, 999)),
                ],
            ),
            // Ended while paused.
            ("bob", vec![(Start, at(60, 0)), (Pause, at(600, 0)), (End, at(7200, 0))]),
            // A zero-length interval, then more.
            (
                "bob",
                vec![
                    (Start, at(900, 0)),
                    (Pause, at(900, 0)),
                    (Resume, at(901, 0)),
                    (End, at(960, 0)),
                ],
            ),
            // Open: active, and paused.
            ("carol", vec![(Start, at(300, 0))]),
            (
                "carol",
                vec![
                    (Start, at(310, 0)),
                    (Pause, at(3000, 0)),
                    (Resume, at(3100, 0)),
                    (Pause, at(3500, 1)),
                ],
            ),
            // Two sessions starting in one bucket (min/max merge).
            ("dave", vec![(Start, at(-3600, 0)), (End, at(-3500, 0))]),
            ("dave", vec![(Start, at(-3590, 0)), (End, at(-1000, 0))]),
        ];
        plans
            .into_iter()
            .map(|(user, events)| BulkSession {
                id: kernel::new_id(),
                app: "app".into(),
                user: user.into(),
                last_seen_at: events.last().map_or(t0, |e| e.1) + Duration::seconds(5),
                events,
            })
            .collect()
    }

    fn same_as_one_by_one(make: impl Fn() -> Store) {
        let all = scenarios();
        let (one, bulk) = (make(), make());
        for b in &all {
            one_by_one(&one, b);
        }
        // Two calls: the second adds to rows the first wrote.
        let counts = bulk.bulk_load_tracking(&all[..3]).expect("bulk 1");
        assert_eq!(counts.sessions, 3);
        bulk.bulk_load_tracking(&all[3..]).expect("bulk 2");
        let (a, b) = (dump(&one), dump(&bulk));
        assert_eq!(a.0, b.0, "sessions");
        assert_eq!(a.1, b.1, "events");
        assert_eq!(a.2, b.2, "interval pieces");
        assert_eq!(a.3, b.3, "track_buckets");
        assert!(!a.3.is_empty() && !a.2.is_empty());
        // Nothing is written when one session is refused by the state
        // machine, or by the database (an id already stored).
        let mut bad = scenarios();
        let ended_at = bad[1].events[3].1;
        bad[1].events.push((EventKind::Resume, ended_at));
        assert!(bulk.bulk_load_tracking(&bad).is_err());
        assert_eq!(dump(&bulk), b);
        let again = [scenarios().remove(0), all[0].clone()];
        assert!(bulk.bulk_load_tracking(&again).is_err());
        assert_eq!(dump(&bulk), b);
    }

    fn open(url: &str) -> Store {
        let store = Store::connect(url, &StoreOptions::default()).expect("connect");
        store.migrate().expect("migrate");
        store
    }

    const T0_MS: i64 = 1_700_000_000_000;

    /// A new user `alice`.
    fn alice(store: &Store) -> accounts::User {
        use accounts::UserStore as _;
        store
            .create(accounts::NewUser {
                id: kernel::new_id(),
                username: accounts::Username::parse("alice").expect("username"),
                email: None,
                name: None,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                role: accounts::Role::user(),
                created_at: kernel::from_millis(T0_MS),
            })
            .expect("user")
    }

    /// Three live sessions of `user_id` (one with every optional field,
    /// one with none), the latest activity not on the latest session.
    fn device_sessions(user_id: Uuid) -> Vec<NewSession> {
        (0..3_i64)
            .map(|i| {
                let at = kernel::from_millis(T0_MS) + Duration::minutes(i);
                NewSession {
                    session: sessions::DeviceSession {
                        id: kernel::new_id(),
                        user_id,
                        app: "app".into(),
                        ip_address: (i != 1).then(|| "203.0.113.7".into()),
                        user_agent: (i != 1).then(|| "Mozilla/5.0".into()),
                        location: (i == 0).then(|| "Paris, FR".into()),
                        login_method: "password".into(),
                        created_at: at,
                        expires_at: at + Duration::hours(24),
                        last_activity: at + Duration::seconds(90 - 60 * i),
                        state: sessions::SessionState::Active,
                        ended_at: None,
                    },
                    refresh_hash: tokens::RefreshToken::generate().hash,
                }
            })
            .collect()
    }

    fn bulk_sessions_equal_one_by_one(make: impl Fn() -> Store) {
        use accounts::UserStore as _;
        use sessions::SessionStore as _;
        use tokens::RefreshTokenStore as _;
        let (one, bulk) = (make(), make());
        let (one_user, bulk_user) = (alice(&one), alice(&bulk));
        let all = device_sessions(one_user.id);
        for s in &all {
            one.create_session(s).expect("create");
        }
        // The same rows, for the other store's user.
        let again: Vec<NewSession> = all
            .iter()
            .map(|s| NewSession {
                session: sessions::DeviceSession { user_id: bulk_user.id, ..s.session.clone() },
                refresh_hash: s.refresh_hash.clone(),
            })
            .collect();
        assert_eq!(bulk.bulk_create_sessions(&again).expect("bulk"), 3);
        let now = kernel::from_millis(T0_MS) + Duration::hours(1);
        let listed = |store: &Store, id| {
            let mut listed = store.list_sessions(id, true, now).expect("list");
            for s in &mut listed {
                s.user_id = Uuid::nil();
            }
            listed
        };
        assert_eq!(listed(&one, one_user.id), listed(&bulk, bulk_user.id));
        let last = |store: &Store, id| store.find_by_id(id).expect("find").map(|u| u.last_activity);
        assert_eq!(last(&one, one_user.id), last(&bulk, bulk_user.id));
        for s in &again {
            let found = bulk.find_refresh(&s.refresh_hash).expect("lookup").map(|r| r.session_id);
            assert_eq!(found, Some(s.session.id));
        }
        // All or nothing: one id already stored refuses the whole call.
        let mut more = device_sessions(bulk_user.id);
        more.push(again[0].clone());
        assert!(bulk.bulk_create_sessions(&more).is_err());
        assert_eq!(bulk.list_sessions(bulk_user.id, true, now).expect("list").len(), 3);
    }

    #[test]
    fn bulk_sessions_on_sqlite() {
        bulk_sessions_equal_one_by_one(|| open(&crate::testing::fresh_sqlite_url()));
    }

    #[test]
    fn bulk_sessions_on_postgres() {
        if crate::testing::fresh_postgres_url().is_none() {
            return;
        }
        bulk_sessions_equal_one_by_one(|| {
            open(&crate::testing::fresh_postgres_url().expect("reachable a moment ago"))
        });
    }

    #[test]
    fn bulk_equals_one_by_one_on_sqlite() {
        same_as_one_by_one(|| open(&crate::testing::fresh_sqlite_url()));
    }

    #[test]
    fn bulk_equals_one_by_one_on_postgres() {
        if crate::testing::fresh_postgres_url().is_none() {
            return;
        }
        same_as_one_by_one(|| {
            open(&crate::testing::fresh_postgres_url().expect("reachable a moment ago"))
        });
    }
}
