//! "A read reflects every write in its causal past": `read-your-writes`,
//! `monotonic-reads` and `causal-visibility`. The rule is checked during the
//! clock sweep, while the reading operation's clock is at hand; naming (which
//! of the three) needs to know what a process's earlier reads saw, so it runs
//! afterwards over the few reads that broke the rule.

use serde_json::json;

use crate::causality::{Causality, Clock, PastOf};
use crate::explain::{Explain, Findings};
use crate::fxhash::FxHashMap;
use crate::history::{KeyKind, MopFn};
use crate::keys::{first_true, KeyIndex};
use crate::model::{History, ObsKind, Outcome, NONE};
use crate::report::{Anomaly, Example};

/// A read that does not reflect writes in its causal past.
pub struct Violation {
    pub read_mop: u32,
    pub missing: Vec<u32>,
}

/// Per-sweep state.
#[derive(Default)]
pub struct Visibility {
    /// Scratch: a read's observed writes over its key's slots.
    seen: Vec<u64>,
    pub violations: Vec<Violation>,
}

impl Visibility {
    /// Checks the reads of op `r`, whose clock is `clock` (final reads are
    /// checked afterwards by [`Visibility::check_finals`]).
    pub fn check_op(&mut self, h: &History, idx: &KeyIndex, c: &Causality, r: u32, clock: &Clock) {
        let op = &h.ops[r as usize];
        if op.outcome != Outcome::Ok || op.is_final {
            return;
        }
        for mi in op.mops() {
            let m = &h.mops[mi];
            if m.obs == ObsKind::NotRead || idx.key_writes(m.key).is_empty() {
                continue;
            }
            let past = |slot: usize| idx.slot_op[slot] != r && idx.slot_in_past(c, slot, clock);
            match h.key_kind[m.key as usize] {
                Some(KeyKind::List) | Some(KeyKind::Set) => {
                    self.check_collection(h, idx, mi as u32, past)
                }
                Some(KeyKind::Register) => {
                    // Without cycles, a read's past holds only writes
                    // already recorded, and "happens after an observed
                    // write" is a suffix of each process's writes.
                    let fast = c.cycles.is_empty().then_some((c, clock));
                    self.check_register(h, idx, r, mi as u32, past, fast)
                }
                _ => {}
            }
        }
    }

    /// Final reads: a write is in a final read's causal past when it
    /// reaches the read in the graph. Only writes the read does not reflect
    /// are candidates, so few searches run.
    pub fn check_finals(&mut self, h: &History, idx: &KeyIndex, c: &Causality) {
        for (r, op) in h.ops.iter().enumerate() {
            if !op.is_final || op.outcome != Outcome::Ok {
                continue;
            }
            let r = r as u32;
            let past_of = PastOf::new(c, r);
            for mi in op.mops() {
                let m = &h.mops[mi];
                if m.obs == ObsKind::NotRead || idx.key_writes(m.key).is_empty() {
                    continue;
                }
                let past =
                    |slot: usize| idx.slot_op[slot] != r && past_of.contains(idx.slot_op[slot]);
                match h.key_kind[m.key as usize] {
                    Some(KeyKind::List) | Some(KeyKind::Set) => {
                        self.check_collection(h, idx, mi as u32, past)
                    }
                    Some(KeyKind::Register) => {
                        self.check_register(h, idx, r, mi as u32, past, None)
                    }
                    _ => {}
                }
            }
        }
    }

    fn check_collection(
        &mut self,
        h: &History,
        idx: &KeyIndex,
        mi: u32,
        past: impl Fn(usize) -> bool,
    ) {
        let m = &h.mops[mi as usize];
        let s = idx.key_start(m.key);
        let ws = idx.key_writes(m.key);
        // The observed writes as a bit set over the key's slots.
        self.seen.clear();
        self.seen.resize(ws.len().div_ceil(64), 0);
        for &sl in idx.observed_slots(m) {
            if sl != NONE {
                let j = sl as usize - s;
                self.seen[j / 64] |= 1u64 << (j % 64);
            }
        }
        let seen = &self.seen;
        let missing: Vec<u32> = ws
            .iter()
            .enumerate()
            .filter(|&(j, _)| seen[j / 64] & (1u64 << (j % 64)) == 0 && past(s + j))
            .map(|(_, &w)| w)
            .collect();
        if !missing.is_empty() {
            self.violations.push(Violation {
                read_mop: mi,
                missing,
            });
        }
    }

