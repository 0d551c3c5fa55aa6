//! What the final phase shows: `divergence`, `lost-write` (all forms),
//! `conflict-loss`, `causal-overwrite`, counter `duplicate`, the conflict
//! class of every key, and the convergence time.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::convergence::convergence;
use super::final_reads::{last_finals, needs_final, normalize};
use super::loss_examples::{causal_example, conflict_example, counter_example, report_list_losses};
use super::policy::Policy;
use super::unknown_reads::UnknownReads;
use crate::explain::{Explain, Findings};
use crate::history::{KeyKind, MopFn};
use crate::keys::{superseded_by, KeyIndex};
use crate::model::{History, IdVec, KeyId, MopId, OpId, Outcome, ProcId, NONE};
use crate::report::{Anomaly, Conflicts, Example};

/// Class of one key, as named in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    None,
    Lww,
    Siblings,
    Merged,
    Diverged,
    Lost,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::None => "none",
            Class::Lww => "lww",
            Class::Siblings => "siblings",
            Class::Merged => "merged",
            Class::Diverged => "diverged",
            Class::Lost => "lost",
        }
    }
}

pub struct FinalsOut {
    pub conflicts: Conflicts,
    /// Distinct acknowledged writes missing from some final state without
    /// being superseded.
    pub lost_writes: u64,
    pub convergence_ns: Option<u64>,
    /// What the convergence time is measured from: "heal" or "final-phase".
    pub convergence_from: &'static str,
    /// Why the history cannot decide, if it cannot.
    pub unknown: Option<String>,
    pub policy: Json,
    /// Keys per class, by name, capped at 20 keys each.
    pub classes_by_key: Json,
    pub counter_deficit: i128,
}

/// Whether register write `w` is followed by another write of its key in
/// its own transaction (which replaces it: it is never lost).
fn overwritten_in_txn(h: &History, w: MopId) -> bool {
    let m = &h.mops[w];
    let op = &h.ops[m.op];
    (w.index() + 1..op.mops().end).any(|j| h.mops[j].key == m.key && h.mops[j].is_write())
}

fn show(kind: Option<KeyKind>, state: &[i64]) -> String {
    if kind == Some(KeyKind::Counter) {
        return state[0].to_string();
    }
    let xs: Vec<String> = state.iter().map(|x| x.to_string()).collect();
    format!("[{}]", xs.join(", "))
}

/// States longer than this are described by their differences.
const SHOW_WHOLE: usize = 8;

/// How distinct final states differ, for an explanation: short states in
/// full; longer ones as what each group of nodes lacks from the union (or,
/// for lists holding the same elements, the first position they differ at).
fn describe_difference(
    kind: Option<KeyKind>,
    distinct: &[(Vec<i64>, Vec<String>)],
    order: bool,
) -> Vec<String> {
    let verb = |ns: &[String]| if ns.len() == 1 { "holds" } else { "hold" };
    if kind == Some(KeyKind::Counter) || distinct.iter().all(|(s, _)| s.len() <= SHOW_WHOLE) {
        return distinct
            .iter()
            .map(|(s, ns)| format!("{} {} {}", ns.join(", "), verb(ns), show(kind, s)))
            .collect();
    }
    if order {
        let first = &distinct[0].0;
        let at = distinct
            .iter()
            .filter_map(|(s, _)| s.iter().zip(first).position(|(a, b)| a != b))
            .min()
            .unwrap_or(0);
        let mut parts = vec![format!(
            "all hold the same {} elements; the orders first differ at position {at}",
            first.len()
        )];
        parts.extend(
            distinct
                .iter()
                .map(|(s, ns)| format!("{} {} {} there", ns.join(", "), verb(ns), s[at])),
        );
        return parts;
    }
    let mut union: Vec<i64> = distinct
        .iter()
        .flat_map(|(s, _)| s.iter().copied())
        .collect();
    union.sort_unstable();
    union.dedup();
    let mut parts = vec![format!("{} elements in all", union.len())];
    for (s, ns) in distinct {
        let mut have = s.clone();
        have.sort_unstable();
        let missing: Vec<i64> = union
            .iter()
            .copied()
            .filter(|v| have.binary_search(v).is_err())
            .collect();
        parts.push(if missing.is_empty() {
            format!("{} {} all {}", ns.join(", "), verb(ns), union.len())
        } else {
            let shown: Vec<String> = missing.iter().take(20).map(|v| v.to_string()).collect();
            let more = if missing.len() > 20 {
                format!(" and {} more", missing.len() - 20)
            } else {
                String::new()
            };
            format!(
                "{} {} {} but lack{} [{}]{more}",
                ns.join(", "),
                verb(ns),
                have.len(),
                if ns.len() == 1 { "s" } else { "" },
                shown.join(", ")
            )
        });
    }
    parts
}

/// Per node the mop of its last final that read key k.
fn final_reads(h: &History, finals: &[OpId]) -> Vec<IdVec<KeyId, MopId>> {
    finals
        .iter()
        .map(|&f| {
            let mut v = IdVec::filled(MopId::NONE, h.keys.len());
            if !f.is_none() {
                for mi in h.ops[f].mop_ids() {
                    v[h.mops[mi].key] = mi;
                }
            }
            v
        })
        .collect()
}

#[derive(Default)]
struct RegisterLoss {
    lost: Vec<String>,
    conflict: Vec<(String, Vec<MopId>)>,
    causal: Vec<(String, MopId)>,
    /// Missing from some node without being overwritten there, in
    /// happens-before or in real time: counts in the lost-writes figure.
    counted: bool,
}

/// Whether write `w` completed (acknowledged) before write `s` was invoked:
/// `s` overwrote it in real time, whatever happens-before says.
fn overwritten_in_real_time(h: &History, w: MopId, s: MopId) -> bool {
    let (a, b) = (h.op_of(w), h.op_of(s));
    a.outcome == Outcome::Ok && a.complete_time < b.invoke_time
}

/// The nodes' last final reads, and whether they can decide.
struct FinalNodes {
    /// Per node its last `ok` final op (`OpId::NONE` without one).
    finals: Vec<OpId>,
    /// Nodes with a final read, in name order (as examples list them).
    with_final: Vec<usize>,
    /// Per node, per key: the mop of its last final that read the key.
    reads: Vec<IdVec<KeyId, MopId>>,
    /// Why the final states cannot decide, if they cannot.
    unknown: Option<String>,
}

/// Which nodes gave a final read, and whether every node that needs one
/// did (anomalies.md, Clarifications).
fn final_nodes(h: &History) -> FinalNodes {
    let finals = last_finals(h);
    let mut with_final: Vec<usize> = (0..h.nodes.len())
        .filter(|&n| !finals[n].is_none())
        .collect();
    with_final.sort_by(|&a, &b| h.nodes[a].cmp(&h.nodes[b]));
    let need = needs_final(h);
    let mut without: Vec<&str> = (0..h.nodes.len())
        .filter(|&n| finals[n].is_none() && need[n])
        .map(|n| h.nodes[n].as_str())
        .collect();
    without.sort_unstable();
    let unknown = if with_final.is_empty() {
        Some(
            "no final phase: no node has an ok final read, so final states cannot be compared"
                .to_string(),
        )
    } else if !without.is_empty() {
        Some(format!(
            "no ok final read from {}, so its final state is unknown",
            without.join(", ")
        ))
    } else {
        None
    };
    let reads = final_reads(h, &finals);
    FinalNodes {
        finals,
        with_final,
        reads,
        unknown,
    }
}

