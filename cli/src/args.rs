//! The command line: subcommands and their options (clap derive), each with an example
//! in its `--help`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use spanlab::report::SortBy;

/// Show, merge, compare and draw spanlab reports (the JSON a run writes with
/// SPANLAB_REPORT_JSON).
#[derive(Debug, Parser)]
#[command(
    name = "spanlab",
    version,
    after_help = "Example:\n  SPANLAB_REPORT_JSON=run.json ./train\n  spanlab show run.json --sort self --top 10\n\nBad input (a missing file, not JSON, cut off, not a spanlab report, an unknown\nschema, no paths) gives one message and exit status 2."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The text report again, sorted and filtered your way.
    #[command(
        after_help = "Example:\n  spanlab show run.json --sort self --top 10 --min-share 1 --path 'epoch > backward'"
    )]
    Show {
        /// The JSON report.
        report: PathBuf,
        /// Row order (largest first, except tree).
        #[arg(long, value_enum, default_value_t = Sort::Tree)]
        sort: Sort,
        /// Show at most N paths.
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Hide paths below PCT percent of the measured time (`1` or `1%`).
        #[arg(long, value_name = "PCT", value_parser = percent)]
        min_share: Option<f64>,
        /// Only this path and the paths under it (`epoch > backward`).
        #[arg(long, value_name = "PREFIX")]
        path: Option<String>,
    },
    /// Add the ranks' reports of one job into one, exactly, with the spread per path.
    #[command(
        after_help = "Example:\n  spanlab merge rank0.json rank1.json rank2.json rank3.json -o job.json --json\n\nPrints the merged report and, per path, the min/median/max over the inputs of\ntheir totals and means and the input with the largest total (the straggler).\nWith --json the spread is written into the merged file under \"spread\"."
    )]
    Merge {
        /// The JSON reports, in the order their runs happened.
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
        /// Write the merged report (JSON) here.
        #[arg(short, long, value_name = "JOB.json")]
        output: Option<PathBuf>,
        /// Write the spread into the merged JSON (key "spread"); without -o, print
        /// the merged JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare two runs path by path: change, significance (Welch's t-test), verdict.
    #[command(
        after_help = "Example:\n  spanlab diff main.json branch.json --threshold 5% --fail\n\nExit status: 1 with --fail when a path got slower by more than the threshold\nwith p < 0.05; 0 otherwise; 2 for bad input."
    )]
    Diff {
        /// The base run's JSON report.
        base: PathBuf,
        /// The new run's JSON report.
        new: PathBuf,
        /// A slowdown of the mean beyond this (with p < 0.05) is a regression.
        #[arg(long, value_name = "PCT", default_value = "5%", value_parser = percent)]
        threshold: f64,
        /// Changes of the mean within ± this are noise, significant or not.
        #[arg(long, value_name = "PCT", default_value = "1%", value_parser = percent)]
        noise: f64,
        /// Exit with status 1 when any path regressed.
        #[arg(long)]
        fail: bool,
        /// Print the comparison as JSON (schema spanlab.diff/1).
        #[arg(long)]
        json: bool,
    },
    /// A flame graph (SVG) of self time, one frame per path.
    #[command(
        after_help = "Example:\n  spanlab flame run.json -o run.svg\n  spanlab flame run.folded -o run.svg --icicle   # folded stacks (SPANLAB_REPORT_FOLDED)"
    )]
    Flame {
        /// A JSON report, or folded stacks.
        input: PathBuf,
        /// Where to write the SVG.
        #[arg(short, long, value_name = "RUN.svg")]
        output: PathBuf,
        /// Roots at the top (an icicle graph).
        #[arg(long)]
        icicle: bool,
    },
    /// One self-contained HTML page: sortable tree table, histograms, flame graph.
    #[command(
        after_help = "Example:\n  spanlab html run.json -o run.html\n  spanlab html rank*.json -o job.html   # several: merged, with the per-rank spread"
    )]
    Html {
        /// The JSON report; several are merged (with their spread).
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
        /// Where to write the page.
        #[arg(short, long, value_name = "RUN.html")]
        output: PathBuf,
    },
}

/// `--sort`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sort {
    /// Tree order, as at the end of the run.
    Tree,
    /// Total wall time.
    Total,
    /// Self time.
    #[value(name = "self")]
    SelfTime,
    /// Mean per call.
    Mean,
    /// 95th percentile per call.
    P95,
    /// Number of calls.
    Calls,
}

impl From<Sort> for SortBy {
    fn from(s: Sort) -> SortBy {
        match s {
            Sort::Tree => SortBy::Tree,
            Sort::Total => SortBy::Total,
            Sort::SelfTime => SortBy::SelfTime,
            Sort::Mean => SortBy::Mean,
            Sort::P95 => SortBy::P95,
            Sort::Calls => SortBy::Calls,
        }
    }
}

/// `5%`, `5` or `2.5%` → 5.0, 5.0, 2.5 (percent); not negative, finite.
pub fn percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{text:?} is not a percentage (like 5% or 2.5)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent_and_percentages_parse() {
        Cli::command().debug_assert();
        assert_eq!(percent("5%"), Ok(5.0));
        assert_eq!(percent(" 2.5 "), Ok(2.5));
        assert!(percent("-1%").is_err());
        assert!(percent("five").is_err());
    }

    #[test]
    fn every_subcommand_help_shows_an_example() {
        let mut cli = Cli::command();
        for sub in cli.get_subcommands_mut() {
            let help = sub.render_help().to_string();
            assert!(
                help.contains("Example:\n  spanlab "),
                "{}: {help}",
                sub.get_name()
            );
        }
    }
}
