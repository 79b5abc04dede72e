//! Argon2id password hashing: the parameters, the PHC strings and the decoy
//! hash for unknown users. Where the hashing runs is a port ([`CpuRunner`]):
//! the binary puts it on a pool of low-priority threads.

use std::sync::{Arc, mpsc};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use rand_core::OsRng;

use crate::Password;

/// A unit of CPU-heavy work handed to a [`CpuRunner`]: it owns its inputs
/// (`'static`) because it may run on another thread (`Send`).
pub type CpuWork = Box<dyn FnOnce() + Send + 'static>;

/// Port: runs CPU-heavy work (a password hash) somewhere, and returns once it
/// has run. A hash takes tens of milliseconds of a core; the domain decides
/// what is hashed, the application decides which threads pay for it (the
/// server: a bounded pool at a lower priority, so that a flood of logins
/// queues instead of starving the requests that only check a token).
pub trait CpuRunner: Send + Sync {
    /// Runs `work` to completion before returning, on whichever thread the
    /// runner chooses. If `work` panics, the panic continues on the caller
    /// (this call panics): a hash that failed must not look like a result.
    fn execute(&self, work: CpuWork);
}

/// The default [`CpuRunner`]: the work runs on the caller's thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerThread;

impl CpuRunner for CallerThread {
    fn execute(&self, work: CpuWork) {
        work();
    }
}

/// Hashes and verifies passwords with Argon2id. CPU-bound (tens of
/// milliseconds at OWASP parameters): callers run it off the async executor.
///
/// Hashes run on the caller's thread unless [`PasswordHasher::with_runner`]
/// gives them a [`CpuRunner`].
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// Where hashes run.
    runner: Arc<dyn CpuRunner>,
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
    /// OWASP's minimum for Argon2id: m = 19 MiB, t = 2, p = 1, on the
    /// caller's thread.
    fn default() -> Self {
        Self::with_params(Params::new(19 * 1024, 2, 1, None).unwrap_or_default())
    }
}

impl PasswordHasher {
    /// Argon2id with the given parameters, run on the caller's thread.
    pub fn with_params(params: Params) -> Self {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon, runner: Arc::new(CallerThread), decoy: String::new() };
        hasher.decoy = hasher.hash_str(&uuid_like_random());
        hasher
    }

    /// Cheap parameters, for tests only: never use them for real passwords.
    pub fn fast_for_tests() -> Self {
        Self::with_params(Params::new(64, 1, 1, None).unwrap_or_default())
    }

    /// The same hasher, running every hash and verification on `runner`.
    pub fn with_runner(mut self, runner: Arc<dyn CpuRunner>) -> Self {
        self.runner = runner;
        self
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

    /// Runs `work` on the runner and hands back its result. The port takes
    /// no type parameter (it is used as `dyn CpuRunner`), so the result
    /// comes back through a one-slot channel.
    fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let (reply, answer) = mpsc::sync_channel(1);
        self.runner.execute(Box::new(move || {
            let _gone = reply.send(work());
        }));
        answer
            .try_recv()
            .unwrap_or_else(|_| panic!("the CPU runner returned without running the hash"))
    }

    /// Spends the time of one verification without any account: called when
    /// the login names an unknown user, so timing does not reveal it.
    pub fn verify_decoy(&self, password: &str) {
        let _ = self.verify(password, &self.decoy);
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

    /// Runs work on a thread of its own and counts it.
    struct OtherThread(std::sync::atomic::AtomicUsize);

    impl CpuRunner for OtherThread {
        fn execute(&self, work: CpuWork) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Err(panic) = std::thread::spawn(work).join() {
                std::panic::resume_unwind(panic);
            }
        }
    }

    #[test]
    fn hashes_and_verifications_run_on_the_runner() {
        let runner = Arc::new(OtherThread(0.into()));
        let h = PasswordHasher::fast_for_tests().with_runner(runner.clone());
        let p = Password::parse("password123").unwrap_or_else(|_| unreachable!());
        let hash = h.hash(&p);
        assert!(h.verify("password123", &hash));
        assert!(!h.verify("password124", &hash));
        h.verify_decoy("password123");
        assert_eq!(runner.0.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn a_panic_on_the_runner_reaches_the_caller() {
        let h = PasswordHasher::fast_for_tests().with_runner(Arc::new(OtherThread(0.into())));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            h.run(|| -> u8 { panic!("hash failed") })
        }));
        let message = caught.err().and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        assert_eq!(message.as_deref(), Some("hash failed"));
    }
}
