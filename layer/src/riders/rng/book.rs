//! Seed bookkeeping per seeded path, in bounded memory, and the seeds part of the report.
//!
//! Every seeded span that closes adds its seed, its draws and the digest of the values
//! it drew to its path's [`PathSeeds`]. Calls, draws and digest are sums, exact however
//! long the run. Seeds are different: a sweep can give every call its own seed, and a
//! list of every seed grows with the run (in memory and in the report) without bound.
//! So per path the book keeps:
//!
//! * the [`SEEDS_KEPT`] smallest distinct seeds, each with its exact number of calls —
//!   every seed used while there are no more than that;
//! * the calls whose seed was not kept (`other_seed_calls`), so the kept counts and the
//!   others always add up to the path's calls;
//! * the smallest and the largest seed (exact);
//! * the number of distinct seeds: exact while every seed is kept; beyond that an
//!   estimate from a fixed-size HyperLogLog sketch (a register per hash bucket holding
//!   the longest run of leading zero bits seen), within [`DISTINCT_SEEDS_ERROR`]
//!   (relative standard error), and never outside what the exact figures prove (when
//!   they leave a single value, that value is reported as exact).
//!
//! Invariants, whatever the number of calls and the order they close in:
//!
//! * `kept.len() <= SEEDS_KEPT`, and the sketch has a fixed size: a path's bookkeeping
//!   is bounded, and so is its part of the report;
//! * the kept seeds are the smallest distinct seeds seen, and their counts are exact. A
//!   seed dropped once (because [`SEEDS_KEPT`] smaller ones were seen) is never kept
//!   again: the largest kept seed only decreases once the map is full;
//! * `sum(kept calls) + other_seed_calls == calls`;
//! * nothing depends on the order in which calls close (kept seeds, range, sketch
//!   registers and digest are all order-free), so runs whose threads interleave
//!   differently give equal reports.
//!
//! The replay line depends on the root seed only, and is exact.
//!
//! # Merging runs
//!
//! Two runs' bookkeeping of a path merges into exactly what one run that made both
//! runs' calls would have kept ([`PathSeeds::merge`]): calls, draws and digests add,
//! ranges widen, sketches take the larger register of each bucket (HyperLogLog's
//! union), and the kept seeds are the smallest of both runs' kept seeds, with their
//! counts added. Those counts are exact: a seed one run did not keep was above all of
//! that run's kept seeds, so it is not among the smallest of the union. The distinct
//! count is then derived as for one run — exact where the figures prove it, else the
//! merged sketch's estimate — so a report carries the sketch's registers for it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use super::{replay_line, root_seed, splitmix64, RootSeed, Scope};
use crate::core::paths::{self, PathEntry, PathId};
use crate::core::sync::LockUnpoisoned;

/// Distinct seeds kept per path with their exact call counts: the smallest ones.
///
/// Enough to list every seed of the usual experiment (repeats, folds, a small grid) and
/// the start of a sweep; small enough that a path's bookkeeping and its part of the
/// report stay a few kilobytes however many seeds the run uses.
pub const SEEDS_KEPT: usize = 64;

/// log2 of the sketch's registers: 256 one-byte registers, a few hundred bytes per path.
/// Even, so that √registers is `1 << (SKETCH_BITS / 2)`.
const SKETCH_BITS: u32 = 8;
const SKETCH_REGISTERS: usize = 1 << SKETCH_BITS;

/// Relative standard error of an estimated number of distinct seeds
/// ([`SeededPath::distinct_exact`] false): HyperLogLog's 1.04 / √registers.
pub const DISTINCT_SEEDS_ERROR: f64 = 1.04 / (1u32 << (SKETCH_BITS / 2)) as f64;

/// A HyperLogLog sketch of the distinct seeds seen: fixed size, order-free.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DistinctSketch {
    /// Per bucket, the largest rank (leading zeros + 1 of the hash bits after the
    /// bucket index) seen: `0..=64 - SKETCH_BITS + 1`, so a byte holds it.
    registers: [u8; SKETCH_REGISTERS],
}

impl Default for DistinctSketch {
    fn default() -> Self {
        DistinctSketch {
            registers: [0; SKETCH_REGISTERS],
        }
    }
}

