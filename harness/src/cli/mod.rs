//! The `ladon` command line: one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod run_process;

/// Ladon: a conformance test harness and checker for multi-leader replication.
#[derive(Debug, Parser)]
#[command(name = "ladon", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a test (live, `--adapter process`: a Maelstrom-protocol binary per node).
    Run(Box<run_process::ProcessRunArgs>),
}

/// Exit codes: 0 valid, 1 invalid, 2 unknown or error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run_process::run(*args),
    }
}
