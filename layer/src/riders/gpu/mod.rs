//! GPU memory per span: deltas, nested peaks and energy — PyTorch's
//! `track_gpu_memory` context manager, done by the layer between enter and exit.
//!
//! A span is measured when it has the field `gpu = true`, or when a builder rule
//! selects it (by target prefix, by name, or every span up to a depth). For each
//! measured span and device the layer records memory allocated before and after, the
//! delta, the peak inside the span, device-wide use, and (when asked) energy.
//!
//! # Peaks nest
//!
//! The device keeps one high-water mark. On a measured span's enter the layer reads
//! it, folds it into the enclosing measured span's running peak, and resets it; on
//! exit it reads it as the span's peak and folds that into the enclosing span. So a
//! child's peak counts in its parent's, and a sibling's never leaks into the next
//! sibling. Exact as long as measured spans on one device do not overlap on two
//! threads at once (one training thread per device, the usual case): the mark is
//! per device, not per thread.
//!
//! # Where readings come from
//!
//! A [`GpuProbe`]: the device's CUDA memory pool (feature `cuda`), NVML (feature
//! `nvml`), or [`SimulatedGpu`] in tests. Detection is lazy — at the first measured
//! span — and a missing driver, library, device or permission is reported once (a WARN
//! event and a report warning); measured spans then cost one flag check.
//! `gpu.sync = true` (or [`Builder::gpu_sync`](crate::Builder::gpu_sync)) synchronizes
//! the device before each reading, like `torch.cuda.synchronize`; without it no
//! synchronization happens, because it stalls the pipeline.

#[cfg(feature = "cuda")]
pub use cuda::CudaPoolProbe;
#[cfg(feature = "nvml")]
pub use nvml::NvmlProbe;

mod probe;
pub(crate) mod rider;
mod simulated;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

pub use probe::{GpuProbe, MemoryReading, ProbeError};
pub use simulated::{ProbeCall, SimulatedGpu};

use crate::core::paths::PathId;
use crate::core::sync::LockUnpoisoned;

/// Which spans are measured and how; set through the builder.
#[derive(Clone, Default)]
pub(crate) struct GpuConfig {
    /// A probe given by the program (tests, simulations); else one is detected.
    pub(crate) probe: Option<Arc<dyn GpuProbe>>,
    /// Measure every span whose target starts with one of these.
    pub(crate) targets: Vec<String>,
    /// Measure every span with one of these names.
    pub(crate) names: Vec<String>,
    /// Measure every span at depth ≤ this (1: root spans).
    pub(crate) max_depth: Option<u16>,
    /// Synchronize before every reading (spans can also ask with `gpu.sync = true`).
    pub(crate) sync: bool,
    /// Devices to read (CUDA ordinals); empty: every device the probe sees.
    pub(crate) devices: Vec<usize>,
    /// Read the energy counter too.
    pub(crate) energy: bool,
    /// Emit the one-line Python-style summary as an INFO event at each exit.
    pub(crate) log: bool,
}

impl std::fmt::Debug for GpuConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuConfig")
            .field("probe", &self.probe.as_ref().map(|p| p.name().to_string()))
            .field("targets", &self.targets)
            .field("names", &self.names)
            .field("max_depth", &self.max_depth)
            .field("sync", &self.sync)
            .field("devices", &self.devices)
            .field("energy", &self.energy)
            .field("log", &self.log)
            .finish()
    }
}

impl GpuConfig {
    /// Whether a builder rule selects spans of this callsite at this depth.
    pub(crate) fn rule_selects(&self, meta: &tracing_core::Metadata<'_>, depth: u16) -> bool {
        self.max_depth.is_some_and(|d| depth <= d)
            || self.names.iter().any(|n| n == meta.name())
            || self
                .targets
                .iter()
                .any(|t| meta.target().starts_with(t.as_str()))
    }
}

/// What a measured span asked for in its fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GpuFields {
    /// `gpu = true` / `gpu = false`, if given.
    pub(crate) gpu: Option<bool>,
    /// `gpu.sync = true`, if given.
    pub(crate) sync: Option<bool>,
}

