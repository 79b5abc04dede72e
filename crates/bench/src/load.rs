//! Closed-loop load: N connections, each sending its next request as soon as
//! the previous answer is in, for a warm-up and then a measured window.
//!
//! What a connection sends is its [`Script`]: the same few requests round
//! and round ([`Cycle`]), a chain where each request depends on the last
//! answer (refresh-token rotation, in `main`), or a finite list shared by
//! all connections ([`Once`]). Several [`Group`]s of connections can run in
//! the same window (token-info while logins flood the server) and each
//! gets its own [`Outcome`].

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Conn, Response};

/// What one group of connections did during the measured window.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Responses completed in the window, per second.
    pub(crate) rps: f64,
    /// Median latency, microseconds.
    pub(crate) p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub(crate) p99_us: u64,
    /// Non-2xx responses in the window.
    pub(crate) non_2xx: u64,
    /// Failed connects, reads and writes in the window.
    pub(crate) io_errors: u64,
    /// 2xx responses over the whole run, warm-up included.
    pub(crate) acked: u64,
    /// Requests still in flight when the window closed (abandoned: the
    /// server may or may not have done them).
    pub(crate) abandoned: u64,
    /// Responses completed in the window (the count behind `rps`).
    pub(crate) completed: u64,
}

impl Outcome {
    /// Every error, non-2xx answers and I/O failures.
    pub(crate) fn errors(&self) -> u64 {
        self.non_2xx + self.io_errors
    }
}

/// What one connection sends, request after request.
pub(crate) trait Script {
    /// The next request, or `None` when this connection has no more to send.
    fn next_request(&mut self) -> Option<&[u8]>;

    /// Sees the answer to the request just sent (successful or not), for
    /// scripts whose next request depends on it. Not called when the
    /// request failed on the connection (no answer to see).
    fn answered(&mut self, _response: &Response) {}
}

/// Requests `first`, `first + step`, … of a shared list, round and round:
/// with one [`Cycle::all`] per connection, a list of one sends the same
/// request everywhere and a long list varies them across connections.
pub(crate) struct Cycle {
    requests: Rc<[Vec<u8>]>,
    next: usize,
    step: usize,
}

impl Cycle {
    /// One script per connection over `requests`, interleaved.
    pub(crate) fn all(requests: Vec<Vec<u8>>, connections: usize) -> Vec<Box<dyn Script>> {
        let requests: Rc<[Vec<u8>]> = requests.into();
        (0..connections)
            .map(|i| {
                Box::new(Cycle { requests: Rc::clone(&requests), next: i, step: connections })
                    as Box<dyn Script>
            })
            .collect()
    }
}

impl Script for Cycle {
    fn next_request(&mut self) -> Option<&[u8]> {
        let len = self.requests.len();
        if len == 0 {
            return None;
        }
        let i = self.next % len;
        self.next = self.next.wrapping_add(self.step);
        self.requests.get(i).map(Vec::as_slice)
    }
}

/// Every request of a shared list exactly once, taken by whichever
/// connection is free first (so the list is done as fast as the server
/// allows); a connection stops when the list is exhausted.
pub(crate) struct Once {
    requests: Rc<[Vec<u8>]>,
    cursor: Rc<Cell<usize>>,
}

impl Once {
    /// `connections` scripts sharing `requests`.
    pub(crate) fn all(requests: Vec<Vec<u8>>, connections: usize) -> Vec<Box<dyn Script>> {
        let requests: Rc<[Vec<u8>]> = requests.into();
        let cursor = Rc::new(Cell::new(0));
        (0..connections)
            .map(|_| {
                Box::new(Once { requests: Rc::clone(&requests), cursor: Rc::clone(&cursor) })
                    as Box<dyn Script>
            })
            .collect()
    }
}

impl Script for Once {
    fn next_request(&mut self) -> Option<&[u8]> {
        let i = self.cursor.get();
        self.cursor.set(i + 1);
        self.requests.get(i).map(Vec::as_slice)
    }
}

/// Connections measured together: connection `i` talks to
/// `addrs[i % addrs.len()]` and runs `scripts[i]`.
pub(crate) struct Group {
    /// Servers, spread round-robin over the connections.
    pub(crate) addrs: Vec<SocketAddr>,
    /// One script per connection.
    pub(crate) scripts: Vec<Box<dyn Script>>,
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    non_2xx: u64,
    io_errors: u64,
    acked: u64,
    abandoned: u64,
    /// When the script ran out of requests, if it did before the end.
    done_at: Option<Instant>,
}

