//! The figures of docs/crdt-libraries.md: for each library and fault mix,
//! over seeds 1..=N, the runs whose declared guarantees failed, acknowledged
//! writes lost (lists and sets: elements), time to converge after the heal,
//! messages and bytes of sync traffic per write.
//!
//!     cargo run --release --features crdt-libs -p ladon-harness --example crdt_figures -- 10
//!
//! Every figure is a pure function of the seeds (no timing): the same command
//! prints the same table.

use clap::Parser;
use ladon_adapters::crdt_libs::{AutomergeDoc, LoroDoc, Replica, YrsDoc};
use ladon_checker::report::Verdict;
use ladon_checker::CheckOptions;
use ladon_harness::cli::{Cli, Command};
use ladon_harness::options::RunOptions;
use ladon_harness::runner::{simulate, RunContext};

const MIXES: [&str; 6] = [
    "--nemesis partition",
    "--nemesis clock",
    "--nemesis crash",
    "--nemesis dup --reorder 0.3",
    "--nemesis partition,crash --persist every-sync",
    "--nemesis partition,crash --persist never",
];
const WORKLOAD: &str = "--workload set --time-limit 20s --rate 100 --keys 5";

fn options(flags: &str, seed: u64) -> RunOptions {
    let line = format!("ladon run {WORKLOAD} {flags} --seed {seed}");
    let Command::Run(r) = Cli::try_parse_from(line.split_whitespace())
        .expect(&line)
        .command
    else {
        unreachable!()
    };
    r.options
}

#[derive(Default)]
struct Row {
    runs: u64,
    invalid: u64,
    writes: u64,
    lost: u64,
    converge_ns: Vec<u64>,
    never_converged: u64,
    messages: u64,
    bytes: u64,
}

fn one<R: Replica>(flags: &str, seed: u64, row: &mut Row) {
    let o = options(flags, seed);
    let cluster = ladon_harness::adapters::crdt_lib_cluster::<R>(&o).unwrap();
    let bytes = cluster.bytes_sent();
    let guarantees = ladon_adapters::node::Cluster::guarantees(&cluster);
    let mut events: Vec<ladon_checker::Event> = Vec::new();
    let outcome = {
        let mut ctx = RunContext {
            options: o.clone(),
            seed,
            events: &mut events,
        };
        simulate(cluster, &mut ctx).unwrap()
    };
    let opts = CheckOptions {
        guarantees,
        max_examples: 1,
        messages_per_write: outcome.messages_per_write,
        ..CheckOptions::default()
    };
    let report = ladon_checker::check_events(&events, &opts);
    row.runs += 1;
    row.invalid += u64::from(report.verdict != Verdict::Valid);
    row.writes += outcome.writes;
    row.lost += report.stats.lost_writes;
    match outcome.converged_ns {
        Some(c) => row.converge_ns.push(c.saturating_sub(outcome.heal_ns)),
        None => row.never_converged += 1,
    }
    row.messages += outcome.messages_sent;
    row.bytes += bytes.load(std::sync::atomic::Ordering::Relaxed);
}

fn table<R: Replica>(seeds: u64) {
    for mix in MIXES {
        let mut row = Row::default();
        for seed in 1..=seeds {
            one::<R>(mix, seed, &mut row);
        }
        let mut c = row.converge_ns.clone();
        c.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let median = c.get(c.len() / 2).copied().map_or(f64::NAN, ms);
        let max = c.last().copied().map_or(f64::NAN, ms);
        println!(
            "| {} | `{}` | {}/{} | {} of {} | {:.0} / {:.0} ms{} | {:.1} | {:.0} |",
            R::NAME,
            mix,
            row.invalid,
            row.runs,
            row.lost,
            row.writes,
            median,
            max,
            if row.never_converged > 0 {
                format!(" ({} never)", row.never_converged)
            } else {
                String::new()
            },
            row.messages as f64 / row.writes.max(1) as f64,
            row.bytes as f64 / row.writes.max(1) as f64,
        );
    }
}

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .map_or(10, |s| s.parse().expect("seeds: a number"));
    println!("| library | faults | invalid runs | writes lost | converge after heal (median / max) | messages per write | bytes per write |");
    println!("|---|---|---|---|---|---|---|");
    table::<AutomergeDoc>(seeds);
    table::<YrsDoc>(seeds);
    table::<LoroDoc>(seeds);
}
