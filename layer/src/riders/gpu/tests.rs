//! GPU measurement through the layer, on the simulated probe.

use std::sync::Arc;
use std::time::Duration;

use tracing::info_span;
use tracing_subscriber::prelude::*;

use super::{GpuConfig, GpuPath, ProbeCall, SimulatedGpu};
use crate::layer::SpanLabLayer;
use crate::profile::Profile;

const MIB: u64 = 1 << 20;

/// A layer measuring through `gpu`, configured by `config`.
fn layer_with(gpu: &Arc<SimulatedGpu>, config: GpuConfig) -> (SpanLabLayer, Profile) {
    let config = GpuConfig {
        probe: Some(gpu.clone()),
        ..config
    };
    crate::test_support::layer_with(crate::core::clock::Clock::new(), config)
}

fn run(layer: SpanLabLayer, f: impl FnOnce()) {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
}

fn gpu_path<'a>(profile: &'a [GpuPath], path: &str, device: usize) -> &'a GpuPath {
    profile
        .iter()
        .find(|p| p.path.join(" > ") == path && p.device == device)
        .unwrap_or_else(|| panic!("no gpu row for {path} on {device}: {profile:?}"))
}

#[test]
fn an_allocation_inside_a_span_is_its_delta_and_peak() {
    let gpu = Arc::new(SimulatedGpu::new(1, 80 << 30));
    let (layer, profile) = layer_with(&gpu, GpuConfig::default());
    run(layer, || {
        info_span!("model_init", gpu = true).in_scope(|| gpu.alloc(0, 256 * MIB));
        info_span!("forward", gpu = true).in_scope(|| {
            gpu.alloc(0, 64 * MIB); // activations: transient
            gpu.free(0, 64 * MIB);
        });
        info_span!("unmeasured").in_scope(|| gpu.alloc(0, MIB));
    });
    let report = profile.report();
    assert_eq!(report.gpu.probe.as_deref(), Some("simulated"));
    let init = gpu_path(&report.gpu.paths, "model_init", 0);
    assert_eq!(
        (init.calls, init.max_delta_bytes, init.max_peak_bytes),
        (1, 256 << 20, 256 << 20)
    );
    assert_eq!(init.mean_delta_bytes, (256 * MIB) as f64);
    let fwd = gpu_path(&report.gpu.paths, "forward", 0);
    assert_eq!(
        (fwd.max_delta_bytes, fwd.max_peak_bytes),
        (0, 320 << 20),
        "transient: delta 0, peak shows it"
    );
    assert_eq!(fwd.device_used_bytes, Some(256 * MIB));
    assert_eq!(
        report.gpu.paths.len(),
        2,
        "spans without gpu = true are not measured"
    );
    assert_eq!(profile.get("forward").unwrap().calls, 1, "and still timed");
}

#[test]
fn peaks_nest_into_parents_and_never_leak_between_siblings() {
    let gpu = Arc::new(SimulatedGpu::new(1, 80 << 30));
    let (layer, profile) = layer_with(&gpu, GpuConfig::default());
    run(layer, || {
        info_span!("step", gpu = true).in_scope(|| {
            info_span!("big", gpu = true).in_scope(|| {
                gpu.alloc(0, 100 * MIB);
                gpu.free(0, 100 * MIB);
            });
            info_span!("small", gpu = true).in_scope(|| {
                gpu.alloc(0, 10 * MIB);
                gpu.free(0, 10 * MIB);
            });
            gpu.alloc(0, 5 * MIB); // the parent's own, kept
        });
    });
    let paths = profile.report().gpu.paths;
    assert_eq!(gpu_path(&paths, "step > big", 0).max_peak_bytes, 100 * MIB);
    assert_eq!(
        gpu_path(&paths, "step > small", 0).max_peak_bytes,
        10 * MIB,
        "the sibling's 100 MiB does not leak"
    );
    let step = gpu_path(&paths, "step", 0);
    assert_eq!(
        step.max_peak_bytes,
        100 * MIB,
        "the child's peak is the parent's"
    );
    assert_eq!(step.max_delta_bytes, (5 * MIB) as i64);
}

