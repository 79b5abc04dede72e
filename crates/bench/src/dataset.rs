//! The synthetic analytics data set: one app, [`USERS`] users, [`DAYS`]
//! days, 1,000,000 tracked sessions and 10,000,000 page visits at scale 1.
//!
//! Deterministic (a seeded generator per user and slice), so two runs at one
//! scale on one day load the same sessions (ids and visit ids aside, which
//! are fresh UUID v7s). The window is the [`DAYS`] days that end at the
//! last UTC midnight.
//!
//! - Users have a home UTC offset (from −8 h to +9 h) and an activity
//!   weight between 0.5 and 1.5 (their share of the sessions).
//! - A session starts on a day drawn with weekly weights in the user's
//!   home time (weekdays busy, Saturday about a third, Sunday a quarter)
//!   at an hour drawn from office-shaped daily weights, to the millisecond.
//! - Active time is log-normal, median 20 minutes, between 1 minute and 6
//!   hours; 35 % of sessions pause once or twice (pauses log-normal,
//!   median 8 minutes), and a tenth of those end while paused.
//! - Events after the window's end are not sent, so the sessions running
//!   at the end stay open (active or paused): a few dozen at scale 1.
//! - Every session has 1 to 19 page visits (10 on average, exactly 10 per
//!   pair of sessions), at instants drawn uniformly over its active time,
//!   each with the seconds until the next visit (or the end of its active
//!   interval) as `timespent`. Pages come from a catalogue of 200; each
//!   user visits 3 to 50 of them, a few much more than the rest.
//!
//! The sessions of each user are cut in [`SLICES`] slices drawn
//! independently over the whole window, so that loading the first slice
//! gives the same users and span at a tenth of the density.

use analytics::{EventKind, PageVisit};
use kernel::from_millis;
use store::bulk::BulkSession;

/// The one app of the data set.
pub(crate) const APP: &str = "bench_app";
/// Users.
pub(crate) const USERS: usize = 1000;
/// Length of the window.
pub(crate) const DAYS: i64 = 365;
/// Slices of the load (the first is measured on its own).
pub(crate) const SLICES: usize = 10;
/// Sessions at scale 1.
pub(crate) const FULL_SESSIONS: f64 = 1_000_000.0;
/// Page visits per session, on average (exactly, per pair of sessions).
pub(crate) const VISITS_PER_SESSION: u64 = 10;
/// Sessions per chunk handed to the loader.
const CHUNK_SESSIONS: usize = 20_000;

pub(crate) const DAY_MS: i64 = 86_400_000;
const MIN_MS: i64 = 60_000;
const SEED: u64 = 0x5e55_10d0_bec4;

const SECTIONS: [&str; 10] = [
    "dashboard",
    "projects",
    "reports",
    "settings",
    "docs",
    "billing",
    "team",
    "inbox",
    "search",
    "help",
];

/// Local-hour weights, midnight first: office hours with a lunch dip.
const HOUR_WEIGHTS: [f64; 24] = [
    0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 1.0, 1.4, 1.5, 1.4, 1.0, 1.2, 1.4, 1.4, 1.3, 1.0,
    0.7, 0.6, 0.6, 0.5, 0.4, 0.3,
];

/// Weekday weights, Monday first.
const WEEKDAY_WEIGHTS: [f64; 7] = [1.0, 1.0, 1.0, 0.95, 0.85, 0.35, 0.25];

/// Home UTC offsets, minutes, drawn uniformly per user.
const OFFSETS_MIN: [i64; 10] = [-480, -300, -300, 0, 60, 60, 60, 120, 330, 540];

/// SplitMix64: small, fast, good enough for synthetic data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in `[0, n)`; 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64 }
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(f64::MIN_POSITIVE);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with this median, clamped, in whole milliseconds.
    fn log_normal_ms(&mut self, median_ms: f64, sigma: f64, lo: i64, hi: i64) -> i64 {
        ((median_ms * (sigma * self.normal()).exp()) as i64).clamp(lo, hi)
    }

    /// An index drawn from cumulative weights.
    fn pick(&mut self, cdf: &[f64]) -> usize {
        let total = cdf.last().copied().unwrap_or(0.0);
        let x = self.f64() * total;
        cdf.partition_point(|c| *c <= x).min(cdf.len().saturating_sub(1))
    }
}

