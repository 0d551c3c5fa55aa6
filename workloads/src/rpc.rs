//! Operations for process workloads (Maelstrom's RPC workloads), shaped by
//! what each can express ([`RpcShape`]): single-key adds/increments and
//! reads for broadcast, g-set and counters; multi-micro-op transactions over
//! rotating keys for txn-list-append and txn-rw-register; single reads,
//! writes and compare-and-sets for lin-kv (with [`RpcShape::compare_and_set`],
//! a third of writes are compare-and-sets from the key's latest generated
//! value, `[Read(k, from), Write(k, to)]`: see
//! `ladon_adapters::process::workload`). Written values are unique per key (a per-key counter),
//! and a key retires after `max_writes_per_key` writes.

use std::collections::BTreeSet;

use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a process workload's operations can look like (the process
/// adapter's `Workload::shape` says it for each workload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcShape {
    /// The one key every operation touches (sets, counters), or `None`:
    /// keys rotate.
    pub single_key: Option<Key>,
    pub kind: KeyKind,
    /// Whether one RPC carries a whole multi-micro-op transaction.
    pub transactional: bool,
    /// Whether increments may be negative.
    pub decrements: bool,
    /// Whether a third of writes are compare-and-sets from the key's latest
    /// generated value (lin-kv).
    pub compare_and_set: bool,
}

/// A seeded generator for one process workload (shared by the clients of
/// a live run under a lock).
pub struct RpcGenerator {
    shape: RpcShape,
    rng: ChaCha8Rng,
    txn_size: usize,
    max_writes_per_key: u64,
    /// Keys currently written to, with how many writes each has had.
    active: Vec<(i64, u64)>,
    /// lin-kv: per key, the latest value generated for it (the expected
    /// value of the next compare-and-set).
    last_value: std::collections::BTreeMap<i64, i64>,
    next_key: i64,
    next_value: i64,
    written: BTreeSet<Key>,
    /// Share of register writes that are deletes (`["d", k, null]`).
    delete_share: f64,
}

impl RpcGenerator {
    /// A generator for `shape` drawing from `seed`.
    pub fn new(
        shape: RpcShape,
        seed: u64,
        txn_size: usize,
        max_writes_per_key: u64,
        active_keys: usize,
    ) -> Self {
        let active_keys = active_keys.max(1) as i64;
        RpcGenerator {
            shape,
            rng: ChaCha8Rng::seed_from_u64(seed),
            txn_size: txn_size.max(1),
            max_writes_per_key: max_writes_per_key.max(1),
            active: (0..active_keys).map(|k| (k, 0)).collect(),
            last_value: Default::default(),
            next_key: active_keys,
            next_value: 1,
            written: BTreeSet::new(),
            delete_share: 0.0,
        }
    }

    /// Makes a share `p` (0 to 1) of register writes deletes
    /// (`["d", k, null]`, a database run's `--delete-share`). With 0 (the
    /// default) the generator draws exactly what it drew before deletes
    /// existed, so a seed's operations stay the same.
    pub fn with_delete_share(mut self, p: f64) -> Self {
        self.delete_share = p.clamp(0.0, 1.0);
        self
    }

    /// The next client transaction (reads carry `null`).
    pub fn next_op(&mut self) -> Vec<Mop> {
        if let Some(key) = self.shape.single_key.clone() {
            let op = if self.rng.random_bool(0.5) {
                self.written.insert(key.clone());
                match self.shape.kind {
                    KeyKind::Counter => {
                        let d = if self.shape.decrements {
                            let d = self.rng.random_range(1..=5);
                            if self.rng.random_bool(0.3) {
                                -d
                            } else {
                                d
                            }
                        } else {
                            self.rng.random_range(1..=5)
                        };
                        Mop::Incr(key, d)
                    }
                    _ => Mop::Add(key, self.fresh_value()),
                }
            } else {
                Mop::Read(key, ReadValue::Null)
            };
            return vec![op];
        }
        let size = if self.shape.transactional {
            self.rng.random_range(1..=self.txn_size)
        } else {
            1
        };
        let mut ops = Vec::with_capacity(size);
        for _ in 0..size {
            let slot = self.rng.random_range(0..self.active.len());
            let key = Key::Int(self.active[slot].0);
            if self.rng.random_bool(0.5) {
                ops.push(Mop::Read(key, ReadValue::Null));
                continue;
            }
            let delete = self.shape.kind == KeyKind::Register
                && self.delete_share > 0.0
                && self.rng.random_bool(self.delete_share);
            self.written.insert(key.clone());
            let k = self.active[slot].0;
            if delete {
                ops.push(Mop::Delete(key));
                self.wrote(slot);
                continue;
            }
            let v = self.fresh_value();
            if self.shape.compare_and_set {
                let from = self.last_value.insert(k, v);
                if let Some(from) = from.filter(|_| self.rng.random_bool(1.0 / 3.0)) {
                    ops.push(Mop::Read(key.clone(), ReadValue::Int(from)));
                }
            }
            ops.push(match self.shape.kind {
                KeyKind::List => Mop::Append(key, v),
                _ => Mop::Write(key, v),
            });
            self.wrote(slot);
        }
        ops
    }

