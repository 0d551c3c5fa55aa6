//! A replica's data: per-key state in the shape its strategy keeps, the
//! effects replicated entries carry, and how an effect merges into a key.
//! Merging is what the strategies differ in; see `strategy/`.

use std::collections::{BTreeMap, BTreeSet};

use ladon_checker::history::{Key, Mop, ReadValue};

use super::strategy::{crdt, lww, version_vector};
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

/// A whole value, as last-write-wins, avoidance and quorum replicate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Int(i64),
    List(Vec<i64>),
    Set(BTreeSet<i64>),
    Counter(i64),
}

impl Val {
    /// The value after `mop` (a write) applied to `cur`.
    pub fn after(cur: Option<&Val>, mop: &Mop) -> Val {
        match (mop, cur) {
            (Mop::Write(_, v), _) => Val::Int(*v),
            (Mop::Append(_, e), Some(Val::List(l))) => {
                let mut l = l.clone();
                l.push(*e);
                Val::List(l)
            }
            (Mop::Append(_, e), _) => Val::List(vec![*e]),
            (Mop::Add(_, e), Some(Val::Set(s))) => {
                let mut s = s.clone();
                s.insert(*e);
                Val::Set(s)
            }
            (Mop::Add(_, e), _) => Val::Set(BTreeSet::from([*e])),
            (Mop::Incr(_, d), Some(Val::Counter(c))) => Val::Counter(c + d),
            (Mop::Incr(_, d), _) => Val::Counter(*d),
            (Mop::Read(..), Some(v)) => v.clone(),
            (Mop::Read(..), None) => Val::Int(0),
            // History deletes (`["d", k, null]`) are checker input only: no
            // workload of the reference systems issues one.
            (Mop::Delete(..), _) => unreachable!("reference workloads issue no deletes"),
        }
    }

    fn read(&self) -> ReadValue {
        match self {
            Val::Int(v) | Val::Counter(v) => ReadValue::Int(*v),
            Val::List(l) => ReadValue::List(l.clone()),
            Val::Set(s) => ReadValue::List(s.iter().copied().collect()),
        }
    }
}

/// One replicated write.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The key's whole new value; the greater version wins.
    Assign {
        key: Key,
        value: Val,
        version: Version,
        vc: Vc,
    },
    /// Quorum: version `number` of the key, committed by a majority.
    Numbered { key: Key, value: Val, number: u64 },
    /// Version-vector register: kept beside concurrent siblings; supersedes
    /// the versions its client had seen (`vc`).
    Sibling {
        key: Key,
        value: i64,
        dot: (u64, u64),
        vc: Vc,
    },
    /// CRDT list element, ordered by `version`.
    ListInsert {
        key: Key,
        elem: i64,
        version: Version,
        vc: Vc,
    },
    /// CRDT set element.
    SetAdd { key: Key, elem: i64, vc: Vc },
    /// CRDT counter increment (op-based: relies on apply-once).
    CounterAdd { key: Key, delta: i64 },
}

impl Effect {
    pub fn key(&self) -> &Key {
        match self {
            Effect::Assign { key, .. }
            | Effect::Numbered { key, .. }
            | Effect::Sibling { key, .. }
            | Effect::ListInsert { key, .. }
            | Effect::SetAdd { key, .. }
            | Effect::CounterAdd { key, .. } => key,
        }
    }

