//! "A read reflects every write in its causal past": `read-your-writes`,
//! `monotonic-reads` and `causal-visibility`. The rule is checked during the
//! clock sweep, while the reading operation's clock is at hand; naming (which
//! of the three) needs to know what a process's earlier reads saw, so it runs
//! afterwards over the few reads that broke the rule.

use serde_json::json;

use crate::causality::{Causality, Clock, PastOf};
use crate::explain::{Explain, Findings};
use crate::history::{KeyKind, MopFn};
use crate::ids::{IdVec, Slot};
use crate::keys::{first_true, KeyIndex};
use crate::model::{History, KeyId, MopId, ObsKind, OpId, Outcome, ProcId};
use crate::report::{Anomaly, Example};
use rustc_hash::FxHashMap;

/// A read that does not reflect writes in its causal past.
pub struct Violation {
    pub read_mop: MopId,
    pub missing: Vec<MopId>,
}

/// Per-sweep state.
#[derive(Default)]
pub struct Visibility {
    /// Scratch: a read's observed writes over its key's slots.
    seen: Vec<u64>,
    pub violations: Vec<Violation>,
    /// Per key: its write slots as (topological position of the op, slot),
    /// sorted; built at the first register read of the sweep (see
    /// [`Visibility::reflects_past`]).
    by_pos: IdVec<KeyId, Vec<(u32, u32)>>,
    /// Per slot: how many writes of its key are at or before its op in
    /// the topological order (its index in `by_pos` past the writes of its
    /// own op), for [`Visibility::reflects_past`].
    upto: Vec<u32>,
    /// Per key: how many of its writes are before the op whose reads were
    /// last checked (reads arrive in topological order, so this only moves
    /// forward).
    before: Vec<u32>,
    /// Tests only: skip the shortcut of [`Visibility::reflects_past`] and
    /// scan every writer process, to compare the two.
    #[cfg(test)]
    exhaustive: bool,
}

impl Visibility {
    /// Checks the reads of op `r`, whose clock is `clock` (final reads are
    /// checked afterwards by [`Visibility::check_finals`]).
    pub fn check_op(&mut self, h: &History, idx: &KeyIndex, c: &Causality, r: OpId, clock: &Clock) {
        let op = &h.ops[r];
        if op.outcome != Outcome::Ok || op.is_final {
            return;
        }
        for mi in op.mop_ids() {
            let m = &h.mops[mi];
            if m.obs == ObsKind::NotRead || idx.key_writes(m.key).is_empty() {
                continue;
            }
            let past = |slot: usize| idx.slot_op[slot] != r && idx.slot_in_past(c, slot, clock);
            match h.key_kind[m.key] {
                Some(KeyKind::List) | Some(KeyKind::Set) => self.check_collection(h, idx, mi, past),
                Some(KeyKind::Register) => {
                    // Without cycles, a read's past holds only writes
                    // already recorded, and "happens after an observed
                    // write" is a suffix of each process's writes.
                    let fast = c.cycles.is_empty().then_some((c, clock));
                    self.check_register(h, idx, r, mi, past, fast)
                }
                _ => {}
            }
        }
    }

    /// Final reads: a write is in a final read's causal past when it
    /// reaches the read in the graph. Only writes the read does not reflect
    /// are candidates, so few searches run.
    pub fn check_finals(&mut self, h: &History, idx: &KeyIndex, c: &Causality) {
        for (r, op) in h.ops.iter_enumerated() {
            if !op.is_final || op.outcome != Outcome::Ok {
                continue;
            }
            let past_of = PastOf::new(c, r);
            for mi in op.mop_ids() {
                let m = &h.mops[mi];
                if m.obs == ObsKind::NotRead || idx.key_writes(m.key).is_empty() {
                    continue;
                }
                let past =
                    |slot: usize| idx.slot_op[slot] != r && past_of.contains(idx.slot_op[slot]);
                match h.key_kind[m.key] {
                    Some(KeyKind::List) | Some(KeyKind::Set) => {
                        self.check_collection(h, idx, mi, past)
                    }
                    Some(KeyKind::Register) => self.check_register(h, idx, r, mi, past, None),
                    _ => {}
                }
            }
        }
    }

