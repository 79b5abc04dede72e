//! The group-commit writer of page visits, `analytics::PageWriter` over the
//! store: [`Store::page_writers`] threads, each of which takes whatever is
//! queued (up to [`MAX_BATCH`] visits), writes it with one
//! `TrackingStore::record_pages` call, and answers every submitter. With two
//! or more, one batch fills while another waits for its commit to be
//! durable, so the fsync no longer idles the database.
//!
//! Submitters are threads (which block on a channel) or tasks (which await
//! a oneshot): an async caller costs no thread while it waits, and a batch
//! wakes each waiting task once, with nothing in between.
//!
//! The same threads fold the visits they wrote into the page aggregates
//! ([`Store::fold_pages`]) every [`FOLD_EVERY`], [`FOLD_LAG`] behind the
//! clock: one fold adds the visits of many batches at once.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Instant;

use analytics::{PageVisit, PageWriter, PendingVisit, TrackingStore};
use futures_channel::oneshot;
use kernel::{Clock, Duration, OffsetDateTime};

use crate::Store;

/// Most page visits written in one group commit.
const MAX_BATCH: usize = 1000;

/// How often the page batcher folds the visits it wrote into the
/// aggregates: one fold adds the visits of many batches at once, and until
/// it does, reports read them raw, so this bounds how many they read raw.
const FOLD_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// How far behind the clock a fold stays. A visit the server dates itself
/// reaches the store milliseconds after its time; one that arrives dated
/// before the fold's watermark is aggregated by its own batch, which costs
/// more, so the watermark stays clear of visits still on their way.
const FOLD_LAG: Duration = Duration::milliseconds(250);

/// What the batcher needs of a store: the store's group commit, its fold,
/// and how many writers it serves well at once. [`Store`] is the one in
/// production; the tests put a fake behind it to fail, slow down or hold
/// commits.
pub(crate) trait PageLog: Send + Sync {
    /// One group commit (`TrackingStore::record_pages`).
    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()>;
    /// Folds the visits dated before `upto` ([`Store::fold_pages`]).
    fn fold_pages(&self, upto: OffsetDateTime) -> anyhow::Result<u64>;
    /// How many batcher threads to run ([`Store::page_writers`]).
    fn page_writers(&self) -> usize;
}

impl PageLog for Store {
    fn record_pages(&self, visits: &[PageVisit]) -> anyhow::Result<()> {
        TrackingStore::record_pages(self, visits)
    }

    fn fold_pages(&self, upto: OffsetDateTime) -> anyhow::Result<u64> {
        Store::fold_pages(self, upto)
    }

    fn page_writers(&self) -> usize {
        Store::page_writers(self)
    }
}

/// The group-commit writer of page visits (see the module doc). Stopped
/// when dropped; visits handed over after [`PageBatcher::stop`] are
/// written directly, one transaction each.
pub struct PageBatcher {
    store: Arc<dyn PageLog>,
    clock: Arc<dyn Clock>,
    /// `None` once stopped (or if no thread could be started): visits
    /// are then written directly.
    queue: RwLock<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Visits made durable, for metrics: added once per batch.
    written: Arc<AtomicU64>,
}

impl PageBatcher {
    /// Starts the batcher threads over `store`; `clock` dates the folds.
    pub fn start(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        Self::over(store, clock)
    }

    /// Starts the batcher threads over any [`PageLog`].
    pub(crate) fn over(store: Arc<dyn PageLog>, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let written = Arc::new(AtomicU64::new(0));
        let folds = Arc::new(Folds {
            clock: clock.clone(),
            last: Mutex::new(Instant::now()),
            pending: AtomicBool::new(false),
        });
        let threads: Vec<JoinHandle<()>> = (0..store.page_writers().max(1))
            .map_while(|n| {
                let (store, rx) = (store.clone(), rx.clone());
                let (written, folds) = (written.clone(), folds.clone());
                std::thread::Builder::new()
                    .name(format!("analytics-pages-{n}"))
                    .spawn(move || run(store.as_ref(), &rx, &written, &folds))
                    .ok()
            })
            .collect();
        let queue = if threads.is_empty() { None } else { Some(tx) };
        Self { store, clock, queue: RwLock::new(queue), threads: Mutex::new(threads), written }
    }

