//! The batcher over a fake store that can fail, slow down or hold its
//! commits, and count how many run at once.

use std::sync::atomic::AtomicUsize;
use std::sync::{Barrier, Condvar};

use kernel::{ManualClock, Uuid};

use super::*;

/// The page side of a store, in memory, with knobs.
#[derive(Default)]
struct FakeLog {
    visits: Mutex<Vec<PageVisit>>,
    /// Sizes of the `record_pages` batches.
    batches: Mutex<Vec<usize>>,
    fail_pages: AtomicBool,
    slow_pages: AtomicBool,
    /// While true, `record_pages` waits (a commit that has not become
    /// durable yet).
    held: (Mutex<bool>, Condvar),
    /// What `page_writers` answers (0 = one).
    writers: usize,
    /// `record_pages` calls running now, and the most seen at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// `fold_pages` calls: `upto`, and how many visits were stored then.
    folds: Mutex<Vec<(OffsetDateTime, usize)>>,
    /// `fold_pages` fails while true.
    fail_folds: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PageLog for FakeLog {
    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()> {
        let (held, released) = &self.held;
        drop(released.wait_while(lock(held), |held| *held).expect("gate"));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if self.slow_pages.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.fail_pages.load(Ordering::SeqCst) {
            return Err(anyhow::Error::new(kernel::Unavailable("db down".into())));
        }
        lock(&self.batches).push(visits.len());
        lock(&self.visits).extend_from_slice(visits);
        Ok(())
    }

    fn fold_pages(&self, upto: OffsetDateTime) -> anyhow::Result<u64> {
        let stored = lock(&self.visits).len();
        lock(&self.folds).push((upto, stored));
        anyhow::ensure!(!self.fail_folds.load(Ordering::SeqCst), "fold failed");
        Ok(0)
    }

    fn page_writers(&self) -> usize {
        if self.writers == 0 { 1 } else { self.writers }
    }
}

struct Fixture {
    store: Arc<FakeLog>,
    clock: Arc<ManualClock>,
    pages: PageBatcher,
}

fn fixture_on(store: FakeLog) -> Fixture {
    let store = Arc::new(store);
    let clock =
        Arc::new(ManualClock::at(kernel::parse_instant("2024-06-01T12:00:00Z").expect("instant")));
    let pages = PageBatcher::over(store.clone(), clock.clone());
    Fixture { store, clock, pages }
}

fn fixture() -> Fixture {
    fixture_on(FakeLog::default())
}

/// Alice's visit to `page` in the app `web`, now.
fn visit(page: &str) -> PageVisit {
    PageVisit {
        id: kernel::new_id(),
        app: "web".into(),
        user: "alice".into(),
        page: page.into(),
        timespent: 120,
        session_id: None::<Uuid>,
        at: kernel::parse_instant("2024-06-01T12:00:00Z").expect("instant"),
    }
}

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.expect("the write should succeed")
}

#[test]
fn page_visits_are_group_committed() {
    let f = Arc::new(fixture());
    f.store.slow_pages.store(true, Ordering::SeqCst);
    let n = 40;
    let acked = write_at_once(&f, n, 0).into_iter().filter(Result::is_ok).count();
    assert_eq!(acked, n);
    // Every acknowledged visit is stored, in far fewer commits.
    assert_eq!(lock(&f.store.visits).len(), n);
    let batches = lock(&f.store.batches).clone();
    assert_eq!(batches.iter().sum::<usize>(), n);
    assert!(batches.len() < n / 2, "expected group commits, got {batches:?}");
}

/// Waits (at most 5 s) until `f`'s store has seen `n` folds.
fn wait_for_folds(f: &Fixture, n: usize) -> Vec<(OffsetDateTime, usize)> {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let folds = lock(&f.store.folds).clone();
        if folds.len() >= n || Instant::now() > deadline {
            return folds;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn the_batcher_folds_what_it_wrote_behind_the_clock_and_retries_failures() {
    let f = fixture();
    // Nothing written: the idle batcher does not fold.
    std::thread::sleep(FOLD_EVERY * 2);
    assert!(lock(&f.store.folds).is_empty());

    f.store.fail_folds.store(true, Ordering::SeqCst);
    ok(f.pages.write(visit("/a")));
    let folds = wait_for_folds(&f, 1);
    let (upto, stored) = folds[0];
    // Behind the batcher's clock, and after the visit was stored.
    assert_eq!(upto, f.clock.now() - FOLD_LAG);
    assert_eq!(stored, 1);

    // That fold failed: a later one folds again, with no new visit;
    // once one succeeds, the idle batcher stops folding.
    f.store.fail_folds.store(false, Ordering::SeqCst);
    assert!(wait_for_folds(&f, 2).len() >= 2, "a failed fold is retried");
    std::thread::sleep(FOLD_EVERY * 3);
    let settled = lock(&f.store.folds).len();
    std::thread::sleep(FOLD_EVERY * 3);
    assert_eq!(lock(&f.store.folds).len(), settled, "nothing left to fold");

    // The sweeper's own call folds behind the clock as well.
    f.pages.fold().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lock(&f.store.folds)[settled].0, f.clock.now() - FOLD_LAG);
}

#[test]
fn several_writers_commit_batches_at_once_and_lose_nothing() {
    let f = Arc::new(fixture_on(FakeLog { writers: 3, ..FakeLog::default() }));
    let store = f.store.clone();
    store.slow_pages.store(true, Ordering::SeqCst);
    let n = 60;
    // Spread over time, so that later visits arrive while earlier
    // batches are being written.
    assert!(write_at_once(&f, n, 1).iter().all(Result::is_ok));
    let mut stored: Vec<String> = lock(&store.visits).iter().map(|v| v.page.clone()).collect();
    stored.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("/p{i}")).collect();
    expected.sort();
    assert_eq!(stored, expected, "every acknowledged visit exactly once");
    let most = store.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=3).contains(&most), "expected overlapping batches, at most 3: {most}");
    // A stop drains every writer; later visits are written directly.
    f.pages.stop();
    ok(f.pages.write(visit("/after")));
    assert_eq!(lock(&store.visits).len(), n + 1);
}

