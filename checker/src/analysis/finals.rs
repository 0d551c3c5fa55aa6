//! What the final phase shows: `divergence`, `lost-write` (all forms),
//! `conflict-loss`, `causal-overwrite`, counter `duplicate`, the conflict
//! class of every key, and the convergence time.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::convergence::convergence;
use super::loss_examples::{causal_example, conflict_example, counter_example, report_list_losses};
use super::policy::Policy;
use super::unknown_reads::UnknownReads;
use crate::explain::{Explain, Findings};
use crate::history::{KeyKind, MopFn};
use crate::keys::{superseded_by, KeyIndex};
use crate::model::{History, ObsKind, Outcome, NONE};
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
fn overwritten_in_txn(h: &History, w: u32) -> bool {
    let m = &h.mops[w as usize];
    let op = &h.ops[m.op as usize];
    (w as usize + 1..op.mops().end).any(|j| h.mops[j].key == m.key && h.mops[j].is_write())
}

/// Per node: whether it needs a final read, i.e. some transaction (not a
/// final) that completed `ok` or `info` named it (anomalies.md,
/// Clarifications). A node named only by failed transactions or by finals
/// need not have one.
pub fn needs_final(h: &History) -> Vec<bool> {
    let mut need = vec![false; h.nodes.len()];
    for op in &h.ops {
        if !op.is_final && op.outcome != Outcome::Fail {
            need[op.node as usize] = true;
        }
    }
    need
}

/// The last `ok` final op of each node (`NONE` when a node has none).
pub fn last_finals(h: &History) -> Vec<u32> {
    let mut last = vec![NONE; h.nodes.len()];
    for (i, op) in h.ops.iter().enumerate() {
        if op.is_final && op.outcome == Outcome::Ok {
            let n = op.node as usize;
            if last[n] == NONE || h.ops[last[n] as usize].complete_index < op.complete_index {
                last[n] = i as u32;
            }
        }
    }
    last
}