/// What the per-key judgements add up to.
#[derive(Default)]
struct Totals {
    conflicts: Conflicts,
    /// Acknowledged writes (lists, sets, registers) missing without being
    /// superseded; deduplicated at the end.
    lost_set: Vec<MopId>,
    /// List and set writes missing, with the nodes missing them.
    list_losses: Vec<(MopId, Vec<usize>)>,
    classes: BTreeMap<&'static str, Vec<Json>>,
    policy: Policy,
    counter_deficit: i128,
    /// Counter writes lost: per key, the fewest acknowledged increments
    /// whose loss explains the largest deficit (which ones is unknowable).
    counter_lost: u64,
}

impl Totals {
    /// Adds `later`'s figures (of keys after this one's) as if its keys
    /// had been judged here one by one: sums, lists in order, and the
    /// named keys and examples kept up to their caps in order.
    fn merge(&mut self, later: Totals) {
        let (c, l) = (&mut self.conflicts, later.conflicts);
        c.none += l.none;
        c.lww += l.lww;
        c.siblings += l.siblings;
        c.merged += l.merged;
        c.diverged += l.diverged;
        c.lost += l.lost;
        c.concurrent_pairs += l.concurrent_pairs;
        self.lost_set.extend(later.lost_set);
        self.list_losses.extend(later.list_losses);
        for (class, keys) in later.classes {
            let v = self.classes.entry(class).or_default();
            let room = CLASS_KEYS.saturating_sub(v.len());
            v.extend(keys.into_iter().take(room));
        }
        self.policy.merge(later.policy);
        self.counter_deficit += later.counter_deficit;
        self.counter_lost += later.counter_lost;
    }
}

/// Keys named per class (`classes_by_key`).
const CLASS_KEYS: usize = 20;

/// Writes (of keys with a kind) from which the final states are judged on
/// two threads; small in unit tests, so that they run both ways.
const PARALLEL_FINALS: usize = if cfg!(test) { 64 } else { 200_000 };

/// What every key's judgement reads.
struct Judge<'a, 'x> {
    x: &'a Explain<'x>,
    h: &'a History,
    idx: &'a KeyIndex,
    /// The history is checked as linearizable: a write overwritten in real
    /// time is superseded, not lost or conflict-lost.
    real_time: bool,
    nodes: &'a FinalNodes,
    /// Writes some read observed.
    observed: &'a IdVec<MopId, bool>,
    unknown_reads: UnknownReads<'a>,
}

/// `real_time`: the history is checked as linearizable, so a write
/// overwritten in real time is superseded, not lost or conflict-lost.
pub fn check(x: &Explain, idx: &KeyIndex, real_time: bool, f: &mut Findings) -> FinalsOut {
    let h = x.h;
    let nodes = final_nodes(h);
    // Only `ok` reads store values, and every stored value belongs to one
    // (reads share them), so the stored values' writers are exactly the
    // observed writes.
    let mut observed = IdVec::filled(false, h.mops.len());
    for &w in &h.resolved {
        if !w.is_none() {
            observed[w] = true;
        }
    }
    let unknown_reads = UnknownReads::new(h, x.c, idx);
    let judge_keys = |keys: &[KeyId], unknown_reads: UnknownReads<'_>| {
        let mut judge = Judge {
            x,
            h,
            idx,
            real_time,
            nodes: &nodes,
            observed: &observed,
            unknown_reads,
        };
        let mut t = Totals::default();
        let mut g = Findings::new(f.max_examples);
        for &k in keys {
            judge.key(k, &mut t, &mut g);
        }
        (t, g)
    };
    let keys: Vec<KeyId> = h.keys.ids().filter(|&k| h.key_kind[k].is_some()).collect();
    // With many writes over several keys, the keys are judged in two
    // halves (by writes) on two threads and the halves' figures and
    // findings merged in key order: the same as one pass over the keys.
    let writes = |ks: &[KeyId]| ks.iter().map(|&k| h.key_writes[k].len()).sum::<usize>();
    let total = writes(&keys);
    #[cfg(test)]
    let total = if switches::NO_SPLIT.load(std::sync::atomic::Ordering::Relaxed) {
        0
    } else {
        total
    };
    let (first, second) = if keys.len() >= 2 && total >= PARALLEL_FINALS {
        let mut acc = 0;
        let cut = keys
            .iter()
            .position(|&k| {
                acc += h.key_writes[k].len();
                2 * acc >= total
            })
            .map_or(keys.len() - 1, |i| i + 1)
            .clamp(1, keys.len() - 1);
        let (a, b) = keys.split_at(cut);
        let later = unknown_reads.clone();
        std::thread::scope(|s| {
            let second = s.spawn(|| judge_keys(b, later));
            let first = judge_keys(a, unknown_reads);
            (first, Some(second.join().expect("final-state checks")))
        })
    } else {
        (judge_keys(&keys, unknown_reads), None)
    };
    let (mut t, g) = first;
    f.merge(g);
    if let Some((t2, g2)) = second {
        t.merge(t2);
        f.merge(g2);
    }
    report_list_losses(x, &t.list_losses, f);
    t.lost_set.sort_unstable();
    t.lost_set.dedup();
    FinalsOut {
        conflicts: t.conflicts,
        lost_writes: t.lost_set.len() as u64 + t.counter_lost,
        convergence_ns: convergence(h),
        convergence_from: if h.nemesis.iter().any(|e| e.f == "heal") {
            "heal"
        } else {
            "final-phase"
        },
        unknown: nodes.unknown,
        policy: t.policy.describe(),
        classes_by_key: serde_json::to_value(t.classes).expect("json"),
        counter_deficit: t.counter_deficit,
    }
}

/// One key's final states: the normalised state of each node with a final
/// read (in `with_final` order), and the distinct ones with their nodes.
struct KeyStates {
    states: Vec<Vec<i64>>,
    distinct: Vec<(Vec<i64>, Vec<String>)>,
}

impl KeyStates {
    fn diverged(&self) -> bool {
        self.distinct.len() > 1
    }
}

/// `s` sorted.
fn sorted(s: &[i64]) -> Vec<i64> {
    let mut s = s.to_vec();
    s.sort_unstable();
    s
}

impl Judge<'_, '_> {
    /// Judges key `k`: divergence, losses of its kind, and its class.
    fn key(&mut self, k: KeyId, t: &mut Totals, f: &mut Findings) {
        let h = self.h;
        let kind = h.key_kind[k];
        let acked: Vec<MopId> = h.key_writes[k]
            .iter()
            .copied()
            .filter(|&w| h.op_of(w).outcome == Outcome::Ok)
            .collect();
        t.conflicts.concurrent_pairs += concurrent_pairs(self.x, self.idx, k, &acked);
        if self.nodes.with_final.is_empty() {
            return;
        }
        let st = self.states(k, kind);
        if st.diverged() {
            self.divergence(k, kind, &st, f);
        }
        let (lost_here, class) = match kind {
            Some(KeyKind::List) | Some(KeyKind::Set) => {
                let lost = self.set_losses(&st, &acked, t);
                (lost, self.merged_unless(lost, &st, &acked))
            }
            Some(KeyKind::Counter) => {
                let lost = self.counter_bounds(k, &st, &acked, t, f);
                (lost, self.merged_unless(lost, &st, &acked))
            }
            Some(KeyKind::Register) => {
                let losses = self.register_losses(k, &acked);
                self.report_register_losses(k, losses, t, f);
                (false, self.register_class(k, &st, &mut t.policy))
            }
            None => (false, Class::None),
        };
        let class = if st.diverged() {
            Class::Diverged
        } else if lost_here {
            Class::Lost
        } else {
            class
        };
        self.tally(k, class, t);
    }

