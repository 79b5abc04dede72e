//! Tracked sessions: their rows, events and interval pieces, and the
//! session aggregates (`track_buckets`) that every write keeps current in
//! its own transaction; and the reads of all of them.

use std::collections::{BTreeMap, HashMap};

use analytics::{
    BUCKET_MS, EventKind, EventSpan, Interval, MsRange, SessionBucket, Subject, TrackEvent,
    TrackState, TrackedSession,
};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::upsert::excluded;
use kernel::{OffsetDateTime, Uuid, from_millis, to_millis};

use super::plan::{bounds, ceil_to, floor_to, partial_windows, split_at_buckets};
use super::rows::{BucketRow, IntervalPieceRow, StoredBucket, TrackedSessionRow, WindowRow};
use super::sql::texts;
use super::{ALL, CHUNK_ROWS, CHUNK_SPANS, MERGE_MAX, MERGE_MIN, OPEN, check_user, subject_key};
use crate::conn::DbConn;
use crate::schema::{
    track_buckets as tb, tracked_events as te, tracked_intervals as ti, tracked_sessions as ts,
};
use crate::{Backend, Store, parse_id, per_backend};

/// Changes to the session aggregates, by `(subject, bucket)`: sorted, so
/// that upserts lock rows in primary-key order.
#[derive(Default)]
pub(crate) struct BucketDeltas<'a>(pub(crate) BTreeMap<(&'a str, i64), SessionBucket>);

impl<'a> BucketDeltas<'a> {
    /// Applies `f` to the change of `bucket` for `user` and for everyone.
    pub(crate) fn add(&mut self, user: &'a str, bucket: i64, f: impl Fn(&mut SessionBucket)) {
        for subject in [user, ALL] {
            f(self.0.entry((subject, bucket)).or_default());
        }
    }

