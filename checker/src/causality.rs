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
    pub seq: Vec<u32>,
    /// Per op: the previous vertex of its process, or `NONE`.
    pub prev: Vec<u32>,
    /// Per op: the next vertex of its process, or `NONE`.
    next: Vec<u32>,
    /// Reduced reads-from predecessors, CSR by reader op.
    pred_start: Vec<u32>,
    preds: Vec<u32>,
    /// The same edges by writer op (CSR: start per op, readers), built
    /// only when a reachability search needs them.
    succ: std::sync::OnceLock<(Vec<u32>, Vec<u32>)>,
    /// Per op (bit set): whether some op reads from it, so a search that
    /// only meets unread ops never needs the successor index.
    read_by: Vec<u64>,
    /// Per op: position in the topological order (`NONE` if not a vertex).
    pub pos: Vec<u32>,
    /// Non-trivial strongly connected components (cycles), as op ids.
    pub cycles: Vec<Vec<u32>>,
    /// Per op: which entry of `cycles` it belongs to, if any.
    pub cycle_of: FxHashMap<u32, u32>,
    /// Per op: its process.
    procs_of: Vec<u32>,
    /// Per process: its clock slot and the slot's generation when it took
    /// it (`slot << 32 | generation`; `u64::MAX` before its first vertex).
    /// Assigned during the sweep (see [`sweep`]); atomic because the
    /// vertex consumer reads it while the sweep assigns later processes.
    slot_gen: Vec<AtomicU64>,
    /// Per process: the retirement epoch from which clocks answer for it
    /// by [`Causality::entry`]'s rule instead of a slot (`NONE`: never
    /// retired), and the rule, `tau << 32 | full` (see [`retire`]).
    retired: Vec<AtomicU32>,
    rule: Vec<AtomicU64>,
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
/// (0 if not a vertex), and its previous vertex (`NONE` if first).
pub fn session(h: &History) -> (Vec<u32>, Vec<u32>) {
    let n = h.ops.len();
    let mut seq = vec![0u32; n];
    let mut prev = vec![NONE; n];
    let mut last = vec![NONE; h.processes.len()];
    let mut count = vec![0u32; h.processes.len()];
    for (i, op) in h.ops.iter().enumerate() {
        if !op.is_vertex() {
            continue;
        }
        let p = op.process as usize;
        count[p] += 1;
        seq[i] = count[p];
        prev[i] = last[p];
        last[p] = i as u32;
    }
    (seq, prev)
}

/// The reduced reads-from edges, CSR by reader op: per reader, the latest
/// observed write op of each process (earlier ones reach it by session).
pub struct ReadsFrom {
    pred_start: Vec<u32>,
    preds: Vec<u32>,
}

/// Per stored observed value (`History::vals` slot): the writing op and
/// its process, the process `NONE` when the write is not a vertex (it
/// failed); `(NONE, NONE)` when no write produced the value. Looked up once
/// per slot rather than once per read, since list reads share their slots
/// (see `model::Builder`). A process's ops are numbered in its session
/// order, so the op also orders the writes of one process.
pub struct Writers {
    pub slot: Vec<(u32, u32)>,
}

impl Writers {
    pub fn new(h: &History, seq: &[u32]) -> Writers {
        let slot = h
            .resolved
            .iter()
            .map(|&w| {
                if w == NONE {
                    return (NONE, NONE);
                }
                let wo = h.mops[w as usize].op;
                let wp = if seq[wo as usize] == 0 {
                    NONE
                } else {
                    h.ops[wo as usize].process
                };
                (wo, wp)
            })
            .collect();
        Writers { slot }
    }

