//! Per-key index of the writes that are vertices (`ok` and `info`), grouped
//! by process in session order, and the happens-before relation among a
//! key's writes. The relation is recorded during the clock sweep, while each
//! write's clock is at hand: as bit masks for keys with at most 64 writes
//! (Elle-style workloads rotate keys after a few dozen), and as the clock
//! projected onto the key's writer processes for larger keys.

use crate::causality::{Causality, Clock};
use crate::ids::{IdVec, KeyId, MopId, OpId, ProcId, Slot};
use crate::model::{History, NONE};

pub struct KeyIndex {
    start: IdVec<KeyId, u32>,
    /// Vertex write micro-operations, per key sorted by (process, seq, mop).
    pub writes: IdVec<Slot, MopId>,
    /// Per slot: the write's op, process and seq.
    pub slot_op: IdVec<Slot, OpId>,
    pub slot_proc: IdVec<Slot, ProcId>,
    pub slot_seq: IdVec<Slot, u32>,
    /// Per slot: index of its process's group within the key.
    slot_group: IdVec<Slot, u32>,
    /// Per key: its groups (runs of one process), as slot ranges.
    group_start: IdVec<KeyId, u32>,
    groups: Vec<(ProcId, u32, u32)>,
    /// Per mop: its slot in `writes`, or `Slot::NONE`.
    pub slot: IdVec<MopId, Slot>,
    /// Per stored observed value (`History::vals`): the slot of the write
    /// that produced it, or `Slot::NONE`.
    val_slot: Vec<Slot>,
    /// Per slot (small keys): bit `j` set when the key's `j`th write happens
    /// before this one.
    pub pred: IdVec<Slot, u64>,
    /// Per slot (small keys): bit `j` set when this write happens before the
    /// key's `j`th write. Filled by [`KeyIndex::finish`].
    pub succ: IdVec<Slot, u64>,
    /// Per slot (large keys): its projected clock, i.e. per group of its
    /// key the entry of the write's clock for the group's process. Stored
    /// sparsely: the nonzero entries of the groups active when it was
    /// recorded (`proj_group`, sorted, and `proj` from `at`'s start,
    /// its length of them); a group whose process was retired by then
    /// (see `causality::retire`) is answered by the retirement rule from
    /// the clock's earliest position and epoch (`proj_m`, `proj_epoch`);
    /// any other group is 0 (its process had not started).
    /// `at` holds per slot the start in `proj` (`NONE` without a
    /// projection) and the length with two flags (see [`At`]): whether
    /// the slot's write has been recorded (its clock seen) and whether
    /// its projected clock is stored densely instead (one entry per group
    /// of the key, trailing zeros dropped, epoch 0), which is smaller when
    /// most of the key's processes are known to it (long-lived
    /// processes). One 8-byte record per slot, because `record` visits
    /// slots in topological order, not slot order: four separate arrays
    /// (start, length, a recorded bit, a dense bit) cost four cache misses
    /// per write there.
    at: IdVec<Slot, At>,
    proj_group_start: IdVec<Slot, u32>,
    proj_group: Vec<u32>,
    /// `0, 1, 2, …` up to the most groups of a key, for [`Sparse`] views
    /// of dense clocks.
    iota: Vec<u32>,
    proj: Vec<u32>,
    proj_m: IdVec<Slot, u32>,
    proj_epoch: IdVec<Slot, u32>,
    /// Per key: which list of writer processes (its groups' processes, in
    /// order) it has, numbered (`NONE` for small keys). Two large keys with
    /// the same list have the same projected clock for the same clock, so
    /// writes of one operation to such keys share one stored projection
    /// (see [`KeyIndex::record`]).
    key_sig: IdVec<KeyId, u32>,
    /// Per large key: its groups (indices into `groups`) whose process
    /// has started and was not retired at the last recorded write.
    active: IdVec<KeyId, Vec<u32>>,
    /// Per process: the groups (indices into `groups`) it has on large
    /// keys, CSR.
    proc_groups_start: IdVec<ProcId, u32>,
    proc_groups: Vec<u32>,
    /// Per key: the retirement epoch at which its active list was last
    /// pruned.
    pruned_at: IdVec<KeyId, u32>,
    /// Per cycle of the graph: whether its processes' groups are active.
    cycle_active: Vec<bool>,
    /// Per process: the retirement epoch and `(tau, full)` rule, copied
    /// from the `Causality` when its group leaves a key's active list.
    retired: IdVec<ProcId, u32>,
    rule: IdVec<ProcId, (u32, u32)>,
    /// Scratch for `record`.
    scratch: Vec<(u32, u32)>,
    /// Scratch for `record`: the dense projections it stored, as
    /// (`key_sig`, slot).
    shared: Vec<(u32, Slot)>,
}

/// A large key's write's projected clock as stored: the entries (`entries`,
/// by index of group in the key: `groups`, sorted) of the processes not
/// retired when it was recorded; a process retired by then (by epoch
/// `epoch`, see [`KeyIndex::retirement`]) has entry `full` if `m < tau`,
/// else 0; any other process 0. A clock stored densely lists every group
/// up to its last nonzero entry, with `epoch` 0 (before any retirement).
pub struct Sparse<'a> {
    pub epoch: u32,
    pub m: u32,
    pub groups: &'a [u32],
    pub entries: &'a [u32],
}

/// A run of one process's writes on one key.
pub struct Group {
    pub process: ProcId,
    pub start: usize,
    pub end: usize,
}

const SMALL: usize = 64;