impl GpuFields {
    /// Reads `gpu` and `gpu.sync` from a new span's fields.
    pub(crate) fn of(attrs: &tracing_core::span::Attributes<'_>) -> Self {
        struct Visitor(GpuFields);
        impl tracing_core::field::Visit for Visitor {
            fn record_bool(&mut self, field: &tracing_core::Field, value: bool) {
                match field.name() {
                    "gpu" => self.0.gpu = Some(value),
                    "gpu.sync" => self.0.sync = Some(value),
                    _ => {}
                }
            }
            fn record_debug(&mut self, _: &tracing_core::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut visitor = Visitor(GpuFields::default());
        attrs.record(&mut visitor);
        visitor.0
    }
}

/// One device's reading at a span's enter, and its running peak.
#[derive(Clone, Copy, Debug)]
struct DeviceWindow {
    before: u64,
    peak: u64,
    energy_before: Option<u64>,
}

/// A measured span entered on this thread (kept in the thread's private state).
#[derive(Clone, Debug)]
pub(crate) struct GpuFrame {
    id: u64,
    sync: bool,
    started: Instant,
    windows: Vec<DeviceWindow>,
}

/// What one measured span did on one device, over all its entered intervals.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct DeviceCall {
    pub(crate) before: u64,
    pub(crate) after: u64,
    pub(crate) peak: u64,
    pub(crate) reserved: Option<u64>,
    /// Time measured (entered) with the energy counter read at both ends, ns: what
    /// average power divides by.
    pub(crate) energy_ns: u64,
    pub(crate) device_used: Option<u64>,
    pub(crate) energy_mj: u64,
    /// An interval was shorter than the energy counter's update period.
    pub(crate) below_resolution: bool,
}

/// The extension on a measured span: its sync choice and, once entered, its readings.
#[derive(Clone, Debug, Default)]
pub(crate) struct GpuSpan {
    pub(crate) sync: bool,
    pub(crate) devices: Vec<DeviceCall>,
}

/// Per path and device: what the report shows. Sums and extremes only, so that two
/// runs' stats merge exactly ([`DeviceStats::merge`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DeviceStats {
    pub(crate) calls: u64,
    pub(crate) sum_delta: i128,
    /// The largest delta; meaningless while `calls` is 0.
    pub(crate) max_delta: i64,
    pub(crate) max_peak: u64,
    pub(crate) max_reserved: Option<u64>,
    /// Σ time measured with energy readings, ns.
    pub(crate) energy_ns: u64,
    pub(crate) last_device_used: Option<u64>,
    pub(crate) energy_mj: u64,
    pub(crate) below_resolution: u64,
}

impl DeviceStats {
    /// Adds the stats of later calls (another run's) of the same path and device:
    /// sums add, extremes widen, and the later device-wide reading wins. `Err` names
    /// the sum that would overflow.
    pub(crate) fn merge(&mut self, later: &DeviceStats) -> Result<(), &'static str> {
        if later.calls == 0 {
            return Ok(());
        }
        let add = |a: u64, b: u64, name| a.checked_add(b).ok_or(name);
        let merged = DeviceStats {
            calls: add(self.calls, later.calls, "calls")?,
            sum_delta: (self.sum_delta)
                .checked_add(later.sum_delta)
                .ok_or("sum_delta_bytes")?,
            max_delta: if self.calls == 0 {
                later.max_delta
            } else {
                self.max_delta.max(later.max_delta)
            },
            max_peak: self.max_peak.max(later.max_peak),
            max_reserved: self.max_reserved.max(later.max_reserved),
            energy_ns: add(self.energy_ns, later.energy_ns, "energy_measured_ns")?,
            last_device_used: later.last_device_used.or(self.last_device_used),
            energy_mj: add(self.energy_mj, later.energy_mj, "energy_mj")?,
            below_resolution: add(
                self.below_resolution,
                later.below_resolution,
                "below_resolution",
            )?,
        };
        *self = merged;
        Ok(())
    }
}

/// The probe in use and the devices it reads.
pub(crate) struct Active<'a> {
    probe: &'a Arc<dyn GpuProbe>,
    devices: &'a [usize],
}

/// The probe, once detected: `Ok` to read, `Err(reason)` when there is no GPU to read.
type Detected = Result<(Arc<dyn GpuProbe>, Vec<usize>), String>;

