//! Argon2id password hashing, on a bounded pool of low-priority threads.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use rand_core::OsRng;

use crate::Password;

/// Hashes and verifies passwords with Argon2id. CPU-bound (tens of
/// milliseconds at OWASP parameters): callers run it off the async executor.
///
/// The default hasher runs every hash on [`HashPool::shared`]: at most one
/// hash per core at a time, on threads of lower priority than the rest of
/// the process, so that a flood of logins queues up instead of starving
/// the requests that only check a token.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// Where hashes run; `None`: on the caller's thread.
    pool: Option<Arc<HashPool>>,
    /// A hash of a random password, verified when the account does not exist
    /// so that "no such user" costs as long as "wrong password".
    decoy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", self.argon.params()).finish()
    }
}

impl Default for PasswordHasher {
    /// OWASP's minimum for Argon2id: m = 19 MiB, t = 2, p = 1.
    fn default() -> Self {
        let mut hasher = Self::with_params(Params::new(19 * 1024, 2, 1, None).unwrap_or_default());
        hasher.pool = Some(HashPool::shared());
        hasher
    }
}

impl PasswordHasher {
    /// Argon2id with the given parameters, run on the caller's thread.
    pub fn with_params(params: Params) -> Self {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon, pool: None, decoy: String::new() };
        hasher.decoy = hasher.hash_str(&uuid_like_random());
        hasher
    }

    /// Cheap parameters, for tests only: never use them for real passwords.
    pub fn fast_for_tests() -> Self {
        Self::with_params(Params::new(64, 1, 1, None).unwrap_or_default())
    }

    /// Hashes a password into a PHC string with a fresh random salt.
    pub fn hash(&self, password: &Password) -> String {
        self.hash_str(password.expose())
    }

    fn hash_str(&self, password: &str) -> String {
        let (argon, password) = (self.argon.clone(), password.to_owned());
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                // Only fails for parameters out of range, which the constructors rule out.
                .unwrap_or_default()
        })
    }

    /// Whether `password` matches the PHC string `hash`. A malformed hash
    /// never matches.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        let (argon, password, hash) = (self.argon.clone(), password.to_owned(), hash.to_owned());
        self.run(move || match PasswordHash::new(&hash) {
            Ok(parsed) => argon.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        })
    }

    fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        match &self.pool {
            Some(pool) => pool.run(work),
            None => work(),
        }
    }

    /// Spends the time of one verification without any account: called when
    /// the login names an unknown user, so timing does not reveal it.
    pub fn verify_decoy(&self, password: &str) {
        let _ = self.verify(password, &self.decoy);
    }
}

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

    /// The process-wide pool, one thread per core.
    pub fn shared() -> Arc<Self> {
        static SHARED: OnceLock<Arc<HashPool>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                Arc::new(Self::new(cores))
            })
            .clone()
    }

    /// How many threads hash.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on a pool thread and waits for its result; on the
    /// caller's thread if the pool cannot take it.
    pub fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _gone = reply.send(work());
        });
        match self.queue.send(job) {
            Ok(()) => match answer.recv() {
                Ok(value) => value,
                // The job panicked on the pool thread: the same panic, here.
                Err(_) => panic!("a password hash failed on the hashing pool"),
            },
            Err(mpsc::SendError(job)) => {
                // Unreachable while `self` lives (the receiver is held by
                // the threads), but never lose the work.
                job();
                answer.recv().unwrap_or_else(|_| panic!("a password hash failed"))
            }
        }
    }
}

fn uuid_like_random() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id() {
        let h = PasswordHasher::fast_for_tests();
        let p = Password::parse("password123").unwrap_or_else(|_| unreachable!());
        let (a, b) = (h.hash(&p), h.hash(&p));
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(h.verify("password123", &a) && h.verify("password123", &b));
        assert!(!h.verify("password124", &a));
        assert!(!h.verify("password123", "not a hash"));
    }

    #[test]
    fn default_uses_owasp_parameters() {
        let h = PasswordHasher::default();
        let p = h.argon.params();
        assert!(p.m_cost() >= 19 * 1024 && p.t_cost() >= 2);
    }
}

#[cfg(test)]
mod pool_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

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
    fn the_default_hasher_hashes_on_the_shared_pool() {
        let h = PasswordHasher::default();
        assert!(h.pool.is_some());
        let p = Password::parse("password123").unwrap_or_else(|_| unreachable!());
        let hash = h.hash(&p);
        assert!(h.verify("password123", &hash));
        assert!(!h.verify("password124", &hash));
    }
}