    fn states(&self, k: KeyId, kind: Option<KeyKind>) -> KeyStates {
        let h = self.h;
        let n = self.nodes;
        let states: Vec<Vec<i64>> = n
            .with_final
            .iter()
            .map(|&node| normalize(h, kind, n.reads[node][k]))
            .collect();
        let mut distinct: Vec<(Vec<i64>, Vec<String>)> = Vec::new();
        for (i, s) in states.iter().enumerate() {
            let node = h.nodes[n.with_final[i]].clone();
            match distinct.iter_mut().find(|(d, _)| d == s) {
                Some((_, ns)) => ns.push(node),
                None => distinct.push((s.clone(), vec![node])),
            }
        }
        KeyStates { states, distinct }
    }

    /// `divergence`: the nodes' final states of `k` differ.
    fn divergence(&self, k: KeyId, kind: Option<KeyKind>, st: &KeyStates, f: &mut Findings) {
        let (h, x, n) = (self.h, self.x, self.nodes);
        let distinct = &st.distinct;
        let order = kind == Some(KeyKind::List) && {
            let mut sorted: Vec<Vec<i64>> = distinct.iter().map(|(s, _)| sorted(s)).collect();
            sorted.dedup();
            sorted.len() == 1
        };
        f.add(Anomaly::Divergence, || {
            let parts = describe_difference(kind, distinct, order);
            let nodes: Vec<String> = distinct.iter().flat_map(|(_, ns)| ns.clone()).collect();
            let mut ops: Vec<OpId> = n.with_final.iter().map(|&node| n.finals[node]).collect();
            ops.sort_unstable();
            Example {
                explanation: format!(
                    "after the final phase the nodes disagree on {} key {}{}: {}",
                    kind.map_or("", |k| k.as_str()),
                    h.key(k),
                    if order { " (same elements, different order)" } else { "" },
                    parts.join("; ")
                ),
                key: Some(h.key(k).clone()),
                ops: x.indices(&ops),
                nodes,
                detail: json!({
                    "subtype": if order { Json::from("order") } else { Json::Null },
                    "states": distinct.iter().map(|(s, ns)| json!({"state": s, "nodes": ns})).collect::<Vec<_>>(),
                    "graph": x.graph(&ops, &json!([])),
                }),
            }
        });
    }

    /// Lists and sets: every acknowledged element missing from some node's
    /// final state is lost (reported together at the end). Whether any was.
    fn set_losses(&self, st: &KeyStates, acked: &[MopId], t: &mut Totals) -> bool {
        let with_final = &self.nodes.with_final;
        let sorted: Vec<Vec<i64>> = st.states.iter().map(|s| sorted(s)).collect();
        let mut lost_here = false;
        for &w in acked {
            let v = self.h.mops[w].arg;
            let missing: Vec<usize> = (0..with_final.len())
                .filter(|&i| sorted[i].binary_search(&v).is_err())
                .map(|i| with_final[i])
                .collect();
            if !missing.is_empty() {
                lost_here = true;
                t.lost_set.push(w);
                t.list_losses.push((w, missing));
            }
        }
        lost_here
    }

    /// Lists, sets and counters: a key that lost nothing, did not diverge
    /// and had concurrent writes was merged.
    fn merged_unless(&self, lost_here: bool, st: &KeyStates, acked: &[MopId]) -> Class {
        if !lost_here && !st.diverged() && has_concurrency(self.x, self.idx, acked) {
            Class::Merged
        } else {
            Class::None
        }
    }

    /// Counters: a final value below the least the acknowledged (and
    /// indeterminate) increments allow lost writes; above the most, counted
    /// some twice. Bounds are exact: sums of i64 increments can leave i64
    /// (anomalies.md, Clarifications: integers). Whether writes were lost.
    fn counter_bounds(
        &self,
        k: KeyId,
        st: &KeyStates,
        acked: &[MopId],
        t: &mut Totals,
        f: &mut Findings,
    ) -> bool {
        let (h, x) = (self.h, self.x);
        let (with_final, finals) = (&self.nodes.with_final, &self.nodes.finals);
        let (mut lo, mut hi) = (0i128, 0i128);
        for &w in &h.key_writes[k] {
            let d = h.mops[w].arg as i128;
            match h.op_of(w).outcome {
                Outcome::Ok => {
                    lo += d;
                    hi += d;
                }
                Outcome::Info if d < 0 => lo += d,
                Outcome::Info => hi += d,
                Outcome::Fail => {}
            }
        }
        let states = &st.states;
        let low: Vec<(usize, i64)> = (0..with_final.len())
            .filter(|&i| (states[i][0] as i128) < lo)
            .map(|i| (with_final[i], states[i][0]))
            .collect();
        let high: Vec<(usize, i64)> = (0..with_final.len())
            .filter(|&i| states[i][0] as i128 > hi)
            .map(|i| (with_final[i], states[i][0]))
            .collect();
        if !low.is_empty() {
            let deficit = low.iter().map(|&(_, v)| lo - v as i128).max().unwrap_or(0);
            t.counter_deficit += deficit;
            t.counter_lost += fewest_increments_for(h, acked, deficit);
            f.add(Anomaly::LostWrite, || {
                counter_example(x, k, finals, &low, lo, hi, true)
            });
        }
        if !high.is_empty() {
            f.add(Anomaly::Duplicate, || {
                counter_example(x, k, finals, &high, lo, hi, false)
            });
        }
        !low.is_empty()
    }

    /// Registers: per acknowledged write missing from some node's final
    /// state, how it went — rightly gone (superseded, deleted, possibly
    /// superseded through an unknown read), lost, lost to a concurrent
    /// write (conflict) or to a causally older one.
    fn register_losses(&mut self, k: KeyId, acked: &[MopId]) -> BTreeMap<MopId, RegisterLoss> {
        let (h, idx, real_time) = (self.h, self.idx, self.real_time);
        let mut losses: BTreeMap<MopId, RegisterLoss> = BTreeMap::new();
        // Acknowledged deletes of the key (each the last write of the key
        // in its transaction).
        let deletes: Vec<MopId> = acked
            .iter()
            .copied()
            .filter(|&d| h.mops[d].f == MopFn::Delete && !overwritten_in_txn(h, d))
            .collect();
        // Only a transaction's last write of the key is judged
        // (anomalies.md, Clarifications).
        let judged: Vec<MopId> = acked
            .iter()
            .copied()
            .filter(|&w| !overwritten_in_txn(h, w))
            .collect();
        #[cfg(test)]
        let mut skip = SupersededByState::new(idx, k, &judged)
            .filter(|_| !switches::NO_SKIP.load(std::sync::atomic::Ordering::Relaxed));
        #[cfg(not(test))]
        let mut skip = SupersededByState::new(idx, k, &judged);
        let mut candidates: Vec<MopId> = Vec::new();
        for &n in &self.nodes.with_final {
            let mop = self.nodes.reads[n][k];
            let state: Vec<MopId> = if mop.is_none() {
                Vec::new()
            } else {
                h.obs_writes(&h.mops[mop])
                    .iter()
                    .copied()
                    .filter(|&w| !w.is_none() && !idx.slot[w].is_none())
                    .collect()
            };
            let judged = match &mut skip {
                Some(skip) if !state.is_empty() => {
                    skip.candidates(h, idx, &state, &mut candidates);
                    &candidates
                }
                _ => &judged,
            };
            for &w in judged {
                if state.contains(&w) {
                    continue;
                }
                let is_delete = |d: MopId| h.mops[d].f == MopFn::Delete;
                // An empty state holds the deletes; a write that happens
                // before an acknowledged delete is gone rightly.
                if (state.is_empty() && is_delete(w))
                    || deletes.iter().any(|&d| superseded_by(h, idx, w, d))
                {
                    continue;
                }
                let e = losses.entry(w).or_default();
                let node = h.nodes[n].clone();
                if state.is_empty() {
                    // A causally older delete won, or a concurrent one won
                    // the conflict; else the write is lost. A delete
                    // invoked after `w` completed replaced it in real time:
                    // not counted, and superseded under `linearizable`.
                    let concurrent = |d: MopId| {
                        h.mops[d].op != h.mops[w].op && !idx.hb(h, d, w) && !idx.hb(h, w, d)
                    };
                    let rt_del = deletes.iter().any(|&d| overwritten_in_real_time(h, w, d));
                    if real_time && rt_del {
                        // superseded by a delete that began after it completed
                    } else if let Some(&d) = deletes.iter().find(|&&d| idx.hb(h, d, w)) {
                        e.counted |= !rt_del;
                        e.causal.push((node, d));
                    } else if let Some(&d) = deletes.iter().find(|&&d| concurrent(d)) {
                        e.counted |= !rt_del;
                        e.conflict.push((node, vec![d]));
                    } else {
                        e.counted = true;
                        e.lost.push(node);
                    }
                    continue;
                }
                let rt = state.iter().any(|&s| overwritten_in_real_time(h, w, s));
                if state.iter().any(|&s| superseded_by(h, idx, w, s)) {
                    // superseded by a causally later write
                } else if real_time && rt {
                    // superseded by a write that began after it completed
                } else if state
                    .iter()
                    .any(|&s| self.unknown_reads.may_supersede(w, s).is_some())
                {
                    // possibly superseded: a write in the state may follow
                    // an unknown read of `w` (Interpretations)
                } else if let Some(&s) = state.iter().find(|&&s| idx.hb(h, s, w)) {
                    e.counted |= !rt;
                    e.causal.push((node, s));
                } else {
                    e.counted |= !rt;
                    e.conflict.push((node, state.clone()));
                }
            }
        }
        losses
    }

