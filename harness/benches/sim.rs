//! Simulated client operations per wall-clock second: the toy store, 3
//! nodes, partitions + clock skew + crashes + pauses, one thread.
//!
//!     cargo bench -p ladon-harness --bench sim

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ladon_adapters::toy::ToyCluster;
use ladon_checker::writer::HistoryWriter;
use ladon_harness::options::{Dur, RunOptions};
use ladon_harness::runner::{simulate, CountingSink, HistorySink, RunContext};

fn options() -> RunOptions {
    RunOptions {
        seed: Some(1),
        time_limit: Dur::secs(10),
        rate: 20_000.0,
        concurrency: 30,
        nemesis: "partition,clock,crash,pause".parse().unwrap(),
        nemesis_interval: Dur::secs(1),
        ..RunOptions::default()
    }
}

fn run(sink: &mut dyn HistorySink) -> u64 {
    let o = options();
    let mut ctx = RunContext {
        options: o.clone(),
        seed: 1,
        history: sink,
        run_dir: None,
        progress: None,
    };
    simulate(ToyCluster::new(o.nodes, None), &mut ctx)
        .unwrap()
        .completed_ops
}

fn bench(c: &mut Criterion) {
    let ops = run(&mut CountingSink::default());
    let mut g = c.benchmark_group("simulate-toy-3-nodes-faults");
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

criterion_group!(benches, bench);
criterion_main!(benches);