fn cdf(weights: &[f64]) -> Vec<f64> {
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64()
}

/// One user of the data set.
pub(crate) struct User {
    pub(crate) name: String,
    /// Sessions in each slice.
    pub(crate) per_slice: [u64; SLICES],
    offset_ms: i64,
    /// The user's pages (indexes into the catalogue) and their weights.
    pages: Vec<usize>,
    page_cdf: Vec<f64>,
}

impl User {
    pub(crate) fn sessions(&self) -> u64 {
        self.per_slice.iter().sum()
    }

    /// The user's pages, most visited first.
    pub(crate) fn pages<'a>(&'a self, plan: &'a Plan) -> impl Iterator<Item = &'a str> + 'a {
        self.pages.iter().map(|&p| plan.catalogue[p].as_str())
    }
}

/// The whole data set, before generation.
pub(crate) struct Plan {
    /// Window `[start_ms, end_ms)`.
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) users: Vec<User>,
    pub(crate) catalogue: Vec<String>,
    hour_cdf: Vec<f64>,
}

/// What the generator promises the store holds for one user (or all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Expected {
    /// Sessions started.
    pub(crate) sessions: u64,
    /// Of those, ended.
    pub(crate) ended: u64,
    /// Sum of the ended sessions' active time, ms.
    pub(crate) duration_ms: i64,
    /// Page visits.
    pub(crate) visits: u64,
}

impl Expected {
    pub(crate) fn add(&mut self, other: &Expected) {
        self.sessions += other.sessions;
        self.ended += other.ended;
        self.duration_ms += other.duration_ms;
        self.visits += other.visits;
    }
}

/// A piece of the data set for the loader.
pub(crate) struct Chunk {
    pub(crate) sessions: Vec<BulkSession>,
    /// Sorted by time.
    pub(crate) visits: Vec<PageVisit>,
    /// `(user index, what this chunk adds for that user)`.
    pub(crate) expected: Vec<(usize, Expected)>,
}