    /// Reports each register write's losses: `lost-write` where a node is
    /// empty, `conflict-loss`, `causal-overwrite`.
    fn report_register_losses(
        &self,
        k: KeyId,
        losses: BTreeMap<MopId, RegisterLoss>,
        t: &mut Totals,
        f: &mut Findings,
    ) {
        let (h, x) = (self.h, self.x);
        for (w, e) in losses {
            if e.lost.is_empty() && e.conflict.is_empty() && e.causal.is_empty() {
                continue;
            }
            if e.counted {
                t.lost_set.push(w);
            }
            if !e.lost.is_empty() {
                f.add(Anomaly::LostWrite, || Example {
                    explanation: format!(
                        "the {} is missing from the final state of {}, which {} empty",
                        x.write(w),
                        e.lost.join(", "),
                        if e.lost.len() == 1 { "is" } else { "are" }
                    ),
                    key: Some(h.key(k).clone()),
                    ops: x.indices(&[h.mops[w].op]),
                    nodes: e.lost.clone(),
                    detail: json!({"graph": x.graph(&[h.mops[w].op], &json!([]))}),
                });
            }
            if !e.conflict.is_empty() {
                f.add(Anomaly::ConflictLoss, || {
                    conflict_example(x, w, &e.conflict)
                });
            }
            if !e.causal.is_empty() {
                f.add(Anomaly::CausalOverwrite, || causal_example(x, w, &e.causal));
            }
        }
    }

    /// A register key's class from its frontier (the eligible writes no
    /// other supersedes) and what the first node's final state holds of it:
    /// nothing (lost), one of several (lww, feeding the policy), several
    /// (siblings), or no contest.
    fn register_class(&mut self, k: KeyId, st: &KeyStates, policy: &mut Policy) -> Class {
        let (h, idx) = (self.h, self.idx);
        let eligible: Vec<MopId> = idx
            .key_writes(k)
            .iter()
            .copied()
            .filter(|&w| match h.op_of(w).outcome {
                Outcome::Ok => true,
                Outcome::Info => self.observed[w],
                Outcome::Fail => false,
            })
            .collect();
        let frontier = register_frontier(h, idx, k, &eligible);
        if st.diverged() || frontier.is_empty() {
            return Class::None;
        }
        let mop = self.nodes.reads[self.nodes.with_final[0]][k];
        let state: Vec<MopId> = if mop.is_none() {
            Vec::new()
        } else {
            h.obs_writes(&h.mops[mop]).to_vec()
        };
        let mut held: Vec<MopId> = state
            .iter()
            .copied()
            .filter(|w| frontier.contains(w))
            .collect();
        // An empty state holds the frontier's deletes.
        if state.is_empty() {
            held.extend(
                frontier
                    .iter()
                    .copied()
                    .filter(|&d| h.mops[d].f == MopFn::Delete),
            );
        }
        // Discarded frontier writes that a held write may have superseded
        // through an unknown read are no conflict.
        let unknown_reads = &mut self.unknown_reads;
        let contested: Vec<MopId> = frontier
            .iter()
            .copied()
            .filter(|&a| {
                held.contains(&a)
                    || !state.iter().any(|&s| {
                        !s.is_none()
                            && !idx.slot[s].is_none()
                            && unknown_reads.may_supersede(a, s).is_some()
                    })
            })
            .collect();
        match held.len() {
            0 => Class::Lost,
            _ if contested.len() <= 1 => Class::None,
            1 => {
                policy.lww(self.x, held[0], &contested);
                Class::Lww
            }
            _ => {
                policy.siblings += 1;
                // The value a plain read returns, by node (`meta.winners`).
                let picks: Vec<(usize, i64)> = self
                    .nodes
                    .with_final
                    .iter()
                    .filter_map(|&n| {
                        let m = self.nodes.reads[n][k];
                        (!m.is_none())
                            .then(|| h.winner(m))
                            .flatten()
                            .map(|v| (n, v))
                    })
                    .collect();
                policy.sibling_winner(self.x, k, &held, &picks);
                Class::Siblings
            }
        }
    }

    /// Counts key `k` in its class (and names it, up to 20 keys a class).
    fn tally(&self, k: KeyId, class: Class, t: &mut Totals) {
        let c = &mut t.conflicts;
        match class {
            Class::None => c.none += 1,
            Class::Lww => c.lww += 1,
            Class::Siblings => c.siblings += 1,
            Class::Merged => c.merged += 1,
            Class::Diverged => c.diverged += 1,
            Class::Lost => c.lost += 1,
        }
        if class != Class::None {
            let v = t.classes.entry(class.as_str()).or_default();
            if v.len() < CLASS_KEYS {
                v.push(serde_json::to_value(self.h.key(k)).expect("a key"));
            }
        }
    }
}

/// For a large register key's final states: its judged writes (see
/// `register_losses`) in slot order (by process, then session order), so
/// that the ones a final state's writes supersede in happens-before are
/// left out without a query per write.
struct SupersededByState {
    /// Judged writes with slots: (slot, write), by slot.
    by_slot: Vec<(usize, MopId)>,
    /// Judged writes without a slot (no happens-before is known of them).
    no_slot: Vec<MopId>,
    /// The key's groups' slot ranges.
    ends: Vec<usize>,
    thr: Vec<u32>,
    entries: Vec<u32>,
}

impl SupersededByState {
    /// `None` for a small key (its masks answer `hb` in one step).
    fn new(idx: &KeyIndex, k: KeyId, judged: &[MopId]) -> Option<Self> {
        if idx.small(k) {
            return None;
        }
        let mut by_slot = Vec::with_capacity(judged.len());
        let mut no_slot = Vec::new();
        for &w in judged {
            match idx.slot[w] {
                s if s.is_none() => no_slot.push(w),
                s => by_slot.push((s.index(), w)),
            }
        }
        by_slot.sort_unstable();
        Some(SupersededByState {
            by_slot,
            no_slot,
            ends: idx.groups(k).map(|g| g.end).collect(),
            thr: Vec::new(),
            entries: Vec::new(),
        })
    }

