//! Simulated client operations per second of CPU with each CRDT library
//! (automerge, yrs, loro) as the nodes: 3 nodes, list-append, partitions +
//! crashes (nemesis every 1 s), 2,000 ops per virtual second for 5 virtual
//! seconds, history discarded.
//!
//!     cargo bench -p ladon-harness --features crdt-libs --bench crdt_libs
//!
//! Throughput is printed in Kops/cpu-s (CPU time of the benchmark thread),
//! the simulation alone (no checker, no history written). One library:
//!
//!     cargo bench -p ladon-harness --features crdt-libs --bench crdt_libs -- yrs
//!
//! A library whose group name (`simulate-<library>-3-nodes-cpu/list-append`)
//! the filter does not select is skipped before its operation-counting run,
//! so measuring one library costs only that library's runs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ladon_adapters::crdt_libs::{AutomergeDoc, LibCluster, LoroDoc, Persist, Replica, YrsDoc};
use ladon_harness::options::{Dur, RunOptions};
use ladon_harness::runner::{simulate, CountingSink, RunContext};
use ladon_workloads::WorkloadKind;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpu;

fn options(adapter: &str) -> RunOptions {
    RunOptions {
        adapter: adapter.parse().expect("a CRDT library adapter"),
        seed: Some(1),
        time_limit: Dur::secs(5),
        rate: 2_000.0,
        concurrency: 30,
        nemesis: "partition,crash".parse().unwrap(),
        nemesis_interval: Dur::secs(1),
        ..RunOptions::default()
    }
}

fn run<R: Replica>() -> u64 {
    let o = options(R::NAME);
    let mut sink = CountingSink::default();
    let mut ctx = RunContext {
        options: o.clone(),
        seed: 1,
        events: &mut sink,
    };
    let cluster = LibCluster::<R>::new(o.nodes, WorkloadKind::ListAppend, Persist::EveryOp);
    simulate(cluster, &mut ctx).unwrap().completed_ops
}

/// The positional filter criterion was given (`-- yrs`), if any: the first
/// argument after the program that is not an option. `--bench` (added by
/// cargo) and criterion's value-less flags start with `-`; options that take
/// a value are not used with this bench.
fn filter() -> Option<String> {
    std::env::args().skip(1).find(|a| !a.starts_with('-'))
}

fn lib<R: Replica>(c: &mut Criterion<ThreadCpu>) {
    let group = format!("simulate-{}-3-nodes-cpu", R::NAME);
    if let Some(f) = filter() {
        if !format!("{group}/list-append").contains(&f) {
            return;
        }
    }
    // The run is deterministic (seed 1): one run counts the operations
    // every measured run completes.
    let ops = run::<R>();
    eprintln!("{group}: {ops} operations completed per run");
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(Throughput::Elements(ops));
    g.bench_function("list-append", |b| b.iter(run::<R>));
    g.finish();
}

fn cpu(c: &mut Criterion<ThreadCpu>) {
    lib::<AutomergeDoc>(c);
    lib::<YrsDoc>(c);
    lib::<LoroDoc>(c);
}

criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = cpu
}
criterion_main!(cpu_time);