/// The layer's GPU state: configuration, the lazily detected probe, aggregates.
#[derive(Default)]
pub(crate) struct GpuBook {
    pub(crate) config: GpuConfig,
    detected: OnceLock<Detected>,
    /// Set when a read fails mid-run: measuring stops, with one warning.
    failed: OnceLock<String>,
    paths: Mutex<BTreeMap<(PathId, usize), DeviceStats>>,
    warnings: Mutex<Vec<String>>,
}

impl GpuBook {
    pub(crate) fn new(config: GpuConfig) -> Self {
        GpuBook {
            config,
            ..GpuBook::default()
        }
    }

    /// Whether any span could be measured: no rule and no probe given means only spans
    /// with a `gpu` field are candidates.
    pub(crate) fn has_rules(&self) -> bool {
        !self.config.targets.is_empty()
            || !self.config.names.is_empty()
            || self.config.max_depth.is_some()
    }

    /// The probe and devices, detecting them on first use. `Err(warning)` the first
    /// time detection fails (the caller emits it), `Ok(None)` after.
    pub(crate) fn probe(&self) -> Result<Option<Active<'_>>, String> {
        if self.failed.get().is_some() {
            return Ok(None);
        }
        let mut first = false;
        let detected = self.detected.get_or_init(|| {
            first = true;
            let probe = match &self.config.probe {
                Some(p) => Ok(p.clone()),
                None => detect(),
            };
            probe.and_then(|probe| {
                let n = probe.device_count();
                let devices: Vec<usize> = if self.config.devices.is_empty() {
                    (0..n).collect()
                } else {
                    self.config.devices.clone()
                };
                match devices.iter().find(|&&d| d >= n) {
                    _ if n == 0 => Err(format!("{}: no device visible", probe.name())),
                    Some(bad) => Err(format!(
                        "{}: device {bad} requested, {n} visible",
                        probe.name()
                    )),
                    None => Ok((probe, devices)),
                }
            })
        });
        match detected {
            Ok((probe, devices)) => Ok(Some(Active { probe, devices })),
            Err(reason) if first => Err(self.warn(format!("GPU measurement off: {reason}"))),
            Err(_) => Ok(None),
        }
    }

    /// Whether measuring is known to be off (detection failed, or a read did).
    pub(crate) fn known_off(&self) -> bool {
        self.failed.get().is_some() || matches!(self.detected.get(), Some(Err(_)))
    }

    fn warn(&self, warning: String) -> String {
        self.warnings.lock_unpoisoned().push(warning.clone());
        warning
    }

    /// A read failed mid-run: stop measuring. Returns the warning the first time.
    fn fail(&self, e: ProbeError) -> Option<String> {
        let warning = format!("GPU measurement stopped: {e}");
        self.failed.set(warning.clone()).ok()?;
        Some(self.warn(warning))
    }

    /// Entering a measured span: read each device, fold the high-water mark into the
    /// enclosing measured span, reset it. Returns a warning to emit, if any.
    pub(crate) fn enter(&self, id: u64, sync: bool, stack: &mut Vec<GpuFrame>) -> Option<String> {
        let Active { probe, devices } = match self.probe() {
            Ok(Some(active)) => active,
            Ok(None) => return None,
            Err(warning) => return Some(warning),
        };
        let mut windows = Vec::with_capacity(devices.len());
        for (i, &device) in devices.iter().enumerate() {
            let reading = sync
                .then(|| probe.synchronize(device))
                .transpose()
                .and_then(|_| probe.read(device));
            let reading = match reading.and_then(|r| probe.reset_peak(device).map(|()| r)) {
                Ok(r) => r,
                Err(e) => return self.fail(e),
            };
            if let Some(parent) = stack.last_mut() {
                parent.windows[i].peak = parent.windows[i].peak.max(reading.peak);
            }
            let energy_before = self
                .config
                .energy
                .then(|| probe.energy_mj(device))
                .flatten();
            windows.push(DeviceWindow {
                before: reading.allocated,
                peak: reading.allocated,
                energy_before,
            });
        }
        stack.push(GpuFrame {
            id,
            sync,
            started: Instant::now(),
            windows,
        });
        None
    }

    /// Leaving a measured span: its peak is the high-water mark since its enter (and
    /// its children's), folded into the enclosing span. Returns the span's readings
    /// for this interval, and a warning to emit, if any.
    pub(crate) fn exit(
        &self,
        id: u64,
        stack: &mut Vec<GpuFrame>,
    ) -> (Option<Vec<DeviceCall>>, Option<String>) {
        let Some(pos) = stack.iter().rposition(|f| f.id == id) else {
            return (None, None);
        };
        let frame = stack.remove(pos);
        let Ok(Some(Active { probe, devices })) = self.probe() else {
            return (None, None);
        };
        let elapsed = frame.started.elapsed();
        let mut calls = Vec::with_capacity(devices.len());
        for (window, &device) in frame.windows.iter().zip(devices) {
            let reading = frame
                .sync
                .then(|| probe.synchronize(device))
                .transpose()
                .and_then(|_| probe.read(device));
            let reading = match reading {
                Ok(r) => r,
                Err(e) => return (None, self.fail(e)),
            };
            let peak = window.peak.max(reading.peak).max(reading.allocated);
            let energy_after = window.energy_before.and_then(|_| probe.energy_mj(device));
            let (energy_mj, energy_ns, below_resolution) =
                match (window.energy_before, energy_after) {
                    (Some(b), Some(a)) => (
                        a.saturating_sub(b),
                        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
                        elapsed < probe.energy_resolution(),
                    ),
                    _ => (0, 0, false),
                };
            calls.push(DeviceCall {
                before: window.before,
                after: reading.allocated,
                peak,
                reserved: reading.reserved,
                energy_ns,
                device_used: reading.device_used,
                energy_mj,
                below_resolution,
            });
        }
        if let Some(parent) = pos.checked_sub(1).and_then(|p| stack.get_mut(p)) {
            for (w, c) in parent.windows.iter_mut().zip(&calls) {
                w.peak = w.peak.max(c.peak);
            }
        }
        (Some(calls), None)
    }

    /// The one-line summary PyTorch users print, for the log event.
    pub(crate) fn summary(&self, name: &str, calls: &[DeviceCall]) -> String {
        let devices = self
            .probe()
            .ok()
            .flatten()
            .map(|a| a.devices.to_vec())
            .unwrap_or_default();
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        let parts: Vec<String> = calls
            .iter()
            .zip(devices)
            .map(|(c, d)| {
                let delta = c.after as f64 - c.before as f64;
                format!(
                    "[{name}] GPU {d} Memory: delta={:+.1}MB, current={:.1}MB, peak={:.1}MB",
                    delta / (1024.0 * 1024.0),
                    mb(c.after),
                    mb(c.peak)
                )
            })
            .collect();
        parts.join("; ")
    }

    /// A measured span closed: add its readings to its path's aggregates.
    pub(crate) fn record(&self, path: PathId, span: &GpuSpan) {
        let devices = self.probe().ok().flatten().map(|a| a.devices);
        let mut paths = self.paths.lock_unpoisoned();
        for (i, c) in span.devices.iter().enumerate() {
            let device = devices.map_or(i, |d| d[i]);
            let s = paths.entry((path, device)).or_default();
            let delta = c.after as i64 - c.before as i64;
            s.max_delta = if s.calls == 0 {
                delta
            } else {
                s.max_delta.max(delta)
            };
            s.calls += 1;
            s.sum_delta += delta as i128;
            s.max_peak = s.max_peak.max(c.peak);
            s.max_reserved = s.max_reserved.max(c.reserved);
            s.energy_ns = s.energy_ns.saturating_add(c.energy_ns);
            s.last_device_used = c.device_used.or(s.last_device_used);
            s.energy_mj += c.energy_mj;
            s.below_resolution += c.below_resolution as u64;
        }
    }
}

