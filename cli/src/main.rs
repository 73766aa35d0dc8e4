//! The `spanlab` binary: parses the command line and hands it to
//! [`spanlab_cli::run::run`]; prints what it returns and exits with its status.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = spanlab_cli::args::Cli::parse();
    match spanlab_cli::run::run(cli) {
        Ok(outcome) => {
            // A closed pipe (`spanlab show x | head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
            let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
            ExitCode::from(outcome.code)
        }
        Err(failure) => {
            eprintln!("spanlab: {failure}");
            ExitCode::from(failure.code)
        }
    }
}
