//! `nonlinearizable`: whether each register key, on its own, behaves as one
//! atomic register in real time (linearizability is compositional, so the
//! keys are checked separately, on all cores).
//!
//! Each `ok` operation's micro-operations on the key form one atomic step
//! that must take effect between its invocation and its completion. A
//! compare-and-set is recorded as the transaction `[["r", k, from], ["w", k,
//! to]]`. An `info` operation may take effect at any point after its
//! invocation, or never; its reads are unknown. An `info` write nobody
//! observed can always be left out, so it is dropped; one that some `ok`
//! operation observed must have happened before the first such observer
//! completed, which becomes its deadline. `fail` operations are dropped.
//!
//! When a key has no order, the report gives the smallest set of its
//! operations found that still has none (closed under "the write this read
//! observed"), the step that cannot be placed, and a plain-English reason.

use serde_json::{json, Value as Json};

use super::lin_search::{search, search_plain, LinOp, Outcome, Step, EMPTY};
use crate::explain::{secs, Explain, Findings};
use crate::history::KeyKind;
use crate::model::{History, IdVec, KeyId, MopId, ObsKind, Outcome as OpOutcome};
use crate::report::{Anomaly, Example};

/// Default `--lin-budget`: placements tried per key before giving up.
pub const DEFAULT_BUDGET: u64 = 5_000_000;

/// Searches run to shrink one violation to a small window.
const SHRINK_SEARCHES: usize = 400;

/// What the linearizability check found, beside its findings.
#[derive(Debug, Default)]
pub struct LinOut {
    /// Register keys checked.
    pub keys: u64,
    /// Operations placed in the searches (after dropping `fail` and
    /// unobserved `info` operations).
    pub ops: u64,
    /// Why a key could not be decided (the first such key).
    pub unknown: Option<String>,
    /// Keys whose search ran out of budget.
    pub budget_keys: u64,
}

/// Checks every register key and reports `nonlinearizable` per key.
pub fn check(x: &Explain, budget: u64, f: &mut Findings) -> LinOut {
    let h = x.h;
    let Searched { per_key, results } = search_keys(h, budget);
    let mut out = LinOut {
        keys: results.len() as u64,
        ops: per_key.iter().map(|v| v.len() as u64).sum(),
        ..LinOut::default()
    };
    for (k, r) in results {
        match r {
            KeyResult::Linearizable => {}
            KeyResult::Budget(steps) => {
                out.budget_keys += 1;
                if out.unknown.is_none() {
                    out.unknown = Some(format!(
                        "the linearizability search of key {} stopped after {steps} placements (--lin-budget) without deciding",
                        h.key(k)
                    ));
                }
            }
            KeyResult::Violation(v) => {
                f.add(Anomaly::Nonlinearizable, || example(x, k, &per_key[k], &v));
            }
        }
    }
    out
}

/// Every register key's operations and verdict (in key order).
struct Searched {
    per_key: IdVec<KeyId, Vec<LinOp>>,
    results: Vec<(KeyId, KeyResult)>,
}

/// The search alone, for benchmarks: (register keys, operations searched,
/// keys without an order, keys over the budget).
pub fn search_only(h: &History, budget: u64) -> (u64, u64, u64, u64) {
    let s = search_keys(h, budget);
    let bad =
        |want: fn(&KeyResult) -> bool| s.results.iter().filter(|(_, r)| want(r)).count() as u64;
    (
        s.results.len() as u64,
        s.per_key.iter().map(|v| v.len() as u64).sum(),
        bad(|r| matches!(r, KeyResult::Violation(_))),
        bad(|r| matches!(r, KeyResult::Budget(_))),
    )
}