    /// Into `out`: the judged writes except some that a write of `state`
    /// (a final read's writes, all with slots) supersedes. A write `w` of
    /// the group (process) `g` is left out when some `s` of `state` with a
    /// projected clock has `w →hb s` by it (entry for `g` at least `w`'s
    /// seq) and no write of `state` is of `w`'s transaction (for those
    /// `superseded_by` is the order within the transaction, left to the
    /// caller). So every write left out is superseded by the state, and
    /// `register_losses` would find nothing to report of it at this node.
    fn candidates(&mut self, h: &History, idx: &KeyIndex, state: &[MopId], out: &mut Vec<MopId>) {
        out.clear();
        self.thr.clear();
        self.thr.resize(self.ends.len(), 0);
        for &s in state {
            if idx.entries_by_group(h, s, &mut self.entries) {
                for (t, &e) in self.thr.iter_mut().zip(&self.entries) {
                    *t = (*t).max(e);
                }
            }
        }
        let mut g = 0;
        for &(j, w) in &self.by_slot {
            while j >= self.ends[g] {
                g += 1;
            }
            if idx.slot_seq[j] <= self.thr[g]
                && !state.iter().any(|&s| h.mops[s].op == idx.slot_op[j])
            {
                continue;
            }
            out.push(w);
        }
        out.extend_from_slice(&self.no_slot);
    }
}

/// The fewest acknowledged increments of `acked` whose loss explains
/// `deficit` (at least one): which ones were lost is unknowable.
fn fewest_increments_for(h: &History, acked: &[MopId], deficit: i128) -> u64 {
    let mut incs: Vec<i64> = acked
        .iter()
        .map(|&w| h.mops[w].arg)
        .filter(|&d| d > 0)
        .collect();
    incs.sort_unstable_by(|a, b| b.cmp(a));
    let (mut sum, mut n) = (0i128, 0u64);
    for d in incs {
        if sum >= deficit {
            break;
        }
        sum += i128::from(d);
        n += 1;
    }
    n.max(1)
}

/// The writes of `eligible` (a register key `k`'s eligible writes, in slot
/// order) that no other eligible write supersedes ([`superseded_by`]), in
/// the same order. Only each process's last eligible write can be one (a
/// later write of the process, or a later one of the same transaction,
/// supersedes the others), and it is superseded by some eligible write of a
/// process exactly when it happens before that process's last eligible
/// write (clocks grow along session order), or, for its own process, the
/// last one of another transaction. So O(writer processes²) hb queries per
/// key instead of one per pair of writes.
fn register_frontier(h: &History, idx: &KeyIndex, k: KeyId, eligible: &[MopId]) -> Vec<MopId> {
    // Per group with an eligible write: its last one, and the last one of
    // another transaction (`MopId::NONE` if none).
    let mut lasts: Vec<(MopId, MopId)> = Vec::new();
    let mut e = 0;
    for g in idx.groups(k) {
        let mut last = MopId::NONE;
        let mut other = MopId::NONE;
        while e < eligible.len() && idx.slot[eligible[e]].index() < g.end {
            let w = eligible[e];
            if !last.is_none() && h.mops[last].op != h.mops[w].op {
                other = last;
            }
            last = w;
            e += 1;
        }
        if !last.is_none() {
            lasts.push((last, other));
        }
    }
    // Writes of different processes are different operations, so
    // `superseded_by` between two of `lasts` is `hb`.
    let last: Vec<MopId> = lasts.iter().map(|&(a, _)| a).collect();
    let before = idx.before_another(h, k, &last);
    lasts
        .iter()
        .zip(before)
        .filter(|&(&(a, other), before)| {
            let own = !other.is_none() && superseded_by(h, idx, a, other);
            !own && !before
        })
        .map(|(&(a, _), _)| a)
        .collect()
}

/// Pairs of acknowledged writes on key `k` that are concurrent (neither
/// happens before the other; two writes of one transaction are not a pair).
fn concurrent_pairs(x: &Explain, idx: &KeyIndex, k: KeyId, acked: &[MopId]) -> u64 {
    let h = x.h;
    let acked: Vec<MopId> = acked
        .iter()
        .copied()
        .filter(|&w| !idx.slot[w].is_none())
        .collect();
    let n = acked.len() as u64;
    if n < 2 {
        return 0;
    }
    if idx.small(k) {
        let base = idx.key_start(k) as u32;
        let mut mask = 0u64;
        for &a in &acked {
            mask |= 1u64 << (idx.slot[a].0 - base);
        }
        let mut count = 0u64;
        for &a in &acked {
            let sa = idx.slot[a];
            let bit = sa.0 - base;
            let later = if bit == 63 {
                0
            } else {
                !((1u64 << (bit + 1)) - 1)
            };
            let related = idx.pred[sa] | idx.succ[sa];
            count += (mask & later & !related).count_ones() as u64;
        }
        // two writes of one transaction are not a pair
        let mut ops: Vec<OpId> = acked.iter().map(|&w| h.mops[w].op).collect();
        ops.sort_unstable();
        for run in ops.chunk_by(|a, b| a == b) {
            let r = run.len() as u64;
            count -= r * (r - 1) / 2;
        }
        return count;
    }
    if !x.c.cycles.is_empty() || n <= 256 {
        let mut count = 0;
        for (i, &a) in acked.iter().enumerate() {
            for &b in &acked[i + 1..] {
                if h.mops[a].op != h.mops[b].op && !idx.hb(h, a, b) && !idx.hb(h, b, a) {
                    count += 1;
                }
            }
        }
        return count;
    }
    let mut same_op = 0u64;
    let mut ops: Vec<OpId> = acked.iter().map(|&w| h.mops[w].op).collect();
    ops.sort_unstable();
    for run in ops.chunk_by(|a, b| a == b) {
        let r = run.len() as u64;
        same_op += r * (r - 1) / 2;
    }
    if let Some(ordered) = long_runs_ordered(idx, k, &acked) {
        return (n * (n - 1) / 2).saturating_sub(ordered + same_op);
    }
    // Large keys: count ordered pairs with clocks; each process's
    // acknowledged writes on `k` form sorted runs of seqs, kept per group
    // of the key (its index in `idx.groups(k)`, which holds every process
    // with a write on `k`), and only the groups with some are visited per
    // write (a map lookup per write and group made this quadratic with a
    // large constant on keys written by thousands of short-lived processes).
    let key_groups: Vec<ProcId> = idx.groups(k).map(|g| g.process).collect();
    let group_of: rustc_hash::FxHashMap<ProcId, usize> = key_groups
        .iter()
        .enumerate()
        .map(|(gi, &p)| (p, gi))
        .collect();
    let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); key_groups.len()];
    for &w in &acked {
        let op = h.mops[w].op;
        seqs[group_of[&x.c.process_of(op)]].push(x.c.seq[op]);
    }
    let mut runs: Vec<(usize, ProcId, Vec<u32>)> = Vec::new();
    for (gi, mut g) in seqs.into_iter().enumerate() {
        if !g.is_empty() {
            g.sort_unstable();
            runs.push((gi, key_groups[gi], g));
        }
    }
    let mut ordered = 0u64;
    // Per write `b`, the acknowledged writes of each run at or below `b`'s
    // projected entry for the run's process (its own process: the ones
    // before it). Stored entries are visited per write; the runs of
    // processes retired by the time `b` was recorded have entry `full`
    // when `b`'s earliest position is below `tau`, else 0 (see
    // `KeyIndex::sparse`), and are summed for every `b` at once: runs by
    // retirement epoch into a Fenwick tree over `tau`, writes by epoch.
    let mut run_of = vec![NONE; key_groups.len()];
    for (ri, (gi, _, _)) in runs.iter().enumerate() {
        run_of[*gi] = ri as u32;
    }
    let retired: Vec<(u32, u32, u64)> = runs
        .iter()
        .filter_map(|(_, p, seqs)| {
            let (r, tau, full) = idx.retirement(*p)?;
            Some((r, tau, seqs.partition_point(|&s| s <= full) as u64))
        })
        .collect();
    let mut queries: Vec<(u32, u32)> = Vec::new();
    // Short runs (many writer processes, few writes each): the writes in
    // recording order, which reads the projected clocks in the order they
    // are stored, and a binary search per write and run (keys with long
    // runs are counted by `long_runs_ordered`).
    for &b in &acked {
        let ob = h.mops[b].op;
        let own = group_of[&x.c.process_of(ob)];
        let Some(sp) = idx.sparse(b) else {
            continue;
        };
        queries.push((sp.epoch, sp.m));
        for (&gi, &e) in sp.groups.iter().zip(sp.entries) {
            let ri = run_of[gi as usize];
            if ri != NONE && gi as usize != own {
                ordered += runs[ri as usize].2.partition_point(|&s| s <= e) as u64;
            }
        }
        let seqs = &runs[run_of[own] as usize].2;
        ordered += seqs.partition_point(|&s| s < x.c.seq[ob]) as u64;
    }
    ordered += retired_ordered(retired, queries);
    (n * (n - 1) / 2).saturating_sub(ordered + same_op)
}

