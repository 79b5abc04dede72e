//! The harness shared by the contract suites: a fresh, migrated store per
//! test on each database, and the `contract!` macro that instantiates each
//! contract function once per backend.

use store::{Store, StoreOptions, testing};

/// A migrated store on `url`.
pub fn open(url: &str) -> Store {
    let store = Store::connect(url, &StoreOptions::default()).expect("connect");
    store.migrate().expect("migrate");
    store
}

/// A store on a fresh SQLite file.
pub fn sqlite_store() -> Store {
    open(&testing::fresh_sqlite_url())
}

/// A store on a fresh PostgreSQL schema; `None` when PostgreSQL is
/// unreachable outside CI.
pub fn postgres_store() -> Option<Store> {
    testing::fresh_postgres_url().map(|url| open(&url))
}

/// One `#[test]` per backend for each contract function.
#[macro_export]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let store = $crate::common::sqlite_store();
                    assert_eq!(store.backend(), store::Backend::Sqlite);
                    super::$name(&store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(store) = $crate::common::postgres_store() {
                        assert_eq!(store.backend(), store::Backend::Postgres);
                        super::$name(&store);
                    }
                }
            )*
        }
    };
}