/// Writes from which [`KeyIndex::new`] lays the keys out on two threads.
const PARALLEL_LAYOUT: usize = 1 << 18;

/// The slots of a range of keys, numbered from 0 (see [`KeyIndex::new`],
/// which concatenates them): per key its vertex writes sorted by
/// (process, seq, micro-operation), grouped by process.
#[derive(Default)]
struct Layout {
    writes: Vec<MopId>,
    slot_op: Vec<OpId>,
    slot_proc: Vec<ProcId>,
    slot_seq: Vec<u32>,
    slot_group: Vec<u32>,
    groups: Vec<(ProcId, u32, u32)>,
    /// Per key of the range: the end of its slots, of its groups.
    start: Vec<u32>,
    group_start: Vec<u32>,
}

impl Layout {
    /// Keys `keys`, with room for `most` slots (at least their writes).
    fn of(
        h: &History,
        seq: &IdVec<OpId, u32>,
        keys: std::ops::Range<usize>,
        most: usize,
    ) -> Layout {
        let mut l = Layout {
            writes: Vec::with_capacity(most),
            slot_op: Vec::with_capacity(most),
            slot_proc: Vec::with_capacity(most),
            slot_seq: Vec::with_capacity(most),
            slot_group: Vec::with_capacity(most),
            ..Layout::default()
        };
        let mut tmp: Vec<(ProcId, u32, MopId)> = Vec::new();
        for ws in &h.key_writes.raw[keys] {
            tmp.clear();
            for &w in ws {
                let op = h.mops[w].op;
                if seq[op] != 0 {
                    tmp.push((h.ops[op].process, seq[op], w));
                }
            }
            tmp.sort_unstable();
            let key_groups_start = l.groups.len() as u32;
            for &(p, s, w) in &tmp {
                let slot = l.writes.len() as u32;
                let open = l.groups.len() as u32 > key_groups_start;
                match l.groups.last_mut() {
                    Some(g) if open && g.0 == p => g.2 = slot + 1,
                    _ => l.groups.push((p, slot, slot + 1)),
                }
                l.slot_group
                    .push(l.groups.len() as u32 - 1 - key_groups_start);
                l.writes.push(w);
                l.slot_op.push(h.mops[w].op);
                l.slot_proc.push(p);
                l.slot_seq.push(s);
            }
            l.start.push(l.writes.len() as u32);
            l.group_start.push(l.groups.len() as u32);
        }
        l
    }
}

/// A slot's projected clock as stored (see `KeyIndex::at`): its start in
/// `proj` (`NONE` when it has none) and its length, with the flags
/// [`At::DONE`] and [`At::DENSE`] in the length's top bits.
#[derive(Clone, Copy)]
struct At {
    start: u32,
    info: u32,
}

impl At {
    const EMPTY: At = At {
        start: NONE,
        info: 0,
    };
    /// The slot's write has been recorded.
    const DONE: u32 = 1 << 31;
    /// Its projected clock is stored densely.
    const DENSE: u32 = 1 << 30;
    /// The bits of the length.
    const LEN: u32 = (1 << 30) - 1;

    #[inline]
    fn len(self) -> usize {
        (self.info & At::LEN) as usize
    }

    fn set_len(&mut self, len: usize) {
        debug_assert!(len <= At::LEN as usize);
        self.info = (self.info & !At::LEN) | len as u32;
    }
}

impl KeyIndex {
    /// Groups writes; `seq` is the session position of each op.
    pub fn new(h: &History, seq: &IdVec<OpId, u32>) -> KeyIndex {
        KeyIndex::laid_out(h, seq, PARALLEL_LAYOUT)
    }

