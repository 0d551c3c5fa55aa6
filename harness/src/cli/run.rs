//! `ladon run`: one test, stored under `results/`.

use std::process::ExitCode;

use anyhow::Context;

use crate::live::process_run::ProcessSpec;
use crate::options::{AdapterKind, RunOptions};
use crate::store::{self, StoredRun};

pub use crate::options::RunArgs;

/// The ids of the `ladon run` arguments given on the command line (not
/// defaulted), from clap's matches of the `run` subcommand.
pub fn given_ids(m: &clap::ArgMatches) -> std::collections::BTreeSet<String> {
    run_command()
        .get_arguments()
        .map(|a| a.get_id().as_str().to_string())
        .filter(|id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .collect()
}

/// `ladon run` as clap knows it.
pub fn run_command() -> clap::Command {
    use clap::Args;
    RunArgs::augment_args(clap::Command::new("run"))
}

/// Refuses an option given for an adapter it does not apply to (by its
/// help heading), naming the option; one line.
pub fn refuse_foreign_options(
    adapter: AdapterKind,
    given: &std::collections::BTreeSet<String>,
) -> anyhow::Result<()> {
    for arg in run_command().get_arguments() {
        if !given.contains(arg.get_id().as_str()) {
            continue;
        }
        let heading = arg.get_help_heading();
        let Some(applies) = crate::options::heading::adapters(heading) else {
            continue;
        };
        if !crate::options::heading::applies(heading, adapter) {
            let names: Vec<&str> = applies.iter().map(|a| a.as_str()).collect();
            anyhow::bail!(
                "--{} does not apply to --adapter {adapter} (only to --adapter {})",
                arg.get_long().unwrap_or(arg.get_id().as_str()),
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// The `ladon run` arguments `--adapter process` reads.
pub fn process_arguments() -> Vec<clap::Arg> {
    use crate::options::{heading, AdapterKind};
    run_command()
        .get_arguments()
        .filter(|a| {
            heading::adapters(a.get_help_heading())
                .is_none_or(|k| k.contains(&AdapterKind::Process))
        })
        .filter(|a| !matches!(a.get_id().as_str(), "adapter" | "help"))
        .cloned()
        .collect()
}

/// The defaults of `--adapter process` where they differ from a simulated
/// run's (argument id, value): real processes run in wall-clock time and
/// have latency of their own, and the clock fault needs libfaketime.
pub const PROCESS_DEFAULTS: &[(&str, &str)] = &[
    ("concurrency", "3"),
    ("time_limit", "10s"),
    ("nemesis", "none"),
    ("nemesis_interval", "2s"),
    ("txn_size", "3"),
    ("latency", "constant:0ms"),
    ("topology", "grid"),
];

/// Resolves `ladon run --adapter process`: process defaults for the
/// options not `given`, seed drawn if absent, test name and guarantees.
pub fn process_spec(
    args: &RunArgs,
    given: &std::collections::BTreeSet<String>,
) -> anyhow::Result<ProcessSpec> {
    let mut o = args.options.clone();
    crate::options::apply_defaults(&mut o, PROCESS_DEFAULTS, given, "process")?;
    anyhow::ensure!(
        given.contains("workload"),
        "--adapter process needs --workload NAME (one of {})",
        ladon_adapters::process::Workload::ALL
            .map(|w| w.as_str())
            .join(", ")
    );
    let workload = o.workload.maelstrom().map_err(anyhow::Error::msg)?;
    let bin = args
        .process
        .bin
        .clone()
        .context("--adapter process needs --bin PATH (the node program)")?;
    let bin_name = bin
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "node".into());
    let seed = o.seed.unwrap_or_else(random_seed);
    let test = o
        .test
        .clone()
        .unwrap_or_else(|| format!("{workload}-{bin_name}"));
    o.seed = Some(seed);
    o.test = Some(test.clone());
    Ok(ProcessSpec {
        options: o.clone(),
        flags: args.process.clone(),
        test,
        guarantees: o
            .guarantees
            .clone()
            .unwrap_or_else(|| workload.guarantees()),
        bin,
        bin_args: args.process.bin_args.clone(),
        workload,
        nodes: o.nodes,
        concurrency: o.concurrency,
        rate: o.rate,
        time_limit: o.time_limit,
        seed,
        nemesis: o.nemesis.clone(),
        nemesis_interval: o.nemesis_interval,
        net: o.net.clone(),
        faketime_library: args.process.faketime_library.clone(),
        clock_skew: o.clock_skew,
        topology: o.adapter_options.topology.broadcast()?,
        op_timeout: o.op_timeout,
        init_timeout: args.process.init_timeout,
        converge_timeout: o.converge_timeout,
        txn_size: o.txn_size,
        max_writes_per_key: o.max_writes_per_key.into(),
        store: o.store.clone(),
        junit: args.junit.clone(),
        hosts: match &args.process.hosts {
            Some(path) => Some(crate::hosts::load(path).map_err(anyhow::Error::msg)?),
            None => None,
        },
    })
}

/// Resolves options before anything expensive: seed drawn if absent, swarm
/// applied, values validated.
pub fn resolve(o: RunOptions) -> anyhow::Result<RunOptions> {
    let adapter = crate::adapters::find(o.adapter);
    resolve_with(&adapter, o)
}

/// [`resolve`] for a run of `adapter` (the one `o.adapter` names, or one
/// a program holds: `ladon::Test`).
pub fn resolve_with(
    adapter: &dyn crate::adapters::DynAdapter,
    mut o: RunOptions,
) -> anyhow::Result<RunOptions> {
    let seed = o.seed.unwrap_or_else(random_seed);
    o.seed = Some(seed);
    if o.swarm {
        o.apply_swarm(seed);
    }
    o.validate().map_err(anyhow::Error::msg)?;
    // Only `ladon run` itself drives live adapters (see `live::process_run`).
    anyhow::ensure!(
        adapter.mode() == crate::adapters::Mode::Simulation,
        "{}",
        crate::adapters::LIVE_ONLY
    );
    o.workload.sim().map_err(anyhow::Error::msg)?;
    store::resolve_guarantees_with(adapter, &o)?;
    Ok(o)
}

pub use crate::options::random_seed;

/// The reproduce command for resolved options `o`: the user's flags, with
/// `--adapter` and `--workload` spelled out when they were defaults (so the
/// command survives a change of defaults), then `--seed S`.
pub fn reproduce_for(o: &RunOptions, args: &[String], skip: &[&str]) -> String {
    let given = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let mut full = Vec::new();
    if !given("--adapter") {
        full.extend(["--adapter".to_string(), o.adapter.to_string()]);
    }
    if !given("--workload") {
        full.extend(["--workload".to_string(), o.workload.to_string()]);
    }
    full.extend(args.iter().cloned());
    reproduce_command(&full, o.seed.unwrap_or(0), skip)
}

/// The command that repeats a run: the user's flags without `--seed` (and
/// without the listed explore-only flags), then `--seed S`.
pub fn reproduce_command(args: &[String], seed: u64, skip: &[&str]) -> String {
    let mut out = vec![store::program().to_string(), "run".to_string()];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let flag = a.split('=').next().unwrap_or(a);
        if flag == "--seed" || skip.contains(&flag) {
            i += if a.contains('=') { 1 } else { 2 };
            continue;
        }
        out.push(shell_quote(a));
        i += 1;
    }
    out.push("--seed".into());
    out.push(seed.to_string());
    out.join(" ")
}

/// A `ladon run` command for options `o` built from the options alone (no
/// user flags to start from, as for a shrunk run): `--adapter` and
/// `--workload`, every option that differs from its default, the schedule
/// file if `o` has a schedule, then `--seed S`.
pub fn command_from_options(o: &RunOptions, schedule_file: Option<&std::path::Path>) -> String {
    let cur = serde_json::to_value(o).unwrap_or_default();
    let def = serde_json::to_value(RunOptions::default()).unwrap_or_default();
    let mut out: Vec<String> = [
        store::program(),
        "run",
        "--adapter",
        o.adapter.as_str(),
        "--workload",
    ]
    .iter()
    .map(|s| shell_quote(s))
    .collect();
    out.push(o.workload.to_string());
    let skip = ["adapter", "workload", "seed", "nemesis_schedule"];
    for (k, v) in cur.as_object().into_iter().flatten() {
        if skip.contains(&k.as_str()) || def.get(k) == Some(v) {
            continue;
        }
        let flag = format!("--{}", k.replace('_', "-"));
        let value = match v {
            serde_json::Value::Null => continue,
            // A plain switch (`--swarm`): no value.
            serde_json::Value::Bool(true) if def.get(k).is_some_and(|d| d.is_boolean()) => {
                out.push(flag);
                continue;
            }
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(flag);
        out.push(shell_quote(&value));
    }
    if let (Some(_), Some(path)) = (&o.nemesis_schedule, schedule_file) {
        out.push("--nemesis-schedule".into());
        out.push(shell_quote(&path.display().to_string()));
    }
    out.push("--seed".into());
    out.push(o.seed.unwrap_or(0).to_string());
    out.join(" ")
}

pub(crate) use crate::store::shell_quote;

/// The flags after the subcommand name.
pub fn user_args(subcommand: &str) -> Vec<String> {
    let all: Vec<String> = std::env::args().collect();
    match all.iter().position(|a| a == subcommand) {
        Some(p) => all[p + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Prints the options that matter before a run (durations for people, in
/// the reports' one format; `run.json` keeps the flags' own spelling).
pub fn print_header(o: &RunOptions) {
    use ladon_checker::explain::duration;
    eprintln!(
        "ladon run: test {} adapter {} workload {} nodes {} seed {}",
        o.test_name(),
        o.adapter,
        o.workload,
        o.nodes,
        o.seed.unwrap_or(0)
    );
    eprintln!(
        "  nemesis {} every ~{} ({} partitions), time limit {}, rate {}/s, {} {} clients, latency {}{}",
        o.nemesis,
        duration(o.nemesis_interval.0),
        serde_json::to_value(o.net.partition_mode).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        duration(o.time_limit.0),
        o.rate,
        o.concurrency,
        serde_json::to_value(o.clients).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        o.net.latency.describe(),
        if o.swarm { ", swarm" } else { "" }
    );
}

/// Runs with a progress bar on a terminal, plain lines otherwise.
pub fn execute_with_progress(o: &RunOptions, reproduce: String) -> anyhow::Result<StoredRun> {
    let progress = crate::listeners::Progress::new(o.time_limit.ns(), "virtual");
    store::execute(o, reproduce, true, Some(progress))
}

pub use crate::listeners::tenths_passed;

/// `ladon run`; `given` holds the ids of the options on the command line
/// (see [`given_ids`]).
pub fn main(args: RunArgs, given: &std::collections::BTreeSet<String>) -> anyhow::Result<ExitCode> {
    refuse_foreign_options(args.options.adapter, given)?;
    if args.options.adapter == AdapterKind::Process {
        let spec = process_spec(&args, given)?;
        return Ok(crate::live::process_run::run(spec));
    }
    if matches!(
        args.options.adapter,
        AdapterKind::PostgresPglogical | AdapterKind::MariaDb | AdapterKind::CouchDb
    ) {
        return crate::db_run::main(args, given);
    }
    let o = resolve(args.options).context("invalid options")?;
    let reproduce = reproduce_for(&o, &user_args("run"), &["--junit"]);
    print_header(&o);
    crate::interrupt::install().context("installing the SIGINT/SIGTERM handlers")?;
    let run = execute_with_progress(&o, reproduce)?;
    store::report_result(&run, args.junit.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduce_replaces_the_seed_and_drops_explore_flags() {
        let args: Vec<String> = [
            "--nodes",
            "5",
            "--seed",
            "9",
            "--seeds=100",
            "--jobs",
            "2",
            "--bug",
            "no-anti-entropy",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            reproduce_command(&args, 42, &["--seeds", "--jobs"]),
            "ladon run --nodes 5 --bug no-anti-entropy --seed 42"
        );
    }

    #[test]
    fn progress_prints_every_tenth_once_even_when_called_rarely() {
        let mut last = 0;
        let mut printed = Vec::new();
        for now in [50, 250, 260, 700, 1000, 1000] {
            printed.extend(tenths_passed(&mut last, now, 1000));
        }
        assert_eq!(printed, (1..=10).collect::<Vec<u64>>());
    }

    #[test]
    fn simulated_commands_refuse_the_live_adapter_before_running() {
        let o = RunOptions {
            adapter: AdapterKind::Process,
            ..RunOptions::default()
        };
        let err = resolve(o).unwrap_err().to_string();
        assert_eq!(err, crate::adapters::LIVE_ONLY);
    }

    #[test]
    fn a_command_built_from_options_parses_back_to_the_same_options() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            o: RunOptions,
        }
        let mut o = RunOptions {
            seed: Some(7),
            nodes: 2,
            max_ops: Some(9),
            time_limit: crate::options::Dur(1_500_000_000),
            rate: 12.5,
            swarm: true,
            test: Some("my test".into()),
            ..RunOptions::default()
        };
        o.net.loss = 0.05;
        o.net.latency = "constant:0ms".parse().unwrap();
        o.adapter_options.bug = Some(ladon_adapters::reference::Bug::NoAntiEntropy);
        o.adapter_options.causal_delivery = Some(false);
        let cmd = command_from_options(&o, None);
        assert_eq!(
            cmd,
            "ladon run --adapter reference --workload list-append \
             --bug no-anti-entropy --causal-delivery false --latency constant:0ms --loss 0.05 \
             --max-ops 9 --nodes 2 --rate 12.5 --swarm --test 'my test' --time-limit 1500ms --seed 7"
        );
        let words: Vec<String> = cmd
            .split(' ')
            .map(|w| w.trim_matches('\'').to_string())
            .collect();
        // `'my test'` is one shell word: rejoin it for clap.
        let mut args: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            if words[i] == "my" {
                args.push("my test".into());
                i += 2;
            } else {
                args.push(words[i].clone());
                i += 1;
            }
        }
        let back =
            P::parse_from(std::iter::once("ladon".to_string()).chain(args.into_iter().skip(2))).o;
        assert_eq!(back, o);
    }

    #[test]
    fn reproduce_spells_out_default_adapter_and_workload() {
        let o = RunOptions {
            seed: Some(5),
            ..RunOptions::default()
        };
        let args = vec!["--nodes".to_string(), "4".to_string()];
        assert_eq!(
            reproduce_for(&o, &args, &[]),
            format!(
                "ladon run --adapter {} --workload list-append --nodes 4 --seed 5",
                o.adapter
            )
        );
        let args: Vec<String> = ["--adapter=toy", "--workload", "set"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            reproduce_for(&o, &args, &[]),
            "ladon run --adapter=toy --workload set --seed 5"
        );
    }
}

#[cfg(test)]
mod process_tests {
    use super::*;
    use crate::live::process_run::{live_options, reproduce};
    use crate::options::{Dur, NetFlags};
    use std::path::PathBuf;

    fn parse_args(cmd: &[&str]) -> Result<ProcessSpec, String> {
        use clap::{CommandFactory, FromArgMatches};
        let m = crate::cli::Cli::command()
            .try_get_matches_from(cmd)
            .map_err(|e| e.to_string())?;
        let cli = crate::cli::Cli::from_arg_matches(&m).map_err(|e| e.to_string())?;
        let crate::cli::Command::Run(args) = cli.command else {
            return Err("not a run".into());
        };
        let given = given_ids(m.subcommand_matches("run").unwrap());
        refuse_foreign_options(args.options.adapter, &given).map_err(|e| e.to_string())?;
        process_spec(&args, &given).map_err(|e| e.to_string())
    }

    fn parse(cmd: &[&str]) -> ProcessSpec {
        parse_args(cmd).unwrap()
    }

    #[test]
    fn network_flags_are_the_simulators_with_one_live_default() {
        let live = parse(&[
            "ladon",
            "run",
            "--adapter",
            "process",
            "--bin",
            "n.py",
            "--workload",
            "g-set",
        ]);
        let sim = crate::options::RunOptions::default();
        assert_eq!(live.net.latency, "constant:0ms".parse().unwrap());
        assert_eq!(
            sim.net.latency,
            crate::options::SIM_LATENCY.parse().unwrap()
        );
        let same = NetFlags {
            latency: sim.net.latency,
            ..live.net.clone()
        };
        assert_eq!(same, sim.net, "every other network default is shared");
        assert_eq!(live.clock_skew, sim.clock_skew);
        assert_eq!(live.converge_timeout, Dur::secs(10));
        assert_eq!(sim.converge_timeout, Dur::secs(10));
        let err = parse_args(&[
            "ladon",
            "run",
            "--adapter=process",
            "--bin",
            "n",
            "--workload",
            "g-set",
            "--latency",
            "fast",
        ])
        .unwrap_err();
        assert!(err.contains("--latency"), "{err}");
    }

    /// Splits a command line the way a POSIX shell does.
    fn shell_words(cmd: &str) -> Vec<String> {
        shlex::split(cmd).expect("a well-quoted command")
    }

    /// What a run with `args` would do: its live options (network included)
    /// and its checker guarantees.
    fn resolved(args: &ProcessSpec) -> (serde_json::Value, crate::net::NetConfig) {
        let o = live_options(args, PathBuf::from("run"));
        (serde_json::to_value(&o).unwrap(), o.net)
    }

    #[test]
    fn the_reproduce_command_rebuilds_every_resolved_option() {
        for cmd in [
            vec![
                "ladon",
                "run",
                "--adapter",
                "process",
                "--bin",
                "examples/nodes/counter.py",
                "--workload",
                "pn-counter",
            ],
            vec![
                "ladon",
                "run",
                "--adapter",
                "process",
                "--bin",
                "/opt/my nodes/it's.py",
                "--bin-arg",
                "--fast",
                "--bin-arg",
                "x y",
                "--workload",
                "broadcast",
                "--nodes",
                "5",
                "--concurrency",
                "7",
                "--rate",
                "12.5",
                "--time-limit",
                "1.5s",
                "--nemesis",
                "pause,partition,clock",
                "--nemesis-interval",
                "700ms",
                "--partition-mode",
                "hold",
                "--partition-shapes",
                "groups:0,1/2,3,4,one-way",
                "--latency",
                "exponential:250us",
                "--loss",
                "0.1",
                "--duplicate",
                "0.2",
                "--reorder",
                "0.05",
                "--nemesis-loss",
                "0.5",
                "--nemesis-dup",
                "0.4",
                "--faketime-library",
                "/usr/lib/faketime/libfaketime.so.1",
                "--max-clock-skew",
                "300ms",
                "--topology",
                "tree3",
                "--op-timeout",
                "2s",
                "--init-timeout",
                "20s",
                "--converge-timeout",
                "8s",
                "--txn-size",
                "4",
                "--max-writes-per-key",
                "9",
                "--store",
                "/tmp/res",
                "--test",
                "mine",
                "--guarantees",
                "convergence,causal",
                "--seed",
                "42",
            ],
        ] {
            let mut cmd = cmd.clone();
            if !cmd.contains(&"--seed") {
                cmd.extend(["--seed", "42"]);
            }
            let args = parse(&cmd);
            let line = reproduce(&args);
            let words = shell_words(&line);
            let again = parse(&words.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(resolved(&again), resolved(&args), "{line}");
            assert_eq!(again.guarantees, args.guarantees, "{line}");
            assert_eq!(again.test, args.test, "{line}");
            assert_eq!(again.store, args.store, "{line}");
            // Every flag `ladon run --adapter process` reads appears in the command.
            for arg in process_arguments() {
                if let Some(long) = arg.get_long() {
                    if long == "faketime-library" && args.faketime_library.is_none() {
                        continue;
                    }
                    if long == "hosts" && args.hosts.is_none() {
                        continue;
                    }
                    if long == "bin-arg" && args.bin_args.is_empty() {
                        continue;
                    }
                    // Where CI wants JUnit is not part of the run.
                    if long == "junit" {
                        continue;
                    }
                    assert!(
                        words.contains(&format!("--{long}")),
                        "--{long} missing from {line}"
                    );
                }
            }
        }
        let args = parse(&[
            "ladon",
            "run",
            "--adapter",
            "process",
            "--bin",
            "n.py",
            "--workload",
            "g-set",
            "--seed",
            "9",
        ]);
        assert_eq!(
            reproduce(&args),
            "ladon run --adapter process --bin n.py --workload g-set --nodes 3 --concurrency 3 \
             --rate 100 --time-limit 10s --nemesis none --nemesis-interval 2s --partition-mode drop \
             --partition-shapes one,halves,majorities-ring,bridge,ring-cut,hub,one-way \
             --latency constant:0ms --loss 0 --duplicate 0 --reorder 0 \
             --nemesis-loss 0.3 --nemesis-dup 0.3 --clock-skew 5s --topology grid --op-timeout 1s \
             --init-timeout 10s --converge-timeout 10s --txn-size 3 --max-writes-per-key 32 \
             --store results --test g-set-n --guarantees convergence,no-lost-writes --seed 9"
        );
    }
}
