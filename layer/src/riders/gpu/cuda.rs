//! The CUDA memory-pool probe (feature `cuda`): exact, process-local readings from
//! each device's current memory pool, through the driver API (cudarc, loaded at run
//! time).
//!
//! `USED_MEM_CURRENT` is what this process has allocated from the pool and not freed
//! (PyTorch's `memory_allocated`), `USED_MEM_HIGH` its high-water mark, reset by
//! setting it to 0 (`reset_peak_memory_stats`); `cuMemGetInfo` adds device-wide
//! use. cudarc and candle allocate from this pool (`cuMemAllocAsync`). With the `nvml`
//! feature too, energy comes from NVML, matched to each CUDA device by UUID.
//!
//! cudarc panics when it cannot load `libcuda`; this probe checks that the library
//! loads before anything else touches cudarc, and reports its absence as an error.
//! It does not choose a CUDA version for cudarc: the application does, with one of
//! cudarc's `cuda-XXXXX` features or `CUDARC_CUDA_VERSION` at build time.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::{result, sys, CudaContext, DriverError};

use super::probe::{GpuProbe, MemoryReading, ProbeError};

/// A device's pool handle. CUDA pool handles are process-wide and may be used from any
/// thread, so sharing the raw pointer is sound.
struct Pool(sys::CUmemoryPool);
// SAFETY: see above; the handle is only passed to the driver, never dereferenced.
unsafe impl Send for Pool {}
// SAFETY: as for `Send`.
unsafe impl Sync for Pool {}

struct Device {
    ctx: Arc<CudaContext>,
    pool: Pool,
}

/// Reads each visible device's current CUDA memory pool.
pub struct CudaPoolProbe {
    devices: Vec<Device>,
    #[cfg(feature = "nvml")]
    energy: Option<super::nvml::NvmlProbe>,
}

fn err(what: &str) -> impl Fn(DriverError) -> ProbeError + '_ {
    move |e| ProbeError(format!("{what}: {e:?}"))
}

impl CudaPoolProbe {
    /// Loads the driver and opens every visible device, or says why it cannot.
    pub fn detect() -> Result<Self, String> {
        // SAFETY: only tries to load the library; no cudarc symbol is resolved.
        if !unsafe { sys::is_culib_present() } {
            return Err(
                "the CUDA driver library (libcuda) is not installed or not on the loader path"
                    .into(),
            );
        }
        result::init().map_err(|e| format!("cuInit failed: {e:?}"))?;
        let count =
            result::device::get_count().map_err(|e| format!("cuDeviceGetCount failed: {e:?}"))?;
        if count <= 0 {
            return Err("no CUDA device visible (check CUDA_VISIBLE_DEVICES)".into());
        }
        let mut devices = Vec::new();
        for ordinal in 0..count as usize {
            let ctx = CudaContext::new(ordinal).map_err(|e| format!("device {ordinal}: {e:?}"))?;
            // SAFETY: the device handle comes from the context just created.
            let pool = unsafe { result::device::get_mem_pool(ctx.cu_device()) }.map_err(|e| {
                format!("device {ordinal} has no memory pool (MIG or an old driver?): {e:?}")
            })?;
            devices.push(Device {
                ctx,
                pool: Pool(pool),
            });
        }
        #[cfg(feature = "nvml")]
        let energy = {
            let uuids: Vec<String> = devices
                .iter()
                .filter_map(|d| d.ctx.uuid().ok().map(uuid_string))
                .collect();
            super::nvml::NvmlProbe::for_uuids(&uuids).ok()
        };
        Ok(CudaPoolProbe {
            devices,
            #[cfg(feature = "nvml")]
            energy,
        })
    }

    fn pool_attribute(
        &self,
        device: usize,
        attr: sys::CUmemPool_attribute,
    ) -> Result<u64, ProbeError> {
        let mut value = 0u64;
        // SAFETY: a valid pool, a u64 out-parameter as these attributes require.
        unsafe {
            result::mem_pool::get_attribute(
                self.devices[device].pool.0,
                attr,
                &mut value as *mut u64 as *mut c_void,
            )
        }
        .map_err(err("cuMemPoolGetAttribute"))?;
        Ok(value)
    }
}

/// NVML's spelling of a CUDA device UUID: `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
#[cfg(feature = "nvml")]
fn uuid_string(uuid: sys::CUuuid) -> String {
    let b: Vec<u8> = uuid.bytes.iter().map(|&c| c as u8).collect();
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    )
}

impl GpuProbe for CudaPoolProbe {
    fn name(&self) -> &str {
        "cuda-pool"
    }

    fn device_count(&self) -> usize {
        self.devices.len()
    }

    fn synchronize(&self, device: usize) -> Result<(), ProbeError> {
        self.devices[device]
            .ctx
            .synchronize()
            .map_err(err("cuCtxSynchronize"))
    }

    fn read(&self, device: usize) -> Result<MemoryReading, ProbeError> {
        use sys::CUmemPool_attribute::*;
        let allocated = self.pool_attribute(device, CU_MEMPOOL_ATTR_USED_MEM_CURRENT)?;
        let peak = self.pool_attribute(device, CU_MEMPOOL_ATTR_USED_MEM_HIGH)?;
        let reserved = self.pool_attribute(device, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)?;
        // cuMemGetInfo reads the current context's device.
        self.devices[device]
            .ctx
            .bind_to_thread()
            .map_err(err("cuCtxSetCurrent"))?;
        let (free, total) = result::mem_get_info().map_err(err("cuMemGetInfo"))?;
        Ok(MemoryReading {
            allocated,
            peak,
            reserved: Some(reserved),
            device_used: Some((total - free) as u64),
            device_total: Some(total as u64),
        })
    }

    fn reset_peak(&self, device: usize) -> Result<(), ProbeError> {
        let mut zero = 0u64; // the driver resets the high-water mark to current use
                             // SAFETY: a valid pool, a u64 in-parameter as USED_MEM_HIGH requires.
        unsafe {
            result::mem_pool::set_attribute(
                self.devices[device].pool.0,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                &mut zero as *mut u64 as *mut c_void,
            )
        }
        .map_err(err("cuMemPoolSetAttribute"))
    }

    #[cfg(feature = "nvml")]
    fn power_mw(&self, device: usize) -> Option<u32> {
        self.energy.as_ref()?.power_mw(device)
    }

    #[cfg(feature = "nvml")]
    fn energy_mj(&self, device: usize) -> Option<u64> {
        self.energy.as_ref()?.energy_mj(device)
    }
}
