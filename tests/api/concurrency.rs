//! Many parallel refreshes of one refresh token: never two live lineages
//! outside the grace rule, never a 5xx.

use serde_json::{Value, json};
use tokens::RefreshTokenStore as _;

use crate::support::{CHROME_WINDOWS, Db, Server};

crate::on_both_databases!(
    parallel_refreshes_within_grace_leave_one_lineage,
    parallel_refreshes_without_grace_let_one_win
);

const PW: &str = "correct horse battery";
const PARALLEL: usize = 16;

fn refresh_in_parallel(s: &Server, token: &str) -> Vec<(u16, Value)> {
    let barrier = std::sync::Barrier::new(PARALLEL);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PARALLEL)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let r = s.post("/api/auth/refresh", None, json!({"refresh_token": token}));
                    (r.status, r.body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

fn parallel_refreshes_within_grace_leave_one_lineage(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_REFRESH_GRACE_SECS", "30")]) else { return };
    s.register("pat", PW);
    let t = s.login("pat", PW, CHROME_WINDOWS);
    let results = refresh_in_parallel(&s, &t.refresh);
    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "all within grace succeed: {results:?}"
    );

    // Exactly one of the issued refresh tokens is the session's current one;
    // every other was superseded (and dies when the grace window ends).
    let store =
        store::Store::connect(&s.database_url, &store::StoreOptions::default()).expect("store");
    let issued: Vec<String> = results
        .iter()
        .map(|(_, b)| b["data"]["refresh_token"].as_str().unwrap_or_default().to_owned())
        .collect();
    let current: Vec<&String> = issued
        .iter()
        .filter(|tok| {
            store
                .find_refresh(&tokens::refresh::hash(tok))
                .expect("find")
                .is_some_and(|r| r.superseded_at.is_none())
        })
        .collect();
    assert_eq!(current.len(), 1, "one live lineage, not {}", current.len());
    let all_distinct =
        issued.iter().collect::<std::collections::HashSet<_>>().len() == issued.len();
    assert!(all_distinct, "every refresh minted its own token");
    s.post("/api/auth/refresh", None, json!({"refresh_token": current[0]})).expect(200, None);
}

fn parallel_refreshes_without_grace_let_one_win(db: Db) {
    let Some(s) = Server::start_with(db, &[("SESSIOND_REFRESH_GRACE_SECS", "0")]) else { return };
    s.register("quinn", PW);
    let t = s.login("quinn", PW, CHROME_WINDOWS);
    let results = refresh_in_parallel(&s, &t.refresh);
    assert!(results.iter().all(|(status, _)| *status < 500), "no 5xx: {results:?}");
    let wins = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(wins, 1, "exactly one rotation wins: {results:?}");
    for (status, body) in &results {
        if *status != 200 {
            assert_eq!(*status, 401);
            assert_eq!(body["error"]["code"], "REFRESH_TOKEN_REUSED");
        }
    }
    // The losers presented a superseded token: the session is revoked.
    s.get("/api/auth/me", Some(&t.access)).expect(401, Some("UNAUTHORIZED"));
}
