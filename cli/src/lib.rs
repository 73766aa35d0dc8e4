//! `spanlab`, the command: after the run, a spanlab JSON report shown again, merged
//! with the other ranks' reports, compared with another run, or drawn.
//!
//! ```text
//! spanlab show RUN.json --sort self --top 10     # the text report, re-rendered and filtered
//! spanlab merge rank*.json -o JOB.json --json    # one job's ranks, and who was slowest
//! spanlab diff BASE.json NEW.json --fail         # slower beyond noise? exit 1 for CI
//! spanlab flame RUN.json -o RUN.svg              # a flame graph of self time
//! spanlab html RUN.json -o RUN.html              # one offline page with all of it
//! ```
//!
//! Each command reads reports of schema `spanlab.report/2` through
//! [`spanlab::Report::from_json`]; [`input`] turns every kind of bad input into one
//! message and exit status 2. The library crate holds each command's logic (the binary
//! only parses arguments), so tests and benchmarks call it directly.

#![deny(missing_docs)]

pub mod args;
pub mod diff;
pub mod flame;
pub mod html;
pub mod input;
pub mod merge;
pub mod run;
pub mod show;
pub mod synthetic;

/// Why a command stopped: one message for the user, and the exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, naming the file.
    pub message: String,
    /// The exit status: 2 for bad input or output, 1 for a `diff --fail` that failed.
    pub code: u8,
}

impl Failure {
    /// A problem with an input or output file: exit status 2.
    pub fn input(message: String) -> Failure {
        Failure { message, code: 2 }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