#[test]
fn sync_comes_before_each_reading_only_when_asked() {
    let gpu = Arc::new(SimulatedGpu::new(1, 1 << 30));
    let (layer, _) = layer_with(&gpu, GpuConfig::default());
    run(layer, || {
        info_span!("plain", gpu = true).in_scope(|| ());
        info_span!("synced", gpu = true, gpu.sync = true).in_scope(|| ());
    });
    use ProbeCall::*;
    assert_eq!(
        gpu.calls(),
        [
            Read(0),
            ResetPeak(0),
            Read(0),
            Synchronize(0),
            Read(0),
            ResetPeak(0),
            Synchronize(0),
            Read(0)
        ]
    );
    // The builder default applies where the span does not say.
    let gpu = Arc::new(SimulatedGpu::new(1, 1 << 30));
    let (layer, _) = layer_with(
        &gpu,
        GpuConfig {
            sync: true,
            ..GpuConfig::default()
        },
    );
    run(layer, || info_span!("synced", gpu = true).in_scope(|| ()));
    assert_eq!(
        gpu.calls(),
        [
            Synchronize(0),
            Read(0),
            ResetPeak(0),
            Synchronize(0),
            Read(0)
        ]
    );
}

#[test]
fn energy_is_summed_and_short_spans_are_flagged_below_resolution() {
    let gpu = Arc::new(SimulatedGpu::new(1, 1 << 30));
    let (layer, profile) = layer_with(
        &gpu,
        GpuConfig {
            energy: true,
            ..GpuConfig::default()
        },
    );
    run(layer, || {
        info_span!("long", gpu = true).in_scope(|| {
            std::thread::sleep(Duration::from_millis(120)); // > the 100 ms counter period
            gpu.consume_energy(0, 30_000);
        });
        for _ in 0..3 {
            info_span!("short", gpu = true).in_scope(|| gpu.consume_energy(0, 10));
        }
    });
    let paths = profile.report().gpu.paths;
    let long = gpu_path(&paths, "long", 0);
    // 30 J over the span's measured time (at least the 120 ms slept): at most 250 W.
    let watts = long.average_watts.expect("energy is on");
    assert!(watts > 30.0 && watts <= 30.0 / 0.120, "{watts} W");
    assert_eq!((long.energy_joules, long.below_resolution), (30.0, 0));
    let short = gpu_path(&paths, "short", 0);
    assert_eq!(short.below_resolution, 3);
    let text = profile.report().to_text();
    assert!(text.contains("(3 below resolution)"), "{text}");
}

#[test]
fn no_gpu_means_one_warning_timing_goes_on_and_nothing_panics() {
    let gpu = Arc::new(SimulatedGpu::failing(
        "libnvidia-ml.so: cannot open shared object file",
    ));
    let (layer, profile) = layer_with(&gpu, GpuConfig::default());
    run(layer, || {
        for _ in 0..5 {
            info_span!("forward", gpu = true).in_scope(|| ());
        }
    });
    let report = profile.report();
    assert!(report.gpu.paths.is_empty() && report.gpu.probe.is_none());
    assert_eq!(
        report.warnings,
        ["GPU measurement off: simulated: no device visible"]
    );
    assert_eq!(profile.get("forward").unwrap().calls, 5);
}

#[test]
fn a_device_lost_mid_run_stops_measuring_with_one_warning() {
    struct Flaky(SimulatedGpu, std::sync::atomic::AtomicUsize);
    impl super::GpuProbe for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn device_count(&self) -> usize {
            1
        }
        fn synchronize(&self, d: usize) -> Result<(), super::ProbeError> {
            self.0.synchronize(d)
        }
        fn read(&self, d: usize) -> Result<super::MemoryReading, super::ProbeError> {
            if self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 3 {
                return Err(super::ProbeError("device lost".into()));
            }
            self.0.read(d)
        }
        fn reset_peak(&self, d: usize) -> Result<(), super::ProbeError> {
            self.0.reset_peak(d)
        }
    }
    let probe = Arc::new(Flaky(SimulatedGpu::new(1, 1 << 30), Default::default()));
    let config = GpuConfig {
        probe: Some(probe),
        ..GpuConfig::default()
    };
    let (layer, profile) =
        crate::test_support::layer_with(crate::core::clock::Clock::new(), config);
    run(layer, || {
        for _ in 0..5 {
            info_span!("step", gpu = true).in_scope(|| ());
        }
    });
    let report = profile.report();
    assert_eq!(
        gpu_path(&report.gpu.paths, "step", 0).calls,
        1,
        "measured until the device was lost"
    );
    assert_eq!(report.gpu.probe.as_deref(), Some("flaky (stopped)"));
    assert_eq!(report.warnings, ["GPU measurement stopped: device lost"]);
    assert_eq!(profile.get("step").unwrap().calls, 5);
}

