//! Checking generated histories: parse + validate + every analysis, from
//! bytes in memory. `check list-append`: 3 nodes, 30 processes, at most 32
//! appends per key. `check hot keys`: the writes-per-key sweep, 100,000
//! single-operation register transactions (half reads) from 32 sessions on
//! 3 nodes, no failures, keys shared by every session and retired after W
//! writes (W = 32, 256, 1,024, 10,000, and one key taking every write), so
//! the operation count is fixed and only writes per key change; and
//! `info-and-divergence`: 100,000 three-operation register transactions
//! over 20 hot keys, 5% indeterminate, a divergence injected. See
//! docs/performance.md for the figures and the CLI commands.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ladon_checker::check::check_history;
use ladon_checker::reader::read_history;
use ladon_checker::synth::{generate_vec, GenOptions, Workload};
use ladon_checker::CheckOptions;

/// One measured iteration: read the history's bytes, then check it.
fn read_and_check(bytes: &[u8]) -> ladon_checker::Report {
    let h = read_history(bytes)
        .map_err(|_| "invalid")
        .expect("valid history");
    check_history(&h, &CheckOptions::default())
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("check list-append");
    g.sample_size(10);
    for ops in [10_000u64, 100_000] {
        let bytes = generate_vec(&GenOptions::new(Workload::ListAppend, ops, 30, 3, 1));
        g.throughput(Throughput::Elements(ops));
        g.bench_with_input(BenchmarkId::from_parameter(ops), &bytes, |b, bytes| {
            b.iter(|| read_and_check(bytes))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("check hot keys");
    g.sample_size(10);
    let ops = 100_000u64;
    let writes = ops / 2;
    for per_key in [32u64, 256, 1024, 10_000, writes] {
        let mut o = GenOptions::new(Workload::Register, ops, 32, 3, 1);
        o.fail_rate = 0.0;
        o.info_rate = 0.0;
        o.mops = Some(1);
        o.keys = Some((writes / per_key).max(1) as u32);
        o.max_writes_per_key = if per_key == writes {
            u32::MAX
        } else {
            per_key as u32
        };
        let bytes = generate_vec(&o);
        let name = if per_key == writes {
            "one-key".to_string()
        } else {
            format!("{per_key}-writes-per-key")
        };
        g.throughput(Throughput::Elements(ops));
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| read_and_check(bytes))
        });
    }
    // Hot keys with indeterminate transactions (each retires its
    // process), an injected divergence: every write a final state does not
    // hold is asked about the key's unknown reads.
    let mut o = GenOptions::new(Workload::Register, ops, 16, 3, 6);
    o.info_rate = 0.05;
    o.mops = Some(3);
    o.keys = Some(20);
    o.max_writes_per_key = u32::MAX;
    o.inject = Some(ladon_checker::Anomaly::Divergence);
    let bytes = generate_vec(&o);
    g.throughput(Throughput::Elements(ops));
    g.bench_with_input(
        BenchmarkId::from_parameter("info-and-divergence"),
        &bytes,
        |b, bytes| b.iter(|| read_and_check(bytes)),
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