impl DistinctSketch {
    fn insert(&mut self, seed: u64) {
        // A full-avalanche mix: consecutive seeds (the usual sweep) fall into unrelated
        // buckets with independent ranks, which the estimate assumes.
        let hash = splitmix64(&mut { seed });
        // The top SKETCH_BITS bits choose the bucket: always < SKETCH_REGISTERS.
        let bucket = (hash >> (64 - SKETCH_BITS)) as usize;
        let rest = hash << SKETCH_BITS;
        // An all-zero rest would count 64 zeros; only 64 - SKETCH_BITS bits are real.
        let rank = rest.leading_zeros().min(64 - SKETCH_BITS) as u8 + 1;
        let register = &mut self.registers[bucket];
        *register = (*register).max(rank);
    }

    /// The sketch of both sketches' seeds together: the larger register of each bucket.
    fn merge(&mut self, other: &DistinctSketch) {
        for (a, &b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(b);
        }
    }

    /// The registers in hex, two digits each, bucket 0 first (as reports write them).
    pub(crate) fn to_hex(&self) -> String {
        self.registers.iter().map(|r| format!("{r:02x}")).collect()
    }

    /// The sketch written by [`DistinctSketch::to_hex`]: exactly `2 · SKETCH_REGISTERS`
    /// hex digits, each register a possible rank.
    pub(crate) fn from_hex(hex: &str) -> Result<Self, String> {
        let bytes = hex.as_bytes();
        if bytes.len() != 2 * SKETCH_REGISTERS {
            return Err(format!(
                "{} hex digits, expected {} ({SKETCH_REGISTERS} registers)",
                bytes.len(),
                2 * SKETCH_REGISTERS
            ));
        }
        let mut sketch = DistinctSketch::default();
        for (register, pair) in sketch.registers.iter_mut().zip(bytes.chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).ok();
            let rank = digits.and_then(|d| u8::from_str_radix(d, 16).ok());
            match rank {
                Some(r) if u32::from(r) <= 64 - SKETCH_BITS + 1 => *register = r,
                _ => {
                    return Err(format!(
                        "{:?} is not a register value",
                        digits.unwrap_or("?")
                    ))
                }
            }
        }
        Ok(sketch)
    }

    /// The estimated number of distinct seeds inserted.
    fn estimate(&self) -> f64 {
        let m = SKETCH_REGISTERS as f64;
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 0.5f64.powi(i32::from(r)))
            .sum();
        let empty = self.registers.iter().filter(|&&r| r == 0).count();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / sum;
        // Below 2.5 m the raw estimate is biased; counting empty buckets ("linear
        // counting") is the better one there, as long as some bucket is still empty.
        if raw <= 2.5 * m && empty > 0 {
            m * (m / empty as f64).ln()
        } else {
            raw
        }
    }
}

/// Seeds, draws and digest of one seeded path, in bounded memory (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PathSeeds {
    /// The smallest distinct seeds seen, at most [`SEEDS_KEPT`]: seed → calls that
    /// used it (exact).
    pub(crate) kept: BTreeMap<u64, u64>,
    /// Calls whose seed is not in `kept`.
    pub(crate) other_seed_calls: u64,
    /// Smallest and largest seed; `None` before the first call.
    pub(crate) range: Option<(u64, u64)>,
    pub(crate) sketch: DistinctSketch,
    pub(crate) calls: u64,
    pub(crate) draws: u64,
    /// Sum (wrapping) of each call's digest: independent of the order calls finish in,
    /// so runs whose threads interleave differently still compare equal.
    pub(crate) digest: u64,
}

impl PathSeeds {
    /// One finished call with `seed`, and what it drew (`None`: never entered).
    pub(crate) fn record(&mut self, seed: u64, last: Option<&Scope>) {
        self.calls += 1;
        if let Some(scope) = last {
            self.draws += scope.draws;
            self.digest = self.digest.wrapping_add(scope.digest);
        }
        self.range = Some(match self.range {
            Some((min, max)) => (min.min(seed), max.max(seed)),
            None => (seed, seed),
        });
        self.sketch.insert(seed);
        self.keep(seed);
    }

    /// Counts `seed` in `kept` if it is among the smallest, else in `other_seed_calls`.
    fn keep(&mut self, seed: u64) {
        if let Some(calls) = self.kept.get_mut(&seed) {
            *calls += 1;
            return;
        }
        if self.kept.len() < SEEDS_KEPT {
            self.kept.insert(seed, 1);
            return;
        }
        match self.kept.last_key_value() {
            // A seed below the largest kept one is new: any seed dropped earlier had
            // SEEDS_KEPT smaller seeds kept at the time, so it is above them all now.
            // The largest kept seed makes room, its calls move to the others.
            Some((&largest, _)) if seed < largest => {
                if let Some((_, calls)) = self.kept.pop_last() {
                    self.other_seed_calls += calls;
                }
                self.kept.insert(seed, 1);
            }
            _ => self.other_seed_calls += 1,
        }
    }