impl GpuBook {
    /// A measured span's readings as export attributes ([`attributes`]), per device.
    pub(crate) fn annotate(&self, span: &GpuSpan, out: &mut crate::core::rider::Closing) {
        use crate::core::rider::SpanAttr::{Float, Int};
        let devices = self.probe().ok().flatten().map(|a| a.devices);
        for (i, c) in span.devices.iter().enumerate() {
            let device = devices.map_or(i, |d| d[i]).to_string();
            let name = |template: &str| template.replace("{device}", &device);
            out.attribute(name(attributes::BEFORE_BYTES), Int(c.before as i64));
            out.attribute(name(attributes::AFTER_BYTES), Int(c.after as i64));
            out.attribute(
                name(attributes::DELTA_BYTES),
                Int(c.after as i64 - c.before as i64),
            );
            out.attribute(name(attributes::PEAK_BYTES), Int(c.peak as i64));
            if let Some(reserved) = c.reserved {
                out.attribute(name(attributes::RESERVED_BYTES), Int(reserved as i64));
            }
            if let Some(used) = c.device_used {
                out.attribute(name(attributes::DEVICE_USED_BYTES), Int(used as i64));
            }
            if c.energy_mj > 0 && !c.below_resolution {
                out.attribute(
                    name(attributes::ENERGY_JOULES),
                    Float(c.energy_mj as f64 / 1000.0),
                );
            }
        }
    }
}

