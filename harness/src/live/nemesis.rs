//! The live nemesis: the simulator's schedule ([`crate::nemesis::Nemesis`]:
//! which fault starts or stops when, on which nodes) played against real
//! processes on the wall clock. Every step is recorded in the history, with
//! the simulator's names and values, once it has taken effect.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::nodes::SharedNodes;
use super::recorder::Recorder;
use super::router::{Control, RouterIn};
use crate::nemesis::{Action, FaultKind, Nemesis, NemesisConfig};
use crate::net::{Cut, Shape};

/// Everything the nemesis task needs.
#[derive(Clone)]
pub struct NemesisCtx {
    pub names: Vec<String>,
    pub router: mpsc::Sender<RouterIn>,
    pub nodes: SharedNodes,
    pub recorder: Recorder,
    pub kinds: Vec<FaultKind>,
    pub interval: Duration,
    pub shapes: Vec<Shape>,
    /// Clock offsets are drawn from `-bound..=bound`.
    pub clock_skew_ns: u64,
    pub loss: f64,
    pub duplicate: f64,
}

/// Sleeps until `t`; `false` if told to stop first.
async fn sleep_until_or_stop(t: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(t) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Runs the schedule until `stop`. What is still in force then is healed by
/// the final phase ([`super::final_phase::heal_all`]).
pub async fn run(ctx: NemesisCtx, seed: u64, mut stop: watch::Receiver<bool>) {
    let mut schedule = Nemesis::new(NemesisConfig {
        kinds: ctx.kinds.clone(),
        interval_ns: ctx.interval.as_nanos() as u64,
        shapes: ctx.shapes.clone(),
        clock_skew_ns: ctx.clock_skew_ns,
        loss: ctx.loss,
        dup: ctx.duplicate,
    });
    if schedule.is_empty() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e656d);
    let mut strobes: Vec<JoinHandle<()>> = Vec::new();
    let mut next = Instant::now();
    'schedule: loop {
        next += Duration::from_nanos(schedule.next_delay(&mut rng));
        if !sleep_until_or_stop(next, &mut stop).await {
            break;
        }
        let step_start = Instant::now();
        let busiest = busiest(&ctx).await;
        for (offset, action) in schedule.step(ctx.names.len(), busiest, &mut rng) {
            if !sleep_until_or_stop(step_start + Duration::from_nanos(offset), &mut stop).await {
                break 'schedule;
            }
            apply(&ctx, action, &mut strobes).await;
        }
    }
    strobes.iter().for_each(JoinHandle::abort);
}

/// The node that has sent the most messages (the `hub` shape cuts it off).
async fn busiest(ctx: &NemesisCtx) -> usize {
    let (tx, rx) = oneshot::channel();
    let _ = ctx
        .router
        .send(RouterIn::Control(Control::Busiest(tx)))
        .await;
    rx.await.unwrap_or(0)
}

fn names(ctx: &NemesisCtx, idx: &[usize]) -> Json {
    json!(idx
        .iter()
        .map(|&i| ctx.names[i].clone())
        .collect::<Vec<_>>())
}

/// The history event for a cut, as the simulator records it: `partition`
/// with groups when it is a grouping, `partition-links` with the cut links
/// otherwise.
pub fn cut_event(names: &[String], cut: &Cut) -> (&'static str, Json) {
    match &cut.groups {
        Some(gs) => (
            "partition",
            json!(gs
                .iter()
                .map(|g| g.iter().map(|&i| names[i].clone()).collect::<Vec<_>>())
                .collect::<Vec<_>>()),
        ),
        None => (
            "partition-links",
            json!({"cut": cut
                .blocked
                .iter()
                .map(|&(a, b)| [names[a].clone(), names[b].clone()])
                .collect::<Vec<_>>()}),
        ),
    }
}

async fn control(ctx: &NemesisCtx, c: Control) {
    let _ = ctx.router.send(RouterIn::Control(c)).await;
}

/// Sets node `i`'s libfaketime offset; `false` when it has none (no clock
/// faults configured) or the file cannot be written.
async fn set_offset(nodes: &SharedNodes, i: usize, offset_ns: i64) -> bool {
    let nodes = nodes.lock().await;
    nodes
        .faketime(i)
        .is_some_and(|ft| ft.set_offset_ns(offset_ns).is_ok())
}

