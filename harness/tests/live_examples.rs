//! End-to-end: the example Python nodes in `examples/nodes/` under the live
//! runner. Correct nodes converge with every acknowledged write; each buggy
//! node shows the anomaly it was written to have.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use ladon_adapters::process::Workload;
use ladon_checker::history::{Event, EventType, Mop, Process, ReadValue};
use ladon_harness::live::{run, LiveOptions, LiveOutcome};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/nodes")
        .join(name)
}

/// A temporary run directory, kept (and named on stderr) when the test
/// fails so its history, messages and node logs can be read.
struct RunDir(Option<tempfile::TempDir>);

impl RunDir {
    fn new() -> RunDir {
        RunDir(Some(tempfile::tempdir().unwrap()))
    }
    fn path(&self) -> &std::path::Path {
        self.0.as_ref().expect("present until dropped").path()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.0.take() {
                eprintln!("failed run kept in {}", d.keep().display());
            }
        }
    }
}

fn opts(bin: &str, workload: Workload, dir: &RunDir) -> LiveOptions {
    let mut o = LiveOptions::new(example(bin), workload, dir.path().to_path_buf());
    o.time_limit = Duration::from_millis(2500);
    o.rate = 60.0;
    o.op_timeout = Duration::from_secs(2);
    o.converge_timeout = Duration::from_secs(4);
    o.nemesis_interval = Duration::from_millis(700);
    o.seed = 7;
    o
}

async fn go(o: LiveOptions) -> LiveOutcome {
    let out = run(&o).await.expect("the run completes");
    assert_reaped(&out.pids);
    check_well_formed(&out.events);
    out
}

/// The checker's verdict and the anomaly names it found.
fn verdict(out: &LiveOutcome) -> (&'static str, Vec<String>) {
    let r =
        ladon_checker::check_path(&out.history, &ladon_checker::CheckOptions::default()).unwrap();
    let forbidden = r
        .anomalies
        .iter()
        .filter(|(_, f)| f.forbidden)
        .map(|(a, _)| a.as_str().to_string())
        .collect();
    (r.verdict.as_str(), forbidden)
}

/// Every node process is gone: not running, not a zombie.
pub fn assert_reaped(pids: &[i32]) {
    assert!(!pids.is_empty());
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still exists"
        );
    }
}

/// The history's own invariants: gapless indices, monotone time, each
/// process with at most one outstanding operation.
fn check_well_formed(events: &[Event]) {
    let mut open = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.index, i as u64);
        if i > 0 {
            assert!(e.time >= events[i - 1].time);
        }
        if let Process::Client(p) = e.process {
            if e.kind == EventType::Invoke {
                assert!(open.insert(p), "process {p} invoked twice at index {i}");
            } else {
                assert!(open.remove(&p), "completion without invoke at index {i}");
            }
        }
    }
}

/// Each node's last ok final read of the first key.
fn finals(events: &[Event]) -> Vec<(String, ReadValue)> {
    let mut last = std::collections::BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.f == "final" && e.kind == EventType::Ok)
    {
        if let Some(Mop::Read(_, v)) = e.ops().first() {
            last.insert(e.node.clone().unwrap(), v.clone());
        }
    }
    last.into_iter().collect()
}

fn acked_adds(events: &[Event]) -> BTreeSet<i64> {
    events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == "txn")
        .flat_map(|e| {
            e.ops().iter().filter_map(|m| {
                if let Mop::Add(_, v) = m {
                    Some(*v)
                } else {
                    None
                }
            })
        })
        .collect()
}

