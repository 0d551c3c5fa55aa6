//! The causality graph of `anomalies.md`: vertices are client operations that
//! completed `ok` or `info`; edges are session order and reads-from.
//!
//! Only the edges that matter for reachability are stored: a read that
//! observed several writes of one process keeps the edge from the latest of
//! them (the earlier ones reach it through session order anyway). The graph
//! is ordered topologically (Kahn); whatever Kahn cannot order sits on or
//! behind a cycle and goes to petgraph's Tarjan SCC. Vector clocks over
//! processes are then computed in that order and kept only for operations
//! that write (the only ones "does `a` happen before `b`" is asked about
//! after the sweep); reads see their clock during the sweep through a
//! callback, which is where the visibility rules run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::ids::{IdVec, OpId, ProcId};
use crate::model::{History, Outcome, NONE};
use crate::parts;
use rustc_hash::FxHashMap;

/// Kind of an edge, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    Session,
    ReadsFrom,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Session => "session",
            EdgeKind::ReadsFrom => "reads-from",
        }
    }
}

pub struct Causality {
    /// Per op: 1-based position among its process's vertices; 0 = not a vertex.
    pub seq: IdVec<OpId, u32>,
    /// Per op: the previous vertex of its process, or `OpId::NONE`.
    pub prev: IdVec<OpId, OpId>,
    /// Per op: the next vertex of its process, or `OpId::NONE`.
    next: IdVec<OpId, OpId>,
    /// Reduced reads-from predecessors, CSR by reader op.
    pred_start: IdVec<OpId, u32>,
    preds: Vec<OpId>,
    /// The same edges by writer op (CSR: start per op, readers), built
    /// only when a reachability search needs them.
    succ: std::sync::OnceLock<(IdVec<OpId, u32>, Vec<OpId>)>,
    /// Per op (bit set): whether some op reads from it, so a search that
    /// only meets unread ops never needs the successor index.
    read_by: Vec<u64>,
    /// Per op: position in the topological order (`NONE` if not a vertex).
    pub pos: IdVec<OpId, u32>,
    /// Non-trivial strongly connected components (cycles), as op ids.
    pub cycles: Vec<Vec<OpId>>,
    /// Per op: which entry of `cycles` it belongs to, if any.
    pub cycle_of: FxHashMap<OpId, u32>,
    /// Per op: its process.
    procs_of: IdVec<OpId, ProcId>,
    /// Per process: its clock slot and the slot's generation when it took
    /// it (`slot << 32 | generation`; `u64::MAX` before its first vertex).
    /// Assigned during the sweep (see [`sweep`]); atomic because the
    /// vertex consumer reads it while the sweep assigns later processes.
    slot_gen: IdVec<ProcId, AtomicU64>,
    /// Per process: the chain position its slot held before it took it
    /// (0 unless it continued a dead process's chain, see
    /// [`Slots::take_first`]); its entry in a clock is the slot's position
    /// less this, at most its vertex count `total`.
    base: IdVec<ProcId, AtomicU32>,
    total: IdVec<ProcId, u32>,
    /// Per process: the retirement epoch from which clocks answer for it
    /// by [`Causality::entry`]'s rule instead of a slot (`NONE`: never
    /// retired), and the rule, `tau << 32 | full` (see [`retire`]).
    retired: IdVec<ProcId, AtomicU32>,
    rule: IdVec<ProcId, AtomicU64>,
    /// Clock width over processes whose slots are freed only when nothing
    /// can ask about them any more (reported as `graph.clock_width`).
    pub width: usize,
    /// Slots the clocks actually used: processes are also retired from
    /// their slots while something may still ask about them (see
    /// `retire`), so short-lived processes share few slots.
    pub clock_slots: usize,
    pub edge_count: usize,
}

/// A vector clock: a header of [`HEADER`] words, then per slot
/// `generation << 32 | seq`, so joining is an element-wise maximum and a
/// recycled slot's newer process wins. Slots past a clock's end are 0.
/// Header word `MINPOS` holds `u32::MAX - m`, where `m` is the earliest
/// topological position in the clock's causal past (a maximum of it is a
/// minimum of `m`); word `EPOCH` is the retirement epoch at which the
/// clock was made.
pub type Clock = [u64];

/// Header words of a [`Clock`].
pub const HEADER: usize = 2;
const MINPOS: usize = 0;
const EPOCH: usize = 1;

#[inline]
fn pack(gen: u32, seq: u32) -> u64 {
    ((gen as u64) << 32) | seq as u64
}

/// Session order: per op its 1-based position among its process's vertices
/// (0 if not a vertex), and its previous vertex (`OpId::NONE` if first).
pub fn session(h: &History) -> (IdVec<OpId, u32>, IdVec<OpId, OpId>) {
    let n = h.ops.len();
    let mut seq = IdVec::filled(0u32, n);
    let mut prev = IdVec::filled(OpId::NONE, n);
    let mut last: IdVec<ProcId, OpId> = IdVec::filled(OpId::NONE, h.processes.len());
    let mut count: IdVec<ProcId, u32> = IdVec::filled(0, h.processes.len());
    for (i, op) in h.ops.iter_enumerated() {
        if !op.is_vertex() {
            continue;
        }
        let p = op.process;
        count[p] += 1;
        seq[i] = count[p];
        prev[i] = last[p];
        last[p] = i;
    }
    (seq, prev)
}

/// The reduced reads-from edges, CSR by reader op: per reader, the latest
/// observed write op of each process (earlier ones reach it by session).
pub struct ReadsFrom {
    pred_start: IdVec<OpId, u32>,
    preds: Vec<OpId>,
}

/// Per stored observed value (`History::vals` slot): the writing op and
/// its process, the process `ProcId::NONE` when the write is not a vertex
/// (it failed); both `NONE` when no write produced the value. Looked up once
/// per slot rather than once per read, since list reads share their slots
/// (see `model::Builder`). A process's ops are numbered in its session
/// order, so the op also orders the writes of one process.
pub struct Writers {
    pub slot: Vec<(OpId, ProcId)>,
}

impl Writers {
    pub fn new(h: &History, seq: &IdVec<OpId, u32>) -> Writers {
        let slot = h
            .resolved
            .iter()
            .map(|&w| {
                if w.is_none() {
                    return (OpId::NONE, ProcId::NONE);
                }
                let wo = h.mops[w].op;
                let wp = if seq[wo] == 0 {
                    ProcId::NONE
                } else {
                    h.ops[wo].process
                };
                (wo, wp)
            })
            .collect();
        Writers { slot }
    }

    /// The writers of what `m` observed, parallel to `History::obs(m)`.
    pub fn of(&self, m: &crate::model::MopRec) -> &[(OpId, ProcId)] {
        &self.slot[m.obs_range()]
    }
}

impl ReadsFrom {
    /// Computes the edges for every reader, split over the available cores
    /// (contiguous ranges of readers; the result is the same as one
    /// thread's).
    pub fn new(h: &History, writers: &Writers) -> ReadsFrom {
        let slot = &writers.slot;
        let n = h.ops.len();
        let parts = parts::by_observed(h);
        // The first part's vectors are sized for every part (an upper
        // bound: one edge per observed value; untouched capacity costs no
        // memory) so the others are appended without moving it.
        let observed: usize = parts.iter().map(|p| p.observed).sum();
        let mut pieces = parts::run(&parts, |i, p| {
            let (mut ends, mut preds) = if i == 0 {
                let mut start = IdVec::from_vec(Vec::with_capacity(n + 1));
                start.push(0);
                (start, Vec::with_capacity(observed))
            } else {
                (
                    IdVec::from_vec(Vec::with_capacity(p.ops.len())),
                    Vec::with_capacity(p.observed),
                )
            };
            reduce(h, slot, p.ops.clone(), &mut ends, &mut preds);
            (ends, preds)
        })
        .into_iter();
        let (mut pred_start, mut preds) = pieces.next().expect("at least one part");
        for (ends, ps) in pieces {
            let base = preds.len() as u32;
            pred_start.extend(ends.iter().map(|e| e + base));
            preds.extend_from_slice(&ps);
        }
        ReadsFrom { pred_start, preds }
    }
}

