//! The threads password hashes run on: [`HashPool`], the server's
//! [`accounts::CpuRunner`].

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use accounts::{CpuRunner, CpuWork, PasswordHasher};

/// A unit of work for the pool.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that run password hashes, one at a time each, at
/// a lower scheduling priority (nice +10 on Linux) than the threads serving
/// requests. Callers block until their hash is done; when every thread is
/// busy, hashes wait in line.
pub struct HashPool {
    queue: mpsc::Sender<Job>,
    threads: usize,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool").field("threads", &self.threads).finish()
    }
}

/// The priority of hashing threads on the crate's 0 (lowest) to 99 scale;
/// 25 maps to nice +10: a hash gets about a tenth of a core that request
/// threads also want, and all of a core nobody else wants.
const HASH_PRIORITY: u8 = 25;

impl HashPool {
    /// A pool of `threads` (at least one) hashing threads.
    pub fn new(threads: usize) -> Self {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = threads.max(1);
        for i in 0..threads {
            let jobs = jobs.clone();
            let spawned =
                std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                    // Best effort: without the right to lower its priority the
                    // thread still hashes, it only competes as an equal.
                    let _ = thread_priority::ThreadPriorityValue::try_from(HASH_PRIORITY)
                        .map(thread_priority::ThreadPriority::Crossplatform)
                        .map(thread_priority::set_current_thread_priority);
                    loop {
                        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            // A thread that cannot start leaves the others (or, with none,
            // `run`'s inline fallback) to do the work.
            drop(spawned);
        }
        Self { queue, threads }
    }

    /// A pool of one thread per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs `work` on a pool thread and waits for its result; on the
    /// caller's thread if the pool cannot take it. A panic in `work`
    /// continues on the caller, with its own payload; the pool thread is
    /// kept.
    pub fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _gone = reply.send(panic::catch_unwind(AssertUnwindSafe(work)));
        });
        if let Err(mpsc::SendError(job)) = self.queue.send(job) {
            // Unreachable while `self` lives (the receiver is held by the
            // threads), but never lose the work.
            job();
        }
        match answer.recv() {
            Ok(Ok(value)) => value,
            Ok(Err(panicked)) => panic::resume_unwind(panicked),
            // The pool thread died before answering.
            Err(_) => panic!("a password hash failed on the hashing pool"),
        }
    }
}

impl CpuRunner for HashPool {
    fn execute(&self, work: CpuWork) {
        self.run(work);
    }
}

/// The server's password hasher: OWASP parameters
/// ([`PasswordHasher::default`]), every hash on `pool`.
pub fn password_hasher(pool: Arc<HashPool>) -> PasswordHasher {
    PasswordHasher::default().with_runner(pool)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use accounts::Password;

    use super::*;

    #[test]
    fn at_most_one_hash_per_thread_runs_at_once() {
        let pool = Arc::new(HashPool::new(2));
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let callers: Vec<_> = (0..8)
            .map(|i| {
                let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                        (i, std::thread::current().name().map(str::to_owned))
                    })
                })
            })
            .collect();
        for (i, caller) in callers.into_iter().enumerate() {
            let (j, name) = caller.join().unwrap_or_else(|_| panic!("caller {i} panicked"));
            assert_eq!(i, j, "each caller gets its own result");
            assert!(name.is_some_and(|n| n.starts_with("argon2-")), "ran on the pool");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_threads_run_at_a_lower_priority() {
        // Field 19 of /proc/thread-self/stat is the nice value.
        let nice = || {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after_name.split_whitespace().nth(16).and_then(|n| n.parse::<i32>().ok())
        };
        let here = nice().unwrap_or_else(|| panic!("cannot read this thread's nice value"));
        let there = HashPool::new(1).run(nice).unwrap_or_else(|| panic!("no nice value"));
        assert!(there > here, "hashing thread nice {there}, caller {here}");
    }

    #[test]
    fn a_panic_on_the_pool_reaches_the_caller_and_the_thread_survives() {
        let pool = HashPool::new(1);
        let caught =
            panic::catch_unwind(AssertUnwindSafe(|| pool.run(|| -> u8 { panic!("boom") })));
        let message = caught.err().and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        assert_eq!(message.as_deref(), Some("boom"));
        assert_eq!(pool.run(|| 7), 7);
    }

    #[test]
    fn the_server_hasher_hashes_on_the_pool() {
        let pool = Arc::new(HashPool::new(1));
        let h = password_hasher(pool.clone());
        let p = Password::parse("password123").unwrap_or_else(|_| unreachable!());
        let hash = h.hash(&p);
        assert!(h.verify("password123", &hash));
        assert!(!h.verify("password124", &hash));
        // Occupy the pool's only thread: a verification must then wait
        // for it, which it would not on the caller's thread.
        let (started, has_started) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let busy = pool.clone();
        let blocker = std::thread::spawn(move || {
            busy.run(move || {
                let _ = started.send(());
                let _ = released.recv();
            })
        });
        has_started.recv().unwrap_or_else(|_| panic!("the pool never ran the blocker"));
        let (done, verified) = mpsc::channel();
        std::thread::spawn(move || done.send(h.verify("password123", &hash)));
        assert!(verified.recv_timeout(Duration::from_millis(200)).is_err(), "ran off the pool");
        let _ = release.send(());
        assert_eq!(verified.recv_timeout(Duration::from_secs(30)), Ok(true));
        blocker.join().unwrap_or_else(|_| panic!("the blocker panicked"));
    }
}
