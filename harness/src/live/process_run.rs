//! A live run of `--adapter process`: an unmodified Maelstrom-protocol
//! node binary, one process per node, with Ladon's faults; the history is
//! checked like a simulated run's. `ladon run` resolves its flags into a
//! [`ProcessSpec`] (see `cli::run`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use ladon_adapters::process::Workload;
use ladon_checker::report::Guarantee;

use crate::events::{EventBus, Listeners};
use crate::live::recorder::Recorder;
use crate::runner::RunOutcome;

use crate::live::topology::Topology;
use crate::live::{self, LiveOptions};
use crate::nemesis::FaultList;
use crate::options::{Dur, NetFlags};

/// A resolved `ladon run --adapter process`: every option typed, defaults
/// applied, seed, test name and guarantees chosen.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The node program; one process per node.
    pub bin: PathBuf,
    /// Arguments for the node program.
    pub bin_args: Vec<String>,
    pub workload: Workload,
    pub nodes: usize,
    pub concurrency: usize,
    pub rate: f64,
    pub time_limit: Dur,
    pub seed: u64,
    pub nemesis: FaultList,
    pub nemesis_interval: Dur,
    pub net: NetFlags,
    pub faketime_library: Option<PathBuf>,
    pub clock_skew: Dur,
    pub topology: Topology,
    pub op_timeout: Dur,
    pub init_timeout: Dur,
    pub converge_timeout: Dur,
    pub txn_size: usize,
    pub max_writes_per_key: u64,
    pub store: PathBuf,
    pub test: String,
    pub guarantees: Vec<Guarantee>,
    /// Where CI wants JUnit XML (not part of the run).
    pub junit: Option<PathBuf>,
    /// The resolved options as `run.json` keeps them (process defaults
    /// applied, seed set).
    pub options: crate::options::RunOptions,
    /// The process adapter's own flags, for `run.json`.
    pub flags: crate::options::ProcessFlags,
    /// `--hosts`: where the nodes run (read and validated; connected when
    /// the run starts).
    pub hosts: Option<crate::hosts::HostsFile>,
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
pub fn reproduce(args: &ProcessSpec) -> String {
    let (seed, test, guarantees) = (args.seed, args.test.as_str(), &args.guarantees[..]);
    let mut words: Vec<(&str, String)> = vec![
        ("--adapter", "process".to_string()),
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
    if let Some(h) = &args.hosts {
        words.push(("--hosts", h.path.display().to_string()));
    }
    words.extend([
        ("--clock-skew", args.clock_skew.to_string()),
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
        cmd.push_str(&crate::store::shell_quote(&value));
    }
    cmd
}

/// The live runner's options for `args`, writing into `run_dir`.
pub fn live_options(args: &ProcessSpec, run_dir: PathBuf) -> LiveOptions {
    let seed = args.seed;
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
    opts.max_clock_skew_ns = args.clock_skew.ns();
    opts.topology = args.topology;
    opts.txn_size = args.txn_size;
    opts.max_writes_per_key = args.max_writes_per_key;
    opts
}

pub fn annotate_window(
    report: &mut ladon_checker::report::Report,
    finals: &live::final_phase::FinalReads,
) {
    use crate::report::extras::{FinalPhase, HarnessExtra};
    use ladon_checker::report::Anomaly;
    HarnessExtra::FinalPhase(FinalPhase {
        rounds: finals.rounds,
        window_ns: finals.window_ns,
        time_to_converge_ns: finals
            .converged_ns
            .map(|t| t.saturating_sub(finals.started_ns)),
        last_change_ns: finals
            .last_change
            .as_ref()
            .map(|(t, _)| t.saturating_sub(finals.started_ns)),
        last_change_nodes: finals.last_change.as_ref().map(|(_, n)| n.clone()),
    })
    .set(report);
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

/// A live run of `--adapter process` behind the execution seam: the nodes
/// run under a tokio runtime of its own; SIGINT/SIGTERM kill them.
pub struct ProcessExecution {
    pub spec: ProcessSpec,
    /// `--hosts`: node `i` runs on `remote[i]` (empty: here).
    pub remote: Vec<ladon_adapters::process::child::RemoteNode>,
    /// What the live run alone knows, for the report and the summary.
    finals: Option<live::final_phase::FinalReads>,
    backpressure: Vec<(String, u64)>,
    drops: Vec<(String, u64)>,
}

impl ProcessExecution {
    pub fn new(spec: ProcessSpec) -> ProcessExecution {
        ProcessExecution {
            spec,
            remote: Vec::new(),
            finals: None,
            backpressure: Vec::new(),
            drops: Vec::new(),
        }
    }
}

impl crate::execution::Execution for ProcessExecution {
    fn mode(&self) -> crate::adapters::Mode {
        crate::adapters::Mode::Live
    }

    fn execute(&mut self, run_dir: &Path, events: &mut Listeners) -> anyhow::Result<RunOutcome> {
        let mut opts = live_options(&self.spec, run_dir.to_path_buf());
        opts.remote = self.remote.clone();
        // One run per process: a panic anywhere kills this run's nodes.
        ladon_adapters::process::child::install_panic_hook();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        // The clients, the nemesis and the router share the listeners.
        let bus = EventBus::new(std::mem::take(events));
        let rec = Recorder::new(
            bus.clone(),
            live::node_names(self.spec.nodes),
            std::time::Instant::now(),
        );
        let total = self.spec.time_limit.ns();
        let ended = rt.block_on(async {
            let run = live::run_recorded(&opts, &rec);
            tokio::pin!(run);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                // SIGINT or SIGTERM: kill every node and its descendants;
                // the listeners write their last whole lines at the end.
                tokio::select! {
                    r = &mut run => return r.map(Ok),
                    signal = crate::interrupt::wait() => {
                        ladon_adapters::process::child::kill_all();
                        return Ok(Err(signal));
                    }
                    _ = tick.tick() => rec.progress(total),
                }
            }
        });
        rt.shutdown_timeout(Duration::from_secs(1));
        *events = bus.take();
        let tally = rec.tally();
        let outcome = match ended? {
            Ok(outcome) => outcome,
            Err(signal) => return Ok(rec.interrupted_outcome(signal)),
        };
        let run = RunOutcome {
            events: tally.events,
            completed_ops: tally.completed_ops,
            messages_sent: outcome.router.sent,
            messages_delivered: outcome.router.delivered,
            messages_dropped: outcome.router.dropped,
            writes: tally.writes,
            messages_per_write: outcome.messages_per_write,
            heal_ns: outcome.finals.started_ns,
            converged_ns: outcome.converged_ns,
            end_ns: tally.end_ns,
            ..RunOutcome::default()
        };
        self.drops = outcome
            .router
            .drops
            .iter()
            .map(|(why, n)| (why.to_string(), *n))
            .collect();
        self.backpressure = outcome.backpressure.clone();
        self.finals = Some(outcome.finals);
        Ok(RunOutcome {
            finals: self.finals.clone(),
            ..run
        })
    }

    fn annotate(&self, report: &mut ladon_checker::report::Report) {
        if let Some(finals) = &self.finals {
            annotate_window(report, finals);
        }
    }

    fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.drops.is_empty() {
            let drops: Vec<String> = self
                .drops
                .iter()
                .map(|(why, n)| format!("{n} {why}"))
                .collect();
            out.push(format!(
                "node-to-node messages dropped: {}",
                drops.join(", ")
            ));
        }
        for (node, pauses) in &self.backpressure {
            out.push(format!(
                "backpressure: Ladon paused reading {node}'s stdout {pauses} time(s) \
                 (over {} MiB of its messages awaited delivery; see nodes/{node}.log)",
                crate::live::budget::NODE_BUDGET >> 20
            ));
        }
        out
    }
}

pub fn run(args: ProcessSpec) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ladon: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: ProcessSpec) -> anyhow::Result<ExitCode> {
    args.net
        .validate(args.nodes)
        .map_err(anyhow::Error::msg)
        .context("invalid options")?;
    // A run that cannot start leaves nothing behind: no run directory, and
    // `latest` stays where it was.
    ladon_adapters::process::child::check_executable(&args.bin).map_err(anyhow::Error::msg)?;
    let info = crate::store::RunInfo {
        test: args.test.clone(),
        seed: args.seed,
        mode: crate::adapters::Mode::Live.as_str().to_string(),
        options: args.options.clone(),
        reproduce: reproduce(&args),
        ladon_version: env!("CARGO_PKG_VERSION").to_string(),
        git_revision: crate::store::git_revision(),
        guarantees: args.guarantees.clone(),
        started_at: crate::store::utc_stamp(),
        outcome: None,
        process: Some(args.flags.clone()),
        db: None,
    };
    eprintln!(
        "ladon: live run of {} ({} nodes, workload {}, seed {}) into {}",
        args.bin.display(),
        args.nodes,
        args.workload,
        args.seed,
        args.store.join(&args.test).display()
    );
    crate::interrupt::install().context("installing the SIGINT/SIGTERM handlers")?;
    // --hosts: connect, check and upload before the run directory exists
    // (on this thread, which lives as long as the run: the SSH master
    // connections die with the thread that started them).
    let prepared = match &args.hosts {
        Some(file) => {
            let needs = crate::hosts::Needs {
                bin: args.bin.clone(),
                faketime: args
                    .nemesis
                    .0
                    .contains(&crate::nemesis::FaultKind::Clock)
                    .then(|| {
                        args.faketime_library.clone().unwrap_or_else(|| {
                            PathBuf::from(ladon_adapters::process::clock::LIBFAKETIME)
                        })
                    }),
                // The router carries every message: no rules on the hosts.
                nftables: false,
            };
            let names = live::node_names(args.nodes);
            let p = crate::hosts::prepare(file, &names, &needs).map_err(anyhow::Error::msg)?;
            eprintln!(
                "ladon: {} nodes on {} host(s) from {}",
                args.nodes,
                p.hosts.len(),
                file.path.display()
            );
            Some(p)
        }
        None => None,
    };
    let store = args.store.clone();
    let junit = args.junit.clone();
    let mut exec = ProcessExecution::new(args);
    if let Some(p) = &prepared {
        exec.remote = p.nodes.clone();
    }
    let mut progress = Listeners::new();
    progress.push(crate::listeners::Progress::new(
        exec.spec.time_limit.ns(),
        "wall-clock",
    ));
    let run = crate::store::run_stored(info, &mut exec, &store, progress);
    // Every node is stopped: close the SSH connections before reporting.
    drop(exec);
    drop(prepared);
    crate::store::report_result(&run?, junit.as_deref())
}
