//! Seeded random scopes: `temporary_seed` for spans, with replayable bookkeeping.
//!
//! [`rng()`] is the ambient random number generator: it implements `rand`'s traits, so
//! `spanlab::rng().random::<f64>()`, distributions and shuffles work as with any
//! generator. What it draws from depends on where it is called:
//!
//! * inside a span with a `seed = N` field (`#[instrument(fields(seed = 42))]`): that
//!   span's own stream, [`SeededRng::seed_from_u64(N)`](SeededRng), which the span
//!   keeps across enters (an async span polled on many workers continues one stream);
//! * anywhere else: the thread's stream, derived from the run's [`root_seed`] — the
//!   first thread to draw gets exactly `SeededRng::seed_from_u64(root)`, the k-th
//!   `seed_from_u64(root + k·φ)` (φ = 0x9E3779B97F4A7C15).
//!
//! Entering a seeded span swaps its stream in; leaving it (also by a panic) swaps the
//! outer stream back exactly where it was, as Python's
//!
//! ```python
//! @contextmanager
//! def temporary_seed(seed):
//!     state = np.random.get_state(); np.random.seed(seed)
//!     try: yield
//!     finally: np.random.set_state(state)
//! ```
//!
//! The root seed comes from `SPANLAB_SEED`, else [`Builder::seed`](crate::Builder::seed),
//! else the OS; the report always prints it with the line that replays the run, and per
//! seeded path the seeds used, the draws made and a digest of the values drawn (equal
//! digests: the same numbers were drawn). Seeds are kept in bounded memory: the
//! smallest [`SEEDS_KEPT`] with exact counts, and how many distinct there were (see
//! [`SeededPath`]). Unseeded threads' streams are reproducible when the threads first
//! draw in the same order.

pub(crate) mod book;
mod generator;
pub(crate) mod rider;
#[cfg(test)]
mod scope_tests;
pub(crate) mod scopes;

use std::cell::RefCell;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rand_core::{SeedableRng, TryRng};

pub use book::{SeedReport, SeededPath, DISTINCT_SEEDS_ERROR, SEEDS_KEPT};
pub(crate) use generator::splitmix64;
pub use generator::SeededRng;

/// Added per thread to the root seed for each further thread's stream (golden ratio).
const THREAD_STRIDE: u64 = 0x9E37_79B9_7F4A_7C15;

/// A stream in use: the generator plus what has been drawn from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scope {
    rng: SeededRng,
    pub(crate) draws: u64,
    /// An order-sensitive hash of every value drawn.
    pub(crate) digest: u64,
}

impl Scope {
    pub(crate) fn seeded(seed: u64) -> Self {
        Scope {
            rng: SeededRng::seed_from_u64(seed),
            draws: 0,
            digest: 0,
        }
    }

    #[inline]
    fn next(&mut self) -> u64 {
        let value = self.rng.next();
        self.draws += 1;
        self.digest = (self.digest ^ value)
            .wrapping_mul(0x0100_0000_01B3)
            .rotate_left(31);
        value
    }
}

std::thread_local! {
    /// The stream `rng()` draws from on this thread (`None` until first needed).
    static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Numbers threads in the order they first need their own stream.
static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);

/// This thread's own (unseeded) stream.
fn thread_scope() -> Scope {
    let k = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
    Scope::seeded(
        root_seed()
            .value
            .wrapping_add(k.wrapping_mul(THREAD_STRIDE)),
    )
}

/// Installs `scope` as this thread's current stream and returns the one it replaces.
pub(crate) fn swap_current(scope: Scope) -> Scope {
    CURRENT
        .with(|current| current.replace(Some(scope)))
        .unwrap_or_else(thread_scope)
}

#[inline]
fn draw() -> u64 {
    CURRENT.with(|current| current.borrow_mut().get_or_insert_with(thread_scope).next())
}

/// The ambient generator: draws from the current seeded span's stream, or the thread's.
///
/// ```
/// use rand::RngExt;
/// let x: f64 = spanlab::rng().random();
/// assert!((0.0..1.0).contains(&x));
/// ```
pub fn rng() -> AmbientRng {
    AmbientRng {
        _not_send: std::marker::PhantomData,
    }
}

/// The handle [`rng()`] returns. It holds no state (the stream belongs to the span or
/// thread), so it is cheap to make and stays on the thread that made it.
#[derive(Clone, Copy, Debug)]
pub struct AmbientRng {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl TryRng for AmbientRng {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((draw() >> 32) as u32)
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(draw())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            chunk.copy_from_slice(&draw().to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// The names spanlab gives seed bookkeeping when it exports spans over OTLP, fixed here
/// so that reports, JSON and traces share one vocabulary.
pub mod attributes {
    /// On a seeded span: its `seed` (an unsigned integer).
    pub const SEED: &str = "rng.seed";
    /// On a seeded span: the values drawn inside it.
    pub const DRAWS: &str = "rng.draws";
    /// On the resource (every span of the run): the run's root seed.
    pub const ROOT_SEED: &str = "spanlab.rng.root_seed";
}

/// Where the run's root seed came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSource {
    /// The `SPANLAB_SEED` environment variable.
    Env,
    /// [`Builder::seed`](crate::Builder::seed).
    Builder,
    /// The operating system's randomness (nothing else was given).
    Os,
}

impl SeedSource {
    /// `"env"`, `"builder"` or `"os"`, as written in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            SeedSource::Env => "env",
            SeedSource::Builder => "builder",
            SeedSource::Os => "os",
        }
    }
}