/// The reduced reads-from predecessors of the readers in `ops`, appended
/// to `preds`, with the end of each reader's edges appended to `ends`.
fn reduce(
    h: &History,
    slot: &[(OpId, ProcId)],
    ops: std::ops::Range<usize>,
    ends: &mut Vec<u32>,
    preds: &mut Vec<OpId>,
) {
    // Per process: (reader stamp, latest op), so picking the latest write
    // per process costs O(1) per observed value.
    let mut best: IdVec<ProcId, (OpId, OpId)> =
        IdVec::filled((OpId::NONE, OpId(0)), h.processes.len());
    let mut touched: Vec<ProcId> = Vec::new();
    for r in ops.map(OpId::new) {
        let op = &h.ops[r];
        if op.outcome == Outcome::Ok {
            touched.clear();
            for m in &h.mops[op.mops()] {
                for &(wo, wp) in &slot[m.obs_range()] {
                    if wp.is_none() || wo == r {
                        continue;
                    }
                    // Earlier ops of the reader's own process reach it by session.
                    if wp == op.process && wo < r {
                        continue;
                    }
                    let b = &mut best[wp];
                    if b.0 != r {
                        *b = (r, wo);
                        touched.push(wp);
                    } else if wo > b.1 {
                        b.1 = wo;
                    }
                }
            }
            touched.sort_unstable();
            for &p in &touched {
                preds.push(best[p].1);
            }
        }
        ends.push(preds.len() as u32);
    }
}

impl Causality {
    /// Builds the graph, orders it and computes clocks; `on_vertex(op, clock,
    /// causality)` runs for each vertex once its clock is known. A clock is
    /// exact for every process that wrote a key the operation touches (or,
    /// for a `final` read, only its own process: finals are checked by
    /// reachability instead, see [`Causality::reaches`]).
    pub fn build(
        h: &History,
        seq: IdVec<OpId, u32>,
        prev: IdVec<OpId, OpId>,
        rf: ReadsFrom,
        on_vertex: impl FnMut(OpId, &Clock, &Causality) + Send,
    ) -> Causality {
        let n = h.ops.len();
        let procs = h.processes.len();
        let mut count: IdVec<ProcId, u32> = IdVec::filled(0, procs);
        for (i, op) in h.ops.iter_enumerated() {
            if seq[i] != 0 {
                count[op.process] += 1;
            }
        }
        let ReadsFrom { pred_start, preds } = rf;
        let edge_count = preds.len() + prev.iter().filter(|p| !p.is_none()).count();
        let mut next = IdVec::filled(OpId::NONE, n);
        for (i, &p) in prev.iter_enumerated() {
            if !p.is_none() {
                next[p] = i;
            }
        }
        let edges = Edges {
            seq: &seq,
            prev: &prev,
            next: &next,
            pred_start: &pred_start,
            preds: &preds,
        };
        let mut topo = edges.kahn_order();
        let (cycles, cycle_of) = edges.order_the_rest(&mut topo);
        let Topo { order, groups, .. } = topo;
        let mut pos = IdVec::filled(NONE, n);
        for (i, &v) in order.iter().enumerate() {
            pos[v] = i as u32;
        }
        // Which ops join their readers-from clocks: all but final reads
        // that end their process (finals are checked by reachability).
        let joins_v: IdVec<OpId, bool> = h
            .ops
            .ids()
            .map(|v| !(h.ops[v].is_final && next[v].is_none()))
            .collect();
        let (refcount, read_by) = edges.readers(&joins_v);
        let last_use = clock_lifetimes(h, &seq, &pos);
        let width = assign_slots(h, &order, &groups, &count, &last_use);

        let c = Causality {
            seq,
            prev,
            next,
            pred_start,
            preds,
            succ: std::sync::OnceLock::new(),
            read_by,
            pos,
            cycles,
            cycle_of,
            procs_of: h.ops.iter().map(|op| op.process).collect(),
            slot_gen: (0..procs).map(|_| AtomicU64::new(u64::MAX)).collect(),
            base: (0..procs).map(|_| AtomicU32::new(0)).collect(),
            total: count.clone(),
            retired: (0..procs).map(|_| AtomicU32::new(NONE)).collect(),
            rule: (0..procs).map(|_| AtomicU64::new(0)).collect(),
            width,
            clock_slots: 0,
            edge_count,
        };
        let used = sweep_clocks(
            h, &c, &order, &groups, count, refcount, &joins_v, &last_use, on_vertex,
        );
        let mut c = c;
        c.clock_slots = used;
        c
    }

    fn rf_preds(&self, v: OpId) -> &[OpId] {
        csr(&self.pred_start, &self.preds, v)
    }

