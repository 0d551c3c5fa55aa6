//! Per-key index of the writes that are vertices (`ok` and `info`), grouped
//! by process in session order, and the happens-before relation among a
//! key's writes. The relation is recorded during the clock sweep, while each
//! write's clock is at hand: as bit masks for keys with at most 64 writes
//! (Elle-style workloads rotate keys after a few dozen), and as the clock
//! projected onto the key's writer processes for larger keys.

use crate::causality::{Causality, Clock};
use crate::model::{History, NONE};

pub struct KeyIndex {
    start: Vec<u32>,
    /// Vertex write micro-operations, per key sorted by (process, seq, mop).
    pub writes: Vec<u32>,
    /// Per slot: the write's op, process and seq.
    pub slot_op: Vec<u32>,
    pub slot_proc: Vec<u32>,
    pub slot_seq: Vec<u32>,
    /// Per slot: index of its process's group within the key.
    slot_group: Vec<u32>,
    /// Per key: its groups (runs of one process), as slot ranges.
    group_start: Vec<u32>,
    groups: Vec<(u32, u32, u32)>,
    /// Per mop: its slot in `writes`, or `NONE`.
    pub slot: Vec<u32>,
    /// Per stored observed value (`History::vals`): the slot of the write
    /// that produced it, or `NONE`.
    val_slot: Vec<u32>,
    /// Per slot (small keys): bit `j` set when the key's `j`th write happens
    /// before this one.
    pub pred: Vec<u64>,
    /// Per slot (small keys): bit `j` set when this write happens before the
    /// key's `j`th write. Filled by [`KeyIndex::finish`].
    pub succ: Vec<u64>,
    /// Per slot (bit set): whether its write's clock has been recorded.
    done: Vec<u64>,
    /// Per slot (large keys): offset of its projected clock in `proj`, and
    /// its length: entries past it are 0 (trailing zeros are not stored;
    /// groups are in process order, and processes that start after a
    /// write, fresh ids after `info`, come last).
    proj_start: Vec<u32>,
    proj_len: Vec<u32>,
    proj: Vec<u32>,
}

/// A run of one process's writes on one key.
pub struct Group {
    pub process: u32,
    pub start: usize,
    pub end: usize,
}

const SMALL: usize = 64;

impl KeyIndex {
    /// Groups writes; `seq` is the session position of each op.
    pub fn new(h: &History, seq: &[u32]) -> KeyIndex {
        let mut idx = KeyIndex {
            start: Vec::with_capacity(h.keys.len() + 1),
            writes: Vec::new(),
            slot_op: Vec::new(),
            slot_proc: Vec::new(),
            slot_seq: Vec::new(),
            slot_group: Vec::new(),
            group_start: Vec::with_capacity(h.keys.len() + 1),
            groups: Vec::new(),
            slot: vec![NONE; h.mops.len()],
            val_slot: Vec::new(),
            pred: Vec::new(),
            succ: Vec::new(),
            done: Vec::new(),
            proj_start: Vec::new(),
            proj_len: Vec::new(),
            proj: Vec::new(),
        };
        idx.start.push(0);
        idx.group_start.push(0);
        let mut tmp: Vec<(u32, u32, u32)> = Vec::new();
        for ws in &h.key_writes {
            tmp.clear();
            for &w in ws {
                let op = h.mops[w as usize].op as usize;
                if seq[op] != 0 {
                    tmp.push((h.ops[op].process, seq[op], w));
                }
            }
            tmp.sort_unstable();
            let key_groups_start = idx.groups.len() as u32;
            for &(p, s, w) in &tmp {
                let slot = idx.writes.len() as u32;
                let last = idx.groups.last().copied();
                match last {
                    Some((gp, _, _)) if gp == p && idx.groups.len() as u32 > key_groups_start => {
                        idx.groups.last_mut().expect("a group").2 = slot + 1;
                    }
                    _ => idx.groups.push((p, slot, slot + 1)),
                }
                idx.slot_group
                    .push(idx.groups.len() as u32 - 1 - key_groups_start);
                idx.slot[w as usize] = slot;
                idx.writes.push(w);
                idx.slot_op.push(h.mops[w as usize].op);
                idx.slot_proc.push(p);
                idx.slot_seq.push(s);
            }
            idx.start.push(idx.writes.len() as u32);
            idx.group_start.push(idx.groups.len() as u32);
        }
        idx.pred = vec![0; idx.writes.len()];
        idx.done = vec![0; idx.writes.len().div_ceil(64)];
        idx.proj_start = vec![NONE; idx.writes.len()];
        idx.proj_len = vec![0; idx.writes.len()];
        // Every write of a large key records one projected clock over its
        // key's groups: reserved at once, so the array is never grown (and
        // copied) while the sweep fills it.
        let proj_len: usize = (0..h.keys.len())
            .map(|k| {
                let writes = (idx.start[k + 1] - idx.start[k]) as usize;
                let groups = (idx.group_start[k + 1] - idx.group_start[k]) as usize;
                if writes > SMALL {
                    writes * groups
                } else {
                    0
                }
            })
            .sum();
        idx.proj = Vec::with_capacity(proj_len);
        idx.val_slot = h
            .resolved
            .iter()
            .map(|&w| {
                if w == NONE {
                    NONE
                } else {
                    idx.slot[w as usize]
                }
            })
            .collect();
        idx
    }

