//! `tokens::RefreshTokenStore` and `tokens::KeyStore`.
//!
//! A session row holds the hash of its current refresh token (unique);
//! superseded hashes move to `refresh_tokens` with the time they were
//! superseded. Rotation is a compare-and-swap on the session row.

use diesel::prelude::*;
use kernel::{OffsetDateTime, Uuid, from_millis, to_millis};
use tokens::{KeyStore, RefreshRecord, RefreshTokenStore};

use crate::conn::DbConn;
use crate::schema::{device_sessions as ds, refresh_tokens as rt, settings};
use crate::{Store, parse_id, per_backend};

impl RefreshTokenStore for Store {
    fn find_refresh(&self, token_hash: &str) -> anyhow::Result<Option<RefreshRecord>> {
        // Current first, then superseded. A rotation moves a hash from one to
        // the other in one transaction, so a lookup racing it finds the hash
        // in one place or the other.
        let found = self.run("looking up a refresh token", |c| {
            let current: Option<String> = ds::table
                .filter(ds::refresh_hash.eq(token_hash))
                .select(ds::id)
                .first(c)
                .optional()?;
            if let Some(id) = current {
                return Ok(Some((id, None)));
            }
            rt::table
                .find(token_hash)
                .select((rt::session_id, rt::superseded_at_ms))
                .first::<(String, i64)>(c)
                .optional()
                .map(|r| r.map(|(id, at)| (id, Some(at))))
        })?;
        found
            .map(|(id, at)| {
                Ok(RefreshRecord { session_id: parse_id(&id)?, superseded_at: at.map(from_millis) })
            })
            .transpose()
    }

    fn current_refresh(&self, session_id: Uuid) -> anyhow::Result<Option<String>> {
        let id = session_id.to_string();
        self.run("loading the current refresh token", |c| {
            ds::table.find(&id).select(ds::refresh_hash).first(c).optional()
        })
    }

    fn replace_refresh(
        &self,
        session_id: Uuid,
        expected: &str,
        new_hash: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let id = session_id.to_string();
        self.write_tx("rotating a refresh token", |c| {
            rotate(c, &id, expected, new_hash, to_millis(now))
        })
    }
}

/// The rotation's compare-and-swap, inside the caller's transaction.
///
/// The conditional UPDATE is the compare-and-swap: on PostgreSQL a
/// concurrent rotation blocks on the row lock and then re-checks
/// `refresh_hash = expected` against the committed row (READ COMMITTED), so
/// only one wins; on SQLite writers are serialised.
pub(crate) fn rotate(
    c: &mut DbConn,
    id: &str,
    expected: &str,
    new_hash: &str,
    now_ms: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        ds::table
            .find(id)
            .filter(ds::refresh_hash.eq(expected))
            .filter(ds::state.eq("active"))
            .filter(ds::expires_at_ms.gt(now_ms)),
    )
    .set(ds::refresh_hash.eq(new_hash))
    .execute(c)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::insert_into(rt::table)
        .values((
            rt::token_hash.eq(expected),
            rt::session_id.eq(id),
            rt::superseded_at_ms.eq(now_ms),
        ))
        .execute(c)?;
    Ok(true)
}

impl KeyStore for Store {
    fn secret_or_insert(&self, name: &str, candidate: &str) -> anyhow::Result<String> {
        // Insert-if-absent, then read back: whichever instance inserted
        // first, every one reads the same value.
        self.run("storing a generated secret", |conn| {
            per_backend!(conn, |c| {
                diesel::insert_into(settings::table)
                    .values((settings::name.eq(name), settings::value.eq(candidate)))
                    .on_conflict_do_nothing()
                    .execute(c)
            })?;
            settings::table.find(name).select(settings::value).first(conn)
        })
    }
}
