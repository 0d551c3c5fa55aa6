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

use crate::live::nemesis::Fault;
use crate::live::topology::Topology;
use crate::live::{self, LiveOptions};
use crate::net::{parse_duration_ns, Latency, PartitionMode, Shape};

/// `ladon run --adapter process ...` parsed on its own.
#[derive(Debug, clap::Parser)]
#[command(name = "ladon run")]
pub struct ProcessCli {
    #[command(flatten)]
    pub args: Box<ProcessRunArgs>,
}

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
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Logical clients, each sticky to one node.
    #[arg(long, default_value_t = 3)]
    pub concurrency: usize,
    /// Client operations per second, all clients together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of faulty phase.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub time_limit: Duration,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Faults: comma-separated partition, clock, crash, pause, loss, dup, clog, or none.
    #[arg(long, default_value = "none", value_parser = Fault::parse_list)]
    pub nemesis: std::vec::Vec<Fault>,
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub nemesis_interval: Duration,
    #[arg(long, value_enum, default_value = "drop")]
    pub partition_mode: PartitionMode,
    /// Comma-separated partition shapes (one, halves, majorities-ring, bridge, ring-cut, hub, one-way, groups:0,1/2).
    #[arg(long, default_value = "one,halves", value_parser = shapes)]
    pub partition_shapes: std::vec::Vec<Shape>,
    /// Per-message latency: constant:D, uniform:MIN..MAX, exponential:MEAN.
    #[arg(long, default_value = "constant:0ms")]
    pub latency: Latency,
    /// Largest clock offset the clock nemesis applies.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub max_clock_skew: Duration,
    /// Broadcast's topology: grid, line, total, tree2, tree3, tree4.
    #[arg(long, default_value = "grid")]
    pub topology: Topology,
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub op_timeout: Duration,
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub init_timeout: Duration,
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub converge_timeout: Duration,
    #[arg(long, default_value_t = 3)]
    pub txn_size: usize,
    #[arg(long, default_value_t = 32)]
    pub max_writes_per_key: u64,
    /// Where results go.
    #[arg(long, default_value = "results")]
    pub store: PathBuf,
    /// Test name (results/<test>/...); defaults to the workload and binary name.
    #[arg(long)]
    pub test: Option<String>,
    /// What the node promises (comma-separated, or none); default convergence,no-lost-writes.
    #[arg(long, value_parser = Guarantee::parse_list)]
    pub guarantees: Option<std::vec::Vec<Guarantee>>,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration_ns(s).map(Duration::from_nanos)
}

fn shapes(s: &str) -> Result<Vec<Shape>, String> {
    // `groups:0,1/2` contains commas, so split on commas only between shapes.
    let mut out = Vec::new();
    let mut cur = String::new();
    for part in s.split(',') {
        if !cur.is_empty() && (Shape::NAMED.contains(&part.trim()) || part.starts_with("groups:")) {
            out.push(cur.parse()?);
            cur.clear();
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(part);
    }
    if !cur.is_empty() {
        out.push(cur.parse()?);
    }
    Ok(out)
}

/// `2026-08-30T12-01-02Z`: UTC, safe in file names.
fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn reproduce(args: &ProcessRunArgs, seed: u64) -> String {
    let mut cmd = format!(
        "ladon run --adapter process --bin {} --workload {}",
        args.bin.display(),
        args.workload
    );
    for a in &args.bin_args {
        cmd.push_str(&format!(" --bin-arg {a}"));
    }
    let nemesis: Vec<&str> = args.nemesis.iter().map(|f| f.as_str()).collect();
    cmd.push_str(&format!(
        " --nodes {} --concurrency {} --rate {} --time-limit {}s --nemesis {} --seed {seed}",
        args.nodes,
        args.concurrency,
        args.rate,
        args.time_limit.as_secs_f64(),
        if nemesis.is_empty() {
            "none".to_string()
        } else {
            nemesis.join(",")
        },
    ));
    cmd
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
    let run_dir = test_dir.join(format!("{}-seed{seed}", utc_stamp(SystemTime::now())));
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let guarantees = args
        .guarantees
        .clone()
        .unwrap_or_else(Guarantee::default_for_check);

    let mut opts = LiveOptions::new(args.bin.clone(), args.workload, run_dir.clone());
    opts.bin_args = args.bin_args.clone();
    opts.nodes = args.nodes;
    opts.concurrency = args.concurrency;
    opts.rate = args.rate;
    opts.time_limit = args.time_limit;
    opts.op_timeout = args.op_timeout;
    opts.init_timeout = args.init_timeout;
    opts.converge_timeout = args.converge_timeout;
    opts.seed = seed;
    opts.net.latency = args.latency;
    opts.net.partition_mode = args.partition_mode;
    opts.nemesis = args.nemesis.clone();
    opts.nemesis_interval = args.nemesis_interval;
    opts.partition_shapes = args.partition_shapes.clone();
    opts.max_clock_skew_ns = args.max_clock_skew.as_nanos() as i64;
    opts.topology = args.topology;
    opts.txn_size = args.txn_size;
    opts.max_writes_per_key = args.max_writes_per_key;

    let reproduce = reproduce(&args, seed);
    eprintln!(
        "ladon: live run of {} ({} nodes, workload {}, seed {seed}) into {}",
        args.bin.display(),
        args.nodes,
        args.workload,
        run_dir.display()
    );
    let run_json = json!({
        "test": test, "seed": seed, "mode": "live", "adapter": "process",
        "options": {"live": opts, "latency": args.latency.to_string(), "partition_mode": args.partition_mode},
        "reproduce": reproduce, "ladon_version": env!("CARGO_PKG_VERSION"), "git_revision": null,
        "guarantees": guarantees,
    });
    std::fs::write(
        run_dir.join("run.json"),
        serde_json::to_string_pretty(&run_json)? + "\n",
    )?;
    link_latest(&args.store, &test_dir, &run_dir);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        tokio::select! {
            r = live::run(&opts) => r,
            _ = tokio::signal::ctrl_c() => {
                ladon_adapters::process::child::kill_all();
                Err(anyhow::anyhow!("interrupted: every node was killed; the history so far is in {}", run_dir.join("history.jsonl").display()))
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    let outcome = outcome?;
    eprintln!(
        "ladon: {} events, {} node-to-node messages ({} dropped), converged: {}",
        outcome.events.len(),
        outcome.router.sent,
        outcome.router.dropped,
        outcome
            .converged_ns
            .map(|t| format!("at {:.3}s", t as f64 / 1e9))
            .unwrap_or_else(|| "no".into())
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
    std::fs::write(
        run_dir.join("report.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    let verdict = report.verdict;
    let mut summary = format!("verdict: {}\n", verdict.as_str());
    for (a, f) in &report.anomalies {
        summary.push_str(&format!(
            "  {a}: {} ({})\n",
            f.count,
            if f.forbidden { "forbidden" } else { "allowed" }
        ));
    }
    std::fs::write(run_dir.join("summary.txt"), &summary)?;
    print!("{summary}");
    if verdict != ladon_checker::Verdict::Valid {
        println!("reproduce: {reproduce}");
    }
    Ok(ExitCode::from(verdict.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_shapes() {
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22-13-20Z"
        );
        assert_eq!(
            shapes("one,groups:0,1/2,halves").unwrap(),
            vec![
                Shape::One,
                Shape::Groups(vec![vec![0, 1], vec![2]]),
                Shape::Halves
            ]
        );
    }
}