    fn check_register(
        &mut self,
        h: &History,
        idx: &KeyIndex,
        r: u32,
        mi: u32,
        past: impl Fn(usize) -> bool,
        fast: Option<(&Causality, &Clock)>,
    ) {
        let m = &h.mops[mi as usize];
        let observed: Vec<u32> = h
            .obs_writes(m)
            .iter()
            .copied()
            .filter(|&w| w != NONE && idx.slot[w as usize] != NONE)
            .collect();
        // A read after its own transaction's write sees that write.
        if observed.iter().any(|&w| h.mops[w as usize].op == r) {
            return;
        }
        // A read of nothing after its own transaction's delete sees that
        // (finals never write, and may read every key: not scanned).
        if observed.is_empty() && !h.ops[r as usize].is_final {
            let own_last = (h.ops[r as usize].mops_start..mi)
                .rev()
                .find(|&j| h.mops[j as usize].key == m.key && h.mops[j as usize].is_write());
            if own_last.is_some_and(|j| h.mops[j as usize].f == MopFn::Delete) {
                return;
            }
        }
        if observed.len() >= 2 {
            return self.check_siblings(h, idx, mi, &observed, past);
        }
        // The latest write of each process in the past. Only one that
        // happens after an observed write can be missing; within a process
        // those form a suffix of its writes (session order), and the past
        // is a prefix of them (bar the reader's own transaction, whose
        // writes are contiguous), so both ends are binary searches:
        // O(log(group)) queries per group instead of a scan of the key's
        // writes. Happens-before is known only for writes recorded so far
        // (a prefix of each group: topological order), so the suffix is
        // searched among those; the past (a graph search, for final reads)
        // is asked about the suffix only.
        let mut latest = Vec::new();
        for g in idx.groups(m.key) {
            if let Some((c, clock)) = fast {
                // The latest write of the process in the past (the reader's
                // own transaction aside) is missing exactly when it happens
                // after an observed write (suffix): one binary search.
                let e = c.entry(clock, g.process);
                let upto = g.start + idx.slot_seq[g.start..g.end].partition_point(|&s| s <= e);
                if let Some(j) = (g.start..upto).rev().find(|&j| idx.slot_op[j] != r) {
                    let w = idx.writes[j];
                    if observed.is_empty() || observed.iter().any(|&o| idx.hb(h, o, w)) {
                        latest.push(w);
                    }
                }
                continue;
            }
            let from = if observed.is_empty() {
                g.start
            } else {
                let rec = first_true(g.start, g.end, |j| !idx.recorded(j));
                match idx.first_after(h, m.key, &observed, g.start, rec) {
                    j if j == rec => g.end,
                    j => j,
                }
            };
            let upto = first_true(from, g.end, |j| !past(j) && idx.slot_op[j] != r);
            if let Some(j) = (from..upto).rev().find(|&j| idx.slot_op[j] != r) {
                latest.push(idx.writes[j]);
            }
        }
        // A read of nothing reflects the deletes in its past (a read of
        // `null` cannot tell a delete from the initial state, so it has no
        // reads-from edge): they count as what it observed.
        let deletes: Vec<u32>;
        let observed = if observed.is_empty() {
            deletes = latest
                .iter()
                .copied()
                .filter(|&w| h.mops[w as usize].f == MopFn::Delete)
                .collect();
            &deletes
        } else {
            &observed
        };
        let missing: Vec<u32> = latest
            .into_iter()
            .filter(|a| !observed.contains(a))
            .filter(|&a| observed.is_empty() || observed.iter().any(|&o| idx.hb(h, o, a)))
            .collect();
        if !missing.is_empty() {
            self.violations.push(Violation {
                read_mop: mi,
                missing,
            });
        }
    }
}

