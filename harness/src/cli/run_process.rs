//! `ladon run --adapter process`: run an unmodified Maelstrom-protocol node
//! binary live, with Ladon's faults, and check the history.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use ladon_adapters::process::Workload;
use ladon_checker::report::Guarantee;
use ladon_checker::CheckOptions;
use serde_json::json;

use crate::live::topology::Topology;
use crate::live::{self, LiveOptions};
use crate::nemesis::FaultList;
use crate::options::{Dur, NetFlags};

/// `ladon run --adapter process ...` parsed on its own. Real processes
/// already have real latency, and partition shapes beyond `one` and
/// `halves` are rarely informative on a few processes: those two network
/// defaults differ from simulated runs'.
#[derive(Debug, clap::Parser)]
#[command(name = "ladon run")]
#[command(mut_arg("latency", |a| a.default_value(LIVE_LATENCY)))]
#[command(mut_arg("partition_shapes", |a| a.default_value(LIVE_SHAPES)))]
pub struct ProcessCli {
    #[command(flatten)]
    pub args: Box<ProcessRunArgs>,
}

/// `--latency` default of live runs.
pub const LIVE_LATENCY: &str = "constant:0ms";
/// `--partition-shapes` default of live runs.
pub const LIVE_SHAPES: &str = "one,halves";

/// If the command line is `ladon run ... --adapter process ...`, the
/// arguments to parse as [`ProcessCli`] (without the `run` word).
pub fn wants_process_adapter(args: Vec<String>) -> Option<Vec<String>> {
    let run = args.iter().position(|a| a == "run")?;
    if run != 1 {
        return None;
    }
    let process = args
        .windows(2)
        .any(|w| w[0] == "--adapter" && w[1] == "process")
        || args.iter().any(|a| a == "--adapter=process");
    if !process {
        return None;
    }
    let mut out = vec![format!("{} run", args[0])];
    out.extend(args[2..].iter().cloned());
    Some(out)
}

