//! Faults on a real database: the servers and their link proxies as the
//! nemesis applier's target ([`DbTarget`] implements
//! [`crate::faults::FaultTarget`]). The schedule, the recording and the
//! final heal are the shared ones (`crate::faults::{play, apply,
//! heal_all}`); only how a fault takes effect is here.
//!
//! | fault | how |
//! |---|---|
//! | partition | `--network netns`: nftables rules in the cut nodes' namespaces drop the peers' packets; `--network proxy`: the link proxies of the cut directed links hold or drop (`--partition-mode`) |
//! | clock | libfaketime's timestamp file of the node rewritten ([`Database::set_clock`]) |
//! | crash | SIGKILL to the server's processes; restart on the same data directory |
//! | pause | SIGSTOP, then SIGCONT |
//!
//! Loss, duplication and clogs are refused when the options are resolved
//! (`db_run::resolve`): the links are TCP streams.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ladon_adapters::db::netns::Network;
use ladon_adapters::db::proxy::{Cut as ProxyCut, LinkProxy};
use ladon_adapters::db::Database;
use serde_json::Value as Json;
use tokio::task::JoinHandle;

use crate::faults::FaultTarget;
use crate::live::recorder::Recorder;
use crate::net::{Cut, PartitionMode};

/// The cluster, shared by clients, faults and the final phase.
pub type SharedDb = Arc<Mutex<Box<dyn Database>>>;

/// Runs `f` on the database from async code (its calls block: starting a
/// server waits until it is ready).
pub fn with_db<T>(db: &SharedDb, f: impl FnOnce(&mut dyn Database) -> T) -> T {
    tokio::task::block_in_place(|| {
        let mut g = db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut **g)
    })
}

/// How the nodes are linked: the link proxies, by directed link
/// `(from, to)` (node `to`'s subscription to node `from` goes through
/// `(from, to)`), or the network namespaces (no proxies).
pub struct Links {
    pub proxies: BTreeMap<(usize, usize), LinkProxy>,
    pub network: Option<Arc<Network>>,
    /// `--hosts`: the partitions are nftables rules on the hosts.
    pub hosts: Option<Arc<crate::hosts::PreparedDb>>,
    pub mode: PartitionMode,
}

impl Links {
    /// Cuts exactly the links in `blocked` (healing the others).
    pub fn cut(&self, blocked: &BTreeSet<(usize, usize)>) {
        if let Some(net) = &self.network {
            if let Err(e) = net.cut(blocked) {
                tracing::error!("partition not made: {e}");
            }
        }
        if let Some(p) = self.hosts.as_ref().and_then(|h| h.partitions.as_ref()) {
            if let Err(e) = p.cut(blocked) {
                tracing::error!("partition not made: {e}");
            }
        }
        let how = match self.mode {
            PartitionMode::Drop => ProxyCut::Drop,
            PartitionMode::Hold => ProxyCut::Hold,
        };
        for (link, p) in &self.proxies {
            if blocked.contains(link) {
                p.cut(how);
            } else {
                p.heal();
            }
        }
    }

    pub fn heal_all(&self) {
        if let Some(net) = &self.network {
            if let Err(e) = net.heal() {
                tracing::error!("partition not healed: {e}");
            }
        }
        if let Some(p) = self.hosts.as_ref().and_then(|h| h.partitions.as_ref()) {
            if let Err(e) = p.heal() {
                tracing::error!("partition not healed: {e}");
            }
        }
        for p in self.proxies.values() {
            p.heal();
        }
    }
}

/// A database's servers and link proxies as a fault target.
pub struct DbTarget {
    pub names: Vec<String>,
    pub db: SharedDb,
    pub links: Arc<Links>,
    pub recorder: Recorder,
    /// Clock faults are enabled (servers run under libfaketime).
    pub clocks: bool,
    /// Nodes paused now (SIGSTOP sent, no SIGCONT yet).
    pub paused: Vec<bool>,
    /// Running clock strobes.
    pub strobes: Vec<JoinHandle<()>>,
}

impl DbTarget {
    pub fn new(names: Vec<String>, db: SharedDb, links: Arc<Links>, recorder: Recorder) -> Self {
        let n = names.len();
        DbTarget {
            names,
            db,
            links,
            recorder,
            clocks: false,
            paused: vec![false; n],
            strobes: Vec::new(),
        }
    }

    /// Stops the clock strobes still running.
    pub fn stop_strobes(&mut self) {
        self.strobes.drain(..).for_each(|h| h.abort());
    }
}