    /// The slots of the writes `m` observed, parallel to `History::obs(m)`
    /// (`NONE` for a value no vertex wrote).
    pub fn observed_slots(&self, m: &crate::model::MopRec) -> &[u32] {
        &self.val_slot[m.obs_range()]
    }

    /// Whether slot `j`'s write is in the causal past given by `clock`
    /// (the same as `Causality::in_past` of its op, from the slot's own
    /// process and seq, so without touching per-op arrays).
    #[inline]
    pub fn slot_in_past(&self, c: &Causality, j: usize, clock: &Clock) -> bool {
        c.entry(clock, self.slot_proc[j]) >= self.slot_seq[j]
    }

    pub fn key_writes(&self, k: u32) -> &[u32] {
        &self.writes[self.start[k as usize] as usize..self.start[k as usize + 1] as usize]
    }

    pub fn key_start(&self, k: u32) -> usize {
        self.start[k as usize] as usize
    }

    /// Whether key `k` has hb masks.
    pub fn small(&self, k: u32) -> bool {
        self.key_writes(k).len() <= SMALL
    }

    /// The writes of key `k` split by process, as slot ranges.
    pub fn groups(&self, k: u32) -> impl Iterator<Item = Group> + '_ {
        self.groups
            [self.group_start[k as usize] as usize..self.group_start[k as usize + 1] as usize]
            .iter()
            .map(|&(p, s, e)| Group {
                process: p,
                start: s as usize,
                end: e as usize,
            })
    }

    /// Records what op `v`'s writes know, from its clock (called during the
    /// sweep).
    pub fn record(&mut self, h: &History, c: &Causality, v: u32, clock: &Clock) {
        for mi in h.ops[v as usize].mops() {
            let sv = self.slot[mi];
            if sv == NONE {
                continue;
            }
            self.done[sv as usize / 64] |= 1 << (sv % 64);
            let k = h.mops[mi].key;
            let (s, e) = (
                self.start[k as usize] as usize,
                self.start[k as usize + 1] as usize,
            );
            if e - s <= SMALL {
                let mut mask = 0u64;
                for j in s..e {
                    if self.slot_op[j] != v && self.slot_in_past(c, j, clock) {
                        mask |= 1 << (j - s);
                    }
                }
                self.pred[sv as usize] = mask;
            } else {
                self.proj_start[sv as usize] = self.proj.len() as u32;
                let (gs, ge) = (
                    self.group_start[k as usize] as usize,
                    self.group_start[k as usize + 1] as usize,
                );
                for g in gs..ge {
                    let p = self.groups[g].0;
                    self.proj.push(c.entry(clock, p));
                }
                let start = self.proj_start[sv as usize] as usize;
                while self.proj.len() > start && self.proj.last() == Some(&0) {
                    self.proj.pop();
                }
                self.proj_len[sv as usize] = (self.proj.len() - start) as u32;
            }
        }
    }

    /// Derives successor masks once every write is recorded.
    pub fn finish(&mut self, h: &History) {
        self.succ = vec![0; self.writes.len()];
        for k in 0..h.keys.len() {
            let (s, e) = (self.start[k] as usize, self.start[k + 1] as usize);
            if e - s > SMALL {
                continue;
            }
            for j in s..e {
                let mut m = self.pred[j];
                while m != 0 {
                    let i = m.trailing_zeros() as usize;
                    self.succ[s + i] |= 1 << (j - s);
                    m &= m - 1;
                }
            }
        }
    }

    /// Whether write `a` happens before write `b` (both on one key); writes
    /// of one transaction are never ordered.
    pub fn hb(&self, h: &History, a: u32, b: u32) -> bool {
        let (sa, sb) = (self.slot[a as usize], self.slot[b as usize]);
        if sa == NONE || sb == NONE || self.slot_op[sa as usize] == self.slot_op[sb as usize] {
            return false;
        }
        let k = h.mops[a as usize].key;
        debug_assert_eq!(k, h.mops[b as usize].key);
        let base = self.start[k as usize];
        if self.small(k) {
            return self.pred[sb as usize] & (1u64 << (sa - base)) != 0;
        }
        self.proj_entry(sb as usize, sa as usize) >= self.slot_seq[sa as usize]
    }

    /// Whether slot `j`'s write has been recorded (its happens-before
    /// relations are known).
    #[inline]
    pub fn recorded(&self, j: usize) -> bool {
        self.done[j / 64] & (1 << (j % 64)) != 0
    }

    /// Whether slot `a`'s op is in the causal past of slot `b`'s op, an op
    /// counting as in its own past (both slots of one key). Unlike
    /// [`KeyIndex::hb`] this is monotone along `b`'s process: once true for
    /// a slot of a group it is true for every later slot of that group
    /// (clocks only grow along session order), so it can be binary-searched.
    #[inline]
    pub fn known_at(&self, k: u32, a: usize, b: usize) -> bool {
        if self.slot_op[a] == self.slot_op[b] {
            return true;
        }
        if self.small(k) {
            return self.pred[b] & (1u64 << (a - self.start[k as usize] as usize)) != 0;
        }
        self.proj_entry(b, a) >= self.slot_seq[a]
    }

    /// The first slot of `start..end` (one group of key `k`) whose write
    /// some of `observed` (writes of `k` with slots) happens before
    /// ([`KeyIndex::hb`]), or `end`. O(|observed| × log(group)): a binary
    /// search for the first slot that knows some observed write, then a
    /// step over the slots of that write's own transaction (which `hb`
    /// excludes; at most the transaction's writes of `k`).
    pub fn first_after(
        &self,
        h: &History,
        k: u32,
        observed: &[u32],
        start: usize,
        end: usize,
    ) -> usize {
        let knows = |j: usize| {
            observed
                .iter()
                .any(|&o| self.known_at(k, self.slot[o as usize] as usize, j))
        };
        let mut j = first_true(start, end, knows);
        while j < end && !observed.iter().any(|&o| self.hb(h, o, self.writes[j])) {
            j += 1;
        }
        j
    }

    /// For a large key's list read: the first `(wj, wi)` (by `wj`, then
    /// `wi`, in list order) with `wi` listed before `wj` and
    /// `hb(wj, wi)`. The scan keeps the element-wise maximum of the earlier
    /// elements' projected clocks, so a read costs O(length × the key's
    /// writer processes) rather than a comparison of every pair.
    pub fn first_inverted(
        &self,
        h: &History,
        key: u32,
        elems: &[(u32, usize)],
        max: &mut Vec<u32>,
    ) -> Option<(u32, u32)> {
        let k = key as usize;
        let g = (self.group_start[k + 1] - self.group_start[k]) as usize;
        max.clear();
        max.resize(g, 0);
        let mut any = false;
        for (j, &(wj, _)) in elems.iter().enumerate() {
            let sj = self.slot[wj as usize];
            if sj == NONE {
                continue;
            }
            let sj = sj as usize;
            if any && max[self.slot_group[sj] as usize] >= self.slot_seq[sj] {
                // Some earlier element has `wj` in its past; the first one
                // (unless that is `wj`'s own transaction, which hb excludes).
                if let Some(&(wi, _)) = elems[..j].iter().find(|&&(wi, _)| self.hb(h, wj, wi)) {
                    return Some((wj, wi));
                }
            }
            if self.proj_start[sj] != NONE {
                let p = self.proj_of(sj);
                for (m, &x) in max.iter_mut().zip(p) {
                    *m = (*m).max(x);
                }
                any = true;
            }
        }
        None
    }

    /// For writes `ws` of key `k`, one per group (process) at most: per
    /// write, whether it happens before ([`KeyIndex::hb`]) another of
    /// `ws`. For a large key this is one comparison per write with the
    /// element-wise maximum of the others' projected clocks (kept as the
    /// two largest entries per group, so a write's own clock is left out):
    /// O(|ws| × groups) sequential reads instead of |ws|² `hb` queries.
    pub fn before_another(&self, h: &History, k: u32, ws: &[u32]) -> Vec<bool> {
        if self.small(k) || ws.len() <= SMALL {
            return (0..ws.len())
                .map(|i| {
                    ws.iter()
                        .enumerate()
                        .any(|(j, &b)| j != i && self.hb(h, ws[i], b))
                })
                .collect();
        }
        let g = (self.group_start[k as usize + 1] - self.group_start[k as usize]) as usize;
        // Per group: (largest entry, its write's index in `ws`, second largest).
        let mut top = vec![(0u32, u32::MAX, 0u32); g];
        for (j, &b) in ws.iter().enumerate() {
            let sb = self.slot[b as usize];
            if sb == NONE || self.proj_start[sb as usize] == NONE {
                continue;
            }
            for (t, &x) in top.iter_mut().zip(self.proj_of(sb as usize)) {
                if x > t.0 {
                    *t = (x, j as u32, t.0);
                } else if x > t.2 {
                    t.2 = x;
                }
            }
        }
        ws.iter()
            .enumerate()
            .map(|(i, &a)| {
                let sa = self.slot[a as usize];
                if sa == NONE {
                    return false;
                }
                let t = top[self.slot_group[sa as usize] as usize];
                let best = if t.1 == i as u32 { t.2 } else { t.0 };
                best >= self.slot_seq[sa as usize]
            })
            .collect()
    }

    /// Entries of the projected clocks of large keys' writes (one per
    /// write and writer process of its key), for `LADON_TIMING`.
    pub fn projected_entries(&self) -> usize {
        self.proj.len()
    }

    /// Slot `b`'s projected clock without its trailing zeros (empty when
    /// it has none).
    #[inline]
    fn proj_of(&self, b: usize) -> &[u32] {
        let ps = self.proj_start[b];
        if ps == NONE {
            return &[];
        }
        &self.proj[ps as usize..(ps + self.proj_len[b]) as usize]
    }

    /// Slot `b`'s projected clock entry for slot `a`'s group (0 when `b`
    /// has no projected clock).
    #[inline]
    fn proj_entry(&self, b: usize, a: usize) -> u32 {
        let ps = self.proj_start[b];
        let g = self.slot_group[a];
        if ps == NONE || g >= self.proj_len[b] {
            return 0;
        }
        self.proj[(ps + g) as usize]
    }

    /// For large keys: the projected clock of write `b` on its key's groups,
    /// without its trailing zeros (a group past its end is 0).
    pub fn projection(&self, b: u32) -> Option<&[u32]> {
        let sb = self.slot[b as usize];
        if sb == NONE || self.proj_start[sb as usize] == NONE {
            return None;
        }
        Some(self.proj_of(sb as usize))
    }
}

