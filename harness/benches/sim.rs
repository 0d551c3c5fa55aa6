//! Simulated client operations per second on one core: the toy store, 3
//! nodes, partitions + clock skew + crashes + pauses (nemesis every 1 s),
//! 20,000 ops per virtual second for 10 virtual seconds.
//!
//!     cargo bench -p ladon-harness --bench sim
//!
//! Two measurements: wall-clock time (criterion's default) and the CPU time
//! of the benchmark thread (from /proc/thread-self/schedstat), which stays
//! meaningful on a machine shared with other jobs.

use criterion::measurement::Measurement;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ladon_adapters::toy::ToyCluster;
use ladon_checker::writer::HistoryWriter;
use ladon_harness::events::RunListener;
use ladon_harness::options::{Dur, RunOptions};
use ladon_harness::runner::{simulate, CountingSink, RunContext};

fn options() -> RunOptions {
    RunOptions {
        adapter: ladon_harness::options::AdapterKind::Toy,
        seed: Some(1),
        time_limit: Dur::secs(10),
        rate: 20_000.0,
        concurrency: 30,
        nemesis: "partition,clock,crash,pause".parse().unwrap(),
        nemesis_interval: Dur::secs(1),
        ..RunOptions::default()
    }
}

fn run(sink: &mut dyn RunListener) -> u64 {
    let o = options();
    let mut ctx = RunContext {
        options: o.clone(),
        seed: 1,
        events: sink,
    };
    simulate(ToyCluster::new(o.nodes, None), &mut ctx)
        .unwrap()
        .completed_ops
}

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpu;

/// The two variants (history discarded, history serialized) in one group.
fn simulate_group<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let ops = run(&mut CountingSink::default());
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.throughput(Throughput::Elements(ops));
    g.bench_function("history-discarded", |b| {
        b.iter(|| run(&mut CountingSink::default()))
    });
    g.bench_function("history-serialized", |b| {
        b.iter(|| {
            let mut w = HistoryWriter::buffered(Vec::with_capacity(1 << 24));
            run(&mut w)
        })
    });
    g.finish();
}

fn wall(c: &mut Criterion) {
    simulate_group(c, "simulate-toy-3-nodes-faults");
}

fn cpu(c: &mut Criterion<ThreadCpu>) {
    simulate_group(c, "simulate-toy-3-nodes-faults-cpu");
}

criterion_group!(wall_time, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = cpu
}
criterion_main!(wall_time, cpu_time);
