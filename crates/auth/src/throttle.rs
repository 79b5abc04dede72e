//! Login throttling against password guessing (SPEC §2 and §5).
//!
//! Failed logins are counted on three keys, each with its own limit:
//!
//! - the pair (account, client address): 5 failures lock that account for
//!   that address only, so an attacker guessing from elsewhere locks
//!   themselves out, not the owner;
//! - the client address: 20 failures lock the address for every account
//!   (one address guessing many accounts);
//! - the account across addresses: 50 failures lock the account, but only
//!   for addresses it has not logged in from successfully within the
//!   retention period (30 days). This stops guessing spread over many
//!   addresses while the owner's usual addresses keep working; failures
//!   from those addresses are not counted there at all.
//!
//! Once a count reaches its limit the key is locked: every login on it
//! answers "locked, retry after N seconds" without looking at the
//! password, even the right one. The first lock lasts the base time (60 s
//! by default); each further failure doubles it, up to a cap (900 s), so a
//! lock always ends. A right password clears the pair's count, never the
//! address's (others behind it may be guessing) nor the account-wide one
//! (else every login of the owner would hand an attacker fifty more
//! guesses); those are forgotten an hour after their latest failure.
//!
//! "Address" means the exact address for the per-address key, and its
//! network for the pair and for the addresses an account logged in from:
//! an IPv4 address, or the /64 of an IPv6 one, which is what one household
//! or one attacker holds (privacy extensions change the rest daily). A
//! login without a known client address counts as one more address, never
//! one the account is known from.
//!
//! Exact under parallel attempts: an attempt is decided when it is
//! settled, after its password check, in one store transaction per
//! attempt. If by then a key is locked (other attempts in parallel
//! failed), the answer is "locked" whatever the password was, and the
//! attempt counts nowhere, exactly as if it had arrived during the lock.
//! So twenty concurrent guesses against a limit of five get five answers
//! that say anything about the password, and the rest say "locked".
//! Only failures count: concurrent logins with the right password never
//! lock anything, and none of them waits for another. Whether an address
//! is one the account is known from is read before the password check:
//! an owner logging in at the same moment can only make it known later,
//! which errs on the strict side for that one attempt.
//!
//! Unknown accounts are throttled exactly like real ones (keyed by the name
//! that was typed, and known from no address, like a real account seen
//! from a new address), so the answers never tell whether an account
//! exists. Keys are stored hashed: a password typed into the username
//! field is never written down, nor who logged in from where.

use kernel::{Duration, OffsetDateTime};

/// The policy: limits and lock times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one account from one address (the pair) before the
    /// pair locks (SPEC default 5, `SESSIOND_LOGIN_MAX_FAILURES`).
    pub pair_max_failures: u32,
    /// Failures from one client address before it locks (default 20).
    pub ip_max_failures: u32,
    /// Failures of one account from addresses it is not known from before
    /// it locks for such addresses (default 50).
    pub account_wide_max_failures: u32,
    /// The first lock (default 60 s); doubled per further failure.
    pub lockout: Duration,
    /// The longest lock (900 s).
    pub max_lockout: Duration,
    /// Failures older than this (counted from the latest one) are forgotten.
    pub memory: Duration,
    /// How long after a successful login from an address the account is
    /// known from it (the session retention period).
    pub known_for: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            pair_max_failures: 5,
            ip_max_failures: 20,
            account_wide_max_failures: 50,
            lockout: Duration::seconds(60),
            max_lockout: Duration::seconds(900),
            memory: DEFAULT_MEMORY,
            known_for: DEFAULT_KNOWN_FOR,
        }
    }
}

/// How long failures are remembered after the latest one: longer than the
/// whole doubling ladder (60 + 120 + … + 900 s ≈ 30 min), so waiting out a
/// lock does not reset it.
pub const DEFAULT_MEMORY: Duration = Duration::hours(1);

/// How long an account stays known from an address it logged in from: the
/// default session retention (30 days).
pub const DEFAULT_KNOWN_FOR: Duration = Duration::days(30);

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

/// Port: failure records, changed atomically, and the addresses accounts
/// logged in from.
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

    /// When the login key `key` (an account from an address) last logged
    /// in successfully, `None` when it never did (or it was forgotten).
    fn last_success(&self, key: &str) -> anyhow::Result<Option<OffsetDateTime>>;

    /// Records a successful login of `key` at `at`, replacing the time of
    /// the previous one.
    fn record_success(&self, key: &str, at: OffsetDateTime) -> anyhow::Result<()>;

    /// Deletes the successful logins dated before `before`.
    fn purge_successes(&self, before: OffsetDateTime) -> anyhow::Result<u64>;
}

/// The stored key of a kind (`pair`, `ip`, `user`, `name`, `login`) and
/// its value, hashed.
pub(crate) fn key(kind: &str, value: &str) -> String {
    tokens::refresh::hash(&format!("{kind}:{value}"))
}