    /// The number of distinct seeds, and whether it is exact.
    pub(crate) fn distinct(&self) -> (u64, bool) {
        let kept = self.kept.len() as u64;
        if self.other_seed_calls == 0 {
            return (kept, true);
        }
        // What the exact figures prove: some seed beyond the kept ones; each seed not
        // kept took at least one of the other calls; all seeds lie within the range.
        // The kept seeds plus one dropped seed are distinct values in the range, so
        // `low <= high`.
        let low = kept + 1;
        let width = self.range.map_or(u64::MAX, |(min, max)| {
            max.saturating_sub(min).saturating_add(1)
        });
        let high = kept.saturating_add(self.other_seed_calls).min(width);
        // `as` saturates a float into u64 (and maps NaN to 0, which `low` then lifts).
        let estimate = self.sketch.estimate().round() as u64;
        (estimate.min(high).max(low), low >= high)
    }

    /// The bookkeeping a report row was made from (the inverse of [`PathSeeds::report`]).
    pub(crate) fn from_reported(p: &SeededPath) -> Self {
        PathSeeds {
            kept: p.seeds.iter().copied().collect(),
            other_seed_calls: p.other_seed_calls,
            range: p.seed_range,
            sketch: p.sketch.clone(),
            calls: p.calls,
            draws: p.draws,
            digest: p.digest,
        }
    }

    /// Adds another run's bookkeeping of the same path, keeping at most `cap` seeds:
    /// the result is what one run making both runs' calls would keep (see the module
    /// docs), given that each run kept its smallest seeds under a cap of at least
    /// `cap`. `Err` names the count that would overflow.
    pub(crate) fn merge(&mut self, other: &PathSeeds, cap: usize) -> Result<(), &'static str> {
        let calls = self.calls.checked_add(other.calls).ok_or("calls")?;
        let draws = self.draws.checked_add(other.draws).ok_or("draws")?;
        for (&seed, &n) in &other.kept {
            let kept = self.kept.entry(seed).or_insert(0);
            *kept = kept.checked_add(n).ok_or("seed calls")?;
        }
        // The smallest `cap` seeds of the union are exact; the others are dropped, and
        // their calls count with the others.
        while self.kept.len() > cap {
            self.kept.pop_last();
        }
        self.range = match (self.range, other.range) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (a, b) => a.or(b),
        };
        self.sketch.merge(&other.sketch);
        self.digest = self.digest.wrapping_add(other.digest);
        (self.calls, self.draws) = (calls, draws);
        // ≤ calls: each run's kept counts add up to at most its calls.
        self.other_seed_calls = calls - self.kept.values().sum::<u64>();
        Ok(())
    }

    /// The report row of this path.
    pub(crate) fn report(&self, path: Vec<Cow<'static, str>>) -> SeededPath {
        let (distinct_seeds, distinct_exact) = self.distinct();
        SeededPath {
            path,
            seeds: self
                .kept
                .iter()
                .map(|(&seed, &calls)| (seed, calls))
                .collect(),
            distinct_seeds,
            distinct_exact,
            seed_range: self.range,
            other_seed_calls: self.other_seed_calls,
            calls: self.calls,
            draws: self.draws,
            digest: self.digest,
            sketch: self.sketch.clone(),
        }
    }
}

/// Everything the layer learns about seeds, for the report.
#[derive(Default)]
pub(crate) struct SeedBook {
    paths: Mutex<BTreeMap<PathId, PathSeeds>>,
    /// Callsites already warned about, and the warnings for the report.
    bad: Mutex<(HashSet<usize>, Vec<String>)>,
}

impl SeedBook {
    /// Records a seeded span's close. Seeded spans only: a lock per seeded span is fine.
    pub(crate) fn record(&self, path: PathId, seed: u64, last: Option<&Scope>) {
        let mut paths = self.paths.lock_unpoisoned();
        paths.entry(path).or_default().record(seed, last);
    }

    /// Notes a span whose `seed` is not an unsigned integer. Returns the warning text the
    /// first time for a callsite (the caller emits it as a WARN event), `None` after.
    pub(crate) fn bad_seed(&self, callsite: usize, span: &str, value: &str) -> Option<String> {
        let mut bad = self.bad.lock_unpoisoned();
        if !bad.0.insert(callsite) {
            return None;
        }
        let warning = format!(
            "span `{span}`: seed = {value} is not an unsigned integer; the span ran unseeded"
        );
        bad.1.push(warning.clone());
        Some(warning)
    }

