//! The final phase, as in simulation: heal every fault (links, clocks,
//! paused and crashed nodes), stop writes, then read every written key on
//! every node, repeating until all nodes agree or the deadline passes.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use ladon_adapters::process::Workload;
use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::client::{run_op, Completion, Endpoint};
use super::nodes::SharedNodes;
use super::recorder::Recorder;
use super::router::{Control, RouterIn};

pub struct FinalCtx {
    pub workload: Workload,
    pub names: Vec<String>,
    pub router: mpsc::Sender<RouterIn>,
    pub nodes: SharedNodes,
    pub recorder: Recorder,
    pub keys: Vec<Key>,
    pub timeout: Duration,
    pub converge_timeout: Duration,
    pub fresh: Arc<AtomicU64>,
    /// Record `clock-reset` (clock faults were enabled).
    pub clocks: bool,
}

/// Heals everything; records what it healed.
pub async fn heal_all(ctx: &FinalCtx) {
    let _ = ctx.router.send(RouterIn::Control(Control::HealAll)).await;
    ctx.recorder.nemesis("heal", Json::Null);
    let mut nodes = ctx.nodes.lock().await;
    if ctx.clocks {
        for i in 0..nodes.len() {
            if let Some(ft) = nodes.faketime(i) {
                let _ = ft.set_offset_ns(0);
            }
        }
        ctx.recorder.nemesis("clock-reset", Json::Null);
    }
    let paused: Vec<usize> = (0..nodes.len()).filter(|&i| nodes.is_paused(i)).collect();
    for &i in &paused {
        let _ = nodes.resume(i);
    }
    if !paused.is_empty() {
        ctx.recorder.nemesis(
            "resume",
            json!(paused
                .iter()
                .map(|&i| ctx.names[i].clone())
                .collect::<Vec<_>>()),
        );
    }
    let mut restarted = Vec::new();
    for i in 0..nodes.len() {
        if !nodes.is_up(i) {
            match nodes.start(i).await {
                Ok(()) => restarted.push(ctx.names[i].clone()),
                Err(e) => tracing::warn!("final phase: cannot restart {}: {e:#}", ctx.names[i]),
            }
        }
    }
    if !restarted.is_empty() {
        ctx.recorder.nemesis("restart", json!(restarted));
    }
}

/// Normalises a read for comparing nodes: sets and registers' siblings as
/// sorted sets, lists as sequences, counters as integers.
fn state(kind: KeyKind, ops: &[Mop]) -> Vec<ReadValue> {
    ops.iter()
        .map(|m| match m {
            Mop::Read(_, ReadValue::List(v)) if v.is_empty() => ReadValue::Null,
            Mop::Read(_, ReadValue::List(v)) if kind != KeyKind::List => {
                let mut v = v.clone();
                v.sort_unstable();
                v.dedup();
                ReadValue::List(v)
            }
            Mop::Read(_, v) => v.clone(),
            _ => ReadValue::Null,
        })
        .collect()
}

/// Reads every node until they agree; returns the harness time at which
/// they first agreed, or `None`.
pub async fn final_reads(ctx: &FinalCtx) -> Option<u64> {
    let n = ctx.names.len();
    let mut eps = Vec::with_capacity(n);
    for i in 0..n {
        eps.push(Endpoint::register(format!("cf{}", i + 1), ctx.router.clone()).await);
    }
    let mut processes: Vec<u64> = (0..n)
        .map(|_| ctx.fresh.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        .collect();
    let reads: Vec<Mop> = ctx
        .keys
        .iter()
        .map(|k| Mop::Read(k.clone(), ReadValue::Null))
        .collect();
    let deadline = tokio::time::Instant::now() + ctx.converge_timeout;
    loop {
        let mut futs = Vec::new();
        for (i, ep) in eps.iter_mut().enumerate() {
            let (rec, name, fresh, reads, p) = (
                &ctx.recorder,
                ctx.names[i].as_str(),
                &ctx.fresh,
                reads.clone(),
                processes[i],
            );
            futs.push(async move {
                run_op(
                    ep,
                    rec,
                    ctx.workload,
                    (i, name),
                    "final",
                    p,
                    reads,
                    ctx.timeout,
                    fresh,
                )
                .await
            });
        }
        let results = futures_join_all(futs).await;
        let mut states = Vec::new();
        for (i, (c, next)) in results.into_iter().enumerate() {
            processes[i] = next;
            if let Completion::Ok(ops) = c {
                states.push(state(ctx.workload.kind(), &ops));
            }
        }
        if states.len() == n && states.windows(2).all(|w| w[0] == w[1]) {
            return Some(ctx.recorder.now_ns());
        }
        if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs futures concurrently on this task, in order.
async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut handles: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..handles.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, h) in handles.iter_mut().enumerate() {
            if out[i].is_none() {
                match h.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}