    fn check_collection(
        &mut self,
        h: &History,
        idx: &KeyIndex,
        mi: MopId,
        past: impl Fn(usize) -> bool,
    ) {
        let m = &h.mops[mi];
        let s = idx.key_start(m.key);
        let ws = idx.key_writes(m.key);
        // The observed writes as a bit set over the key's slots.
        self.seen.clear();
        self.seen.resize(ws.len().div_ceil(64), 0);
        for &sl in idx.observed_slots(m) {
            if !sl.is_none() {
                let j = sl.index() - s;
                self.seen[j / 64] |= 1u64 << (j % 64);
            }
        }
        let seen = &self.seen;
        let missing: Vec<MopId> = ws
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
        r: OpId,
        mi: MopId,
        past: impl Fn(usize) -> bool,
        fast: Option<(&Causality, &Clock)>,
    ) {
        let m = &h.mops[mi];
        // The observed writes with slots, and their slots (the key index
        // keeps them per observed value, beside the read's other values).
        let slots = idx.observed_slots(m);
        // Most reads observe at most one write: no allocation for those.
        let with_slots = || {
            h.obs_writes(m)
                .iter()
                .zip(slots)
                .filter(|&(_, s)| !s.is_none())
                .map(|(&w, _)| w)
        };
        let one: [MopId; 1];
        let many: Vec<MopId>;
        let observed: &[MopId] = {
            let mut it = with_slots();
            match (it.next(), it.next()) {
                (None, _) => &[],
                (Some(w), None) => {
                    one = [w];
                    &one
                }
                _ => {
                    many = with_slots().collect();
                    &many
                }
            }
        };
        // A read after its own transaction's write sees that write.
        if slots.iter().any(|&s| !s.is_none() && idx.slot_op[s] == r) {
            return;
        }
        // A read of nothing after its own transaction's delete sees that
        // (finals never write, and may read every key: not scanned).
        if observed.is_empty() && !h.ops[r].is_final {
            let own_last = (h.ops[r].mops_start.index()..mi.index())
                .rev()
                .find(|&j| h.mops[j].key == m.key && h.mops[j].is_write());
            if own_last.is_some_and(|j| h.mops[j].f == MopFn::Delete) {
                return;
            }
        }
        if observed.len() >= 2 {
            return self.check_siblings(h, idx, mi, observed, past);
        }
        if let Some((c, clock)) = fast {
            let first = slots.iter().copied().find(|s| !s.is_none());
            if self.reflects_past(h, idx, c, clock, r, m.key, observed, first) {
                return;
            }
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
                match idx.first_after(h, m.key, observed, g.start, rec) {
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
        let deletes: Vec<MopId>;
        let observed: &[MopId] = if observed.is_empty() {
            deletes = latest
                .iter()
                .copied()
                .filter(|&w| h.mops[w].f == MopFn::Delete)
                .collect();
            &deletes
        } else {
            observed
        };
        let missing: Vec<MopId> = latest
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
    /// Without cycles, for a register read of op `r` on key `k` that
    /// observed one write `o` (or nothing): whether no write of `k` in the
    /// read's past (bar `r`'s own) happens after `o` (for a read of
    /// nothing: whether no write of `k` is in its past at all). Then the
    /// read reflects its past and [`Visibility::check_register`] is done
    /// without scanning every process that wrote `k`, which costs
    /// O(writer processes) per read: on a key written by thousands of
    /// short-lived processes (every `info` retires one) that scan made
    /// the check quadratic. A write `w` with `o →hb w →hb r` lies strictly
    /// between `o` and `r` in the topological order, so only the key's
    /// writes there are asked; when one is found the scan runs as before
    /// and names every missing write. Exact: the scan finds a missing write
    /// exactly when such a `w` exists (the latest write of `w`'s process in
    /// the past is at or after `w` in session order, so `o` happens before
    /// it too).
    #[allow(clippy::too_many_arguments)]
    fn reflects_past(
        &mut self,
        h: &History,
        idx: &KeyIndex,
        c: &Causality,
        clock: &Clock,
        r: OpId,
        k: KeyId,
        observed: &[MopId],
        first: Option<Slot>,
    ) -> bool {
        #[cfg(test)]
        if self.exhaustive {
            return false;
        }
        if self.by_pos.is_empty() {
            // Each key's writes by (topological position, slot), filled
            // in topological order (no sort): a vertex's writes come in
            // micro-operation order, which is slot order within a key.
            self.by_pos = IdVec::from_vec(
                h.keys
                    .ids()
                    .map(|k| Vec::with_capacity(idx.key_writes(k).len()))
                    .collect(),
            );
            let mut order = vec![OpId::NONE; h.ops.len()];
            for (v, &p) in c.pos.iter_enumerated() {
                if p != crate::model::NONE {
                    order[p as usize] = v;
                }
            }
            for &v in order.iter().filter(|v| !v.is_none()) {
                let pv = c.pos[v];
                for mi in h.ops[v].mop_ids() {
                    let j = idx.slot[mi];
                    if !j.is_none() {
                        self.by_pos[h.mops[mi].key].push((pv, j.0));
                    }
                }
            }
            debug_assert!(self.by_pos.iter().all(|l| l.is_sorted()));
            self.upto = vec![0; idx.writes.len()];
            for l in &mut self.by_pos {
                let mut i = 0;
                while i < l.len() {
                    let mut end = i + 1;
                    while end < l.len() && l[end].0 == l[i].0 {
                        end += 1;
                    }
                    for &(_, j) in &l[i..end] {
                        self.upto[j as usize] = end as u32;
                    }
                    i = end;
                }
            }
            self.before = vec![0; h.keys.len()];
        }
        let list = &self.by_pos[k];
        let lo = match observed {
            [] => 0,
            [o] => {
                debug_assert_eq!(first, Some(idx.slot[*o]));
                self.upto[first.unwrap_or_else(|| idx.slot[*o]).index()] as usize
            }
            _ => return false,
        };
        let pr = c.pos[r];
        // the writes before `r`: from where the previous read of `k` left
        // off (a search if `r` came earlier, which the sweep's order rules
        // out)
        let mut b = self.before[k.index()] as usize;
        if b > 0 && list[b - 1].0 >= pr {
            b = list.partition_point(|&(p, _)| p < pr);
        } else {
            while b < list.len() && list[b].0 < pr {
                b += 1;
            }
        }
        self.before[k.index()] = b as u32;
        let hi = b.max(lo);
        !list[lo..hi].iter().any(|&(_, j)| {
            let j = j as usize;
            idx.slot_op[j] != r
                && idx.slot_in_past(c, j, clock)
                && observed.iter().all(|&o| idx.hb(h, o, idx.writes[j]))
        })
    }

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
        mi: MopId,
        observed: &[MopId],
        past: impl Fn(usize) -> bool,
    ) {
        let m = &h.mops[mi];
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
    let mut wanted: FxHashMap<(ProcId, MopId), OpId> = FxHashMap::default();
    for v in violations {
        let rp = h.op_of(v.read_mop).process;
        for &w in &v.missing {
            wanted.insert((rp, w), OpId::NONE);
        }
    }
    if !wanted.is_empty() {
        for m in &h.mops {
            if m.obs_len == 0 {
                continue;
            }
            let op = &h.ops[m.op];
            if op.outcome != Outcome::Ok {
                continue;
            }
            for &w in h.obs_writes(m) {
                if w.is_none() {
                    continue;
                }
                if let Some(first) = wanted.get_mut(&(op.process, w)) {
                    if first.is_none() || m.op < *first {
                        *first = m.op;
                    }
                }
            }
        }
    }
    for v in violations {
        let rm = &h.mops[v.read_mop];
        let r = rm.op;
        let rp = h.ops[r].process;
        let ryw = v
            .missing
            .iter()
            .copied()
            .find(|&w| h.op_of(w).process == rp);
        let mr = v.missing.iter().copied().find_map(|w| {
            let first = wanted[&(rp, w)];
            (!first.is_none() && first < r).then_some((w, first))
        });
        let key = Some(h.key(rm.key).clone());
        let node = vec![h.node(h.ops[r].node).to_string()];
        let missing_list = v
            .missing
            .iter()
            .map(|&w| x.write(w))
            .collect::<Vec<_>>()
            .join("; the ");
        if let Some(w) = ryw {
            let wo = h.mops[w].op;
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
            let wo = h.mops[w].op;
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
            let wo = h.mops[w].op;
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

fn mop_ops(x: &Explain, mops: &[MopId]) -> Vec<OpId> {
    mops.iter().map(|&w| x.h.mops[w].op).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::testutil::{check, found};

    /// The violations the sweep records, with or without the shortcut of
    /// [`Visibility::reflects_past`] (finals included).
    fn violations(h: &History, exhaustive: bool) -> Vec<(MopId, Vec<MopId>)> {
        use crate::causality::{session, ReadsFrom, Writers};
        let (seq, prev) = session(h);
        let mut idx = KeyIndex::new(h, &seq);
        let writers = Writers::new(h, &seq);
        let rf = ReadsFrom::new(h, &writers);
        let mut vis = Visibility {
            exhaustive,
            ..Visibility::default()
        };
        let c = Causality::build(h, seq, prev, rf, |op, clock, c| {
            vis.check_op(h, &idx, c, op, clock);
            idx.record(h, c, op, clock);
        });
        idx.finish(h);
        vis.check_finals(h, &idx, &c);
        vis.violations
            .into_iter()
            .map(|v| (v.read_mop, v.missing))
            .collect()
    }

    /// A random register history: `procs` clients on `keys` keys, one
    /// operation at a time; a read returns the key's latest value with
    /// probability `fresh`, else an older one (or `null`); `info` (which
    /// retires the client's process id) with probability `info`.
    fn random_history(
        seed: u64,
        ops: usize,
        procs: u64,
        keys: u64,
        fresh: f64,
        info: f64,
    ) -> History {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut written: Vec<Vec<i64>> = vec![Vec::new(); keys as usize];
        let mut pid: Vec<u64> = (0..procs).collect();
        let mut next_pid = procs;
        let mut text = String::new();
        let mut t = 0u64;
        let mut line = |text: &mut String, ty: &str, p: u64, f: &str, v: &str| {
            text.push_str(&format!(
                "{{\"index\":{t},\"time\":{t},\"type\":\"{ty}\",\"process\":{p},\"node\":\"n{}\",\"f\":\"{f}\",\"value\":{v}}}\n",
                p % 3 + 1
            ));
            t += 1;
        };
        for i in 0..ops {
            let c = rng.random_range(0..procs) as usize;
            let k = rng.random_range(0..keys) as usize;
            let (inv, done) = if rng.random_bool(0.5) {
                written[k].push(i as i64);
                let m = format!(r#"[["w",{k},{i}]]"#);
                (m.clone(), m)
            } else {
                let ws = &written[k];
                let v = if ws.is_empty() || !rng.random_bool(fresh) {
                    match rng.random_range(0..=ws.len()) {
                        0 => "null".to_string(),
                        j => ws[j - 1].to_string(),
                    }
                } else {
                    ws[ws.len() - 1].to_string()
                };
                (
                    format!(r#"[["r",{k},null]]"#),
                    format!(r#"[["r",{k},{v}]]"#),
                )
            };
            line(&mut text, "invoke", pid[c], "txn", &inv);
            if rng.random_bool(info) {
                line(&mut text, "info", pid[c], "txn", &inv);
                pid[c] = next_pid;
                next_pid += 1;
            } else {
                line(&mut text, "ok", pid[c], "txn", &done);
            }
        }
        for n in 0..3u64 {
            let finals: Vec<String> = (0..keys)
                .map(|k| match written[k as usize].last() {
                    Some(v) => format!(r#"["r",{k},{v}]"#),
                    None => format!(r#"["r",{k},null]"#),
                })
                .collect();
            let v = format!("[{}]", finals.join(","));
            let inv: Vec<String> = (0..keys).map(|k| format!(r#"["r",{k},null]"#)).collect();
            let p = next_pid + n;
            line(
                &mut text,
                "invoke",
                p,
                "final",
                &format!("[{}]", inv.join(",")),
            );
            line(&mut text, "ok", p, "final", &v);
        }
        crate::reader::read_history(text.as_bytes())
            .map_err(|e| format!("{:?}", e.map(|e| e.message)))
            .expect("a valid history")
    }

    #[test]
    fn the_shortcut_finds_what_the_scan_finds() {
        // Small keys (bit masks) and large ones (projected clocks), mostly
        // fresh reads (the shortcut answers) and some stale ones (the scan
        // runs), with short-lived processes.
        let mut found = 0;
        for seed in 0..60u64 {
            let (ops, keys) = if seed % 2 == 0 { (60, 2) } else { (400, 2) };
            let fresh = [1.0, 0.97, 0.8][seed as usize % 3];
            let h = random_history(seed, ops, 6, keys, fresh, 0.15);
            let fast = violations(&h, false);
            assert_eq!(fast, violations(&h, true), "seed {seed}");
            found += fast.len();
        }
        // The histories do break the rule, so the comparison means something.
        assert!(found > 100, "{found}");
    }

    /// The shortcut against the scan on generated register histories with
    /// several operations per transaction (a transaction writing a key
    /// twice: writes that share a topological position) and stale reads
    /// injected (`causal-visibility`, `monotonic-reads`).
    #[test]
    fn reflects_past_agrees_with_the_scan_on_multi_operation_transactions() {
        use crate::synth::{GenOptions, Workload};
        let mut found = 0;
        for (seed, inject) in [
            (1u64, None),
            (2, Some(Anomaly::CausalVisibility)),
            (3, Some(Anomaly::MonotonicReads)),
            (4, Some(Anomaly::ReadYourWrites)),
        ] {
            let mut o = GenOptions::new(Workload::Register, 3000, 8, 3, seed);
            o.mops = Some(4);
            o.keys = Some(3);
            o.max_writes_per_key = u32::MAX;
            o.inject = inject;
            let h = crate::testutil::generated(&o);
            let fast = violations(&h, false);
            assert_eq!(fast, violations(&h, true), "seed {seed}");
            found += fast.len();
        }
        assert!(found >= 3, "{found}");
    }

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
