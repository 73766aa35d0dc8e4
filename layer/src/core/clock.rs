//! The clock the hot path reads: one raw TSC read at enter and one at exit.
//!
//! `quanta` reads the CPU's time-stamp counter (a fraction of what `Instant::now()`
//! costs; `layer/benches/README.md` has the figures), calibrated once against the
//! monotonic clock. Where no usable TSC exists it falls back to the monotonic clock, so
//! raw values are only ever compared with each other and turned into nanoseconds here.
//!
//! `quanta::Clock::raw` is not inlinable across crates (a call and a match per read).
//! On x86-64, when quanta's raw reading *is* the TSC — checked once by bracketing it
//! between two `rdtsc` — the layer reads the TSC inline instead, with quanta still
//! providing the calibration.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A calibrated monotonic clock plus its offset to wall-clock time.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    inner: quanta::Clock,
    /// quanta's raw reading is the x86-64 TSC: read it inline.
    inline_tsc: bool,
    /// Raw reading taken at the same moment as `origin_unix`.
    origin_raw: u64,
    /// Wall-clock time of `origin_raw`, in ns since the Unix epoch.
    origin_unix_ns: u64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let inner = quanta::Clock::new();
        let inline_tsc = raw_is_tsc(&inner);
        let origin_raw = inner.raw();
        let origin_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            inner,
            inline_tsc,
            origin_raw,
            origin_unix_ns,
        }
    }

    /// A clock that only moves when the test moves it (raw units are nanoseconds).
    #[cfg(test)]
    pub(crate) fn mock() -> (Self, std::sync::Arc<quanta::Mock>) {
        let (inner, mock) = quanta::Clock::mock();
        (
            Clock {
                inner,
                inline_tsc: false,
                origin_raw: 0,
                origin_unix_ns: 0,
            },
            mock,
        )
    }

    /// Whether [`Clock::raw`] is an inline TSC read, with no call on its way.
    #[inline]
    pub(crate) fn is_inline(&self) -> bool {
        cfg!(target_arch = "x86_64") && self.inline_tsc
    }

    /// A raw reading where [`Clock::is_inline`]: the TSC, read inline. (Elsewhere
    /// quanta's reading, which is a call.)
    #[inline(always)]
    pub(crate) fn raw_inline(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `rdtsc` exists on every x86-64 CPU.
        return unsafe { std::arch::x86_64::_rdtsc() };
        #[cfg(not(target_arch = "x86_64"))]
        self.inner.raw()
    }

    /// A raw reading: only meaningful relative to another reading of the same clock.
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.inline_tsc {
            // SAFETY: `rdtsc` exists on every x86-64 CPU; `raw_is_tsc` saw quanta use it.
            return unsafe { std::arch::x86_64::_rdtsc() };
        }
        self.inner.raw()
    }

    /// Nanoseconds from `start` to `end` (0 if `end` is not after `start`).
    #[inline]
    pub(crate) fn nanos_between(&self, start: u64, end: u64) -> u64 {
        self.inner.delta_as_nanos(start, end)
    }

    /// Nanoseconds per tick, measured over 2^32 ticks for precision.
    pub(crate) fn scale(&self) -> crate::core::stats::TickScale {
        const SPAN: u64 = 1 << 32;
        crate::core::stats::TickScale(self.nanos_between(0, SPAN) as f64 / SPAN as f64)
    }

    /// Time since this clock was created.
    pub(crate) fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos_between(self.origin_raw, self.raw()))
    }

    /// Wall-clock time of a raw reading, in ns since the Unix epoch (for export).
    pub(crate) fn unix_nanos(&self, raw: u64) -> u64 {
        self.origin_unix_ns + self.nanos_between(self.origin_raw, raw)
    }
}

/// Whether `clock.raw()` reads the TSC: a reading bracketed by two `rdtsc` (several
/// tries, in case the thread migrates between cores in between).
#[cfg(target_arch = "x86_64")]
fn raw_is_tsc(clock: &quanta::Clock) -> bool {
    (0..5).any(|_| {
        // SAFETY: `rdtsc` exists on every x86-64 CPU.
        let before = unsafe { std::arch::x86_64::_rdtsc() };
        let raw = clock.raw();
        let after = unsafe { std::arch::x86_64::_rdtsc() };
        before <= raw && raw <= after
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn raw_is_tsc(_: &quanta::Clock) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_reads_agree_with_quanta() {
        let clock = Clock::new();
        let (a, q, b) = (clock.raw(), clock.inner.raw(), clock.raw());
        assert!(a <= q && q <= b, "inline {a} / quanta {q} / inline {b}");
        std::thread::sleep(Duration::from_millis(20));
        let waited = clock.nanos_between(b, clock.raw());
        assert!(waited >= 19_000_000, "20 ms sleep measured as {waited} ns");
    }
}
