//! `ladon gen-history`: writes a synthetic history of a correct
//! merge-or-last-write-wins system, optionally with one anomaly injected.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ladon_checker::report::Anomaly;
use ladon_checker::synth::{generate, GenOptions, Workload};

#[derive(Debug, Args)]
pub struct GenHistoryArgs {
    /// register, list-append, set or counter.
    #[arg(long, default_value = "list-append", value_parser = Workload::parse)]
    pub workload: Workload,
    /// Transactions in the main phase.
    #[arg(long, default_value_t = 1000)]
    pub ops: u64,
    #[arg(long, default_value_t = 30)]
    pub processes: u32,
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Inject exactly one anomaly of this name (any name of docs/checker.md).
    #[arg(long, value_parser = |s: &str| s.parse::<Anomaly>())]
    pub inject: Option<Anomaly>,
    /// Writes per key before a key is retired (a number, or `unbounded`).
    #[arg(long, default_value = "32", value_parser = parse_max_writes)]
    pub max_writes_per_key: u32,
    /// Keys written at a time, shared by every process (registers too:
    /// many writers per key, last-write-wins); default: the processes'
    /// count clamped to 2..=16, and one writer per register key. With
    /// `--linearizable`: the number of keys (default 10).
    #[arg(long)]
    pub keys: Option<u32>,
    /// Micro-operations per transaction (default: 1 to 3 at random).
    #[arg(long)]
    pub mops: Option<u32>,
    /// Share of micro-operations that read.
    #[arg(long, default_value_t = 0.5)]
    pub read_share: f64,
    /// Share of operations that fail.
    #[arg(long, default_value_t = 0.005)]
    pub fail_rate: f64,
    /// Share of operations that end indeterminate (`info`; half take
    /// effect). Each retires its process id.
    #[arg(long, default_value_t = 0.005)]
    pub info_rate: f64,
    /// A lin-kv-shaped history of a linearizable register store instead
    /// (reads and writes of one key each over `--keys` keys, `--processes`
    /// clients, `--info-rate` of them indeterminate); see docs/checker.md.
    #[arg(long)]
    pub linearizable: bool,
    /// Where to write the history (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: GenHistoryArgs) -> Result<u8> {
    let mut opts = GenOptions::new(
        args.workload,
        args.ops,
        args.processes,
        args.nodes,
        args.seed,
    );
    opts.inject = args.inject;
    opts.max_writes_per_key = args.max_writes_per_key;
    if args.keys == Some(0) {
        anyhow::bail!("--keys must be at least 1");
    }
    if args.mops == Some(0) {
        anyhow::bail!("--mops must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.read_share) {
        anyhow::bail!("--read-share must be a share between 0 and 1");
    }
    opts.keys = args.keys;
    opts.mops = args.mops;
    opts.read_share = args.read_share;
    if !(0.0..=1.0).contains(&(args.fail_rate + args.info_rate))
        || args.fail_rate < 0.0
        || args.info_rate < 0.0
    {
        anyhow::bail!(
            "--fail-rate and --info-rate must be shares between 0 and 1 (together at most 1)"
        );
    }
    opts.fail_rate = args.fail_rate;
    opts.info_rate = args.info_rate;
    if args.linearizable {
        return linearizable(&args);
    }
    let result = match &args.out {
        Some(p) => {
            let f = File::create(p).with_context(|| format!("failed to create {}", p.display()))?;
            generate(&opts, f).with_context(|| format!("failed to write {}", p.display()))
        }
        None => match generate(&opts, io::stdout().lock()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(0),
            r => r.context("failed to write the history to standard output"),
        },
    }?;
    if let Some(p) = &args.out {
        let _ = writeln!(
            io::stderr(),
            "wrote {} events ({} transactions, {} keys) to {}",
            result.events,
            result.ops,
            result.keys,
            p.display()
        );
    }
    Ok(0)
}

/// `--linearizable`: a lin-kv-shaped history of a linearizable store.
fn linearizable(args: &GenHistoryArgs) -> Result<u8> {
    use ladon_checker::synth::linreg::{generate_lin_kv, LinGenOptions};
    if args.inject.is_some() {
        anyhow::bail!("--inject cannot be combined with --linearizable");
    }
    let keys = args.keys.unwrap_or(10);
    let o = LinGenOptions {
        ops: args.ops,
        keys,
        clients: args.processes,
        nodes: args.nodes,
        info_rate: args.info_rate,
        seed: args.seed,
    };
    match &args.out {
        Some(p) => {
            let f = File::create(p).with_context(|| format!("failed to create {}", p.display()))?;
            let events = generate_lin_kv(&o, f)
                .with_context(|| format!("failed to write {}", p.display()))?;
            let _ = writeln!(
                io::stderr(),
                "wrote {events} events ({} operations, {} keys) to {}",
                args.ops,
                keys,
                p.display()
            );
        }
        None => match generate_lin_kv(&o, io::stdout().lock()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(0),
            r => {
                r.context("failed to write the history to standard output")?;
            }
        },
    }
    Ok(0)
}

/// `--max-writes-per-key`: a positive number (0 reads as 1, as before), or
/// `unbounded`.
fn parse_max_writes(s: &str) -> Result<u32, String> {
    if s == "unbounded" {
        return Ok(u32::MAX);
    }
    s.parse::<u32>()
        .map(|n| n.max(1))
        .map_err(|_| format!("expected a number or `unbounded`, got {s:?}"))
}
