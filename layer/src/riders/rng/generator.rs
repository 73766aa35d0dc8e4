//! The generator behind every stream spanlab hands out: xoshiro256++.
//!
//! Fixed and documented, so a seed means the same numbers on every platform and in
//! every spanlab release: xoshiro256++ (Blackman & Vigna) — 256 bits of state, period
//! 2^256 − 1, a few ns per draw — seeded from a `u64` by SplitMix64 as its authors
//! recommend. Not for cryptography.

use std::convert::Infallible;

use rand_core::{SeedableRng, TryRng};

/// A seedable xoshiro256++ generator: the stream a `seed = N` span draws from.
///
/// `SeededRng::seed_from_u64(42)` gives exactly the numbers that
/// `spanlab::rng()` gives inside a span with `seed = 42`:
///
/// ```
/// use rand::{RngExt, SeedableRng};
/// use tracing_subscriber::prelude::*;
///
/// let (layer, _guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     let inside: f64 = tracing::info_span!("trial", seed = 42u64).in_scope(|| spanlab::rng().random());
///     let fresh: f64 = spanlab::SeededRng::seed_from_u64(42).random();
///     assert_eq!(inside, fresh);
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededRng {
    s: [u64; 4],
}

/// One SplitMix64 step: spreads a `u64` seed over the 256-bit state.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SeededRng {
    /// The next 64 bits of the stream.
    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

impl SeedableRng for SeededRng {
    type Seed = [u8; 32];

    /// The state, as four little-endian `u64`. The all-zero state (the one state
    /// xoshiro cannot leave) is replaced by `seed_from_u64(0)`.
    fn from_seed(seed: [u8; 32]) -> Self {
        let mut s = [0u64; 4];
        for (word, bytes) in s.iter_mut().zip(seed.chunks_exact(8)) {
            *word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        }
        if s == [0; 4] {
            return Self::seed_from_u64(0);
        }
        SeededRng { s }
    }

    /// SplitMix64 over `seed`, as the xoshiro authors recommend.
    fn seed_from_u64(mut seed: u64) -> Self {
        let s = [(); 4].map(|()| splitmix64(&mut seed));
        SeededRng { s }
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next() >> 32) as u32) // the high bits are the better ones
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_vector() {
        // xoshiro256++ with state [1, 2, 3, 4]: the first outputs of the reference C code.
        let mut seed = [0u8; 32];
        for (i, word) in [1u64, 2, 3, 4].iter().enumerate() {
            seed[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        let mut rng = SeededRng::from_seed(seed);
        let expected = [
            41943041,
            58720359,
            3588806011781223,
            3591011842654386,
            9228616714210784205,
            9973669472204895162,
            14011001112246962877,
            12406186145184390807,
            15849039046786891736,
            10450023813501588000,
        ];
        for want in expected {
            assert_eq!(rng.next(), want);
        }
    }

    #[test]
    fn seeds_give_distinct_reproducible_streams() {
        let draws = |seed| {
            let mut r = SeededRng::seed_from_u64(seed);
            [(); 4].map(|()| r.next())
        };
        assert_eq!(draws(42), draws(42));
        assert_ne!(draws(42), draws(43));
        assert_ne!(SeededRng::from_seed([0; 32]).s, [0; 4]);
    }

    #[test]
    fn fill_bytes_uses_whole_words_in_order() {
        let (mut a, mut b) = (SeededRng::seed_from_u64(7), SeededRng::seed_from_u64(7));
        let mut bytes = [0u8; 12];
        a.try_fill_bytes(&mut bytes).unwrap();
        assert_eq!(bytes[..8], b.next().to_le_bytes());
        assert_eq!(bytes[8..], b.next().to_le_bytes()[..4]);
    }
}