#[test]
fn several_devices_are_read_side_by_side() {
    let gpu = Arc::new(SimulatedGpu::new(2, 1 << 30));
    let (layer, profile) = layer_with(&gpu, GpuConfig::default());
    run(layer, || {
        info_span!("shard", gpu = true).in_scope(|| {
            gpu.alloc(0, MIB);
            gpu.alloc(1, 3 * MIB);
        })
    });
    let paths = profile.report().gpu.paths;
    assert_eq!(gpu_path(&paths, "shard", 0).max_delta_bytes, MIB as i64);
    assert_eq!(
        gpu_path(&paths, "shard", 1).max_delta_bytes,
        (3 * MIB) as i64
    );
    // A device the probe does not have is a warning, not a panic.
    let gpu = Arc::new(SimulatedGpu::new(1, 1 << 30));
    let (layer, profile) = layer_with(
        &gpu,
        GpuConfig {
            devices: vec![3],
            ..GpuConfig::default()
        },
    );
    run(layer, || info_span!("shard", gpu = true).in_scope(|| ()));
    assert_eq!(
        profile.report().warnings,
        ["GPU measurement off: simulated: device 3 requested, 1 visible"]
    );
}

#[test]
fn builder_rules_select_spans_and_gpu_false_opts_out() {
    let gpu = Arc::new(SimulatedGpu::new(1, 1 << 30));
    let config = GpuConfig {
        names: vec!["forward".into()],
        max_depth: Some(1),
        ..GpuConfig::default()
    };
    let (layer, profile) = layer_with(&gpu, config);
    run(layer, || {
        info_span!("epoch").in_scope(|| {
            info_span!("forward").in_scope(|| gpu.alloc(0, MIB));
            info_span!("loss").in_scope(|| ());
            info_span!("forward", gpu = false).in_scope(|| ());
        });
    });
    let rows: Vec<(String, u64)> = profile
        .report()
        .gpu
        .paths
        .iter()
        .map(|p| (p.path.join(" > "), p.calls))
        .collect();
    assert_eq!(
        rows,
        [("epoch".to_string(), 1), ("epoch > forward".to_string(), 1)]
    );
}

#[test]
fn report_text_and_json_show_the_gpu_section() {
    let gpu = Arc::new(SimulatedGpu::new(1, 1 << 30));
    let (layer, profile) = layer_with(&gpu, GpuConfig::default());
    run(layer, || {
        info_span!("model_init", gpu = true).in_scope(|| gpu.alloc(0, 256 * MIB))
    });
    let report = profile.report();
    let text = report.to_text();
    assert!(text.contains("gpu memory (simulated):"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("model_init ") && l.contains("MiB"))
        .expect(&text);
    assert_eq!(
        row.split("  ")
            .filter(|c| !c.is_empty())
            .map(str::trim)
            .collect::<Vec<_>>(),
        [
            "model_init",
            "0",
            "1",
            "+256 MiB",
            "+256 MiB",
            "256 MiB",
            "256 MiB",
            "256 MiB",
            "-"
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["gpu"]["probe"], "simulated");
    assert_eq!(
        json["gpu"]["paths"][0],
        serde_json::json!({"path": ["model_init"], "device": 0, "calls": 1,
            "mean_delta_bytes": 268435456.0, "sum_delta_bytes": "268435456",
            "max_delta_bytes": 268435456, "max_peak_bytes": 268435456,
            "max_reserved_bytes": 268435456, "device_used_bytes": 268435456, "energy_joules": 0.0,
            "energy_mj": 0, "energy_measured_ns": "0", "average_watts": null, "below_resolution": 0})
    );
}

#[test]
fn detection_without_a_driver_warns_once_and_never_panics() {
    // No probe given: the build's real probes are tried (none without the `cuda` or
    // `nvml` feature; on a machine without a driver, both fail to load).
    let (layer, profile) =
        crate::test_support::layer_with(crate::core::clock::Clock::new(), GpuConfig::default());
    run(layer, || {
        for _ in 0..3 {
            info_span!("forward", gpu = true).in_scope(|| ());
        }
    });
    let report = profile.report();
    if report.gpu.probe.is_none() {
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(
            report.warnings[0].starts_with("GPU measurement off: "),
            "{:?}",
            report.warnings
        );
        eprintln!("(no GPU here: {})", report.warnings[0]);
    } else {
        assert_eq!(gpu_path(&report.gpu.paths, "forward", 0).calls, 3);
    }
    assert_eq!(profile.get("forward").unwrap().calls, 3);
}