    /// Counts a write to the key in `slot`; retires the key after
    /// `max_writes_per_key` writes.
    fn wrote(&mut self, slot: usize) {
        self.active[slot].1 += 1;
        if self.active[slot].1 >= self.max_writes_per_key {
            self.active[slot] = (self.next_key, 0);
            self.next_key += 1;
        }
    }

    fn fresh_value(&mut self) -> i64 {
        let v = self.next_value;
        self.next_value += 1;
        v
    }

    /// Every key any generated write touched, for the final reads.
    pub fn written_keys(&self) -> Vec<Key> {
        self.written.iter().cloned().collect()
    }

    /// The final phase's read of `keys`.
    pub fn final_reads(&self, keys: &[Key]) -> Vec<Mop> {
        keys.iter()
            .map(|k| Mop::Read(k.clone(), ReadValue::Null))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> RpcShape {
        RpcShape {
            single_key: None,
            kind: KeyKind::List,
            transactional: true,
            decrements: false,
            compare_and_set: false,
        }
    }

    #[test]
    fn values_are_unique_and_keys_rotate() {
        let mut g = RpcGenerator::new(list(), 1, 3, 4, 2);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            for m in g.next_op() {
                if let Mop::Append(k, v) = m {
                    assert!(seen.insert((k, v)));
                }
            }
        }
        assert!(g.written_keys().len() > 10, "{:?}", g.written_keys());
    }

    #[test]
    fn lin_kv_compare_and_sets_expect_the_keys_latest_value() {
        let lin_kv = RpcShape {
            single_key: None,
            kind: KeyKind::Register,
            transactional: false,
            decrements: false,
            compare_and_set: true,
        };
        let mut g = RpcGenerator::new(lin_kv, 1, 1, 1000, 3);
        let mut latest: std::collections::BTreeMap<Key, i64> = Default::default();
        let (mut cas, mut plain) = (0, 0);
        for _ in 0..300 {
            match g.next_op().as_slice() {
                [Mop::Read(k, ReadValue::Int(from)), Mop::Write(k2, to)] => {
                    assert_eq!(k, k2);
                    assert_eq!(latest.insert(k.clone(), *to), Some(*from));
                    cas += 1;
                }
                [Mop::Write(k, v)] => {
                    latest.insert(k.clone(), *v);
                    plain += 1;
                }
                [Mop::Read(_, ReadValue::Null)] => {}
                other => panic!("unexpected lin-kv operation {other:?}"),
            }
        }
        assert!(cas > 20 && plain > 2 * cas / 3, "{cas} cas, {plain} writes");
    }

    #[test]
    fn register_deletes_come_at_the_share_asked_and_only_when_asked() {
        let register = RpcShape {
            single_key: None,
            kind: KeyKind::Register,
            transactional: true,
            decrements: false,
            compare_and_set: false,
        };
        let count = |share: f64| {
            let mut g = RpcGenerator::new(register.clone(), 3, 3, 8, 2).with_delete_share(share);
            let (mut deletes, mut writes) = (0, 0);
            for _ in 0..2000 {
                for m in g.next_op() {
                    match m {
                        Mop::Delete(_) => deletes += 1,
                        Mop::Write(..) => writes += 1,
                        _ => {}
                    }
                }
            }
            (deletes, writes)
        };
        let (d0, w0) = count(0.0);
        assert_eq!(d0, 0);
        assert!(w0 > 0);
        let (d, w) = count(0.25);
        let share = d as f64 / (d + w) as f64;
        assert!((0.2..0.3).contains(&share), "{d} deletes, {w} writes");
        // Lists never delete.
        let mut l = RpcGenerator::new(list(), 3, 3, 8, 2).with_delete_share(1.0);
        for _ in 0..100 {
            assert!(l.next_op().iter().all(|m| !matches!(m, Mop::Delete(_))));
        }
    }

    #[test]
    fn single_key_workloads_use_one_key() {
        let counter = RpcShape {
            single_key: Some(Key::from("counter")),
            kind: KeyKind::Counter,
            transactional: false,
            decrements: false,
            compare_and_set: false,
        };
        let mut g = RpcGenerator::new(counter, 1, 3, 4, 2);
        for _ in 0..50 {
            let ops = g.next_op();
            assert_eq!(ops.len(), 1);
            assert_eq!(ops[0].key(), &Key::from("counter"));
            if let Mop::Incr(_, d) = ops[0] {
                assert!(d > 0);
            }
        }
        assert_eq!(g.written_keys(), vec![Key::from("counter")]);
    }
}