    /// The writers of what `m` observed, parallel to `History::obs(m)`.
    pub fn of(&self, m: &crate::model::MopRec) -> &[(u32, u32)] {
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
                let mut start = Vec::with_capacity(n + 1);
                start.push(0);
                (start, Vec::with_capacity(observed))
            } else {
                (
                    Vec::with_capacity(p.ops.len()),
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
    slot: &[(u32, u32)],
    ops: std::ops::Range<usize>,
    ends: &mut Vec<u32>,
    preds: &mut Vec<u32>,
) {
    // Per process: (reader stamp, latest op), so picking the latest write
    // per process costs O(1) per observed value.
    let mut best: Vec<(u32, u32)> = vec![(NONE, 0); h.processes.len()];
    let mut touched: Vec<u32> = Vec::new();
    for r in ops {
        let op = &h.ops[r];
        if op.outcome == Outcome::Ok {
            touched.clear();
            for m in &h.mops[op.mops()] {
                for &(wo, wp) in &slot[m.obs_range()] {
                    if wp == NONE || wo as usize == r {
                        continue;
                    }
                    // Earlier ops of the reader's own process reach it by session.
                    if wp == op.process && wo < r as u32 {
                        continue;
                    }
                    let b = &mut best[wp as usize];
                    if b.0 != r as u32 {
                        *b = (r as u32, wo);
                        touched.push(wp);
                    } else if wo > b.1 {
                        b.1 = wo;
                    }
                }
            }
            touched.sort_unstable();
            for &p in &touched {
                preds.push(best[p as usize].1);
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
        seq: Vec<u32>,
        prev: Vec<u32>,
        rf: ReadsFrom,
        on_vertex: impl FnMut(u32, &Clock, &Causality) + Send,
    ) -> Causality {
        let n = h.ops.len();
        let procs = h.processes.len();
        let mut count = vec![0u32; procs];
        for (i, op) in h.ops.iter().enumerate() {
            if seq[i] != 0 {
                count[op.process as usize] += 1;
            }
        }
        let ReadsFrom { pred_start, preds } = rf;
        let edge_count = preds.len() + prev.iter().filter(|&&p| p != NONE).count();
        let mut next = vec![NONE; n];
        for (i, &p) in prev.iter().enumerate() {
            if p != NONE {
                next[p as usize] = i as u32;
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
        let mut pos = vec![NONE; n];
        for (i, &v) in order.iter().enumerate() {
            pos[v as usize] = i as u32;
        }
        // Which ops join their readers-from clocks: all but final reads
        // that end their process (finals are checked by reachability).
        let joins_v: Vec<bool> = (0..n)
            .map(|v| !(h.ops[v].is_final && next[v] == NONE))
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

    fn rf_preds(&self, v: u32) -> &[u32] {
        &self.preds[self.pred_start[v as usize] as usize..self.pred_start[v as usize + 1] as usize]
    }

    fn rf_succs(&self, v: u32) -> &[u32] {
        let (start, succs) = self.succ.get_or_init(|| {
            let n = self.pred_start.len() - 1;
            let mut start = vec![0u32; n + 1];
            for &w in &self.preds {
                start[w as usize + 1] += 1;
            }
            for i in 0..n {
                start[i + 1] += start[i];
            }
            let mut fill = start.clone();
            let mut succs = vec![0u32; self.preds.len()];
            for r in 0..n {
                for &w in self.rf_preds(r as u32) {
                    succs[fill[w as usize] as usize] = r as u32;
                    fill[w as usize] += 1;
                }
            }
            (start, succs)
        });
        &succs[start[v as usize] as usize..start[v as usize + 1] as usize]
    }

    /// Joins `w`'s stored clock into `clock`, unless `clock` already knows `w`.
    fn join_from(&self, clock: &mut Vec<u64>, w: u32, stored: &[Option<Vec<u64>>]) {
        let Some(src) = &stored[w as usize] else {
            return;
        };
        if self.in_past(w, clock) {
            return;
        }
        join(clock, src);
    }

    /// The process (dense id) of an op.
    pub fn process_of(&self, op: u32) -> u32 {
        self.procs_of[op as usize]
    }

    /// The highest seq of process `p` in the causal past given by `clock`
    /// (exact for every process that wrote a key the clock's operation
    /// touches, see [`Causality::build`]): from `p`'s slot, or, once `p` is
    /// retired (and the clock made after that), from the clock's earliest
    /// position (see `retire`).
    #[inline]
    pub fn entry(&self, clock: &Clock, p: u32) -> u32 {
        let p = p as usize;
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
        slot_entry(clock, self.slot_gen[p].load(Ordering::Relaxed))
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
    pub fn retired_at(&self, p: u32) -> Option<(u32, u32, u32)> {
        let r = self.retired[p as usize].load(Ordering::Acquire);
        if r == NONE {
            return None;
        }
        let rule = self.rule[p as usize].load(Ordering::Relaxed);
        Some((r, (rule >> 32) as u32, rule as u32))
    }

    /// Whether op `a` (a vertex) is in the causal past given by `clock`.
    #[inline]
    pub fn in_past(&self, a: u32, clock: &Clock) -> bool {
        let sa = self.seq[a as usize];
        sa != 0 && self.entry(clock, self.procs_of[a as usize]) >= sa
    }

    /// The direct predecessors of `r`, for [`Causality::reaches`].
    pub fn direct_preds(&self, r: u32) -> rustc_hash::FxHashSet<u32> {
        let prev = self.prev[r as usize];
        self.rf_preds(r)
            .iter()
            .copied()
            .chain((prev != NONE).then_some(prev))
            .collect()
    }

    /// Whether op `a` reaches op `r` (a path of edges), searched forwards
    /// from `a` over vertices placed before `r` in the topological order,
    /// stopping at `r` or at any of its direct predecessors (`direct`, from
    /// [`Causality::direct_preds`]). Exact: no budget. A small search keeps
    /// its visited set in a hash set; one that grows past
    /// [`SMALL_SEARCH`] vertices moves to a bit set over all ops, so a
    /// search costs at most one pass over the graph.
    pub fn reaches(&self, a: u32, r: u32, direct: &rustc_hash::FxHashSet<u32>) -> bool {
        if self.seq[a as usize] == 0 || self.seq[r as usize] == 0 || a == r {
            return false;
        }
        self.search(a, r, direct).0
    }

    /// The search of [`Causality::reaches`]; also whether it outgrew
    /// [`SMALL_SEARCH`].
    fn search(&self, a: u32, r: u32, direct: &rustc_hash::FxHashSet<u32>) -> (bool, bool) {
        // Every vertex on a path to `r` is placed before `r`, or with it in
        // its strongly connected component (placed together).
        let ceiling = match self.cycle_of.get(&r) {
            Some(&ci) => {
                let scc = &self.cycles[ci as usize];
                scc.iter().map(|&v| self.pos[v as usize]).max().unwrap_or(0) + 1
            }
            None => self.pos[r as usize],
        };
        let mut seen = Visited::default();
        let mut stack = vec![a];
        seen.insert(a, self.seq.len());
        while let Some(v) = stack.pop() {
            if direct.contains(&v) {
                return (true, !seen.bits.is_empty());
            }
            let nx = self.next[v as usize];
            let read = self.read_by[v as usize / 64] & (1 << (v % 64)) != 0;
            let rf: &[u32] = if read { self.rf_succs(v) } else { &[] };
            for &u in rf.iter().chain((nx != NONE).then_some(&nx)) {
                if u == r {
                    return (true, !seen.bits.is_empty());
                }
                if self.pos[u as usize] < ceiling && seen.insert(u, self.seq.len()) {
                    stack.push(u);
                }
            }
        }
        (false, !seen.bits.is_empty())
    }

    /// Every op that reaches `r` (its causal past), as a bit set over ops:
    /// one backward pass over `r`'s ancestors.
    pub fn ancestors(&self, r: u32) -> Vec<u64> {
        let mut bits = vec![0u64; self.seq.len().div_ceil(64)];
        let mut stack = vec![r];
        while let Some(v) = stack.pop() {
            let prev = self.prev[v as usize];
            for &u in std::iter::once(&prev).chain(self.rf_preds(v)) {
                if u == NONE {
                    continue;
                }
                let (w, b) = (u as usize / 64, 1u64 << (u % 64));
                if bits[w] & b == 0 {
                    bits[w] |= b;
                    stack.push(u);
                }
            }
        }
        bits
    }

    /// The kind of a step `from → to` of a path: session when both are of
    /// one process, `from` first (a stored edge, or a run of them that
    /// [`Causality::path`] shortened), else reads-from.
    pub fn edge_kind(&self, from: u32, to: u32) -> EdgeKind {
        let (f, t) = (from as usize, to as usize);
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
    pub fn path(&self, a: u32, b: u32) -> Option<Vec<u32>> {
        self.path_within(a, b, |_| true)
    }

    /// [`Causality::path`] through vertices `inside` accepts only.
    fn path_within(&self, a: u32, b: u32, inside: impl Fn(u32) -> bool) -> Option<Vec<u32>> {
        if self.seq[a as usize] == 0 || self.seq[b as usize] == 0 {
            return None;
        }
        let floor = self.pos[a as usize];
        let mut parent: FxHashMap<u32, u32> = FxHashMap::default();
        let mut queue = std::collections::VecDeque::new();
        parent.insert(b, NONE);
        queue.push_back(b);
        let cyclic = !self.cycles.is_empty();
        while let Some(v) = queue.pop_front() {
            let prev = self.prev[v as usize];
            let rf = self.rf_preds(v);
            for &u in std::iter::once(&prev).chain(rf.iter()) {
                if u == NONE || parent.contains_key(&u) || !inside(u) {
                    continue;
                }
                if !cyclic && self.pos[u as usize] < floor {
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
    fn shorten(&self, path: Vec<u32>) -> Vec<u32> {
        if path.len() <= LONG_PATH {
            return path;
        }
        let same = |a: u32, b: u32| self.prev[b as usize] == a;
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
    pub fn cycle_path(&self, scc: &[u32]) -> Vec<u32> {
        let start = scc[0];
        // Find a predecessor of `start` inside the component, then a path
        // from `start` to it.
        let inside = |u: u32| self.cycle_of.get(&u) == self.cycle_of.get(&start);
        let prev = self.prev[start as usize];
        let pred = std::iter::once(prev)
            .chain(self.rf_preds(start).iter().copied())
            .find(|&u| u != NONE && inside(u))
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
    r: u32,
    direct: rustc_hash::FxHashSet<u32>,
    ancestors: std::cell::RefCell<Option<Vec<u64>>>,
}

impl<'c> PastOf<'c> {
    pub fn new(c: &'c Causality, r: u32) -> Self {
        PastOf {
            c,
            r,
            direct: c.direct_preds(r),
            ancestors: std::cell::RefCell::new(None),
        }
    }

    /// Whether op `a` happens before `r` (exact).
    pub fn contains(&self, a: u32) -> bool {
        let (c, r) = (self.c, self.r);
        if c.seq[a as usize] == 0 || c.seq[r as usize] == 0 || a == r {
            return false;
        }
        let mut anc = self.ancestors.borrow_mut();
        if let Some(bits) = anc.as_ref() {
            return bits[a as usize / 64] & (1 << (a % 64)) != 0;
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
    small: rustc_hash::FxHashSet<u32>,
    bits: Vec<u64>,
}

impl Visited {
    /// Inserts `v` (an op of `n`); whether it was new.
    fn insert(&mut self, v: u32, n: usize) -> bool {
        if !self.bits.is_empty() {
            let (w, b) = (v as usize / 64, 1u64 << (v % 64));
            let new = self.bits[w] & b == 0;
            self.bits[w] |= b;
            return new;
        }
        if !self.small.insert(v) {
            return false;
        }
        if self.small.len() > SMALL_SEARCH {
            self.bits = vec![0; n.div_ceil(64)];
            for x in self.small.drain() {
                self.bits[x as usize / 64] |= 1 << (x % 64);
            }
        }
        true
    }
}

/// Vertices (with their clocks) handed to `on_vertex` at a time.
/// The graph's edges while it is being ordered (borrowed from the
/// [`Causality`] under construction).
struct Edges<'a> {
    seq: &'a [u32],
    prev: &'a [u32],
    next: &'a [u32],
    pred_start: &'a [u32],
    preds: &'a [u32],
}

/// A topological order in progress: vertices in order, and the group
/// boundaries (Kahn vertices are singletons; the rest are SCCs).
struct Topo {
    order: Vec<u32>,
    groups: Vec<u32>,
    /// Per op: whether Kahn placed it.
    placed: Vec<bool>,
    /// Vertices in all.
    vertices: usize,
}

impl Edges<'_> {
    fn rf_preds(&self, v: usize) -> &[u32] {
        &self.preds[self.pred_start[v] as usize..self.pred_start[v + 1] as usize]
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
        let mut placed = vec![false; n];
        let mut wait_head = vec![NONE; n];
        let mut waits: Vec<(u32, u32)> = Vec::new(); // (waiter, next entry)
        let mut vertices = 0usize;
        let mut order: Vec<u32> = Vec::with_capacity(n);
        let mut woken: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
        let blocker = |v: usize, placed: &[bool]| -> Option<u32> {
            let p = self.prev[v];
            if p != NONE && !placed[p as usize] {
                return Some(p);
            }
            self.rf_preds(v)
                .iter()
                .copied()
                .find(|&u| !placed[u as usize])
        };
        for (v, &sv) in self.seq.iter().enumerate() {
            if sv == 0 {
                continue;
            }
            vertices += 1;
            if let Some(u) = blocker(v, &placed) {
                waits.push((v as u32, wait_head[u as usize]));
                wait_head[u as usize] = waits.len() as u32 - 1;
                continue;
            }
            woken.push(Reverse(v as u32));
            while let Some(Reverse(x)) = woken.pop() {
                placed[x as usize] = true;
                order.push(x);
                let mut e = std::mem::replace(&mut wait_head[x as usize], NONE);
                while e != NONE {
                    let (w, nx) = waits[e as usize];
                    match blocker(w as usize, &placed) {
                        Some(u) => {
                            waits[e as usize] = (w, wait_head[u as usize]);
                            wait_head[u as usize] = e;
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
    fn order_the_rest(&self, topo: &mut Topo) -> (Vec<Vec<u32>>, FxHashMap<u32, u32>) {
        let mut cycles = Vec::new();
        let mut cycle_of = FxHashMap::default();
        if topo.order.len() == topo.vertices {
            return (cycles, cycle_of);
        }
        let rest: Vec<u32> = (0..self.seq.len() as u32)
            .filter(|&i| self.seq[i as usize] != 0 && !topo.placed[i as usize])
            .collect();
        let mut local = FxHashMap::default();
        let mut g: DiGraph<u32, ()> = DiGraph::with_capacity(rest.len(), rest.len() * 2);
        for &v in &rest {
            local.insert(v, g.add_node(v));
        }
        // Reads-from edges among them, by source then reader (the order a
        // successor index would list them in).
        let mut rf_edges: Vec<(u32, u32)> = Vec::new();
        for &v in &rest {
            for &u in self.rf_preds(v as usize) {
                if local.contains_key(&u) {
                    rf_edges.push((u, v));
                }
            }
        }
        rf_edges.sort_unstable();
        let mut e = 0;
        for &v in &rest {
            let a = local[&v];
            if self.next[v as usize] != NONE {
                if let Some(&b) = local.get(&self.next[v as usize]) {
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
                let mut sccs: Vec<Vec<u32>> = tarjan_scc(&g)
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
    fn readers(&self, joins_v: &[bool]) -> (Vec<u32>, Vec<u64>) {
        let n = self.seq.len();
        let mut refcount = vec![0u32; n];
        let mut read_by = vec![0u64; n.div_ceil(64)];
        for (r, &joins) in joins_v.iter().enumerate() {
            let rf = self.rf_preds(r);
            for &w in rf {
                read_by[w as usize / 64] |= 1 << (w % 64);
            }
            if self.seq[r] != 0 && joins {
                for &w in rf {
                    refcount[w as usize] += 1;
                }
            }
        }
        (refcount, read_by)
    }
}

/// Liveness of each process's clock component, as a position in the
/// topological order: until the last non-final vertex touching a key it
/// wrote, or its own last vertex.
fn clock_lifetimes(h: &History, seq: &[u32], pos: &[u32]) -> Vec<u32> {
    let mut key_last = vec![0u32; h.keys.len()];
    for (i, op) in h.ops.iter().enumerate() {
        if seq[i] == 0 || op.is_final {
            continue;
        }
        for m in &h.mops[op.mops()] {
            let k = m.key as usize;
            key_last[k] = key_last[k].max(pos[i]);
        }
    }
    let mut last_use = vec![0u32; h.processes.len()];
    for (i, op) in h.ops.iter().enumerate() {
        if seq[i] != 0 {
            let p = op.process as usize;
            last_use[p] = last_use[p].max(pos[i]);
        }
    }
    for (k, ws) in h.key_writes.iter().enumerate() {
        for &w in ws {
            let o = h.mops[w as usize].op as usize;
            if seq[o] != 0 {
                let p = h.ops[o].process as usize;
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
    order: &[u32],
    groups: &[u32],
    count: &[u32],
    last_use: &[u32],
) -> usize {
    let procs = h.processes.len();
    let mut has = vec![false; procs];
    let mut free = 0usize;
    let mut width = 0usize;
    let release = release_order(count, last_use);
    let mut rp = 0;
    for gi in 0..groups.len() - 1 {
        let (a, b) = (groups[gi] as usize, groups[gi + 1] as usize);
        for &v in &order[a..b] {
            let p = h.ops[v as usize].process as usize;
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
fn release_order(count: &[u32], last_use: &[u32]) -> Vec<(u32, u32)> {
    let mut release: Vec<(u32, u32)> = (0..count.len() as u32)
        .filter(|&p| count[p as usize] > 0)
        .map(|p| (last_use[p as usize], p))
        .collect();
    release.sort_unstable();
    release
}

/// `p`'s entry in `clock` from its slot (`slot_gen` as in
/// [`Causality::slot_gen`]).
#[inline]
fn slot_entry(clock: &Clock, slot_gen: u64) -> u32 {
    if slot_gen == u64::MAX {
        return 0;
    }
    let (s, g) = ((slot_gen >> 32) as usize, slot_gen as u32);
    match clock.get(HEADER + s) {
        Some(&e) if (e >> 32) as u32 == g => e as u32,
        _ => 0,
    }
}

/// Element-wise maximum of `src` into `dst` (grown to `src`'s length).
#[inline]
fn join(dst: &mut Vec<u64>, src: &[u64]) {
    if src.len() > dst.len() {
        dst.resize(src.len(), 0);
    }
    for (a, b) in dst.iter_mut().zip(src.iter()) {
        *a = (*a).max(*b);
    }
}

/// Vector clocks in topological order. Each process has one live clock
/// (its latest vertex's); a write's clock is kept only until its last
/// reader has joined it. `on_vertex` runs on a second thread, fed batches
/// of (vertex, clock) in the same order, so the callers' per-vertex work
/// overlaps the sweep. Returns the number of slots the clocks used.
#[allow(clippy::too_many_arguments)]
fn sweep_clocks(
    h: &History,
    c: &Causality,
    order: &[u32],
    groups: &[u32],
    count: Vec<u32>,
    mut refcount: Vec<u32>,
    joins_v: &[bool],
    last_use: &[u32],
    mut on_vertex: impl FnMut(u32, &Clock, &Causality) + Send,
) -> usize {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
        let consumer = scope.spawn(move || {
            for b in rx {
                let mut from = 0;
                for (&v, &end) in b.vertices.iter().zip(&b.ends) {
                    on_vertex(v, &b.clocks[from..end], c);
                    from = end;
                }
                // The sweep may have finished: then the batch is dropped.
                let _ = back_tx.send(b);
            }
        });
        let mut batch = Batch::default();
        let mut emit = |v: u32, clock: &[u64]| {
            batch.vertices.push(v);
            batch.clocks.extend_from_slice(clock);
            batch.ends.push(batch.clocks.len());
            if batch.vertices.len() == BATCH || batch.clocks.len() >= BATCH_WORDS {
                let mut next = back_rx.try_recv().unwrap_or_default();
                next.vertices.clear();
                next.ends.clear();
                next.clocks.clear();
                let full = std::mem::replace(&mut batch, next);
                tx.send(full).expect("vertex consumer");
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
        if !batch.vertices.is_empty() {
            tx.send(std::mem::take(&mut batch))
                .expect("vertex consumer");
        }
        drop(tx);
        consumer.join().expect("vertex consumer");
        used
    })
}

const BATCH: usize = 2048;
/// A batch also ends once its clocks fill this many entries (1 MiB): with
/// thousands of process ids a clock is tens of KB, and batches of
/// [`BATCH`] such clocks (hundreds of MB each) were grown, copied and
/// faulted in afresh, which took most of the sweep's time.
const BATCH_WORDS: usize = 1 << 17;

#[derive(Default)]
struct Batch {
    vertices: Vec<u32>,
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
    /// Per slot: its generation (bumped each time a process takes it).
    gens: Vec<u32>,
    free: Vec<u32>,
    /// Per process: whether its slot has been freed.
    freed: Vec<bool>,
    /// Processes with no vertex left whose slots are held: candidates for
    /// retirement.
    dead: Vec<u32>,
    /// Scan for retirements once `dead` is this long.
    scan_at: usize,
    /// Retirement epochs so far.
    epoch: u32,
}

impl Slots {
    fn take(&mut self, c: &Causality, p: usize) -> usize {
        let sg = c.slot_gen[p].load(Ordering::Relaxed);
        if sg != u64::MAX {
            return (sg >> 32) as usize;
        }
        let s = self.free.pop().unwrap_or_else(|| {
            self.gens.push(0);
            self.gens.len() as u32 - 1
        });
        self.gens[s as usize] += 1;
        c.slot_gen[p].store(
            ((s as u64) << 32) | self.gens[s as usize] as u64,
            Ordering::Relaxed,
        );
        s as usize
    }

    fn release(&mut self, c: &Causality, p: usize) {
        if std::mem::replace(&mut self.freed[p], true) {
            return;
        }
        let sg = c.slot_gen[p].load(Ordering::Relaxed);
        if sg != u64::MAX {
            self.free.push((sg >> 32) as u32);
        }
    }
}

/// The clocks that can still be joined into later ones: each process's
/// live clock and the stored clocks of writes awaiting readers.
struct Clocks {
    live: Vec<Option<Vec<u64>>>,
    stored: Vec<Option<Vec<u64>>>,
    /// Processes that may hold a live clock, and ops that may hold a
    /// stored one (pruned at each retirement scan).
    live_list: Vec<u32>,
    stored_list: Vec<u32>,
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
    slots.dead.retain(|&p| !slots.freed[p as usize]);
    let Clocks {
        live,
        stored,
        live_list,
        stored_list,
    } = clocks;
    live_list.retain(|&p| live[p as usize].is_some());
    stored_list.retain(|&v| stored[v as usize].is_some());
    // Per candidate: (full, max m of those that know, min m of those that
    // do not, consistent).
    let mut st: Vec<(u32, u32, u32, bool)> = vec![(0, 0, u32::MAX, true); slots.dead.len()];
    let sgs: Vec<u64> = slots
        .dead
        .iter()
        .map(|&p| c.slot_gen[p as usize].load(Ordering::Relaxed))
        .collect();
    let all = live_list
        .iter()
        .filter_map(|&p| live[p as usize].as_deref())
        .chain(
            stored_list
                .iter()
                .filter_map(|&v| stored[v as usize].as_deref()),
        );
    for x in all {
        let m = u32::MAX - x[MINPOS] as u32;
        for (s, &sg) in st.iter_mut().zip(&sgs) {
            let e = slot_entry(x, sg);
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
        let p = slots.dead[i] as usize;
        c.rule[p].store(((tau as u64) << 32) | full as u64, Ordering::Relaxed);
        c.retired[p].store(slots.epoch, Ordering::Release);
        slots.release(c, p);
    }
    slots.dead.retain(|&p| !slots.freed[p as usize]);
    slots.scan_at = RETIRE_BATCH.max(2 * slots.dead.len());
}

/// The clock sweep of [`Causality::build`]: every vertex in topological
/// order (singletons, then whole strongly connected components), its clock
/// handed to `emit`. Returns the number of slots used.
#[allow(clippy::too_many_arguments)]
fn sweep(
    h: &History,
    c: &Causality,
    order: &[u32],
    groups: &[u32],
    mut remaining: Vec<u32>,
    refcount: &mut [u32],
    joins_v: &[bool],
    last_use: &[u32],
    emit: &mut impl FnMut(u32, &[u64]),
) -> usize {
    let procs = h.processes.len();
    let n = h.ops.len();
    let mut clocks = Clocks {
        live: (0..procs).map(|_| None).collect(),
        stored: (0..n).map(|_| None).collect(),
        live_list: Vec::new(),
        stored_list: Vec::new(),
    };
    let mut slots = Slots {
        gens: Vec::new(),
        free: Vec::new(),
        freed: vec![false; procs],
        dead: Vec::new(),
        scan_at: RETIRE_BATCH,
        epoch: 0,
    };
    let release = release_order(&remaining, last_use);
    let mut rp = 0;
    let mut scc_clock: Vec<u64> = Vec::new();
    // A vertex's own entry, earliest position and epoch.
    let stamp = |clock: &mut Vec<u64>, s: usize, p: usize, v: usize, pos: u32, epoch: u32| {
        if clock.len() < HEADER + s + 1 {
            clock.resize(HEADER + s + 1, 0);
        }
        let sg = c.slot_gen[p].load(Ordering::Relaxed);
        clock[HEADER + s] = clock[HEADER + s].max(pack(sg as u32, c.seq[v]));
        clock[MINPOS] = clock[MINPOS].max((u32::MAX - pos) as u64);
        clock[EPOCH] = epoch as u64;
    };
    for gi in 0..groups.len() - 1 {
        let (ga, gb) = (groups[gi] as usize, groups[gi + 1] as usize);
        let members = &order[ga..gb];
        if members.len() == 1 {
            let v = members[0] as usize;
            let p = h.ops[v].process as usize;
            let s = slots.take(c, p);
            let mut clock = match clocks.live[p].take() {
                Some(l) => l,
                None => {
                    clocks.live_list.push(p as u32);
                    vec![0u64; HEADER]
                }
            };
            clock[EPOCH] = slots.epoch as u64;
            if joins_v[v] {
                join_preds(c, &mut clock, v as u32, refcount, &mut clocks.stored);
            }
            stamp(&mut clock, s, p, v, ga as u32, slots.epoch);
            emit(v as u32, &clock);
            if refcount[v] > 0 {
                clocks.stored[v] = Some(clock.clone());
                clocks.stored_list.push(v as u32);
            }
            remaining[p] -= 1;
            if remaining[p] > 0 {
                clocks.live[p] = Some(clock);
            } else {
                slots.dead.push(p as u32);
            }
        } else {
            scc_clock.clear();
            scc_clock.resize(HEADER, 0);
            scc_clock[EPOCH] = slots.epoch as u64;
            for (i, &v) in members.iter().enumerate() {
                let p = h.ops[v as usize].process as usize;
                let s = slots.take(c, p);
                match &clocks.live[p] {
                    Some(l) => join(&mut scc_clock, l),
                    None => clocks.live_list.push(p as u32),
                }
                if joins_v[v as usize] {
                    join_preds(c, &mut scc_clock, v, refcount, &mut clocks.stored);
                }
                stamp(
                    &mut scc_clock,
                    s,
                    p,
                    v as usize,
                    (ga + i) as u32,
                    slots.epoch,
                );
            }
            for &v in members {
                if refcount[v as usize] > 0 {
                    clocks.stored[v as usize] = Some(scc_clock.clone());
                    clocks.stored_list.push(v);
                }
            }
            for &v in members {
                emit(v, &scc_clock);
                let p = h.ops[v as usize].process as usize;
                remaining[p] -= 1;
                clocks.live[p] = if remaining[p] > 0 {
                    Some(scc_clock.clone())
                } else {
                    slots.dead.push(p as u32);
                    None
                };
            }
        }
        while rp < release.len() && (release[rp].0 as usize) < gb {
            slots.release(c, release[rp].1 as usize);
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
    v: u32,
    refcount: &mut [u32],
    stored: &mut [Option<Vec<u64>>],
) {
    for &w in c.rf_preds(v) {
        c.join_from(clock, w, stored);
        refcount[w as usize] -= 1;
        if refcount[w as usize] == 0 {
            stored[w as usize] = None;
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
        c.reaches(a, b, &c.direct_preds(b))
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
        assert_eq!(c.path(0, 2), Some(vec![0, 1, 2]));
        assert_eq!(c.path(2, 0), None);
        assert_eq!(c.edge_kind(0, 1), EdgeKind::ReadsFrom);
        assert_eq!(c.edge_kind(1, 2), EdgeKind::Session);
        let anc = c.ancestors(2);
        let has = |v: u32| anc[v as usize / 64] & (1 << (v % 64)) != 0;
        assert!(has(0) && has(1) && !has(2) && !has(3));
        let past = PastOf::new(&c, 2);
        assert!(past.contains(0) && past.contains(1) && !past.contains(3) && !past.contains(2));
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
        assert_eq!(c.cycles, vec![vec![0, 1]]);
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
        let (found, big) = c.search(0, last, &c.direct_preds(last));
        assert!(found && big, "the search outgrew the hash set");
        let past = PastOf::new(&c, last);
        assert!(past.contains(0));
        assert!(past.contains(1), "answered from the ancestors");
        assert!(!past.contains(last + 1));
        // A long session run is cut to its ends for explanations.
        assert_eq!(c.path(0, last), Some(vec![0, last]));
        assert_eq!(c.edge_kind(0, last), EdgeKind::Session);
    }
}