impl Visibility {
    /// A read that observed siblings must reflect every write in its
    /// causal past: a write `a →hb read` that is neither observed nor
    /// happens before some observed sibling (or is replaced by one later in
    /// its own transaction) is missing (anomalies.md,
    /// Clarifications: registers with siblings), whichever process wrote it.
    /// Within one process's writes both "in the past" and "happens before
    /// an observed sibling" hold for a prefix (session order), so each is
    /// found by a binary search and the missing writes lie between.
    fn check_siblings(
        &mut self,
        h: &History,
        idx: &KeyIndex,
        mi: u32,
        observed: &[u32],
        past: impl Fn(usize) -> bool,
    ) {
        let m = &h.mops[mi as usize];
        let mut missing = Vec::new();
        for g in idx.groups(m.key) {
            let slots = g.start..g.end;
            let in_past = g.start + partition(slots.clone(), &past);
            let before_observed = g.start
                + partition(slots, &|j: usize| {
                    observed
                        .iter()
                        .any(|&o| crate::keys::superseded_by(h, idx, idx.writes[j], o))
                });
            for j in before_observed..in_past {
                let w = idx.writes[j];
                if !observed.contains(&w) {
                    missing.push(w);
                }
            }
        }
        if !missing.is_empty() {
            self.violations.push(Violation {
                read_mop: mi,
                missing,
            });
        }
    }
}

