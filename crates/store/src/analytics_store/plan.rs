//! The pure arithmetic of the analytics reads and writes: rounding to
//! buckets and days, splitting intervals at bucket edges, and planning
//! which aggregates and which raw rows a range reads. No database here, so
//! every plan is tested on its own.

use analytics::{BUCKET_MS, MsRange};

/// A UTC day.
pub(super) const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Stands for an unbounded side of a range: a whole number of days (so of
/// buckets) beyond any storable instant (year 9999 is about 2.5e14 ms), so
/// that an unbounded side never cuts a bucket.
pub(super) const FAR: i64 = DAY_MS * 11_000_000;

/// The start of the `unit` containing `ms`.
pub(crate) fn floor_to(ms: i64, unit: i64) -> i64 {
    ms - ms.rem_euclid(unit)
}

/// The first multiple of `unit` at or after `ms`.
pub(super) fn ceil_to(ms: i64, unit: i64) -> i64 {
    let floor = floor_to(ms, unit);
    if floor == ms { ms } else { floor + unit }
}

/// `range` as `[lo, hi)` with unbounded sides at ∓[`FAR`]; `None` when
/// empty.
pub(super) fn bounds(range: MsRange) -> Option<(i64, i64)> {
    let lo = range.from.unwrap_or(-FAR).clamp(-FAR, FAR);
    let hi = range.to.unwrap_or(FAR).clamp(-FAR, FAR);
    (lo < hi).then_some((lo, hi))
}

/// `[from, to)` split at bucket edges: `(bucket, from, to)` pieces.
pub(crate) fn split_at_buckets(from: i64, to: i64) -> Vec<(i64, i64, i64)> {
    let mut pieces = Vec::new();
    let mut at = from;
    while at < to {
        let bucket = floor_to(at, BUCKET_MS);
        let end = to.min(bucket + BUCKET_MS);
        pieces.push((bucket, at, end));
        at = end;
    }
    pieces
}

/// The windows of `[lo, hi)` that cut a bucket: `(bucket, from, to)`, at
/// most two.
pub(super) fn partial_windows(lo: i64, hi: i64) -> Vec<(i64, i64, i64)> {
    let mut windows = Vec::with_capacity(2);
    let lo_cut = lo.rem_euclid(BUCKET_MS) != 0;
    if lo_cut {
        windows.push((floor_to(lo, BUCKET_MS), lo, hi.min(ceil_to(lo, BUCKET_MS))));
    }
    let hi_bucket = floor_to(hi, BUCKET_MS);
    if hi.rem_euclid(BUCKET_MS) != 0 && !(lo_cut && floor_to(lo, BUCKET_MS) == hi_bucket) {
        windows.push((hi_bucket, lo.max(hi_bucket), hi));
    }
    windows
}

/// How a bounded range `[lo, hi)` of everyone's page visits is read: whole
/// days, runs of whole buckets, raw remainders.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct PagePlan {
    /// Whole days, `[from, to)` (empty: `(0, 0)`).
    pub(super) days: (i64, i64),
    /// Runs of whole buckets next to the days.
    pub(super) buckets: [(i64, i64); 2],
    /// What is left at the ends, read from raw visits.
    pub(super) raw: [(i64, i64); 2],
}

/// Plans the read of `[lo, hi)`, bounded, of everyone's page visits.
pub(super) fn page_plan(lo: i64, hi: i64) -> PagePlan {
    let (d0, d1) = (ceil_to(lo, DAY_MS), floor_to(hi, DAY_MS));
    let (days, rest) =
        if d0 < d1 { ((d0, d1), [(lo, d0), (d1, hi)]) } else { ((0, 0), [(lo, hi), (0, 0)]) };
    let (mut buckets, mut raw) = (Vec::new(), Vec::new());
    for (a, b) in rest.into_iter().filter(|(a, b)| a < b) {
        let (b0, b1) = (ceil_to(a, BUCKET_MS), floor_to(b, BUCKET_MS));
        if b0 < b1 {
            buckets.push((b0, b1));
            raw.extend([(a, b0), (b1, b)]);
        } else {
            raw.push((a, b));
        }
    }
    raw.retain(|(a, b)| a < b);
    // Whole days, if any, are flanked by aligned edges: each side leaves at
    // most one run of buckets and one remainder on its outer end. Without
    // whole days, one run with a remainder on each end.
    debug_assert!(buckets.len() <= 2 && raw.len() <= 2, "{buckets:?} {raw:?}");
    let pick = |v: &[(i64, i64)], i: usize| v.get(i).copied().unwrap_or((0, 0));
    PagePlan {
        days,
        buckets: [pick(&buckets, 0), pick(&buckets, 1)],
        raw: [pick(&raw, 0), pick(&raw, 1)],
    }
}

