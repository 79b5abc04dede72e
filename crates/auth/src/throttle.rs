//! Login throttling against password guessing (SPEC §2 and §5).
//!
//! Failed logins are counted per account and per client address. Once a
//! count reaches its limit the key is locked: every login on it answers
//! "locked, retry after N seconds" without looking at the password, even
//! the right one. The first lock lasts the base time (60 s by default);
//! each further failure doubles it, up to a cap (900 s), so a lock always
//! ends: an attacker can delay a user, never shut them out for good.
//!
//! Exact under parallel attempts: besides its confirmed failures, a key
//! counts its attempts in flight (claimed before the password is checked,
//! settled after, each in one store transaction). A key admits only as
//! many attempts in flight as it has failures left before its limit (one
//! once it has been locked before), so twenty concurrent guesses against
//! a limit of five get five password checks, not twenty. The others are
//! [`Refusal::Busy`]: the caller waits for a slot, and then finds the key
//! locked (the guesses failed) or free (they were right). Only a failure
//! that is confirmed locks: concurrent logins with the right password
//! never do, they just take turns.
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
    /// Failed attempts (confirmed).
    pub failures: u32,
    /// When the latest one failed (or, with no failures, when the record
    /// was made).
    pub last_failure: OffsetDateTime,
    /// Locked until then, when set.
    pub locked_until: Option<OffsetDateTime>,
    /// Attempts claimed and not settled yet (passwords being checked).
    pub pending: u32,
    /// When the attempts in flight are presumed dead (their process died
    /// between claim and settlement): `pending` counts only before it.
    pub pending_until: Option<OffsetDateTime>,
}

impl LoginFailures {
    fn empty(now: OffsetDateTime) -> Self {
        Self { failures: 0, last_failure: now, locked_until: None, pending: 0, pending_until: None }
    }

    /// Nothing worth keeping: no failure, no attempt in flight, no lock.
    fn is_empty(&self, now: OffsetDateTime) -> bool {
        self.failures == 0 && self.pending == 0 && self.locked_until.is_none_or(|u| u <= now)
    }
}

/// How long an attempt may stay in flight before its claim is presumed
/// dead: far above a password check plus the database timeout.
pub const PENDING_TTL: Duration = Duration::seconds(30);

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

    /// Deletes records whose latest failure is before `forgotten_before`,
    /// that are not locked at `now` and have no attempt in flight.
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

/// Why an attempt may not check its password now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Locked for this many more seconds.
    Locked(u64),
    /// As many attempts are in flight as the key has failures left: wait
    /// for one to settle.
    Busy,
}

impl ThrottlePolicy {
    /// The lock after `failures` failures (`None` below the limit).
    fn lock_for(&self, failures: u32, max: u32) -> Option<Duration> {
        let extra = failures.checked_sub(max)?;
        // 2^extra, saturating: the cap applies long before it overflows.
        let factor = 1_i32.checked_shl(extra.min(30)).unwrap_or(i32::MAX);
        Some(self.lockout.saturating_mul(factor).min(self.max_lockout))
    }

    /// `record` as of `now`: failures past the memory forgotten, attempts
    /// in flight past [`PENDING_TTL`] presumed dead.
    fn current(&self, record: Option<LoginFailures>, now: OffsetDateTime) -> LoginFailures {
        let mut r = record.unwrap_or(LoginFailures::empty(now));
        if r.failures > 0 && r.last_failure + self.memory <= now {
            r.failures = 0;
        }
        if r.pending_until.is_none_or(|u| u <= now) {
            r.pending = 0;
            r.pending_until = None;
        }
        r
    }

    /// Claims an attempt on `record` (limit `max`) before its password is
    /// checked. Refused when the key is locked at `now`, or when as many
    /// attempts are in flight as it has failures left (one, once past the
    /// limit); then the record is left as it was.
    pub(crate) fn claim(
        &self,
        record: &mut Option<LoginFailures>,
        max: u32,
        now: OffsetDateTime,
    ) -> Result<(), Refusal> {
        if let Some(secs) = wait(record.as_ref(), now) {
            return Err(Refusal::Locked(secs));
        }
        let mut r = self.current(*record, now);
        let left = max.max(1).saturating_sub(r.failures).max(1);
        if r.pending >= left {
            return Err(Refusal::Busy);
        }
        r.pending += 1;
        r.pending_until = Some(now + PENDING_TTL);
        *record = Some(r);
        Ok(())
    }

    /// Settles a claimed attempt whose password was wrong: one failure
    /// more, and a lock once that reaches `max` (doubling past it).
    /// Whether this attempt locked the key.
    pub(crate) fn fail(
        &self,
        record: &mut Option<LoginFailures>,
        max: u32,
        now: OffsetDateTime,
    ) -> bool {
        let mut r = self.current(*record, now);
        r.pending = r.pending.saturating_sub(1);
        r.failures = r.failures.saturating_add(1);
        r.last_failure = now;
        let lock = self.lock_for(r.failures, max.max(1));
        if let Some(d) = lock {
            r.locked_until = Some(now + d);
        }
        *record = Some(r);
        lock.is_some()
    }