    pub(crate) fn rows(&self, app: &'a str) -> Vec<BucketRow<'a>> {
        self.0
            .iter()
            .map(|(&(subject, bucket_ms), d)| BucketRow {
                app,
                subject,
                bucket_ms,
                starts: d.starts,
                ended: d.ended,
                dur_sum_ms: d.dur_sum_ms,
                dur_min_ms: d.dur_min_ms,
                dur_max_ms: d.dur_max_ms,
                active_ms: d.active_ms,
            })
            .collect()
    }
}

/// Whether a bucket holds nothing worth reporting.
fn is_empty(b: &SessionBucket) -> bool {
    b.starts == 0 && b.ended == 0 && b.active_ms == 0
}

/// Adds `rows` (sorted by key) to `track_buckets`: one statement per
/// thousand rows.
pub(crate) fn upsert_buckets(conn: &mut DbConn, rows: &[BucketRow<'_>]) -> QueryResult<()> {
    for chunk in rows.chunks(CHUNK_ROWS) {
        per_backend!(&mut *conn, |c| {
            diesel::insert_into(tb::table)
                .values(chunk)
                .on_conflict((tb::app, tb::subject, tb::bucket_ms))
                .do_update()
                .set((
                    tb::starts.eq(tb::starts + excluded(tb::starts)),
                    tb::ended.eq(tb::ended + excluded(tb::ended)),
                    tb::dur_sum_ms.eq(tb::dur_sum_ms + excluded(tb::dur_sum_ms)),
                    tb::dur_min_ms.eq(sql::<Nullable<BigInt>>(MERGE_MIN)),
                    tb::dur_max_ms.eq(sql::<Nullable<BigInt>>(MERGE_MAX)),
                    tb::active_ms.eq(tb::active_ms + excluded(tb::active_ms)),
                ))
                .execute(c)
        })?;
    }
    Ok(())
}

/// Appends event `seq` of session `id`.
fn insert_event(
    conn: &mut DbConn,
    id: &str,
    seq: i32,
    kind: EventKind,
    at_ms: i64,
) -> QueryResult<()> {
    diesel::insert_into(te::table)
        .values((
            te::session_id.eq(id),
            te::seq.eq(seq),
            te::kind.eq(kind.as_str()),
            te::at_ms.eq(at_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// The aggregates of the partial bucket `[from, to)` of `bucket`, from raw
/// rows (the window texts of [`super::sql::Texts`]), for `subject`, whose
/// key is `key`.
fn window(
    conn: &mut DbConn,
    subject: &Subject,
    app: &str,
    key: &str,
    (bucket, from, to): (i64, i64, i64),
) -> QueryResult<SessionBucket> {
    let row: WindowRow = per_backend!(conn, |c| {
        diesel::sql_query(texts(c).window(subject))
            .bind::<Text, _>(app)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(from)
            .bind::<BigInt, _>(to)
            .bind::<BigInt, _>(bucket)
            .get_result(c)
    })?;
    Ok(SessionBucket {
        bucket_ms: bucket,
        starts: row.starts,
        ended: row.ended,
        dur_sum_ms: row.dur_sum_ms,
        dur_min_ms: row.dur_min_ms,
        dur_max_ms: row.dur_max_ms,
        active_ms: row.active_ms,
    })
}

impl Store {
    /// Runs `f` in a read-only transaction that sees one snapshot
    /// (PostgreSQL: REPEATABLE READ; SQLite: a deferred transaction reads
    /// one WAL snapshot), so that several queries agree with each other.
    fn snapshot<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut DbConn) -> QueryResult<T>,
    ) -> anyhow::Result<T> {
        let pg = self.backend == Backend::Postgres;
        self.run(what, |conn| {
            conn.transaction(|c| {
                if pg {
                    diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        .execute(c)?;
                }
                f(c)
            })
        })
    }
}

pub(super) fn insert_session(store: &Store, session: &TrackedSession) -> anyhow::Result<()> {
    check_user(&session.user)?;
    let row = TrackedSessionRow::of(session);
    let mut deltas = BucketDeltas::default();
    deltas.add(&session.user, floor_to(row.started_at_ms, BUCKET_MS), |d| d.starts += 1);
    let buckets = deltas.rows(&session.app);
    store.write_tx("storing a tracked session", |c| {
        diesel::insert_into(ts::table).values(&row).execute(c)?;
        insert_event(c, &row.id, 0, EventKind::Start, row.started_at_ms)?;
        upsert_buckets(c, &buckets)
    })
}

pub(super) fn get_session(
    store: &Store,
    app: &str,
    id: Uuid,
) -> anyhow::Result<Option<TrackedSession>> {
    let id = id.to_string();
    store
        .run("loading a tracked session", |c| {
            ts::table
                .find(&id)
                .filter(ts::app.eq(app))
                .select(TrackedSessionRow::as_select())
                .first(c)
                .optional()
        })?
        .map(TrackedSessionRow::into_session)
        .transpose()
}

pub(super) fn apply_transition(
    store: &Store,
    before: &TrackedSession,
    after: &TrackedSession,
    event: &TrackEvent,
    closed: Option<Interval>,
) -> anyhow::Result<bool> {
    anyhow::ensure!(
        before.id == after.id
            && event.session_id == after.id
            && before.app == after.app
            && before.user == after.user
            && before.started_at == after.started_at,
        "a transition must keep the session's identity"
    );
    let row = TrackedSessionRow::of(after);
    let pieces =
        closed.map(|i| split_at_buckets(to_millis(i.from), to_millis(i.to))).unwrap_or_default();
    let mut deltas = BucketDeltas::default();
    for &(bucket, from, to) in &pieces {
        deltas.add(&after.user, bucket, |d| d.active_ms += to - from);
    }
    if after.state == TrackState::Ended && before.state != TrackState::Ended {
        let duration = after.active_ms;
        deltas.add(&after.user, floor_to(row.started_at_ms, BUCKET_MS), |d| {
            d.ended += 1;
            d.dur_sum_ms += duration;
            d.dur_min_ms = Some(d.dur_min_ms.map_or(duration, |m| m.min(duration)));
            d.dur_max_ms = Some(d.dur_max_ms.map_or(duration, |m| m.max(duration)));
        });
    }
    let buckets = deltas.rows(&after.app);
    let piece_rows: Vec<IntervalPieceRow<'_>> = pieces
        .iter()
        .map(|&(bucket_ms, from_ms, to_ms)| IntervalPieceRow {
            session_id: &row.id,
            app: &row.app,
            user_name: &row.user_name,
            bucket_ms,
            from_ms,
            to_ms,
        })
        .collect();
    let (state, last_event_at, events) =
        (before.state.as_str(), to_millis(before.last_event_at), before.events);
    store.write_tx("applying a tracked-session transition", |c| {
        // The compare-and-swap: on PostgreSQL a concurrent transition
        // waits for the row lock, then re-checks the predicate against
        // the committed row (READ COMMITTED) and matches nothing; on
        // SQLite writers are serialised. `events` only grows, so it
        // tells apart a state that went away and came back at the same
        // millisecond.
        let n = diesel::update(
            ts::table
                .find(&row.id)
                .filter(ts::app.eq(&row.app))
                .filter(ts::state.eq(state))
                .filter(ts::last_event_at_ms.eq(last_event_at))
                .filter(ts::events.eq(events)),
        )
        .set((
            ts::state.eq(&row.state),
            ts::last_event_at_ms.eq(row.last_event_at_ms),
            ts::last_seen_at_ms.eq(row.last_seen_at_ms),
            ts::active_since_ms.eq(row.active_since_ms),
            ts::active_ms.eq(row.active_ms),
            ts::ended_at_ms.eq(row.ended_at_ms),
            ts::events.eq(row.events),
        ))
        .execute(c)?;
        if n == 0 {
            return Ok(false);
        }
        insert_event(c, &row.id, event.seq, event.kind, to_millis(event.at))?;
        for chunk in piece_rows.chunks(CHUNK_ROWS) {
            per_backend!(&mut *c, |c| diesel::insert_into(ti::table).values(chunk).execute(c))?;
        }
        upsert_buckets(c, &buckets)?;
        Ok(true)
    })
}

pub(super) fn stale_open_sessions(
    store: &Store,
    cutoff: OffsetDateTime,
    limit: u32,
) -> anyhow::Result<Vec<TrackedSession>> {
    let cutoff = to_millis(cutoff);
    let rows = store.run("listing stale tracked sessions", |c| {
        ts::table
            .filter(sql::<Bool>(OPEN))
            .filter(ts::last_seen_at_ms.lt(cutoff))
            .order((ts::last_seen_at_ms.asc(), ts::id.asc()))
            .limit(i64::from(limit))
            .select(TrackedSessionRow::as_select())
            .load(c)
    })?;
    rows.into_iter().map(TrackedSessionRow::into_session).collect()
}

pub(super) fn session_buckets(
    store: &Store,
    app: &str,
    subject: &Subject,
    range: MsRange,
) -> anyhow::Result<Vec<SessionBucket>> {
    let Some((lo, hi)) = bounds(range) else {
        return Ok(Vec::new());
    };
    let key = subject_key(subject);
    let (full_lo, full_hi) = (ceil_to(lo, BUCKET_MS), floor_to(hi, BUCKET_MS));
    let windows = partial_windows(lo, hi);
    let read = |c: &mut DbConn| {
        let mut out: Vec<SessionBucket> = Vec::new();
        if full_lo < full_hi {
            let stored: Vec<StoredBucket> = tb::table
                .filter(tb::app.eq(app))
                .filter(tb::subject.eq(key))
                .filter(tb::bucket_ms.ge(full_lo))
                .filter(tb::bucket_ms.lt(full_hi))
                .order(tb::bucket_ms.asc())
                .select(StoredBucket::as_select())
                .load(c)?;
            out.extend(stored.into_iter().map(|b| SessionBucket {
                bucket_ms: b.bucket_ms,
                starts: b.starts,
                ended: b.ended,
                dur_sum_ms: b.dur_sum_ms,
                dur_min_ms: b.dur_min_ms,
                dur_max_ms: b.dur_max_ms,
                active_ms: b.active_ms,
            }));
        }
        for &w in &windows {
            out.push(window(c, subject, app, key, w)?);
        }
        QueryResult::Ok(out)
    };
    let what = "loading session buckets";
    // Several queries read one snapshot; one needs no transaction.
    let mut out =
        if windows.is_empty() { store.run(what, read)? } else { store.snapshot(what, read)? };
    out.retain(|b| !is_empty(b));
    out.sort_by_key(|b| b.bucket_ms);
    Ok(out)
}

pub(super) fn timeline(
    store: &Store,
    app: &str,
    subject: &Subject,
    range: MsRange,
    after: Option<analytics::TimelinePosition>,
    limit: u32,
) -> anyhow::Result<Vec<TrackedSession>> {
    let after = after.map(|p| (to_millis(p.started_at), p.id.to_string()));
    let rows = store.run("listing tracked sessions", |c| {
        // Ids compare as bytes in both databases (BINARY; COLLATE "C"),
        // so the order and the keyset comparison agree everywhere. Both
        // filters have an index ending in (started_at_ms, id).
        let mut q = ts::table
            .filter(ts::app.eq(app))
            .select(TrackedSessionRow::as_select())
            .order((ts::started_at_ms.asc(), ts::id.asc()))
            .limit(i64::from(limit))
            .into_boxed();
        if let Subject::User(name) = subject {
            q = q.filter(ts::user_name.eq(name));
        }
        if let Some(from) = range.from {
            q = q.filter(ts::started_at_ms.ge(from));
        }
        if let Some(to) = range.to {
            q = q.filter(ts::started_at_ms.lt(to));
        }
        if let Some((at, id)) = &after {
            // The first conjunct is implied by the second; it bounds
            // the index scan.
            q = q
                .filter(ts::started_at_ms.ge(*at))
                .filter(ts::started_at_ms.gt(*at).or(ts::started_at_ms.eq(*at).and(ts::id.gt(id))));
        }
        q.load(c)
    })?;
    rows.into_iter().map(TrackedSessionRow::into_session).collect()
}

pub(super) fn events_of(store: &Store, spans: &[EventSpan]) -> anyhow::Result<Vec<TrackEvent>> {
    // In the order of the spans (a timeline page's order), each
    // session's events by seq. Every span bounds its `seq` range in
    // SQL (the primary key's order), so only the events asked for are
    // read, however long a session is.
    let mut position: HashMap<String, usize> = HashMap::with_capacity(spans.len());
    for span in spans {
        let next = position.len();
        position.entry(span.session_id.to_string()).or_insert(next);
    }
    let mut rows: Vec<(String, i32, String, i64)> = Vec::new();
    for chunk in spans.chunks(CHUNK_SPANS) {
        let terms: Vec<(String, i32, i32)> = chunk
            .iter()
            .filter(|s| s.from_seq < s.to_seq)
            .map(|s| (s.session_id.to_string(), s.from_seq, s.to_seq))
            .collect();
        if terms.is_empty() {
            continue;
        }
        rows.extend(store.run("loading tracked-session events", |c| {
            let mut q =
                te::table.select((te::session_id, te::seq, te::kind, te::at_ms)).into_boxed();
            for (id, from, to) in &terms {
                q = q.or_filter(te::session_id.eq(id).and(te::seq.ge(*from)).and(te::seq.lt(*to)));
            }
            q.load::<(String, i32, String, i64)>(c)
        })?);
    }
    rows.sort_by_key(|(id, seq, _, _)| (position.get(id).copied(), *seq));
    rows.into_iter()
        .map(|(id, seq, kind, at_ms)| {
            Ok(TrackEvent {
                session_id: parse_id(&id)?,
                seq,
                kind: EventKind::parse(&kind)
                    .ok_or_else(|| anyhow::anyhow!("stored event kind {kind:?} is unknown"))?,
                at: from_millis(at_ms),
            })
        })
        .collect()
}