    /// Folds the page visits dated up to a moment ago into the aggregates;
    /// returns how many. The batcher does this on its own every half
    /// second while visits arrive; a caller that runs it too (a sweeper:
    /// visits another process wrote before it stopped) makes reports
    /// cheaper, never different.
    pub fn fold(&self) -> anyhow::Result<u64> {
        self.store.fold_pages(fold_upto(self.clock.as_ref()))
    }

    /// Closes the queue, lets the threads write what it holds, and joins
    /// them. Visits handed over afterwards are written directly, one
    /// transaction each. Stopping twice does nothing more.
    pub fn stop(&self) {
        drop(self.queue.write().unwrap_or_else(|e| e.into_inner()).take());
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in threads {
            let _panicked = handle.join();
        }
    }

    /// Hands a visit to the batcher threads; when they are not running
    /// (stopped at shutdown, or never started) writes it at once in a
    /// transaction of its own, on the caller's thread, and answers it.
    fn enqueue(&self, job: Job) {
        let queue = self.queue.read().unwrap_or_else(|e| e.into_inner());
        let refused = match queue.as_ref() {
            Some(tx) => tx.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        drop(queue);
        if let Some(Job { visit, reply }) = refused {
            let outcome =
                write_batch(self.store.as_ref(), std::slice::from_ref(&visit), &self.written);
            reply.send(outcome.map(|()| visit));
        }
    }
}

impl PageWriter for PageBatcher {
    fn write(&self, visit: PageVisit) -> anyhow::Result<PageVisit> {
        let (reply, answer) = mpsc::channel();
        self.enqueue(Job { visit, reply: Reply::Thread(reply) });
        received(answer.recv().ok())
    }

    fn submit(&self, visit: PageVisit) -> PendingVisit {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Job { visit, reply: Reply::Task(reply) });
        Box::pin(Commit(answer))
    }

    fn visits_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

impl Drop for PageBatcher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The outcome of a group commit for one visit: the visit back, or the
/// batch's error, shared by every visit of the batch.
type Outcome = Result<PageVisit, Arc<anyhow::Error>>;

/// Where a visit's outcome goes: a waiting thread or a waiting task.
enum Reply {
    Thread(mpsc::Sender<Outcome>),
    Task(oneshot::Sender<Outcome>),
}

impl Reply {
    /// Hands over the outcome; a submitter that stopped waiting (a client
    /// that went away) does not matter, the visit is written regardless.
    fn send(self, outcome: Outcome) {
        let _gone = match self {
            Self::Thread(tx) => tx.send(outcome).is_ok(),
            Self::Task(tx) => tx.send(outcome).is_ok(),
        };
    }
}

/// A visit waiting for its batch, with where to report the outcome.
struct Job {
    visit: PageVisit,
    reply: Reply,
}

/// The future of one submitted visit's commit.
struct Commit(oneshot::Receiver<Outcome>);

impl Future for Commit {
    type Output = anyhow::Result<PageVisit>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| received(r.ok()))
    }
}

/// A submitter's result from what its batch sent (`None`: the batcher
/// went away without answering).
fn received(outcome: Option<Outcome>) -> anyhow::Result<PageVisit> {
    match outcome {
        Some(Ok(visit)) => Ok(visit),
        // The last submitter of a batch holds the only remaining
        // reference, so a batch of one hands back the original error.
        Some(Err(shared)) => Err(match Arc::try_unwrap(shared) {
            Ok(e) => e,
            Err(shared) => anyhow::Error::new(BatchFailed(shared)),
        }),
        None => Err(anyhow::anyhow!("the page batcher stopped before writing the visit")),
    }
}

