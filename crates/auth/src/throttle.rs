//! Login throttling against password guessing (SPEC §2 and §5).
//!
//! Failed logins are counted per account and per client address. Once a
//! count reaches its limit the key is locked: every login on it answers
//! "locked, retry after N seconds" without looking at the password, even
//! the right one. The first lock lasts the base time (60 s by default);
//! each further failure doubles it, up to a cap (900 s), so a lock always
//! ends: an attacker can delay a user, never shut them out for good.
//!
//! An attempt is counted as a failure BEFORE its password is checked and
//! taken back when the password was right. That is what makes the limit
//! hold under parallel attempts: twenty concurrent guesses against a limit
//! of five get five password checks, not twenty, because the count and the
//! lock decision happen in one store transaction per attempt.
//!
//! Unknown accounts are throttled exactly like real ones (keyed by the name
//! that was typed), so the answers never tell whether an account exists.
//! Keys are stored hashed: a password typed into the username field is
//! never written down.

use kernel::{Duration, OffsetDateTime};

/// The policy: limits and lock times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one account before it locks (SPEC default 5).
    pub account_max_failures: u32,
    /// Failures from one client address before it locks (default 20).
    pub ip_max_failures: u32,
    /// The first lock (default 60 s); doubled per further failure.
    pub lockout: Duration,
    /// The longest lock (900 s).
    pub max_lockout: Duration,
    /// Failures older than this (counted from the latest one) are forgotten.
    pub memory: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            account_max_failures: 5,
            ip_max_failures: 20,
            lockout: Duration::seconds(60),
            max_lockout: Duration::seconds(900),
            memory: DEFAULT_MEMORY,
        }
    }
}

/// How long failures are remembered after the latest one: longer than the
/// whole doubling ladder (60 + 120 + … + 900 s ≈ 30 min), so waiting out a
/// lock does not reset it.
pub const DEFAULT_MEMORY: Duration = Duration::hours(1);

/// What the store keeps per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures counted (attempts in flight included).
    pub failures: u32,
    /// When the latest one was counted.
    pub last_failure: OffsetDateTime,
    /// Locked until then, when set.
    pub locked_until: Option<OffsetDateTime>,
}

/// Port: failure records, changed atomically.
pub trait LoginThrottleStore: Send + Sync {
    /// Reads the records of `keys` (`None`: no record), lets `update` change
    /// them in place, and stores the result (`None` deletes), in one
    /// transaction that holds every key: calls on the same keys, from any
    /// process sharing the store, run one after the other.
    fn update_failures(
        &self,
        keys: &[&str],
        now: OffsetDateTime,
        update: &mut dyn FnMut(&mut [Option<LoginFailures>]),
    ) -> anyhow::Result<()>;

    /// Deletes records whose latest failure is before `forgotten_before`
    /// and that are not locked at `now`.
    fn purge_failures(
        &self,
        forgotten_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> anyhow::Result<u64>;
}

/// The stored key of an account (`user:<id>`) or a typed name
/// (`name:<lowercase>`) or an address (`ip:<addr>`), hashed.
pub(crate) fn key(kind: &str, value: &str) -> String {
    tokens::refresh::hash(&format!("{kind}:{value}"))
}

/// One attempt's claim on a key: what the record's lock was before the
/// attempt, and the lock the attempt set (if any), so that a right password
/// can take the count back exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    before: Option<OffsetDateTime>,
    set: Option<OffsetDateTime>,
}

impl Claim {
    /// Whether this attempt locked the key (worth an audit record when its
    /// password turns out wrong).
    pub(crate) fn locked(&self) -> bool {
        self.set.is_some()
    }
}

impl ThrottlePolicy {
    /// The lock after `failures` failures (`None` below the limit).
    fn lock_for(&self, failures: u32, max: u32) -> Option<Duration> {
        let extra = failures.checked_sub(max)?;
        // 2^extra, saturating: the cap applies long before it overflows.
        let factor = 1_i32.checked_shl(extra.min(30)).unwrap_or(i32::MAX);
        Some(self.lockout.saturating_mul(factor).min(self.max_lockout))
    }

    /// Counts an attempt on `record` (limit `max`): `Err(seconds to wait)`
    /// when the key is locked at `now`, else the claim, the record now
    /// holding one more failure (and a lock when that reaches `max`).
    pub(crate) fn claim(
        &self,
        record: &mut Option<LoginFailures>,
        max: u32,
        now: OffsetDateTime,
    ) -> Result<Claim, u64> {
        if let Some(secs) = wait(record.as_ref(), now) {
            return Err(secs);
        }
        let fresh = LoginFailures { failures: 0, last_failure: now, locked_until: None };
        let mut r = record.filter(|r| r.last_failure + self.memory > now).unwrap_or(fresh);
        let before = r.locked_until;
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
        let set = self.lock_for(r.failures, max.max(1)).map(|d| now + d);
        if set.is_some() {
            r.locked_until = set;
        }
        *record = Some(r);
        Ok(Claim { before, set })
    }