/// The run's root seed: fixed once per process, and printed in every report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootSeed {
    /// The seed.
    pub value: u64,
    /// Where it came from.
    pub source: SeedSource,
}

static ROOT: OnceLock<RootSeed> = OnceLock::new();

/// The run's root seed, fixing it now (from `SPANLAB_SEED`, else the OS) if neither
/// the builder nor an earlier draw has.
pub fn root_seed() -> RootSeed {
    *ROOT.get_or_init(|| {
        let env = std::env::var("SPANLAB_SEED").ok();
        resolve_root(None, env.as_deref()).0
    })
}

/// The root seed from the environment value, else the builder's, else the OS; and the
/// error for an environment value that is not a `u64`.
pub(crate) fn resolve_root(
    builder: Option<u64>,
    env: Option<&str>,
) -> (RootSeed, Option<crate::ConfigError>) {
    let mut error = None;
    if let Some(value) = env.map(str::trim).filter(|v| !v.is_empty()) {
        match value.parse::<u64>() {
            Ok(value) => return (RootSeed { value, source: SeedSource::Env }, None),
            Err(_) => {
                error = Some(crate::ConfigError::new(
                    "SPANLAB_SEED",
                    value,
                    "expected an unsigned 64-bit integer; using a seed from the OS instead (see the report)",
                ))
            }
        }
    }
    let root = match builder {
        Some(value) => RootSeed {
            value,
            source: SeedSource::Builder,
        },
        None => RootSeed {
            value: os_seed(),
            source: SeedSource::Os,
        },
    };
    (root, error)
}

/// Fixes the root seed for the process. Returns the seed in force and, if one was
/// already fixed differently (by an earlier draw or layer), an error saying so.
pub(crate) fn fix_root(wanted: RootSeed) -> (RootSeed, Option<crate::ConfigError>) {
    let actual = *ROOT.get_or_init(|| wanted);
    if actual.value != wanted.value && wanted.source != SeedSource::Os {
        let problem = format!(
            "the root seed was already fixed to {} (spanlab::rng() drew before this layer was built, \
             or another layer fixed it); keeping it",
            actual.value
        );
        let name = if wanted.source == SeedSource::Env {
            "SPANLAB_SEED"
        } else {
            "Builder::seed"
        };
        return (
            actual,
            Some(crate::ConfigError::new(
                name,
                wanted.value.to_string(),
                problem,
            )),
        );
    }
    (actual, None)
}

/// 64 bits from the OS, through std's randomly keyed hasher (no extra dependency).
fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The command line that replays this run: `SPANLAB_SEED=<root> <this command>`.
pub(crate) fn replay_line(root: u64) -> String {
    let args: Vec<String> = std::env::args()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    format!("SPANLAB_SEED={root} {}", args.join(" "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::RngExt;

    /// Makes this thread's unseeded stream `seed_from_u64(seed)`, fresh.
    pub(crate) fn reset_thread_stream(seed: u64) {
        CURRENT.with(|current| current.replace(Some(Scope::seeded(seed))));
    }

    #[test]
    fn the_ambient_rng_draws_from_this_threads_stream() {
        reset_thread_stream(5);
        let mut expected = SeededRng::seed_from_u64(5);
        let (a, b): (u64, f64) = (rng().random(), rng().random());
        assert_eq!(a, expected.random::<u64>());
        assert_eq!(b, expected.random::<f64>());
    }

    #[test]
    fn environment_beats_builder_and_bad_values_are_named() {
        let (root, err) = resolve_root(Some(3), Some("17"));
        assert_eq!(
            (root, err),
            (
                RootSeed {
                    value: 17,
                    source: SeedSource::Env
                },
                None
            )
        );
        let (root, err) = resolve_root(Some(3), None);
        assert_eq!(
            root,
            RootSeed {
                value: 3,
                source: SeedSource::Builder
            }
        );
        assert!(err.is_none());
        for bad in ["-1", "1.5", "abc", "18446744073709551616"] {
            let (root, err) = resolve_root(None, Some(bad));
            assert_eq!(root.source, SeedSource::Os);
            let err = err.expect("an error").to_string();
            assert!(
                err.starts_with(&format!(
                    "SPANLAB_SEED={bad:?}: expected an unsigned 64-bit integer"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn replay_line_quotes_what_the_shell_would_split() {
        let line = replay_line(42);
        assert!(line.starts_with("SPANLAB_SEED=42 "), "{line}");
    }
}
