//! The `ladon` command line: one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod report;
pub mod serve;
pub mod suite;

/// Ladon: a conformance test harness and checker for multi-leader replication.
#[derive(Debug, Parser)]
#[command(name = "ladon", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a matrix of runs with expectations from a TOML file, in parallel.
    Suite(suite::Args),
    /// Serve the results directory on loopback: runs, verdicts, reports.
    Serve(serve::Args),
    /// (Re)render report.html for a run directory.
    Report(report::Args),
}

/// Exit codes: 0 valid, 1 invalid, 2 unknown or error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Suite(a) => suite::main(a),
        Command::Serve(a) => serve::main(a),
        Command::Report(a) => report::main(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