    /// The client-visible write this effect carries, for message reports.
    pub fn written(&self) -> Option<(Key, i64)> {
        match self {
            Effect::Assign {
                key,
                value: Val::Int(v),
                ..
            }
            | Effect::Sibling { key, value: v, .. }
            | Effect::ListInsert { key, elem: v, .. }
            | Effect::SetAdd { key, elem: v, .. }
            | Effect::CounterAdd { key, delta: v } => Some((key.clone(), *v)),
            Effect::Assign { .. } | Effect::Numbered { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyState {
    Whole {
        value: Val,
        version: Version,
        vc: Vc,
    },
    Numbered {
        value: Val,
        number: u64,
    },
    Siblings(version_vector::Siblings),
    List(Vec<crdt::ListItem>),
    Set(BTreeMap<i64, Vc>),
    Counter(i64),
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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    keys: BTreeMap<Key, KeyState>,
}

impl Store {
    pub fn get(&self, key: &Key) -> Option<&KeyState> {
        self.keys.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.keys()
    }

    /// A copy of the keys `keys` only (a transaction's scratch space).
    pub fn subset<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) -> Store {
        let keys = keys
            .into_iter()
            .filter_map(|k| self.keys.get(k).map(|s| (k.clone(), s.clone())))
            .collect();
        Store { keys }
    }

    /// The current whole value (lww, avoidance, quorum writers build on it).
    pub fn whole(&self, key: &Key) -> Option<&Val> {
        match self.keys.get(key)? {
            KeyState::Whole { value, .. } | KeyState::Numbered { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn number(&self, key: &Key) -> u64 {
        match self.keys.get(key) {
            Some(KeyState::Numbered { number, .. }) => *number,
            _ => 0,
        }
    }

    pub fn apply(&mut self, effect: &Effect, rules: MergeRules) {
        let key = effect.key().clone();
        let slot = self.keys.get_mut(&key);
        match (effect, slot) {
            (
                Effect::Assign {
                    value, version, vc, ..
                },
                Some(KeyState::Whole {
                    value: v0,
                    version: ver0,
                    vc: vc0,
                }),
            ) => {
                if lww::wins(version, ver0, rules) {
                    (*v0, *ver0, *vc0) = (value.clone(), *version, vc.clone());
                }
            }
            (
                Effect::Numbered { value, number, .. },
                Some(KeyState::Numbered {
                    value: v0,
                    number: n0,
                }),
            ) => {
                if number > n0 {
                    (*v0, *n0) = (value.clone(), *number);
                }
            }
            (Effect::Sibling { value, dot, vc, .. }, Some(KeyState::Siblings(s))) => {
                s.apply(*value, *dot, vc)
            }
            (
                Effect::ListInsert {
                    elem, version, vc, ..
                },
                Some(KeyState::List(l)),
            ) => crdt::list_insert(l, *elem, *version, vc),
            (Effect::SetAdd { elem, vc, .. }, Some(KeyState::Set(s))) => {
                s.entry(*elem).or_insert_with(|| vc.clone());
            }
            (Effect::CounterAdd { delta, .. }, Some(KeyState::Counter(c))) => *c += delta,
            // First write of the key (or a kind change, which histories forbid).
            (effect, _) => {
                let fresh = match effect {
                    Effect::Assign {
                        value, version, vc, ..
                    } => KeyState::Whole {
                        value: value.clone(),
                        version: *version,
                        vc: vc.clone(),
                    },
                    Effect::Numbered { value, number, .. } => KeyState::Numbered {
                        value: value.clone(),
                        number: *number,
                    },
                    Effect::Sibling { value, dot, vc, .. } => {
                        let mut s = version_vector::Siblings::default();
                        s.apply(*value, *dot, vc);
                        KeyState::Siblings(s)
                    }
                    Effect::ListInsert {
                        elem, version, vc, ..
                    } => {
                        let mut l = Vec::new();
                        crdt::list_insert(&mut l, *elem, *version, vc);
                        KeyState::List(l)
                    }
                    Effect::SetAdd { elem, vc, .. } => {
                        KeyState::Set(BTreeMap::from([(*elem, vc.clone())]))
                    }
                    Effect::CounterAdd { delta, .. } => KeyState::Counter(*delta),
                };
                self.keys.insert(key, fresh);
            }
        }
    }

    pub fn read(&self, key: &Key) -> Observed {
        let Some(state) = self.keys.get(key) else {
            return Observed::default();
        };
        match state {
            KeyState::Whole { value, version, vc } => Observed {
                value: value.read(),
                vcs: vec![vc.clone()],
                ts: Some(version.ts),
                number: None,
            },
            KeyState::Numbered { value, number } => Observed {
                value: value.read(),
                vcs: vec![],
                ts: None,
                number: Some(*number),
            },
            KeyState::Siblings(s) => s.read(),
            KeyState::List(l) => Observed {
                value: ReadValue::List(l.iter().map(|i| i.elem).collect()),
                vcs: l.iter().map(|i| i.vc.clone()).collect(),
                ..Observed::default()
            },
            KeyState::Set(s) => Observed {
                value: ReadValue::List(s.keys().copied().collect()),
                vcs: s.values().cloned().collect(),
                ..Observed::default()
            },
            KeyState::Counter(c) => Observed {
                value: ReadValue::Int(*c),
                ..Observed::default()
            },
        }
    }
}