/// Ordered pairs `(a, b)` whose `a` is a retired process's write: each
/// `(epoch, tau, count)` of `retired` is a run of `count` acknowledged
/// writes of a process retired at `epoch` that a write `b` recorded at
/// that epoch or later knows exactly when `b`'s earliest position is below
/// `tau` (see `KeyIndex::sparse`); `queries` holds each write `b`'s
/// `(epoch, earliest position)`. Summed for every `b` at once: runs by
/// retirement epoch into a Fenwick tree over `tau`, writes by epoch.
fn retired_ordered(mut retired: Vec<(u32, u32, u64)>, mut queries: Vec<(u32, u32)>) -> u64 {
    if retired.is_empty() {
        return 0;
    }
    retired.sort_unstable();
    let mut taus: Vec<u32> = retired.iter().map(|&(_, tau, _)| tau).collect();
    taus.sort_unstable();
    taus.dedup();
    queries.sort_unstable();
    let mut ordered = 0u64;
    let mut fenwick = vec![0u64; taus.len() + 1];
    let mut next = 0;
    for &(epoch, m) in &queries {
        while next < retired.len() && retired[next].0 <= epoch {
            let (_, tau, cnt) = retired[next];
            let mut i = taus.partition_point(|&t| t < tau) + 1;
            while i < fenwick.len() {
                fenwick[i] += cnt;
                i += i & i.wrapping_neg();
            }
            next += 1;
        }
        // the runs added so far with `tau > m`: all minus those `tau <= m`
        let mut at_most = 0u64;
        let mut i = taus.partition_point(|&t| t <= m);
        while i > 0 {
            at_most += fenwick[i];
            i -= i & i.wrapping_neg();
        }
        let mut all = 0u64;
        let mut i = taus.len();
        while i > 0 {
            all += fenwick[i];
            i -= i & i.wrapping_neg();
        }
        ordered += all - at_most;
    }
    ordered
}

/// How many slots ahead `long_runs_ordered` asks for projected clocks.
const PREFETCH: usize = 4;

/// The sentinels after each group's padded seqs in `long_runs_ordered`:
/// the slots one cursor step compares at once.
const PAD: usize = 4;

/// Acknowledged writes per run of a key (on average) from which
/// `concurrent_pairs` counts by [`long_runs_ordered`].
const LONG_RUNS: usize = 8;

/// For `concurrent_pairs` on a large key `k` (no cycles) whose runs of
/// acknowledged writes (`acked`, all with slots) are long (a key written
/// many times by few processes): the ordered pairs `a →hb b` of `acked`
/// (two writes of one transaction excluded), or `None` when the runs are
/// short. The writes are taken by process in session order, straight from
/// the key's slots (grouped that way): a process's later write knows at
/// least what its earlier ones knew, so per other group a cursor over its
/// slots only moves forward until the process changes, and the count at
/// the cursor is a prefix sum of acknowledged slots. Cost: the stored
/// projected entries plus, per pair of groups, the length of one; no
/// search, no per-write lookup by micro-operation.
fn long_runs_ordered(idx: &KeyIndex, k: KeyId, acked: &[MopId]) -> Option<u64> {
    let groups: Vec<crate::keys::Group> = idx.groups(k).collect();
    let s0 = idx.key_start(k);
    let len = groups.last().map_or(0, |g| g.end - s0);
    let mut is_acked = vec![false; len];
    for &w in acked {
        is_acked[idx.slot[w].index() - s0] = true;
    }
    // pre[j]: acknowledged slots among the key's first j
    let mut pre = vec![0u32; len + 1];
    for j in 0..len {
        pre[j + 1] = pre[j] + u32::from(is_acked[j]);
    }
    let runs = groups
        .iter()
        .filter(|g| pre[g.end - s0] > pre[g.start - s0])
        .count();
    if acked.len() < LONG_RUNS * runs {
        return None;
    }
    let seq = &idx.slot_seq[s0..s0 + len];
    let at_most = |g: &crate::keys::Group, e: u32| {
        let (a, b) = (g.start - s0, g.end - s0);
        a + seq[a..b].partition_point(|&s| s <= e)
    };
    let mut retired: Vec<(u32, u32, u64)> = Vec::new();
    for g in &groups {
        let a = g.start - s0;
        if pre[g.end - s0] > pre[a] {
            if let Some((r, tau, full)) = idx.retirement(g.process) {
                retired.push((r, tau, u64::from(pre[at_most(g, full)] - pre[a])));
            }
        }
    }
    // Each group's seqs again, padded for the cursor steps below: a 0
    // before (so `pseq[c - 1]` exists at a group's first slot and never
    // exceeds an entry) and `PAD` times `u32::MAX` after (so four slots
    // can be compared at once without a bounds test: a step takes as
    // many slots as are at most the entry, which the sorted seqs make a
    // prefix of the four, with no branch to mispredict on how many).
    // `ppre[i]`: acknowledged slots among the padded first `i`.
    let mut pa = Vec::with_capacity(groups.len());
    let mut pseq: Vec<u32> = Vec::with_capacity(len + groups.len() * (PAD + 1));
    let mut ppre: Vec<u32> = Vec::with_capacity(len + groups.len() * (PAD + 1) + 1);
    let mut acked_before = 0u32;
    for g in &groups {
        let (a, b) = (g.start - s0, g.end - s0);
        pseq.push(0);
        ppre.push(acked_before);
        pa.push(pseq.len());
        for j in a..b {
            pseq.push(seq[j]);
            ppre.push(acked_before);
            acked_before += u32::from(is_acked[j]);
        }
        for _ in 0..PAD {
            pseq.push(u32::MAX);
            ppre.push(acked_before);
        }
    }
    ppre.push(acked_before);
    let base: Vec<u32> = pa.iter().map(|&p| ppre[p]).collect();
    let mut queries: Vec<(u32, u32)> = Vec::new();
    let mut ordered = 0u64;
    let mut cur: Vec<usize> = vec![0; groups.len()];
    for (q, gq) in groups.iter().enumerate() {
        let (qa, qb) = (gq.start - s0, gq.end - s0);
        if pre[qb] == pre[qa] {
            continue;
        }
        cur.copy_from_slice(&pa);
        // the first slot of `q` with the current write's seq
        let mut own = qa;
        for j in qa..qb {
            if j + PREFETCH < qb {
                idx.prefetch_projection(crate::ids::Slot::new(s0 + j + PREFETCH));
            }
            if !is_acked[j] {
                continue;
            }
            let Some(sp) = idx.sparse_at(crate::ids::Slot::new(s0 + j)) else {
                continue;
            };
            if !retired.is_empty() {
                queries.push((sp.epoch, sp.m));
            }
            for (&gi, &e) in sp.groups.iter().zip(sp.entries) {
                let gi = gi as usize;
                if gi == q {
                    continue;
                }
                // an entry is a seq, never `u32::MAX` (the padding)
                let e = e.min(u32::MAX - 1);
                let mut c = cur[gi];
                if pseq[c - 1] > e {
                    // not expected (clocks grow along a session): search
                    let (a, b) = (pa[gi], pa[gi] + (groups[gi].end - groups[gi].start));
                    c = a + pseq[a..b].partition_point(|&s| s <= e);
                } else {
                    loop {
                        let w = &pseq[c..c + PAD];
                        let step = usize::from(w[0] <= e)
                            + usize::from(w[1] <= e)
                            + usize::from(w[2] <= e)
                            + usize::from(w[3] <= e);
                        c += step;
                        if step < PAD {
                            break;
                        }
                    }
                }
                cur[gi] = c;
                ordered += u64::from(ppre[c] - base[gi]);
            }
            while seq[own] < seq[j] {
                own += 1;
            }
            ordered += u64::from(pre[own] - pre[qa]);
        }
    }
    Some(ordered + retired_ordered(retired, queries))
}

