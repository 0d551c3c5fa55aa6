//! Operations for live clients, shaped for what each Maelstrom workload can
//! express: single-key adds/increments and reads for broadcast, g-set and
//! counters; multi-micro-op transactions over rotating keys for
//! txn-list-append and txn-rw-register; single reads and writes for lin-kv.
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
    next_key: i64,
    next_value: i64,
    written: BTreeSet<Key>,
    /// Share of register writes that are deletes (`["d", k, null]`).
    delete_share: f64,
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
            next_key: active_keys,
            next_value: 1,
            written: BTreeSet::new(),
            delete_share: 0.0,
        }
    }

    /// Makes a share `p` (0 to 1) of register writes deletes. With 0 (the
    /// default) the generator draws exactly what it drew before deletes
    /// existed, so a seed's operations stay the same.
    pub fn with_delete_share(mut self, p: f64) -> Self {
        self.delete_share = p.clamp(0.0, 1.0);
        self
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
            let delete = self.workload.kind() == KeyKind::Register
                && self.delete_share > 0.0
                && self.rng.random_bool(self.delete_share);
            self.written.insert(key.clone());
            ops.push(match self.workload.kind() {
                _ if delete => Mop::Delete(key),
                KeyKind::List => Mop::Append(key, self.fresh_value()),
                _ => Mop::Write(key, self.fresh_value()),
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
    fn register_deletes_come_at_the_share_asked_and_only_when_asked() {
        let count = |share: f64| {
            let mut g = Generator::new(
                Workload::TxnRwRegister,
                ChaCha8Rng::seed_from_u64(3),
                3,
                8,
                2,
            )
            .with_delete_share(share);
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
        let (d, w) = count(0.25);
        let share = d as f64 / (d + w) as f64;
        assert!((0.2..0.3).contains(&share), "{d} deletes, {w} writes");
        assert!(w0 > 0);
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
