//! What a GPU memory source must answer, whatever it is (CUDA memory pool, NVML, or a
//! simulation in tests).
//!
//! A probe reports bytes for one device at a time. The layer calls it only for spans
//! that asked for GPU measurement, on the thread that enters or exits them.

use std::fmt;

/// One reading of one device's memory, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReading {
    /// Bytes this process has allocated and not freed (the CUDA pool's
    /// `USED_MEM_CURRENT`: PyTorch's `memory_allocated`).
    pub allocated: u64,
    /// The most `allocated` has been since the peak was last reset (`USED_MEM_HIGH`:
    /// PyTorch's `max_memory_allocated`).
    pub peak: u64,
    /// Bytes the allocator holds from the device, allocated or cached
    /// (`RESERVED_MEM_CURRENT`: PyTorch's `memory_reserved`), where the source knows it.
    pub reserved: Option<u64>,
    /// Device-wide bytes in use by every process, where the source knows it.
    pub device_used: Option<u64>,
    /// The device's capacity, where the source knows it.
    pub device_total: Option<u64>,
}

/// Why a probe could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeError(pub String);

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

/// A source of GPU memory (and optionally energy) readings.
///
/// Implementations must never panic: a missing driver, a lost device, a permission
/// problem are all `Err` values, which the layer reports once and then stops asking.
pub trait GpuProbe: Send + Sync + 'static {
    /// A short name for reports: `"cuda-pool"`, `"nvml"`, `"simulated"`.
    fn name(&self) -> &str;

    /// How many devices this probe can read (CUDA ordinals `0..n`).
    fn device_count(&self) -> usize;

    /// Waits until the device has finished the work queued on it, so that the next
    /// reading sees its allocations (`torch.cuda.synchronize`).
    fn synchronize(&self, device: usize) -> Result<(), ProbeError>;

    /// Reads the device's memory now.
    fn read(&self, device: usize) -> Result<MemoryReading, ProbeError>;

    /// Resets the peak to the current allocation (`reset_peak_memory_stats`).
    fn reset_peak(&self, device: usize) -> Result<(), ProbeError>;

    /// The device's energy counter in millijoules, if it has one.
    fn energy_mj(&self, _device: usize) -> Option<u64> {
        None
    }

    /// The device's power draw now, in milliwatts, if the source can tell.
    fn power_mw(&self, _device: usize) -> Option<u32> {
        None
    }

    /// How often the energy counter updates; energy over a shorter span is flagged
    /// "below resolution" instead of being reported as a number.
    fn energy_resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(100)
    }
}