/// A key's state as compared between nodes: registers and sets as sorted
/// sets, lists as sequences, counters as one integer.
pub fn normalize(h: &History, kind: Option<KeyKind>, mop: u32) -> Vec<i64> {
    if mop == NONE {
        return if kind == Some(KeyKind::Counter) {
            vec![0]
        } else {
            Vec::new()
        };
    }
    let m = &h.mops[mop as usize];
    let vals = if m.obs == ObsKind::Null {
        &[][..]
    } else {
        h.obs(m)
    };
    match kind {
        Some(KeyKind::Counter) => vec![vals.first().copied().unwrap_or(0)],
        Some(KeyKind::List) => vals.to_vec(),
        _ => {
            let mut v = vals.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
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
fn final_reads(h: &History, finals: &[u32]) -> Vec<Vec<u32>> {
    finals
        .iter()
        .map(|&f| {
            let mut v = vec![NONE; h.keys.len()];
            if f != NONE {
                for mi in h.ops[f as usize].mops() {
                    v[h.mops[mi].key as usize] = mi as u32;
                }
            }
            v
        })
        .collect()
}

#[derive(Default)]
struct RegisterLoss {
    lost: Vec<String>,
    conflict: Vec<(String, Vec<u32>)>,
    causal: Vec<(String, u32)>,
    /// Missing from some node without being overwritten there, in
    /// happens-before or in real time: counts in the lost-writes figure.
    counted: bool,
}

/// Whether write `w` completed (acknowledged) before write `s` was invoked:
/// `s` overwrote it in real time, whatever happens-before says.
fn overwritten_in_real_time(h: &History, w: u32, s: u32) -> bool {
    let (a, b) = (h.op_of(w), h.op_of(s));
    a.outcome == Outcome::Ok && a.complete_time < b.invoke_time
}

/// `real_time`: the history is checked as linearizable, so a write
/// overwritten in real time is superseded, not lost or conflict-lost.
pub fn check(x: &Explain, idx: &KeyIndex, real_time: bool, f: &mut Findings) -> FinalsOut {
    let h = x.h;
    let finals = last_finals(h);
    // Nodes in name order, so examples list them as a reader expects.
    let mut with_final: Vec<usize> = (0..h.nodes.len()).filter(|&n| finals[n] != NONE).collect();
    with_final.sort_by(|&a, &b| h.nodes[a].cmp(&h.nodes[b]));
    let need = needs_final(h);
    let mut without: Vec<&str> = (0..h.nodes.len())
        .filter(|&n| finals[n] == NONE && need[n])
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
    // Writes some read observed. Only `ok` reads store values, and every
    // stored value belongs to one (reads share them), so the stored values'
    // writers are exactly the observed writes.
    let mut observed = vec![false; h.mops.len()];
    for &w in &h.resolved {
        if w != NONE {
            observed[w as usize] = true;
        }
    }
    let mut conflicts = Conflicts::default();
    let mut lost_set: Vec<u32> = Vec::new();
    let mut list_losses: Vec<(u32, Vec<usize>)> = Vec::new();
    let mut classes: BTreeMap<&'static str, Vec<Json>> = BTreeMap::new();
    let mut policy = Policy::default();
    let mut counter_deficit = 0i128;
    // Counter writes lost: per key, the fewest acknowledged increments
    // whose loss explains the largest deficit (which ones is unknowable).
    let mut counter_lost = 0u64;
    let mut unknown_reads = UnknownReads::new(h, x.c);

    for k in 0..h.keys.len() as u32 {
        let kind = h.key_kind[k as usize];
        if kind.is_none() {
            continue;
        }
        let acked: Vec<u32> = h.key_writes[k as usize]
            .iter()
            .copied()
            .filter(|&w| h.op_of(w).outcome == Outcome::Ok)
            .collect();
        conflicts.concurrent_pairs += concurrent_pairs(x, idx, k, &acked);
        if with_final.is_empty() {
            continue;
        }
        let states: Vec<Vec<i64>> = with_final
            .iter()
            .map(|&n| normalize(h, kind, reads[n][k as usize]))
            .collect();
        let mut distinct: Vec<(Vec<i64>, Vec<String>)> = Vec::new();
        for (i, s) in states.iter().enumerate() {
            let node = h.nodes[with_final[i]].clone();
            match distinct.iter_mut().find(|(d, _)| d == s) {
                Some((_, ns)) => ns.push(node),
                None => distinct.push((s.clone(), vec![node])),
            }
        }
        let diverged = distinct.len() > 1;
        if diverged {
            let order = kind == Some(KeyKind::List) && {
                let mut sorted: Vec<Vec<i64>> = distinct
                    .iter()
                    .map(|(s, _)| {
                        let mut s = s.clone();
                        s.sort_unstable();
                        s
                    })
                    .collect();
                sorted.dedup();
                sorted.len() == 1
            };
            f.add(Anomaly::Divergence, || {
                let parts = describe_difference(kind, &distinct, order);
                let nodes: Vec<String> = distinct.iter().flat_map(|(_, ns)| ns.clone()).collect();
                let mut ops: Vec<u32> = with_final.iter().map(|&n| finals[n]).collect();
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
        let mut lost_here = false;
        let mut class = Class::None;
        match kind {
            Some(KeyKind::List) | Some(KeyKind::Set) => {
                let sorted: Vec<Vec<i64>> = states
                    .iter()
                    .map(|s| {
                        let mut s = s.clone();
                        s.sort_unstable();
                        s
                    })
                    .collect();
                for &w in &acked {
                    let v = h.mops[w as usize].arg;
                    let missing: Vec<usize> = (0..with_final.len())
                        .filter(|&i| sorted[i].binary_search(&v).is_err())
                        .map(|i| with_final[i])
                        .collect();
                    if !missing.is_empty() {
                        lost_here = true;
                        lost_set.push(w);
                        list_losses.push((w, missing));
                    }
                }
                if !lost_here && !diverged && has_concurrency(x, idx, &acked) {
                    class = Class::Merged;
                }
            }
            Some(KeyKind::Counter) => {
                // Exact bounds: sums of i64 increments can leave i64
                // (anomalies.md, Clarifications: integers).
                let (mut lo, mut hi) = (0i128, 0i128);
                for &w in &h.key_writes[k as usize] {
                    let d = h.mops[w as usize].arg as i128;
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
                let low: Vec<(usize, i64)> = (0..with_final.len())
                    .filter(|&i| (states[i][0] as i128) < lo)
                    .map(|i| (with_final[i], states[i][0]))
                    .collect();
                let high: Vec<(usize, i64)> = (0..with_final.len())
                    .filter(|&i| states[i][0] as i128 > hi)
                    .map(|i| (with_final[i], states[i][0]))
                    .collect();
                if !low.is_empty() {
                    lost_here = true;
                    let deficit = low.iter().map(|&(_, v)| lo - v as i128).max().unwrap_or(0);
                    counter_deficit += deficit;
                    let mut incs: Vec<i64> = acked
                        .iter()
                        .map(|&w| h.mops[w as usize].arg)
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
                    counter_lost += n.max(1);
                    f.add(Anomaly::LostWrite, || {
                        counter_example(x, k, &finals, &low, lo, hi, true)
                    });
                }
                if !high.is_empty() {
                    f.add(Anomaly::Duplicate, || {
                        counter_example(x, k, &finals, &high, lo, hi, false)
                    });
                }
                if !lost_here && !diverged && has_concurrency(x, idx, &acked) {
                    class = Class::Merged;
                }
            }
            Some(KeyKind::Register) => {
                let mut losses: BTreeMap<u32, RegisterLoss> = BTreeMap::new();
                // Acknowledged deletes of the key (each the last write of
                // the key in its transaction).
                let deletes: Vec<u32> = acked
                    .iter()
                    .copied()
                    .filter(|&d| h.mops[d as usize].f == MopFn::Delete && !overwritten_in_txn(h, d))
                    .collect();
                for (i, &n) in with_final.iter().enumerate() {
                    let mop = reads[n][k as usize];
                    let state: Vec<u32> = if mop == NONE {
                        Vec::new()
                    } else {
                        h.obs_writes(&h.mops[mop as usize])
                            .iter()
                            .copied()
                            .filter(|&w| w != NONE && idx.slot[w as usize] != NONE)
                            .collect()
                    };
                    let _ = i;
                    for &w in &acked {
                        // Only a transaction's last write of the key is
                        // judged (anomalies.md, Clarifications).
                        if overwritten_in_txn(h, w) {
                            continue;
                        }
                        if state.contains(&w) {
                            continue;
                        }
                        let is_delete = |d: u32| h.mops[d as usize].f == MopFn::Delete;
                        // An empty state holds the deletes; a write that
                        // happens before an acknowledged delete is gone
                        // rightly.
                        if (state.is_empty() && is_delete(w))
                            || deletes.iter().any(|&d| superseded_by(h, idx, w, d))
                        {
                            continue;
                        }
                        let e = losses.entry(w).or_default();
                        let node = h.nodes[n].clone();
                        let rt = !state.is_empty()
                            && state.iter().any(|&s| overwritten_in_real_time(h, w, s));
                        if state.is_empty() {
                            // A causally older delete won, or a concurrent
                            // one won the conflict; else the write is lost.
                            // A delete invoked after `w` completed replaced
                            // it in real time: not counted, and superseded
                            // under `linearizable`.
                            let concurrent = |d: u32| {
                                h.mops[d as usize].op != h.mops[w as usize].op
                                    && !idx.hb(h, d, w)
                                    && !idx.hb(h, w, d)
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
                        } else if state.iter().any(|&s| superseded_by(h, idx, w, s)) {
                            // superseded by a causally later write
                        } else if real_time && rt {
                            // superseded by a write that began after it completed
                        } else if state
                            .iter()
                            .any(|&s| unknown_reads.may_supersede(w, s).is_some())
                        {
                            // possibly superseded: a write in the state may
                            // follow an unknown read of `w` (Interpretations)
                        } else if let Some(&s) = state.iter().find(|&&s| idx.hb(h, s, w)) {
                            e.counted |= !rt;
                            e.causal.push((node, s));
                        } else {
                            e.counted |= !rt;
                            e.conflict.push((node, state.clone()));
                        }
                    }
                }
                for (w, e) in losses {
                    if e.lost.is_empty() && e.conflict.is_empty() && e.causal.is_empty() {
                        continue;
                    }
                    if e.counted {
                        lost_set.push(w);
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
                            ops: x.indices(&[h.mops[w as usize].op]),
                            nodes: e.lost.clone(),
                            detail: json!({"graph": x.graph(&[h.mops[w as usize].op], &json!([]))}),
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
                // The frontier and the class.
                let eligible: Vec<u32> = idx
                    .key_writes(k)
                    .iter()
                    .copied()
                    .filter(|&w| match h.op_of(w).outcome {
                        Outcome::Ok => true,
                        Outcome::Info => observed[w as usize],
                        Outcome::Fail => false,
                    })
                    .collect();
                let frontier = register_frontier(h, idx, k, &eligible);
                if !diverged && !frontier.is_empty() {
                    let mop = reads[with_final[0]][k as usize];
                    let mut held: Vec<u32> = if mop == NONE {
                        Vec::new()
                    } else {
                        h.obs_writes(&h.mops[mop as usize])
                            .iter()
                            .copied()
                            .filter(|w| frontier.contains(w))
                            .collect()
                    };
                    // An empty state holds the frontier's deletes.
                    if mop == NONE || h.obs_writes(&h.mops[mop as usize]).is_empty() {
                        held.extend(
                            frontier
                                .iter()
                                .copied()
                                .filter(|&d| h.mops[d as usize].f == MopFn::Delete),
                        );
                    }
                    // Discarded frontier writes that a held write may have
                    // superseded through an unknown read are no conflict.
                    let state: Vec<u32> = if mop == NONE {
                        Vec::new()
                    } else {
                        h.obs_writes(&h.mops[mop as usize]).to_vec()
                    };
                    let contested: Vec<u32> = frontier
                        .iter()
                        .copied()
                        .filter(|&a| {
                            held.contains(&a)
                                || !state.iter().any(|&s| {
                                    s != NONE
                                        && idx.slot[s as usize] != NONE
                                        && unknown_reads.may_supersede(a, s).is_some()
                                })
                        })
                        .collect();
                    class = match held.len() {
                        0 => Class::Lost,
                        _ if contested.len() <= 1 => Class::None,
                        1 => {
                            policy.lww(x, held[0], &contested);
                            Class::Lww
                        }
                        _ => {
                            policy.siblings += 1;
                            Class::Siblings
                        }
                    };
                }
            }
            None => {}
        }
        if diverged {
            class = Class::Diverged;
        } else if lost_here {
            class = Class::Lost;
        }
        match class {
            Class::None => conflicts.none += 1,
            Class::Lww => conflicts.lww += 1,
            Class::Siblings => conflicts.siblings += 1,
            Class::Merged => conflicts.merged += 1,
            Class::Diverged => conflicts.diverged += 1,
            Class::Lost => conflicts.lost += 1,
        }
        if class != Class::None {
            let v = classes.entry(class.as_str()).or_default();
            if v.len() < 20 {
                v.push(serde_json::to_value(h.key(k)).expect("a key"));
            }
        }
    }
    report_list_losses(x, &list_losses, f);
    lost_set.sort_unstable();
    lost_set.dedup();
    FinalsOut {
        conflicts,
        lost_writes: lost_set.len() as u64 + counter_lost,
        convergence_ns: convergence(h),
        convergence_from: if h.nemesis.iter().any(|e| e.f == "heal") {
            "heal"
        } else {
            "final-phase"
        },
        unknown,
        policy: policy.describe(),
        classes_by_key: serde_json::to_value(classes).expect("json"),
        counter_deficit,
    }
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
fn register_frontier(h: &History, idx: &KeyIndex, k: u32, eligible: &[u32]) -> Vec<u32> {
    // Per group with an eligible write: its last one, and the last one of
    // another transaction (`NONE` if none).
    let mut lasts: Vec<(u32, u32)> = Vec::new();
    let mut e = 0;
    for g in idx.groups(k) {
        let mut last = NONE;
        let mut other = NONE;
        while e < eligible.len() && (idx.slot[eligible[e] as usize] as usize) < g.end {
            let w = eligible[e];
            if last != NONE && h.mops[last as usize].op != h.mops[w as usize].op {
                other = last;
            }
            last = w;
            e += 1;
        }
        if last != NONE {
            lasts.push((last, other));
        }
    }
    lasts
        .iter()
        .enumerate()
        .filter(|&(i, &(a, other))| {
            let own = other != NONE && superseded_by(h, idx, a, other);
            !own && !lasts
                .iter()
                .enumerate()
                .any(|(j, &(b, _))| j != i && superseded_by(h, idx, a, b))
        })
        .map(|(_, &(a, _))| a)
        .collect()
}

/// Pairs of acknowledged writes on key `k` that are concurrent (neither
/// happens before the other; two writes of one transaction are not a pair).
fn concurrent_pairs(x: &Explain, idx: &KeyIndex, k: u32, acked: &[u32]) -> u64 {
    let h = x.h;
    let acked: Vec<u32> = acked
        .iter()
        .copied()
        .filter(|&w| idx.slot[w as usize] != NONE)
        .collect();
    let n = acked.len() as u64;
    if n < 2 {
        return 0;
    }
    if idx.small(k) {
        let base = idx.key_start(k) as u32;
        let mut mask = 0u64;
        for &a in &acked {
            mask |= 1u64 << (idx.slot[a as usize] - base);
        }
        let mut count = 0u64;
        for &a in &acked {
            let sa = idx.slot[a as usize];
            let bit = sa - base;
            let later = if bit == 63 {
                0
            } else {
                !((1u64 << (bit + 1)) - 1)
            };
            let related = idx.pred[sa as usize] | idx.succ[sa as usize];
            count += (mask & later & !related).count_ones() as u64;
        }
        // two writes of one transaction are not a pair
        let mut ops: Vec<u32> = acked.iter().map(|&w| h.mops[w as usize].op).collect();
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
                if h.mops[a as usize].op != h.mops[b as usize].op
                    && !idx.hb(h, a, b)
                    && !idx.hb(h, b, a)
                {
                    count += 1;
                }
            }
        }
        return count;
    }
    // Large keys: count ordered pairs with clocks; each process's
    // acknowledged writes on `k` form sorted runs of seqs, kept per group
    // of the key (its index in `idx.groups(k)`, which holds every process
    // with a write on `k`), and only the groups with some are visited per
    // write (a map lookup per write and group made this quadratic with a
    // large constant on keys written by thousands of short-lived processes).
    let key_groups: Vec<u32> = idx.groups(k).map(|g| g.process).collect();
    let group_of: crate::fxhash::FxHashMap<u32, usize> = key_groups
        .iter()
        .enumerate()
        .map(|(gi, &p)| (p, gi))
        .collect();
    let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); key_groups.len()];
    for &w in &acked {
        let op = h.mops[w as usize].op;
        seqs[group_of[&x.c.process_of(op)]].push(x.c.seq[op as usize]);
    }
    let mut runs: Vec<(usize, u32, Vec<u32>)> = Vec::new();
    for (gi, mut g) in seqs.into_iter().enumerate() {
        if !g.is_empty() {
            g.sort_unstable();
            runs.push((gi, key_groups[gi], g));
        }
    }
    let mut ordered = 0u64;
    let mut same_op = 0u64;
    let mut ops: Vec<u32> = acked.iter().map(|&w| h.mops[w as usize].op).collect();
    ops.sort_unstable();
    for run in ops.chunk_by(|a, b| a == b) {
        let r = run.len() as u64;
        same_op += r * (r - 1) / 2;
    }
    for &b in &acked {
        let ob = h.mops[b as usize].op;
        let Some(proj) = idx.projection(b) else {
            continue;
        };
        let pb = x.c.process_of(ob);
        for (gi, p, seqs) in &runs {
            let bound = if *p == pb {
                x.c.seq[ob as usize] - 1
            } else {
                proj[*gi]
            };
            ordered += seqs.partition_point(|&s| s <= bound) as u64;
        }
    }
    (n * (n - 1) / 2).saturating_sub(ordered + same_op)
}

fn has_concurrency(x: &Explain, idx: &KeyIndex, acked: &[u32]) -> bool {
    let h = x.h;
    let acked: Vec<u32> = acked
        .iter()
        .copied()
        .filter(|&w| idx.slot[w as usize] != NONE)
        .collect();
    acked.iter().enumerate().any(|(i, &a)| {
        acked[i + 1..].iter().any(|&b| {
            h.mops[a as usize].op != h.mops[b as usize].op && !idx.hb(h, a, b) && !idx.hb(h, b, a)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::testutil::{check, found, history};

    #[test]
    fn empty_states_normalize_alike() {
        let h = history(&[
            (
                0,
                "n1",
                "txn",
                r#"[["add","s",1],["incr","c",2],["w","r",3]]"#,
            ),
            (
                1,
                "n1",
                "final",
                r#"[["r","s",null],["r","c",null],["r","r",null]]"#,
            ),
            (
                2,
                "n2",
                "final",
                r#"[["r","s",[]],["r","c",0],["r","r",[]]]"#,
            ),
        ]);
        let reads = |op: usize| -> Vec<u32> { h.ops[op].mops().map(|m| m as u32).collect() };
        let (a, b) = (reads(1), reads(2));
        for (i, kind) in [KeyKind::Set, KeyKind::Counter, KeyKind::Register]
            .into_iter()
            .enumerate()
        {
            assert_eq!(
                normalize(&h, Some(kind), a[i]),
                normalize(&h, Some(kind), b[i]),
                "{kind:?}"
            );
        }
        assert_eq!(normalize(&h, Some(KeyKind::Counter), a[1]), vec![0]);
        assert_eq!(normalize(&h, Some(KeyKind::Counter), NONE), vec![0]);
        assert!(normalize(&h, Some(KeyKind::Set), NONE).is_empty());
    }

    #[test]
    fn only_nodes_of_ok_or_info_transactions_need_a_final_read() {
        let mut text = String::new();
        let lines = [
            r#"{"index":0,"time":0,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}"#,
            r#"{"index":1,"time":1,"type":"ok","process":0,"node":"n1","f":"txn","value":[["append","x",1]]}"#,
            r#"{"index":2,"time":2,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["append","x",2]]}"#,
            r#"{"index":3,"time":3,"type":"fail","process":1,"node":"n2","f":"txn","value":[["append","x",2]]}"#,
            r#"{"index":4,"time":4,"type":"invoke","process":2,"node":"n3","f":"txn","value":[["append","x",3]]}"#,
            r#"{"index":5,"time":5,"type":"info","process":2,"node":"n3","f":"txn","value":null}"#,
            r#"{"index":6,"time":6,"type":"invoke","process":3,"node":"n4","f":"final","value":[["r","x",null]]}"#,
            r#"{"index":7,"time":7,"type":"ok","process":3,"node":"n4","f":"final","value":[["r","x",[1,3]]]}"#,
        ];
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        let h = crate::reader::read_history(text.as_bytes()).expect("valid");
        let need: Vec<(String, bool)> = h.nodes.iter().cloned().zip(needs_final(&h)).collect();
        let need: BTreeMap<String, bool> = need.into_iter().collect();
        assert!(need["n1"]);
        assert!(!need["n2"], "only a failed transaction");
        assert!(need["n3"], "an indeterminate one");
        assert!(!need["n4"], "only finals");
    }

    #[test]
    fn a_write_replaced_in_its_own_transaction_is_not_judged() {
        let h = history(&[(
            0,
            "n1",
            "txn",
            r#"[["w","x",1],["r","x",1],["w","x",2],["w","y",3]]"#,
        )]);
        let m = |i: usize| (h.ops[0].mops_start as usize + i) as u32;
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
