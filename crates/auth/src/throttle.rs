//! Login throttling against password guessing (SPEC §2 and §5).
//!
//! Failed logins are counted per account and per client address. Once a
//! count reaches its limit the key is locked: every login on it answers
//! "locked, retry after N seconds" without looking at the password, even
//! the right one. The first lock lasts the base time (60 s by default);
//! each further failure doubles it, up to a cap (900 s), so a lock always
//! ends: an attacker can delay a user, never shut them out for good.
//!
//! Exact under parallel attempts: an attempt is decided when it is
//! settled, after its password check, in one store transaction per
//! attempt. If by then the key is locked (other attempts in parallel
//! failed), the answer is "locked" whatever the password was, and the
//! attempt counts nowhere, exactly as if it had arrived during the lock.
//! So twenty concurrent guesses against a limit of five get five answers
//! that say anything about the password, and the rest say "locked".
//! Only failures count: concurrent logins with the right password never
//! lock anything, and none of them waits for another.
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
    /// Failed attempts.
    pub failures: u32,
    /// When the latest one was counted.
    pub last_failure: OffsetDateTime,
    /// Locked until then, when set.
    pub locked_until: Option<OffsetDateTime>,
}

/// Port: failure records, changed atomically.
pub trait LoginThrottleStore: Send + Sync {
    /// The records of `keys` as they are now (`None`: no record), without
    /// locking or writing anything.
    fn read_failures(&self, keys: &[&str]) -> anyhow::Result<Vec<Option<LoginFailures>>>;

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

impl ThrottlePolicy {
    /// The lock after `failures` failures (`None` below the limit).
    fn lock_for(&self, failures: u32, max: u32) -> Option<Duration> {
        let extra = failures.checked_sub(max)?;
        // 2^extra, saturating: the cap applies long before it overflows.
        let factor = 1_i32.checked_shl(extra.min(30)).unwrap_or(i32::MAX);
        Some(self.lockout.saturating_mul(factor).min(self.max_lockout))
    }

    /// Counts a failed attempt on `record` (limit `max`), which must not
    /// be locked at `now`: one failure more (failures past the memory
    /// forgotten first), and a lock once the count reaches `max`, doubling
    /// past it. Whether this failure locked the key.
    pub(crate) fn fail(
        &self,
        record: &mut Option<LoginFailures>,
        max: u32,
        now: OffsetDateTime,
    ) -> bool {
        let fresh = LoginFailures { failures: 0, last_failure: now, locked_until: None };
        let mut r = record.filter(|r| r.last_failure + self.memory > now).unwrap_or(fresh);
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
        let lock = self.lock_for(r.failures, max.max(1));
        if let Some(d) = lock {
            r.locked_until = Some(now + d);
        }
        *record = Some(r);
        lock.is_some()
    }
}

/// The longest wait of any of `records` at `now`, `None` when none is
/// locked.
pub(crate) fn longest_wait(records: &[Option<LoginFailures>], now: OffsetDateTime) -> Option<u64> {
    records.iter().filter_map(|r| wait(r.as_ref(), now)).max()
}

/// Whole seconds until `record`'s lock ends, `None` when it is not locked
/// at `now`.
fn wait(record: Option<&LoginFailures>, now: OffsetDateTime) -> Option<u64> {
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
            assert!(!p.fail(&mut r, 5, T0), "failure {i}");
            assert_eq!(wait(r.as_ref(), T0), None);
        }
        assert!(p.fail(&mut r, 5, T0), "the fifth failure locks");
        assert_eq!(r.map(|r| r.locked_until), Some(Some(T0 + Duration::seconds(60))));
        assert_eq!(wait(r.as_ref(), T0), Some(60));
        assert_eq!(wait(r.as_ref(), T0 + Duration::milliseconds(59_001)), Some(1));
        assert_eq!(wait(r.as_ref(), T0 + Duration::seconds(60)), None);
    }

    #[test]
    fn each_further_failure_doubles_the_lock_up_to_the_cap() {
        let p = policy();
        let mut r = None;
        let mut now = T0;
        for _ in 0..5 {
            p.fail(&mut r, 5, now);
        }
        let mut locks = Vec::new();
        for _ in 0..6 {
            let until = r.and_then(|r| r.locked_until).expect("locked");
            locks.push((until - now).whole_seconds());
            now = until;
            assert_eq!(wait(r.as_ref(), now), None, "a lock always ends");
            assert!(p.fail(&mut r, 5, now), "and the next failure locks again");
        }
        assert_eq!(locks, [60, 120, 240, 480, 900, 900]);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let p = policy();
        let mut r = None;
        for _ in 0..4 {
            p.fail(&mut r, 5, T0);
        }
        let later = T0 + DEFAULT_MEMORY + Duration::seconds(1);
        assert!(!p.fail(&mut r, 5, later));
        assert_eq!(r.map(|r| r.failures), Some(1));
    }

    #[test]
    fn the_longest_lock_of_several_keys_counts() {
        let p = policy();
        let (mut a, mut b) = (None, None);
        for _ in 0..5 {
            p.fail(&mut a, 5, T0);
            p.fail(&mut b, 5, T0 + Duration::seconds(10));
        }
        assert_eq!(longest_wait(&[a, b], T0 + Duration::seconds(10)), Some(60));
        assert_eq!(longest_wait(&[None, a], T0 + Duration::seconds(10)), Some(50));
        assert_eq!(longest_wait(&[None, None], T0), None);
    }

    #[test]
    fn keys_are_hashed_and_distinct() {
        assert_ne!(key("ip", "10.0.0.1"), key("name", "10.0.0.1"));
        assert_eq!(key("ip", "10.0.0.1").len(), 64);
        assert!(!key("name", "hunter2").contains("hunter2"));
    }
}