/// When the batcher threads fold ([`FOLD_EVERY`], only after writing):
/// shared, so that one of them folds per interval.
struct Folds {
    clock: Arc<dyn Clock>,
    /// When the last fold began (real time: the interval paces work, it is
    /// not a date).
    last: Mutex<Instant>,
    /// Visits were written since the last fold began.
    pending: AtomicBool,
}

impl Folds {
    /// Folds when visits were written and the interval has passed since the
    /// last fold. A failure leaves the visits for the next fold: they stay
    /// counted (raw) meanwhile, so nothing is lost or wrong, only dearer.
    fn maybe_fold(&self, store: &dyn PageLog) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < FOLD_EVERY {
                return;
            }
            *last = Instant::now();
        }
        self.pending.store(false, Ordering::Release);
        let upto = fold_upto(self.clock.as_ref());
        let folded = std::panic::catch_unwind(AssertUnwindSafe(|| store.fold_pages(upto)));
        if !matches!(folded, Ok(Ok(_))) {
            self.pending.store(true, Ordering::Release);
        }
    }
}

/// Where a fold run now stops: [`FOLD_LAG`] behind the clock.
fn fold_upto(clock: &dyn Clock) -> OffsetDateTime {
    kernel::truncate_millis(clock.now()) - FOLD_LAG
}

/// What a batcher thread found in the queue.
enum Next {
    Batch(Vec<Job>),
    /// Nothing for [`FOLD_EVERY`].
    Idle,
    /// Every sender is gone and the queue is empty.
    Closed,
}

/// Takes the next batch: waits for one visit (at most [`FOLD_EVERY`]),
/// then adds whatever else is queued. The receiver is held only while
/// taking, never while writing.
fn next_batch(rx: &Mutex<mpsc::Receiver<Job>>) -> Next {
    let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
    let mut jobs = match rx.recv_timeout(FOLD_EVERY) {
        Ok(job) => vec![job],
        Err(mpsc::RecvTimeoutError::Timeout) => return Next::Idle,
        Err(mpsc::RecvTimeoutError::Disconnected) => return Next::Closed,
    };
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Next::Batch(jobs)
}

/// A batcher thread: runs until every sender is gone and the queue is
/// drained, so a stop never drops an accepted visit. Folds after
/// answering a batch, never before, and when the queue is idle.
fn run(store: &dyn PageLog, rx: &Mutex<mpsc::Receiver<Job>>, written: &AtomicU64, folds: &Folds) {
    loop {
        match next_batch(rx) {
            Next::Batch(jobs) => {
                let (visits, replies): (Vec<PageVisit>, Vec<Reply>) =
                    jobs.into_iter().map(|j| (j.visit, j.reply)).unzip();
                let outcome = write_batch(store, &visits, written);
                if outcome.is_ok() {
                    folds.pending.store(true, Ordering::Release);
                }
                for (visit, reply) in visits.into_iter().zip(replies) {
                    reply.send(outcome.clone().map(|()| visit));
                }
            }
            Next::Idle => {}
            Next::Closed => return,
        }
        folds.maybe_fold(store);
    }
}

/// One group commit. A panicking store must not take the batcher (and
/// every later visit) down with it.
fn write_batch(
    store: &dyn PageLog,
    visits: &[PageVisit],
    written: &AtomicU64,
) -> Result<(), Arc<anyhow::Error>> {
    std::panic::catch_unwind(AssertUnwindSafe(|| store.record_pages(visits)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the page store panicked")))
        .map_err(Arc::new)?;
    written.fetch_add(visits.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// A group commit's error as seen by one of several submitters. Its source
/// is the store's error, so the error chain (and with it
/// [`kernel::Unavailable`], which the HTTP edge answers with 503) is the
/// same for every visit of the batch.
#[derive(Debug)]
struct BatchFailed(Arc<anyhow::Error>);

impl std::fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing a batch of page visits failed: {}", self.0)
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let inner: &(dyn std::error::Error + Send + Sync + 'static) = (*self.0).as_ref();
        Some(inner)
    }
}

#[cfg(test)]
mod tests;