impl GpuSpan {
    /// Folds one entered interval's readings in: the first `before`, the last `after`,
    /// the highest peak, energy summed.
    pub(crate) fn add(&mut self, calls: Vec<DeviceCall>) {
        if self.devices.is_empty() {
            self.devices = calls;
            return;
        }
        for (d, c) in self.devices.iter_mut().zip(calls) {
            d.after = c.after;
            d.peak = d.peak.max(c.peak);
            d.reserved = d.reserved.max(c.reserved);
            d.energy_ns = d.energy_ns.saturating_add(c.energy_ns);
            d.device_used = c.device_used.or(d.device_used);
            d.energy_mj += c.energy_mj;
            d.below_resolution |= c.below_resolution;
        }
    }
}

/// The GPU part of a report.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct GpuReport {
    /// The probe that measured (`"cuda-pool"`, `"nvml"`, `"simulated"`), or `None` when
    /// no span asked or no GPU could be read (the report's warnings say why).
    pub probe: Option<String>,
    /// One entry per measured path and device, in tree order.
    pub paths: Vec<GpuPath>,
}

/// What one measured path did on one device (serialized as is in the JSON report).
///
/// The figures derive from exact sums and extremes, which the report carries too
/// (`sum_delta_bytes`, `energy_millijoules`, `energy_measured_ns`), so that two runs'
/// rows merge exactly.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct GpuPath {
    /// Span names from the root.
    pub path: Vec<Cow<'static, str>>,
    /// The device (CUDA ordinal).
    pub device: usize,
    /// Measured calls.
    pub calls: u64,
    /// Mean of (allocated after − allocated before), bytes: `sum_delta_bytes / calls`.
    pub mean_delta_bytes: f64,
    /// Sum of (allocated after − allocated before) over the calls, bytes (a decimal
    /// string in JSON: it can pass 2^53).
    #[serde(with = "crate::decimal")]
    pub sum_delta_bytes: i128,
    /// The largest delta of a call, bytes (negative if every call freed memory).
    pub max_delta_bytes: i64,
    /// The highest allocation inside any call (its children's included), bytes.
    pub max_peak_bytes: u64,
    /// The most the allocator held from the device at an exit (allocated or cached;
    /// PyTorch's `memory_reserved`), where the probe knows it.
    pub max_reserved_bytes: Option<u64>,
    /// Device-wide memory in use at the last measured exit, where the probe knows it.
    pub device_used_bytes: Option<u64>,
    /// Energy used inside the calls, joules (0 unless energy is on):
    /// `energy_millijoules / 1000`.
    pub energy_joules: f64,
    /// Energy used inside the calls as the counter counts it, millijoules.
    #[serde(rename = "energy_mj")]
    pub energy_millijoules: u64,
    /// Time inside the calls with the energy counter read at both ends, ns (a decimal
    /// string in JSON).
    #[serde(with = "crate::decimal")]
    pub energy_measured_ns: u64,
    /// `energy_joules` over `energy_measured_ns`, when energy was read.
    pub average_watts: Option<f64>,
    /// Calls shorter than the energy counter's update period (their energy is not
    /// meaningful on its own).
    pub below_resolution: u64,
}

impl GpuBook {
    /// The report section, given every path entry (for names and tree order).
    pub(crate) fn report(
        &self,
        entries: &[crate::core::paths::PathEntry],
    ) -> (GpuReport, Vec<String>) {
        let stats = self.paths.lock_unpoisoned().clone();
        let probe = match (self.failed.get(), self.detected.get()) {
            (Some(_), Some(Ok((p, _)))) => Some(format!("{} (stopped)", p.name())),
            (None, Some(Ok((p, _)))) => Some(p.name().to_string()),
            _ => None,
        };
        let warnings = self.warnings.lock_unpoisoned().clone();
        let mut paths = Vec::new();
        for id in crate::core::paths::tree_order(entries) {
            for ((_, device), s) in stats.range((id, 0)..=(id, usize::MAX)) {
                let names = crate::core::paths::names(entries, id);
                let path = names.into_iter().map(Cow::Borrowed).collect();
                paths.push(GpuPath::from_stats(path, *device, s));
            }
        }
        (GpuReport { probe, paths }, warnings)
    }
}

