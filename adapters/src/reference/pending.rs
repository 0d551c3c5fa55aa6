//! What a node holds while a request waits: where its answer goes, a
//! transaction waiting for its client's causal past, a quorum read waiting
//! for its majority. Below the replica (`replica.rs`), its quorum rounds and
//! the quorum rule (`strategy/quorum.rs`), which all name them.

use ladon_checker::history::Mop;

use super::causal::ClientContext;
use crate::node::{NodeId, ReqId};

/// Where an answer goes: a client of this node, or a peer that forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    Client(ReqId),
    Peer(NodeId, u64),
}

/// A transaction waiting for its client's causal past to arrive.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub reply_to: ReplyTo,
    pub ops: Vec<Mop>,
    pub context: ClientContext,
}

/// A read waiting for its majority.
#[derive(Debug, Clone)]
pub struct PendingRead {
    pub reply_to: ReplyTo,
    pub ops: Vec<Mop>,
    pub context: ClientContext,
    pub yes: usize,
}
