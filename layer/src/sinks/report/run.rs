//! Which process a report comes from: one [`RunInfo`] per run, so that a merge of many
//! ranks' reports still says which runs it holds.

use serde::{Deserialize, Serialize};

use crate::config::Process;

/// One process's run: when it ran, where, as what, and its place in a distributed job.
///
/// A report made by a process holds one (see [`Report::runs`](crate::Report::runs));
/// a merge of reports holds all of theirs, in the order merged. Resolved once when the
/// layer is built — the launcher's `RANK`, `LOCAL_RANK` and `WORLD_SIZE` from the same
/// environment snapshot as the rest of the configuration, so
/// [`Builder::ignore_env`](crate::Builder::ignore_env) leaves them out — and completed
/// with the time the report is made.
///
/// ```
/// let (_layer, guard) = spanlab::SpanLab::builder()
///     .report_to(spanlab::ReportTarget::Off)
///     .ignore_env()
///     .build();
/// let report = guard.report();
/// let run = &report.runs[0];
/// assert_eq!(run.pid, std::process::id());
/// assert!(run.start_unix_ns <= run.end_unix_ns);
/// assert_eq!(run.rank, None); // the environment was ignored
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// When the layer was built, ns since the Unix epoch (a decimal string in JSON).
    #[serde(with = "crate::decimal")]
    pub start_unix_ns: u64,
    /// When the report was made, ns since the Unix epoch (a decimal string in JSON).
    #[serde(with = "crate::decimal")]
    pub end_unix_ns: u64,
    /// The machine's host name, where it can be read.
    pub host: Option<String>,
    /// The process id.
    pub pid: u32,
    /// The command line, program first (bytes that are not UTF-8 replaced by U+FFFD).
    pub command_line: Vec<String>,
    /// The version of spanlab that wrote the report.
    pub spanlab_version: String,
    /// `RANK`: the process's rank in its job (torchrun, Slurm-style launchers).
    pub rank: Option<u64>,
    /// `LOCAL_RANK`: its rank on its machine.
    pub local_rank: Option<u64>,
    /// `WORLD_SIZE`: the number of processes in the job.
    pub world_size: Option<u64>,
}

impl RunInfo {
    /// This process's run, starting now (see [`crate::config`] for where the ranks
    /// come from).
    pub(crate) fn start(process: &Process) -> RunInfo {
        let now = unix_ns_now();
        RunInfo {
            start_unix_ns: now,
            end_unix_ns: now,
            host: process.host.clone(),
            pid: process.pid,
            command_line: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            spanlab_version: env!("CARGO_PKG_VERSION").to_string(),
            rank: process.rank,
            local_rank: process.local_rank,
            world_size: process.world_size,
        }
    }

    /// This run, ending now.
    pub(crate) fn ended_now(&self) -> RunInfo {
        RunInfo {
            end_unix_ns: unix_ns_now().max(self.start_unix_ns),
            ..self.clone()
        }
    }
}

/// The wall clock, ns since the Unix epoch (0 before it; saturated past 2554).
fn unix_ns_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    #[test]
    fn a_run_is_this_process_with_its_launcher_ranks() {
        let mut errors = Vec::new();
        let env = Env::of(&[("RANK", "3"), ("LOCAL_RANK", " 1 "), ("WORLD_SIZE", "8")]);
        let run = RunInfo::start(&Process::of(&env, &mut errors));
        assert_eq!(errors, []);
        assert_eq!(
            (run.rank, run.local_rank, run.world_size),
            (Some(3), Some(1), Some(8))
        );
        assert_eq!(run.pid, std::process::id());
        assert_eq!(run.spanlab_version, env!("CARGO_PKG_VERSION"));
        assert!(!run.command_line.is_empty());
        let later = run.ended_now();
        assert!(later.end_unix_ns >= run.start_unix_ns);
        assert_eq!(later.start_unix_ns, run.start_unix_ns);
        // Without a launcher: no ranks.
        let run = RunInfo::start(&Process::of(&Env::none(), &mut errors));
        assert_eq!(
            (run.rank, run.local_rank, run.world_size),
            (None, None, None)
        );
    }
}