    /// The seeds part of a report (root seed, replay line, the seeded paths among
    /// `entries` in tree order), and the bad-seed warnings.
    pub(crate) fn report(&self, entries: &[PathEntry]) -> (SeedReport, Vec<String>) {
        let root = root_seed();
        let seeded = {
            let book = self.paths.lock_unpoisoned();
            paths::tree_order(entries)
                .into_iter()
                .filter_map(|id| {
                    let names = paths::names(entries, id).into_iter().map(Cow::Borrowed);
                    Some(book.get(&id)?.report(names.collect()))
                })
                .collect()
        };
        let warnings = self.bad.lock_unpoisoned().1.clone();
        let report = SeedReport {
            root,
            replay: replay_line(root.value),
            seeds_kept: SEEDS_KEPT,
            paths: seeded,
        };
        (report, warnings)
    }

    /// Per-path bookkeeping so far, and the bad-seed warnings.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> (BTreeMap<PathId, PathSeeds>, Vec<String>) {
        let paths = self.paths.lock_unpoisoned().clone();
        let warnings = self.bad.lock_unpoisoned().1.clone();
        (paths, warnings)
    }
}

/// The seeds part of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeedReport {
    /// The run's root seed and where it came from.
    pub root: RootSeed,
    /// The command line that replays the run: `SPANLAB_SEED=<root> <command>`.
    pub replay: String,
    /// The most seeds listed per path: [`SEEDS_KEPT`] for a run of this version; in a
    /// merge of reports, the smallest of theirs.
    pub seeds_kept: usize,
    /// Each seeded path, in tree order.
    pub paths: Vec<SeededPath>,
}

/// What one seeded path drew.
///
/// Calls, draws, digest, [`seed_range`](Self::seed_range) and the counts in
/// [`seeds`](Self::seeds) are exact. When a path used more than [`SEEDS_KEPT`] distinct
/// seeds, only the smallest are listed, the calls of the others are counted together in
/// [`other_seed_calls`](Self::other_seed_calls), and the number of distinct seeds may be
/// an estimate ([`distinct_exact`](Self::distinct_exact) says which).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeededPath {
    /// Span names from the root.
    pub path: Vec<Cow<'static, str>>,
    /// The smallest seeds used, at most [`SEEDS_KEPT`], each with the exact number of
    /// calls that used it, by seed: every seed used when `other_seed_calls` is 0.
    pub seeds: Vec<(u64, u64)>,
    /// Distinct seeds used: exact when `distinct_exact`, else an estimate within
    /// [`DISTINCT_SEEDS_ERROR`] (relative standard error), never below `seeds.len() + 1`
    /// nor above what `other_seed_calls` and `seed_range` allow.
    pub distinct_seeds: u64,
    /// Whether `distinct_seeds` is exact: every seed was kept, or the exact figures
    /// leave only one possible count.
    pub distinct_exact: bool,
    /// The smallest and largest seed used; `None` when no call finished.
    pub seed_range: Option<(u64, u64)>,
    /// Calls whose seed is not listed in `seeds` (the seeds beyond the kept ones).
    pub other_seed_calls: u64,
    /// Finished seeded calls.
    pub calls: u64,
    /// Values drawn inside those calls (each `u64` the generator produced).
    pub draws: u64,
    /// A digest of every value drawn: equal digests, equal numbers (for a run and its
    /// replay, or two runs that should be deterministic).
    pub digest: u64,
    /// The distinct-seed sketch, for merging (written in JSON reports as `sketch`).
    pub(crate) sketch: DistinctSketch,
}