/// Runs the load on the current (single-threaded) runtime: `connections`
/// workers for `warmup`, then for `duration` measured. Only responses that
/// complete inside the measured window count; requests still in flight at
/// its end are abandoned. Worker `i` sends `requests[i]`,
/// `requests[i + connections]`, … round the list (see [`Cycle`]).
pub(crate) async fn run(
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Outcome {
    let group = Group { addrs: vec![addr], scripts: Cycle::all(requests, connections) };
    let mut outcomes = run_groups(vec![group], warmup, duration).await;
    outcomes.pop().unwrap_or_default()
}

/// Runs every group's connections in the same warm-up and measured window;
/// one [`Outcome`] per group, in order. A group whose scripts all run out
/// early is measured over the time it took (see [`Once`]).
pub(crate) async fn run_groups(
    groups: Vec<Group>,
    warmup: Duration,
    duration: Duration,
) -> Vec<Outcome> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let local = tokio::task::LocalSet::new();
    let handles: Vec<Vec<_>> = groups
        .into_iter()
        .map(|group| {
            let addrs = group.addrs;
            group
                .scripts
                .into_iter()
                .enumerate()
                .filter_map(|(i, script)| {
                    let addr = *addrs.get(i % addrs.len().max(1))?;
                    Some(local.spawn_local(worker(addr, script, measure_from, end)))
                })
                .collect()
        })
        .collect();
    let stats = local
        .run_until(async move {
            let mut all = Vec::with_capacity(handles.len());
            for group in handles {
                let mut stats = Vec::with_capacity(group.len());
                for h in group {
                    // A worker never panics; if one did, its numbers are lost.
                    if let Ok(s) = h.await {
                        stats.push(s);
                    }
                }
                all.push(stats);
            }
            all
        })
        .await;
    stats.into_iter().map(|s| summarise(s, measure_from, end)).collect()
}

/// One group's numbers from its workers'.
fn summarise(stats: Vec<WorkerStats>, measure_from: Instant, end: Instant) -> Outcome {
    // The window closes at its end, or when the last worker ran out of
    // requests if they all did before.
    let closed_at = if stats.iter().all(|s| s.done_at.is_some()) {
        stats.iter().filter_map(|s| s.done_at).max().unwrap_or(end).min(end)
    } else {
        end
    };
    let window = closed_at.saturating_duration_since(measure_from);
    let mut latencies: Vec<u32> = Vec::new();
    let (mut non_2xx, mut io_errors, mut acked, mut abandoned) = (0, 0, 0, 0);
    for s in stats {
        latencies.extend_from_slice(&s.latencies_us);
        non_2xx += s.non_2xx;
        io_errors += s.io_errors;
        acked += s.acked;
        abandoned += s.abandoned;
    }
    latencies.sort_unstable();
    Outcome {
        rps: latencies.len() as f64 / window.as_secs_f64().max(1e-9),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        non_2xx,
        io_errors,
        acked,
        abandoned,
        completed: latencies.len() as u64,
    }
}

/// Nearest-rank percentile of sorted values; 0 when empty.
pub(crate) fn percentile(sorted: &[u32], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    u64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

async fn worker(
    addr: SocketAddr,
    mut script: Box<dyn Script>,
    measure_from: Instant,
    end: Instant,
) -> WorkerStats {
    let mut stats =
        WorkerStats { latencies_us: Vec::with_capacity(64 * 1024), ..WorkerStats::default() };
    let mut conn: Option<Conn> = None;
    while Instant::now() < end {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match tokio::time::timeout_at(end, Conn::connect(addr)).await {
                Err(_) => break,
                Ok(Ok(c)) => conn.insert(c),
                Ok(Err(_)) => {
                    if Instant::now() >= measure_from {
                        stats.io_errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(request) = script.next_request() else {
            stats.done_at = Some(Instant::now());
            break;
        };
        let t0 = Instant::now();
        let Ok(result) = tokio::time::timeout_at(end, c.roundtrip(request)).await else {
            stats.abandoned += 1;
            break;
        };
        let t1 = Instant::now();
        let counted = t1 >= measure_from;
        match result {
            Ok(resp) => {
                if resp.is_success() {
                    stats.acked += 1;
                }
                if counted {
                    let us = (t1 - t0).as_micros();
                    stats.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    if !resp.is_success() {
                        stats.non_2xx += 1;
                    }
                }
                if resp.close {
                    conn = None;
                }
                script.answered(&resp);
            }
            Err(_) => {
                if counted {
                    stats.io_errors += 1;
                }
                conn = None;
            }
        }
    }
    stats
}
