//! The reference multi-leader store: leaders with followers, a replication
//! log that never loops, mesh/ring/star topologies, anti-entropy, every
//! conflict strategy, causal delivery, and known-bug variants. See
//! `docs/reference-systems.md`.

pub mod bugs;
pub mod causal;
pub mod config;
pub mod log;
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

    /// `--read-from`: a client of leader `n1` reads from `n1`, from one of
    /// `n1`'s followers, or from any of them; a client of a follower always
    /// reads there.
    fn read_target(&self, node: NodeId, rng: &mut ChaCha8Rng) -> NodeId {
        if !self.cfg.is_leader(node) {
            return node;
        }
        let followers = self.cfg.followers_of(node);
        match self.cfg.read_from {
            ReadFrom::Leader => node,
            _ if followers.is_empty() => node,
            ReadFrom::Follower => followers[rng.random_range(0..followers.len())],
            ReadFrom::Any => {
                let i = rng.random_range(0..=followers.len());
                if i == followers.len() {
                    node
                } else {
                    followers[i]
                }
            }
        }
    }
}
#[cfg(test)]
mod tests;
