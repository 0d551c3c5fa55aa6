//! The `ladon` command line: one module per subcommand.

pub mod adapters;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod explore;
pub mod gen_history;
pub mod merge;
pub mod replay;
pub mod report;
pub mod run;
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
    /// history checked the same way.
    ///
    /// Options of some adapters only are listed under a heading naming
    /// them; given with another adapter they are refused.
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
    /// Combine the shards of an `explore --shard` or `suite --shard` run:
    /// one summary, one JUnit file, one exit code.
    Merge(merge::Args),
    /// Serve the results directory on loopback: runs, verdicts, reports.
    Serve(serve::Args),
    /// (Re)render report.html for a run directory.
    Report(report::Args),
}

/// Exit codes: 0 valid, 1 invalid, 2 unknown or error.
pub fn main() -> ExitCode {
    // Warnings (and errors) of every module reach the user on stderr;
    // LADON_LOG=info (or any tracing filter) shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LADON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Adapters(a) => adapters::run(a),
        Command::Run(a) => {
            let given = matches
                .subcommand_matches("run")
                .map(run::given_ids)
                .unwrap_or_default();
            run::main(a, &given)
        }
        Command::Replay(a) => replay::main(a),
        Command::Explore(a) => explore::main(a),
        Command::Shrink(a) => shrink::main(a),
        Command::Check(args) => check::run(args).map(ExitCode::from),
        Command::GenHistory(args) => gen_history::run(args).map(ExitCode::from),
        Command::Suite(a) => suite::main(a).map(ExitCode::from),
        Command::Merge(a) => merge::main(a).map(ExitCode::from),
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
