//! The version types merging compares — client vector clocks, last-write-wins
//! versions, the tie-break rules — and what a read saw. They sit below both
//! the store (`store.rs`) and the merge strategies (`strategy/`).

use std::collections::BTreeMap;

use ladon_checker::history::ReadValue;

use crate::node::NodeId;

/// A client-level vector clock: client id → number of write transactions of
/// that client in the causal past (session and reads-from edges).
pub type Vc = BTreeMap<u64, u64>;

/// A version of a key under last-write-wins: timestamp, then tie-break rank
/// (higher wins), then origin, then the origin's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub ts: u64,
    pub rank: u32,
    pub origin: NodeId,
    /// The writing entry's sequence number: two transactions of one node in
    /// one clock tick still order the same way everywhere.
    pub seq: u64,
}

/// What a read of one key saw.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub value: ReadValue,
    /// Client clocks of the writes observed (reads-from edges).
    pub vcs: Vec<Vc>,
    /// Timestamp of the version read, where the strategy has one.
    pub ts: Option<u64>,
    /// Quorum version number read.
    pub number: Option<u64>,
}

/// How a node resolves ties when merging.
#[derive(Debug, Clone, Copy)]
pub struct MergeRules {
    pub local: NodeId,
    /// The `tiebreak-self` bug.
    pub prefer_own_on_tie: bool,
    /// Scratch copy of a running transaction: its own second write of a key
    /// carries the same version and must replace the first.
    pub same_txn: bool,
}
