//! The reference multi-leader store: leaders with followers, a replication
//! log that never loops, mesh/ring/star topologies, anti-entropy, every
//! conflict strategy, causal delivery, and known-bug variants. See
//! `docs/reference-systems.md`.

pub mod bugs;
pub mod causal;
pub mod config;
pub mod log;
mod quorum_read;
mod quorum_round;
pub mod replica;
pub mod store;
pub mod strategy;
pub mod topology;
mod txn;

use std::sync::Arc;

pub use bugs::Bug;
pub use config::{Config, ConfigError, ReadFrom, Strategy, Topology};
pub use replica::{Msg, Record, RefNode};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::node::{Cluster, NodeId, NodeSpec};

/// A configured reference cluster: lays out the nodes and builds them.
#[derive(Debug, Clone)]
pub struct ReferenceCluster {
    cfg: Arc<Config>,
}

impl ReferenceCluster {
    pub fn new(cfg: Config) -> Result<ReferenceCluster, ConfigError> {
        cfg.validate()?;
        Ok(ReferenceCluster { cfg: Arc::new(cfg) })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
}

impl Cluster for ReferenceCluster {
    type Node = RefNode;

    fn specs(&self) -> Vec<NodeSpec> {
        self.cfg.specs()
    }

    fn build(&self, id: NodeId, records: &[Record]) -> RefNode {
        RefNode::new(self.cfg.clone(), id, records)
    }

    fn guarantees(&self) -> Vec<String> {
        self.cfg.guarantees()
    }

    /// `--read-from`: a client attached to leader `n1` or to one of its
    /// followers reads from `n1` (`leader`), from one of `n1`'s followers
    /// (`follower`: its own if it has one) or from any of them (`any`).
    fn read_target(&self, node: NodeId, rng: &mut ChaCha8Rng) -> NodeId {
        let leader = self.cfg.leader_of(node);
        let followers = self.cfg.followers_of(leader);
        match self.cfg.read_from {
            ReadFrom::Leader => leader,
            _ if followers.is_empty() => leader,
            ReadFrom::Follower if node != leader => node,
            ReadFrom::Follower => followers[rng.random_range(0..followers.len())],
            ReadFrom::Any => {
                let i = rng.random_range(0..=followers.len());
                followers.get(i).copied().unwrap_or(leader)
            }
        }
    }
}
#[cfg(test)]
mod tests;
