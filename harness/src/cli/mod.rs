//! The `ladon` command line: one module per subcommand.

pub mod adapters;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod explore;
pub mod gen_history;
pub mod replay;
pub mod report;
pub mod run;
pub mod run_process;
pub mod serve;
pub mod shrink;
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
    /// List adapters, strategies with their declared guarantees, and bug variants.
    Adapters(adapters::AdaptersArgs),
    /// Run one test and check it: a deterministic simulation by default, or
    /// live processes (`--adapter process --bin PATH`).
    ///
    /// Simulated (adapters reference, toy): every choice comes from --seed;
    /// the run lands in results/<test>/<time>-seed<seed>/ and `ladon replay`
    /// repeats it byte for byte.
    ///
    /// Live (`ladon run --adapter process --bin PATH --workload W`): one
    /// process per node speaking the Maelstrom protocol on stdin/stdout, its
    /// messages routed through Ladon's network (partitions, loss, ...), the
    /// history checked the same way; `ladon run --adapter process --help`
    /// lists its own flags.
    ///
    /// Exit code: 0 valid, 1 invalid, 2 unknown or error.
    Run(run::RunArgs),
    /// Re-run a stored simulated run and fail if its history differs.
    Replay(replay::ReplayArgs),
    /// Run many seeds on every core and list the failing ones.
    Explore(explore::ExploreArgs),
    /// Shrink a failing simulated run to the smallest run that still fails.
    Shrink(shrink::ShrinkArgs),
    /// Check a history: verdict, anomalies with explanations, conflicts, figures.
    Check(check::CheckArgs),
    /// Write a synthetic history of a correct system (optionally with one anomaly injected).
    GenHistory(gen_history::GenHistoryArgs),
    /// Run a matrix of runs with expectations from a TOML file, in parallel.
    Suite(suite::Args),
    /// Serve the results directory on loopback: runs, verdicts, reports.
    Serve(serve::Args),
    /// (Re)render report.html for a run directory.
    Report(report::Args),
}

/// Exit codes: 0 valid, 1 invalid, 2 unknown or error.
pub fn main() -> ExitCode {
    // `ladon run --adapter process` takes Maelstrom workload names and
    // `--bin`: it has its own flags (see `run_process`).
    if let Some(args) = run_process::wants_process_adapter(std::env::args().collect()) {
        return run_process::run(*run_process::ProcessCli::parse_from(args).args);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Adapters(a) => adapters::run(a),
        Command::Run(a) => run::main(a),
        Command::Replay(a) => replay::main(a),
        Command::Explore(a) => explore::main(a),
        Command::Shrink(a) => shrink::main(a),
        Command::Check(args) => check::run(args).map(ExitCode::from),
        Command::GenHistory(args) => gen_history::run(args).map(ExitCode::from),
        Command::Suite(a) => suite::main(a).map(ExitCode::from),
        Command::Serve(a) => serve::main(a).map(ExitCode::from),
        Command::Report(a) => report::main(a).map(ExitCode::from),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ladon: {e:#}");
            ExitCode::from(2)
        }
    }
}