fn has_concurrency(x: &Explain, idx: &KeyIndex, acked: &[MopId]) -> bool {
    let h = x.h;
    let acked: Vec<MopId> = acked
        .iter()
        .copied()
        .filter(|&w| !idx.slot[w].is_none())
        .collect();
    acked.iter().enumerate().any(|(i, &a)| {
        acked[i + 1..]
            .iter()
            .any(|&b| h.mops[a].op != h.mops[b].op && !idx.hb(h, a, b) && !idx.hb(h, b, a))
    })
}

/// Switches tests set (their own module, importing nothing: the tests
/// import the checker, which imports this module).
#[cfg(test)]
mod switches {
    /// Set by a test: `register_losses` asks about every judged write
    /// instead of leaving out those a final state supersedes (which only
    /// changes the time other tests take, not their results).
    pub(super) static NO_SKIP: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);

    /// Set by a test: the final states are judged in one pass, not in two
    /// halves on two threads (only the time other tests take changes).
    pub(super) static NO_SPLIT: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::testutil::{check, found, history};

    /// Reports on hot register keys (final states holding one of many
    /// concurrent writes: `conflict-loss` for most keys) are the same when
    /// `register_losses` leaves out the writes the final states supersede
    /// as when it asks about every write.
    #[test]
    fn register_losses_skip_only_what_the_final_state_supersedes() {
        use crate::synth::{GenOptions, Workload};
        for (seed, keys, processes, mops, info_rate) in [
            (1u64, 2u32, 6u32, 1u32, 0.0),
            (2, 3, 8, 4, 0.02),
            (3, 1, 20, 2, 0.1),
        ] {
            let mut o = GenOptions::new(Workload::Register, 3000, processes, 3, seed);
            o.fail_rate = 0.02;
            o.info_rate = info_rate;
            o.mops = Some(mops);
            o.keys = Some(keys);
            o.max_writes_per_key = u32::MAX;
            let h = crate::testutil::generated(&o);
            let report = |guarantees: Vec<crate::report::Guarantee>| {
                let opts = crate::check::CheckOptions {
                    guarantees,
                    ..Default::default()
                };
                serde_json::to_string(&crate::check::check_history(&h, &opts)).expect("json")
            };
            use crate::report::Guarantee;
            let gs = [vec![Guarantee::Causal], vec![Guarantee::Linearizable]];
            let fast: Vec<String> = gs.iter().map(|g| report(g.clone())).collect();
            super::switches::NO_SKIP.store(true, std::sync::atomic::Ordering::Relaxed);
            let slow: Vec<String> = gs.iter().map(|g| report(g.clone())).collect();
            super::switches::NO_SKIP.store(false, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(fast, slow, "seed {seed}");
            assert!(fast[0].contains("conflict-loss"), "seed {seed}");
        }
    }

    /// Reports with "an unknown read happens before a write" read from
    /// projected clocks equal those with every such question searched in
    /// the graph: hot register histories with `info` transactions, a
    /// divergence or a lost write injected (writes missing from final
    /// states, each asked about the key's unknown reads).
    #[test]
    fn unknown_reads_from_clocks_report_what_graph_searches_report() {
        use crate::report::{Anomaly, Guarantee};
        use crate::synth::{GenOptions, Workload};
        for (seed, keys, mops, inject) in [
            (1u64, 2u32, 1u32, Some(Anomaly::Divergence)),
            (2, 3, 3, Some(Anomaly::LostWrite)),
            (3, 1, 2, None),
        ] {
            let mut o = GenOptions::new(Workload::Register, 2000, 8, 3, seed);
            o.info_rate = 0.05;
            o.keys = Some(keys);
            o.mops = Some(mops);
            o.max_writes_per_key = u32::MAX;
            o.inject = inject;
            let h = crate::testutil::generated(&o);
            let report = |guarantees: Vec<Guarantee>| {
                let opts = crate::check::CheckOptions {
                    guarantees,
                    ..Default::default()
                };
                serde_json::to_string(&crate::check::check_history(&h, &opts)).expect("json")
            };
            let gs = [
                vec![],
                vec![Guarantee::Causal],
                vec![Guarantee::Linearizable],
            ];
            let fast: Vec<String> = gs.iter().map(|g| report(g.clone())).collect();
            let flag = &crate::analysis::unknown_reads::switches::NO_CLOCKS;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            let slow: Vec<String> = gs.iter().map(|g| report(g.clone())).collect();
            flag.store(false, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(fast, slow, "seed {seed}");
            if let Some(a) = inject {
                assert!(fast[0].contains(a.as_str()), "seed {seed}: {a:?}");
            }
        }
    }

    /// Reports with the keys judged in two halves (every history here is
    /// over `PARALLEL_FINALS` writes in unit tests) equal those of one
    /// pass: every workload, with each anomaly injected, over several keys
    /// (examples capped at 2, so the merge's order shows).
    #[test]
    fn finals_in_two_halves_report_what_one_pass_reports() {
        use crate::report::Guarantee;
        use crate::synth::{GenOptions, Workload};
        let mut split = 0;
        for (i, workload) in [
            Workload::Register,
            Workload::ListAppend,
            Workload::Set,
            Workload::Counter,
        ]
        .into_iter()
        .enumerate()
        {
            for (j, inject) in std::iter::once(None)
                .chain(crate::synth::inject::INJECTABLE.map(Some))
                .enumerate()
            {
                if inject == Some(Anomaly::InvalidHistory) {
                    continue;
                }
                let mut o = GenOptions::new(workload, 400, 6, 3, (i * 100 + j) as u64);
                o.keys = Some(8);
                o.inject = inject;
                o.info_rate = 0.05;
                let bytes = crate::synth::generate_vec(&o);
                let Ok(h) = crate::reader::read_history(&bytes[..]) else {
                    continue;
                };
                let report = || {
                    let opts = crate::check::CheckOptions {
                        guarantees: vec![Guarantee::Causal],
                        max_examples: 2,
                        ..Default::default()
                    };
                    serde_json::to_string(&crate::check::check_history(&h, &opts)).expect("json")
                };
                let keys = h.keys.ids().filter(|&k| h.key_kind[k].is_some()).count();
                let writes: usize = h.key_writes.iter().map(|w| w.len()).sum();
                split += usize::from(keys >= 2 && writes >= PARALLEL_FINALS);
                let two = report();
                super::switches::NO_SPLIT.store(true, std::sync::atomic::Ordering::Relaxed);
                let one = report();
                super::switches::NO_SPLIT.store(false, std::sync::atomic::Ordering::Relaxed);
                assert_eq!(two, one, "{workload:?} {inject:?}");
            }
        }
        assert!(split >= 40, "{split} histories judged in two halves");
    }

    /// Every pair of `acked` compared with `hb`: the reference count.
    fn pairs_by_hb(h: &History, idx: &KeyIndex, acked: &[MopId]) -> u64 {
        let mut want = 0u64;
        for (i, &a) in acked.iter().enumerate() {
            for &b in &acked[i + 1..] {
                if h.mops[a].op != h.mops[b].op && !idx.hb(h, a, b) && !idx.hb(h, b, a) {
                    want += 1;
                }
            }
        }
        want
    }

    /// `concurrent_pairs` on hot register keys (long runs: few sessions,
    /// many writes each, `long_runs_ordered`), with transactions of several
    /// operations (two writes of one key in one transaction) and with
    /// indeterminate ones (slots that are not acknowledged), counts what a
    /// comparison of every pair counts.
    #[test]
    fn concurrent_pairs_on_long_runs_agree_with_every_pair() {
        let mut long = 0;
        for (seed, keys, processes, mops, info_rate) in [
            (1u64, 1u32, 4u32, 1u32, 0.0),
            (2, 3, 6, 4, 0.0),
            (3, 2, 5, 3, 0.05),
            (4, 4, 12, 2, 0.02),
        ] {
            let h = crate::testutil::hot_register(seed, 4000, keys, processes, mops, info_rate);
            let (idx, c) = crate::testutil::indexed(&h);
            assert!(c.cycles.is_empty());
            let x = Explain { h: &h, c: &c };
            for k in h.keys.ids() {
                let acked: Vec<MopId> = h.key_writes[k]
                    .iter()
                    .copied()
                    .filter(|&w| h.op_of(w).outcome == Outcome::Ok)
                    .collect();
                if idx.small(k) || acked.len() <= 256 {
                    continue;
                }
                let with_slots: Vec<MopId> = acked
                    .iter()
                    .copied()
                    .filter(|&w| !idx.slot[w].is_none())
                    .collect();
                long += usize::from(long_runs_ordered(&idx, k, &with_slots).is_some());
                let want = pairs_by_hb(&h, &idx, &acked);
                assert!(want > 0);
                assert_eq!(
                    concurrent_pairs(&x, &idx, k, &acked),
                    want,
                    "seed {seed} key {k}"
                );
            }
        }
        assert!(long >= 8, "{long} keys with long runs");
    }

    /// `concurrent_pairs` on large keys (stored and retired projected
    /// entries, a Fenwick sum over retired processes) counts what a
    /// comparison of every pair counts, on `lin-kv` histories where most
    /// writer processes are retired from their clock slots.
    #[test]
    fn concurrent_pairs_agree_with_every_pair_under_retirement() {
        use crate::causality::{session, Causality, ReadsFrom, Writers};
        // The last two: long-lived processes, so a key's runs are long
        // (`concurrent_pairs` searches them forward per process).
        for (seed, keys, clients, info_rate) in [
            (1u64, 1u32, 5u32, 0.25),
            (2, 2, 8, 0.25),
            (3, 3, 40, 0.25),
            (4, 1, 3, 0.0),
            (5, 1, 4, 0.02),
        ] {
            let h = crate::testutil::lin_kv_history(seed, 3000, keys, clients, info_rate);
            let (seq, prev) = session(&h);
            let mut idx = KeyIndex::new(&h, &seq);
            let rf = ReadsFrom::new(&h, &Writers::new(&h, &seq));
            let c = Causality::build(&h, seq, prev, rf, |op, clock, c| {
                idx.record(&h, c, op, clock)
            });
            idx.finish(&h);
            if info_rate > 0.1 {
                assert!(c.clock_slots * 2 < c.width, "{} {}", c.clock_slots, c.width);
            }
            let x = Explain { h: &h, c: &c };
            for k in h.keys.ids() {
                let acked: Vec<MopId> = h.key_writes[k]
                    .iter()
                    .copied()
                    .filter(|&w| h.op_of(w).outcome == Outcome::Ok)
                    .collect();
                assert!(!idx.small(k) && acked.len() > 256);
                let mut want = 0u64;
                for (i, &a) in acked.iter().enumerate() {
                    for &b in &acked[i + 1..] {
                        if h.mops[a].op != h.mops[b].op && !idx.hb(&h, a, b) && !idx.hb(&h, b, a) {
                            want += 1;
                        }
                    }
                }
                assert!(want > 0);
                assert_eq!(
                    concurrent_pairs(&x, &idx, k, &acked),
                    want,
                    "seed {seed} key {k}"
                );
            }
        }
    }

    #[test]
    fn a_write_replaced_in_its_own_transaction_is_not_judged() {
        let h = history(&[(
            0,
            "n1",
            "txn",
            r#"[["w","x",1],["r","x",1],["w","x",2],["w","y",3]]"#,
        )]);
        let m = |i: usize| MopId::new(h.ops[0].mops_start.index() + i);
        assert!(overwritten_in_txn(&h, m(0)));
        assert!(!overwritten_in_txn(&h, m(2)) && !overwritten_in_txn(&h, m(3)));
    }

    #[test]
    fn counter_bounds_are_exact_past_i64() {
        let max = i64::MAX;
        // Two ok increments of i64::MAX, final -2 (the wrapped sum): lost.
        let v = format!(r#"[["incr","c",{max}]]"#);
        let r = check(&[
            (0, "n1", "txn", &v),
            (1, "n1", "txn", &v),
            (2, "n1", "final", r#"[["r","c",-2]]"#),
        ]);
        assert_eq!(found(&r), vec![(Anomaly::LostWrite, 1)]);
        let amount = &r.anomalies[&Anomaly::LostWrite].examples[0].detail["amount"];
        assert_eq!(amount, &serde_json::json!("18446744073709551616"));
        // The final i64::MAX itself: valid.
        let r = check(&[
            (0, "n1", "txn", &v),
            (1, "n1", "final", &format!(r#"[["r","c",{max}]]"#)),
        ]);
        assert_eq!(r.verdict, Verdict::Valid);
    }

    #[test]
    fn deletes_decide_what_an_empty_final_state_means() {
        // p0 writes 1 then deletes: fine. p1 deletes before writing 2 on
        // key y: causal-overwrite. z: a write and a concurrent delete:
        // conflict-loss.
        let r = check(&[
            (0, "n1", "txn", r#"[["w","x",1]]"#),
            (0, "n1", "txn", r#"[["d","x",null]]"#),
            (1, "n1", "txn", r#"[["d","y",null]]"#),
            (1, "n1", "txn", r#"[["w","y",2]]"#),
            (2, "n1", "txn", r#"[["w","z",3]]"#),
            (3, "n2", "txn", r#"[["d","z",null]]"#),
            (
                4,
                "n1",
                "final",
                r#"[["r","x",null],["r","y",null],["r","z",null]]"#,
            ),
            (
                5,
                "n2",
                "final",
                r#"[["r","x",null],["r","y",null],["r","z",null]]"#,
            ),
        ]);
        assert_eq!(
            found(&r),
            vec![(Anomaly::ConflictLoss, 1), (Anomaly::CausalOverwrite, 1)]
        );
    }
}
