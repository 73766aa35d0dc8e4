//! What one GPU reading costs, per source, so the docs can say what `gpu = true` costs.
//!
//! Needs a GPU machine and both real probes:
//!
//! ```text
//! CUDARC_CUDA_VERSION=12080 cargo bench -p spanlab --features cuda,nvml --bench gpu_probe
//! ```
//!
//! Measures, on device 0: the CUDA pool's three attribute reads plus `cuMemGetInfo`
//! (one `read`), the pool peak reset, a device synchronize with nothing queued, NVML's
//! memory reading, and NVML's energy counter. Without a GPU it says why and measures
//! nothing. `README.md` in this folder is where its figures go.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use spanlab::gpu::{CudaPoolProbe, GpuProbe, NvmlProbe};

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let mut group = c.benchmark_group("gpu_reading");
    match CudaPoolProbe::detect() {
        Ok(cuda) => {
            group.bench_function("cuda_pool_read", |b| b.iter(|| black_box(cuda.read(0))));
            group.bench_function("cuda_pool_reset_peak", |b| {
                b.iter(|| black_box(cuda.reset_peak(0)))
            });
            group.bench_function("cuda_synchronize_idle", |b| {
                b.iter(|| black_box(cuda.synchronize(0)))
            });
        }
        Err(reason) => println!("no CUDA pool probe: {reason}"),
    }
    match NvmlProbe::detect() {
        Ok(nvml) => {
            group.bench_function("nvml_memory_read", |b| b.iter(|| black_box(nvml.read(0))));
            group.bench_function("nvml_energy", |b| b.iter(|| black_box(nvml.energy_mj(0))));
        }
        Err(reason) => println!("no NVML probe: {reason}"),
    }
    group.finish();
    c.final_summary();
}
