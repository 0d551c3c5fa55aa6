//! Router throughput: node-to-node messages per second through the live
//! process adapter's router (`ladon_harness::live::router`), which applies
//! the shared `net::Network` fault model in real time and records every
//! message event to `messages.jsonl`.
//!
//! ```text
//! cargo bench -p ladon-harness --bench router
//! ```
//!
//! Each iteration builds a fresh router for 5 nodes on a 2-worker tokio
//! runtime (as `ladon run --adapter process` does). Five producer tasks,
//! one per node (like the stdout pumps), push pre-encoded Maelstrom
//! `gossip` lines into the router's bounded inbox, round-robin to the
//! other nodes, one line per send (the worst case: every read of a node's
//! stdout returns a single line) except in the `stdout-batches-of-16`
//! scenario; five consumer tasks (like the stdin pumps) drain what the
//! router delivers. An iteration ends when the router has taken every line
//! and nothing is left on the wire (`RouterStats::in_flight == 0`). The
//! throughput counts messages *sent by nodes*; copies lost, duplicated or
//! dropped by the faults are the router's work too.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ladon_harness::events::{EventBus, Listeners};
use ladon_harness::listeners::MessagesFile;
use ladon_harness::live::router::{Control, Lines, Router, RouterConfig, RouterIn, RouterStats};
use ladon_harness::net::{Latency, NetConfig, PartitionMode, Shape};
use tokio::sync::{mpsc, oneshot};

const NODES: usize = 5;
/// Messages per iteration.
const MESSAGES: usize = 50_000;

#[derive(Clone)]
struct Scenario {
    name: &'static str,
    net: NetConfig,
    /// Loss and duplication the nemesis injects.
    loss: f64,
    duplicate: f64,
    partition: Option<Shape>,
    /// Lines per `FromNodeBatch` (1: every line sent alone, `FromNode`).
    batch: usize,
}

fn scenarios() -> Vec<Scenario> {
    let fast = NetConfig {
        latency: Latency::Constant(0),
        ..NetConfig::default()
    };
    let latency = NetConfig {
        latency: Latency::Uniform {
            min: 1_000_000,
            max: 10_000_000,
        },
        ..NetConfig::default()
    };
    vec![
        Scenario {
            name: "no-faults",
            net: fast.clone(),
            loss: 0.0,
            duplicate: 0.0,
            partition: None,
            batch: 1,
        },
        Scenario {
            name: "no-faults-stdout-batches-of-16",
            net: fast.clone(),
            loss: 0.0,
            duplicate: 0.0,
            partition: None,
            batch: 16,
        },
        Scenario {
            name: "latency-1-10ms",
            net: latency.clone(),
            loss: 0.0,
            duplicate: 0.0,
            partition: None,
            batch: 1,
        },
        Scenario {
            name: "latency+loss0.3+dup0.3+reorder0.1",
            net: NetConfig {
                reorder: 0.1,
                ..latency.clone()
            },
            loss: 0.3,
            duplicate: 0.3,
            partition: None,
            batch: 1,
        },
        Scenario {
            name: "latency+partition-halves-drop",
            net: latency.clone(),
            loss: 0.0,
            duplicate: 0.0,
            partition: Some(Shape::Halves),
            batch: 1,
        },
        Scenario {
            name: "latency+partition-halves-hold+heal",
            net: NetConfig {
                partition_mode: PartitionMode::Hold,
                ..latency
            },
            loss: 0.0,
            duplicate: 0.0,
            partition: Some(Shape::Halves),
            batch: 1,
        },
    ]
}

fn names() -> Vec<String> {
    (1..=NODES).map(|i| format!("n{i}")).collect()
}

/// Pre-encoded lines node `from` prints: `gossip` to each other node in turn.
fn lines(from: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|k| {
            let mut to = k % (NODES - 1);
            if to >= from {
                to += 1;
            }
            format!(
                r#"{{"src":"n{}","dest":"n{}","body":{{"type":"gossip","msg_id":{k},"messages":[{k},{},{},{}]}}}}"#,
                from + 1,
                to + 1,
                k + 1,
                k + 2,
                k + 3
            )
            .into_bytes()
        })
        .collect()
}

