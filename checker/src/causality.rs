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

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

use crate::fxhash::FxHashMap;
use crate::model::{History, Outcome, NONE};

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
    /// Reduced reads-from predecessors, CSR by reader op.
    pred_start: Vec<u32>,
    preds: Vec<u32>,
    /// Per op: position in the topological order (`NONE` if not a vertex).
    pub pos: Vec<u32>,
    /// Non-trivial strongly connected components (cycles), as op ids.
    pub cycles: Vec<Vec<u32>>,
    /// Per op: which entry of `cycles` it belongs to, if any.
    pub cycle_of: FxHashMap<u32, u32>,
    /// Per op: its process.
    procs_of: Vec<u32>,
    /// Number of processes (clock width).
    width: usize,
    /// Per op: row of its stored clock, or `NONE`.
    row: Vec<u32>,
    clocks: Vec<u32>,
    pub edge_count: usize,
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

impl Causality {
    /// Builds the graph, orders it and computes clocks; `on_vertex(op, clock,
    /// causality)` runs for each vertex once its clock is known, with every
    /// write in its causal past already stored.
    pub fn build(
        h: &History,
        seq: Vec<u32>,
        prev: Vec<u32>,
        mut on_vertex: impl FnMut(u32, &[u32], &Causality),
    ) -> Causality {
        let n = h.ops.len();
        let width = h.processes.len();
        let mut count = vec![0u32; width];
        for (i, op) in h.ops.iter().enumerate() {
            if seq[i] != 0 {
                count[op.process as usize] += 1;
            }
        }
        // Reduced reads-from predecessors: per reader, the latest observed
        // write op of each process.
        let mut pred_start = Vec::with_capacity(n + 1);
        let mut preds: Vec<u32> = Vec::new();
        let mut scratch: Vec<(u32, u32, u32)> = Vec::new();
        pred_start.push(0);
        for (r, op) in h.ops.iter().enumerate() {
            if op.outcome == Outcome::Ok {
                scratch.clear();
                for m in &h.mops[op.mops()] {
                    for &w in h.obs_writes(m) {
                        if w == NONE {
                            continue;
                        }
                        let wo = h.mops[w as usize].op;
                        if wo as usize == r || seq[wo as usize] == 0 {
                            continue;
                        }
                        let wp = h.ops[wo as usize].process;
                        // Earlier ops of the reader's own process reach it by session.
                        if wp == op.process && wo < r as u32 {
                            continue;
                        }
                        scratch.push((wp, seq[wo as usize], wo));
                    }
                }
                if !scratch.is_empty() {
                    scratch.sort_unstable();
                    for i in 0..scratch.len() {
                        if i + 1 == scratch.len() || scratch[i + 1].0 != scratch[i].0 {
                            preds.push(scratch[i].2);
                        }
                    }
                }
            }
            pred_start.push(preds.len() as u32);
        }
        let edge_count = preds.len() + prev.iter().filter(|&&p| p != NONE).count();

        // Successors (reads-from only; session successors come from `next`).
        let mut next = vec![NONE; n];
        for (i, &p) in prev.iter().enumerate() {
            if p != NONE {
                next[p as usize] = i as u32;
            }
        }
        let mut succ_start = vec![0u32; n + 1];
        for &w in &preds {
            succ_start[w as usize + 1] += 1;
        }
        for i in 0..n {
            succ_start[i + 1] += succ_start[i];
        }
        let mut fill = succ_start.clone();
        let mut succs = vec![0u32; preds.len()];
        for r in 0..n {
            for &w in &preds[pred_start[r] as usize..pred_start[r + 1] as usize] {
                succs[fill[w as usize] as usize] = r as u32;
                fill[w as usize] += 1;
            }
        }
        drop(fill);

        // Kahn's algorithm.
        let mut indeg = vec![0u32; n];
        let mut vertices = 0usize;
        for i in 0..n {
            if seq[i] == 0 {
                continue;
            }
            vertices += 1;
            indeg[i] = (prev[i] != NONE) as u32 + pred_start[i + 1] - pred_start[i];
        }
        let mut order: Vec<u32> = Vec::with_capacity(vertices);
        for i in 0..n {
            if seq[i] != 0 && indeg[i] == 0 {
                order.push(i as u32);
            }
        }
        let mut head = 0;
        while head < order.len() {
            let v = order[head] as usize;
            head += 1;
            let nx = next[v];
            if nx != NONE {
                indeg[nx as usize] -= 1;
                if indeg[nx as usize] == 0 {
                    order.push(nx);
                }
            }
            for &s in &succs[succ_start[v] as usize..succ_start[v + 1] as usize] {
                indeg[s as usize] -= 1;
                if indeg[s as usize] == 0 {
                    order.push(s);
                }
            }
        }
        drop(indeg);
        // Groups: Kahn vertices are singletons; the rest are SCCs in
        // topological order.
        let kahn_len = order.len();
        let mut groups: Vec<u32> = (0..=kahn_len as u32).collect();
        let mut cycles = Vec::new();
        let mut cycle_of = FxHashMap::default();
        if kahn_len < vertices {
            let mut in_order = vec![false; n];
            for &v in &order {
                in_order[v as usize] = true;
            }
            let rest: Vec<u32> = (0..n as u32)
                .filter(|&i| seq[i as usize] != 0 && !in_order[i as usize])
                .collect();
            let mut local = FxHashMap::default();
            let mut g: DiGraph<u32, ()> = DiGraph::with_capacity(rest.len(), rest.len() * 2);
            for &v in &rest {
                local.insert(v, g.add_node(v));
            }
            for &v in &rest {
                let a = local[&v];
                if next[v as usize] != NONE {
                    if let Some(&b) = local.get(&next[v as usize]) {
                        g.add_edge(a, b, ());
                    }
                }
                for &s in
                    &succs[succ_start[v as usize] as usize..succ_start[v as usize + 1] as usize]
                {
                    if let Some(&b) = local.get(&s) {
                        g.add_edge(a, b, ());
                    }
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
                order.extend_from_slice(&scc);
                groups.push(order.len() as u32);
                if scc.len() > 1 {
                    for &v in &scc {
                        cycle_of.insert(v, cycles.len() as u32);
                    }
                    cycles.push(scc);
                }
            }
        }
        drop(succs);
        drop(succ_start);
        drop(next);
        let mut pos = vec![NONE; n];
        for (i, &v) in order.iter().enumerate() {
            pos[v as usize] = i as u32;
        }

        let mut c = Causality {
            seq,
            prev,
            pred_start,
            preds,
            pos,
            cycles,
            cycle_of,
            procs_of: h.ops.iter().map(|op| op.process).collect(),
            width,
            row: vec![NONE; n],
            clocks: Vec::new(),
            edge_count,
        };
        let writes = h
            .ops
            .iter()
            .filter(|op| op.is_vertex() && h.mops[op.mops()].iter().any(|m| m.is_write()))
            .count();
        c.clocks.reserve_exact(writes * width);

        // Vector clocks in topological order. Each process has one live
        // clock (its latest vertex's), freed after its last vertex.
        let mut live: Vec<Option<Box<[u32]>>> = (0..width).map(|_| None).collect();
        let mut remaining = count;
        let mut scc_clock = vec![0u32; width];
        for gi in 0..groups.len() - 1 {
            let members = &order[groups[gi] as usize..groups[gi + 1] as usize];
            if members.len() == 1 {
                let v = members[0] as usize;
                let p = h.ops[v].process as usize;
                let mut clock = live[p]
                    .take()
                    .unwrap_or_else(|| vec![0u32; width].into_boxed_slice());
                for &w in c.rf_preds(v as u32) {
                    c.join_from(&mut clock, w);
                }
                clock[p] = clock[p].max(c.seq[v]);
                c.store_if_writer(h, v, &clock);
                on_vertex(v as u32, &clock, &c);
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
                    for &w in c.rf_preds(v) {
                        if c.row[w as usize] != NONE {
                            c.join_from(&mut scc_clock, w);
                        }
                    }
                    scc_clock[p] = scc_clock[p].max(c.seq[v as usize]);
                }
                for &v in members {
                    c.store_if_writer(h, v as usize, &scc_clock);
                }
                for &v in members {
                    on_vertex(v, &scc_clock, &c);
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
        c
    }

    fn rf_preds(&self, v: u32) -> &[u32] {
        &self.preds[self.pred_start[v as usize] as usize..self.pred_start[v as usize + 1] as usize]
    }

    /// Joins `w`'s stored clock into `clock`, unless `clock` already knows `w`.
    fn join_from(&self, clock: &mut [u32], w: u32) {
        let row = self.row[w as usize];
        if row == NONE {
            return;
        }
        let wp = self.proc_of_row(w);
        if clock[wp] >= self.seq[w as usize] {
            return;
        }
        let src = &self.clocks[row as usize * self.width..(row as usize + 1) * self.width];
        for (a, b) in clock.iter_mut().zip(src) {
            *a = (*a).max(*b);
        }
    }

    fn proc_of_row(&self, w: u32) -> usize {
        self.procs_of[w as usize] as usize
    }

    fn store_if_writer(&mut self, h: &History, v: usize, clock: &[u32]) {
        let op = &h.ops[v];
        if h.mops[op.mops()].iter().any(|m| m.is_write()) {
            self.row[v] = (self.clocks.len() / self.width.max(1)) as u32;
            self.clocks.extend_from_slice(clock);
        }
    }

    /// Whether op `a` happens before op `b` (both must be vertices; `b` must
    /// write, so its clock is stored). An op never happens before itself.
    pub fn hb(&self, a: u32, b: u32) -> bool {
        if a == b {
            return false;
        }
        let sa = self.seq[a as usize];
        let row = self.row[b as usize];
        if sa == 0 || row == NONE {
            return false;
        }
        self.clocks[row as usize * self.width + self.procs_of[a as usize] as usize] >= sa
    }

    /// The stored clock of op `op` (writers only).
    pub fn clock_of(&self, op: u32) -> Option<&[u32]> {
        let row = self.row[op as usize];
        (row != NONE)
            .then(|| &self.clocks[row as usize * self.width..(row as usize + 1) * self.width])
    }

    /// The process (dense id) of an op.
    pub fn process_of(&self, op: u32) -> u32 {
        self.procs_of[op as usize]
    }

    /// Bytes held by stored clocks.
    pub fn clock_bytes(&self) -> usize {
        self.clocks.len() * 4
    }

    /// Whether op `a` (a vertex) is in the causal past given by `clock`.
    pub fn in_past(&self, a: u32, clock: &[u32]) -> bool {
        let sa = self.seq[a as usize];
        sa != 0 && clock[self.procs_of[a as usize] as usize] >= sa
    }

    /// The kind of a stored edge `from → to`.
    pub fn edge_kind(&self, from: u32, to: u32) -> EdgeKind {
        if self.prev[to as usize] == from {
            EdgeKind::Session
        } else {
            EdgeKind::ReadsFrom
        }
    }

    /// A shortest path `a → … → b` of stored edges, searched backwards from
    /// `b` and bounded in size; `None` if not found within the bound.
    pub fn path(&self, a: u32, b: u32) -> Option<Vec<u32>> {
        if self.seq[a as usize] == 0 || self.seq[b as usize] == 0 {
            return None;
        }
        let floor = self.pos[a as usize];
        let mut parent: FxHashMap<u32, u32> = FxHashMap::default();
        let mut queue = std::collections::VecDeque::new();
        parent.insert(b, NONE);
        queue.push_back(b);
        let mut budget = 2_000_000usize;
        let cyclic = !self.cycles.is_empty();
        while let Some(v) = queue.pop_front() {
            let prev = self.prev[v as usize];
            let rf = self.rf_preds(v);
            for &u in std::iter::once(&prev).chain(rf.iter()) {
                if u == NONE || parent.contains_key(&u) {
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
                    return Some(path);
                }
                budget = budget.checked_sub(1)?;
                queue.push_back(u);
            }
        }
        None
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
        let mut path = self.path(start, pred).unwrap_or_else(|| vec![start, pred]);
        path.push(start);
        path
    }
}