    /// [`KeyIndex::new`], laying the keys out on two threads from
    /// `parallel` writes on.
    fn laid_out(h: &History, seq: &IdVec<OpId, u32>, parallel: usize) -> KeyIndex {
        let mut idx = KeyIndex {
            start: IdVec::from_vec(Vec::with_capacity(h.keys.len() + 1)),
            writes: IdVec::new(),
            slot_op: IdVec::new(),
            slot_proc: IdVec::new(),
            slot_seq: IdVec::new(),
            slot_group: IdVec::new(),
            group_start: IdVec::from_vec(Vec::with_capacity(h.keys.len() + 1)),
            groups: Vec::new(),
            slot: IdVec::filled(Slot::NONE, h.mops.len()),
            val_slot: Vec::new(),
            pred: IdVec::new(),
            succ: IdVec::new(),
            at: IdVec::new(),
            proj_group_start: IdVec::new(),
            proj_group: Vec::new(),
            iota: Vec::new(),
            proj: Vec::new(),
            proj_m: IdVec::new(),
            proj_epoch: IdVec::new(),
            key_sig: IdVec::filled(NONE, h.keys.len()),
            active: IdVec::filled(Vec::new(), h.keys.len()),
            proc_groups_start: IdVec::new(),
            proc_groups: Vec::new(),
            cycle_active: Vec::new(),
            pruned_at: IdVec::new(),
            retired: IdVec::filled(NONE, h.processes.len()),
            rule: IdVec::filled((0, 0), h.processes.len()),
            scratch: Vec::new(),
            shared: Vec::new(),
        };
        idx.start.push(0);
        idx.group_start.push(0);
        // The keys' slots, in two halves (by writes) on two threads for
        // large histories: gathering each write's process and seq and
        // sorting them is the longest step of the reads-from phase.
        let most: usize = h.key_writes.iter().map(|ws| ws.len()).sum();
        // The first half is built with room for every key's slots and
        // moved into the index; the second is appended to it.
        let (first, second) = if most < parallel {
            (Layout::of(h, seq, 0..h.keys.len(), most), None)
        } else {
            let mut acc = 0usize;
            let mid = h
                .key_writes
                .iter()
                .position(|ws| {
                    acc += ws.len();
                    acc >= most / 2
                })
                .map_or(h.keys.len(), |k| k + 1);
            std::thread::scope(|sc| {
                let second = sc.spawn(|| Layout::of(h, seq, mid..h.keys.len(), most - acc));
                let first = Layout::of(h, seq, 0..mid, most);
                (first, Some(second.join().expect("key layout")))
            })
        };
        idx.writes = IdVec::from_vec(first.writes);
        idx.slot_op = IdVec::from_vec(first.slot_op);
        idx.slot_proc = IdVec::from_vec(first.slot_proc);
        idx.slot_seq = IdVec::from_vec(first.slot_seq);
        idx.slot_group = IdVec::from_vec(first.slot_group);
        idx.groups = first.groups;
        idx.start.extend_from_slice(&first.start);
        idx.group_start.extend_from_slice(&first.group_start);
        if let Some(part) = second {
            let (so, go) = (idx.writes.len() as u32, idx.groups.len() as u32);
            idx.writes.extend_from_slice(&part.writes);
            idx.slot_op.extend_from_slice(&part.slot_op);
            idx.slot_proc.extend_from_slice(&part.slot_proc);
            idx.slot_seq.extend_from_slice(&part.slot_seq);
            idx.slot_group.extend_from_slice(&part.slot_group);
            idx.groups
                .extend(part.groups.iter().map(|&(p, a, b)| (p, a + so, b + so)));
            idx.start.extend(part.start.iter().map(|&e| e + so));
            idx.group_start
                .extend(part.group_start.iter().map(|&e| e + go));
        }
        for (j, &w) in idx.writes.iter().enumerate() {
            idx.slot[w] = Slot(j as u32);
        }
        let n = idx.writes.len();
        idx.pred = IdVec::filled(0, n);
        idx.at = IdVec::filled(At::EMPTY, n);
        idx.proj_m = IdVec::filled(0, n);
        idx.proj_group_start = IdVec::filled(0, n);
        let most = (0..h.keys.len())
            .map(|k| idx.group_start[k + 1] - idx.group_start[k])
            .max()
            .unwrap_or(0);
        idx.iota = (0..most).collect();
        idx.proj_epoch = IdVec::filled(0, n);
        // Per process, its groups on large keys.
        let mut count: IdVec<ProcId, u32> = IdVec::filled(0, h.processes.len() + 1);
        let large = |k: usize| idx.start[k + 1] - idx.start[k] > SMALL as u32;
        for k in (0..h.keys.len()).filter(|&k| large(k)) {
            for g in idx.group_start[k]..idx.group_start[k + 1] {
                count[idx.groups[g as usize].0.index() + 1] += 1;
            }
        }
        for p in 0..h.processes.len() {
            count[p + 1] += count[p];
        }
        let mut fill = count.clone();
        let mut pg = vec![0u32; count[h.processes.len()] as usize];
        for k in (0..h.keys.len()).filter(|&k| large(k)) {
            for g in idx.group_start[k]..idx.group_start[k + 1] {
                let p = idx.groups[g as usize].0;
                pg[fill[p] as usize] = g;
                fill[p] += 1;
            }
        }
        idx.proc_groups_start = count;
        idx.proc_groups = pg;
        idx.pruned_at = IdVec::filled(0, h.keys.len());
        // Large keys numbered by their list of writer processes.
        let mut sigs: rustc_hash::FxHashMap<Vec<ProcId>, u32> = Default::default();
        for k in (0..h.keys.len()).filter(|&k| large(k)) {
            let procs: Vec<ProcId> = idx.groups
                [idx.group_start[k] as usize..idx.group_start[k + 1] as usize]
                .iter()
                .map(|&(p, _, _)| p)
                .collect();
            let n = sigs.len() as u32;
            idx.key_sig[KeyId::new(k)] = *sigs.entry(procs).or_insert(n);
        }
        // Every operation records at most one entry per group for each
        // distinct process list (`key_sig`) among the large keys it writes:
        // its writes to keys with one list share a dense projection, and a
        // sparse one holds fewer than half the key's groups (two such
        // writes see the same active groups, so both are sparse if one
        // is). Reserved at once (untouched capacity costs no memory), so
        // the array is never grown and copied while the sweep fills it.
        let mut proj_len = 0usize;
        let mut seen: Vec<u32> = Vec::new();
        for op in &h.ops {
            seen.clear();
            for mi in op.mop_ids() {
                let sv = idx.slot[mi];
                if sv.is_none() {
                    continue;
                }
                let k = h.mops[mi].key;
                let sig = idx.key_sig[k];
                if sig == NONE || seen.contains(&sig) {
                    continue;
                }
                seen.push(sig);
                proj_len += (idx.group_start[k.index() + 1] - idx.group_start[k]) as usize;
            }
        }
        idx.proj = Vec::with_capacity(proj_len);
        idx.val_slot = h
            .resolved
            .iter()
            .map(|&w| if w.is_none() { Slot::NONE } else { idx.slot[w] })
            .collect();
        idx
    }

    /// The slots of the writes `m` observed, parallel to `History::obs(m)`
    /// (`NONE` for a value no vertex wrote).
    pub fn observed_slots(&self, m: &crate::model::MopRec) -> &[Slot] {
        &self.val_slot[m.obs_range()]
    }