#[derive(Debug, Clone, Args)]
pub struct ProcessRunArgs {
    /// Which adapter runs the nodes (`process`: a Maelstrom-protocol binary).
    #[arg(long, default_value = "process")]
    pub adapter: String,
    /// The node program; one process per node.
    #[arg(long)]
    pub bin: PathBuf,
    /// An argument for the node program (repeatable).
    #[arg(long = "bin-arg", allow_hyphen_values = true)]
    pub bin_args: Vec<String>,
    /// Maelstrom workload: broadcast, g-set, g-counter, pn-counter, txn-list-append, txn-rw-register, lin-kv.
    #[arg(long)]
    pub workload: Workload,
    /// Number of nodes (one process each).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Logical clients, each sticky to one node.
    #[arg(long, default_value_t = 3)]
    pub concurrency: usize,
    /// Client operations per second, all clients together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of faulty phase.
    #[arg(long, default_value = "10s")]
    pub time_limit: Dur,
    /// Seed of the client, network and nemesis choices (drawn from the time if absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Faults: comma-separated partition, clock, crash, pause, loss, dup, clog, or none.
    #[arg(long, default_value = "none")]
    pub nemesis: FaultList,
    /// Time between nemesis steps.
    #[arg(long, default_value = "2s")]
    pub nemesis_interval: Dur,
    /// The network's flags, shared with simulated runs (two defaults differ:
    /// see [`ProcessCli`]).
    #[command(flatten)]
    pub net: NetFlags,
    /// libfaketime's `libfaketime.so.1` for the clock nemesis (default: searched for).
    #[arg(long)]
    pub faketime_library: Option<PathBuf>,
    /// Largest clock offset the clock nemesis applies.
    #[arg(long, default_value = "2s")]
    pub max_clock_skew: Dur,
    /// Broadcast's topology: grid, line, total, tree2, tree3, tree4.
    #[arg(long, default_value = "grid")]
    pub topology: Topology,
    /// A client operation without a reply after this long is `info`.
    #[arg(long, default_value = "1s")]
    pub op_timeout: Dur,
    /// How long a (re)started node may take to answer `init`.
    #[arg(long, default_value = "10s")]
    pub init_timeout: Dur,
    /// Final reads repeat until every node returns the same state, or this
    /// long after the heal (Maelstrom waits 10 s too).
    #[arg(long, default_value = "10s")]
    pub converge_timeout: Dur,
    /// Up to this many micro-operations per transaction (txn-* workloads).
    #[arg(long, default_value_t = 3)]
    pub txn_size: usize,
    /// Keys rotate after this many writes.
    #[arg(long, default_value_t = 32)]
    pub max_writes_per_key: u64,
    /// Where results go.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Test name (results/<test>/...); defaults to the workload and binary name.
    #[arg(long)]
    pub test: Option<String>,
    /// What the node promises (comma-separated, or none); default convergence,no-lost-writes
    /// (plus linearizable for lin-kv).
    #[arg(long, value_parser = Guarantee::parse_list)]
    pub guarantees: Option<std::vec::Vec<Guarantee>>,
    /// Write JUnit XML here: one test case per anomaly class.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The command that reruns this configuration: every option as resolved
/// (defaults included), the seed and the guarantees checked.
fn reproduce(args: &ProcessRunArgs, seed: u64, test: &str, guarantees: &[Guarantee]) -> String {
    let mut words: Vec<(&str, String)> = vec![
        ("--adapter", args.adapter.clone()),
        ("--bin", args.bin.display().to_string()),
    ];
    for a in &args.bin_args {
        words.push(("--bin-arg", a.clone()));
    }
    words.extend([
        ("--workload", args.workload.to_string()),
        ("--nodes", args.nodes.to_string()),
        ("--concurrency", args.concurrency.to_string()),
        ("--rate", args.rate.to_string()),
        ("--time-limit", args.time_limit.to_string()),
        ("--nemesis", args.nemesis.to_string()),
        ("--nemesis-interval", args.nemesis_interval.to_string()),
    ]);
    words.extend(args.net.flags());
    if let Some(lib) = &args.faketime_library {
        words.push(("--faketime-library", lib.display().to_string()));
    }
    words.extend([
        ("--max-clock-skew", args.max_clock_skew.to_string()),
        ("--topology", args.topology.as_str()),
        ("--op-timeout", args.op_timeout.to_string()),
        ("--init-timeout", args.init_timeout.to_string()),
        ("--converge-timeout", args.converge_timeout.to_string()),
        ("--txn-size", args.txn_size.to_string()),
        ("--max-writes-per-key", args.max_writes_per_key.to_string()),
        ("--store", args.store.display().to_string()),
        ("--test", test.to_string()),
        ("--guarantees", list(guarantees)),
        ("--seed", seed.to_string()),
    ]);
    let mut cmd = "ladon run".to_string();
    for (flag, value) in words {
        cmd.push(' ');
        cmd.push_str(flag);
        cmd.push(' ');
        cmd.push_str(&crate::cli::run::shell_quote(&value));
    }
    cmd
}

/// The live runner's options for `args`, writing into `run_dir`.
fn live_options(args: &ProcessRunArgs, seed: u64, run_dir: PathBuf) -> LiveOptions {
    let mut opts = LiveOptions::new(args.bin.clone(), args.workload, run_dir);
    opts.bin_args = args.bin_args.clone();
    opts.nodes = args.nodes;
    opts.concurrency = args.concurrency;
    opts.rate = args.rate;
    let d = |d: Dur| Duration::from_nanos(d.ns());
    opts.time_limit = d(args.time_limit);
    opts.op_timeout = d(args.op_timeout);
    opts.init_timeout = d(args.init_timeout);
    opts.converge_timeout = d(args.converge_timeout);
    opts.seed = seed;
    opts.net = args.net.config();
    opts.fault_loss = args.net.nemesis_loss;
    opts.fault_duplicate = args.net.nemesis_dup;
    opts.faketime_library = args.faketime_library.clone();
    opts.nemesis = args.nemesis.clone();
    opts.nemesis_interval = d(args.nemesis_interval);
    opts.partition_shapes = args.net.partition_shapes.0.clone();
    opts.max_clock_skew_ns = args.max_clock_skew.ns();
    opts.topology = args.topology;
    opts.txn_size = args.txn_size;
    opts.max_writes_per_key = args.max_writes_per_key;
    opts
}

fn link_latest(store: &Path, test_dir: &Path, run_dir: &Path) {
    for (dir, link) in [
        (test_dir, test_dir.join("latest")),
        (store, store.join("latest")),
    ] {
        let target = run_dir.strip_prefix(dir).unwrap_or(run_dir);
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(target, &link);
    }
}

/// When the final reads did not converge, says in the explanation of
/// every `divergence` and `lost-write` example whether states were still
/// changing when the window ended (and when they last changed), naming
/// `--converge-timeout`; the report also carries the final phase's figures.
fn annotate_window(
    report: &mut ladon_checker::report::Report,
    finals: &live::final_phase::FinalReads,
) {
    use ladon_checker::report::Anomaly;
    report.extra.insert(
        "final_phase".into(),
        json!({
            "rounds": finals.rounds,
            "window_ns": finals.window_ns,
            "time_to_converge_ns": finals.converged_ns.map(|t| t.saturating_sub(finals.started_ns)),
            "last_change_ns": finals.last_change.as_ref().map(|(t, _)| t.saturating_sub(finals.started_ns)),
            "last_change_nodes": finals.last_change.as_ref().map(|(_, n)| n.clone()),
        }),
    );
    let Some(note) = finals.window_note() else {
        return;
    };
    for (anomaly, finding) in report.anomalies.iter_mut() {
        if matches!(anomaly, Anomaly::Divergence | Anomaly::LostWrite) {
            for ex in &mut finding.examples {
                ex.explanation.push_str(&format!(" ({note})"));
            }
        }
    }
}

pub fn run(args: ProcessRunArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: ProcessRunArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.adapter == "process",
        "--adapter {:?}: this command runs only the `process` adapter",
        args.adapter
    );
    args.net
        .validate(args.nodes)
        .map_err(anyhow::Error::msg)
        .context("invalid options")?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let bin_name = args
        .bin
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "node".into());
    let test = args
        .test
        .clone()
        .unwrap_or_else(|| format!("{}-{bin_name}", args.workload));
    let test_dir = args.store.join(&test);
    let run_dir = crate::store::create_run_dir(&args.store, &test, seed)
        .with_context(|| format!("cannot create a run directory in {}", test_dir.display()))?;
    let guarantees = args
        .guarantees
        .clone()
        .unwrap_or_else(|| args.workload.guarantees());

    let opts = live_options(&args, seed, run_dir.clone());
    let reproduce = reproduce(&args, seed, &test, &guarantees);
    eprintln!(
        "ladon: live run of {} ({} nodes, workload {}, seed {seed}) into {}",
        args.bin.display(),
        args.nodes,
        args.workload,
        run_dir.display()
    );
    let run_json = json!({
        "test": test, "seed": seed, "mode": "live", "adapter": "process",
        "options": {"live": opts, "latency": args.net.latency.to_string(), "partition_mode": args.net.partition_mode,
            "store": args.store, "test": test},
        "reproduce": reproduce, "ladon_version": env!("CARGO_PKG_VERSION"), "git_revision": crate::store::git_revision(),
        "guarantees": guarantees,
    });
    std::fs::write(
        run_dir.join("run.json"),
        serde_json::to_string_pretty(&run_json)? + "\n",
    )?;
    link_latest(&args.store, &test_dir, &run_dir);

    // One run per process: a panic anywhere kills this run's nodes.
    ladon_adapters::process::child::install_panic_hook();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        // SIGTERM is handled as SIGINT (Ctrl-C): kill every node and its
        // descendants, reap them, keep the files whole.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let signal = tokio::select! {
            r = live::run(&opts) => return r,
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        ladon_adapters::process::child::kill_all();
        Err(anyhow::anyhow!(
            "interrupted by {signal}: every node was killed; the history so far is in {}",
            run_dir.join("history.jsonl").display()
        ))
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    let outcome = outcome?;
    let converged = match outcome.finals.time_to_converge_s() {
        Some(t) => format!(
            "converged {t:.3}s after the heal ({} rounds of final reads)",
            outcome.finals.rounds
        ),
        None => format!(
            "did not converge within --converge-timeout {} ({} rounds of final reads)",
            args.converge_timeout, outcome.finals.rounds
        ),
    };
    let drops: Vec<String> = outcome
        .router
        .drops
        .iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect();
    eprintln!(
        "ladon: {} events, {} node-to-node messages ({} dropped{}), {converged}",
        outcome.events.len(),
        outcome.router.sent,
        outcome.router.dropped,
        if drops.is_empty() {
            String::new()
        } else {
            format!(": {}", drops.join(", "))
        }
    );
    let check = CheckOptions {
        guarantees,
        messages_per_write: outcome.messages_per_write,
        ..CheckOptions::default()
    };
    // Until the checker lands its analyses, its entry point panics: say so plainly.
    let history = outcome.history.clone();
    let report = std::panic::catch_unwind(move || ladon_checker::check_path(&history, &check))
        .map_err(|_| {
            anyhow::anyhow!(
                "the checker is not available in this build; the history is complete in {}",
                outcome.history.display()
            )
        })?
        .with_context(|| format!("cannot check {}", outcome.history.display()))?;
    let mut report = report;
    annotate_window(&mut report, &outcome.finals);
    std::fs::write(
        run_dir.join("report.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    let verdict = report.verdict;
    // The same summary and "reproduce with:" as a simulated run.
    let head = format!(
        "events {}  node-to-node messages {} ({} dropped, per write {})\nfinal phase: {converged}\n",
        outcome.events.len(),
        outcome.router.sent,
        outcome.router.dropped,
        outcome
            .messages_per_write
            .map(|m| format!("{m:.2}"))
            .unwrap_or_else(|| "-".into()),
    );
    let mut summary = crate::store::run_summary(&test, seed, "live", &head, Some(&report), None);
    for (node, pauses) in &outcome.backpressure {
        summary.push_str(&format!(
            "backpressure: Ladon paused reading {node}'s stdout {pauses} time(s) \
             (over {} MiB of its messages awaited delivery; see nodes/{node}.log)\n",
            crate::live::budget::NODE_BUDGET >> 20
        ));
    }
    std::fs::write(run_dir.join("summary.txt"), &summary)?;
    if let Err(e) = crate::report::html::write_report(&run_dir) {
        eprintln!("warning: report.html not written: {e}");
    }
    if let Some(path) = &args.junit {
        crate::report::junit::write_for_report(path, &test, &report, Some(&reproduce))?;
    }
    eprintln!("stored in {}", run_dir.display());
    print!("{summary}");
    if verdict != ladon_checker::Verdict::Valid {
        eprintln!("reproduce with: {reproduce}");
    }
    Ok(ExitCode::from(verdict.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn network_flags_are_the_simulators_with_two_live_defaults() {
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
        assert_eq!(live.net.latency, LIVE_LATENCY.parse().unwrap());
        assert_eq!(live.net.partition_shapes, LIVE_SHAPES.parse().unwrap());
        assert_eq!(
            sim.net.latency,
            crate::options::SIM_LATENCY.parse().unwrap()
        );
        let same = NetFlags {
            latency: sim.net.latency,
            partition_shapes: sim.net.partition_shapes.clone(),
            ..live.net.clone()
        };
        assert_eq!(same, sim.net, "every other network default is shared");
        let err = ProcessCli::try_parse_from(
            wants_process_adapter(
                [
                    "ladon",
                    "run",
                    "--adapter=process",
                    "--bin",
                    "n",
                    "--workload",
                    "g-set",
                    "--latency",
                    "fast",
                ]
                .map(String::from)
                .to_vec(),
            )
            .unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--latency"), "{err}");
    }

    /// Splits a command line the way a POSIX shell does for what
    /// [`shell_quote`](crate::cli::run::shell_quote) produces (plain words, single-quoted words and `\\'`).
    fn shell_words(cmd: &str) -> Vec<String> {
        let (mut words, mut cur, mut quoted, mut in_word) =
            (Vec::new(), String::new(), false, false);
        let mut chars = cmd.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if !quoted => {
                    cur.extend(chars.next());
                    in_word = true;
                }
                '\'' => {
                    quoted = !quoted;
                    in_word = true;
                }
                ' ' if !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                    }
                    in_word = false;
                }
                c => {
                    cur.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(cur);
        }
        words
    }

    fn parse(cmd: &[&str]) -> ProcessRunArgs {
        let argv = wants_process_adapter(cmd.iter().map(|s| s.to_string()).collect())
            .expect("a process-adapter command line");
        *ProcessCli::try_parse_from(argv).unwrap().args
    }

    /// What a run with `args` would do: its live options (network included)
    /// and its checker guarantees.
    fn resolved(args: &ProcessRunArgs, seed: u64) -> (serde_json::Value, crate::net::NetConfig) {
        let o = live_options(args, seed, PathBuf::from("run"));
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
            let args = parse(&cmd);
            let guarantees = args
                .guarantees
                .clone()
                .unwrap_or_else(Guarantee::default_for_check);
            let test = args.test.clone().unwrap_or_else(|| "default-test".into());
            let line = reproduce(&args, 42, &test, &guarantees);
            let words = shell_words(&line);
            let again = parse(&words.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(
                resolved(&again, again.seed.unwrap()),
                resolved(&args, 42),
                "{line}"
            );
            assert_eq!(again.guarantees.as_deref(), Some(&guarantees[..]), "{line}");
            assert_eq!(again.test.as_deref(), Some(test.as_str()), "{line}");
            assert_eq!(again.store, args.store, "{line}");
            // Every flag `ladon run --adapter process` knows appears in the command.
            for arg in ProcessCli::command().get_arguments() {
                if let Some(long) = arg.get_long() {
                    if long == "faketime-library" && args.faketime_library.is_none() {
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
        ]);
        assert_eq!(
            reproduce(&args, 9, "g-set-n", &Guarantee::default_for_check()),
            "ladon run --adapter process --bin n.py --workload g-set --nodes 3 --concurrency 3 \
             --rate 100 --time-limit 10s --nemesis none --nemesis-interval 2s --partition-mode drop \
             --partition-shapes one,halves --latency constant:0ms --loss 0 --duplicate 0 --reorder 0 \
             --nemesis-loss 0.3 --nemesis-dup 0.3 --max-clock-skew 2s --topology grid --op-timeout 1s \
             --init-timeout 10s --converge-timeout 10s --txn-size 3 --max-writes-per-key 32 \
             --store results --test g-set-n --guarantees convergence,no-lost-writes --seed 9"
        );
    }
}
