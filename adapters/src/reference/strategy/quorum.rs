//! Quorum writes: the coordinator locks the written keys locally, asks every
//! other leader to lock them at the same version, and commits once a
//! majority (itself included) voted yes. A leader votes yes only if no other
//! proposal holds a key and its version of each key equals the proposal's
//! base, so of two concurrent proposals on one base at most one can gather a
//! majority. The decision travels as a log entry (reliable through
//! anti-entropy) and releases the locks wherever it is applied. Registers
//! take their base from what the client read (its context), so a blind write
//! to a written key fails: that is what "conflicting concurrent writes
//! cannot both succeed" means against the checker's happens-before.

use std::collections::{BTreeMap, BTreeSet};

use ladon_checker::history::{Key, Mop};

use crate::node::{NodeId, ReplyOk};
use crate::reference::log::Pid;
use crate::reference::replica::ReplyTo;
use crate::reference::store::Effect;

/// Keys locked by undecided proposals (persisted, so a restarted acceptor
/// cannot vote twice).
#[derive(Debug, Clone, Default)]
pub struct Locks {
    by_key: BTreeMap<Key, Pid>,
}

impl Locks {
    /// Locks every key for `pid`, or nothing if one is held by another.
    pub fn try_lock(&mut self, pid: Pid, keys: &[Key]) -> bool {
        if keys
            .iter()
            .any(|k| self.by_key.get(k).is_some_and(|p| *p != pid))
        {
            return false;
        }
        for k in keys {
            self.by_key.insert(k.clone(), pid);
        }
        true
    }

    pub fn release(&mut self, pid: Pid) {
        self.by_key.retain(|_, p| *p != pid);
    }

    /// Whether an undecided proposal holds `key`.
    pub fn locked(&self, key: &Key) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn held(&self) -> usize {
        self.by_key.len()
    }
}

/// A proposal this node coordinates.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub reply_to: ReplyTo,
    pub effects: Vec<Effect>,
    pub reply: ReplyOk,
    pub yes: BTreeSet<NodeId>,
    pub no: BTreeSet<NodeId>,
    pub timer: u64,
}

pub enum Tally {
    Undecided,
    Commit,
    Abort,
}

impl Proposal {
    pub fn tally(&self, leaders: usize, majority: usize) -> Tally {
        if self.yes.len() >= majority {
            Tally::Commit
        } else if self.no.len() > leaders - majority {
            Tally::Abort
        } else {
            Tally::Undecided
        }
    }
}

/// The keys and base versions a proposal's effects write.
pub fn bases(effects: &[Effect]) -> Vec<(Key, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Numbered { key, number, .. } => Some((key.clone(), number - 1)),
            _ => None,
        })
        .collect()
}

/// Whether a write micro-op's base comes from the client's context
/// (registers) or from the coordinator's copy (merging kinds).
pub fn base_from_context(mop: &Mop) -> bool {
    matches!(mop, Mop::Write(..))
}
