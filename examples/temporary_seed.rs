//! `temporary_seed` as a span: the Python demonstration, in Rust.
//!
//! ```python
//! np.random.seed(0); print(np.random.rand())        # the outer stream
//! with temporary_seed(42): print(np.random.rand())  # a fresh stream seeded with 42
//! print(np.random.rand())                           # the outer stream continues
//! ```
//!
//! Run it with `cargo run --release --example temporary_seed`. The root seed is 0 here
//! (`SpanLab::builder().seed(0)`; `SPANLAB_SEED=...` overrides it), so the first thread's
//! stream is `SeededRng::seed_from_u64(0)`. The report ends with the seeds section: the
//! root seed, the line that replays the run, and per seeded path the seeds used, the
//! draws made and their digest.

use rand::{RngExt, SeedableRng};
use spanlab::SeededRng;
use tracing::instrument;

/// A seeded function: every call draws from a fresh stream seeded with 42.
#[instrument(fields(seed = 42))]
fn temporary_seed() -> f64 {
    spanlab::rng().random()
}

fn main() {
    let guard = spanlab::SpanLab::builder().seed(0).init();

    let before: f64 = spanlab::rng().random();
    let inside = temporary_seed();
    let after: f64 = spanlab::rng().random();
    println!("outer stream:          {before:.4}");
    println!("with temporary_seed:   {inside:.4}  (seed = 42)");
    println!("outer stream again:    {after:.4}  (continues as if the block never ran)");

    // The same three numbers from plain generators, to show what the spans did.
    let root = spanlab::rng::root_seed().value;
    let mut outer = SeededRng::seed_from_u64(root);
    let expected_outer: [f64; 2] = [outer.random(), outer.random()];
    let expected_inside: f64 = SeededRng::seed_from_u64(42).random();
    assert_eq!(
        [before, after],
        expected_outer,
        "the outer stream is restored exactly"
    );
    assert_eq!(
        inside, expected_inside,
        "inside: a fresh generator seeded with 42"
    );
    println!("checked: inside == SeededRng::seed_from_u64(42), outer == SeededRng::seed_from_u64({root})\n");

    // Seeded scopes nest, and each call of a seeded function starts its stream afresh.
    for trial in 0..3u64 {
        let _trial = tracing::info_span!("trial", seed = trial).entered();
        let shuffled = {
            let mut deck: Vec<u32> = (1..=8).collect();
            for i in (1..deck.len()).rev() {
                deck.swap(i, spanlab::rng().random_range(0..=i));
            }
            deck
        };
        println!(
            "trial {trial}: {shuffled:?}, then temporary_seed() = {:.4}",
            temporary_seed()
        );
    }
    drop(guard); // prints the report, seeds section included
}
