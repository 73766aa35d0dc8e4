//! GPU memory per span: PyTorch's `track_gpu_memory`, done by spanlab.
//!
//! `cargo run --release --example gpu_memory`. Three measured spans, each with
//! `gpu = true, gpu.sync = true`, inside a measured `step`:
//!
//! * `model_init` allocates 256 MiB and keeps it: delta +256 MiB;
//! * `forward_pass` allocates a 64 MiB transient buffer and frees it: delta 0, and the
//!   peak shows the 64 MiB on top of what was already held;
//! * `leak` allocates 16 MiB and never frees it: delta +16 MiB on every call.
//!
//! On a machine with an NVIDIA GPU the buffers are real (cudarc, from the device's
//! memory pool) and spanlab reads the pool. Without one the example says why, then runs
//! the same scenario on spanlab's simulated device, so the output can still be seen.

use std::any::Any;
use std::sync::Arc;

use spanlab::gpu::{GpuProbe, SimulatedGpu};
use tracing::instrument;
use tracing_subscriber::prelude::*;

const MIB: usize = 1 << 20;

/// Where buffers come from: a real device or the simulated one. Dropping a buffer
/// frees it.
trait Device {
    fn alloc(&self, bytes: usize) -> Box<dyn Any>;
}

#[instrument(skip_all, fields(gpu = true, gpu.sync = true))]
fn model_init(device: &dyn Device) -> Box<dyn Any> {
    device.alloc(256 * MIB)
}

#[instrument(skip_all, fields(gpu = true, gpu.sync = true))]
fn forward_pass(device: &dyn Device) {
    let activations = device.alloc(64 * MIB);
    drop(activations); // transient: freed before the span ends
}

#[instrument(skip_all, fields(gpu = true, gpu.sync = true))]
fn leak(device: &dyn Device, leaked: &mut Vec<Box<dyn Any>>) {
    leaked.push(device.alloc(16 * MIB)); // kept forever: the delta shows it
}

fn scenario(device: &dyn Device) {
    let mut leaked = Vec::new();
    let _weights = model_init(device);
    for step in 0..3 {
        let _step = tracing::info_span!("step", step, gpu = true, gpu.sync = true).entered();
        forward_pass(device);
        leak(device, &mut leaked);
    }
}

/// A real device through cudarc, when there is one.
mod real {
    use std::any::Any;
    use std::sync::Arc;

    use cudarc::driver::{CudaContext, CudaStream};

    pub struct Cuda(pub Arc<CudaStream>);

    impl super::Device for Cuda {
        fn alloc(&self, bytes: usize) -> Box<dyn Any> {
            Box::new(self.0.alloc_zeros::<u8>(bytes).expect("device allocation"))
        }
    }

    /// Device 0's stream, or why there is none (checked before cudarc can panic).
    pub fn device() -> Result<Cuda, String> {
        // SAFETY: only tries to load the driver library.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("the CUDA driver library (libcuda) is not installed".into());
        }
        let ctx = CudaContext::new(0).map_err(|e| format!("no usable CUDA device: {e:?}"))?;
        Ok(Cuda(ctx.default_stream()))
    }
}

/// The simulated device: a buffer is a guard that frees its bytes when dropped.
struct Simulated(Arc<SimulatedGpu>);

struct SimulatedBuffer(Arc<SimulatedGpu>, u64);

impl Drop for SimulatedBuffer {
    fn drop(&mut self) {
        self.0.free(0, self.1);
    }
}

impl Device for Simulated {
    fn alloc(&self, bytes: usize) -> Box<dyn Any> {
        self.0.alloc(0, bytes as u64);
        Box::new(SimulatedBuffer(self.0.clone(), bytes as u64))
    }
}

fn main() {
    let (device, probe): (Box<dyn Device>, Option<Arc<dyn GpuProbe>>) = match real::device() {
        Ok(cuda) => (Box::new(cuda), None), // spanlab detects the real probe itself
        Err(reason) => {
            println!("no GPU: {reason}. Running the same scenario on a simulated device.\n");
            let gpu = Arc::new(SimulatedGpu::new(1, 80 << 30));
            (Box::new(Simulated(gpu.clone())), Some(gpu))
        }
    };
    let mut builder = spanlab::SpanLab::builder().gpu_log(true);
    if let Some(probe) = probe {
        builder = builder.gpu_probe(probe);
    }
    let (layer, guard) = builder.build();
    // A fmt layer to show the one-line summaries spanlab emits as INFO events.
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false);
    tracing_subscriber::registry().with(fmt).with(layer).init();

    scenario(device.as_ref());
    drop(guard); // the report, with its gpu memory section
}
