//! The builder's own decisions: which environment a build reads, and the `RUST_LOG`
//! filter `init` installs.

use super::*;

#[test]
fn ignore_env_keeps_the_builders_settings() {
    let dir = std::env::temp_dir();
    let json = dir.join("r.json").display().to_string();
    let vars = [
        ("SPANLAB_REPORT", "stdout"),
        ("SPANLAB_REPORT_JSON", json.as_str()),
    ];
    let builder = SpanLab::builder()
        .report_to(ReportTarget::Off)
        .report_json(dir.join("b.json"));
    let env = builder.environment(|| Env::of(&vars));
    let (outputs, _) = config::resolve(
        &builder.settings,
        &env,
        &config::Process::of(&env, &mut Vec::new()),
    );
    assert_eq!(outputs.text, ReportTarget::Stdout);
    assert_eq!(outputs.json.unwrap().source, "SPANLAB_REPORT_JSON");

    let builder = builder.ignore_env();
    let env = builder.environment(|| Env::of(&vars));
    assert_eq!(env.get("SPANLAB_REPORT"), None);
    let (outputs, _) = config::resolve(
        &builder.settings,
        &env,
        &config::Process::of(&env, &mut Vec::new()),
    );
    assert_eq!(outputs.text, ReportTarget::Off);
    assert_eq!(outputs.json.unwrap().source, "Builder::report_json");
}

#[cfg(feature = "env-filter")]
#[test]
fn rust_log_is_the_filter_unless_the_environment_is_ignored() {
    let read = || Env::of(&[("RUST_LOG", "warn")]);
    let filter = env_filter(&SpanLab::builder().environment(read));
    assert_eq!(filter.map(|f| f.to_string()).as_deref(), Some("warn"));
    let ignored = SpanLab::builder().ignore_env().environment(read);
    assert!(
        env_filter(&ignored).is_none(),
        "ignore_env() covers RUST_LOG"
    );
    assert!(env_filter(&Env::of(&[("RUST_LOG", " ")])).is_none());
}

#[test]
fn the_reports_run_has_the_launchers_ranks_unless_the_environment_is_ignored() {
    let read = || Env::of(&[("RANK", "5"), ("LOCAL_RANK", "1"), ("WORLD_SIZE", "16")]);
    for (builder, expected) in [
        (SpanLab::builder(), (Some(5), Some(1), Some(16))),
        (SpanLab::builder().ignore_env(), (None, None, None)),
    ] {
        let env = builder.environment(read);
        let (layer, unarmed) = builder.report_to(ReportTarget::Off).build_unarmed(&env);
        unarmed.emitter.disarm();
        let report = layer.profile().report();
        let run = &report.runs[0];
        assert_eq!((run.rank, run.local_rank, run.world_size), expected);
    }
}

#[test]
fn a_bad_stall_factor_is_one_error_naming_the_variable() {
    let env = Env::of(&[("SPANLAB_STALL_FACTOR", "often")]);
    let (layer, unarmed) = SpanLab::builder()
        .report_to(ReportTarget::Off)
        .stall_factor(7.0)
        .build_unarmed(&env);
    let guard = unarmed.arm();
    let errors = guard.config_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].source_name(), "SPANLAB_STALL_FACTOR");
    assert!(guard.report().warnings[0].contains("SPANLAB_STALL_FACTOR=\"often\""));
    drop(layer);
    drop(guard); // reports to `Off`: nothing written
}