    /// Whether slot `j`'s write is in the causal past given by `clock`
    /// (the same as `Causality::in_past` of its op, from the slot's own
    /// process and seq, so without touching per-op arrays).
    #[inline]
    pub fn slot_in_past(&self, c: &Causality, j: usize, clock: &Clock) -> bool {
        c.entry(clock, self.slot_proc[j]) >= self.slot_seq[j]
    }

    pub fn key_writes(&self, k: KeyId) -> &[MopId] {
        &self.writes[self.key_slots(k)]
    }

    /// Key `k`'s slots.
    #[inline]
    fn key_slots(&self, k: KeyId) -> std::ops::Range<usize> {
        self.start[k] as usize..self.start[k.index() + 1] as usize
    }

    /// Key `k`'s groups (indices into `groups`).
    #[inline]
    fn key_groups(&self, k: KeyId) -> std::ops::Range<usize> {
        self.group_start[k] as usize..self.group_start[k.index() + 1] as usize
    }

    pub fn key_start(&self, k: KeyId) -> usize {
        self.start[k] as usize
    }

    /// Whether key `k` has hb masks.
    pub fn small(&self, k: KeyId) -> bool {
        self.key_writes(k).len() <= SMALL
    }

    /// The writes of key `k` split by process, as slot ranges.
    pub fn groups(&self, k: KeyId) -> impl Iterator<Item = Group> + '_ {
        self.groups[self.key_groups(k)]
            .iter()
            .map(|&(p, s, e)| Group {
                process: p,
                start: s as usize,
                end: e as usize,
            })
    }

    /// The key of group `g` (an index into `groups`).
    fn group_key(&self, g: u32) -> usize {
        self.group_start.partition_point(|&s| s <= g) - 1
    }

    /// Makes the large-key groups of process `p` active (its first vertex
    /// is being recorded).
    fn activate(&mut self, p: ProcId) {
        let (a, b) = (
            self.proc_groups_start[p] as usize,
            self.proc_groups_start[p.index() + 1] as usize,
        );
        for i in a..b {
            let g = self.proc_groups[i];
            let k = self.group_key(g);
            self.active[k].push(g);
        }
    }

    /// Records what op `v`'s writes know, from its clock (called during the
    /// sweep, for every vertex in topological order).
    pub fn record(&mut self, h: &History, c: &Causality, v: OpId, clock: &Clock) {
        // A process's groups become active at its first vertex (or, in a
        // cycle, at the cycle's first vertex: its members share a clock).
        let cycle = if c.cycles.is_empty() {
            None
        } else {
            c.cycle_of.get(&v).copied()
        };
        match cycle {
            None if c.seq[v] == 1 => self.activate(h.ops[v].process),
            None => {}
            Some(ci) => {
                let ci = ci as usize;
                if self.cycle_active.len() <= ci {
                    self.cycle_active.resize(c.cycles.len(), false);
                }
                if !std::mem::replace(&mut self.cycle_active[ci], true) {
                    let ps: Vec<ProcId> = c.cycles[ci]
                        .iter()
                        .filter(|&&u| c.seq[u] == 1)
                        .map(|&u| h.ops[u].process)
                        .collect();
                    for p in ps {
                        self.activate(p);
                    }
                }
            }
        }
        let epoch = c.epoch_of(clock);
        // Dense projections stored by this call, by process list
        // (`key_sig`): a dense projection is one entry per group, from the
        // clock alone, so another write of `v` to a key with the same list
        // shares it (exact whichever way its own projection would have
        // been stored).
        self.shared.clear();
        for mi in h.ops[v].mops() {
            let sv = self.slot[mi];
            if sv.is_none() {
                continue;
            }
            self.at[sv].info |= At::DONE;
            let k = h.mops[mi].key;
            let (s, e) = (self.start[k] as usize, self.start[k.index() + 1] as usize);
            if e - s <= SMALL {
                let mut mask = 0u64;
                for j in s..e {
                    if self.slot_op[j] != v && self.slot_in_past(c, j, clock) {
                        mask |= 1 << (j - s);
                    }
                }
                self.pred[sv] = mask;
            } else {
                let gs = self.group_start[k];
                let mut active = std::mem::take(&mut self.active[k]);
                // Nothing retired since the last pruning: nothing to drop.
                if self.pruned_at[k] != epoch {
                    self.pruned_at[k] = epoch;
                    active.retain(|&g| {
                        let p = self.groups[g as usize].0;
                        match c.retired_at(p) {
                            Some((r, tau, full)) if r <= epoch => {
                                self.retired[p] = r;
                                self.rule[p] = (tau, full);
                                false
                            }
                            _ => true,
                        }
                    });
                }
                let ge = self.group_start[k.index() + 1];
                let sig = self.key_sig[k];
                if let Some(&(_, from)) = self.shared.iter().find(|&&(s, _)| s == sig) {
                    self.active[k] = active;
                    self.share_projection(from, sv);
                    continue;
                }
                // Most of the key's processes active (long-lived ones):
                // one entry per group (retired processes' too, from the
                // rule) takes less room and time than pairs.
                let dense = (ge - gs) as usize <= 2 * active.len();
                self.scratch.clear();
                if !dense {
                    for &g in &active {
                        let e = c.entry(clock, self.groups[g as usize].0);
                        if e != 0 {
                            self.scratch.push((g - gs, e));
                        }
                    }
                }
                self.active[k] = active;
                self.at[sv].start = self.proj.len() as u32;
                if dense {
                    self.shared.push((sig, sv));
                    self.at[sv].info |= At::DENSE;
                    let from = self.proj.len();
                    self.proj.extend(
                        self.groups[gs as usize..ge as usize]
                            .iter()
                            .map(|&(p, _, _)| c.entry(clock, p)),
                    );
                    // trailing zeros dropped
                    let len = self.proj[from..]
                        .iter()
                        .rposition(|&e| e != 0)
                        .map_or(0, |i| i + 1);
                    self.proj.truncate(from + len);
                    self.at[sv].set_len(len);
                } else {
                    self.scratch.sort_unstable();
                    self.at[sv].set_len(self.scratch.len());
                    self.proj_m[sv] = c.min_pos(clock);
                    self.proj_epoch[sv] = epoch;
                    self.proj_group_start[sv] = self.proj_group.len() as u32;
                    for &(g, e) in &self.scratch {
                        self.proj_group.push(g);
                        self.proj.push(e);
                    }
                }
            }
        }
    }

    /// Gives slot `to` the dense projected clock stored for slot `from`
    /// (writes of one operation, to keys with the same process list).
    fn share_projection(&mut self, from: Slot, to: Slot) {
        debug_assert!(self.is_dense(from));
        let f = self.at[from];
        self.at[to].start = f.start;
        self.at[to].info |= f.info & (At::DENSE | At::LEN);
    }

    /// Derives successor masks once every write is recorded.
    pub fn finish(&mut self, h: &History) {
        self.succ = IdVec::filled(0, self.writes.len());
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
    pub fn hb(&self, h: &History, a: MopId, b: MopId) -> bool {
        let (sa, sb) = (self.slot[a], self.slot[b]);
        if sa.is_none() || sb.is_none() || self.slot_op[sa] == self.slot_op[sb] {
            return false;
        }
        let k = h.mops[a].key;
        debug_assert_eq!(k, h.mops[b].key);
        let base = self.start[k];
        if self.small(k) {
            return self.pred[sb] & (1u64 << (sa.0 - base)) != 0;
        }
        self.proj_entry(sb, sa) >= self.slot_seq[sa]
    }

    /// Whether op `i`, a vertex of process `p` at session position `seq`
    /// (not `b`'s op), happens before write `b`, read from `b`'s projected
    /// clock (its entry for `p` is the last of `p`'s ops in `b`'s past):
    /// `None` when the index cannot tell, because `b`'s key is small or
    /// `p` never wrote it (no group), or `b` has no projected clock. Once
    /// every write is recorded; exact as [`KeyIndex::hb`] is.
    pub fn op_before_write(&self, h: &History, p: ProcId, seq: u32, b: MopId) -> Option<bool> {
        let sb = self.slot[b];
        if sb.is_none() || self.at[sb].start == NONE {
            return None;
        }
        let k = h.mops[b].key;
        if self.small(k) {
            return None;
        }
        // A key's groups are sorted by process (one each).
        let g = self.groups[self.key_groups(k)]
            .binary_search_by_key(&p, |&(q, _, _)| q)
            .ok()?;
        Some(self.group_entry(sb, g as u32, p) >= seq)
    }

    /// Whether slot `j`'s write has been recorded (its happens-before
    /// relations are known).
    #[inline]
    pub fn recorded(&self, j: usize) -> bool {
        self.at[Slot::new(j)].info & At::DONE != 0
    }

    /// Whether slot `a`'s op is in the causal past of slot `b`'s op, an op
    /// counting as in its own past (both slots of one key). Unlike
    /// [`KeyIndex::hb`] this is monotone along `b`'s process: once true for
    /// a slot of a group it is true for every later slot of that group
    /// (clocks only grow along session order), so it can be binary-searched.
    #[inline]
    pub fn known_at(&self, k: KeyId, a: usize, b: usize) -> bool {
        if self.slot_op[a] == self.slot_op[b] {
            return true;
        }
        if self.small(k) {
            return self.pred[b] & (1u64 << (a - self.start[k] as usize)) != 0;
        }
        self.proj_entry(Slot::new(b), Slot::new(a)) >= self.slot_seq[a]
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
        k: KeyId,
        observed: &[MopId],
        start: usize,
        end: usize,
    ) -> usize {
        let knows = |j: usize| {
            observed
                .iter()
                .any(|&o| self.known_at(k, self.slot[o].index(), j))
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
        key: KeyId,
        elems: &[(MopId, usize)],
        max: &mut Vec<u32>,
    ) -> Option<(MopId, MopId)> {
        let g = self.key_groups(key).len();
        max.clear();
        max.resize(g, 0);
        let mut dense = Vec::new();
        let mut any = false;
        for (j, &(wj, _)) in elems.iter().enumerate() {
            let sj = self.slot[wj];
            if sj.is_none() {
                continue;
            }
            if any && max[self.slot_group[sj] as usize] >= self.slot_seq[sj] {
                // Some earlier element has `wj` in its past; the first one
                // (unless that is `wj`'s own transaction, which hb excludes).
                if let Some(&(wi, _)) = elems[..j].iter().find(|&&(wi, _)| self.hb(h, wj, wi)) {
                    return Some((wj, wi));
                }
            }
            if self.at[sj].start != NONE {
                self.proj_into(key, sj, &mut dense);
                for (m, &x) in max.iter_mut().zip(&dense) {
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
    pub fn before_another(&self, h: &History, k: KeyId, ws: &[MopId]) -> Vec<bool> {
        if self.small(k) || ws.len() <= SMALL {
            return (0..ws.len())
                .map(|i| {
                    ws.iter()
                        .enumerate()
                        .any(|(j, &b)| j != i && self.hb(h, ws[i], b))
                })
                .collect();
        }
        let g = self.key_groups(k).len();
        // Per group: (largest stored entry, its write's index in `ws`,
        // second largest).
        let mut top = vec![(0u32, u32::MAX, 0u32); g];
        // Per write with a projected clock: (epoch, earliest position), for
        // the entries of retired processes.
        let mut em: Vec<(u32, u32)> = Vec::new();
        for (j, &b) in ws.iter().enumerate() {
            let Some(sp) = self.sparse(b) else {
                continue;
            };
            em.push((sp.epoch, sp.m));
            for (&gi, &x) in sp.groups.iter().zip(sp.entries) {
                let t = &mut top[gi as usize];
                if x > t.0 {
                    *t = (x, j as u32, t.0);
                } else if x > t.2 {
                    t.2 = x;
                }
            }
        }
        // The least earliest position among the writes of each epoch or
        // later: a retired process's entry is `full` in some other write
        // exactly when one recorded at or after its epoch has `m < tau`
        // (never the write's own: a process is retired after its writes).
        em.sort_unstable();
        let mut suffix_min = vec![u32::MAX; em.len() + 1];
        for i in (0..em.len()).rev() {
            suffix_min[i] = suffix_min[i + 1].min(em[i].1);
        }
        ws.iter()
            .enumerate()
            .map(|(i, &a)| {
                let sa = self.slot[a];
                if sa.is_none() {
                    return false;
                }
                let seq = self.slot_seq[sa];
                let t = top[self.slot_group[sa] as usize];
                let best = if t.1 == i as u32 { t.2 } else { t.0 };
                if best >= seq {
                    return true;
                }
                match self.retirement(self.slot_proc[sa]) {
                    Some((r, tau, full)) if full >= seq => {
                        suffix_min[em.partition_point(|&(e, _)| e < r)] < tau
                    }
                    _ => false,
                }
            })
            .collect()
    }

    /// Write `b`'s projected clock on its key's groups, one entry per group
    /// (retired processes' entries included), for tests.
    #[cfg(test)]
    fn projection(&self, h: &History, b: MopId) -> Option<Vec<u32>> {
        let sb = self.slot[b];
        if sb.is_none() || self.at[sb].start == NONE {
            return None;
        }
        let mut out = Vec::new();
        self.proj_into(h.mops[b].key, sb, &mut out);
        Some(out)
    }

    /// Write `b`'s (of a large key) projected clock entry for each group of
    /// its key, into `out`, as [`KeyIndex::hb`] reads them: `b` knows the
    /// group's write at slot `a` (of another transaction) exactly when
    /// `out[group] >= slot_seq[a]`. False (and `out` empty) when `b` has no
    /// projected clock.
    pub fn entries_by_group(&self, h: &History, b: MopId, out: &mut Vec<u32>) -> bool {
        out.clear();
        let sb = self.slot[b];
        if sb.is_none() || self.at[sb].start == NONE {
            return false;
        }
        let gr = self.key_groups(h.mops[b].key);
        out.extend(
            self.groups[gr]
                .iter()
                .map(|&(_, start, _)| self.proj_entry(sb, Slot(start))),
        );
        true
    }

    /// The memory reserved for projected clocks, which the sweep fills
    /// from the start, as (address, bytes, fault in): for [`populate`] to
    /// ask for huge pages there, and, when the keys' writer processes are
    /// few and long-lived (at most `POPULATE_GROUPS` per large key, so
    /// that nearly all of the reserved capacity will be written), to fault
    /// it in ahead of `record` on another core (with short-lived processes
    /// most of the capacity stays untouched). `None` without large keys.
    pub fn projection_memory(&self) -> Option<(usize, usize, bool)> {
        let most = self.iota.len();
        (self.proj.capacity() > 0).then(|| {
            (
                self.proj.as_ptr() as usize,
                self.proj.capacity() * std::mem::size_of::<u32>(),
                most <= POPULATE_GROUPS,
            )
        })
    }

    /// Entries stored for the projected clocks of large keys' writes (the
    /// nonzero ones of processes not retired), for `LADON_TIMING`.
    pub fn projected_entries(&self) -> usize {
        self.proj.len()
    }

    /// Slot `b`'s (of key `k`, large) projected clock, one entry per group
    /// of the key, into `out`.
    fn proj_into(&self, k: KeyId, b: Slot, out: &mut Vec<u32>) {
        let gr = self.key_groups(k);
        let (gs, ge) = (gr.start, gr.end);
        out.clear();
        let ps = self.at[b].start as usize;
        let pe = ps + self.at[b].len();
        if self.is_dense(b) {
            out.extend_from_slice(&self.proj[ps..pe]);
            out.resize(ge - gs, 0);
            return;
        }
        out.extend(
            self.groups[gs..ge]
                .iter()
                .map(|&(p, _, _)| self.retired_entry(b, p).unwrap_or(0)),
        );
        let qs = self.proj_group_start[b] as usize;
        let groups = &self.proj_group[qs..qs + (pe - ps)];
        for (&g, &e) in groups.iter().zip(&self.proj[ps..pe]) {
            out[g as usize] = e;
        }
    }

    #[inline]
    fn is_dense(&self, b: Slot) -> bool {
        self.at[b].info & At::DENSE != 0
    }

    /// Slot `b`'s projected entry for process `p`, when `p` was retired by
    /// the time `b` was recorded (see `causality::retire`).
    #[inline]
    fn retired_entry(&self, b: Slot, p: ProcId) -> Option<u32> {
        let r = self.retired[p];
        if r == NONE || r > self.proj_epoch[b] {
            return None;
        }
        let (tau, full) = self.rule[p];
        Some(if self.proj_m[b] < tau { full } else { 0 })
    }

    /// Slot `b`'s projected clock entry for slot `a`'s group (0 when `b`
    /// has no projected clock).
    #[inline]
    fn proj_entry(&self, b: Slot, a: Slot) -> u32 {
        self.group_entry(b, self.slot_group[a], self.slot_proc[a])
    }

    /// Slot `b`'s projected clock entry for group `g` of its key, whose
    /// process is `p` (0 when `b` has no projected clock).
    #[inline]
    fn group_entry(&self, b: Slot, g: u32, p: ProcId) -> u32 {
        let ps = self.at[b].start;
        if ps == NONE {
            return 0;
        }
        if self.is_dense(b) {
            return if (g as usize) < self.at[b].len() {
                self.proj[(ps + g) as usize]
            } else {
                0
            };
        }
        if let Some(e) = self.retired_entry(b, p) {
            return e;
        }
        let qs = self.proj_group_start[b] as usize;
        let groups = &self.proj_group[qs..qs + self.at[b].len()];
        match groups.binary_search(&g) {
            Ok(i) => self.proj[ps as usize + i],
            Err(_) => 0,
        }
    }

    /// For large keys: the projected clock of write `b` as stored (see
    /// [`Sparse`]).
    pub fn sparse(&self, b: MopId) -> Option<Sparse<'_>> {
        let sb = self.slot[b];
        if sb.is_none() {
            return None;
        }
        self.sparse_at(sb)
    }

    /// Asks the processor to start loading the projected clock stored for
    /// slot `s` (a hint with no effect on results): a pass over a key's
    /// writes in slot order reads the clocks out of their storage order
    /// (recording order, interleaved with every other key's), one cache
    /// miss per write otherwise.
    #[inline]
    pub fn prefetch_projection(&self, s: Slot) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let ps = self.at[s].start;
            if ps == NONE {
                return;
            }
            let p = self.proj.as_ptr().wrapping_add(ps as usize);
            let len = self.at[s].len();
            let mut off = 0;
            while off < len {
                // SAFETY: SSE is part of the x86_64 baseline, and a
                // prefetch never faults, whatever the address.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast::<i8>()) };
                off += 16;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = s;
    }

    /// [`KeyIndex::sparse`] of the write at slot `sb`.
    pub fn sparse_at(&self, sb: Slot) -> Option<Sparse<'_>> {
        if self.at[sb].start == NONE {
            return None;
        }
        let (ps, len) = (self.at[sb].start as usize, self.at[sb].len());
        let groups = if self.is_dense(sb) {
            &self.iota[..len]
        } else {
            let qs = self.proj_group_start[sb] as usize;
            &self.proj_group[qs..qs + len]
        };
        Some(Sparse {
            epoch: self.proj_epoch[sb],
            m: self.proj_m[sb],
            groups,
            entries: &self.proj[ps..ps + len],
        })
    }

    /// Process `p`'s retirement `(epoch, tau, full)` as the projected
    /// clocks see it: a write recorded at an epoch at or after `epoch`
    /// has entry `full` for `p` when its earliest position is below `tau`,
    /// else 0 (see `causality::retire`).
    pub fn retirement(&self, p: ProcId) -> Option<(u32, u32, u32)> {
        let r = self.retired[p];
        (r != NONE).then(|| {
            let (tau, full) = self.rule[p];
            (r, tau, full)
        })
    }
}

/// Most writer processes per large key for which
/// [`KeyIndex::projection_memory`] offers the projected clocks' memory.
const POPULATE_GROUPS: usize = 64;

/// Asks the kernel to back `bytes` of memory from `addr` with huge pages
/// where it can (`MADV_HUGEPAGE`) and to fault it in, in 4 MiB steps from
/// the start (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14 and later;
/// nothing elsewhere). Contents are unchanged: pages already
/// present are left alone and new ones are the zero pages a first write
/// would fault in, so this only moves page faults (which on a virtual
/// machine can cost seconds per GB) to the calling thread. Memory that is
/// no longer mapped makes the call fail, which is ignored. Stops early
/// once `stop` is set (the memory's user is done with it).
pub fn populate(addr: usize, bytes: usize, fault_in: bool, stop: &std::sync::atomic::AtomicBool) {
    #[cfg(target_os = "linux")]
    {
        const STEP: usize = 4 << 20;
        let page = 4096;
        let start = addr.next_multiple_of(page);
        let end = (addr + bytes) / page * page;
        if end > start {
            // Huge pages where the kernel allows them on request
            // (`transparent_hugepage` set to `madvise`): fewer faults, and
            // fewer TLB misses for the passes that read the array out of
            // order. A hint as well; failure is ignored.
            // SAFETY: MADV_HUGEPAGE changes no memory contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
        let mut a = if fault_in { start } else { end };
        while a < end && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let len = STEP.min(end - a);
            // SAFETY: MADV_POPULATE_WRITE changes no memory contents and
            // fails (EFAULT/ENOMEM) on addresses that are not mapped.
            let r =
                unsafe { libc::madvise(a as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) };
            if r != 0 {
                return;
            }
            a += len;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (addr, bytes, fault_in, stop);
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
pub fn superseded_by(h: &History, idx: &KeyIndex, a: MopId, b: MopId) -> bool {
    if h.mops[a].op == h.mops[b].op {
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
    fn w(h: &History, k: &str, v: i64) -> MopId {
        h.mops
            .iter_enumerated()
            .find(|(_, m)| m.is_write() && m.arg == v && h.key(m.key).to_string() == k)
            .expect("the write")
            .0
    }

    /// "Op `i` happens before write `w`" read from `w`'s projected clock
    /// agrees with a graph search, for every `info` op and every write of
    /// a large key it can answer for (processes retired by `info`, hot
    /// keys, transactions of 1-3 operations).
    #[test]
    fn op_before_write_agrees_with_the_graph() {
        let (mut told, mut yes) = (0usize, 0usize);
        for (seed, keys, mops) in [(1u64, 2u32, 1u32), (2, 3, 3)] {
            let h = crate::testutil::hot_register(seed, 1500, keys, 8, mops, 0.05);
            let (idx, c) = crate::testutil::indexed(&h);
            assert!(c.cycles.is_empty());
            for (i, op) in h.ops.iter_enumerated() {
                if op.outcome != crate::model::Outcome::Info || c.seq[i] == 0 {
                    continue;
                }
                for (w, m) in h.mops.iter_enumerated() {
                    if !m.is_write() || m.op == i {
                        continue;
                    }
                    let Some(b) = idx.op_before_write(&h, op.process, c.seq[i], w) else {
                        continue;
                    };
                    let direct = c.direct_preds(m.op);
                    assert_eq!(
                        b,
                        c.reaches(i, m.op, &direct),
                        "seed {seed}: op {i:?}, write {w:?}"
                    );
                    told += 1;
                    yes += usize::from(b);
                }
            }
        }
        assert!(
            told > 100_000 && yes > 5_000 && yes < told,
            "{yes} of {told}"
        );
    }

    /// Keys laid out in two halves on two threads (large histories) give
    /// the index one pass gives.
    #[test]
    fn keys_laid_out_in_halves_match_one_pass() {
        use crate::synth::{GenOptions, Workload};
        let mut o = GenOptions::new(Workload::Register, 3000, 12, 3, 5);
        o.keys = Some(7);
        o.mops = Some(3);
        let h = crate::testutil::generated(&o);
        let (seq, _) = session(&h);
        let one = KeyIndex::laid_out(&h, &seq, usize::MAX);
        let two = KeyIndex::laid_out(&h, &seq, 0);
        assert!(one.writes.len() > 2000);
        assert!(one.writes == two.writes);
        assert!(one.slot_op == two.slot_op);
        assert!(one.slot_proc == two.slot_proc);
        assert!(one.slot_seq == two.slot_seq);
        assert!(one.slot_group == two.slot_group);
        assert!(one.slot == two.slot);
        assert!(one.val_slot == two.val_slot);
        assert_eq!(one.groups, two.groups);
        assert!(one.start == two.start);
        assert!(one.group_start == two.group_start);
        assert!(one.key_sig == two.key_sig);
        assert_eq!(one.proj.capacity(), two.proj.capacity());
    }

    #[test]
    fn populate_leaves_memory_as_it_was() {
        // 16 MiB, the first half written: contents unchanged after, the
        // spare capacity still usable; an unmapped range is ignored.
        let mut v: Vec<u32> = Vec::with_capacity(4 << 20);
        v.extend((0..2u32 << 20).map(|i| i.wrapping_mul(2_654_435_761)));
        let go = std::sync::atomic::AtomicBool::new(false);
        populate(v.as_ptr() as usize, v.capacity() * 4, true, &go);
        assert!(v
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i as u32).wrapping_mul(2_654_435_761)));
        v.resize(4 << 20, 7);
        assert!(v[2 << 20..].iter().all(|&x| x == 7));
        populate(4096, 1 << 20, true, &go);
        populate(0, 0, true, &go);
        populate(v.as_ptr() as usize, v.capacity() * 4, false, &go);
        populate(
            v.as_ptr() as usize,
            v.capacity() * 4,
            true,
            &std::sync::atomic::AtomicBool::new(true),
        );
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
        assert!(idx.small(h.mops[w1].key));
        assert!(idx.hb(&h, w1, w2) && !idx.hb(&h, w2, w1));
        assert!(!idx.hb(&h, w1, w3) && !idx.hb(&h, w3, w1) && !idx.hb(&h, w3, w2));
        // One transaction's writes are never ordered by hb; the later one
        // supersedes the earlier.
        assert!(!idx.hb(&h, w5, w6) && !idx.hb(&h, w6, w5));
        assert!(superseded_by(&h, &idx, w5, w6) && !superseded_by(&h, &idx, w6, w5));
        assert!(superseded_by(&h, &idx, w1, w2) && !superseded_by(&h, &idx, w1, w3));
        // Groups: one run per writing process, in process order.
        let k = h.mops[w1].key;
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
        let all: Vec<MopId> = (0..150).map(|v| w(&h, "x", v)).collect();
        let k = h.mops[all[0]].key;
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
        assert!(!idx.small(h.mops[first].key));
        assert!(idx.hb(&h, first, last) && !idx.hb(&h, last, first));
        assert!(idx.hb(&h, first, after) && idx.hb(&h, last, after));
        assert!(
            !idx.hb(&h, after, other) && !idx.hb(&h, other, after) && !idx.hb(&h, first, other)
        );
        // p0's 70 appends and p1's two operations, nothing of p2.
        assert_eq!(idx.projection(&h, after), Some(vec![70, 2, 0]));
        assert_eq!(idx.projection(&h, other), Some(vec![0, 0, 1]));
    }
}