    /// Op `v`'s direct successors: the ops reading from it, then its
    /// session successor.
    pub fn successors(&self, v: OpId) -> impl Iterator<Item = OpId> + '_ {
        let rf: &[OpId] = if bit(&self.read_by, v) {
            self.rf_succs(v)
        } else {
            &[]
        };
        rf.iter().copied().chain(self.next[v].get())
    }

    fn rf_succs(&self, v: OpId) -> &[OpId] {
        let (start, succs) = self.succ.get_or_init(|| {
            let n = self.pred_start.len() - 1;
            let mut start: IdVec<OpId, u32> = IdVec::filled(0, n + 1);
            for &w in &self.preds {
                start[w.index() + 1] += 1;
            }
            for i in 0..n {
                start[i + 1] += start[i];
            }
            let mut fill = start.clone();
            let mut succs = vec![OpId(0); self.preds.len()];
            for r in (0..n).map(OpId::new) {
                for &w in self.rf_preds(r) {
                    succs[fill[w] as usize] = r;
                    fill[w] += 1;
                }
            }
            (start, succs)
        });
        csr(start, succs, v)
    }

    /// Joins `w`'s stored clock into `clock`, unless `clock` already knows `w`.
    fn join_from(&self, clock: &mut Vec<u64>, w: OpId, stored: &IdVec<OpId, Option<Vec<u64>>>) {
        let Some(src) = &stored[w] else {
            return;
        };
        if self.in_past(w, clock) {
            return;
        }
        join(clock, src);
    }

    /// The process (dense id) of an op.
    pub fn process_of(&self, op: OpId) -> ProcId {
        self.procs_of[op]
    }

    /// The highest seq of process `p` in the causal past given by `clock`
    /// (exact for every process that wrote a key the clock's operation
    /// touches, see [`Causality::build`]): from `p`'s slot, or, once `p` is
    /// retired (and the clock made after that), from the clock's earliest
    /// position (see `retire`).
    #[inline]
    pub fn entry(&self, clock: &Clock, p: ProcId) -> u32 {
        let r = self.retired[p].load(Ordering::Acquire);
        if r != NONE && clock[EPOCH] as u32 >= r {
            let rule = self.rule[p].load(Ordering::Relaxed);
            let m = u32::MAX - clock[MINPOS] as u32;
            return if m < (rule >> 32) as u32 {
                rule as u32
            } else {
                0
            };
        }
        self.slot_entry(clock, p)
    }

    /// `p`'s entry in `clock` from its slot (see [`slot_entry`]).
    #[inline]
    fn slot_entry(&self, clock: &Clock, p: ProcId) -> u32 {
        slot_entry(
            clock,
            self.slot_gen[p].load(Ordering::Relaxed),
            self.base[p].load(Ordering::Relaxed),
            self.total[p],
        )
    }

    /// The retirement epoch at which `clock` was made (see `retire`).
    #[inline]
    pub fn epoch_of(&self, clock: &Clock) -> u32 {
        clock[EPOCH] as u32
    }

    /// The earliest topological position in the causal past given by
    /// `clock` (`u32::MAX` for an empty past).
    #[inline]
    pub fn min_pos(&self, clock: &Clock) -> u32 {
        u32::MAX - clock[MINPOS] as u32
    }

    /// Whether process `p` has been retired from its slot so far, with
    /// the epoch and its rule `(tau, full)`: a clock made at or after the
    /// epoch knows `full` of `p` when its earliest position is below
    /// `tau`, else nothing (see `retire`).
    #[inline]
    pub fn retired_at(&self, p: ProcId) -> Option<(u32, u32, u32)> {
        let r = self.retired[p].load(Ordering::Acquire);
        if r == NONE {
            return None;
        }
        let rule = self.rule[p].load(Ordering::Relaxed);
        Some((r, (rule >> 32) as u32, rule as u32))
    }

    /// Whether op `a` (a vertex) is in the causal past given by `clock`.
    #[inline]
    pub fn in_past(&self, a: OpId, clock: &Clock) -> bool {
        let sa = self.seq[a];
        sa != 0 && self.entry(clock, self.procs_of[a]) >= sa
    }

    /// The direct predecessors of `r`, for [`Causality::reaches`].
    pub fn direct_preds(&self, r: OpId) -> rustc_hash::FxHashSet<OpId> {
        self.rf_preds(r)
            .iter()
            .copied()
            .chain(self.prev[r].get())
            .collect()
    }

    /// Whether op `a` reaches op `r` (a path of edges), searched forwards
    /// from `a` over vertices placed before `r` in the topological order,
    /// stopping at `r` or at any of its direct predecessors (`direct`, from
    /// [`Causality::direct_preds`]). Exact: no budget. A small search keeps
    /// its visited set in a hash set; one that grows past
    /// [`SMALL_SEARCH`] vertices moves to a bit set over all ops, so a
    /// search costs at most one pass over the graph.
    pub fn reaches(&self, a: OpId, r: OpId, direct: &rustc_hash::FxHashSet<OpId>) -> bool {
        if self.seq[a] == 0 || self.seq[r] == 0 || a == r {
            return false;
        }
        self.search(a, r, direct).0
    }

    /// The search of [`Causality::reaches`]; also whether it outgrew
    /// [`SMALL_SEARCH`].
    fn search(&self, a: OpId, r: OpId, direct: &rustc_hash::FxHashSet<OpId>) -> (bool, bool) {
        // Every vertex on a path to `r` is placed before `r`, or with it in
        // its strongly connected component (placed together).
        let ceiling = match self.cycle_of.get(&r) {
            Some(&ci) => {
                let scc = &self.cycles[ci as usize];
                scc.iter().map(|&v| self.pos[v]).max().unwrap_or(0) + 1
            }
            None => self.pos[r],
        };
        let mut seen = Visited::default();
        let mut stack = vec![a];
        seen.insert(a, self.seq.len());
        while let Some(v) = stack.pop() {
            if direct.contains(&v) {
                return (true, !seen.bits.is_empty());
            }
            let nx = self.next[v].get();
            let rf: &[OpId] = if bit(&self.read_by, v) {
                self.rf_succs(v)
            } else {
                &[]
            };
            for &u in rf.iter().chain(nx.as_ref()) {
                if u == r {
                    return (true, !seen.bits.is_empty());
                }
                if self.pos[u] < ceiling && seen.insert(u, self.seq.len()) {
                    stack.push(u);
                }
            }
        }
        (false, !seen.bits.is_empty())
    }

    /// Every op that reaches `r` (its causal past), as a bit set over ops:
    /// one backward pass over `r`'s ancestors.
    pub fn ancestors(&self, r: OpId) -> Vec<u64> {
        let mut bits = vec![0u64; self.seq.len().div_ceil(64)];
        let mut stack = vec![r];
        while let Some(v) = stack.pop() {
            for &u in self.prev[v].get().iter().chain(self.rf_preds(v)) {
                if set_bit(&mut bits, u) {
                    stack.push(u);
                }
            }
        }
        bits
    }

    /// The kind of a step `from → to` of a path: session when both are of
    /// one process, `from` first (a stored edge, or a run of them that
    /// [`Causality::path`] shortened), else reads-from.
    pub fn edge_kind(&self, from: OpId, to: OpId) -> EdgeKind {
        let (f, t) = (from, to);
        if self.prev[t] == from
            || (self.procs_of[f] == self.procs_of[t]
                && self.seq[f] != 0
                && self.seq[f] < self.seq[t])
        {
            EdgeKind::Session
        } else {
            EdgeKind::ReadsFrom
        }
    }

    /// A shortest path `a → … → b` of stored edges, searched backwards from
    /// `b` (over vertices not before `a` in the topological order when the
    /// graph is acyclic); `None` exactly when `a` does not reach `b`.
    pub fn path(&self, a: OpId, b: OpId) -> Option<Vec<OpId>> {
        self.path_within(a, b, |_| true)
    }

    /// [`Causality::path`] through vertices `inside` accepts only.
    fn path_within(&self, a: OpId, b: OpId, inside: impl Fn(OpId) -> bool) -> Option<Vec<OpId>> {
        if self.seq[a] == 0 || self.seq[b] == 0 {
            return None;
        }
        let floor = self.pos[a];
        let mut parent: FxHashMap<OpId, OpId> = FxHashMap::default();
        let mut queue = std::collections::VecDeque::new();
        parent.insert(b, OpId::NONE);
        queue.push_back(b);
        let cyclic = !self.cycles.is_empty();
        while let Some(v) = queue.pop_front() {
            let prev = self.prev[v];
            let rf = self.rf_preds(v);
            for &u in std::iter::once(&prev).chain(rf.iter()) {
                if u.is_none() || parent.contains_key(&u) || !inside(u) {
                    continue;
                }
                if !cyclic && self.pos[u] < floor {
                    continue;
                }
                parent.insert(u, v);
                if u == a {
                    let mut path = vec![a];
                    let mut x = a;
                    while x != b {
                        x = parent[&x];
                        path.push(x);
                    }
                    return Some(self.shorten(path));
                }
                queue.push_back(u);
            }
        }
        None
    }

    /// A path of more than [`LONG_PATH`] steps with its runs of session
    /// edges (one process's consecutive operations) cut to their ends, so
    /// an explanation names what matters however far back it reaches.
    fn shorten(&self, path: Vec<OpId>) -> Vec<OpId> {
        if path.len() <= LONG_PATH {
            return path;
        }
        let same = |a: OpId, b: OpId| self.prev[b] == a;
        let mut out = vec![path[0]];
        for i in 1..path.len() {
            let v = path[i];
            let inner_run = i + 1 < path.len() && same(path[i - 1], v) && same(v, path[i + 1]);
            if !inner_run {
                out.push(v);
            }
        }
        out
    }

    /// A cycle through the given strongly connected component, as ops
    /// `[v0, v1, …, v0]`.
    pub fn cycle_path(&self, scc: &[OpId]) -> Vec<OpId> {
        let start = scc[0];
        // Find a predecessor of `start` inside the component, then a path
        // from `start` to it.
        let inside = |u: OpId| self.cycle_of.get(&u) == self.cycle_of.get(&start);
        let prev = self.prev[start];
        let pred = std::iter::once(prev)
            .chain(self.rf_preds(start).iter().copied())
            .find(|&u| !u.is_none() && inside(u))
            .expect("a vertex of a cycle has a predecessor on it");
        // A strongly connected component holds a path between any two of
        // its vertices, and the search stays inside it.
        let mut path = if pred == start {
            vec![start]
        } else {
            self.path_within(start, pred, inside)
                .expect("a strongly connected component holds a path between its vertices")
        };
        path.push(start);
        path
    }
}

/// Repeated "does `a` happen before `r`" for one `r`: forward searches
/// while they stay small; after one that did not, `r`'s whole causal past
/// is computed once and answers the rest.
pub struct PastOf<'c> {
    c: &'c Causality,
    r: OpId,
    direct: rustc_hash::FxHashSet<OpId>,
    ancestors: std::cell::RefCell<Option<Vec<u64>>>,
}

