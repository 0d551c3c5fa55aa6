//! Simulated client operations per second on one core: the toy store, 3
//! nodes, partitions + clock skew + crashes + pauses (nemesis every 1 s),
//! 20,000 ops per virtual second for 10 virtual seconds.
//!
//!     cargo bench -p ladon-harness --bench sim
//!
//! Two measurements: wall-clock time (criterion's default) and the CPU time
//! of the benchmark thread (from /proc/thread-self/schedstat), which stays
//! meaningful on a machine shared with other jobs.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ladon_adapters::toy::ToyCluster;
use ladon_checker::writer::HistoryWriter;
use ladon_harness::options::{Dur, RunOptions};
use ladon_harness::runner::{simulate, CountingSink, HistorySink, RunContext};

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

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .expect("/proc/thread-self/schedstat (Linux) is needed for the CPU-time measurement")
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns() - i
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical >= 1e9 {
            (1e9, "s cpu")
        } else {
            (1e6, "ms cpu")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
        };
        values.iter_mut().for_each(|v| *v = n / (*v / 1e9) / 1e3);
        "Kops/cpu-s"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

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