/// How a range `[lo, hi)` of one user's page visits is read: whole days
/// and the raw visits of the cut days (`[lo, hi)` itself when it holds no
/// whole day).
pub(super) fn user_page_plan(lo: i64, hi: i64) -> ((i64, i64), [(i64, i64); 2]) {
    let (d0, d1) = (ceil_to(lo, DAY_MS), floor_to(hi, DAY_MS));
    if d0 < d1 { ((d0, d1), [(lo, d0), (d1, hi)]) } else { ((0, 0), [(lo, hi), (0, 0)]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: i64 = BUCKET_MS;

    #[test]
    fn rounding() {
        assert_eq!((floor_to(0, B), ceil_to(0, B)), (0, 0));
        assert_eq!((floor_to(1, B), ceil_to(1, B)), (0, B));
        assert_eq!((floor_to(-1, B), ceil_to(-1, B)), (-B, 0));
        assert_eq!((floor_to(B, B), ceil_to(B, B)), (B, B));
        assert_eq!((floor_to(FAR, B), ceil_to(-FAR, B)), (FAR, -FAR));
    }

    #[test]
    fn intervals_split_at_bucket_edges() {
        assert_eq!(split_at_buckets(5, 5), vec![]);
        assert_eq!(split_at_buckets(5, 10), vec![(0, 5, 10)]);
        assert_eq!(
            split_at_buckets(B - 1, 2 * B + 1),
            vec![(0, B - 1, B), (B, B, 2 * B), (2 * B, 2 * B, 2 * B + 1)]
        );
        assert_eq!(split_at_buckets(B, 2 * B), vec![(B, B, 2 * B)]);
    }

    #[test]
    fn partial_windows_cover_the_cut_buckets() {
        assert_eq!(partial_windows(0, 3 * B), vec![]);
        assert_eq!(partial_windows(5, 10), vec![(0, 5, 10)]);
        assert_eq!(partial_windows(5, B + 10), vec![(0, 5, B), (B, B, B + 10)]);
        assert_eq!(partial_windows(5, 3 * B), vec![(0, 5, B)]);
        assert_eq!(partial_windows(B, B + 7), vec![(B, B, B + 7)]);
        assert_eq!(partial_windows(-FAR, B + 7), vec![(B, B, B + 7)]);
        assert_eq!(partial_windows(B + 7, FAR), vec![(B, B + 7, 2 * B)]);
    }

    #[test]
    fn page_plans() {
        let d = DAY_MS;
        // Whole days only.
        assert_eq!(page_plan(d, 3 * d), PagePlan { days: (d, 3 * d), ..PagePlan::default() });
        // Whole days, edge buckets, edge remainders.
        assert_eq!(
            page_plan(d - B - 5, 3 * d + B + 7),
            PagePlan {
                days: (d, 3 * d),
                buckets: [(d - B, d), (3 * d, 3 * d + B)],
                raw: [(d - B - 5, d - B), (3 * d + B, 3 * d + B + 7)],
            }
        );
        // Inside one day.
        assert_eq!(
            page_plan(d + 5, d + 3 * B + 7),
            PagePlan {
                buckets: [(d + B, d + 3 * B), (0, 0)],
                raw: [(d + 5, d + B), (d + 3 * B, d + 3 * B + 7)],
                ..PagePlan::default()
            }
        );
        // Inside one bucket, and across one edge without a whole bucket.
        assert_eq!(page_plan(5, 7), PagePlan { raw: [(5, 7), (0, 0)], ..PagePlan::default() });
        assert_eq!(
            page_plan(5, B + 7),
            PagePlan { raw: [(5, B + 7), (0, 0)], ..PagePlan::default() }
        );
        // Unbounded on one side.
        assert_eq!(
            page_plan(-FAR, d + B + 3),
            PagePlan {
                days: (-FAR, d),
                buckets: [(d, d + B), (0, 0)],
                raw: [(d + B, d + B + 3), (0, 0)],
            }
        );
    }

    #[test]
    fn user_page_plans() {
        let d = DAY_MS;
        // Whole days only: nothing raw.
        assert_eq!(user_page_plan(d, 3 * d), ((d, 3 * d), [(d, d), (3 * d, 3 * d)]));
        // Cut days on both sides are read raw.
        assert_eq!(
            user_page_plan(d - 5, 3 * d + 7),
            ((d, 3 * d), [(d - 5, d), (3 * d, 3 * d + 7)])
        );
        // No whole day: all of it raw.
        assert_eq!(user_page_plan(d + 5, 2 * d + 7), ((0, 0), [(d + 5, 2 * d + 7), (0, 0)]));
        // Unbounded: days only.
        assert_eq!(user_page_plan(-FAR, FAR), ((-FAR, FAR), [(-FAR, -FAR), (FAR, FAR)]));
    }
}
