//! `auth::LoginThrottleStore`: failed-login records, changed atomically,
//! and when each account last logged in from each network.

use auth::{LoginFailures, LoginThrottleStore};
use diesel::prelude::*;
use diesel::upsert::excluded;
use kernel::{OffsetDateTime, from_millis, to_millis};

use crate::Store;
use crate::conn::DbConn;
use crate::schema::login_failures as lf;
use crate::schema::login_successes as ls;

type Row = (i32, i64, Option<i64>);

impl LoginThrottleStore for Store {
    fn read_failures(&self, keys: &[&str]) -> anyhow::Result<Vec<Option<LoginFailures>>> {
        let rows: Vec<(String, i32, i64, Option<i64>)> =
            self.run("reading failed-login records", |c| {
                lf::table
                    .filter(lf::key.eq_any(keys))
                    .select((lf::key, lf::failures, lf::last_failure_ms, lf::locked_until_ms))
                    .load(c)
            })?;
        Ok(keys
            .iter()
            .map(|k| {
                let (_, failures, last, until) = rows.iter().find(|r| r.0 == *k)?;
                record((*failures, *last, *until))
            })
            .collect())
    }

    fn update_failures(
        &self,
        keys: &[&str],
        now: OffsetDateTime,
        update: &mut dyn FnMut(&mut [Option<LoginFailures>]),
    ) -> anyhow::Result<()> {
        let now_ms = to_millis(now);
        self.write_tx("counting a login attempt", |c| {
            // Rows are locked in key order, so two attempts on overlapping
            // keys cannot deadlock.
            let mut order: Vec<usize> = (0..keys.len()).collect();
            order.sort_by_key(|&i| keys[i]);
            let mut records = vec![None; keys.len()];
            for &i in &order {
                records[i] = lock(c, keys[i], now_ms)?;
            }
            update(&mut records);
            for &i in &order {
                write(c, keys[i], records[i])?;
            }
            Ok(())
        })
    }

    fn purge_failures(
        &self,
        forgotten_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> anyhow::Result<u64> {
        let (before, now) = (to_millis(forgotten_before), to_millis(now));
        let n = self.run("forgetting old login failures", |c| {
            diesel::delete(
                lf::table
                    .filter(lf::last_failure_ms.lt(before))
                    .filter(lf::locked_until_ms.is_null().or(lf::locked_until_ms.le(now))),
            )
            .execute(c)
        })?;
        Ok(n as u64)
    }

    fn last_success(&self, key: &str) -> anyhow::Result<Option<OffsetDateTime>> {
        let at: Option<i64> = self.run("reading a successful login", |c| {
            ls::table.find(key).select(ls::succeeded_ms).first(c).optional()
        })?;
        Ok(at.map(from_millis))
    }

    fn record_success(&self, key: &str, at: OffsetDateTime) -> anyhow::Result<()> {
        let at = ls::succeeded_ms.eq(to_millis(at));
        // One statement, atomic on its own: two logins at once both leave
        // a time of their own, whichever is written last.
        self.run("recording a successful login", |c| {
            crate::per_backend!(c, |c| {
                diesel::insert_into(ls::table)
                    .values((ls::key.eq(key), at))
                    .on_conflict(ls::key)
                    .do_update()
                    .set(at)
                    .execute(c)
            })
        })?;
        Ok(())
    }

    fn purge_successes(&self, before: OffsetDateTime) -> anyhow::Result<u64> {
        let before = to_millis(before);
        let n = self.run("forgetting old successful logins", |c| {
            diesel::delete(ls::table.filter(ls::succeeded_ms.lt(before))).execute(c)
        })?;
        Ok(n as u64)
    }
}

/// The record of `key`, its row held until the transaction ends.
///
/// One upsert both ways: a missing key gets an empty placeholder (read as
/// "no record"), an existing one is touched without change; either way the
/// statement takes the row lock and returns the row. On PostgreSQL that
/// lock makes the second of two concurrent first attempts wait instead of
/// both counting from zero (a plain `SELECT … FOR UPDATE` cannot lock a row
/// that does not exist yet); on SQLite the transaction (`BEGIN IMMEDIATE`)
/// already excludes every other writer.
fn lock(c: &mut DbConn, key: &str, now_ms: i64) -> QueryResult<Option<LoginFailures>> {
    let placeholder = (lf::key.eq(key), lf::failures.eq(0), lf::last_failure_ms.eq(now_ms));
    let row: Row = crate::per_backend!(c, |c| {
        diesel::insert_into(lf::table)
            .values(placeholder)
            .on_conflict(lf::key)
            .do_update()
            .set(lf::key.eq(excluded(lf::key)))
            .returning((lf::failures, lf::last_failure_ms, lf::locked_until_ms))
            .get_result(c)
    })?;
    Ok(record(row))
}

/// A stored row as a record; a placeholder (nothing counted) is none.
fn record((failures, last, until): Row) -> Option<LoginFailures> {
    (failures > 0).then(|| LoginFailures {
        failures: u32::try_from(failures).unwrap_or(0),
        last_failure: from_millis(last),
        locked_until: until.map(from_millis),
    })
}

/// Stores `record` as the row of `key` (`None` deletes it).
fn write(c: &mut DbConn, key: &str, record: Option<LoginFailures>) -> QueryResult<()> {
    let Some(r) = record else {
        diesel::delete(lf::table.find(key)).execute(c)?;
        return Ok(());
    };
    let values = (
        lf::failures.eq(i32::try_from(r.failures).unwrap_or(i32::MAX)),
        lf::last_failure_ms.eq(to_millis(r.last_failure)),
        lf::locked_until_ms.eq(r.locked_until.map(to_millis)),
    );
    crate::per_backend!(c, |c| {
        diesel::insert_into(lf::table)
            .values((lf::key.eq(key), values))
            .on_conflict(lf::key)
            .do_update()
            .set(values)
            .execute(c)
    })?;
    Ok(())
}
