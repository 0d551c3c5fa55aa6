//! The live nemesis: each enabled fault alternates between injected and
//! healed every `interval`, the faults staggered across the interval like
//! Jepsen's combined nemesis. Every change is recorded in the history when
//! it has taken effect.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, oneshot, watch};

use super::nodes::SharedNodes;
use super::recorder::Recorder;
use super::router::{Control, RouterIn};
use crate::net::{Cut, Shape};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Partition,
    Clock,
    Crash,
    Pause,
    Loss,
    Dup,
    Clog,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Partition,
        Fault::Clock,
        Fault::Crash,
        Fault::Pause,
        Fault::Loss,
        Fault::Dup,
        Fault::Clog,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Clock => "clock",
            Fault::Crash => "crash",
            Fault::Pause => "pause",
            Fault::Loss => "loss",
            Fault::Dup => "dup",
            Fault::Clog => "clog",
        }
    }
    /// Parses `--nemesis`: a comma-separated list, or `none`.
    pub fn parse_list(s: &str) -> Result<Vec<Fault>, String> {
        if s.trim() == "none" || s.trim().is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<Fault> = s
            .split(',')
            .map(|p| p.trim().parse())
            .collect::<Result<_, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            format!("unknown nemesis fault {s:?}: expected a comma-separated list of partition, clock, crash, pause, loss, dup, clog, or none")
        })
    }
}

/// Everything a nemesis task needs.
#[derive(Clone)]
pub struct NemesisCtx {
    pub names: Vec<String>,
    pub router: mpsc::Sender<RouterIn>,
    pub nodes: SharedNodes,
    pub recorder: Recorder,
    pub interval: Duration,
    pub shapes: Vec<Shape>,
    pub max_skew_ns: i64,
    pub loss: f64,
    pub duplicate: f64,
}

/// Sleeps for `d`; `false` if told to stop first.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Runs fault `fault` (the `k`-th of `of` enabled faults) until `stop`.
pub async fn run_fault(
    fault: Fault,
    k: usize,
    of: usize,
    ctx: NemesisCtx,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x6e656d ^ k as u64));
    let offset = ctx.interval.mul_f64(k as f64 / of.max(1) as f64);
    if !sleep_or_stop(ctx.interval / 2 + offset, &mut stop).await {
        return;
    }
    loop {
        let undo = inject(fault, &ctx, &mut rng).await;
        let keep_going = sleep_or_stop(ctx.interval, &mut stop).await;
        heal(fault, &ctx, undo).await;
        if !keep_going || !sleep_or_stop(ctx.interval, &mut stop).await {
            return;
        }
    }
}

/// What to undo: the nodes a fault touched.
type Undo = Vec<usize>;

fn names(ctx: &NemesisCtx, idx: &[usize]) -> Json {
    json!(idx
        .iter()
        .map(|&i| ctx.names[i].clone())
        .collect::<Vec<_>>())
}

/// The history event for a cut: `partition` with groups when it is a
/// grouping, `partition-links` listing the cut links otherwise.
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
            json!(cut
                .blocked
                .iter()
                .map(|&(a, b)| [names[a].clone(), names[b].clone()])
                .collect::<Vec<_>>()),
        ),
    }
}

async fn inject(fault: Fault, ctx: &NemesisCtx, rng: &mut ChaCha8Rng) -> Undo {
    let n = ctx.names.len();
    let one = rng.random_range(0..n);
    match fault {
        Fault::Partition => {
            let shape = ctx.shapes.choose(rng).cloned().unwrap_or(Shape::Halves);
            let (tx, rx) = oneshot::channel();
            let _ = ctx
                .router
                .send(RouterIn::Control(Control::Partition(shape, tx)))
                .await;
            if let Ok(cut) = rx.await {
                let (f, v) = cut_event(&ctx.names, &cut);
                ctx.recorder.nemesis(f, v);
            }
            vec![]
        }
        Fault::Clock => {
            let nodes = ctx.nodes.lock().await;
            let mut skew = BTreeMap::new();
            for i in 0..n {
                if i == one || rng.random_bool(0.5) {
                    let off = rng.random_range(-ctx.max_skew_ns..=ctx.max_skew_ns);
                    if let Some(ft) = nodes.faketime(i) {
                        if ft.set_offset_ns(off).is_ok() {
                            skew.insert(ctx.names[i].clone(), json!(off));
                        }
                    }
                }
            }
            if !skew.is_empty() {
                ctx.recorder.nemesis("clock-skew", json!(skew));
            }
            vec![]
        }
        Fault::Crash => {
            let mut nodes = ctx.nodes.lock().await;
            if !nodes.is_up(one) {
                return vec![];
            }
            nodes.crash(one).await;
            ctx.recorder.nemesis("crash", names(ctx, &[one]));
            vec![one]
        }
        Fault::Pause => {
            let mut nodes = ctx.nodes.lock().await;
            if !nodes.is_up(one) || nodes.pause(one).is_err() {
                return vec![];
            }
            ctx.recorder.nemesis("pause", names(ctx, &[one]));
            vec![one]
        }
        Fault::Loss => {
            let _ = ctx
                .router
                .send(RouterIn::Control(Control::Loss(ctx.loss)))
                .await;
            ctx.recorder.nemesis("loss", json!(ctx.loss));
            vec![]
        }
        Fault::Dup => {
            let _ = ctx
                .router
                .send(RouterIn::Control(Control::Duplicate(ctx.duplicate)))
                .await;
            ctx.recorder.nemesis("duplicate", json!(ctx.duplicate));
            vec![]
        }
        Fault::Clog => {
            let _ = ctx.router.send(RouterIn::Control(Control::Clog(one))).await;
            ctx.recorder.nemesis("clog", names(ctx, &[one]));
            vec![one]
        }
    }
}

async fn heal(fault: Fault, ctx: &NemesisCtx, undo: Undo) {
    match fault {
        Fault::Partition => {
            let _ = ctx.router.send(RouterIn::Control(Control::Heal)).await;
            ctx.recorder.nemesis("heal", Json::Null);
        }
        Fault::Clock => {
            let nodes = ctx.nodes.lock().await;
            for i in 0..ctx.names.len() {
                if let Some(ft) = nodes.faketime(i) {
                    let _ = ft.set_offset_ns(0);
                }
            }
            ctx.recorder.nemesis("clock-reset", Json::Null);
        }
        Fault::Crash => {
            let mut nodes = ctx.nodes.lock().await;
            let mut back = Vec::new();
            for i in undo {
                if !nodes.is_up(i) && nodes.start(i).await.is_ok() {
                    back.push(i);
                }
            }
            if !back.is_empty() {
                ctx.recorder.nemesis("restart", names(ctx, &back));
            }
        }
        Fault::Pause => {
            let mut nodes = ctx.nodes.lock().await;
            for &i in &undo {
                let _ = nodes.resume(i);
            }
            ctx.recorder.nemesis("resume", names(ctx, &undo));
        }
        Fault::Loss => {
            let _ = ctx.router.send(RouterIn::Control(Control::Loss(0.0))).await;
            ctx.recorder.nemesis("loss", json!(0.0));
        }
        Fault::Dup => {
            let _ = ctx
                .router
                .send(RouterIn::Control(Control::Duplicate(0.0)))
                .await;
            ctx.recorder.nemesis("duplicate", json!(0.0));
        }
        Fault::Clog => {
            for &i in &undo {
                let _ = ctx.router.send(RouterIn::Control(Control::Unclog(i))).await;
            }
            ctx.recorder.nemesis("unclog", names(ctx, &undo));
        }
    }
}