/// The first index of `lo..hi` where `f` holds, or `hi`, for an `f` that
/// is false then true over the range (a binary search).
pub fn first_true(mut lo: usize, mut hi: usize, f: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Whether write `b` replaces write `a` in a register: `a →hb b`, or both are
/// in one transaction and `b` comes later in it (transactions are atomic and
/// apply their micro-operations in order).
pub fn superseded_by(h: &History, idx: &KeyIndex, a: u32, b: u32) -> bool {
    if h.mops[a as usize].op == h.mops[b as usize].op {
        return b > a;
    }
    idx.hb(h, a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causality::{session, ReadsFrom, Writers};
    use crate::testutil::history;

    fn index(h: &History) -> KeyIndex {
        let (seq, prev) = session(h);
        let mut idx = KeyIndex::new(h, &seq);
        let rf = ReadsFrom::new(h, &Writers::new(h, &seq));
        Causality::build(h, seq, prev, rf, |op, clock, c| idx.record(h, c, op, clock));
        idx.finish(h);
        idx
    }

    /// The write micro-operation of value `v` on key `k` (by its name).
    fn w(h: &History, k: &str, v: i64) -> u32 {
        h.mops
            .iter()
            .position(|m| m.is_write() && m.arg == v && h.key(m.key).to_string() == k)
            .expect("the write") as u32
    }

    #[test]
    fn small_keys_record_happens_before_between_writes() {
        let h = history(&[
            (0, "n1", "txn", r#"[["w","x",1]]"#),
            (1, "n2", "txn", r#"[["r","x",1]]"#),
            (1, "n2", "txn", r#"[["w","x",2]]"#),
            (2, "n3", "txn", r#"[["w","x",3]]"#),
            (3, "n1", "txn", r#"[["w","x",5],["w","x",6]]"#),
        ]);
        let idx = index(&h);
        let (w1, w2, w3, w5, w6) = (
            w(&h, "x", 1),
            w(&h, "x", 2),
            w(&h, "x", 3),
            w(&h, "x", 5),
            w(&h, "x", 6),
        );
        assert!(idx.small(h.mops[w1 as usize].key));
        assert!(idx.hb(&h, w1, w2) && !idx.hb(&h, w2, w1));
        assert!(!idx.hb(&h, w1, w3) && !idx.hb(&h, w3, w1) && !idx.hb(&h, w3, w2));
        // One transaction's writes are never ordered by hb; the later one
        // supersedes the earlier.
        assert!(!idx.hb(&h, w5, w6) && !idx.hb(&h, w6, w5));
        assert!(superseded_by(&h, &idx, w5, w6) && !superseded_by(&h, &idx, w6, w5));
        assert!(superseded_by(&h, &idx, w1, w2) && !superseded_by(&h, &idx, w1, w3));
        // Groups: one run per writing process, in process order.
        let k = h.mops[w1 as usize].key;
        let sizes: Vec<usize> = idx.groups(k).map(|g| g.end - g.start).collect();
        assert_eq!(sizes, vec![1, 1, 1, 2]);
        assert_eq!(idx.key_writes(k).len(), 5);
    }

    #[test]
    fn before_another_agrees_with_pairwise_hb() {
        // 150 processes write x once each, most after reading an earlier
        // process's write (a partial order over many writer processes):
        // the projection path (more than 64 writes and 64 writers) against
        // `hb` pair by pair, on every write and on a subset.
        let vals: Vec<String> = (0..150u64)
            .map(|p| {
                if p % 5 == 0 {
                    format!(r#"[["w","x",{p}]]"#)
                } else {
                    let q = ((p * 2_654_435_761) >> 7) % p;
                    format!(r#"[["r","x",{q}],["w","x",{p}]]"#)
                }
            })
            .collect();
        let ops: Vec<(u64, &str, &str, &str)> = vals
            .iter()
            .enumerate()
            .map(|(p, v)| (p as u64, "n1", "txn", v.as_str()))
            .collect();
        let h = history(&ops);
        let idx = index(&h);
        let all: Vec<u32> = (0..150).map(|v| w(&h, "x", v)).collect();
        let k = h.mops[all[0] as usize].key;
        assert!(!idx.small(k));
        for ws in [all.clone(), all.iter().copied().step_by(2).collect()] {
            let want: Vec<bool> = ws
                .iter()
                .enumerate()
                .map(|(i, &a)| {
                    ws.iter()
                        .enumerate()
                        .any(|(j, &b)| j != i && idx.hb(&h, a, b))
                })
                .collect();
            assert_eq!(idx.before_another(&h, k, &ws), want);
            let (yes, no) = (
                want.iter().filter(|&&b| b).count(),
                want.iter().filter(|&&b| !b).count(),
            );
            assert!(yes > 10 && no > 10, "{yes} before another, {no} not");
        }
    }

    #[test]
    fn large_keys_use_projected_clocks() {
        // 70 appends by p0 (more than a mask holds), one by p1 after
        // reading the list, one by p2 unrelated.
        let mut ops: Vec<(u64, &str, &str, String)> = (0..70)
            .map(|i| (0, "n1", "txn", format!(r#"[["append","x",{i}]]"#)))
            .collect();
        let all: Vec<String> = (0..70).map(|i| i.to_string()).collect();
        ops.push((
            1,
            "n2",
            "txn",
            format!(r#"[["r","x",[{}]]]"#, all.join(",")),
        ));
        ops.push((1, "n2", "txn", r#"[["append","x",100]]"#.to_string()));
        ops.push((2, "n3", "txn", r#"[["append","x",200]]"#.to_string()));
        let ops: Vec<(u64, &str, &str, &str)> = ops
            .iter()
            .map(|(p, n, f, v)| (*p, *n, *f, v.as_str()))
            .collect();
        let h = history(&ops);
        let idx = index(&h);
        let (first, last, after, other) = (
            w(&h, "x", 0),
            w(&h, "x", 69),
            w(&h, "x", 100),
            w(&h, "x", 200),
        );
        assert!(!idx.small(h.mops[first as usize].key));
        assert!(idx.hb(&h, first, last) && !idx.hb(&h, last, first));
        assert!(idx.hb(&h, first, after) && idx.hb(&h, last, after));
        assert!(
            !idx.hb(&h, after, other) && !idx.hb(&h, other, after) && !idx.hb(&h, first, other)
        );
        // p0's 70 appends and p1's two operations; p2's group (0) is past
        // the stored end.
        assert_eq!(idx.projection(after), Some(&[70, 2][..]));
        assert_eq!(idx.projection(other), Some(&[0, 0, 1][..]));
    }
}
