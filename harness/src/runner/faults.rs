//! The simulated world as the nemesis applier's target
//! (`crate::faults`): every fault takes effect at once, in virtual time.

use ladon_adapters::node::Cluster;
use serde_json::Value as Json;

use super::record::Recorder;
use super::tick::Tick;
use crate::faults::{self, FaultTarget};
use crate::nemesis::Action;
use crate::net::Cut;
use crate::sim::{NodeStatus, World};

/// The world, the recorder, and each node's clock drift (restored after
/// a clock reset).
struct SimTarget<'a, 'w, 'h, C: Cluster> {
    world: &'a mut World<'w, C, Tick>,
    rec: &'a mut Recorder<'h>,
    drifts: &'a [i64],
}

impl<C: Cluster> SimTarget<'_, '_, '_, C> {
    fn with_status(&self, status: NodeStatus) -> Vec<usize> {
        (0..self.drifts.len())
            .filter(|&i| self.world.status(i) == status)
            .collect()
    }
}

impl<C: Cluster> FaultTarget for SimTarget<'_, '_, '_, C> {
    fn names(&self) -> &[String] {
        &self.rec.names
    }

    fn record(&mut self, f: &str, value: Json) -> std::io::Result<()> {
        self.rec.nemesis(self.world.now(), f, value)
    }

    fn clocks(&self) -> bool {
        // Drift is set from the start, whatever the faults.
        true
    }

    async fn partition(&mut self, cut: Cut) {
        self.world.partition(cut);
    }

    async fn heal(&mut self) {
        self.world.heal();
    }

    async fn heal_network(&mut self) {
        self.world.heal_network();
    }

    async fn clock_bump(&mut self, bumps: &[(usize, i64)]) -> Vec<(usize, i64)> {
        for &(node, off) in bumps {
            self.world.clocks_mut().set_offset(node, off);
        }
        // Every node's offset, bumped or not.
        let now = self.world.now();
        self.world
            .clocks()
            .offsets(now)
            .into_iter()
            .enumerate()
            .collect()
    }

    async fn clock_strobe(
        &mut self,
        nodes: &[usize],
        delta_ns: i64,
        period_ns: u64,
        duration_ns: u64,
    ) {
        let now = self.world.now();
        for &node in nodes {
            self.world
                .clocks_mut()
                .strobe(node, now, delta_ns, period_ns, duration_ns);
        }
    }

    async fn clock_reset(&mut self) {
        let now = self.world.now();
        self.world.clocks_mut().reset(now);
        for (i, &d) in self.drifts.iter().enumerate() {
            if d != 0 {
                self.world.clocks_mut().set_drift(i, now, d);
            }
        }
    }

    async fn crash(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        nodes.iter().for_each(|&i| self.world.crash(i));
        nodes
    }

    async fn restart(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        nodes.iter().for_each(|&i| self.world.restart(i));
        nodes
    }

    async fn pause(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        nodes.iter().for_each(|&i| self.world.pause(i));
        nodes
    }

    async fn resume(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        nodes.iter().for_each(|&i| self.world.resume(i));
        nodes
    }

    async fn set_loss(&mut self, p: f64) {
        self.world.set_loss(p);
    }

    async fn set_duplicate(&mut self, p: f64) {
        self.world.set_duplicate(p);
    }

    async fn clog(&mut self, node: usize) {
        self.world.clog(node);
    }

    async fn unclog(&mut self, node: usize) {
        self.world.unclog(node);
    }

    async fn down(&mut self) -> Vec<usize> {
        self.with_status(NodeStatus::Crashed)
    }

    async fn paused(&mut self) -> Vec<usize> {
        self.with_status(NodeStatus::Paused)
    }
}

/// Applies one fault to the world and records it in the history.
pub(super) fn apply_fault<C: Cluster>(
    world: &mut World<'_, C, Tick>,
    rec: &mut Recorder,
    action: Action,
    drifts: &[i64],
) -> anyhow::Result<()> {
    let mut t = SimTarget { world, rec, drifts };
    Ok(faults::ready(faults::apply(&mut t, action))?)
}

/// The end of the faulty phase: everything healed (see `faults::heal_all`).
pub(super) fn heal_all<C: Cluster>(
    world: &mut World<'_, C, Tick>,
    rec: &mut Recorder,
    drifts: &[i64],
) -> anyhow::Result<()> {
    let mut t = SimTarget { world, rec, drifts };
    Ok(faults::ready(faults::heal_all(&mut t))?)
}