impl<'c> PastOf<'c> {
    pub fn new(c: &'c Causality, r: OpId) -> Self {
        PastOf {
            c,
            r,
            direct: c.direct_preds(r),
            ancestors: std::cell::RefCell::new(None),
        }
    }

    /// Whether op `a` happens before `r` (exact).
    pub fn contains(&self, a: OpId) -> bool {
        let (c, r) = (self.c, self.r);
        if c.seq[a] == 0 || c.seq[r] == 0 || a == r {
            return false;
        }
        let mut anc = self.ancestors.borrow_mut();
        if let Some(bits) = anc.as_ref() {
            return bit(bits, a);
        }
        let (found, big) = c.search(a, r, &self.direct);
        if big {
            *anc = Some(c.ancestors(r));
        }
        found
    }
}

/// Paths longer than this (in vertices) are shortened for explanations.
pub const LONG_PATH: usize = 32;

/// Vertices a reachability search tracks in a hash set before it moves to
/// a bit set over every op.
pub const SMALL_SEARCH: usize = 1 << 14;

/// The visited set of a reachability search: a hash set while small, then
/// a bit set over all ops.
#[derive(Default)]
struct Visited {
    small: rustc_hash::FxHashSet<OpId>,
    bits: Vec<u64>,
}

impl Visited {
    /// Inserts `v` (an op of `n`); whether it was new.
    fn insert(&mut self, v: OpId, n: usize) -> bool {
        if !self.bits.is_empty() {
            return set_bit(&mut self.bits, v);
        }
        if !self.small.insert(v) {
            return false;
        }
        if self.small.len() > SMALL_SEARCH {
            self.bits = vec![0; n.div_ceil(64)];
            for x in self.small.drain() {
                set_bit(&mut self.bits, x);
            }
        }
        true
    }
}

/// Whether op `v`'s bit is set in a bit set over ops.
#[inline]
pub fn bit(bits: &[u64], v: OpId) -> bool {
    bits[v.index() / 64] & (1 << (v.0 % 64)) != 0
}

/// Sets op `v`'s bit in a bit set over ops; whether it was clear.
#[inline]
fn set_bit(bits: &mut [u64], v: OpId) -> bool {
    let (w, b) = (v.index() / 64, 1u64 << (v.0 % 64));
    let new = bits[w] & b == 0;
    bits[w] |= b;
    new
}

/// Op `v`'s entries of a CSR table (`start` per op, then one past the last).
#[inline]
fn csr<'a>(start: &IdVec<OpId, u32>, items: &'a [OpId], v: OpId) -> &'a [OpId] {
    &items[start[v] as usize..start[v.index() + 1] as usize]
}

/// Vertices (with their clocks) handed to `on_vertex` at a time.
/// The graph's edges while it is being ordered (borrowed from the
/// [`Causality`] under construction).
struct Edges<'a> {
    seq: &'a IdVec<OpId, u32>,
    prev: &'a IdVec<OpId, OpId>,
    next: &'a IdVec<OpId, OpId>,
    pred_start: &'a IdVec<OpId, u32>,
    preds: &'a [OpId],
}

/// A topological order in progress: vertices in order, and the group
/// boundaries (Kahn vertices are singletons; the rest are SCCs).
struct Topo {
    order: Vec<OpId>,
    groups: Vec<u32>,
    /// Per op: whether Kahn placed it.
    placed: IdVec<OpId, bool>,
    /// Vertices in all.
    vertices: usize,
}

impl Edges<'_> {
    fn rf_preds(&self, v: OpId) -> &[OpId] {
        csr(self.pred_start, self.preds, v)
    }

    /// Kahn's order without a successor index: vertices are scanned in
    /// history order; one whose predecessors are all placed is placed at
    /// once, else it waits on its first unplaced predecessor (a list per
    /// predecessor), and placing a vertex wakes its waiters, earliest
    /// first. That is exactly the order of Kahn's algorithm always taking
    /// the ready vertex earliest in the history (so the order follows time
    /// and clock slots can be recycled), without indexing every edge by its
    /// source.
    fn kahn_order(&self) -> Topo {
        let n = self.seq.len();
        let mut placed = IdVec::filled(false, n);
        let mut wait_head: IdVec<OpId, u32> = IdVec::filled(NONE, n);
        let mut waits: Vec<(OpId, u32)> = Vec::new(); // (waiter, next entry)
        let mut vertices = 0usize;
        let mut order: Vec<OpId> = Vec::with_capacity(n);
        let mut woken: BinaryHeap<Reverse<OpId>> = BinaryHeap::new();
        let blocker = |v: OpId, placed: &IdVec<OpId, bool>| -> Option<OpId> {
            let p = self.prev[v];
            if !p.is_none() && !placed[p] {
                return Some(p);
            }
            self.rf_preds(v).iter().copied().find(|&u| !placed[u])
        };
        for (v, &sv) in self.seq.iter_enumerated() {
            if sv == 0 {
                continue;
            }
            vertices += 1;
            if let Some(u) = blocker(v, &placed) {
                waits.push((v, wait_head[u]));
                wait_head[u] = waits.len() as u32 - 1;
                continue;
            }
            woken.push(Reverse(v));
            while let Some(Reverse(x)) = woken.pop() {
                placed[x] = true;
                order.push(x);
                let mut e = std::mem::replace(&mut wait_head[x], NONE);
                while e != NONE {
                    let (w, nx) = waits[e as usize];
                    match blocker(w, &placed) {
                        Some(u) => {
                            waits[e as usize] = (w, wait_head[u]);
                            wait_head[u] = e;
                        }
                        None => woken.push(Reverse(w)),
                    }
                    e = nx;
                }
            }
        }
        let groups: Vec<u32> = (0..=order.len() as u32).collect();
        Topo {
            order,
            groups,
            placed,
            vertices,
        }
    }

    /// Whatever Kahn could not place sits on or behind a cycle: appends its
    /// strongly connected components (petgraph's Tarjan) in topological
    /// order, one group each, and returns the cycles (SCCs of more than one
    /// vertex) with each member's cycle.
    fn order_the_rest(&self, topo: &mut Topo) -> (Vec<Vec<OpId>>, FxHashMap<OpId, u32>) {
        let mut cycles = Vec::new();
        let mut cycle_of = FxHashMap::default();
        if topo.order.len() == topo.vertices {
            return (cycles, cycle_of);
        }
        let rest: Vec<OpId> = self
            .seq
            .ids()
            .filter(|&i| self.seq[i] != 0 && !topo.placed[i])
            .collect();
        let mut local = FxHashMap::default();
        let mut g: DiGraph<OpId, ()> = DiGraph::with_capacity(rest.len(), rest.len() * 2);
        for &v in &rest {
            local.insert(v, g.add_node(v));
        }
        // Reads-from edges among them, by source then reader (the order a
        // successor index would list them in).
        let mut rf_edges: Vec<(OpId, OpId)> = Vec::new();
        for &v in &rest {
            for &u in self.rf_preds(v) {
                if local.contains_key(&u) {
                    rf_edges.push((u, v));
                }
            }
        }
        rf_edges.sort_unstable();
        let mut e = 0;
        for &v in &rest {
            let a = local[&v];
            if !self.next[v].is_none() {
                if let Some(&b) = local.get(&self.next[v]) {
                    g.add_edge(a, b, ());
                }
            }
            while e < rf_edges.len() && rf_edges[e].0 == v {
                g.add_edge(a, local[&rf_edges[e].1], ());
                e += 1;
            }
        }
        // petgraph's Tarjan recurses: give it a stack to match the graph.
        let stack = (64 << 20).max(rest.len() * 512);
        let sccs = std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                let mut sccs: Vec<Vec<OpId>> = tarjan_scc(&g)
                    .into_iter()
                    .map(|c| c.into_iter().map(|x| g[x]).collect())
                    .collect();
                sccs.reverse();
                sccs
            })
            .expect("spawn the cycle search")
            .join()
            .expect("cycle search");
        for mut scc in sccs {
            scc.sort_unstable();
            topo.order.extend_from_slice(&scc);
            topo.groups.push(topo.order.len() as u32);
            if scc.len() > 1 {
                for &v in &scc {
                    cycle_of.insert(v, cycles.len() as u32);
                }
                cycles.push(scc);
            }
        }
        (cycles, cycle_of)
    }

    /// Per op: how many joining vertices read from it (its clock is kept
    /// until the last has joined), and whether any op reads from it at all
    /// (a bit set).
    fn readers(&self, joins_v: &IdVec<OpId, bool>) -> (IdVec<OpId, u32>, Vec<u64>) {
        let n = self.seq.len();
        let mut refcount = IdVec::filled(0u32, n);
        let mut read_by = vec![0u64; n.div_ceil(64)];
        for (r, &joins) in joins_v.iter_enumerated() {
            let rf = self.rf_preds(r);
            for &w in rf {
                set_bit(&mut read_by, w);
            }
            if self.seq[r] != 0 && joins {
                for &w in rf {
                    refcount[w] += 1;
                }
            }
        }
        (refcount, read_by)
    }
}