/// The length of the prefix of `slots` for which `holds` is true (`holds`
/// is true on a prefix and false after it).
fn partition(slots: std::ops::Range<usize>, holds: &impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, slots.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if holds(slots.start + mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Names and reports each violation: `read-your-writes` when the reader's
/// own process wrote a missing write, else `monotonic-reads` when an earlier
/// read of the process observed it, else `causal-visibility`.
pub fn report(x: &Explain, violations: &[Violation], f: &mut Findings) {
    let h = x.h;
    // Earlier observations by the reader's process of the missing writes.
    let mut wanted: FxHashMap<(u32, u32), u32> = FxHashMap::default();
    for v in violations {
        let rp = h.op_of(v.read_mop).process;
        for &w in &v.missing {
            wanted.insert((rp, w), NONE);
        }
    }
    if !wanted.is_empty() {
        for m in &h.mops {
            if m.obs_len == 0 {
                continue;
            }
            let op = &h.ops[m.op as usize];
            if op.outcome != Outcome::Ok {
                continue;
            }
            for &w in h.obs_writes(m) {
                if w == NONE {
                    continue;
                }
                if let Some(first) = wanted.get_mut(&(op.process, w)) {
                    if *first == NONE || m.op < *first {
                        *first = m.op;
                    }
                }
            }
        }
    }
    for v in violations {
        let rm = &h.mops[v.read_mop as usize];
        let r = rm.op;
        let rp = h.ops[r as usize].process;
        let ryw = v
            .missing
            .iter()
            .copied()
            .find(|&w| h.op_of(w).process == rp);
        let mr = v.missing.iter().copied().find_map(|w| {
            let first = wanted[&(rp, w)];
            (first != NONE && first < r).then_some((w, first))
        });
        let key = Some(h.key(rm.key).clone());
        let node = vec![h.node(h.ops[r as usize].node).to_string()];
        let missing_list = v
            .missing
            .iter()
            .map(|&w| x.write(w))
            .collect::<Vec<_>>()
            .join("; the ");
        if let Some(w) = ryw {
            let wo = h.mops[w as usize].op;
            f.add(Anomaly::ReadYourWrites, || {
                let path = x.c.path(wo, r).unwrap_or_else(|| vec![wo, r]);
                let (_, edges) = x.path(&path);
                Example {
                    explanation: format!(
                        "{} — it does not reflect the {}, which the same process made earlier",
                        x.read(v.read_mop),
                        x.write(w)
                    ),
                    key: key.clone(),
                    ops: x.indices(&[wo, r]),
                    nodes: node.clone(),
                    detail: json!({"missing": x.indices(&mop_ops(x, &v.missing)), "graph": x.graph(&path, &edges)}),
                }
            });
        } else if let Some((w, first)) = mr {
            let wo = h.mops[w as usize].op;
            f.add(Anomaly::MonotonicReads, || {
                let (_, edges) = x.path(&[first, r]);
                Example {
                    explanation: format!(
                        "{} — it does not reflect the {}, which the same process already saw in {}",
                        x.read(v.read_mop),
                        x.write(w),
                        x.op_short(first)
                    ),
                    key: key.clone(),
                    ops: x.indices(&[wo, first, r]),
                    nodes: node.clone(),
                    detail: json!({
                        "missing": x.indices(&mop_ops(x, &v.missing)),
                        "graph": x.graph(&[wo, first, r], &edges),
                    }),
                }
            });
        } else {
            let w = v.missing[0];
            let wo = h.mops[w as usize].op;
            f.add(Anomaly::CausalVisibility, || {
                let path = x.c.path(wo, r).unwrap_or_else(|| vec![wo, r]);
                let (ptext, edges) = x.path(&path);
                Example {
                    explanation: format!(
                        "{} — it does not reflect the {}, which happens before it. Path: {ptext}",
                        x.read(v.read_mop),
                        missing_list
                    ),
                    key: key.clone(),
                    ops: x.indices(&[wo, r]),
                    nodes: node.clone(),
                    detail: json!({
                        "missing": x.indices(&mop_ops(x, &v.missing)),
                        "path": edges,
                        "graph": x.graph(&path, &edges),
                    }),
                }
            });
        }
    }
}

fn mop_ops(x: &Explain, mops: &[u32]) -> Vec<u32> {
    mops.iter().map(|&w| x.h.mops[w as usize].op).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::testutil::{check, found};

    #[test]
    fn partition_finds_the_end_of_a_prefix() {
        for len in 0..6usize {
            for cut in 0..=len {
                let holds = |j: usize| j < 10 + cut;
                assert_eq!(partition(10..10 + len, &holds), cut);
            }
        }
    }

    #[test]
    fn a_sibling_read_reflects_writes_concurrent_with_its_siblings() {
        // p1 writes x 2, then y 9; p2 reads y 9, then x as siblings
        // [1, 4]: x 2 is in its past, neither observed nor before a
        // sibling.
        let r = check(&[
            (0, "n1", "txn", r#"[["w","x",1]]"#),
            (4, "n3", "txn", r#"[["w","x",4]]"#),
            (1, "n2", "txn", r#"[["w","x",2]]"#),
            (1, "n2", "txn", r#"[["w","y",9]]"#),
            (2, "n1", "txn", r#"[["r","y",9]]"#),
            (2, "n1", "txn", r#"[["r","x",[1,4]]]"#),
            (5, "n1", "final", r#"[["r","x",[1,2,4]],["r","y",9]]"#),
        ]);
        assert_eq!(found(&r), vec![(Anomaly::CausalVisibility, 1)]);
        // Observing x 2 among the siblings is fine.
        let r = check(&[
            (0, "n1", "txn", r#"[["w","x",1]]"#),
            (1, "n2", "txn", r#"[["w","x",2]]"#),
            (1, "n2", "txn", r#"[["w","y",9]]"#),
            (2, "n1", "txn", r#"[["r","y",9]]"#),
            (2, "n1", "txn", r#"[["r","x",[1,2]]]"#),
            (5, "n1", "final", r#"[["r","x",[1,2]],["r","y",9]]"#),
            (6, "n2", "final", r#"[["r","x",[1,2]],["r","y",9]]"#),
        ]);
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", found(&r));
    }

    #[test]
    fn one_name_per_read_first_read_your_writes() {
        // p0 saw x 2, then wrote x 1 (so both are in its past); its read of
        // nothing misses both: one read-your-writes, not also
        // monotonic-reads.
        let r = check(&[
            (1, "n2", "txn", r#"[["append","x",2]]"#),
            (0, "n1", "txn", r#"[["r","x",[2]]]"#),
            (0, "n1", "txn", r#"[["append","x",1]]"#),
            (0, "n1", "txn", r#"[["r","x",[]]]"#),
            (5, "n1", "final", r#"[["r","x",[2,1]]]"#),
        ]);
        assert_eq!(found(&r), vec![(Anomaly::ReadYourWrites, 1)]);
    }

    #[test]
    fn a_read_of_nothing_reflects_a_delete() {
        let r = check(&[
            (0, "n1", "txn", r#"[["w","x",1]]"#),
            (1, "n2", "txn", r#"[["r","x",1]]"#),
            (1, "n2", "txn", r#"[["d","x",null]]"#),
            (1, "n2", "txn", r#"[["r","x",null]]"#),
            (0, "n1", "txn", r#"[["d","x",null],["r","x",null]]"#),
            (5, "n1", "final", r#"[["r","x",null]]"#),
            (6, "n2", "final", r#"[["r","x",null]]"#),
        ]);
        assert_eq!(r.verdict, Verdict::Valid, "{:?}", found(&r));
    }
}
