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
//!
//! `automerge-alone-3-nodes-cpu` is automerge's own ceiling for the same
//! work with no simulation and no sync protocol (`-- automerge` runs it
//! too): see [`alone`].

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ladon_adapters::crdt_libs::{AutomergeDoc, LibCluster, LoroDoc, Persist, Replica, YrsDoc};
use ladon_harness::options::{Dur, RunOptions};
use ladon_harness::runner::{simulate, CountingSink, RunContext};
use ladon_workloads::{Generator, WorkloadConfig, WorkloadKind};

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

/// automerge alone doing a node's share of the simulated run's work, no
/// simulator and no sync protocol: the library's ceiling for this workload.
///
/// `ops` client transactions from the run's own generator (list-append,
/// same transaction size, keys and read share; seed 1), dealt round-robin
/// to 3 documents; each is one `commit_with` (reads filled in as the adapter
/// reads: `values` of the list), and a key's list is created by the same
/// genesis change on every document, as the adapter does. Every 200
/// transactions (one 100 ms anti-entropy round at 2,000 ops per virtual
/// second) each document loads each peer's changes of the round with one
/// `load_incremental` (as one sync message's payload), so every change is
/// committed once and applied twice. With `save`, a document saves
/// `save_after(heads saved last)` after every commit with a write and
/// after every load (`--persist every-op`).
mod alone {
    use ladon_adapters::crdt_libs::automerge::{
        transaction::{CommitOptions, Transactable},
        ActorId, AutoCommit, ChangeHash, ObjType, ReadDoc, ROOT,
    };
    use ladon_checker::history::{Key, Mop};
    use std::collections::HashMap;

    const NODES: usize = 3;
    const ROUND: usize = 200;

    struct Doc {
        doc: AutoCommit,
        saved: Vec<ChangeHash>,
        /// This round's local changes, encoded, for the peers.
        out: Vec<u8>,
        saved_bytes: usize,
    }

    impl Doc {
        fn save(&mut self, save: bool) {
            if !save {
                return;
            }
            let heads = self.doc.get_heads();
            if heads != self.saved {
                self.saved_bytes += self.doc.save_after(&self.saved).len();
                self.saved = heads;
            }
        }
    }

    fn genesis(name: &str) -> Vec<u8> {
        let actor = ActorId::from(format!("ladon genesis {name}").as_bytes());
        let mut g = AutoCommit::new().with_actor(actor);
        g.put_object(ROOT, name, ObjType::List).unwrap();
        g.commit_with(CommitOptions::default().with_time(0));
        g.get_last_local_change().unwrap().raw_bytes().to_vec()
    }

    /// Runs the transactions; returns the bytes saved (kept so the work is
    /// not optimised away) after checking that the documents converged.
    pub fn run(txns: &[Vec<Mop>], save: bool) -> usize {
        let mut docs: Vec<Doc> = (0..NODES)
            .map(|i| Doc {
                doc: AutoCommit::new().with_actor(ActorId::from((i as u64 + 1).to_be_bytes())),
                saved: Vec::new(),
                out: Vec::new(),
                saved_bytes: 0,
            })
            .collect();
        let mut geneses: HashMap<String, Vec<u8>> = HashMap::new();
        for (round, chunk) in txns.chunks(ROUND).enumerate() {
            for (i, ops) in chunk.iter().enumerate() {
                let d = &mut docs[i % NODES];
                for m in ops {
                    if let Mop::Append(k, _) = m {
                        let name = name(k);
                        if d.doc.get(ROOT, name.as_str()).unwrap().is_none() {
                            let g = geneses
                                .entry(name.clone())
                                .or_insert_with(|| genesis(&name));
                            d.doc.load_incremental(g).unwrap();
                            // The peers may lack it too (a sync message
                            // would carry it).
                            d.out.extend_from_slice(g);
                        }
                    }
                }
                let mut read = 0;
                for m in ops {
                    let name = name(m.key());
                    let obj = d.doc.get(ROOT, name.as_str()).unwrap().map(|(_, o)| o);
                    match m {
                        Mop::Read(..) => {
                            if let Some(o) = obj {
                                read += d.doc.values(&o).filter_map(|(v, _)| v.as_i64()).count();
                            }
                        }
                        Mop::Append(_, v) => {
                            let o = obj.expect("genesis applied");
                            let n = d.doc.length(&o);
                            d.doc.insert(&o, n, *v).unwrap();
                        }
                        other => panic!("not a list-append operation: {other:?}"),
                    }
                }
                std::hint::black_box(read);
                let ms = (round * 100 + i / 2) as i64;
                if d.doc
                    .commit_with(CommitOptions::default().with_time(ms))
                    .is_some()
                {
                    let c = d.doc.get_last_local_change().unwrap();
                    d.out.extend_from_slice(c.raw_bytes());
                    d.save(save);
                }
            }
            let outs: Vec<Vec<u8>> = docs
                .iter_mut()
                .map(|d| std::mem::take(&mut d.out))
                .collect();
            for (me, d) in docs.iter_mut().enumerate() {
                for (peer, bytes) in outs.iter().enumerate() {
                    if peer != me && !bytes.is_empty() {
                        d.doc.load_incremental(bytes).unwrap();
                        d.save(save);
                    }
                }
            }
        }
        let heads = docs[0].doc.get_heads();
        assert!(
            docs.iter_mut().all(|d| d.doc.get_heads() == heads),
            "documents diverged"
        );
        docs.iter().map(|d| d.saved_bytes).sum()
    }

    fn name(k: &Key) -> String {
        format!("l:{k}")
    }
}

/// automerge alone (no simulation, no sync): see [`alone`].
fn automerge_alone(c: &mut Criterion<ThreadCpu>, ops: u64) {
    let group = "automerge-alone-3-nodes-cpu";
    let o = options("automerge");
    let mut gen = Generator::new(
        WorkloadConfig {
            kind: WorkloadKind::ListAppend,
            txn_size: o.txn_size,
            max_writes_per_key: o.max_writes_per_key,
            active_keys: o.keys,
            read_fraction: 0.5,
        },
        1,
    );
    let txns: Vec<_> = (0..ops).map(|_| gen.next_txn(true)).collect();
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(Throughput::Elements(ops));
    for (name, save) in [("persist-every-op", true), ("no-save", false)] {
        if let Some(f) = filter() {
            if !format!("{group}/{name}").contains(&f) {
                continue;
            }
        }
        g.bench_function(name, |b| b.iter(|| alone::run(&txns, save)));
    }
    g.finish();
}

fn cpu(c: &mut Criterion<ThreadCpu>) {
    // The simulated run completes 9,890 operations (seed 1).
    automerge_alone(c, 9_890);
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
