//! The NVML probe (feature `nvml`): device-wide memory, this process's memory, and
//! the energy counter, through NVIDIA's management library (nvml-wrapper, loaded at
//! run time).
//!
//! NVML has no allocator high-water mark and cannot synchronize a device, so with
//! NVML alone a span's peak is the highest of its readings and `gpu.sync` does
//! nothing; prefer the `cuda` feature for exact peaks. CUDA ordinals are mapped to
//! NVML devices by UUID, so `CUDA_VISIBLE_DEVICES` (indices or UUIDs) is honoured.

use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

use super::probe::{GpuProbe, MemoryReading, ProbeError};

/// Reads NVML devices, in CUDA ordinal order.
pub struct NvmlProbe {
    nvml: Nvml,
    /// NVML device UUID of each CUDA ordinal.
    uuids: Vec<String>,
}

impl NvmlProbe {
    /// Opens NVML and maps the CUDA-visible devices, or says why it cannot.
    pub fn detect() -> Result<Self, String> {
        let nvml = Nvml::init().map_err(|e| format!("cannot load NVML: {e}"))?;
        let count = nvml
            .device_count()
            .map_err(|e| format!("nvmlDeviceGetCount: {e}"))?;
        let all: Vec<String> = (0..count)
            .filter_map(|i| nvml.device_by_index(i).ok().and_then(|d| d.uuid().ok()))
            .collect();
        let uuids = visible(&all, std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref());
        if uuids.is_empty() {
            return Err("no NVML device visible (check CUDA_VISIBLE_DEVICES)".into());
        }
        Ok(NvmlProbe { nvml, uuids })
    }

    /// NVML for the devices with these UUIDs (the CUDA probe's, in ordinal order).
    #[cfg(feature = "cuda")]
    pub(crate) fn for_uuids(uuids: &[String]) -> Result<Self, String> {
        let nvml = Nvml::init().map_err(|e| format!("cannot load NVML: {e}"))?;
        Ok(NvmlProbe {
            nvml,
            uuids: uuids.to_vec(),
        })
    }

    fn device(&self, ordinal: usize) -> Result<nvml_wrapper::Device<'_>, ProbeError> {
        self.nvml
            .device_by_uuid(self.uuids[ordinal].as_str())
            .map_err(|e| ProbeError(format!("NVML device: {e}")))
    }
}

/// The UUIDs CUDA numbers `0..`, given every device's UUID in NVML order and
/// `CUDA_VISIBLE_DEVICES` (indices, UUIDs or UUID prefixes; unset: all).
pub(crate) fn visible(all: &[String], env: Option<&str>) -> Vec<String> {
    let Some(env) = env.map(str::trim) else {
        return all.to_vec();
    };
    let mut out = Vec::new();
    for item in env.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // CUDA stops at the first entry it cannot resolve.
        let found = match item.parse::<usize>() {
            Ok(i) => all.get(i).cloned(),
            Err(_) => all.iter().find(|u| u.starts_with(item)).cloned(),
        };
        match found {
            Some(uuid) if !out.contains(&uuid) => out.push(uuid),
            _ => break,
        }
    }
    out
}

impl GpuProbe for NvmlProbe {
    fn name(&self) -> &str {
        "nvml"
    }

    fn device_count(&self) -> usize {
        self.uuids.len()
    }

    fn synchronize(&self, _device: usize) -> Result<(), ProbeError> {
        Ok(()) // NVML cannot; see the module docs
    }

    fn read(&self, ordinal: usize) -> Result<MemoryReading, ProbeError> {
        let device = self.device(ordinal)?;
        let memory = device
            .memory_info()
            .map_err(|e| ProbeError(format!("nvmlDeviceGetMemoryInfo: {e}")))?;
        let pid = std::process::id();
        let mine = device
            .running_compute_processes()
            .map_err(|e| ProbeError(format!("nvmlDeviceGetComputeRunningProcesses: {e}")))?
            .into_iter()
            .filter(|p| p.pid == pid)
            .map(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => bytes,
                UsedGpuMemory::Unavailable => 0,
            })
            .sum();
        Ok(MemoryReading {
            allocated: mine,
            peak: mine,
            reserved: None,
            device_used: Some(memory.used),
            device_total: Some(memory.total),
        })
    }

    fn reset_peak(&self, _device: usize) -> Result<(), ProbeError> {
        Ok(()) // no high-water mark to reset
    }

    fn power_mw(&self, ordinal: usize) -> Option<u32> {
        self.device(ordinal).ok()?.power_usage().ok()
    }

    fn energy_mj(&self, ordinal: usize) -> Option<u64> {
        self.device(ordinal).ok()?.total_energy_consumption().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn cuda_visible_devices_maps_ordinals_to_uuids() {
        let all: Vec<String> = ["GPU-aaaa", "GPU-bbbb", "GPU-cccc"]
            .map(String::from)
            .to_vec();
        assert_eq!(visible(&all, None), all);
        assert_eq!(visible(&all, Some("2,0")), ["GPU-cccc", "GPU-aaaa"]);
        assert_eq!(visible(&all, Some("GPU-bb")), ["GPU-bbbb"]);
        assert_eq!(
            visible(&all, Some("1,7,0")),
            ["GPU-bbbb"],
            "CUDA stops at the first invalid entry"
        );
        assert!(visible(&all, Some("")).is_empty());
    }
}