/// Applies one step of the schedule to the processes and the router.
async fn apply(ctx: &NemesisCtx, action: Action, strobes: &mut Vec<JoinHandle<()>>) {
    let rec = &ctx.recorder;
    match action {
        Action::Partition(cut) => {
            let (f, v) = cut_event(&ctx.names, &cut);
            control(ctx, Control::Cut(cut)).await;
            rec.nemesis(f, v);
        }
        Action::Heal => {
            control(ctx, Control::Heal).await;
            rec.nemesis("heal", Json::Null);
        }
        Action::ClockBump(bumps) => {
            let mut skew = BTreeMap::new();
            for (i, off) in bumps {
                if set_offset(&ctx.nodes, i, off).await {
                    skew.insert(ctx.names[i].clone(), json!(off));
                }
            }
            if !skew.is_empty() {
                rec.nemesis("clock-skew", json!(skew));
            }
        }
        Action::ClockStrobe {
            nodes,
            delta_ns,
            period_ns,
            duration_ns,
        } => {
            // Back and forth between the node's true time and `delta_ns`
            // every period, ending on true time.
            let (shared, who) = (ctx.nodes.clone(), nodes.clone());
            let period = Duration::from_nanos(period_ns.max(1_000_000));
            let flips = duration_ns / period.as_nanos().max(1) as u64;
            strobes.retain(|h| !h.is_finished());
            strobes.push(tokio::spawn(async move {
                for k in 0..flips {
                    let off = if k % 2 == 0 { delta_ns } else { 0 };
                    for &i in &who {
                        set_offset(&shared, i, off).await;
                    }
                    tokio::time::sleep(period).await;
                }
                for &i in &who {
                    set_offset(&shared, i, 0).await;
                }
            }));
            let delta: BTreeMap<String, Json> = nodes
                .iter()
                .map(|&i| (ctx.names[i].clone(), json!(delta_ns)))
                .collect();
            rec.nemesis(
                "clock-strobe",
                json!({"delta": delta, "period_ns": period_ns, "duration_ns": duration_ns}),
            );
        }
        Action::ClockReset => {
            strobes.drain(..).for_each(|h| h.abort());
            for i in 0..ctx.names.len() {
                set_offset(&ctx.nodes, i, 0).await;
            }
            rec.nemesis("clock-reset", Json::Null);
        }
        Action::Crash(idx) => {
            let mut nodes = ctx.nodes.lock().await;
            let mut down = Vec::new();
            for i in idx {
                if nodes.is_up(i) {
                    nodes.crash(i).await;
                    down.push(i);
                }
            }
            if !down.is_empty() {
                rec.nemesis("crash", names(ctx, &down));
            }
        }
        Action::Restart(idx) => {
            let mut nodes = ctx.nodes.lock().await;
            let mut back = Vec::new();
            for i in idx {
                if !nodes.is_up(i) && nodes.start(i).await.is_ok() {
                    back.push(i);
                }
            }
            if !back.is_empty() {
                rec.nemesis("restart", names(ctx, &back));
            }
        }
        Action::Pause(idx) => {
            let mut nodes = ctx.nodes.lock().await;
            let paused: Vec<usize> = idx
                .into_iter()
                .filter(|&i| nodes.is_up(i) && nodes.pause(i).is_ok())
                .collect();
            if !paused.is_empty() {
                rec.nemesis("pause", names(ctx, &paused));
            }
        }
        Action::Resume(idx) => {
            let mut nodes = ctx.nodes.lock().await;
            let resumed: Vec<usize> = idx
                .into_iter()
                .filter(|&i| nodes.is_paused(i) && nodes.resume(i).is_ok())
                .collect();
            if !resumed.is_empty() {
                rec.nemesis("resume", names(ctx, &resumed));
            }
        }
        Action::Loss(p) => {
            control(ctx, Control::Loss(p)).await;
            rec.nemesis("loss", json!({ "p": p }));
        }
        Action::LossStop => {
            control(ctx, Control::Loss(0.0)).await;
            rec.nemesis("loss-stop", Json::Null);
        }
        Action::Dup(p) => {
            control(ctx, Control::Duplicate(p)).await;
            rec.nemesis("duplicate", json!({ "p": p }));
        }
        Action::DupStop => {
            control(ctx, Control::Duplicate(0.0)).await;
            rec.nemesis("duplicate-stop", Json::Null);
        }
        Action::Clog(i) => {
            control(ctx, Control::Clog(i)).await;
            rec.nemesis("clog", names(ctx, &[i]));
        }
        Action::Unclog(i) => {
            control(ctx, Control::Unclog(i)).await;
            rec.nemesis("unclog", names(ctx, &[i]));
        }
    }
}
