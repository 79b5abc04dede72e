//! `tokens::SigningKeyStore`: the signing keys every instance on one
//! database shares (migration PostgreSQL 000012, SQLite 000009).
//!
//! At most one `current` and one `next` key exist (partial unique indexes),
//! so two instances creating the first set or rotating at the same moment
//! cannot both succeed: the first set is inserted only where no current key
//! exists, and a rotation is a compare-and-swap on the current kid.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use kernel::{OffsetDateTime, from_millis, to_millis};
use tokens::keys::KeyMaterial;
use tokens::{KeyState, SigningKey, SigningKeyStore, StoredKey};

use crate::schema::signing_keys as sk;
use crate::{Store, write_tx};

type Row = (String, String, String, i64, Option<i64>, Option<i64>, Vec<u8>, bool);

fn from_row(row: Row) -> anyhow::Result<StoredKey> {
    let (kid, alg, state, created, activated, retired, material, sealed) = row;
    let key = SigningKey {
        alg: alg.parse().map_err(|e: String| anyhow::anyhow!("signing key {kid}: {e}"))?,
        state: state.parse().map_err(|e: String| anyhow::anyhow!("signing key {kid}: {e}"))?,
        kid,
        created_at: from_millis(created),
        activated_at: activated.map(from_millis),
        retired_at: retired.map(from_millis),
        material: KeyMaterial::from_bytes(material),
    };
    Ok(StoredKey { key, sealed })
}

fn insert(c: &mut crate::conn::DbConn, stored: &StoredKey) -> QueryResult<usize> {
    let key = &stored.key;
    diesel::insert_into(sk::table)
        .values((
            sk::kid.eq(&key.kid),
            sk::alg.eq(key.alg.as_str()),
            sk::state.eq(key.state.as_str()),
            sk::created_at_ms.eq(to_millis(key.created_at)),
            sk::activated_at_ms.eq(key.activated_at.map(to_millis)),
            sk::retired_at_ms.eq(key.retired_at.map(to_millis)),
            sk::material.eq(key.material.expose()),
            sk::sealed.eq(stored.sealed),
        ))
        .execute(c)
}

impl Store {
    /// A write transaction on the keys; `None` when it lost a race on one
    /// of the unique indexes (and rolled back).
    fn key_tx<T>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut crate::conn::DbConn) -> QueryResult<T>,
    ) -> anyhow::Result<Option<T>> {
        let mut conn = self.conn()?;
        let done = write_tx(&mut conn, f);
        match conn.used(done) {
            Ok(v) => Ok(Some(v)),
            // Another instance won the race on a unique index.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
            Err(e) => Err(crate::db_err(e, what)),
        }
    }
}

impl SigningKeyStore for Store {
    fn load_keys(&self) -> anyhow::Result<Vec<StoredKey>> {
        let rows: Vec<Row> = self.run("loading the signing keys", |c| {
            sk::table
                .select((
                    sk::kid,
                    sk::alg,
                    sk::state,
                    sk::created_at_ms,
                    sk::activated_at_ms,
                    sk::retired_at_ms,
                    sk::material,
                    sk::sealed,
                ))
                .order(sk::created_at_ms)
                .load(c)
        })?;
        rows.into_iter().map(from_row).collect()
    }

    fn insert_initial_keys(&self, keys: &[StoredKey]) -> anyhow::Result<bool> {
        let done = self.key_tx("storing the first signing keys", |c| {
            let current: i64 =
                sk::table.filter(sk::state.eq(KeyState::Current.as_str())).count().get_result(c)?;
            if current > 0 {
                return Ok(false);
            }
            for key in keys {
                insert(c, key)?;
            }
            Ok(true)
        })?;
        Ok(done.unwrap_or(false))
    }

    fn rotate_keys(
        &self,
        expected_current: &str,
        new_next: &StoredKey,
        now: OffsetDateTime,
    ) -> anyhow::Result<bool> {
        let now_ms = to_millis(now);
        let done = self.key_tx("rotating the signing keys", |c| {
            let retired = diesel::update(
                sk::table
                    .filter(sk::kid.eq(expected_current))
                    .filter(sk::state.eq(KeyState::Current.as_str())),
            )
            .set((sk::state.eq(KeyState::Retired.as_str()), sk::retired_at_ms.eq(now_ms)))
            .execute(c)?;
            if retired == 0 {
                return Ok(false);
            }
            let promoted = diesel::update(sk::table.filter(sk::state.eq(KeyState::Next.as_str())))
                .set((sk::state.eq(KeyState::Current.as_str()), sk::activated_at_ms.eq(now_ms)))
                .execute(c)?;
            let mut stored = new_next.clone();
            if promoted == 0 {
                // No next key (it was never made): the new key signs now.
                stored.key.state = KeyState::Current;
                stored.key.activated_at = Some(now);
            } else {
                stored.key.state = KeyState::Next;
            }
            insert(c, &stored)?;
            Ok(true)
        })?;
        Ok(done.unwrap_or(false))
    }

    fn delete_retired_keys(&self, retired_before: OffsetDateTime) -> anyhow::Result<u64> {
        let n = self.run("deleting retired signing keys", |c| {
            diesel::delete(
                sk::table
                    .filter(sk::state.eq(KeyState::Retired.as_str()))
                    .filter(sk::retired_at_ms.lt(to_millis(retired_before))),
            )
            .execute(c)
        })?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}