/// Liveness of each process's clock component, as a position in the
/// topological order: until the last non-final vertex touching a key it
/// wrote, or its own last vertex.
fn clock_lifetimes(
    h: &History,
    seq: &IdVec<OpId, u32>,
    pos: &IdVec<OpId, u32>,
) -> IdVec<ProcId, u32> {
    let mut key_last = IdVec::filled(0u32, h.keys.len());
    for (i, op) in h.ops.iter_enumerated() {
        if seq[i] == 0 || op.is_final {
            continue;
        }
        for m in &h.mops[op.mops()] {
            key_last[m.key] = key_last[m.key].max(pos[i]);
        }
    }
    let mut last_use = IdVec::filled(0u32, h.processes.len());
    for (i, op) in h.ops.iter_enumerated() {
        if seq[i] != 0 {
            let p = op.process;
            last_use[p] = last_use[p].max(pos[i]);
        }
    }
    for (k, ws) in h.key_writes.iter_enumerated() {
        for &w in ws {
            let o = h.mops[w].op;
            if seq[o] != 0 {
                let p = h.ops[o].process;
                last_use[p] = last_use[p].max(key_last[k]);
            }
        }
    }
    last_use
}

/// The clock width with one slot per process, each taken at its first
/// vertex and freed after its last use (group by group in topological
/// order), so processes that never overlap share one: the figure reported
/// as `graph.clock_width`. The sweep frees slots earlier still (see
/// [`retire`]).
fn assign_slots(
    h: &History,
    order: &[OpId],
    groups: &[u32],
    count: &IdVec<ProcId, u32>,
    last_use: &IdVec<ProcId, u32>,
) -> usize {
    let procs = h.processes.len();
    let mut has = IdVec::filled(false, procs);
    let mut free = 0usize;
    let mut width = 0usize;
    let release = release_order(count, last_use);
    let mut rp = 0;
    for gi in 0..groups.len() - 1 {
        let (a, b) = (groups[gi] as usize, groups[gi + 1] as usize);
        for &v in &order[a..b] {
            let p = h.ops[v].process;
            if !has[p] {
                has[p] = true;
                if free > 0 {
                    free -= 1;
                } else {
                    width += 1;
                }
            }
        }
        while rp < release.len() && (release[rp].0 as usize) < b {
            free += 1;
            rp += 1;
        }
    }
    width
}

/// Processes with vertices as `(last use, process)`, sorted.
fn release_order(count: &IdVec<ProcId, u32>, last_use: &IdVec<ProcId, u32>) -> Vec<(u32, ProcId)> {
    let mut release: Vec<(u32, ProcId)> = count
        .ids()
        .filter(|&p| count[p] > 0)
        .map(|p| (last_use[p], p))
        .collect();
    release.sort_unstable();
    release
}

/// A process's entry in `clock` from its slot (`slot_gen`, `base` and
/// `total` as in [`Causality::slot_gen`]): the slot holds a position on
/// the slot's chain (see [`Slots::take_first`]), the process's vertices
/// being positions `base + 1 ..= base + total`.
#[inline]
fn slot_entry(clock: &Clock, slot_gen: u64, base: u32, total: u32) -> u32 {
    if slot_gen == u64::MAX {
        return 0;
    }
    let (s, g) = ((slot_gen >> 32) as usize, slot_gen as u32);
    match clock.get(HEADER + s) {
        Some(&e) if (e >> 32) as u32 == g => (e as u32).saturating_sub(base).min(total),
        _ => 0,
    }
}

/// Element-wise maximum of `src` into `dst` (grown to `src`'s length).
#[inline]
fn join(dst: &mut Vec<u64>, src: &[u64]) {
    let n = dst.len().min(src.len());
    for (a, b) in dst.iter_mut().zip(&src[..n]) {
        *a = (*a).max(*b);
    }
    // Past `dst`'s end its entries are 0: the maximum is `src`'s.
    dst.extend_from_slice(&src[n..]);
}

/// Vector clocks in topological order. Each process has one live clock
/// (its latest vertex's); a write's clock is kept only until its last
/// reader has joined it. `on_vertex` runs on a second thread, fed batches
/// of (vertex, clock) in the same order, so the callers' per-vertex work
/// overlaps the sweep, until the clocks grow wide ([`WIDE_CLOCK`]): then
/// copying them costs more than the overlap saves, and the sweep takes
/// `on_vertex` back once the second thread has finished its batches and
/// calls it itself. Either way `on_vertex` sees every vertex once, in
/// topological order. Returns the number of slots the clocks used.
#[allow(clippy::too_many_arguments)]
fn sweep_clocks<F>(
    h: &History,
    c: &Causality,
    order: &[OpId],
    groups: &[u32],
    count: IdVec<ProcId, u32>,
    mut refcount: IdVec<OpId, u32>,
    joins_v: &IdVec<OpId, bool>,
    last_use: &IdVec<ProcId, u32>,
    on_vertex: F,
) -> usize
where
    F: FnMut(OpId, &Clock, &Causality) + Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
        let mut on_vertex = on_vertex;
        let consumer = scope.spawn(move || {
            for mut b in rx {
                let mut from = 0;
                for (&v, &end) in b.vertices.iter().zip(&b.ends) {
                    on_vertex(v, &b.clocks[from..end], c);
                    from = end;
                }
                b.vertices.clear();
                b.ends.clear();
                b.clocks.clear();
                // The sweep may have finished: then the batch is dropped.
                let _ = back_tx.send(b);
            }
            // Handed back when the sweep calls it itself from now on.
            on_vertex
        });
        let mut pipe = Some((tx, consumer));
        let mut inline: Option<F> = None;
        let mut batch = Batch::default();
        let mut emit = |v: OpId, clock: &[u64]| {
            if let Some(f) = inline.as_mut() {
                f(v, clock, c);
                return;
            }
            batch.vertices.push(v);
            batch.clocks.extend_from_slice(clock);
            batch.ends.push(batch.clocks.len());
            if batch.vertices.len() == BATCH || batch.clocks.len() >= BATCH_WORDS {
                let wide = batch.clocks.len() >= WIDE_CLOCK * batch.vertices.len();
                let next = back_rx.try_recv().unwrap_or_default();
                let full = std::mem::replace(&mut batch, next);
                let (tx, consumer) = pipe.take().expect("pipeline until clocks are wide");
                tx.send(full).expect("vertex consumer");
                if wide {
                    // Copying clocks this wide for the consumer costs more
                    // than the consumer's work: wait for it to finish what
                    // it has and call it here, in the same order.
                    drop(tx);
                    inline = Some(consumer.join().expect("vertex consumer"));
                } else {
                    pipe = Some((tx, consumer));
                }
            }
        };
        let used = sweep(
            h,
            c,
            order,
            groups,
            count,
            &mut refcount,
            joins_v,
            last_use,
            &mut emit,
        );
        if let Some((tx, consumer)) = pipe {
            if !batch.vertices.is_empty() {
                tx.send(std::mem::take(&mut batch))
                    .expect("vertex consumer");
            }
            drop(tx);
            consumer.join().expect("vertex consumer");
        }
        used
    })
}