    /// Takes a claim back (the password was right): one failure fewer,
    /// and the lock the attempt set undone unless a later attempt changed it.
    pub(crate) fn release(record: &mut Option<LoginFailures>, claim: Claim) {
        let Some(r) = record else { return };
        r.failures = r.failures.saturating_sub(1);
        if claim.set.is_some() && r.locked_until == claim.set {
            r.locked_until = claim.before;
        }
        if r.failures == 0 {
            *record = None;
        }
    }
}

/// Whole seconds until `record`'s lock ends, `None` when it is not locked
/// at `now`.
pub(crate) fn wait(record: Option<&LoginFailures>, now: OffsetDateTime) -> Option<u64> {
    let until = record?.locked_until.filter(|u| *u > now)?;
    Some(wait_secs(until - now))
}

/// Whole seconds to wait for `d`, rounded up, at least 1.
fn wait_secs(d: Duration) -> u64 {
    let ms = u64::try_from(d.whole_milliseconds()).unwrap_or(u64::MAX);
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy::default()
    }

    #[test]
    fn the_fifth_failure_locks_for_the_base_time() {
        let p = policy();
        let mut r = None;
        for i in 1..=4 {
            let c = p.claim(&mut r, 5, T0).expect("not locked yet");
            assert!(!c.locked(), "attempt {i}");
        }
        let fifth = p.claim(&mut r, 5, T0).expect("the fifth attempt is still checked");
        assert!(fifth.locked());
        assert_eq!(r.map(|r| r.locked_until), Some(Some(T0 + Duration::seconds(60))));
        assert_eq!(p.claim(&mut r, 5, T0), Err(60));
        assert_eq!(p.claim(&mut r, 5, T0 + Duration::milliseconds(59_001)), Err(1));
    }

    #[test]
    fn each_further_failure_doubles_the_lock_up_to_the_cap() {
        let p = policy();
        let mut r = None;
        let mut now = T0;
        for _ in 0..5 {
            p.claim(&mut r, 5, now).expect("open");
        }
        let mut locks = Vec::new();
        for _ in 0..6 {
            let until = r.and_then(|r| r.locked_until).expect("locked");
            locks.push((until - now).whole_seconds());
            now = until;
            p.claim(&mut r, 5, now).expect("a lock always ends");
        }
        assert_eq!(locks, [60, 120, 240, 480, 900, 900]);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let p = policy();
        let mut r = None;
        for _ in 0..4 {
            p.claim(&mut r, 5, T0).expect("open");
        }
        let later = T0 + DEFAULT_MEMORY + Duration::seconds(1);
        let c = p.claim(&mut r, 5, later).expect("open");
        assert!(!c.locked());
        assert_eq!(r.map(|r| r.failures), Some(1));
    }

    #[test]
    fn a_right_password_takes_its_claim_back() {
        let p = policy();
        let mut r = None;
        let c = p.claim(&mut r, 5, T0).expect("open");
        ThrottlePolicy::release(&mut r, c);
        assert_eq!(r, None, "nothing is left of a successful first attempt");

        // At the limit: the attempt that set the lock undoes it.
        for _ in 0..4 {
            p.claim(&mut r, 5, T0).expect("open");
        }
        let c = p.claim(&mut r, 5, T0).expect("open");
        assert!(c.locked());
        ThrottlePolicy::release(&mut r, c);
        assert_eq!(r.map(|r| (r.failures, r.locked_until)), Some((4, None)));
    }

    #[test]
    fn a_release_keeps_a_lock_set_by_another_attempt() {
        let p = policy();
        let mut r = None;
        for _ in 0..3 {
            p.claim(&mut r, 5, T0).expect("open");
        }
        let mine = p.claim(&mut r, 5, T0).expect("open");
        let theirs = p.claim(&mut r, 5, T0).expect("open");
        assert!(!mine.locked() && theirs.locked());
        ThrottlePolicy::release(&mut r, mine);
        assert_eq!(r.and_then(|r| r.locked_until), Some(T0 + Duration::seconds(60)));
    }

    #[test]
    fn keys_are_hashed_and_distinct() {
        assert_ne!(key("ip", "10.0.0.1"), key("name", "10.0.0.1"));
        assert_eq!(key("ip", "10.0.0.1").len(), 64);
        assert!(!key("name", "hunter2").contains("hunter2"));
    }
}