fn as_set(v: &ReadValue) -> BTreeSet<i64> {
    match v {
        ReadValue::List(l) => l.iter().copied().collect(),
        _ => BTreeSet::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_broadcast_keeps_every_acknowledged_element_through_partitions_pauses_and_loss() {
    let dir = RunDir::new();
    let mut o = opts("broadcast.py", Workload::Broadcast, &dir);
    o.nemesis = "partition,pause,loss".parse().unwrap();
    // The schedule toggles one random fault per step (seeded): steps every
    // ~300ms give each fault its start and its stop in 2.5s.
    o.nemesis_interval = Duration::from_millis(300);
    let out = go(o).await;
    let acked = acked_adds(&out.events);
    assert!(acked.len() > 20, "only {} acknowledged adds", acked.len());
    let f = finals(&out.events);
    assert_eq!(f.len(), 3);
    for (node, v) in &f {
        let got = as_set(v);
        let missing: Vec<_> = acked.difference(&got).collect();
        assert!(missing.is_empty(), "{node} lost {missing:?}");
    }
    assert!(out.converged_ns.is_some());
    assert_eq!(verdict(&out), ("valid", vec![]));
    let faults: BTreeSet<String> = out
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| e.f.clone())
        .collect();
    assert!(
        faults.is_superset(
            &["partition", "heal", "pause", "resume", "loss"]
                .map(String::from)
                .into()
        ),
        "{faults:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buggy_broadcast_loses_acknowledged_elements_under_message_loss() {
    let dir = RunDir::new();
    let mut o = opts("broadcast_buggy.py", Workload::GSet, &dir);
    o.net.loss = 0.3;
    o.converge_timeout = Duration::from_millis(1500);
    let out = go(o).await;
    let acked = acked_adds(&out.events);
    let f = finals(&out.events);
    let lost: usize = f
        .iter()
        .map(|(_, v)| acked.difference(&as_set(v)).count())
        .sum();
    assert!(lost > 0, "expected lost writes; finals {f:?}");
    assert_eq!(out.converged_ns, None, "the nodes never agree (divergence)");
    let (v, anomalies) = verdict(&out);
    assert_eq!(v, "invalid");
    assert!(
        anomalies.contains(&"lost-write".to_string())
            && anomalies.contains(&"divergence".to_string()),
        "{anomalies:?}"
    );
}

fn counter_bounds(events: &[Event]) -> (i64, i64) {
    let (mut lo, mut hi) = (0, 0);
    for e in events.iter().filter(|e| e.f == "txn") {
        for m in e.ops() {
            if let Mop::Incr(_, d) = m {
                match e.kind {
                    EventType::Ok => {
                        lo += d;
                        hi += d;
                    }
                    EventType::Info if *d < 0 => lo += d,
                    EventType::Info => hi += d,
                    _ => {}
                }
            }
        }
    }
    (lo, hi)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_counter_is_exact_under_duplication_and_pauses() {
    let dir = RunDir::new();
    let mut o = opts("counter.py", Workload::PnCounter, &dir);
    o.nemesis = "dup,pause".parse().unwrap();
    o.fault_duplicate = 0.5;
    let out = go(o).await;
    let (lo, hi) = counter_bounds(&out.events);
    for (node, v) in finals(&out.events) {
        let ReadValue::Int(x) = v else {
            panic!("{node}: {v:?}")
        };
        if !(lo <= x && x <= hi) {
            let text = std::fs::read_to_string(&out.history).unwrap();
            panic!("{node}: {x} outside [{lo}, {hi}]\n{text}");
        }
    }
    assert!(out.converged_ns.is_some());
    assert_eq!(verdict(&out), ("valid", vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buggy_counter_over_counts_duplicated_increments() {
    let dir = RunDir::new();
    let mut o = opts("counter_buggy.py", Workload::GCounter, &dir);
    o.net.duplicate = 0.5;
    let out = go(o).await;
    let (_, hi) = counter_bounds(&out.events);
    let over: Vec<_> = finals(&out.events)
        .into_iter()
        .filter(|(_, v)| matches!(v, ReadValue::Int(x) if *x > hi))
        .collect();
    assert!(!over.is_empty(), "expected a final value above {hi}");
    let (v, anomalies) = verdict(&out);
    assert_eq!(v, "invalid");
    assert!(
        anomalies.contains(&"duplicate".to_string()),
        "{anomalies:?}"
    );
}

fn list_finals(events: &[Event]) -> std::collections::BTreeMap<String, Vec<Mop>> {
    let mut last = std::collections::BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.f == "final" && e.kind == EventType::Ok)
    {
        last.insert(e.node.clone().unwrap(), e.ops().to_vec());
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_list_append_converges_in_one_order_after_partitions_and_clock_skew() {
    let dir = RunDir::new();
    let mut o = opts("list_append.py", Workload::TxnListAppend, &dir);
    o.nemesis = "partition,clock".parse().unwrap();
    let out = go(o).await;
    let f = list_finals(&out.events);
    assert_eq!(f.len(), 3);
    let states: BTreeSet<_> = f.values().map(|ops| format!("{ops:?}")).collect();
    assert_eq!(states.len(), 1, "{f:?}");
    assert!(out.converged_ns.is_some());
    assert!(out.events.iter().any(|e| e.f == "clock-skew"));
    assert_eq!(verdict(&out), ("valid", vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buggy_list_append_diverges_in_order() {
    let dir = RunDir::new();
    let mut o = opts("list_append_buggy.py", Workload::TxnListAppend, &dir);
    o.net.latency = ladon_harness::net::Latency::Constant(20_000_000);
    o.converge_timeout = Duration::from_millis(1500);
    let out = go(o).await;
    let f = list_finals(&out.events);
    // Same elements, different order, on some key.
    let nodes: Vec<&Vec<Mop>> = f.values().collect();
    let mut order_divergence = false;
    for (a, b) in nodes.iter().zip(nodes.iter().skip(1)) {
        for (ma, mb) in a.iter().zip(b.iter()) {
            if let (Mop::Read(_, ReadValue::List(x)), Mop::Read(_, ReadValue::List(y))) = (ma, mb) {
                let (sx, sy): (BTreeSet<_>, BTreeSet<_>) = (x.iter().collect(), y.iter().collect());
                order_divergence |= sx == sy && x != y;
            }
        }
    }
    assert!(order_divergence, "{f:?}");
    assert_eq!(out.converged_ns, None);
    assert_eq!(verdict(&out), ("invalid", vec!["divergence".to_string()]));
}

/// The checker's verdict and forbidden anomalies under what `lin-kv`
/// declares (`convergence`, `no-lost-writes`, `linearizable`).
fn lin_verdict(out: &LiveOutcome) -> (&'static str, Vec<String>) {
    let opts = ladon_checker::CheckOptions {
        guarantees: Workload::LinKv.guarantees(),
        ..ladon_checker::CheckOptions::default()
    };
    let r = ladon_checker::check_path(&out.history, &opts).unwrap();
    let forbidden = r
        .anomalies
        .iter()
        .filter(|(_, f)| f.forbidden)
        .map(|(a, _)| a.as_str().to_string())
        .collect();
    (r.verdict.as_str(), forbidden)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_leader_lin_kv_is_linearizable_through_partitions() {
    let dir = RunDir::new();
    let mut o = opts("lin_kv.py", Workload::LinKv, &dir);
    o.nemesis = "partition".parse().unwrap();
    o.nemesis_interval = Duration::from_millis(400);
    let out = go(o).await;
    let acked = out
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == "txn")
        .count();
    assert!(acked > 30, "only {acked} acknowledged operations");
    assert!(out.events.iter().any(|e| e.f == "partition"));
    // Compare-and-sets: invoked with the read unknown, acknowledged with
    // the expected value observed.
    let cas = |e: &&Event| matches!(e.ops(), [Mop::Read(..), Mop::Write(..)]);
    let invoked_cas = out
        .events
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .filter(cas)
        .inspect(|e| assert!(matches!(e.ops()[0], Mop::Read(_, ReadValue::Null)), "{e:?}"))
        .count();
    let ok_cas = out
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok)
        .filter(cas)
        .inspect(|e| {
            assert!(
                matches!(e.ops()[0], Mop::Read(_, ReadValue::Int(_))),
                "{e:?}"
            )
        })
        .count();
    let failed_cas = out
        .events
        .iter()
        .filter(|e| e.kind == EventType::Fail)
        .filter(cas)
        .filter(|e| e.error.as_deref() == Some("precondition-failed: precondition failed"))
        .count();
    // (Refusals depend on timing: the adapter's unit test covers them.)
    assert!(
        ok_cas > 3 && invoked_cas >= ok_cas + failed_cas,
        "{invoked_cas} cas invoked, {ok_cas} ok, {failed_cas} failed"
    );
    assert_eq!(lin_verdict(&out), ("valid", vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lin_kv_answering_reads_locally_is_caught_as_nonlinearizable() {
    let dir = RunDir::new();
    let mut o = opts("lin_kv_buggy.py", Workload::LinKv, &dir);
    o.nemesis = "partition".parse().unwrap();
    o.nemesis_interval = Duration::from_millis(400);
    let out = go(o).await;
    let (v, anomalies) = lin_verdict(&out);
    assert_eq!(v, "invalid");
    assert!(
        anomalies.contains(&"nonlinearizable".to_string()),
        "{anomalies:?}"
    );
}
