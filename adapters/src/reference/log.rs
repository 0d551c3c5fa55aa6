//! The replication log: entries tagged with their origin, a per-origin
//! sequence number and the set of nodes they passed through; dedupe by
//! (origin, seq); per-origin high-water marks for anti-entropy; and the causal
//! buffer that holds an entry until the entries it depends on are applied.

use std::collections::{BTreeMap, BTreeSet};

use super::store::Effect;
use crate::node::NodeId;

/// Per-origin high-water marks: every sequence number up to the mark applied.
pub type Marks = BTreeMap<NodeId, u64>;

/// A quorum proposal's id: its coordinator and the coordinator's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid {
    pub node: NodeId,
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// The effects of one client transaction, applied atomically.
    Writes(Vec<Effect>),
    /// The outcome of a quorum proposal: its effects if committed; either way
    /// the locks it held are released.
    Decision {
        pid: Pid,
        commit: bool,
        effects: Vec<Effect>,
    },
}

/// One replicated write transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub origin: NodeId,
    /// 1, 2, 3, .. per origin.
    pub seq: u64,
    /// Nodes this copy has passed through (the origin first).
    pub passed: BTreeSet<NodeId>,
    /// The origin's high-water marks when it wrote this entry (its causal past,
    /// node-level); `deps[origin] == seq - 1`.
    pub deps: Marks,
    /// Hops travelled: only the `no-loop-guard` bug looks at it.
    pub hops: u8,
    /// The forwarded request (forwarder, its id) this entry executed, so a
    /// duplicated forward is never executed twice, even after a restart.
    pub request: Option<(NodeId, u64)>,
    pub body: Body,
}

impl Entry {
    pub fn effects(&self) -> &[Effect] {
        match &self.body {
            Body::Writes(e) => e,
            Body::Decision { effects, .. } => effects,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Applied {
    hw: u64,
    above: BTreeSet<u64>,
}

/// What a node has applied, and the entries themselves (for resending).
#[derive(Debug, Clone, Default)]
pub struct ReplicationLog {
    /// The last sequence number this node gave one of its own entries.
    pub own_seq: u64,
    applied: BTreeMap<NodeId, Applied>,
    entries: Vec<Entry>,
    index: BTreeMap<(NodeId, u64), usize>,
    buffer: Vec<Entry>,
}

impl ReplicationLog {
    pub fn has(&self, origin: NodeId, seq: u64) -> bool {
        self.applied
            .get(&origin)
            .is_some_and(|a| seq <= a.hw || a.above.contains(&seq))
    }

    pub fn marks(&self) -> Marks {
        self.applied.iter().map(|(o, a)| (*o, a.hw)).collect()
    }

    pub fn mark(&self, origin: NodeId) -> u64 {
        self.applied.get(&origin).map_or(0, |a| a.hw)
    }

    /// Records an applied entry (the caller applied its effects).
    pub fn record(&mut self, entry: Entry) {
        let a = self.applied.entry(entry.origin).or_default();
        if entry.seq > a.hw {
            a.above.insert(entry.seq);
        }
        while a.above.remove(&(a.hw + 1)) {
            a.hw += 1;
        }
        let key = (entry.origin, entry.seq);
        if !self.index.contains_key(&key) {
            self.index.insert(key, self.entries.len());
            self.entries.push(entry);
        }
    }

    /// Whether everything `deps` names is applied here.
    pub fn satisfies(&self, deps: &Marks) -> bool {
        deps.iter().all(|(o, s)| self.mark(*o) >= *s)
    }

    /// Whether `entry`'s causal past is applied here (its origin's previous
    /// entry included).
    pub fn deliverable(&self, entry: &Entry) -> bool {
        self.satisfies(&entry.deps) && self.mark(entry.origin) + 1 >= entry.seq
    }

    pub fn buffer(&mut self, entry: Entry) {
        if !self
            .buffer
            .iter()
            .any(|b| b.origin == entry.origin && b.seq == entry.seq)
        {
            self.buffer.push(entry);
        }
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes one buffered entry that became deliverable (or is a duplicate).
    pub fn take_ready(&mut self) -> Option<Entry> {
        let pos = self
            .buffer
            .iter()
            .position(|e| self.has(e.origin, e.seq) || self.deliverable(e))?;
        Some(self.buffer.remove(pos))
    }

    /// Entries a peer with `peer` marks lacks, excluding the peer's own, in
    /// the order this node applied them, at most `limit`.
    pub fn missing_for(&self, peer: NodeId, marks: &Marks, limit: usize) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.origin != peer && e.seq > marks.get(&e.origin).copied().unwrap_or(0))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(origin: usize, seq: u64, deps: &[(usize, u64)]) -> Entry {
        Entry {
            origin: NodeId(origin),
            seq,
            passed: BTreeSet::from([NodeId(origin)]),
            deps: deps.iter().map(|(o, s)| (NodeId(*o), *s)).collect(),
            hops: 0,
            request: None,
            body: Body::Writes(vec![]),
        }
    }

    #[test]
    fn high_water_marks_advance_only_over_contiguous_runs() {
        let mut log = ReplicationLog::default();
        log.record(entry(1, 2, &[]));
        assert_eq!(log.mark(NodeId(1)), 0);
        assert!(log.has(NodeId(1), 2) && !log.has(NodeId(1), 1));
        log.record(entry(1, 1, &[]));
        assert_eq!(log.mark(NodeId(1)), 2);
        log.record(entry(1, 1, &[]));
        assert_eq!(log.len(), 2, "a duplicate is stored once");
    }

    #[test]
    fn causal_buffer_releases_in_dependency_order() {
        let mut log = ReplicationLog::default();
        let late = entry(2, 1, &[(1, 1)]);
        assert!(!log.deliverable(&late));
        log.buffer(late.clone());
        assert_eq!(log.take_ready(), None);
        log.record(entry(1, 1, &[]));
        assert_eq!(log.take_ready(), Some(late));
    }

    #[test]
    fn resends_what_a_peer_lacks_except_its_own() {
        let mut log = ReplicationLog::default();
        for (o, s) in [(0, 1), (1, 1), (0, 2), (2, 1)] {
            log.record(entry(o, s, &[]));
        }
        let peer_marks = Marks::from([(NodeId(0), 1)]);
        let missing: Vec<(usize, u64)> = log
            .missing_for(NodeId(2), &peer_marks, 10)
            .iter()
            .map(|e| (e.origin.0, e.seq))
            .collect();
        assert_eq!(missing, [(1, 1), (0, 2)]);
    }
}
