//! Reads the history cannot show. An `info` completion carries no observed
//! values, yet the transaction may have taken effect, reads included: a read
//! of key `k` in an indeterminate transaction may have observed any write to
//! `k`, making it (and everything after it) causally later than that write.
//! For a register write `w` missing from a final state that holds `s`, the
//! checker then cannot show `w ∥ s` when such a read comes before `s` (in
//! `s`'s own transaction, or on a path to it) and not after `w`: `s` may have
//! superseded `w` (docs/checker.md, Interpretations).

use std::collections::BTreeMap;

use crate::causality::Causality;
use crate::history::MopFn;
use crate::keys::KeyIndex;
use crate::model::{History, KeyId, MopId, OpId, Outcome};
use rustc_hash::{FxHashMap, FxHashSet};

/// Ops [`UnknownReads::by_clocks`] explores before it leaves the question
/// to a graph search.
const EXPLORE: usize = 64;

/// Per register key, the unknown reads: (op, mop) of each read in an `info`
/// transaction that no earlier write of the same transaction to that key
/// precedes (a read after the transaction's own write sees that write).
#[derive(Clone)]
pub struct UnknownReads<'a> {
    h: &'a History,
    c: &'a Causality,
    /// The key index, without cycles: "op `i` happens before write `w`"
    /// is then read from `w`'s projected clock where it has an entry for
    /// `i`'s process, instead of searched in the graph.
    idx: Option<&'a KeyIndex>,
    by_key: BTreeMap<KeyId, Vec<(OpId, MopId)>>,
    /// Memo of "op `a` happens before op `b`" searches.
    reach: FxHashMap<(OpId, OpId), bool>,
    /// Memo, per state write `s`: the ops of the unknown reads of its key
    /// that come before `s`, in `by_key`'s order.
    before_state: FxHashMap<MopId, std::sync::Arc<[OpId]>>,
}

impl<'a> UnknownReads<'a> {
    pub fn new(h: &'a History, c: &'a Causality, idx: &'a KeyIndex) -> Self {
        let mut by_key: BTreeMap<KeyId, Vec<(OpId, MopId)>> = BTreeMap::new();
        let mut written: FxHashSet<KeyId> = FxHashSet::default();
        for (o, op) in h.ops.iter_enumerated() {
            if op.outcome != Outcome::Info || !op.is_vertex() {
                continue;
            }
            written.clear();
            for mi in op.mops() {
                let m = &h.mops[mi];
                if m.f == MopFn::Read {
                    if !written.contains(&m.key) {
                        by_key.entry(m.key).or_default().push((o, MopId::new(mi)));
                    }
                } else {
                    written.insert(m.key);
                }
            }
        }
        UnknownReads {
            h,
            c,
            idx: (c.cycles.is_empty()
                && !switches::NO_CLOCKS.load(std::sync::atomic::Ordering::Relaxed))
            .then_some(idx),
            by_key,
            reach: FxHashMap::default(),
            before_state: FxHashMap::default(),
        }
    }

    /// Whether op `a` happens before op `b` (a path of edges; bounded search).
    fn before(&mut self, a: OpId, b: OpId) -> bool {
        if a == b {
            return false;
        }
        let c = self.c;
        *self.reach.entry((a, b)).or_insert_with(|| {
            let direct = c.direct_preds(b);
            c.reaches(a, b, &direct)
        })
    }

    /// Whether op `i` happens before write `w` of op `ow` (not `i`): from
    /// projected clocks when they tell (a graph search per pair made this
    /// quadratic on hot keys: every write missing from a final state asked
    /// about every unknown read of its key), else searched.
    fn before_write(&mut self, i: OpId, w: MopId, ow: OpId) -> bool {
        if let Some(b) = self.idx.and_then(|idx| self.by_clocks(idx, i, w, ow)) {
            return b;
        }
        self.before(i, ow)
    }