impl Drop for DbTarget {
    fn drop(&mut self) {
        self.stop_strobes();
    }
}

/// Sets node `i`'s clock; `false` (and a warning) when it cannot.
fn set_clock(db: &SharedDb, i: usize, off: i64) -> bool {
    let g = db.lock().unwrap_or_else(|p| p.into_inner());
    match g.set_clock(i, off) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("clock fault: {e}");
            false
        }
    }
}

impl FaultTarget for DbTarget {
    fn names(&self) -> &[String] {
        &self.names
    }

    fn record(&mut self, f: &str, value: Json) -> std::io::Result<()> {
        // The live recorder keeps its own write errors.
        self.recorder.nemesis(f, value);
        Ok(())
    }

    fn clocks(&self) -> bool {
        self.clocks
    }

    async fn partition(&mut self, cut: Cut) {
        self.links.cut(&cut.blocked);
        with_db(&self.db, |d| d.partitioned(&cut.blocked));
    }

    async fn heal(&mut self) {
        self.links.heal_all();
        with_db(&self.db, |d| d.partitioned(&BTreeSet::new()));
    }

    async fn heal_network(&mut self) {
        self.links.heal_all();
        with_db(&self.db, |d| d.partitioned(&BTreeSet::new()));
    }

    async fn clock_bump(&mut self, bumps: &[(usize, i64)]) -> Vec<(usize, i64)> {
        bumps
            .iter()
            .copied()
            .filter(|&(i, off)| set_clock(&self.db, i, off))
            .collect()
    }

    async fn clock_strobe(
        &mut self,
        nodes: &[usize],
        delta_ns: i64,
        period_ns: u64,
        duration_ns: u64,
    ) {
        // Back and forth between true time and `delta_ns` every period,
        // ending on true time.
        let (db, who) = (self.db.clone(), nodes.to_vec());
        let period = Duration::from_nanos(period_ns.max(1_000_000));
        let flips = duration_ns / period.as_nanos().max(1) as u64;
        self.strobes.retain(|h| !h.is_finished());
        self.strobes.push(tokio::spawn(async move {
            for k in 0..flips {
                let off = if k % 2 == 0 { delta_ns } else { 0 };
                for &i in &who {
                    set_clock(&db, i, off);
                }
                tokio::time::sleep(period).await;
            }
            for &i in &who {
                set_clock(&db, i, 0);
            }
        }));
    }

    async fn clock_reset(&mut self) {
        self.stop_strobes();
        for i in 0..self.names.len() {
            set_clock(&self.db, i, 0);
        }
    }

    async fn crash(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        let down: Vec<usize> = with_db(&self.db, |db| {
            nodes
                .into_iter()
                .filter(|&i| db.is_up(i) && db.kill(i).is_ok())
                .collect()
        });
        for &i in &down {
            self.paused[i] = false;
        }
        down
    }

    async fn restart(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        let names = &self.names;
        with_db(&self.db, |db| {
            nodes
                .into_iter()
                .filter(|&i| {
                    !db.is_up(i)
                        && match db.restart(i) {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!("cannot restart {}: {e}", names[i]);
                                false
                            }
                        }
                })
                .collect()
        })
    }

    async fn pause(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        let paused = &self.paused;
        let now: Vec<usize> = with_db(&self.db, |db| {
            nodes
                .into_iter()
                .filter(|&i| db.is_up(i) && !paused[i] && db.pause(i).is_ok())
                .collect()
        });
        for &i in &now {
            self.paused[i] = true;
        }
        now
    }

    async fn resume(&mut self, nodes: Vec<usize>) -> Vec<usize> {
        let paused = &self.paused;
        let now: Vec<usize> = with_db(&self.db, |db| {
            nodes
                .into_iter()
                .filter(|&i| paused[i] && db.resume(i).is_ok())
                .collect()
        });
        for &i in &now {
            self.paused[i] = false;
        }
        now
    }

    // Refused when the options are resolved: TCP links neither lose nor
    // duplicate messages, and a clog is not a fault of theirs.
    async fn set_loss(&mut self, _p: f64) {}
    async fn set_duplicate(&mut self, _p: f64) {}
    async fn clog(&mut self, _node: usize) {}
    async fn unclog(&mut self, _node: usize) {}

    async fn down(&mut self) -> Vec<usize> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        (0..self.names.len()).filter(|&i| !db.is_up(i)).collect()
    }

    async fn paused(&mut self) -> Vec<usize> {
        (0..self.paused.len()).filter(|&i| self.paused[i]).collect()
    }
}
