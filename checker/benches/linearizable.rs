//! The linearizability check on lin-kv-shaped histories of a linearizable
//! store (`gen-history --linearizable`): parse + validate + every analysis
//! under `linearizable`. See docs/performance.md for the figures.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ladon_checker::check::check_history;
use ladon_checker::reader::read_history;
use ladon_checker::report::{Guarantee, Verdict};
use ladon_checker::synth::linreg::{generate_lin_kv_vec, LinGenOptions};
use ladon_checker::CheckOptions;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("check linearizable");
    g.sample_size(10);
    let opts = CheckOptions {
        guarantees: vec![Guarantee::Linearizable],
        ..CheckOptions::default()
    };
    // (operations, keys, clients): the 100k over 10 keys, and one
    // hot key under 10 and 50 clients.
    for (ops, keys, clients) in [
        (100_000u64, 10u32, 10u32),
        (100_000, 1, 10),
        (20_000, 1, 50),
    ] {
        let bytes = generate_lin_kv_vec(&LinGenOptions {
            ops,
            keys,
            clients,
            nodes: 3,
            info_rate: 0.1,
            seed: 1,
        });
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

criterion_group!(benches, bench);
criterion_main!(benches);
