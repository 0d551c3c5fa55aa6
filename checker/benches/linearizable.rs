//! The linearizability check on lin-kv-shaped histories of a linearizable
//! store (`gen-history --linearizable`). Two groups:
//!
//! - `linearizability search`: the search alone (gathering each register
//!   key's operations and searching every key, on all cores), on a parsed
//!   history: the 100k operations over 10 keys, 1M over 1,000 keys,
//!   and hot keys;
//! - `check linearizable`: parse + validate + every analysis under
//!   `linearizable`, end to end (only 10k operations: at 100k the causal
//!   analyses take tens of seconds on this shape, see docs/performance.md).
//!
//! See docs/performance.md for the figures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ladon_checker::analysis::linearizable::{search_only, DEFAULT_BUDGET};
use ladon_checker::check::check_history;
use ladon_checker::model::History;
use ladon_checker::reader::read_history;
use ladon_checker::report::{Guarantee, Verdict};
use ladon_checker::synth::linreg::{generate_lin_kv_vec, LinGenOptions};
use ladon_checker::CheckOptions;

fn history(ops: u64, keys: u32, clients: u32) -> (Vec<u8>, History) {
    let bytes = generate_lin_kv_vec(&LinGenOptions {
        ops,
        keys,
        clients,
        nodes: 3,
        info_rate: 0.1,
        seed: 1,
    });
    let h = read_history(&bytes[..])
        .map_err(|_| "invalid")
        .expect("valid history");
    (bytes, h)
}

fn search(c: &mut Criterion) {
    let mut g = c.benchmark_group("linearizability search");
    g.sample_size(10);
    // (operations, keys, clients)
    for (ops, keys, clients) in [
        (100_000u64, 10u32, 10u32),
        (1_000_000, 1_000, 10),
        (100_000, 1, 10),
        (20_000, 1, 50),
    ] {
        let (_, h) = history(ops, keys, clients);
        g.throughput(Throughput::Elements(ops));
        let id = format!("{ops}-ops-{keys}-keys-{clients}-clients");
        g.bench_with_input(BenchmarkId::from_parameter(id), &h, |b, h| {
            b.iter(|| {
                let (k, _, bad, over) = search_only(h, DEFAULT_BUDGET);
                assert_eq!((k, bad, over), (keys as u64, 0, 0));
            })
        });
    }
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("check linearizable");
    g.sample_size(10);
    let opts = CheckOptions {
        guarantees: vec![Guarantee::Linearizable],
        ..CheckOptions::default()
    };
    // The last is issue 13's target shape (under 1 s end to end).
    for (ops, keys, clients) in [
        (10_000u64, 10u32, 10u32),
        (10_000, 1, 10),
        (100_000, 10, 10),
    ] {
        let (bytes, _) = history(ops, keys, clients);
        g.throughput(Throughput::Elements(ops));
        let id = format!("{ops}-ops-{keys}-keys-{clients}-clients");
        g.bench_with_input(BenchmarkId::from_parameter(id), &bytes, |b, bytes| {
            b.iter(|| {
                let h = read_history(&bytes[..])
                    .map_err(|_| "invalid")
                    .expect("valid history");
                let r = check_history(&h, &opts);
                assert_eq!(r.verdict, Verdict::Valid);
                r
            })
        });
    }
    g.finish();
}

criterion_group!(benches, search, end_to_end);
criterion_main!(benches);
