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

/// The log filter of `LADON_LOG`: a level (`info`) or `target=level`
/// directives, comma-separated; unset or unreadable: warnings and errors.
pub fn log_filter(spec: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    spec.and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::WARN))
}

/// Exit codes: 0 valid, 1 invalid, 2 unknown or error.
pub fn main() -> ExitCode {
    main_with(Vec::new())
}

/// One adapter a program brings to [`main_with`]: its `--adapter` name, a
/// line for `ladon adapters`, and the adapter.
pub type NamedAdapter = (
    String,
    String,
    std::sync::Arc<dyn crate::adapters::DynAdapter>,
);

/// The whole `ladon` CLI, with `adapters` registered besides Ladon's own
/// (see `adapters::register`): `run`, `explore`, `replay`, `shrink`,
/// `suite` and `adapters` know them by name. With adapters given,
/// `--adapter` defaults to the first, and reproduce commands start with
/// this program's name instead of `ladon`.
pub fn main_with(adapters: Vec<NamedAdapter>) -> ExitCode {
    let mut first = None;
    for (name, about, adapter) in adapters {
        match crate::adapters::register(&name, &about, adapter) {
            Ok(kind) => {
                first.get_or_insert(kind);
            }
            Err(e) => {
                eprintln!("ladon: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let mut command = {
        use clap::CommandFactory;
        Cli::command()
    };
    if let Some(kind) = first {
        let program = std::env::args_os()
            .next()
            .as_deref()
            .map(std::path::Path::new)
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| kind.as_str().to_string());
        crate::store::set_program(&program);
        // Once per process: clap keeps a command's name as `&'static str`.
        let name: &'static str = Box::leak(program.into_boxed_str());
        command = with_default_adapter(command.name(name), kind.as_str());
    }
    run_command_line(command)
}

/// `command` with `--adapter` defaulting to `name` in every subcommand that has it.
fn with_default_adapter(command: clap::Command, name: &'static str) -> clap::Command {
    let subs: Vec<String> = command
        .get_subcommands()
        .filter(|c| c.get_arguments().any(|a| a.get_id() == "adapter"))
        .map(|c| c.get_name().to_string())
        .collect();
    subs.into_iter().fold(command, |cmd, sub| {
        cmd.mut_subcommand(sub, |c| c.mut_arg("adapter", |a| a.default_value(name)))
    })
}

/// Parses the command line with `command` and runs the subcommand.
fn run_command_line(command: clap::Command) -> ExitCode {
    // Warnings (and errors) of every module reach the user on stderr;
    // LADON_LOG=info (or `target=level,...` directives) shows more.
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .without_time()
            .with_target(false)
            .finish()
            .with(log_filter(std::env::var("LADON_LOG").ok().as_deref()))
            .try_init();
    }
    use clap::FromArgMatches;
    let matches = command.get_matches();
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

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn ladon_log_sets_the_level_and_per_target_levels() {
        let default = log_filter(None);
        assert!(default.would_enable("ladon_harness::runner", &Level::WARN));
        assert!(!default.would_enable("ladon_harness::runner", &Level::INFO));
        let info = log_filter(Some("info"));
        assert!(info.would_enable("ladon_adapters", &Level::INFO));
        assert!(!info.would_enable("ladon_adapters", &Level::DEBUG));
        let one = log_filter(Some("warn,ladon_harness::live=debug"));
        assert!(one.would_enable("ladon_harness::live::process_run", &Level::DEBUG));
        assert!(!one.would_enable("ladon_harness::runner", &Level::INFO));
        // Unreadable: warnings, as when unset.
        let bad = log_filter(Some("ladon=[{"));
        assert!(bad.would_enable("x", &Level::WARN));
        assert!(!bad.would_enable("x", &Level::INFO));
    }
}