async fn stats(tx: &mpsc::Sender<RouterIn>) -> RouterStats {
    let (stx, srx) = oneshot::channel();
    tx.send(RouterIn::Control(Control::Stats(stx)))
        .await
        .expect("router running");
    srx.await.expect("router answers")
}

/// The run's listeners as a live run has them for messages:
/// `messages.jsonl` only.
fn messages_only(path: &std::path::Path) -> EventBus {
    let mut l = Listeners::new();
    l.push(MessagesFile::create(path).expect("messages.jsonl"));
    EventBus::new(l)
}

/// Routes `MESSAGES` messages under `sc`; returns the time taken and the final figures.
async fn route(sc: &Scenario, dir: &std::path::Path) -> (Duration, RouterStats) {
    let router = Router::new(RouterConfig {
        nodes: names(),
        net: sc.net.clone(),
        seed: 1,
        events: Some(messages_only(&dir.join("messages.jsonl"))),
        start: Instant::now(),
    })
    .expect("messages.jsonl");
    let (tx, rx) = mpsc::channel::<RouterIn>(8192);
    let task = tokio::spawn(router.run(rx));
    let mut consumers = Vec::new();
    for i in 0..NODES {
        let (ntx, mut nrx) = mpsc::unbounded_channel::<Lines>();
        tx.send(RouterIn::Control(Control::NodeUp(i, ntx)))
            .await
            .unwrap();
        consumers.push(tokio::spawn(async move {
            let mut bytes = 0usize;
            while let Some(ls) = nrx.recv().await {
                bytes += ls.iter().map(|l| l.len()).sum::<usize>();
            }
            bytes
        }));
    }
    let send = |c: Control| {
        let tx = tx.clone();
        async move { tx.send(RouterIn::Control(c)).await.unwrap() }
    };
    if sc.loss > 0.0 {
        send(Control::Loss(sc.loss)).await;
    }
    if sc.duplicate > 0.0 {
        send(Control::Duplicate(sc.duplicate)).await;
    }
    if let Some(shape) = &sc.partition {
        let (ctx, _crx) = oneshot::channel();
        send(Control::Partition(shape.clone(), ctx)).await;
    }
    let per_node: Vec<Vec<Vec<u8>>> = (0..NODES).map(|i| lines(i, MESSAGES / NODES)).collect();

    let started = Instant::now();
    let producers: Vec<_> = per_node
        .into_iter()
        .enumerate()
        .map(|(node, ls)| {
            let tx = tx.clone();
            let batch = sc.batch;
            tokio::spawn(async move {
                if batch == 1 {
                    for line in ls {
                        tx.send(RouterIn::FromNode { node, line }).await.unwrap();
                    }
                    return;
                }
                let mut ls = ls.into_iter().peekable();
                while ls.peek().is_some() {
                    let lines: Vec<Vec<u8>> = ls.by_ref().take(batch).collect();
                    tx.send(RouterIn::FromNodeBatch { node, lines })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.await.unwrap();
    }
    if sc.net.partition_mode == PartitionMode::Hold && sc.partition.is_some() {
        send(Control::Heal).await;
    }
    let mut last = stats(&tx).await;
    while last.sent < MESSAGES as u64 || last.in_flight > 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
        last = stats(&tx).await;
    }
    let took = started.elapsed();
    let (dtx, drx) = oneshot::channel();
    send(Control::Shutdown(dtx)).await;
    let fin = drx.await.unwrap();
    task.await.unwrap();
    for c in consumers {
        c.await.unwrap();
    }
    (took, fin)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for sc in scenarios() {
        // One checked run first: the figures must show the faults at work.
        let (_, s) = rt.block_on(route(&sc, dir.path()));
        assert_eq!(s.sent, MESSAGES as u64, "{}", sc.name);
        eprintln!(
            "router/{}: sent {} delivered {} dropped {}",
            sc.name, s.sent, s.delivered, s.dropped
        );
        g.bench_function(sc.name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rt.block_on(route(&sc, dir.path())).0)
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