/// Visits to `/p0` … `/p{n-1}`, written from `n` threads released
/// together, the i-th after a further `i × stagger_ms`.
fn write_at_once(f: &Arc<Fixture>, n: usize, stagger_ms: u64) -> Vec<anyhow::Result<PageVisit>> {
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                std::thread::sleep(std::time::Duration::from_millis(i as u64 * stagger_ms));
                f.pages.write(visit(&format!("/p{i}")))
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("thread")).collect()
}

#[test]
fn a_failed_commit_fails_every_visit_of_the_batch() {
    let f = Arc::new(fixture());
    f.store.fail_pages.store(true, Ordering::SeqCst);
    f.store.slow_pages.store(true, Ordering::SeqCst);
    // Each submitter sees the store's error, 503-able through the chain.
    assert!(write_at_once(&f, 10, 0).into_iter().all(|outcome| match outcome {
        Err(e) => kernel::Unavailable::in_chain(e.chain()),
        _ => false,
    }));
    assert!(lock(&f.store.visits).is_empty());
}

fn hold(store: &FakeLog, held: bool) {
    *lock(&store.held.0) = held;
    store.held.1.notify_all();
}

#[test]
fn async_visits_resolve_once_their_batch_is_durable() {
    let f = fixture();
    hold(&f.store, true);
    // Queued from one thread without waiting: no thread per visit.
    let mut commits: Vec<PendingVisit> =
        (0..30).map(|i| f.pages.submit(visit(&format!("/p{i}")))).collect();
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for c in &mut commits {
        assert!(c.as_mut().poll(&mut cx).is_pending(), "answered before it was durable");
    }
    assert!(lock(&f.store.visits).is_empty());
    assert_eq!(f.pages.visits_written(), 0);
    hold(&f.store, false);
    let pages: Vec<String> = commits.into_iter().map(|c| ok(pollster::block_on(c)).page).collect();
    assert_eq!(pages, (0..30).map(|i| format!("/p{i}")).collect::<Vec<_>>());
    assert_eq!(lock(&f.store.visits).len(), 30);
    assert_eq!(f.pages.visits_written(), 30);
    // The batch that was waiting at the gate, and everything queued
    // behind it in one more.
    let batches = lock(&f.store.batches).clone();
    assert!(batches.len() <= 2 && batches.iter().sum::<usize>() == 30, "{batches:?}");
}

#[test]
fn an_async_visit_is_written_even_if_nobody_waits() {
    let f = fixture();
    drop(f.pages.submit(visit("/gone")));
    f.pages.stop();
    assert_eq!(lock(&f.store.visits).len(), 1);
    // After the stop, a visit is written at once, before the future is
    // even polled.
    let late = f.pages.submit(visit("/late"));
    assert_eq!(lock(&f.store.visits).len(), 2);
    assert_eq!(ok(pollster::block_on(late)).page, "/late");
}

#[test]
fn async_visits_fail_with_their_batch() {
    let f = fixture();
    f.store.fail_pages.store(true, Ordering::SeqCst);
    match pollster::block_on(f.pages.submit(visit("/x"))) {
        Err(e) => assert!(kernel::Unavailable::in_chain(e.chain())),
        other => panic!("expected the store's error, got {other:?}"),
    }
    assert_eq!(f.pages.visits_written(), 0);
}

#[test]
fn stop_drains_and_later_visits_are_written_directly() {
    let f = fixture();
    ok(f.pages.write(visit("/before")));
    f.pages.stop();
    f.pages.stop();
    ok(f.pages.write(visit("/after")));
    assert_eq!(lock(&f.store.visits).len(), 2);
    drop(f);
}

#[test]
fn batch_errors_keep_the_chain() {
    let inner = anyhow::Error::new(kernel::Unavailable("down".into())).context("writing pages");
    let shared = Arc::new(inner);
    let e = anyhow::Error::new(BatchFailed(shared.clone()));
    assert!(kernel::Unavailable::in_chain(e.chain()));
    assert!(e.to_string().contains("writing pages"));
}
