//! A GPU in memory: the probe the tests (and the `gpu_memory` example, without a GPU)
//! measure through.
//!
//! [`SimulatedGpu`] keeps, per device, the bytes allocated, the high-water mark since
//! its last reset, and an energy counter that only moves in steps of its resolution,
//! like NVML's. Every call is logged, so tests can check that a synchronization came
//! before the reading it was for.

use std::sync::Mutex;
use std::time::Duration;

use super::probe::{GpuProbe, MemoryReading, ProbeError};
use crate::core::sync::LockUnpoisoned;

/// One call the layer made to the simulated probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeCall {
    /// `synchronize(device)`.
    Synchronize(usize),
    /// `read(device)`.
    Read(usize),
    /// `reset_peak(device)`.
    ResetPeak(usize),
}

#[derive(Clone, Debug, Default)]
struct Device {
    allocated: u64,
    peak: u64,
    total: u64,
    energy_mj: u64,
}

/// A probe over simulated devices that a test allocates and frees on.
///
/// ```
/// use spanlab::gpu::{GpuProbe, SimulatedGpu};
/// let gpu = SimulatedGpu::new(1, 80 << 30);
/// gpu.alloc(0, 256 << 20);
/// gpu.free(0, 256 << 20);
/// let r = gpu.read(0).unwrap();
/// assert_eq!((r.allocated, r.peak), (0, 256 << 20));
/// ```
#[derive(Debug)]
pub struct SimulatedGpu {
    devices: Mutex<Vec<Device>>,
    calls: Mutex<Vec<ProbeCall>>,
    energy_resolution: Duration,
    /// `None`: reads work; `Some(reason)`: every call fails with it.
    failure: Option<String>,
}

impl SimulatedGpu {
    /// `devices` devices of `total` bytes each, nothing allocated.
    pub fn new(devices: usize, total: u64) -> Self {
        SimulatedGpu {
            devices: Mutex::new(vec![
                Device {
                    total,
                    ..Device::default()
                };
                devices
            ]),
            calls: Mutex::new(Vec::new()),
            energy_resolution: Duration::from_millis(100),
            failure: None,
        }
    }

    /// A probe whose every call fails with `reason` (no driver, no permission...).
    pub fn failing(reason: &str) -> Self {
        SimulatedGpu {
            failure: Some(reason.to_string()),
            ..SimulatedGpu::new(0, 0)
        }
    }

    fn device<R>(&self, device: usize, f: impl FnOnce(&mut Device) -> R) -> R {
        let mut devices = self.devices.lock_unpoisoned();
        f(&mut devices[device])
    }

    /// Allocates `bytes` on `device`.
    pub fn alloc(&self, device: usize, bytes: u64) {
        self.device(device, |d| {
            d.allocated += bytes;
            d.peak = d.peak.max(d.allocated);
        });
    }

    /// Frees `bytes` on `device`.
    pub fn free(&self, device: usize, bytes: u64) {
        self.device(device, |d| d.allocated = d.allocated.saturating_sub(bytes));
    }

    /// Adds to the device's energy counter (it reports in whole resolution steps).
    pub fn consume_energy(&self, device: usize, millijoules: u64) {
        self.device(device, |d| d.energy_mj += millijoules);
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<ProbeCall> {
        self.calls.lock_unpoisoned().clone()
    }

    fn log(&self, call: ProbeCall) -> Result<(), ProbeError> {
        if let Some(reason) = &self.failure {
            return Err(ProbeError(reason.clone()));
        }
        self.calls.lock_unpoisoned().push(call);
        Ok(())
    }
}

impl GpuProbe for SimulatedGpu {
    fn name(&self) -> &str {
        "simulated"
    }

    fn device_count(&self) -> usize {
        self.devices.lock_unpoisoned().len()
    }

    fn synchronize(&self, device: usize) -> Result<(), ProbeError> {
        self.log(ProbeCall::Synchronize(device))
    }

    fn read(&self, device: usize) -> Result<MemoryReading, ProbeError> {
        self.log(ProbeCall::Read(device))?;
        Ok(self.device(device, |d| MemoryReading {
            allocated: d.allocated,
            peak: d.peak,
            reserved: Some(d.peak),
            device_used: Some(d.allocated),
            device_total: Some(d.total),
        }))
    }

    fn reset_peak(&self, device: usize) -> Result<(), ProbeError> {
        self.log(ProbeCall::ResetPeak(device))?;
        self.device(device, |d| d.peak = d.allocated);
        Ok(())
    }

    fn energy_mj(&self, device: usize) -> Option<u64> {
        self.failure
            .is_none()
            .then(|| self.device(device, |d| d.energy_mj))
    }

    fn energy_resolution(&self) -> Duration {
        self.energy_resolution
    }
}
