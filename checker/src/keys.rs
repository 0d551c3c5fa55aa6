//! Per-key index of the writes that are vertices (`ok` and `info`), grouped
//! by process in session order, with the happens-before relation among a
//! key's writes as bit masks when the key has at most 64 of them (the common
//! case: Elle-style workloads rotate keys after a few dozen writes).

use crate::causality::Causality;
use crate::model::{History, NONE};

pub struct KeyIndex {
    start: Vec<u32>,
    /// Vertex write micro-operations, per key sorted by (process, seq, mop).
    pub writes: Vec<u32>,
    /// Per mop: its slot in `writes`, or `NONE`.
    pub slot: Vec<u32>,
    /// Per slot: bit `j` set when this write happens before the key's `j`th
    /// write (small keys only).
    pub succ: Vec<u64>,
    /// Per slot: bit `j` set when the key's `j`th write happens before this one.
    pub pred: Vec<u64>,
    masks: bool,
}

/// A run of one process's writes on one key.
pub struct Group<'a> {
    pub process: u32,
    /// Write mops in session order.
    pub writes: &'a [u32],
    /// Their seqs (same order).
    pub seqs: Vec<u32>,
}

impl KeyIndex {
    /// Groups writes; `seq` is the session position of each op.
    pub fn new(h: &History, seq: &[u32]) -> KeyIndex {
        let mut start = Vec::with_capacity(h.keys.len() + 1);
        let mut writes = Vec::new();
        let mut slot = vec![NONE; h.mops.len()];
        start.push(0);
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
            for &(_, _, w) in &tmp {
                slot[w as usize] = writes.len() as u32;
                writes.push(w);
            }
            start.push(writes.len() as u32);
        }
        KeyIndex {
            start,
            writes,
            slot,
            succ: Vec::new(),
            pred: Vec::new(),
            masks: false,
        }
    }

    pub fn key_writes(&self, k: u32) -> &[u32] {
        &self.writes[self.start[k as usize] as usize..self.start[k as usize + 1] as usize]
    }

    pub fn key_start(&self, k: u32) -> usize {
        self.start[k as usize] as usize
    }

    /// Whether key `k` has hb masks.
    pub fn small(&self, k: u32) -> bool {
        self.masks && self.key_writes(k).len() <= 64
    }

    /// The writes of key `k` split by process.
    pub fn groups<'a>(&'a self, h: &History, c_seq: &[u32], k: u32) -> Vec<Group<'a>> {
        let ws = self.key_writes(k);
        let mut out = Vec::new();
        let mut i = 0;
        while i < ws.len() {
            let p = h.op_of(ws[i]).process;
            let mut j = i;
            while j < ws.len() && h.op_of(ws[j]).process == p {
                j += 1;
            }
            let writes = &ws[i..j];
            let seqs = writes
                .iter()
                .map(|&w| c_seq[h.mops[w as usize].op as usize])
                .collect();
            out.push(Group {
                process: p,
                writes,
                seqs,
            });
            i = j;
        }
        out
    }

    /// Computes hb masks for keys with at most 64 writes (after clocks exist).
    pub fn compute_masks(&mut self, h: &History, c: &Causality) {
        let mut succ = vec![0u64; self.writes.len()];
        let mut pred = vec![0u64; self.writes.len()];
        for k in 0..h.keys.len() as u32 {
            let s = self.key_start(k);
            let ws = &self.writes[s..self.start[k as usize + 1] as usize];
            if ws.len() > 64 {
                continue;
            }
            for (i, &a) in ws.iter().enumerate() {
                for (j, &b) in ws.iter().enumerate() {
                    if i != j && hbw(h, c, a, b) {
                        succ[s + i] |= 1 << j;
                        pred[s + j] |= 1 << i;
                    }
                }
            }
        }
        self.succ = succ;
        self.pred = pred;
        self.masks = true;
    }

    /// Whether write `a` happens before write `b` (same key), using masks
    /// where present.
    pub fn hb(&self, h: &History, c: &Causality, a: u32, b: u32) -> bool {
        let (sa, sb) = (self.slot[a as usize], self.slot[b as usize]);
        if sa == NONE || sb == NONE {
            return false;
        }
        let k = h.mops[a as usize].key;
        if self.small(k) && h.mops[b as usize].key == k {
            let base = self.key_start(k) as u32;
            return self.succ[sa as usize] & (1u64 << (sb - base)) != 0;
        }
        hbw(h, c, a, b)
    }
}

/// Whether write mop `a` happens before write mop `b`: their operations are
/// ordered, and they are not in one transaction.
pub fn hbw(h: &History, c: &Causality, a: u32, b: u32) -> bool {
    let (oa, ob) = (h.mops[a as usize].op, h.mops[b as usize].op);
    oa != ob && c.hb(oa, ob)
}

/// Whether write `b` replaces write `a` in a register: `a →hb b`, or both are
/// in one transaction and `b` comes later in it (transactions are atomic and
/// apply their micro-operations in order).
pub fn superseded_by(h: &History, c: &Causality, idx: &KeyIndex, a: u32, b: u32) -> bool {
    if h.mops[a as usize].op == h.mops[b as usize].op {
        return b > a;
    }
    idx.hb(h, c, a, b)
}