    /// Settles a claimed attempt whose password was right; with `forgive`
    /// (the account's own key: its owner proved who they are) its failures
    /// and lock are forgotten too. A client address is not forgiven:
    /// someone else behind it may be guessing.
    pub(crate) fn succeed(
        &self,
        record: &mut Option<LoginFailures>,
        forgive: bool,
        now: OffsetDateTime,
    ) {
        let mut r = self.current(*record, now);
        r.pending = r.pending.saturating_sub(1);
        if forgive {
            r.failures = 0;
            r.locked_until = None;
        }
        *record = (!r.is_empty(now)).then_some(r);
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

    /// One failed attempt, claimed and settled; whether it locked.
    fn failed(p: &ThrottlePolicy, r: &mut Option<LoginFailures>, now: OffsetDateTime) -> bool {
        p.claim(r, 5, now).expect("admitted");
        p.fail(r, 5, now)
    }

    #[test]
    fn the_fifth_failure_locks_for_the_base_time() {
        let p = policy();
        let mut r = None;
        for i in 1..=4 {
            assert!(!failed(&p, &mut r, T0), "attempt {i}");
        }
        assert!(failed(&p, &mut r, T0), "the fifth failure locks");
        assert_eq!(r.map(|r| r.locked_until), Some(Some(T0 + Duration::seconds(60))));
        assert_eq!(p.claim(&mut r, 5, T0), Err(Refusal::Locked(60)));
        let almost = T0 + Duration::milliseconds(59_001);
        assert_eq!(p.claim(&mut r, 5, almost), Err(Refusal::Locked(1)));
    }

    #[test]
    fn each_further_failure_doubles_the_lock_up_to_the_cap() {
        let p = policy();
        let mut r = None;
        let mut now = T0;
        for _ in 0..5 {
            failed(&p, &mut r, now);
        }
        let mut locks = Vec::new();
        for _ in 0..6 {
            let until = r.and_then(|r| r.locked_until).expect("locked");
            locks.push((until - now).whole_seconds());
            now = until;
            assert!(failed(&p, &mut r, now), "a lock always ends, and the next failure locks");
        }
        assert_eq!(locks, [60, 120, 240, 480, 900, 900]);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let p = policy();
        let mut r = None;
        for _ in 0..4 {
            failed(&p, &mut r, T0);
        }
        let later = T0 + DEFAULT_MEMORY + Duration::seconds(1);
        assert!(!failed(&p, &mut r, later));
        assert_eq!(r.map(|r| r.failures), Some(1));
    }

    #[test]
    fn only_as_many_attempts_as_failures_left_are_in_flight() {
        let p = policy();
        let mut r = None;
        for _ in 0..3 {
            failed(&p, &mut r, T0);
        }
        // Two failures left: two attempts may check a password at once.
        p.claim(&mut r, 5, T0).expect("first");
        p.claim(&mut r, 5, T0).expect("second");
        assert_eq!(p.claim(&mut r, 5, T0), Err(Refusal::Busy));
        // Both fail: locked, and the waiting attempt finds it so.
        assert!(!p.fail(&mut r, 5, T0));
        assert!(p.fail(&mut r, 5, T0));
        assert_eq!(p.claim(&mut r, 5, T0), Err(Refusal::Locked(60)));
        // Past the lock, one attempt at a time.
        let later = T0 + Duration::seconds(60);
        p.claim(&mut r, 5, later).expect("after the lock");
        assert_eq!(p.claim(&mut r, 5, later), Err(Refusal::Busy));
    }

    #[test]
    fn right_passwords_in_parallel_never_lock() {
        let p = policy();
        let mut r = None;
        for _ in 0..5 {
            p.claim(&mut r, 5, T0).expect("admitted");
        }
        assert_eq!(p.claim(&mut r, 5, T0), Err(Refusal::Busy), "the sixth waits");
        for _ in 0..5 {
            p.succeed(&mut r, false, T0);
        }
        assert_eq!(r, None, "nothing is left of successful attempts");
        p.claim(&mut r, 5, T0).expect("free again");
    }

    #[test]
    fn the_account_is_forgiven_by_its_password_the_address_is_not() {
        let p = policy();
        let (mut account, mut address) = (None, None);
        for _ in 0..4 {
            failed(&p, &mut account, T0);
            failed(&p, &mut address, T0);
        }
        p.claim(&mut account, 5, T0).expect("admitted");
        p.claim(&mut address, 5, T0).expect("admitted");
        p.succeed(&mut account, true, T0);
        p.succeed(&mut address, false, T0);
        assert_eq!(account, None);
        assert_eq!(address.map(|r| (r.failures, r.pending)), Some((4, 0)));
    }

    #[test]
    fn attempts_whose_process_died_stop_counting() {
        let p = policy();
        let mut r = None;
        for _ in 0..5 {
            p.claim(&mut r, 5, T0).expect("admitted");
        }
        assert_eq!(p.claim(&mut r, 5, T0), Err(Refusal::Busy));
        p.claim(&mut r, 5, T0 + PENDING_TTL).expect("the stale claims expired");
        assert_eq!(r.map(|r| r.pending), Some(1));
    }

    #[test]
    fn keys_are_hashed_and_distinct() {
        assert_ne!(key("ip", "10.0.0.1"), key("name", "10.0.0.1"));
        assert_eq!(key("ip", "10.0.0.1").len(), 64);
        assert!(!key("name", "hunter2").contains("hunter2"));
    }
}
