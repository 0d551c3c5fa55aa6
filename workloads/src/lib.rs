//! Seeded operation generators for Ladon's workloads, every mode's: the
//! simulated workloads' [`Generator`] here, the process (Maelstrom RPC)
//! workloads' in [`rpc`].
//!
//! A [`Generator`] produces client transactions (lists of micro-operations)
//! for one workload kind: `register` (`w`), `list-append` (`append`), `set`
//! (`add`) or `counter` (`incr`), mixed with multi-key reads. Written values
//! are unique per key across the whole run (a global counter), and each key
//! is retired after `max_writes_per_key` writes and replaced by a fresh one,
//! so histories stay small per key and the checker stays fast.
//!
//! ```
//! use ladon_workloads::{Generator, WorkloadConfig, WorkloadKind};
//! let mut g = Generator::new(WorkloadConfig::new(WorkloadKind::ListAppend), 42);
//! let txn = g.next_txn(true);
//! assert!(!txn.is_empty());
//! let final_read = g.final_read();
//! assert_eq!(final_read.len(), g.written_keys().len());
//! ```

pub mod rpc;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use ladon_checker::history::{Key, Mop, ReadValue};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which data type a workload exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Register,
    ListAppend,
    Set,
    Counter,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::Register,
        WorkloadKind::ListAppend,
        WorkloadKind::Set,
        WorkloadKind::Counter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::ListAppend => "list-append",
            WorkloadKind::Set => "set",
            WorkloadKind::Counter => "counter",
        }
    }

    /// The write micro-operation of this kind on `key` with `arg`.
    pub fn write(self, key: Key, arg: i64) -> Mop {
        match self {
            WorkloadKind::Register => Mop::Write(key, arg),
            WorkloadKind::ListAppend => Mop::Append(key, arg),
            WorkloadKind::Set => Mop::Add(key, arg),
            WorkloadKind::Counter => Mop::Incr(key, arg),
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        WorkloadKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown workload {s:?}: expected one of register, list-append, set, counter"
                )
            })
    }
}

impl Serialize for WorkloadKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WorkloadKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Generator parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    pub kind: WorkloadKind,
    /// Up to this many micro-operations per transaction (at least 1).
    pub txn_size: usize,
    /// A key is retired after this many writes.
    pub max_writes_per_key: u32,
    /// How many keys are in use at once.
    pub active_keys: usize,
    /// Share of micro-operations that are reads, in [0, 1].
    pub read_fraction: f64,
}

impl WorkloadConfig {
    pub fn new(kind: WorkloadKind) -> Self {
        WorkloadConfig {
            kind,
            txn_size: 2,
            max_writes_per_key: 32,
            active_keys: 4,
            read_fraction: 0.5,
        }
    }
}

/// A seeded transaction generator. Single-threaded: the simulator owns one.
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: WorkloadConfig,
    rng: ChaCha8Rng,
    active: Vec<i64>,
    next_key: i64,
    writes: BTreeMap<i64, u32>,
    next_value: i64,
    written: BTreeSet<i64>,
}

impl Generator {
    pub fn new(cfg: WorkloadConfig, seed: u64) -> Self {
        let active_n = cfg.active_keys.max(1);
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            active: (0..active_n as i64).collect(),
            next_key: active_n as i64,
            writes: BTreeMap::new(),
            next_value: 1,
            written: BTreeSet::new(),
            cfg,
        }
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.cfg
    }

    /// The next transaction: 1..=txn_size micro-operations. With
    /// `writes_allowed` false (a client bound to a follower, or writes have
    /// stopped) every micro-operation is a read.
    pub fn next_txn(&mut self, writes_allowed: bool) -> Vec<Mop> {
        let n = self.rng.random_range(1..=self.cfg.txn_size.max(1));
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = self.rng.random_range(0..self.active.len());
            let key = self.active[slot];
            let read =
                !writes_allowed || self.rng.random_bool(self.cfg.read_fraction.clamp(0.0, 1.0));
            if read {
                if ops
                    .iter()
                    .any(|m: &Mop| matches!(m, Mop::Read(Key::Int(k), _) if *k == key))
                {
                    continue;
                }
                ops.push(Mop::Read(Key::Int(key), ReadValue::Null));
            } else {
                let arg = match self.cfg.kind {
                    WorkloadKind::Counter => self.rng.random_range(1..=5),
                    _ => {
                        let v = self.next_value;
                        self.next_value += 1;
                        v
                    }
                };
                ops.push(self.cfg.kind.write(Key::Int(key), arg));
                self.written.insert(key);
                let w = self.writes.entry(key).or_insert(0);
                *w += 1;
                if *w >= self.cfg.max_writes_per_key.max(1) {
                    self.writes.remove(&key);
                    self.active[slot] = self.next_key;
                    self.next_key += 1;
                }
            }
        }
        if ops.is_empty() {
            let key = self.active[0];
            ops.push(Mop::Read(Key::Int(key), ReadValue::Null));
        }
        ops
    }

    /// Every key any write touched, in key order.
    pub fn written_keys(&self) -> Vec<Key> {
        self.written.iter().map(|&k| Key::Int(k)).collect()
    }

    /// A `final` read of every written key.
    pub fn final_read(&self) -> Vec<Mop> {
        self.written
            .iter()
            .map(|&k| Mop::Read(Key::Int(k), ReadValue::Null))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ops_and_values_unique_per_key() {
        let cfg = WorkloadConfig {
            txn_size: 3,
            max_writes_per_key: 4,
            ..WorkloadConfig::new(WorkloadKind::ListAppend)
        };
        let mut a = Generator::new(cfg.clone(), 9);
        let mut b = Generator::new(cfg, 9);
        let mut seen = BTreeSet::new();
        let mut per_key: BTreeMap<Key, u32> = BTreeMap::new();
        for _ in 0..500 {
            let t = a.next_txn(true);
            assert_eq!(t, b.next_txn(true));
            for m in &t {
                if let Mop::Append(k, v) = m {
                    assert!(
                        seen.insert((k.clone(), *v)),
                        "value {v} written twice on {k}"
                    );
                    *per_key.entry(k.clone()).or_default() += 1;
                }
            }
        }
        assert!(
            per_key.values().all(|&n| n <= 4),
            "keys rotate after 4 writes"
        );
        assert!(per_key.len() > 20);
        assert_eq!(a.written_keys().len(), per_key.len());
    }

    #[test]
    fn read_only_when_writes_not_allowed() {
        let mut g = Generator::new(WorkloadConfig::new(WorkloadKind::Counter), 1);
        for _ in 0..100 {
            assert!(g.next_txn(false).iter().all(|m| !m.is_write()));
        }
        assert!(g.written_keys().is_empty());
    }

    #[test]
    fn kinds_parse() {
        for k in WorkloadKind::ALL {
            assert_eq!(k.as_str().parse::<WorkloadKind>().unwrap(), k);
        }
        assert!("queue".parse::<WorkloadKind>().is_err());
    }
}