const BATCH: usize = if cfg!(test) { 16 } else { 2048 };
/// A batch also ends once its clocks fill this many entries (1 MiB): with
/// thousands of process ids a clock is tens of KB, and batches of
/// [`BATCH`] such clocks (hundreds of MB each) were grown, copied and
/// faulted in afresh, which took most of the sweep's time.
const BATCH_WORDS: usize = 1 << 17;
/// Clocks longer than this on average over a batch (in words; 8 KiB)
/// are not copied for the consumer thread any more: the sweep calls
/// `on_vertex` itself from then on (see [`sweep_clocks`]).
const WIDE_CLOCK: usize = if cfg!(test) { 4 } else { 1 << 10 };

#[derive(Default)]
struct Batch {
    vertices: Vec<OpId>,
    /// Per vertex: the end of its clock in `clocks`.
    ends: Vec<usize>,
    /// The vertices' clocks, back to back.
    clocks: Vec<u64>,
}

/// Retirement candidates gathered before a scan (at least; see
/// [`Slots::dead`]). Small in unit tests, so that their histories retire
/// processes.
const RETIRE_BATCH: usize = if cfg!(test) { 2 } else { 64 };

/// The sweep's clock slots: taken by a process at its first vertex, freed
/// after its last use (nothing asks about it any more) or when it is
/// retired (see [`retire`]).
struct Slots {
    /// Per slot: its generation (bumped each time a process takes it from
    /// the free list).
    gens: Vec<u32>,
    /// Per slot: the processes holding it (not freed nor retired), its
    /// latest process, and the position of its latest vertex on the
    /// slot's chain (see [`Slots::take_first`]).
    holders: Vec<u32>,
    owner: Vec<ProcId>,
    tip: Vec<u32>,
    /// Per slot: the entry of a clock that knows the last vertex of the
    /// slot's chain exactly, while its latest process is dead and the
    /// slot held (it can be continued, see [`Slots::take_first`]); else
    /// `u64::MAX`, which no entry equals.
    open: Vec<u64>,
    free: Vec<u32>,
    /// Per process: whether its slot has been freed.
    freed: IdVec<ProcId, bool>,
    /// Processes with no vertex left whose slots are held: candidates for
    /// retirement.
    dead: Vec<ProcId>,
    /// Scan for retirements once `dead` is this long.
    scan_at: usize,
    /// Retirement epochs so far.
    epoch: u32,
}

impl Slots {
    fn take(&mut self, c: &Causality, p: ProcId) -> usize {
        let sg = c.slot_gen[p].load(Ordering::Relaxed);
        if sg != u64::MAX {
            return (sg >> 32) as usize;
        }
        let s = self.free.pop().unwrap_or_else(|| {
            self.gens.push(0);
            self.holders.push(0);
            self.owner.push(ProcId::NONE);
            self.tip.push(0);
            self.open.push(u64::MAX);
            self.gens.len() as u32 - 1
        });
        let su = s as usize;
        self.gens[su] += 1;
        self.open[su] = u64::MAX;
        self.holders[su] = 1;
        self.owner[su] = p;
        self.tip[su] = 0;
        c.slot_gen[p].store(((s as u64) << 32) | self.gens[su] as u64, Ordering::Relaxed);
        su
    }

    /// The slot for the first vertex of process `p`, whose clock (its
    /// causal past, not yet stamped) is `clock`. A slot is a chain: a
    /// sequence of vertices each in the causal past of the next, its
    /// entry in a clock the position of the latest of them the clock
    /// knows, so a clock knows a vertex of the chain exactly when its
    /// entry reaches the vertex's position. A process's vertices are such
    /// a chain (session order); so is a dead process's (one with no
    /// vertex left) followed by the vertices of a process whose first
    /// vertex knows the dead one's last vertex. So when `clock` knows
    /// the last vertex of a slot's chain and the slot's latest process is
    /// dead, `p` continues that chain in the same slot and generation
    /// (its entries offset by `base`, see [`slot_entry`]) instead of
    /// taking a slot of its own: exact, and short-lived processes that
    /// follow one another causally share one slot without waiting to be
    /// retired. Otherwise `p` takes a slot as [`Slots::take`] does.
    fn take_first(
        &mut self,
        c: &Causality,
        p: ProcId,
        clock: &[u64],
        remaining: &IdVec<ProcId, u32>,
    ) -> usize {
        let entries = &clock[HEADER.min(clock.len())..];
        let n = entries.len().min(self.open.len());
        if let Some(s) = entries[..n]
            .iter()
            .zip(&self.open[..n])
            .position(|(e, o)| e == o)
        {
            debug_assert!(self.holders[s] > 0 && remaining[self.owner[s]] == 0);
            self.open[s] = u64::MAX;
            self.holders[s] += 1;
            self.owner[s] = p;
            c.base[p].store(self.tip[s], Ordering::Relaxed);
            c.slot_gen[p].store(((s as u64) << 32) | self.gens[s] as u64, Ordering::Relaxed);
            return s;
        }
        self.take(c, p)
    }

    /// Process `p` has no vertex left: its slot's chain can be continued.
    fn died(&mut self, c: &Causality, p: ProcId) {
        self.dead.push(p);
        let sg = c.slot_gen[p].load(Ordering::Relaxed);
        let s = (sg >> 32) as usize;
        if self.owner[s] == p && self.holders[s] > 0 {
            self.open[s] = pack(self.gens[s], self.tip[s]);
        }
    }

    /// Process `p` gives up its slot (nothing will ask about it from the
    /// slot any more); the slot is free once no process holds it.
    fn release(&mut self, c: &Causality, p: ProcId) {
        if std::mem::replace(&mut self.freed[p], true) {
            return;
        }
        let sg = c.slot_gen[p].load(Ordering::Relaxed);
        if sg != u64::MAX {
            let s = (sg >> 32) as usize;
            self.holders[s] -= 1;
            if self.holders[s] == 0 {
                self.open[s] = u64::MAX;
                self.free.push(s as u32);
            }
        }
    }
}

/// The clocks that can still be joined into later ones: each process's
/// live clock and the stored clocks of writes awaiting readers.
struct Clocks {
    live: IdVec<ProcId, Option<Vec<u64>>>,
    stored: IdVec<OpId, Option<Vec<u64>>>,
    /// Processes that may hold a live clock, and ops that may hold a
    /// stored one (pruned at each retirement scan).
    live_list: Vec<ProcId>,
    stored_list: Vec<OpId>,
    /// Buffers of released clocks, reused for new ones: fresh clocks as
    /// wide as thousands of slots cost page faults to allocate.
    pool: Vec<Vec<u64>>,
}

/// Released clock buffers kept for reuse, at most.
const POOL: usize = 256;

impl Clocks {
    /// A clock buffer holding a copy of `from`.
    fn copy_of(&mut self, from: &[u64]) -> Vec<u64> {
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(from);
        v
    }

    /// Gives a clock's buffer back for reuse.
    fn release(&mut self, v: Vec<u64>) {
        if self.pool.len() < POOL {
            self.pool.push(v);
        }
    }
}