impl Plan {
    /// The plan at `scale` (1.0 = 1,000,000 sessions), the window ending at
    /// the last UTC midnight before `now_ms`.
    pub(crate) fn new(scale: f64, now_ms: i64) -> Self {
        let end_ms = now_ms.div_euclid(DAY_MS) * DAY_MS;
        let start_ms = end_ms - DAYS * DAY_MS;
        let mut rng = Rng::new(SEED);
        let catalogue: Vec<String> =
            (0..200).map(|i| format!("/{}/{}", SECTIONS[i % SECTIONS.len()], i / 10)).collect();
        // Global page popularity: Zipf-like.
        let page_cdf =
            cdf(&(0..catalogue.len()).map(|i| 1.0 / (1.0 + i as f64 / 8.0)).collect::<Vec<_>>());
        let weights: Vec<f64> = (0..USERS).map(|_| 0.5 + rng.f64()).collect();
        let total_weight: f64 = weights.iter().sum();
        let total = (FULL_SESSIONS * scale).round().max(0.0) as u64;
        // Largest remainder: the shares add up to `total` exactly.
        let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / total_weight).collect();
        let mut shares: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
        let mut order: Vec<usize> = (0..USERS).collect();
        order.sort_by(|&a, &b| {
            (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b))
        });
        let missing = total - shares.iter().sum::<u64>();
        for &u in order.iter().take(usize::try_from(missing).unwrap_or(0)) {
            shares[u] += 1;
        }
        let users = shares
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let mut per_slice = [0; SLICES];
                for (k, slot) in per_slice.iter_mut().enumerate() {
                    let k = k as u64;
                    *slot = n * (k + 1) / SLICES as u64 - n * k / SLICES as u64;
                }
                let count = 3 + rng.below(48) as usize;
                let mut pages: Vec<usize> = Vec::with_capacity(count);
                while pages.len() < count {
                    let p = rng.pick(&page_cdf);
                    if !pages.contains(&p) {
                        pages.push(p);
                    }
                }
                let weights: Vec<f64> =
                    (0..count).map(|r| 1.0 / (1.0 + r as f64).powf(0.8)).collect();
                User {
                    name: format!("user_{i:04}"),
                    per_slice,
                    offset_ms: OFFSETS_MIN[rng.below(OFFSETS_MIN.len() as u64) as usize] * MIN_MS,
                    pages,
                    page_cdf: cdf(&weights),
                }
            })
            .collect();
        Self { start_ms, end_ms, users, catalogue, hour_cdf: cdf(&HOUR_WEIGHTS) }
    }

    /// Sessions in `slices`.
    pub(crate) fn sessions_in(&self, slices: std::ops::Range<usize>) -> u64 {
        self.users.iter().map(|u| u.per_slice[slices.clone()].iter().sum::<u64>()).sum()
    }

    /// The user with the most sessions (the first such).
    pub(crate) fn busiest_user(&self) -> usize {
        let mut best = 0;
        for (i, u) in self.users.iter().enumerate() {
            if u.sessions() > self.users[best].sessions() {
                best = i;
            }
        }
        best
    }

    /// Generates `slices` in chunks of about [`CHUNK_SESSIONS`] sessions
    /// (whole users), handing each to `sink`; stops at the first error.
    pub(crate) fn generate(
        &self,
        slices: std::ops::Range<usize>,
        mut sink: impl FnMut(Chunk) -> Result<(), String>,
    ) -> Result<(), String> {
        for slice in slices {
            let mut chunk =
                Chunk { sessions: Vec::new(), visits: Vec::new(), expected: Vec::new() };
            for (u, user) in self.users.iter().enumerate() {
                let mut rng = Rng::new(mix(mix(SEED, u as u64 + 1), slice as u64 + 1));
                let mut exp = Expected::default();
                let n = user.per_slice[slice];
                let mut first_of_pair = VISITS_PER_SESSION;
                for i in 0..n {
                    // Pairs of sessions share 20 visits (1 to 19 each); a
                    // lone last one gets 10.
                    let visits = if i % 2 == 1 {
                        2 * VISITS_PER_SESSION - first_of_pair
                    } else if i + 1 < n {
                        first_of_pair = 1 + rng.below(2 * VISITS_PER_SESSION - 1);
                        first_of_pair
                    } else {
                        VISITS_PER_SESSION
                    };
                    self.session(&mut rng, user, visits, &mut chunk, &mut exp);
                }
                chunk.expected.push((u, exp));
                if chunk.sessions.len() >= CHUNK_SESSIONS {
                    let full = std::mem::replace(
                        &mut chunk,
                        Chunk { sessions: Vec::new(), visits: Vec::new(), expected: Vec::new() },
                    );
                    sink(sorted(full))?;
                }
            }
            if !chunk.sessions.is_empty() || !chunk.visits.is_empty() {
                sink(sorted(chunk))?;
            }
        }
        Ok(())
    }

    /// One session of `user` with `visits` page visits, appended to `chunk`.
    fn session(
        &self,
        rng: &mut Rng,
        user: &User,
        visits: u64,
        chunk: &mut Chunk,
        exp: &mut Expected,
    ) {
        let start = loop {
            let day = rng.below(DAYS as u64) as i64;
            // The local calendar day numbered like the UTC one: day 0 of the
            // epoch (1970-01-01) was a Thursday (Monday-zero index 3).
            let weekday = (self.start_ms.div_euclid(DAY_MS) + day + 3).rem_euclid(7) as usize;
            if rng.f64() >= WEEKDAY_WEIGHTS[weekday] {
                continue;
            }
            let hour = rng.pick(&self.hour_cdf) as i64;
            let local = hour * 3_600_000 + rng.below(3_600_000) as i64;
            let at = self.start_ms + day * DAY_MS + local - user.offset_ms;
            if (self.start_ms..self.end_ms).contains(&at) {
                break at;
            }
        };
        let active = rng.log_normal_ms(20.0 * MIN_MS as f64, 0.9, MIN_MS, 6 * 60 * MIN_MS);
        let r = rng.f64();
        let pauses: usize = if r < 0.65 {
            0
        } else if r < 0.90 {
            1
        } else {
            2
        };
        let end_paused = pauses > 0 && rng.f64() < 0.1;
        // Active segments of at least a second, adding up to `active`.
        let segments = pauses + 1;
        let spare = active - 1000 * segments as i64;
        let mut cuts: Vec<i64> = (0..pauses).map(|_| rng.below(spare as u64 + 1) as i64).collect();
        cuts.sort_unstable();
        cuts.push(spare);
        let mut events: Vec<(EventKind, i64)> = vec![(EventKind::Start, start)];
        let mut intervals: Vec<(i64, i64)> = Vec::with_capacity(segments);
        let (mut t, mut prev) = (start, 0);
        for (i, cut) in cuts.iter().enumerate() {
            let seg = 1000 + cut - prev;
            prev = *cut;
            intervals.push((t, t + seg));
            t += seg;
            if i + 1 < segments {
                events.push((EventKind::Pause, t));
                t += rng.log_normal_ms(8.0 * MIN_MS as f64, 1.0, 10_000, 3 * 60 * MIN_MS);
                events.push((EventKind::Resume, t));
            }
        }
        if end_paused {
            events.push((EventKind::Pause, t));
            t += rng.log_normal_ms(8.0 * MIN_MS as f64, 1.0, 10_000, 3 * 60 * MIN_MS);
        }
        events.push((EventKind::End, t));
        // What happens after the window is not sent (yet).
        events.retain(|(_, at)| *at < self.end_ms);
        let ended = events.last().is_some_and(|(k, _)| *k == EventKind::End);
        let last_at = events.last().map_or(start, |e| e.1);
        exp.sessions += 1;
        if ended {
            exp.ended += 1;
            exp.duration_ms += active;
        }
        let id = kernel::new_id();
        chunk.sessions.push(BulkSession {
            id,
            app: APP.to_owned(),
            user: user.name.clone(),
            events: events.iter().map(|&(k, at)| (k, from_millis(at))).collect(),
            last_seen_at: from_millis(last_at),
        });
        // Visits over the active time that is inside the window.
        let clipped: Vec<(i64, i64)> = intervals
            .iter()
            .map(|&(a, b)| (a, b.min(self.end_ms)))
            .filter(|(a, b)| a < b)
            .collect();
        let total: i64 = clipped.iter().map(|(a, b)| b - a).sum();
        if total <= 0 {
            return;
        }
        // (instant, end of its interval)
        let mut at: Vec<(i64, i64)> = (0..visits)
            .map(|_| {
                let mut x = rng.below(total as u64) as i64;
                for &(a, b) in &clipped {
                    if x < b - a {
                        return (a + x, b);
                    }
                    x -= b - a;
                }
                (clipped[0].0, clipped[0].1)
            })
            .collect();
        at.sort_unstable();
        for i in 0..at.len() {
            let (t, interval_end) = at[i];
            let until = at.get(i + 1).map_or(interval_end, |n| n.0.min(interval_end).max(t));
            let page = user.pages[rng.pick(&user.page_cdf)];
            chunk.visits.push(PageVisit {
                id: kernel::new_id(),
                app: APP.to_owned(),
                user: user.name.clone(),
                page: self.catalogue[page].clone(),
                timespent: ((until - t) / 1000).clamp(0, 86_400),
                session_id: Some(id),
                at: from_millis(t),
            });
            exp.visits += 1;
        }
    }
}

/// Sorts a chunk's visits by time (so that a batch's all-users aggregates
/// coalesce).
fn sorted(mut chunk: Chunk) -> Chunk {
    chunk.visits.sort_by_key(|v| v.at);
    chunk
}
