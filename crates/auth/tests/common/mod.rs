//! What the service-level tests on real databases share: a fresh store of
//! each kind and an `AuthService` over it with an injected clock.

use std::sync::Arc;

use accounts::PasswordHasher;
use auth::{AuthService, Settings};
use kernel::{Duration, ManualClock};
use sessions::Lifetimes;
use store::{Store, StoreOptions, testing};
use tokens::TokenCodec;

/// The use cases over `store`, on `clock`, with default settings changed by
/// `tweak`.
pub fn service(
    store: &Store,
    clock: Arc<ManualClock>,
    tweak: impl FnOnce(&mut Settings),
) -> AuthService {
    let ports = store.auth_ports(Arc::new(sessions::NoLocator), clock);
    let mut settings = Settings {
        lifetimes: Lifetimes { absolute: Duration::hours(24), idle: None },
        refresh_grace: Duration::seconds(10),
        bearer_refresh: true,
        registration_open: true,
        throttle: auth::ThrottlePolicy::default(),
    };
    tweak(&mut settings);
    let codec =
        TokenCodec::new(b"0123456789abcdef0123456789abcdef", "sessiond", Duration::hours(1));
    AuthService::new(ports, codec, PasswordHasher::fast_for_tests(), settings)
}

/// A fresh, migrated SQLite store, and a PostgreSQL one when the server is
/// there (always under CI).
pub fn stores() -> Vec<Store> {
    let mut urls = vec![testing::fresh_sqlite_url()];
    urls.extend(testing::fresh_postgres_url());
    urls.iter()
        .map(|u| {
            let s = Store::connect(u, &StoreOptions::default()).expect("connect");
            s.migrate().expect("migrate");
            s
        })
        .collect()
}

/// Noon, 2024-04-05 UTC: where the clocks of these tests start.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at(kernel::parse_instant("2024-04-05T12:00:00Z").expect("t0")))
}
