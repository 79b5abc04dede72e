//! Closed-loop load: N connections, each sending its next request as soon as
//! the previous answer is in, for a warm-up and then a measured window.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Conn;

/// What one endpoint did during the measured window.
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
}

impl Outcome {
    /// Every error, non-2xx answers and I/O failures.
    pub(crate) fn errors(&self) -> u64 {
        self.non_2xx + self.io_errors
    }
}

#[derive(Default)]
struct WorkerStats {
    latencies_us: Vec<u32>,
    non_2xx: u64,
    io_errors: u64,
    acked: u64,
    abandoned: u64,
}

/// Runs the load on the current (single-threaded) runtime: `connections`
/// workers for `warmup`, then for `duration` measured. Only responses that
/// complete inside the measured window count; requests still in flight at
/// its end are abandoned. Worker `i` sends `requests[i]`,
/// `requests[i + connections]`, … round the list, so a list of one sends
/// the same request everywhere and a long list varies them.
pub(crate) async fn run(
    addr: SocketAddr,
    requests: Vec<Vec<u8>>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Outcome {
    let requests: Rc<[Vec<u8>]> = requests.into();
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let local = tokio::task::LocalSet::new();
    let handles: Vec<_> = (0..connections)
        .map(|i| {
            let requests = Rc::clone(&requests);
            local.spawn_local(worker(addr, requests, i, connections, measure_from, end))
        })
        .collect();
    let stats = local
        .run_until(async move {
            let mut all = Vec::with_capacity(handles.len());
            for h in handles {
                // A worker never panics; if one did, its numbers are lost.
                if let Ok(s) = h.await {
                    all.push(s);
                }
            }
            all
        })
        .await;
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
        rps: latencies.len() as f64 / duration.as_secs_f64(),
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        non_2xx,
        io_errors,
        acked,
        abandoned,
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
    requests: Rc<[Vec<u8>]>,
    first: usize,
    step: usize,
    measure_from: Instant,
    end: Instant,
) -> WorkerStats {
    let mut next = first;
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
        let Some(request) = requests.get(next % requests.len().max(1)) else { break };
        next = next.wrapping_add(step);
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