/// The network an address stands for in the pair and login keys: an IPv4
/// address itself, the /64 of an IPv6 one (one subscriber's share; the
/// rest is picked freely and, with privacy extensions, changes daily).
/// Anything unparsable is taken as it is.
pub(crate) fn network(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>().map(|a| a.to_canonical()) {
        Ok(std::net::IpAddr::V6(a)) => {
            let s = a.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Ok(a) => a.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// The keys of one login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttemptKeys {
    /// The account from the caller's network.
    pub pair: String,
    /// The caller's exact address, when known.
    pub ip: Option<String>,
    /// The account across addresses.
    pub account: String,
    /// Successful logins of the account from the caller's network; `None`
    /// without an address (never known).
    pub login: Option<String>,
}

impl AttemptKeys {
    /// The keys of a login to the account `kind:id` (`user:<uuid>`, or
    /// `name:<typed, lowercase>` for a name that matches no account) from
    /// `ip`.
    pub(crate) fn new(kind: &str, id: &str, ip: Option<&str>) -> Self {
        // No address is one more network, which no login key names: such
        // callers share one pair and are never known. A network has no
        // spaces, so the last " from " splits these strings unambiguously.
        let from = ip.map_or_else(|| "-".to_owned(), network);
        let account_from = format!("{kind}:{id} from {from}");
        Self {
            pair: key("pair", &account_from),
            ip: ip.map(|ip| key("ip", ip)),
            // The key the account was locked on before pairs existed, so a
            // lock set before an upgrade still holds where it applies.
            account: key(kind, id),
            login: ip.map(|_| key("login", &account_from)),
        }
    }

    /// The keys that apply, with their limits, the pair first: the
    /// account-wide key only from a network the account is not `known`
    /// from.
    pub(crate) fn applying(&self, known: bool, policy: &ThrottlePolicy) -> Vec<(&str, u32)> {
        let mut keys = vec![(self.pair.as_str(), policy.pair_max_failures)];
        keys.extend(self.ip.as_deref().map(|k| (k, policy.ip_max_failures)));
        if !known {
            keys.push((self.account.as_str(), policy.account_wide_max_failures));
        }
        keys
    }
}

impl ThrottlePolicy {
    /// Whether a successful login at `last_success` still makes its
    /// address known at `now` (within `known_for`).
    pub(crate) fn still_known(&self, last_success: OffsetDateTime, now: OffsetDateTime) -> bool {
        // A period too long to subtract is "for ever".
        now.checked_sub(self.known_for).is_none_or(|since| last_success >= since)
    }

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
        let k = AttemptKeys::new("user", "42", Some("10.0.0.1"));
        let all =
            [&k.pair, k.ip.as_ref().expect("ip"), &k.account, k.login.as_ref().expect("login")];
        assert_eq!(all.iter().collect::<std::collections::HashSet<_>>().len(), 4);
        assert!(all.iter().all(|k| k.len() == 64 && !k.contains("10.0.0.1")));
        // The account key is the one accounts were locked on before pairs.
        assert_eq!(k.account, key("user", "42"));
    }

    #[test]
    fn pairs_and_logins_are_per_network_and_the_address_key_exact() {
        let a = AttemptKeys::new("user", "42", Some("2001:db8:1:2::10"));
        let b = AttemptKeys::new("user", "42", Some("2001:db8:1:2:a:b:c:d"));
        let c = AttemptKeys::new("user", "42", Some("2001:db8:1:3::10"));
        assert_eq!((&a.pair, &a.login), (&b.pair, &b.login));
        assert_ne!(a.ip, b.ip);
        assert_ne!(a.pair, c.pair);
        assert_ne!(a.login, c.login);
        assert_eq!(network("192.0.2.1"), "192.0.2.1");
        assert_eq!(network("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(network("2001:db8:1:2:a:b:c:d"), "2001:db8:1:2::/64");
        assert_eq!(network("not an address"), "not an address");
        // Another account, or a name that matches none, has its own pair.
        assert_ne!(a.pair, AttemptKeys::new("user", "43", Some("2001:db8:1:2::10")).pair);
        assert_ne!(a.pair, AttemptKeys::new("name", "42", Some("2001:db8:1:2::10")).pair);
    }

    #[test]
    fn without_an_address_there_is_one_pair_and_no_login() {
        let k = AttemptKeys::new("name", "nobody", None);
        assert_eq!((k.ip.as_ref(), k.login.as_ref()), (None, None));
        assert_eq!(k.pair, AttemptKeys::new("name", "nobody", None).pair);
        assert_ne!(k.pair, AttemptKeys::new("name", "nobody", Some("192.0.2.1")).pair);
    }

    #[test]
    fn the_account_wide_key_applies_only_where_the_account_is_not_known() {
        let p = policy();
        let k = AttemptKeys::new("user", "42", Some("192.0.2.1"));
        let ip = k.ip.as_deref().expect("ip");
        let known = [(k.pair.as_str(), 5), (ip, 20)];
        assert_eq!(k.applying(true, &p), known);
        assert_eq!(k.applying(false, &p), [known[0], known[1], (k.account.as_str(), 50)]);
        let nowhere = AttemptKeys::new("user", "42", None);
        assert_eq!(
            nowhere.applying(false, &p),
            [(nowhere.pair.as_str(), 5), (k.account.as_str(), 50)]
        );
    }

    #[test]
    fn an_address_stays_known_for_the_retention_period() {
        let p = policy();
        assert!(p.still_known(T0, T0 + DEFAULT_KNOWN_FOR));
        assert!(!p.still_known(T0, T0 + DEFAULT_KNOWN_FOR + Duration::milliseconds(1)));
        let forever = ThrottlePolicy { known_for: Duration::MAX, ..p };
        assert!(forever.still_known(T0, T0 + Duration::days(10_000)));
    }
}
