//! The `ladon` command line: one module per subcommand.

pub mod adapters;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Ladon: a conformance test harness and checker for multi-leader replication.
#[derive(Debug, Parser)]
#[command(name = "ladon", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List adapters, strategies with their declared guarantees, and bug variants.
    Adapters(adapters::AdaptersArgs),
}

/// Exit codes: 0 valid, 1 invalid, 2 unknown or error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Adapters(a) => adapters::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