/// Retires what it can of the dead processes that hold slots. A process
/// `p` with no vertex left can be retired when every clock that can still
/// be joined (live and stored ones) either knows all of what will ever be
/// known of `p` (the same entry `full` in each) or nothing of it, and each
/// that knows has an earlier earliest position `m` (see [`Clock`]) than
/// each that does not. Then, with `tau` between the two (the least `m` of
/// those that do not know, or the next position if all know), every clock
/// made from now on knows `full` of `p` exactly when its `m < tau`: a
/// later clock joins live and stored clocks (the invariant holds for a
/// maximum of entries and a minimum of `m`) or starts fresh at a position
/// at or after `tau` (knowing nothing). So `p`'s slot can go to a new
/// process, and [`Causality::entry`] answers for `p` from the rule in
/// clocks made at or after the retirement epoch, exactly: nothing about
/// happens-before is approximated. `next` is the position of the next
/// vertex to be placed.
fn retire(c: &Causality, slots: &mut Slots, clocks: &mut Clocks, next: u32) {
    slots.dead.retain(|&p| !slots.freed[p]);
    // By slot, so each clock below is read in address order.
    slots
        .dead
        .sort_unstable_by_key(|&p| c.slot_gen[p].load(Ordering::Relaxed) >> 32);
    let Clocks {
        live,
        stored,
        live_list,
        stored_list,
        ..
    } = clocks;
    live_list.retain(|&p| live[p].is_some());
    stored_list.retain(|&v| stored[v].is_some());
    // Per candidate: (full, max m of those that know, min m of those that
    // do not, consistent).
    let mut st: Vec<(u32, u32, u32, bool)> = vec![(0, 0, u32::MAX, true); slots.dead.len()];
    let sgs: Vec<(u64, u32, u32)> = slots
        .dead
        .iter()
        .map(|&p| {
            (
                c.slot_gen[p].load(Ordering::Relaxed),
                c.base[p].load(Ordering::Relaxed),
                c.total[p],
            )
        })
        .collect();
    let all = live_list
        .iter()
        .filter_map(|&p| live[p].as_deref())
        .chain(stored_list.iter().filter_map(|&v| stored[v].as_deref()));
    for x in all {
        let m = u32::MAX - x[MINPOS] as u32;
        for (s, &(sg, base, total)) in st.iter_mut().zip(&sgs) {
            let e = slot_entry(x, sg, base, total);
            if e == 0 {
                s.2 = s.2.min(m);
            } else if s.0 == 0 || s.0 == e {
                s.0 = e;
                s.1 = s.1.max(m);
            } else {
                s.3 = false;
            }
        }
    }
    let mut any = false;
    for (i, &(full, max_know, min_not, ok)) in st.iter().enumerate() {
        if !ok || (full != 0 && max_know >= min_not) {
            continue;
        }
        if !any {
            any = true;
            slots.epoch += 1;
        }
        let tau = if min_not == u32::MAX { next } else { min_not };
        let p = slots.dead[i];
        c.rule[p].store(((tau as u64) << 32) | full as u64, Ordering::Relaxed);
        c.retired[p].store(slots.epoch, Ordering::Release);
        slots.release(c, p);
    }
    slots.dead.retain(|&p| !slots.freed[p]);
    slots.scan_at = RETIRE_BATCH.max(2 * slots.dead.len());
}

/// The clock sweep of [`Causality::build`]: every vertex in topological
/// order (singletons, then whole strongly connected components), its clock
/// handed to `emit`. Returns the number of slots used.
#[allow(clippy::too_many_arguments)]
fn sweep(
    h: &History,
    c: &Causality,
    order: &[OpId],
    groups: &[u32],
    mut remaining: IdVec<ProcId, u32>,
    refcount: &mut IdVec<OpId, u32>,
    joins_v: &IdVec<OpId, bool>,
    last_use: &IdVec<ProcId, u32>,
    emit: &mut impl FnMut(OpId, &[u64]),
) -> usize {
    let procs = h.processes.len();
    let n = h.ops.len();
    let mut clocks = Clocks {
        live: (0..procs).map(|_| None).collect(),
        stored: (0..n).map(|_| None).collect(),
        live_list: Vec::new(),
        stored_list: Vec::new(),
        pool: Vec::new(),
    };
    let mut slots = Slots {
        gens: Vec::new(),
        holders: Vec::new(),
        owner: Vec::new(),
        tip: Vec::new(),
        open: Vec::new(),
        free: Vec::new(),
        freed: IdVec::filled(false, procs),
        dead: Vec::new(),
        scan_at: RETIRE_BATCH,
        epoch: 0,
    };
    let release = release_order(&remaining, last_use);
    let mut rp = 0;
    let mut scc_clock: Vec<u64> = Vec::new();
    // A vertex's own entry, earliest position and epoch; the vertex
    // becomes the last of its slot's chain.
    let stamp =
        |clock: &mut Vec<u64>, slots: &mut Slots, s: usize, p: ProcId, v: OpId, pos: u32| {
            if clock.len() < HEADER + s + 1 {
                clock.resize(HEADER + s + 1, 0);
            }
            let sg = c.slot_gen[p].load(Ordering::Relaxed);
            let at = c.base[p].load(Ordering::Relaxed) + c.seq[v];
            slots.tip[s] = at;
            clock[HEADER + s] = clock[HEADER + s].max(pack(sg as u32, at));
            clock[MINPOS] = clock[MINPOS].max((u32::MAX - pos) as u64);
            clock[EPOCH] = slots.epoch as u64;
        };
    for gi in 0..groups.len() - 1 {
        let (ga, gb) = (groups[gi] as usize, groups[gi + 1] as usize);
        let members = &order[ga..gb];
        if members.len() == 1 {
            let v = members[0];
            let p = h.ops[v].process;
            let mut clock = match clocks.live[p].take() {
                Some(l) => l,
                None => {
                    clocks.live_list.push(p);
                    clocks.copy_of(&[0; HEADER])
                }
            };
            clock[EPOCH] = slots.epoch as u64;
            if joins_v[v] {
                join_preds(c, &mut clock, v, refcount, &mut clocks);
            }
            let s = if c.seq[v] == 1 {
                slots.take_first(c, p, &clock, &remaining)
            } else {
                slots.take(c, p)
            };
            stamp(&mut clock, &mut slots, s, p, v, ga as u32);
            emit(v, &clock);
            if refcount[v] > 0 {
                clocks.stored[v] = Some(clocks.copy_of(&clock));
                clocks.stored_list.push(v);
            }
            remaining[p] -= 1;
            if remaining[p] > 0 {
                clocks.live[p] = Some(clock);
            } else {
                clocks.release(clock);
                slots.died(c, p);
            }
        } else {
            scc_clock.clear();
            scc_clock.resize(HEADER, 0);
            scc_clock[EPOCH] = slots.epoch as u64;
            for (i, &v) in members.iter().enumerate() {
                let p = h.ops[v].process;
                let s = slots.take(c, p);
                match &clocks.live[p] {
                    Some(l) => join(&mut scc_clock, l),
                    None => clocks.live_list.push(p),
                }
                if joins_v[v] {
                    join_preds(c, &mut scc_clock, v, refcount, &mut clocks);
                }
                stamp(&mut scc_clock, &mut slots, s, p, v, (ga + i) as u32);
            }
            for &v in members {
                if refcount[v] > 0 {
                    clocks.stored[v] = Some(scc_clock.clone());
                    clocks.stored_list.push(v);
                }
            }
            for &v in members {
                emit(v, &scc_clock);
                let p = h.ops[v].process;
                remaining[p] -= 1;
                clocks.live[p] = if remaining[p] > 0 {
                    Some(scc_clock.clone())
                } else {
                    slots.died(c, p);
                    None
                };
            }
        }
        while rp < release.len() && (release[rp].0 as usize) < gb {
            slots.release(c, release[rp].1);
            rp += 1;
        }
        if slots.dead.len() >= slots.scan_at {
            retire(c, &mut slots, &mut clocks, gb as u32);
        }
    }
    slots.gens.len()
}

