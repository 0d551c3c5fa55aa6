//! The live nemesis: the simulator's schedule ([`crate::nemesis::Nemesis`]:
//! which fault starts or stops when, on which nodes) played against real
//! processes on the wall clock. Every step is recorded in the history, with
//! the simulator's names and values, once it has taken effect.

use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::nodes::SharedNodes;
use super::recorder::Recorder;
use super::router::{Control, RouterIn};
use crate::faults::{self, FaultTarget};
use crate::nemesis::{FaultKind, NemesisConfig};
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

/// Runs the schedule until `stop` (`faults::play`). What is still in
/// force then is healed by the final phase (`heal_all` in the final
/// phase's module).
pub async fn run(ctx: NemesisCtx, seed: u64, stop: watch::Receiver<bool>) {
    let config = NemesisConfig {
        kinds: ctx.kinds.clone(),
        interval_ns: ctx.interval.as_nanos() as u64,
        shapes: ctx.shapes.clone(),
        clock_skew_ns: ctx.clock_skew_ns,
        loss: ctx.loss,
        dup: ctx.duplicate,
    };
    let mut strobes: Vec<JoinHandle<()>> = Vec::new();
    let mut t = LiveTarget {
        names: &ctx.names,
        router: &ctx.router,
        nodes: &ctx.nodes,
        recorder: &ctx.recorder,
        strobes: &mut strobes,
        clocks: ctx.kinds.contains(&FaultKind::Clock),
    };
    faults::play(&mut t, config, seed, stop).await;
    strobes.iter().for_each(JoinHandle::abort);
}

/// Live processes and the router as the nemesis applier's target
/// (`crate::faults`): faults take effect through signals, libfaketime
/// files and router controls; clock strobes run as tasks of their own.
pub struct LiveTarget<'a> {
    pub names: &'a [String],
    pub router: &'a mpsc::Sender<RouterIn>,
    pub nodes: &'a SharedNodes,
    pub recorder: &'a Recorder,
    pub strobes: &'a mut Vec<JoinHandle<()>>,
    /// Clock faults are enabled (nodes run under libfaketime).
    pub clocks: bool,
}

impl LiveTarget<'_> {
    async fn control(&self, c: Control) {
        let _ = self.router.send(RouterIn::Control(c)).await;
    }
}

impl FaultTarget for LiveTarget<'_> {
    fn names(&self) -> &[String] {
        self.names
    }

    fn record(&mut self, f: &str, value: Json) -> std::io::Result<()> {
        self.recorder.nemesis(f, value);
        Ok(())
    }

    fn clocks(&self) -> bool {
        self.clocks
    }

    async fn partition(&mut self, cut: Cut) {
        self.control(Control::Cut(cut)).await;
    }

    async fn heal(&mut self) {
        self.control(Control::Heal).await;
    }

    async fn heal_network(&mut self) {
        self.control(Control::HealAll).await;
    }

    async fn clock_bump(&mut self, bumps: &[(usize, i64)]) -> Vec<(usize, i64)> {
        let mut set = Vec::new();
        for &(i, off) in bumps {
            if set_offset(self.nodes, i, off).await {
                set.push((i, off));
            }
        }
        set
    }

    async fn clock_strobe(
        &mut self,
        nodes: &[usize],
        delta_ns: i64,
        period_ns: u64,
        duration_ns: u64,
    ) {
        // Back and forth between the node's true time and `delta_ns`
        // every period, ending on true time.
        let (shared, who) = (self.nodes.clone(), nodes.to_vec());
        let period = Duration::from_nanos(period_ns.max(1_000_000));
        let flips = duration_ns / period.as_nanos().max(1) as u64;
        self.strobes.retain(|h| !h.is_finished());
        self.strobes.push(tokio::spawn(async move {
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
    }

    async fn clock_reset(&mut self) {
        self.strobes.drain(..).for_each(|h| h.abort());
        for i in 0..self.names.len() {
            set_offset(self.nodes, i, 0).await;
        }
    }

    async fn crash(&mut self, idx: Vec<usize>) -> Vec<usize> {
        let mut nodes = self.nodes.lock().await;
        let mut down = Vec::new();
        for i in idx {
            if nodes.is_up(i) {
                nodes.crash(i).await;
                down.push(i);
            }
        }
        down
    }

    async fn restart(&mut self, idx: Vec<usize>) -> Vec<usize> {
        let mut nodes = self.nodes.lock().await;
        let mut back = Vec::new();
        for i in idx {
            if nodes.is_up(i) {
                continue;
            }
            match nodes.start(i).await {
                Ok(()) => back.push(i),
                Err(e) => tracing::warn!("cannot restart {}: {e:#}", self.names[i]),
            }
        }
        back
    }

    async fn pause(&mut self, idx: Vec<usize>) -> Vec<usize> {
        let mut nodes = self.nodes.lock().await;
        idx.into_iter()
            .filter(|&i| nodes.is_up(i) && nodes.pause(i).is_ok())
            .collect()
    }

    async fn resume(&mut self, idx: Vec<usize>) -> Vec<usize> {
        let mut nodes = self.nodes.lock().await;
        idx.into_iter()
            .filter(|&i| nodes.is_paused(i) && nodes.resume(i).is_ok())
            .collect()
    }

    async fn set_loss(&mut self, p: f64) {
        self.control(Control::Loss(p)).await;
    }

    async fn set_duplicate(&mut self, p: f64) {
        self.control(Control::Duplicate(p)).await;
    }

    async fn clog(&mut self, node: usize) {
        self.control(Control::Clog(node)).await;
    }

    async fn unclog(&mut self, node: usize) {
        self.control(Control::Unclog(node)).await;
    }

    async fn down(&mut self) -> Vec<usize> {
        let nodes = self.nodes.lock().await;
        (0..nodes.len()).filter(|&i| !nodes.is_up(i)).collect()
    }

    async fn paused(&mut self) -> Vec<usize> {
        let nodes = self.nodes.lock().await;
        (0..nodes.len()).filter(|&i| nodes.is_paused(i)).collect()
    }

    async fn busiest(&mut self) -> usize {
        let (tx, rx) = oneshot::channel();
        self.control(Control::Busiest(tx)).await;
        rx.await.unwrap_or(0)
    }
}

/// Sets node `i`'s libfaketime offset; `false` when it has none (no clock
/// faults configured) or the file cannot be written.
async fn set_offset(nodes: &SharedNodes, i: usize, offset_ns: i64) -> bool {
    let nodes = nodes.lock().await;
    nodes
        .faketime(i)
        .is_some_and(|ft| ft.set_offset_ns(offset_ns).is_ok())
}
