//! The final phase, as in simulation: heal every fault (links, clocks,
//! paused and crashed nodes), stop writes, then read every written key on
//! every node, repeating until all nodes agree or the deadline passes.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use ladon_adapters::process::Workload;
use ladon_checker::history::Mop;

pub use crate::final_phase::FinalReads;
use crate::final_phase::{Compare, FinalRounds};
use tokio::sync::mpsc;

use super::client::{run_op, Completion, Endpoint};
use super::nodes::SharedNodes;
use super::recorder::Recorder;
use super::router::RouterIn;

pub struct FinalCtx {
    pub workload: Workload,
    pub names: Vec<String>,
    pub router: mpsc::Sender<RouterIn>,
    pub nodes: SharedNodes,
    pub recorder: Recorder,
    /// The final read: every written key (`RpcGenerator::final_reads`).
    pub reads: Vec<Mop>,
    pub timeout: Duration,
    pub converge_timeout: Duration,
    pub fresh: Arc<AtomicU64>,
    /// Record `clock-reset` (clock faults were enabled).
    pub clocks: bool,
}

/// Heals everything; records what it healed (`faults::heal_all`, as in
/// a simulation).
pub async fn heal_all(ctx: &FinalCtx) {
    // The nemesis task aborted its clock strobes when it stopped.
    let mut strobes = Vec::new();
    let mut t = super::nemesis::LiveTarget {
        names: &ctx.names,
        router: &ctx.router,
        nodes: &ctx.nodes,
        recorder: &ctx.recorder,
        strobes: &mut strobes,
        clocks: ctx.clocks,
    };
    // The live recorder keeps its own write errors.
    let _ = crate::faults::heal_all(&mut t).await;
}

/// Reads every node, round after round, until they agree or the window
/// (`converge_timeout`) ends.
pub async fn final_reads(ctx: &FinalCtx) -> FinalReads {
    let n = ctx.names.len();
    let mut eps = Vec::with_capacity(n);
    for i in 0..n {
        eps.push(Endpoint::register(format!("cf{}", i + 1), ctx.router.clone()).await);
    }
    let mut processes: Vec<u64> = (0..n)
        .map(|_| ctx.fresh.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        .collect();
    let reads = &ctx.reads;
    let mut rounds = FinalRounds::new(
        ctx.names.clone(),
        Compare::Canonical(ctx.workload.kind()),
        ctx.recorder.now_ns(),
        ctx.converge_timeout.as_nanos() as u64,
    );
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
        let now = ctx.recorder.now_ns();
        let mut seen = Vec::with_capacity(n);
        for (i, (c, next)) in results.into_iter().enumerate() {
            processes[i] = next;
            seen.push(match c {
                Completion::Ok(ops) => Some(ops),
                _ => None,
            });
        }
        if rounds.round(now, &seen)
            || tokio::time::Instant::now() + Duration::from_millis(100) >= deadline
        {
            return rounds.into_reads();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs futures concurrently on this task, in order.
pub(crate) async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
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