/// Joins the stored clocks of `v`'s reads-from predecessors into `clock`,
/// releasing each once its last reader has joined it.
fn join_preds(
    c: &Causality,
    clock: &mut Vec<u64>,
    v: OpId,
    refcount: &mut IdVec<OpId, u32>,
    clocks: &mut Clocks,
) {
    for &w in c.rf_preds(v) {
        c.join_from(clock, w, &clocks.stored);
        refcount[w] -= 1;
        if refcount[w] == 0 {
            if let Some(old) = clocks.stored[w].take() {
                clocks.release(old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::history;

    fn build(h: &History) -> Causality {
        let (seq, prev) = session(h);
        let rf = ReadsFrom::new(h, &Writers::new(h, &seq));
        Causality::build(h, seq, prev, rf, |_, _, _| {})
    }

    fn reaches(c: &Causality, a: u32, b: u32) -> bool {
        let (a, b) = (OpId(a), OpId(b));
        c.reaches(a, b, &c.direct_preds(b))
    }

    fn op_ids(v: &[u32]) -> Vec<OpId> {
        v.iter().map(|&i| OpId(i)).collect()
    }

    #[test]
    fn session_and_reads_from_edges_give_happens_before() {
        // op0: p0 appends x 1; op1: p1 reads x [1]; op2: p1 appends y 2;
        // op3: p2 appends z 3 (unrelated).
        let h = history(&[
            (0, "n1", "txn", r#"[["append","x",1]]"#),
            (1, "n2", "txn", r#"[["r","x",[1]]]"#),
            (1, "n2", "txn", r#"[["append","y",2]]"#),
            (2, "n3", "txn", r#"[["append","z",3]]"#),
        ]);
        let c = build(&h);
        assert!(c.cycles.is_empty());
        assert!(reaches(&c, 0, 1) && reaches(&c, 0, 2) && reaches(&c, 1, 2));
        assert!(!reaches(&c, 2, 0) && !reaches(&c, 0, 3) && !reaches(&c, 3, 2));
        assert!(!reaches(&c, 0, 0));
        assert_eq!(c.path(OpId(0), OpId(2)), Some(op_ids(&[0, 1, 2])));
        assert_eq!(c.path(OpId(2), OpId(0)), None);
        assert_eq!(c.edge_kind(OpId(0), OpId(1)), EdgeKind::ReadsFrom);
        assert_eq!(c.edge_kind(OpId(1), OpId(2)), EdgeKind::Session);
        let anc = c.ancestors(OpId(2));
        let has = |v: u32| anc[v as usize / 64] & (1 << (v % 64)) != 0;
        assert!(has(0) && has(1) && !has(2) && !has(3));
        let past = PastOf::new(&c, OpId(2));
        let has_past = |v: u32| past.contains(OpId(v));
        assert!(has_past(0) && has_past(1) && !has_past(3) && !has_past(2));
    }

    #[test]
    fn a_cycle_is_found_and_walked_edge_by_edge() {
        // Each transaction reads the other's append: a two-vertex cycle,
        // then a third op after it on p0.
        let mut text = String::new();
        let lines = [
            r#"{"index":0,"time":0,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","x",1],["r","y",null]]}"#,
            r#"{"index":1,"time":1,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["append","y",2],["r","x",null]]}"#,
            r#"{"index":2,"time":2,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1],["r","y",[2]]]}"#,
            r#"{"index":3,"time":3,"type":"ok","process":1,"node":"n2","f":"txn","value":[["append","y",2],["r","x",[1]]]}"#,
            r#"{"index":4,"time":4,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","z",3]]}"#,
            r#"{"index":5,"time":5,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","z",3]]}"#,
        ];
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let h = crate::reader::read_history(text.as_bytes()).expect("valid");
        let c = build(&h);
        assert_eq!(c.cycles, vec![op_ids(&[0, 1])]);
        let cycle = c.cycle_path(&c.cycles[0]);
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 3);
        for w in cycle.windows(2) {
            assert!(c.direct_preds(w[1]).contains(&w[0]), "edge {w:?}");
        }
        // Inside the cycle both ways; the later op is reached from both.
        assert!(reaches(&c, 0, 1) && reaches(&c, 1, 0));
        assert!(reaches(&c, 1, 2) && !reaches(&c, 2, 1));
    }

    /// Processes that continue a dead process's slot chain
    /// (`Slots::take_first`) get exactly the entries reachability gives:
    /// during the sweep, every operation's entry for every writer process
    /// of the keys it touches (the processes entries are exact for) is the
    /// highest seq of that process among the operation's ancestors, on
    /// `lin-kv` histories where most processes are short-lived.
    #[test]
    fn chained_slots_give_the_entries_of_reachability() {
        for (seed, keys, clients, info_rate) in
            [(1u64, 1u32, 5u32, 0.3), (2, 3, 8, 0.3), (3, 2, 20, 0.5)]
        {
            let h = crate::testutil::lin_kv_history(seed, 1500, keys, clients, info_rate);
            let (seq, prev) = session(&h);
            let rf = ReadsFrom::new(&h, &Writers::new(&h, &seq));
            let mut writers: Vec<Vec<ProcId>> = vec![Vec::new(); h.keys.len()];
            for (k, ws) in h.key_writes.iter_enumerated() {
                for &w in ws {
                    let o = h.mops[w].op;
                    if seq[o] != 0 {
                        writers[k.index()].push(h.ops[o].process);
                    }
                }
                writers[k.index()].sort_unstable();
                writers[k.index()].dedup();
            }
            let mut during: Vec<(OpId, ProcId, u32)> = Vec::new();
            let c = Causality::build(&h, seq, prev, rf, |op, clock, c| {
                let o = &h.ops[op];
                if o.is_final {
                    return;
                }
                for m in &h.mops[o.mops()] {
                    for &p in &writers[m.key.index()] {
                        during.push((op, p, c.entry(clock, p)));
                    }
                }
            });
            let chained = h
                .processes
                .ids()
                .filter(|&p| c.base[p].load(Ordering::Relaxed) > 0)
                .count();
            assert!(chained >= 10, "seed {seed}: {chained} processes chained");
            let mut last_op: Option<OpId> = None;
            // Per process: the highest seq among the op and its ancestors.
            let mut highest: FxHashMap<ProcId, u32> = FxHashMap::default();
            for &(op, p, e) in &during {
                if last_op != Some(op) {
                    last_op = Some(op);
                    highest.clear();
                    let anc = c.ancestors(op);
                    let past = h.ops.ids().filter(|&u| u == op || bit(&anc, u));
                    for u in past.filter(|&u| c.seq[u] != 0) {
                        let x = highest.entry(h.ops[u].process).or_default();
                        *x = (*x).max(c.seq[u]);
                    }
                }
                let want = highest.get(&p).copied().unwrap_or(0);
                assert_eq!(e, want, "seed {seed}: op {op}, process {p}");
            }
            assert!(during.len() > 5000, "{}", during.len());
        }
    }

    #[test]
    fn reachability_is_exact_past_the_small_search() {
        // A session chain longer than the hash-set phase of the search: op 0
        // reaches the last op only through every op between.
        let n = SMALL_SEARCH + 50;
        let mut ops: Vec<(u64, &str, &str, &str)> = vec![(0, "n1", "txn", r#"[["append","x",1]]"#)];
        ops.extend(std::iter::repeat_n(
            (0, "n1", "txn", r#"[["r","z",null]]"#),
            n,
        ));
        ops.push((1, "n2", "txn", r#"[["append","w",5]]"#));
        let h = history(&ops);
        let c = build(&h);
        let last = n as u32;
        assert!(reaches(&c, 0, last));
        assert!(!reaches(&c, 0, last + 1));
        let (found, big) = c.search(OpId(0), OpId(last), &c.direct_preds(OpId(last)));
        assert!(found && big, "the search outgrew the hash set");
        let past = PastOf::new(&c, OpId(last));
        assert!(past.contains(OpId(0)));
        assert!(past.contains(OpId(1)), "answered from the ancestors");
        assert!(!past.contains(OpId(last + 1)));
        // A long session run is cut to its ends for explanations.
        assert_eq!(c.path(OpId(0), OpId(last)), Some(op_ids(&[0, last])));
        assert_eq!(c.edge_kind(OpId(0), OpId(last)), EdgeKind::Session);
    }
}
