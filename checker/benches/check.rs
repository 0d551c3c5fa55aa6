//! Checking generated list-append histories (3 nodes, 30 processes, at most
//! 32 appends per key): parse + validate + every analysis, from bytes in
//! memory. See docs/performance.md for the figures and the CLI command pair.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ladon_checker::check::check_history;
use ladon_checker::reader::read_history;
use ladon_checker::synth::{generate_vec, GenOptions, Workload};
use ladon_checker::CheckOptions;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("check list-append");
    g.sample_size(10);
    for ops in [10_000u64, 100_000] {
        let bytes = generate_vec(&GenOptions::new(Workload::ListAppend, ops, 30, 3, 1));
        g.throughput(Throughput::Elements(ops));
        g.bench_with_input(BenchmarkId::from_parameter(ops), &bytes, |b, bytes| {
            b.iter(|| {
                let h = read_history(&bytes[..])
                    .map_err(|_| "invalid")
                    .expect("valid history");
                check_history(&h, &CheckOptions::default())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