    /// [`UnknownReads::before_write`] from `w`'s projected clock: its
    /// entry for `i`'s process tells, unless that process never wrote the
    /// key (an `info` transaction is often its process's last, and a
    /// short-lived process writes few keys). Then `i` happens before `ow`
    /// exactly when one of its direct successors is `ow` or happens before
    /// it, asked the same way: a search over the ops the clock cannot
    /// answer for (an `info` transaction's only successors are the reads
    /// of its writes, often final reads, which have none), `None` when
    /// more than [`EXPLORE`] of them are met.
    fn by_clocks(&self, idx: &KeyIndex, i: OpId, w: MopId, ow: OpId) -> Option<bool> {
        let (h, c) = (self.h, self.c);
        let known = |u: OpId| idx.op_before_write(h, h.ops[u].process, c.seq[u], w);
        if let Some(b) = known(i) {
            return Some(b);
        }
        let mut seen = vec![i];
        let mut stack = vec![i];
        while let Some(v) = stack.pop() {
            for u in c.successors(v) {
                if u == ow {
                    return Some(true);
                }
                // not in the graph (no edges), or placed after `ow`
                if c.seq[u] == 0 || c.pos[u] > c.pos[ow] || seen.contains(&u) {
                    continue;
                }
                match known(u) {
                    Some(true) => return Some(true),
                    Some(false) => {}
                    None if seen.len() >= EXPLORE => return None,
                    None => {
                        seen.push(u);
                        stack.push(u);
                    }
                }
            }
        }
        Some(false)
    }

    /// Whether register write `s` may have superseded write `w` (same key)
    /// through a read the history does not show: some unknown read of the
    /// key in op `i` comes before `s` (earlier in `s`'s transaction, or
    /// `i →hb s`) while `i` is not `w`'s op and does not happen after it.
    /// Returns that op `i`.
    pub fn may_supersede(&mut self, w: MopId, s: MopId) -> Option<OpId> {
        let (mw, ms) = (&self.h.mops[w], &self.h.mops[s]);
        let (ow, os) = (mw.op, ms.op);
        debug_assert_eq!(mw.key, ms.key);
        // The unknown reads before `s` depend on `s` alone: found once per
        // state write (a final state holds few), so each judged write asks
        // only about those, until one does not come after it (most often
        // the first).
        let before_s = match self.before_state.get(&s) {
            Some(list) => list.clone(),
            None => {
                let reads = self.by_key.get(&mw.key)?.clone();
                let list: std::sync::Arc<[OpId]> = reads
                    .into_iter()
                    .filter(|&(i, r)| {
                        if i == os {
                            r < s
                        } else {
                            self.before_write(i, s, os)
                        }
                    })
                    .map(|(i, _)| i)
                    .collect();
                self.before_state.insert(s, list.clone());
                list
            }
        };
        before_s
            .iter()
            .copied()
            .find(|&i| i != ow && !self.before_write(i, w, ow))
    }
}

/// Switches tests set (see `finals::switches`).
pub(crate) mod switches {
    /// Set by a test: every "happens before" is searched in the graph,
    /// none read from projected clocks (only the time taken changes).
    pub(crate) static NO_CLOCKS: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `before_write` (projected clocks, then direct successors, then a
    /// search) answers as a graph search does, for every unknown read's
    /// op and every write of its key; most answers need no search.
    #[test]
    fn before_write_agrees_with_the_graph() {
        let (mut asked, mut yes) = (0usize, 0usize);
        let mut searched = 0usize;
        for (seed, keys, mops) in [(1u64, 4u32, 1u32), (2, 6, 3)] {
            let h = crate::testutil::hot_register(seed, 1500, keys, 8, mops, 0.1);
            let (idx, c) = crate::testutil::indexed(&h);
            let mut u = UnknownReads::new(&h, &c, &idx);
            let reads: Vec<(KeyId, OpId)> = u
                .by_key
                .iter()
                .flat_map(|(&k, rs)| rs.iter().map(move |&(i, _)| (k, i)))
                .collect();
            for (k, i) in reads {
                for &w in &h.key_writes[k] {
                    let ow = h.mops[w].op;
                    if ow == i || c.seq[ow] == 0 {
                        continue;
                    }
                    let before = u.reach.len();
                    let b = u.before_write(i, w, ow);
                    searched += u.reach.len() - before;
                    assert_eq!(
                        b,
                        c.reaches(i, ow, &c.direct_preds(ow)),
                        "seed {seed}: {i:?}, {w:?}"
                    );
                    asked += 1;
                    yes += usize::from(b);
                }
            }
        }
        assert!(
            asked > 10_000 && yes > 100 && yes < asked,
            "{yes} of {asked}"
        );
        assert!(searched * 10 < asked, "{searched} of {asked} searched");
    }
}
