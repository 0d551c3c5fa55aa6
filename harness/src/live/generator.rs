//! Operations for live clients, shaped for what each Maelstrom workload can
//! express: single-key adds/increments and reads for broadcast, g-set and
//! counters; multi-micro-op transactions over rotating keys for
//! txn-list-append and txn-rw-register; single reads, writes and
//! compare-and-sets for lin-kv (a third of its writes are compare-and-sets
//! from the key's latest generated value, `[Read(k, from), Write(k, to)]`:
//! see `ladon_adapters::process::workload`).
//! Written values are unique per key (a per-key counter), and a key retires
//! after `max_writes_per_key` writes.

use std::collections::BTreeSet;

use ladon_adapters::process::Workload;
use ladon_checker::history::{Key, KeyKind, Mop, ReadValue};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub struct Generator {
    workload: Workload,
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
}

impl Generator {
    pub fn new(
        workload: Workload,
        rng: ChaCha8Rng,
        txn_size: usize,
        max_writes_per_key: u64,
        active_keys: usize,
    ) -> Self {
        let active_keys = active_keys.max(1) as i64;
        Generator {
            workload,
            rng,
            txn_size: txn_size.max(1),
            max_writes_per_key: max_writes_per_key.max(1),
            active: (0..active_keys).map(|k| (k, 0)).collect(),
            last_value: Default::default(),
            next_key: active_keys,
            next_value: 1,
            written: BTreeSet::new(),
        }
    }

    /// The next client transaction (reads carry `null`).
    pub fn next_op(&mut self) -> Vec<Mop> {
        if let Some(key) = self.workload.single_key() {
            let op = if self.rng.random_bool(0.5) {
                self.written.insert(key.clone());
                match self.workload.kind() {
                    KeyKind::Counter => {
                        let d = if self.workload.allows_decrements() {
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
        let size = if self.workload.transactional() {
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
            let v = self.fresh_value();
            self.written.insert(key.clone());
            let k = self.active[slot].0;
            if self.workload == Workload::LinKv {
                let from = self.last_value.insert(k, v);
                if let Some(from) = from.filter(|_| self.rng.random_bool(1.0 / 3.0)) {
                    ops.push(Mop::Read(key.clone(), ReadValue::Int(from)));
                }
            }
            ops.push(match self.workload.kind() {
                KeyKind::List => Mop::Append(key, v),
                _ => Mop::Write(key, v),
            });
            self.active[slot].1 += 1;
            if self.active[slot].1 >= self.max_writes_per_key {
                self.active[slot] = (self.next_key, 0);
                self.next_key += 1;
            }
        }
        ops
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
    use rand::SeedableRng;

    #[test]
    fn values_are_unique_and_keys_rotate() {
        let mut g = Generator::new(
            Workload::TxnListAppend,
            ChaCha8Rng::seed_from_u64(1),
            3,
            4,
            2,
        );
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
        let mut g = Generator::new(Workload::LinKv, ChaCha8Rng::seed_from_u64(1), 1, 1000, 3);
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
    fn single_key_workloads_use_one_key() {
        let mut g = Generator::new(Workload::GCounter, ChaCha8Rng::seed_from_u64(1), 3, 4, 2);
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