/// Gathers every register key's operations and searches each key, on all
/// cores (in contiguous chunks of keys).
fn search_keys(h: &History, budget: u64) -> Searched {
    let per_key = gather(h);
    let keys: Vec<KeyId> = h
        .keys
        .ids()
        .filter(|&k| h.key_kind[k] == Some(KeyKind::Register))
        .collect();
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = keys.len().div_ceil(cores).max(1);
    let results: Vec<(KeyId, KeyResult)> = std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .map(|ks| {
                let per_key = &per_key;
                s.spawn(move || {
                    ks.iter()
                        .map(|&k| (k, check_key(&per_key[k], budget)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|t| t.join().expect("linearizability search"))
            .collect()
    });
    Searched { per_key, results }
}

/// A key's verdict.
enum KeyResult {
    Linearizable,
    Budget(u64),
    Violation(Window),
}

/// A set of a key's operations (positions in its list) with no order, and
/// the one that cannot be placed.
struct Window {
    ops: Vec<usize>,
    stuck: usize,
    depth: usize,
    key_ops: usize,
}

fn check_key(ops: &[LinOp], budget: u64) -> KeyResult {
    match search(ops, budget) {
        Outcome::Linearizable { .. } => KeyResult::Linearizable,
        Outcome::Budget { steps } => KeyResult::Budget(steps),
        Outcome::NotLinearizable { stuck, depth } => {
            KeyResult::Violation(shrink(ops, (stuck, depth), budget))
        }
    }
}

/// Per key, its operations for the search, sorted by invocation.
fn gather(h: &History) -> IdVec<KeyId, Vec<LinOp>> {
    let mut per_key: IdVec<KeyId, Vec<LinOp>> = IdVec::filled(Vec::new(), h.keys.len());
    let mut mine: Vec<(KeyId, Step)> = Vec::new();
    for (i, op) in h.ops.iter_enumerated() {
        if op.outcome == OpOutcome::Fail {
            continue;
        }
        let info = op.outcome == OpOutcome::Info;
        mine.clear();
        for j in op.mop_ids() {
            let m = &h.mops[j];
            if h.key_kind[m.key] != Some(KeyKind::Register) {
                continue;
            }
            let step = if m.f == crate::history::MopFn::Delete {
                Step::Write(EMPTY)
            } else if m.is_write() {
                // Writes are named by their micro-operation's index.
                Step::Write(j.0)
            } else if info {
                continue; // an indeterminate read observed nothing we can use
            } else {
                read_step(h, m)
            };
            mine.push((m.key, step));
        }
        mine.sort_by_key(|&(k, _)| k);
        for g in mine.chunk_by(|a, b| a.0 == b.0) {
            per_key[g[0].0].push(LinOp {
                op: i,
                call: op.invoke_time,
                ret: if info { u64::MAX } else { op.complete_time },
                steps: g.iter().map(|&(_, s)| s).collect(),
            });
        }
    }
    for ops in per_key.iter_mut() {
        settle_info(ops);
        ops.sort_by_key(|o| (o.call, o.op));
    }
    per_key
}

/// What a read micro-operation observed, as a register state.
fn read_step(h: &History, m: &crate::model::MopRec) -> Step {
    match m.obs {
        ObsKind::Null => Step::Read(EMPTY),
        ObsKind::Int | ObsKind::List => {
            let ws = h.obs_writes(m);
            let vs = h.obs(m);
            if vs.is_empty() {
                Step::Read(EMPTY)
            } else if vs.iter().all(|&v| v == vs[0]) && !ws[0].is_none() {
                Step::Read(ws[0].0)
            } else {
                Step::Never
            }
        }
        ObsKind::NotRead => Step::Never,
    }
}

/// Drops `info` operations whose last write nobody observed, and gives the
/// others the completion of their first observer as deadline.
fn settle_info(ops: &mut Vec<LinOp>) {
    if ops.iter().all(|o| o.ret != u64::MAX) {
        return;
    }
    let mut deadline: rustc_hash::FxHashMap<u32, u64> = Default::default();
    for o in ops.iter().filter(|o| o.ret != u64::MAX) {
        for s in &o.steps {
            if let Step::Read(v) = *s {
                let d = deadline.entry(v).or_insert(u64::MAX);
                *d = (*d).min(o.ret);
            }
        }
    }
    // An indeterminate delete may be needed by any later read of nothing:
    // its deadline is the key's last completion, where placing it last is
    // the same as its never having happened.
    let last = ops.iter().map(|o| o.ret).filter(|&r| r != u64::MAX).max();
    ops.retain_mut(|o| {
        if o.ret != u64::MAX {
            return true;
        }
        if o.written() == Some(EMPTY) {
            o.ret = last.unwrap_or(o.call).max(o.call);
            return true;
        }
        match o.written().and_then(|v| deadline.get(&v)) {
            Some(&d) => {
                o.ret = d;
                true
            }
            None => false,
        }
    });
}

/// The operations a set must also drop when it drops `i`: those that read a
/// value only `i` wrote, and so on.
fn drop_closure(ops: &[LinOp], keep: &mut [bool], i: usize) {
    let mut todo = vec![i];
    while let Some(j) = todo.pop() {
        if !keep[j] {
            continue;
        }
        keep[j] = false;
        let written: Vec<u32> = ops[j]
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Write(v) => Some(*v),
                _ => None,
            })
            .collect();
        if written.is_empty() {
            continue;
        }
        for (r, o) in ops.iter().enumerate() {
            if keep[r]
                && o.steps
                    .iter()
                    .any(|s| matches!(s, Step::Read(v) if written.contains(v)))
            {
                todo.push(r);
            }
        }
    }
}

/// Whether the kept operations still have no order (a budget stop counts
/// as "has one": a window must be proven): their positions.
fn still_broken(ops: &[LinOp], keep: &[bool], budget: u64) -> Option<Vec<usize>> {
    let idx: Vec<usize> = (0..ops.len()).filter(|&i| keep[i]).collect();
    let sub: Vec<LinOp> = idx.iter().map(|&i| ops[i].clone()).collect();
    match search(&sub, budget) {
        Outcome::NotLinearizable { .. } => Some(idx),
        _ => None,
    }
}

/// The operation of `idx` (positions in `ops`) that the plain search's
/// deepest partial order could not get past, and that depth; when the
/// plain search runs out of budget, the reduced search's, else `fallback`.
fn blame(ops: &[LinOp], idx: &[usize], budget: u64, fallback: (usize, usize)) -> (usize, usize) {
    let sub: Vec<LinOp> = idx.iter().map(|&i| ops[i].clone()).collect();
    match search_plain(&sub, budget) {
        Outcome::NotLinearizable { stuck, depth } => (idx[stuck], depth),
        _ => match search(&sub, budget) {
            Outcome::NotLinearizable { stuck, depth } => (idx[stuck], depth),
            _ => fallback,
        },
    }
}

/// Shrinks a key's violation: cut everything invoked after the stuck
/// operation's deadline, then the longest prefix that can go, then single
/// operations, keeping every cut that still has no order. `found` is the
/// reduced search's (stuck operation, depth) on the whole key; the plain
/// search names the stuck operation, of the whole key and of the window.
fn shrink(ops: &[LinOp], found: (usize, usize), budget: u64) -> Window {
    let n = ops.len();
    let mut keep = vec![true; n];
    let all: Vec<usize> = (0..n).collect();
    let (stuck, _) = blame(ops, &all, budget, found);
    let mut best = all;
    let mut searches = 1usize;
    let try_keep =
        |keep: &mut Vec<bool>, cand: Vec<bool>, best: &mut Vec<usize>, searches: &mut usize| {
            *searches += 1;
            if let Some(b) = still_broken(ops, &cand, budget) {
                *keep = cand;
                *best = b;
                true
            } else {
                false
            }
        };
    // 1. Nothing invoked after the stuck operation's deadline matters to it.
    let end = ops[stuck].ret;
    let mut cand = keep.clone();
    for i in 0..n {
        if ops[i].call > end {
            drop_closure(ops, &mut cand, i);
        }
    }
    if cand != keep {
        try_keep(&mut keep, cand, &mut best, &mut searches);
    }
    // 2. The longest prefix (in invocation order) that can go, by bisection.
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi && searches < SHRINK_SEARCHES / 2 {
        let mid = (lo + hi).div_ceil(2);
        let mut cand = keep.clone();
        for i in 0..mid {
            drop_closure(ops, &mut cand, i);
        }
        if cand.iter().any(|&k| k) && try_keep(&mut keep, cand, &mut best, &mut searches) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    // 3. Single operations, latest first, while the window is small.
    if best.len() <= 64 {
        for i in (0..n).rev() {
            if searches >= SHRINK_SEARCHES {
                break;
            }
            if !keep[i] {
                continue;
            }
            let mut cand = keep.clone();
            drop_closure(ops, &mut cand, i);
            if cand.iter().any(|&k| k) {
                try_keep(&mut keep, cand, &mut best, &mut searches);
            }
        }
    }
    let (stuck, depth) = blame(ops, &best, budget, found);
    let ops_in = best;
    Window {
        ops: ops_in,
        stuck,
        depth,
        key_ops: n,
    }
}

/// A register state for people.
fn value(x: &Explain, v: u32) -> String {
    if v == EMPTY {
        "nothing (null)".into()
    } else {
        x.h.mops[MopId(v)].arg.to_string()
    }
}

/// What an operation did to the key: "write 2", "read 1", "compare-and-set
/// from 1 to 3", "transaction read 1, write 2".
fn what(x: &Explain, o: &LinOp) -> String {
    let info = x.h.ops[o.op].outcome == OpOutcome::Info;
    match o.steps.as_slice() {
        [Step::Write(EMPTY)] => "delete".into(),
        [Step::Write(v)] => format!("write {}", value(x, *v)),
        [Step::Read(v)] => format!("read {}", value(x, *v)),
        [Step::Never] => "read of an impossible state".into(),
        [Step::Read(a), Step::Write(b)] => {
            format!("compare-and-set from {} to {}", value(x, *a), value(x, *b))
        }
        steps => {
            let parts: Vec<String> = steps
                .iter()
                .map(|s| match s {
                    Step::Read(v) => format!("read {}", value(x, *v)),
                    Step::Write(v) => format!("write {}", value(x, *v)),
                    Step::Never => "read of an impossible state".into(),
                })
                .collect();
            format!(
                "{} {}",
                if info {
                    "transaction (reads unknown)"
                } else {
                    "transaction"
                },
                parts.join(", ")
            )
        }
    }
}

/// "write 2 by process 1 on n2 (op 7, 0.300 s to 0.400 s)"
fn describe(x: &Explain, o: &LinOp) -> String {
    format!("{} {}", what(x, o), who(x, o))
}

/// The operation that cannot be placed: as [`describe`], but a plain read
/// is "read" (the reason says what it returned).
fn subject(x: &Explain, o: &LinOp) -> String {
    match o.steps.as_slice() {
        [Step::Read(_)] => format!("read {}", who(x, o)),
        _ => describe(x, o),
    }
}

/// "by process 1 on n2 (op 7, 0.300 s to 0.400 s)"
fn who(x: &Explain, o: &LinOp) -> String {
    let op = &x.h.ops[o.op];
    let span = match op.outcome {
        OpOutcome::Ok => format!("{} to {}", secs(op.invoke_time), secs(op.complete_time)),
        _ => format!(
            "invoked at {}, indeterminate; a read needs it by {}",
            secs(op.invoke_time),
            secs(o.ret)
        ),
    };
    format!(
        "by process {} on {} (op {}, {span})",
        x.h.process_id(op.process),
        x.h.node(op.node),
        op.index()
    )
}

/// The value an operation needed to find that the window cannot give it.
fn needed(o: &LinOp) -> Option<u32> {
    o.steps.iter().find_map(|s| match s {
        Step::Read(v) => Some(*v),
        _ => None,
    })
}

/// Why the stuck operation cannot be placed, in plain English.
fn reason(x: &Explain, ops: &[LinOp], w: &Window) -> String {
    let s = &ops[w.stuck];
    let sd = subject(x, s);
    let verb = if matches!(s.steps.as_slice(), [Step::Read(_)]) {
        "returned"
    } else {
        "found"
    };
    if s.steps.contains(&Step::Never) {
        return format!(
            "the {sd} returned a value no single register state explains (several values at once, or a value no operation wrote)"
        );
    }
    let Some(v) = needed(s) else {
        return format!(
            "no order of these operations respects real time and the register's values; the search could place {} of them before it had to place the {sd}",
            w.depth
        );
    };
    let writer = w.ops.iter().copied().find(|&i| ops[i].written() == Some(v));
    let others = || w.ops.iter().copied().filter(|&i| i != w.stuck);
    // A write that certainly came between v's write and this operation.
    let between = others().find(|&i| {
        Some(i) != writer
            && ops[i].written().is_some_and(|u| u != v)
            && x.h.ops[ops[i].op].outcome == OpOutcome::Ok
            && ops[i].ret < s.call
            && writer.is_none_or(|wv| ops[wv].ret < ops[i].call)
    });
    if let Some(b) = between {
        let bv = value(x, ops[b].written().expect("a write"));
        return match writer {
            None => format!(
                "the {sd} {verb} {}, but the {} completed before it began, so the register held {bv} or a later value by then",
                value(x, v),
                describe(x, &ops[b])
            ),
            Some(wv) => format!(
                "the {sd} {verb} {}, but the {} began after the {} completed, and completed before the {} began: in any order that respects real time it replaced {} first, and no later write of {} exists",
                value(x, v),
                describe(x, &ops[b]),
                describe(x, &ops[wv]),
                if verb == "returned" { "read" } else { "compare-and-set" },
                value(x, v),
                value(x, v)
            ),
        };
    }
    // Another update that consumed the same value.
    if s.written().is_some() {
        if let Some(c) =
            others().find(|&i| needed(&ops[i]) == Some(v) && ops[i].written().is_some())
        {
            return format!(
                "both the {sd} and the {} found {} and replaced it; {} was written once, so whichever took effect second could not have found it: one update is lost",
                describe(x, &ops[c]),
                value(x, v),
                value(x, v)
            );
        }
    }
    if writer.is_none() && v != EMPTY {
        return format!(
            "the {sd} {verb} {}, but no operation in the history could have written it in time",
            value(x, v)
        );
    }
    format!(
        "no order of these operations respects real time and the register's values: the search could place {} of them, but never the {sd}, which needed {}",
        w.depth,
        value(x, v)
    )
}

fn example(x: &Explain, k: KeyId, ops: &[LinOp], w: &Window) -> Example {
    let h = x.h;
    let list: Vec<String> = w.ops.iter().map(|&i| describe(x, &ops[i])).collect();
    let explanation = format!(
        "key {} is not linearizable: {}. These {} of the key's {} operations cannot be ordered: {}",
        h.key(k),
        reason(x, ops, w),
        w.ops.len(),
        w.key_ops,
        list.join("; ")
    );
    let window: Vec<Json> = w
        .ops
        .iter()
        .map(|&i| {
            let o = &ops[i];
            let op = &h.ops[o.op];
            json!({
                "index": op.index(),
                "process": h.process_id(op.process),
                "node": h.node(op.node),
                "type": if op.outcome == OpOutcome::Ok { "ok" } else { "info" },
                "invoke_time": op.invoke_time,
                "complete_time": if op.outcome == OpOutcome::Ok { Some(op.complete_time) } else { None },
                "deadline": o.ret,
                "what": what(x, o),
                "impossible": i == w.stuck,
            })
        })
        .collect();
    let mut indices: Vec<u64> = w.ops.iter().map(|&i| h.ops[ops[i].op].index()).collect();
    indices.dedup();
    Example {
        explanation,
        key: Some(h.key(k).clone()),
        ops: indices,
        nodes: Vec::new(),
        detail: json!({
            "window": window,
            "impossible": h.ops[ops[w.stuck].op].index(),
            "placed": w.depth,
            "key_operations": w.key_ops,
        }),
    }
}