impl GpuPath {
    /// The row of `stats`: every figure derived from the sums, the one way live
    /// reports, reports read back and merges compute them.
    pub(crate) fn from_stats(path: Vec<Cow<'static, str>>, device: usize, s: &DeviceStats) -> Self {
        GpuPath {
            path,
            device,
            calls: s.calls,
            mean_delta_bytes: s.sum_delta as f64 / s.calls.max(1) as f64,
            sum_delta_bytes: s.sum_delta,
            max_delta_bytes: s.max_delta,
            max_peak_bytes: s.max_peak,
            max_reserved_bytes: s.max_reserved,
            device_used_bytes: s.last_device_used,
            energy_joules: s.energy_mj as f64 / 1000.0,
            energy_millijoules: s.energy_mj,
            energy_measured_ns: s.energy_ns,
            average_watts: (s.energy_ns > 0)
                .then(|| s.energy_mj as f64 / 1000.0 / (s.energy_ns as f64 / 1e9)),
            below_resolution: s.below_resolution,
        }
    }

    /// The sums and extremes this row derives from (the inverse of
    /// [`GpuPath::from_stats`]).
    pub(crate) fn stats(&self) -> DeviceStats {
        DeviceStats {
            calls: self.calls,
            sum_delta: self.sum_delta_bytes,
            max_delta: self.max_delta_bytes,
            max_peak: self.max_peak_bytes,
            max_reserved: self.max_reserved_bytes,
            energy_ns: self.energy_measured_ns,
            last_device_used: self.device_used_bytes,
            energy_mj: self.energy_millijoules,
            below_resolution: self.below_resolution,
        }
    }
}

/// The real probes this build has, best first.
fn detect() -> Result<Arc<dyn GpuProbe>, String> {
    let reasons: Vec<String> = Vec::new();
    #[cfg(feature = "cuda")]
    let reasons = match cuda::CudaPoolProbe::detect() {
        Ok(p) => return Ok(Arc::new(p)),
        Err(e) => [reasons, vec![format!("CUDA: {e}")]].concat(),
    };
    #[cfg(feature = "nvml")]
    let reasons = match nvml::NvmlProbe::detect() {
        Ok(p) => return Ok(Arc::new(p)),
        Err(e) => [reasons, vec![format!("NVML: {e}")]].concat(),
    };
    if reasons.is_empty() {
        Err("spanlab was built without its `cuda` and `nvml` features".into())
    } else {
        Err(reasons.join("; "))
    }
}

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "nvml")]
mod nvml;

/// The names spanlab gives GPU readings as span attributes when it exports spans over
/// OTLP (one set per device, `{device}` the CUDA ordinal). Fixed here so that reports,
/// JSON and traces use one vocabulary.
pub mod attributes {
    /// Bytes allocated at the span's first enter.
    pub const BEFORE_BYTES: &str = "gpu.{device}.memory.before_bytes";
    /// Bytes allocated at the span's last exit.
    pub const AFTER_BYTES: &str = "gpu.{device}.memory.after_bytes";
    /// `after − before`, bytes (may be negative).
    pub const DELTA_BYTES: &str = "gpu.{device}.memory.delta_bytes";
    /// The highest allocation inside the span, bytes.
    pub const PEAK_BYTES: &str = "gpu.{device}.memory.peak_bytes";
    /// Bytes held by the allocator at exit (allocated or cached).
    pub const RESERVED_BYTES: &str = "gpu.{device}.memory.reserved_bytes";
    /// Device-wide bytes in use at exit.
    pub const DEVICE_USED_BYTES: &str = "gpu.{device}.memory.device_used_bytes";
    /// Energy used inside the span, joules (absent when below the counter's resolution).
    pub const ENERGY_JOULES: &str = "gpu.{device}.energy_joules";
}
#[cfg(test)]
mod tests;
