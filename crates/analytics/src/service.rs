//! The analytics use cases: [`AnalyticsService`], what its tracking and
//! report use cases share, and the page-visit commit it hands to async
//! callers. The use cases themselves are in `service/tracking.rs` (the
//! state machine applied as a compare-and-swap, page visits) and
//! `service/reports.rs` (the reports built from the store's bucket
//! aggregates).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use kernel::{Clock, Duration, OffsetDateTime};

#[cfg(doc)]
use crate::StartRequest;
use crate::{
    AnalyticsError, AnalyticsSettings, PageVisit, PageWriter, PendingVisit, TrackingStore,
};

mod reports;
mod tracking;

pub use reports::MAX_DETAIL_EVENTS;

/// How far ahead of the server clock an event time may be (clock skew).
/// Back-dated events are fine (offline clients catch up); far-future ones
/// would only distort reports and can make one interval span years of
/// buckets.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// The analytics use cases.
pub struct AnalyticsService {
    store: Arc<dyn TrackingStore>,
    clock: Arc<dyn Clock>,
    settings: AnalyticsSettings,
    /// Where page visits go to be made durable.
    pages: Arc<dyn PageWriter>,
    /// Session steps acknowledged, for metrics (the page writer counts the
    /// visits).
    steps: AtomicU64,
}

impl AnalyticsService {
    /// Wires the use cases. Page visits are written straight through
    /// [`TrackingStore::record_pages`], one transaction each, until a
    /// group-committing [`PageWriter`] is given with
    /// [`with_page_writer`](Self::with_page_writer) (a server does that).
    pub fn new(
        store: Arc<dyn TrackingStore>,
        clock: Arc<dyn Clock>,
        settings: AnalyticsSettings,
    ) -> Self {
        let pages = Arc::new(WriteThrough { store: store.clone(), written: AtomicU64::new(0) });
        Self { store, clock, settings, pages, steps: AtomicU64::new(0) }
    }

    /// The same use cases, writing page visits through `pages`.
    #[must_use]
    pub fn with_page_writer(self, pages: Arc<dyn PageWriter>) -> Self {
        Self { pages, ..self }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AnalyticsSettings {
        &self.settings
    }

    fn count_step(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
    }

    /// Tracking events acknowledged by this process since it started
    /// (session steps and page visits): the metrics' counter.
    pub fn events_ingested(&self) -> u64 {
        self.steps.load(Ordering::Relaxed) + self.pages.visits_written()
    }

    /// The clock, at the store's precision: the `now` an edge passes to
    /// the requests' parsers ([`StartRequest::parse`], …), which hold
    /// event times to [`MAX_CLOCK_SKEW`] ahead of it.
    pub fn now(&self) -> OffsetDateTime {
        kernel::truncate_millis(self.clock.now())
    }
}

/// A page visit on its way to durability
/// ([`AnalyticsService::record_page_visit`]): resolves to the visit once
/// its commit is durable, or to the commit's error.
#[must_use = "the visit is written either way, but only the future says when it is durable"]
pub struct PageCommit(PendingVisit);

impl std::fmt::Debug for PageCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageCommit")
    }
}

impl Future for PageCommit {
    type Output = Result<PageVisit, AnalyticsError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx).map(|r| r.map_err(AnalyticsError::Unknown))
    }
}

/// The page writer of a service given none: every visit in a transaction
/// of its own, on the caller's thread.
struct WriteThrough {
    store: Arc<dyn TrackingStore>,
    written: AtomicU64,
}

impl PageWriter for WriteThrough {
    fn write(&self, visit: PageVisit) -> anyhow::Result<PageVisit> {
        self.store.record_pages(std::slice::from_ref(&visit))?;
        self.written.fetch_add(1, Ordering::Relaxed);
        Ok(visit)
    }

    fn submit(&self, visit: PageVisit) -> PendingVisit {
        Box::pin(std::future::ready(self.write(visit)))
    }

    fn visits_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}
