//! Report paths per process: placeholders, and one file per rank without them.
//!
//! Many processes of one job (torchrun, SLURM, MPI ranks) often share one launch line,
//! and so one `SPANLAB_REPORT_JSON`. Written as given, the ranks would overwrite each
//! other's reports. So a report path may name the process it belongs to:
//!
//! | placeholder | becomes | without it |
//! |---|---|---|
//! | `{rank}` | `RANK` (the job-wide rank) | `0` |
//! | `{local_rank}` | `LOCAL_RANK` (the rank on this node) | `0` |
//! | `{pid}` | the process id | — |
//! | `{host}` | the host name | `localhost` where it cannot be read |
//!
//! And when `RANK` is set but a path has none of them, `.rank{N}` goes in before the
//! file's extension (`run.json` → `run.rank3.json`; `run` → `run.rank3`), so a shared
//! launch line still gives one file per rank. A process without `RANK` keeps its path
//! as written.
//!
//! An unknown placeholder (`{rnak}`) or a `RANK` that is not an unsigned integer is a
//! configuration error naming it; the path is then not used.

use std::path::{Path, PathBuf};

use super::{ConfigError, Env};

/// The placeholders a path may hold, as written in messages.
const PLACEHOLDERS: &str = "{rank}, {local_rank}, {pid}, {host}";

/// Which process of the job this is: read once per build, for the report paths and
/// the report's run metadata alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Process {
    /// `RANK`, when set.
    pub(crate) rank: Option<u64>,
    /// `LOCAL_RANK`, when set.
    pub(crate) local_rank: Option<u64>,
    /// `WORLD_SIZE`, when set.
    pub(crate) world_size: Option<u64>,
    pub(crate) pid: u32,
    /// The machine's name, where it can be read.
    pub(crate) host: Option<String>,
}

impl Process {
    /// This process, as `env` describes it. A launcher variable that is not an
    /// unsigned integer is an error naming it, and counts as unset.
    pub(crate) fn of(env: &Env, errors: &mut Vec<ConfigError>) -> Process {
        let mut rank = |var: &'static str| {
            let value = env.get(var)?;
            let problem = "expected an unsigned integer (set by the job's launcher)";
            value
                .parse::<u64>()
                .map_err(|_| errors.push(ConfigError::new(var, value, problem)))
                .ok()
        };
        Process {
            rank: rank("RANK"),
            local_rank: rank("LOCAL_RANK"),
            world_size: rank("WORLD_SIZE"),
            pid: std::process::id(),
            host: host_name(env),
        }
    }

    /// `path` for this process: its placeholders filled in, or `.rank{N}` before the
    /// extension when `RANK` is set and it has none. `Err`: an unknown placeholder.
    pub(crate) fn path(&self, path: &Path) -> Result<PathBuf, String> {
        let Some(text) = path.to_str() else {
            return Ok(self.suffixed(path)); // not UTF-8: no placeholder can be in it
        };
        if !text.contains('{') {
            return Ok(self.suffixed(path));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open..];
            let close = after.find('}').ok_or_else(|| unknown(after))?;
            out.push_str(&self.placeholder(&after[..=close])?);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(PathBuf::from(out))
    }

    fn placeholder(&self, name: &str) -> Result<String, String> {
        Ok(match name {
            "{rank}" => self.rank.unwrap_or(0).to_string(),
            "{local_rank}" => self.local_rank.unwrap_or(0).to_string(),
            "{pid}" => self.pid.to_string(),
            "{host}" => self.host.clone().unwrap_or_else(|| "localhost".to_owned()),
            other => return Err(unknown(other)),
        })
    }

    /// `path` with `.rank{N}` before its extension, when `RANK` is set.
    fn suffixed(&self, path: &Path) -> PathBuf {
        let Some(rank) = self.rank else {
            return path.to_path_buf();
        };
        let Some(stem) = path.file_stem() else {
            return path.to_path_buf();
        };
        let mut name = stem.to_os_string();
        name.push(format!(".rank{rank}"));
        if let Some(extension) = path.extension() {
            name.push(".");
            name.push(extension);
        }
        path.with_file_name(name)
    }
}

fn unknown(placeholder: &str) -> String {
    format!("unknown placeholder {placeholder}: expected {PLACEHOLDERS}")
}

/// This machine's name: the kernel's where there is a `/proc`, else `HOSTNAME` or
/// `COMPUTERNAME`.
pub(crate) fn host_name(env: &Env) -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            env.get("HOSTNAME")
                .or(env.get("COMPUTERNAME"))
                .map(String::from)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(rank: Option<u64>) -> Process {
        Process {
            rank,
            local_rank: rank.map(|r| r % 8),
            world_size: rank.map(|_| 16),
            pid: 4242,
            host: Some("node7".into()),
        }
    }

    #[test]
    fn placeholders_are_filled_in() {
        let p = process(Some(11));
        assert_eq!(
            p.path(Path::new("/runs/{host}/r{rank}-{local_rank}-{pid}.json")),
            Ok(PathBuf::from("/runs/node7/r11-3-4242.json"))
        );
        // Without a launcher, ranks are 0.
        assert_eq!(
            process(None).path(Path::new("r{rank}.json")),
            Ok(PathBuf::from("r0.json"))
        );
    }

    #[test]
    fn a_rank_without_placeholders_goes_before_the_extension() {
        let p = process(Some(3));
        let cases = [
            ("run.json", "run.rank3.json"),
            ("/tmp/a.b.folded", "/tmp/a.b.rank3.folded"),
            ("out/report", "out/report.rank3"),
        ];
        for (given, expected) in cases {
            assert_eq!(
                p.path(Path::new(given)),
                Ok(PathBuf::from(expected)),
                "{given}"
            );
        }
        // A placeholder anywhere: the path says where the rank goes; no suffix.
        assert_eq!(
            p.path(Path::new("run-{pid}.json")),
            Ok(PathBuf::from("run-4242.json"))
        );
        // No RANK: the path as written.
        assert_eq!(
            process(None).path(Path::new("run.json")),
            Ok(PathBuf::from("run.json"))
        );
    }

    #[test]
    fn an_unknown_placeholder_is_named() {
        let err = process(None).path(Path::new("r{rnak}.json")).unwrap_err();
        assert_eq!(
            err,
            "unknown placeholder {rnak}: expected {rank}, {local_rank}, {pid}, {host}"
        );
        assert!(process(None).path(Path::new("r{rank.json")).is_err());
    }

    #[test]
    fn ranks_come_from_the_environment_and_bad_ones_are_named() {
        let mut errors = Vec::new();
        let env = Env::of(&[("RANK", "5"), ("LOCAL_RANK", "1"), ("WORLD_SIZE", "8")]);
        let p = Process::of(&env, &mut errors);
        assert_eq!(
            (p.rank, p.local_rank, p.world_size),
            (Some(5), Some(1), Some(8))
        );
        assert!(errors.is_empty());
        let p = Process::of(&Env::of(&[("RANK", "five")]), &mut errors);
        assert_eq!(p.rank, None);
        assert_eq!(errors.len(), 1, "one line for the one bad value");
        assert_eq!(
            (errors[0].source_name(), errors[0].value()),
            ("RANK", "five")
        );
        assert_eq!(p.pid, std::process::id());
        // Nothing set: no ranks, and no error.
        let p = Process::of(&Env::none(), &mut errors);
        assert_eq!((p.rank, p.local_rank, p.world_size), (None, None, None));
        assert_eq!(errors.len(), 1);
    }
}
