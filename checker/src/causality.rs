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
    /// Per process: its clock slot and the slot's generation when it held it.
    slot_of: Vec<u32>,
    gen_of: Vec<u32>,
    /// Clock width: slots are recycled once nothing can ask about their process.
    pub width: usize,
    pub edge_count: usize,
}

/// A vector clock: per slot, `generation << 32 | seq`, so joining is an
/// element-wise maximum and a recycled slot's newer process wins.
pub type Clock = [u64];

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
        let slots = assign_slots(h, &order, &groups, &count, &last_use);
        drop(last_use);

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
            slot_of: slots.slot_of,
            gen_of: slots.gen_of,
            width: slots.width,
            edge_count,
        };
        sweep_clocks(h, &c, &order, &groups, count, refcount, &joins_v, on_vertex);
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
    fn join_from(&self, clock: &mut [u64], w: u32, stored: &[Option<Box<[u64]>>]) {
        let Some(src) = &stored[w as usize] else {
            return;
        };
        if self.in_past(w, clock) {
            return;
        }
        for (a, b) in clock.iter_mut().zip(src.iter()) {
            *a = (*a).max(*b);
        }
    }

    /// The process (dense id) of an op.
    pub fn process_of(&self, op: u32) -> u32 {
        self.procs_of[op as usize]
    }

    /// The highest seq of process `p` in the causal past given by `clock`
    /// (exact while `p`'s slot is live, see [`Causality::build`]).
    #[inline]
    pub fn entry(&self, clock: &Clock, p: u32) -> u32 {
        let s = self.slot_of[p as usize];
        if s == NONE {
            return 0;
        }
        let e = clock[s as usize];
        if (e >> 32) as u32 == self.gen_of[p as usize] {
            e as u32
        } else {
            0
        }
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

/// Clock slots: each process gets a slot at its first vertex and frees it
/// after its last use, so processes that never overlap share one.
struct Slots {
    slot_of: Vec<u32>,
    /// Per process: the slot's generation when the process took it.
    gen_of: Vec<u32>,
    width: usize,
}

/// Slot assignment, group by group in topological order.
fn assign_slots(
    h: &History,
    order: &[u32],
    groups: &[u32],
    count: &[u32],
    last_use: &[u32],
) -> Slots {
    let procs = h.processes.len();
    let mut slot_of = vec![NONE; procs];
    let mut gen_of = vec![0u32; procs];
    let mut slot_gen: Vec<u32> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    let mut release: Vec<(u32, u32)> = (0..procs as u32)
        .filter(|&p| count[p as usize] > 0)
        .map(|p| (last_use[p as usize], p))
        .collect();
    release.sort_unstable();
    let mut rp = 0;
    for gi in 0..groups.len() - 1 {
        let (a, b) = (groups[gi] as usize, groups[gi + 1] as usize);
        for &v in &order[a..b] {
            let p = h.ops[v as usize].process as usize;
            if slot_of[p] == NONE {
                let s = free.pop().unwrap_or_else(|| {
                    slot_gen.push(0);
                    slot_gen.len() as u32 - 1
                });
                slot_gen[s as usize] += 1;
                slot_of[p] = s;
                gen_of[p] = slot_gen[s as usize];
            }
        }
        while rp < release.len() && (release[rp].0 as usize) < b {
            free.push(slot_of[release[rp].1 as usize]);
            rp += 1;
        }
    }
    Slots {
        slot_of,
        gen_of,
        width: slot_gen.len(),
    }
}

/// Vector clocks in topological order. Each process has one live clock
/// (its latest vertex's); a write's clock is kept only until its last
/// reader has joined it. `on_vertex` runs on a second thread, fed batches
/// of (vertex, clock) in the same order, so the callers' per-vertex work
/// overlaps the sweep.
#[allow(clippy::too_many_arguments)]
fn sweep_clocks(
    h: &History,
    c: &Causality,
    order: &[u32],
    groups: &[u32],
    count: Vec<u32>,
    mut refcount: Vec<u32>,
    joins_v: &[bool],
    mut on_vertex: impl FnMut(u32, &Clock, &Causality) + Send,
) {
    let width = c.width;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
        let consumer = scope.spawn(move || {
            for b in rx {
                for (i, &v) in b.vertices.iter().enumerate() {
                    on_vertex(v, &b.clocks[i * width..(i + 1) * width], c);
                }
                // The sweep may have finished: then the batch is dropped.
                let _ = back_tx.send(b);
            }
        });
        let mut batch = Batch::default();
        let mut emit = |v: u32, clock: &[u64]| {
            batch.vertices.push(v);
            batch.clocks.extend_from_slice(clock);
            if batch.vertices.len() == BATCH || batch.clocks.len() >= BATCH_WORDS {
                let mut next = back_rx.try_recv().unwrap_or_default();
                next.vertices.clear();
                next.clocks.clear();
                let full = std::mem::replace(&mut batch, next);
                tx.send(full).expect("vertex consumer");
            }
        };
        sweep(
            h,
            c,
            order,
            groups,
            count,
            &mut refcount,
            joins_v,
            &mut emit,
        );
        if !batch.vertices.is_empty() {
            tx.send(std::mem::take(&mut batch))
                .expect("vertex consumer");
        }
        drop(tx);
        consumer.join().expect("vertex consumer");
    });
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
    /// `vertices.len()` clocks of `width` entries, back to back.
    clocks: Vec<u64>,
}

