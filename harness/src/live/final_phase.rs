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
pub fn state(kind: KeyKind, ops: &[Mop]) -> Vec<ReadValue> {
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

/// What the final reads saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalReads {
    /// Harness time at which all nodes' final reads first agreed.
    pub converged_ns: Option<u64>,
    /// Harness time the final reads started (right after the heal).
    pub started_ns: u64,
    /// Rounds of reads (every node read every key once per round).
    pub rounds: u32,
    /// The window (`--converge-timeout`).
    pub window_ns: u64,
    /// The last time a node's state differed from its previous round, and
    /// which node(s): states were still changing then.
    pub last_change: Option<(u64, Vec<String>)>,
}

impl FinalReads {
    /// Seconds from the start of the final reads to agreement.
    pub fn time_to_converge_s(&self) -> Option<f64> {
        self.converged_ns
            .map(|t| t.saturating_sub(self.started_ns) as f64 / 1e9)
    }

    /// For a run that did not converge: whether states were still changing
    /// during the window, said for an anomaly's explanation.
    pub fn window_note(&self) -> Option<String> {
        if self.converged_ns.is_some() {
            return None;
        }
        let window = self.window_ns as f64 / 1e9;
        Some(match &self.last_change {
            Some((t, nodes)) => format!(
                "the final reads were still changing when the {window}s window \
                 (--converge-timeout) ended: the last change was seen on {} {:.1}s into \
                 the window; a longer --converge-timeout may let the nodes agree",
                nodes.join(", "),
                t.saturating_sub(self.started_ns) as f64 / 1e9
            ),
            None => format!(
                "no node's state changed during the {window}s final window (--converge-timeout) \
                 after the first round of final reads ({} rounds)",
                self.rounds
            ),
        })
    }
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
    let reads: Vec<Mop> = ctx
        .keys
        .iter()
        .map(|k| Mop::Read(k.clone(), ReadValue::Null))
        .collect();
    let mut out = FinalReads {
        started_ns: ctx.recorder.now_ns(),
        window_ns: ctx.converge_timeout.as_nanos() as u64,
        ..FinalReads::default()
    };
    let mut previous: Vec<Option<Vec<ReadValue>>> = vec![None; n];
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
        out.rounds += 1;
        let now = ctx.recorder.now_ns();
        let mut states = Vec::new();
        let mut changed = Vec::new();
        for (i, (c, next)) in results.into_iter().enumerate() {
            processes[i] = next;
            if let Completion::Ok(ops) = c {
                let st = state(ctx.workload.kind(), &ops);
                if previous[i].as_ref().is_some_and(|p| *p != st) {
                    changed.push(ctx.names[i].clone());
                }
                previous[i] = Some(st.clone());
                states.push(st);
            }
        }
        if !changed.is_empty() {
            out.last_change = Some((now, changed));
        }
        if states.len() == n && states.windows(2).all(|w| w[0] == w[1]) {
            out.converged_ns = Some(now);
            return out;
        }
        if tokio::time::Instant::now() + Duration::from_millis(100) >= deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs futures concurrently on this task, in order.
pub async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
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