impl SeededPath {
    /// What a row read from a file must satisfy: at most `cap` seeds, increasing, each
    /// used, inside the range, and adding up with the others to the calls.
    pub(crate) fn check(&self, cap: usize) -> Result<(), String> {
        if self.seeds.len() > cap {
            return Err(format!(
                "{} seeds listed, at most {cap} kept",
                self.seeds.len()
            ));
        }
        if self.seeds.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("seeds are not in increasing order".into());
        }
        let (low, high) = self.seed_range.unwrap_or((u64::MAX, 0));
        if self
            .seeds
            .iter()
            .any(|&(s, n)| n == 0 || s < low || s > high)
        {
            return Err("a seed is listed with no calls, or outside seed_range".into());
        }
        let listed = self
            .seeds
            .iter()
            .try_fold(self.other_seed_calls, |sum, &(_, n)| sum.checked_add(n));
        if listed != Some(self.calls) {
            return Err(format!(
                "the seeds' calls and other_seed_calls do not add up to calls ({})",
                self.calls
            ));
        }
        if self.calls > 0 && self.seed_range.is_none() {
            return Err("calls but no seed_range".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_counts_seeds_calls_draws_and_sums_digests() {
        let book = SeedBook::default();
        let mut a = Scope::seeded(1);
        a.next();
        let mut b = Scope::seeded(2);
        b.next();
        b.next();
        book.record(3, 42, Some(&a));
        book.record(3, 42, Some(&b));
        book.record(3, 7, None);
        let (paths, _) = book.snapshot();
        let p = &paths[&3];
        assert_eq!(p.kept, BTreeMap::from([(7, 1), (42, 2)]));
        assert_eq!((p.calls, p.draws), (3, 3));
        assert_eq!(p.digest, a.digest.wrapping_add(b.digest));
        assert_eq!(
            (p.other_seed_calls, p.range, p.distinct()),
            (0, Some((7, 42)), (2, true))
        );
    }

    #[test]
    fn a_bad_seed_is_reported_once_per_callsite() {
        let book = SeedBook::default();
        let first = book.bad_seed(1, "trial", "\"abc\"").unwrap();
        assert_eq!(
            first,
            "span `trial`: seed = \"abc\" is not an unsigned integer; the span ran unseeded"
        );
        assert_eq!(book.bad_seed(1, "trial", "\"abc\""), None);
        assert!(book.bad_seed(2, "other", "-1").is_some());
        assert_eq!(book.snapshot().1.len(), 2);
    }

    /// Call `i` of a scrambled pass over `0..n` (`n < 2^32`): every value once, small
    /// and large mixed. A bijection because the multiplier is a prime that divides no `n`
    /// used here.
    fn scrambled(i: u64, n: u64) -> u64 {
        i * 2_654_435_761 % n
    }

    #[test]
    fn up_to_the_cap_every_seed_is_kept_with_exact_counts() {
        let mut p = PathSeeds::default();
        for seed in 0..SEEDS_KEPT as u64 {
            for _ in 0..=seed % 3 {
                p.record(1_000 + seed, None);
            }
        }
        assert_eq!(p.kept.len(), SEEDS_KEPT);
        assert!(p
            .kept
            .iter()
            .all(|(&seed, &calls)| calls == (seed - 1_000) % 3 + 1));
        assert_eq!(p.other_seed_calls, 0);
        assert_eq!(p.distinct(), (SEEDS_KEPT as u64, true));
        assert_eq!(p.range, Some((1_000, 1_000 + SEEDS_KEPT as u64 - 1)));
    }

    #[test]
    fn many_distinct_seeds_stay_bounded_and_keep_the_smallest_exactly() {
        let n = 200_000;
        let mut p = PathSeeds::default();
        let mut expected_small = BTreeMap::new();
        for i in 0..n {
            // Each seed twice, the second time much later: counts of kept seeds must
            // survive the evictions in between.
            let seed = scrambled(i % (n / 2), n / 2) * 3;
            p.record(seed, None);
            assert!(p.kept.len() <= SEEDS_KEPT, "kept {} seeds", p.kept.len());
            if seed < 3 * SEEDS_KEPT as u64 {
                *expected_small.entry(seed).or_insert(0u64) += 1;
            }
        }
        assert_eq!(p.kept, expected_small, "the smallest seeds, exact counts");
        assert_eq!(p.kept.values().sum::<u64>() + p.other_seed_calls, p.calls);
        assert_eq!(p.other_seed_calls, n - 2 * SEEDS_KEPT as u64);
        assert_eq!(p.range, Some((0, 3 * (n / 2 - 1))));
        let (distinct, exact) = p.distinct();
        assert!(!exact);
        let error = (distinct as f64 / (n / 2) as f64 - 1.0).abs();
        assert!(
            error <= 3.0 * DISTINCT_SEEDS_ERROR,
            "{distinct} estimated for {} distinct",
            n / 2
        );
    }

    #[test]
    fn the_order_calls_close_in_changes_nothing() {
        let (mut forward, mut backward) = (PathSeeds::default(), PathSeeds::default());
        let n = 5_000;
        for i in 0..n {
            forward.record(scrambled(i, n) % 700, None);
        }
        for i in (0..n).rev() {
            backward.record(scrambled(i, n) % 700, None);
        }
        assert_eq!(forward, backward);
    }

    #[test]
    fn distinct_estimates_stay_within_the_stated_error() {
        // Many independent sets of each size: the root-mean-square relative error is
        // the standard error the docs state, up to sampling noise; none is far off.
        for n in [100u64, 1_000, 30_000] {
            let trials = 40;
            let mut squares = 0.0;
            for t in 0..trials {
                let mut sketch = DistinctSketch::default();
                let start = t * 0x1_0000_0000 + 17;
                for i in 0..n {
                    sketch.insert(start + i * (2 * t + 1));
                }
                let error = sketch.estimate() / n as f64 - 1.0;
                assert!(
                    error.abs() < 4.0 * DISTINCT_SEEDS_ERROR,
                    "{n} distinct, trial {t}: relative error {error:.3}"
                );
                squares += error * error;
            }
            let rms = (squares / trials as f64).sqrt();
            assert!(
                rms < 1.3 * DISTINCT_SEEDS_ERROR,
                "{n} distinct: rms relative error {rms:.3}"
            );
        }
    }

    #[test]
    fn the_estimate_never_contradicts_the_exact_figures() {
        // One seed past the cap, each used once: the bounds leave one count, exact.
        let mut p = PathSeeds::default();
        for seed in 0..=SEEDS_KEPT as u64 {
            p.record(seed, None);
        }
        assert_eq!(p.other_seed_calls, 1);
        assert_eq!(p.distinct(), (SEEDS_KEPT as u64 + 1, true));
        // Many calls, few seeds past the cap: at least one more than kept, and no more
        // than the range holds.
        let mut p = PathSeeds::default();
        for i in 0..10_000u64 {
            p.record(i % (SEEDS_KEPT as u64 + 3), None);
        }
        let (distinct, exact) = p.distinct();
        assert!(!exact);
        assert!((SEEDS_KEPT as u64 + 1..=SEEDS_KEPT as u64 + 3).contains(&distinct));
        assert_eq!(p.kept.values().sum::<u64>() + p.other_seed_calls, p.calls);
    }

    #[test]
    fn draws_and_digest_are_exact_past_the_cap() {
        let (mut bounded, mut draws, mut digest) = (PathSeeds::default(), 0u64, 0u64);
        for seed in 0..1_000u64 {
            let mut scope = Scope::seeded(seed);
            for _ in 0..seed % 5 {
                scope.next();
            }
            draws += scope.draws;
            digest = digest.wrapping_add(scope.digest);
            bounded.record(seed, Some(&scope));
        }
        assert_eq!(
            (bounded.calls, bounded.draws, bounded.digest),
            (1_000, draws, digest)
        );
    }

    #[test]
    fn the_report_lists_seeded_paths_in_tree_order_with_every_figure() {
        let entry = |parent, name, depth| PathEntry {
            parent,
            name,
            depth,
        };
        // Ids in order of first appearance: the inner path was seen first.
        let entries = [entry(Some(1), "inner", 2), entry(None, "outer", 1)];
        let (inner, outer) = (0, 1);
        let book = SeedBook::default();
        for seed in 0..1_000u64 {
            book.record(inner, seed, None);
        }
        book.record(outer, 5, None);
        book.bad_seed(9, "trial", "-1");
        let (report, warnings) = book.report(&entries);
        assert_eq!(report.root, root_seed());
        assert_eq!(report.replay, replay_line(report.root.value));
        assert_eq!(warnings.len(), 1);
        let [o, i] = &report.paths[..] else {
            panic!("two seeded paths: {:?}", report.paths)
        };
        assert_eq!(o.path, ["outer"]);
        assert_eq!((&o.seeds[..], o.calls), (&[(5, 1)][..], 1));
        assert_eq!(
            (o.distinct_seeds, o.distinct_exact, o.seed_range),
            (1, true, Some((5, 5)))
        );
        assert_eq!(i.path, ["outer", "inner"]);
        assert_eq!(
            i.seeds,
            (0..SEEDS_KEPT as u64).map(|s| (s, 1)).collect::<Vec<_>>()
        );
        assert_eq!(
            (i.calls, i.other_seed_calls),
            (1_000, 1_000 - SEEDS_KEPT as u64)
        );
        assert_eq!(i.seed_range, Some((0, 999)));
        assert!(!i.distinct_exact);
        assert!((i.distinct_seeds as f64 / 1e3 - 1.0).abs() <= 3.0 * DISTINCT_SEEDS_ERROR);
    }
}