/// The clock sweep of [`Causality::build`]: every vertex in topological
/// order (singletons, then whole strongly connected components), its clock
/// handed to `emit`.
#[allow(clippy::too_many_arguments)]
fn sweep(
    h: &History,
    c: &Causality,
    order: &[u32],
    groups: &[u32],
    mut remaining: Vec<u32>,
    refcount: &mut [u32],
    joins_v: &[bool],
    emit: &mut impl FnMut(u32, &[u64]),
) {
    let width = c.width;
    let procs = h.processes.len();
    let n = h.ops.len();
    let mut live: Vec<Option<Box<[u64]>>> = (0..procs).map(|_| None).collect();
    let mut stored: Vec<Option<Box<[u64]>>> = (0..n).map(|_| None).collect();
    let mut scc_clock = vec![0u64; width];
    for gi in 0..groups.len() - 1 {
        let members = &order[groups[gi] as usize..groups[gi + 1] as usize];
        if members.len() == 1 {
            let v = members[0] as usize;
            let p = h.ops[v].process as usize;
            let mut clock = live[p]
                .take()
                .unwrap_or_else(|| vec![0u64; width].into_boxed_slice());
            if joins_v[v] {
                join_preds(c, &mut clock, v as u32, refcount, &mut stored);
            }
            let s = c.slot_of[p] as usize;
            clock[s] = clock[s].max(pack(c.gen_of[p], c.seq[v]));
            emit(v as u32, &clock);
            if refcount[v] > 0 {
                stored[v] = Some(clock.clone());
            }
            remaining[p] -= 1;
            if remaining[p] > 0 {
                live[p] = Some(clock);
            }
        } else {
            scc_clock.iter_mut().for_each(|x| *x = 0);
            for &v in members {
                let p = h.ops[v as usize].process as usize;
                if let Some(l) = &live[p] {
                    for (a, b) in scc_clock.iter_mut().zip(l.iter()) {
                        *a = (*a).max(*b);
                    }
                }
                if joins_v[v as usize] {
                    join_preds(c, &mut scc_clock, v, refcount, &mut stored);
                }
                let s = c.slot_of[p] as usize;
                scc_clock[s] = scc_clock[s].max(pack(c.gen_of[p], c.seq[v as usize]));
            }
            for &v in members {
                if refcount[v as usize] > 0 {
                    stored[v as usize] = Some(scc_clock.clone().into_boxed_slice());
                }
            }
            for &v in members {
                emit(v, &scc_clock);
                let p = h.ops[v as usize].process as usize;
                remaining[p] -= 1;
                live[p] = if remaining[p] > 0 {
                    Some(scc_clock.clone().into_boxed_slice())
                } else {
                    None
                };
            }
        }
    }
}

/// Joins the stored clocks of `v`'s reads-from predecessors into `clock`,
/// releasing each once its last reader has joined it.
fn join_preds(
    c: &Causality,
    clock: &mut [u64],
    v: u32,
    refcount: &mut [u32],
    stored: &mut [Option<Box<[u64]>>],
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
