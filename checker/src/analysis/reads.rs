//! Anomalies visible in a single read: `phantom`, `failed-write-visible`,
//! `future-read`, list `duplicate`, `stale-sibling` and `causal-order`. Each
//! read micro-operation counts once per name.

use serde_json::json;

use crate::causality::Writers;
use crate::explain::{secs, Explain, Findings};
use crate::history::{Key, KeyKind};
use crate::keys::KeyIndex;
use crate::model::{KeyId, MopId, MopRec, ObsKind, Op, OpId, Outcome, ProcId};
use crate::parts;
use crate::report::{Anomaly, Example};

/// Checks every read, split over the cores (see [`crate::parts`]): each
/// part's findings are merged in history order, so the report is the same
/// as one thread's.
pub fn check(x: &Explain, idx: &KeyIndex, writers: &Writers, f: &mut Findings) {
    let max = f.max_examples;
    let found = parts::run(&parts::by_observed(x.h), |_, p| {
        let mut g = Findings::new(max);
        check_range(x, idx, writers, p.ops.clone(), &mut g);
        g
    });
    for g in found {
        f.merge(g);
    }
}

/// Scratch buffers, reused from read to read.
#[derive(Default)]
struct Scratch {
    sorted: Vec<i64>,
    elems: Vec<(MopId, usize)>,
    max: Vec<u32>,
    others: Vec<(MopId, i64)>,
    seen: Vec<u64>,
}

/// One `ok` read micro-operation that observed values, being judged.
struct Read<'a> {
    /// The operation and its index.
    op: &'a Op,
    oi: OpId,
    /// The micro-operation and its index.
    m: &'a MopRec,
    mi: MopId,
    kind: Option<KeyKind>,
    /// Values observed, the write each resolved to (`NONE`: no write), and
    /// that write's (op, process).
    vals: &'a [i64],
    ws: &'a [MopId],
    wr: &'a [(OpId, ProcId)],
    key: Option<Key>,
}

fn check_range(
    x: &Explain,
    idx: &KeyIndex,
    writers: &Writers,
    ops: std::ops::Range<usize>,
    f: &mut Findings,
) {
    let h = x.h;
    let mut scratch = Scratch::default();
    for (oi, op) in h.ops[ops.clone()].iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let oi = OpId::new(oi + ops.start);
        for mi in op.mop_ids() {
            let m = &h.mops[mi];
            if !matches!(m.obs, ObsKind::Int | ObsKind::List) || m.obs_len == 0 {
                continue;
            }
            let kind = h.key_kind[m.key];
            if kind == Some(KeyKind::Counter) {
                continue;
            }
            let r = Read {
                op,
                oi,
                m,
                mi,
                kind,
                vals: h.obs(m),
                ws: h.obs_writes(m),
                wr: writers.of(m),
                key: Some(h.key(m.key).clone()),
            };
            check_read(x, idx, &r, &mut scratch, f);
        }
    }
}

/// Every single-read anomaly of one read, in the report's order.
fn check_read(x: &Explain, idx: &KeyIndex, r: &Read, scratch: &mut Scratch, f: &mut Findings) {
    let phantoms = phantom(x, r, f);
    failed_write_visible(x, r, f);
    future_read(x, r, f);
    if r.m.obs != ObsKind::List {
        return;
    }
    if r.kind == Some(KeyKind::List) {
        list_duplicate(x, idx, r, &phantoms, scratch, f);
    }
    // Sets have no order and no siblings: nothing below applies.
    if r.kind != Some(KeyKind::Set) {
        ordered_pair(x, idx, r, scratch, f);
    }
}

/// `phantom`: values no operation wrote. Returns them.
fn phantom(x: &Explain, r: &Read, f: &mut Findings) -> Vec<i64> {
    let h = x.h;
    let phantoms: Vec<i64> = if r.ws.contains(&MopId::NONE) {
        r.vals
            .iter()
            .zip(r.ws)
            .filter(|(_, &w)| w.is_none())
            .map(|(&v, _)| v)
            .collect()
    } else {
        Vec::new()
    };
    if !phantoms.is_empty() {
        f.add(Anomaly::Phantom, || Example {
            explanation: format!(
                "{} — but no operation in the history wrote {} to key {}",
                x.read(r.mi),
                join(&phantoms),
                h.key(r.m.key)
            ),
            key: r.key.clone(),
            ops: x.indices(&[r.oi]),
            nodes: vec![h.node(r.op.node).to_string()],
            detail: json!({"values": phantoms, "graph": x.graph(&[r.oi], &json!([]))}),
        });
    }
    phantoms
}

/// `failed-write-visible`: a resolved write that is not a vertex failed.
fn failed_write_visible(x: &Explain, r: &Read, f: &mut Findings) {
    let h = x.h;
    let is_failed = |(w, &(_, p)): (&MopId, &(OpId, ProcId))| !w.is_none() && p.is_none();
    if !r.ws.iter().zip(r.wr).any(is_failed) {
        return;
    }
    let failed: Vec<MopId> =
        r.ws.iter()
            .zip(r.wr)
            .filter(|&p| is_failed(p))
            .map(|(&w, _)| w)
            .collect();
    let wops: Vec<OpId> = failed.iter().map(|&w| h.mops[w].op).collect();
    f.add(Anomaly::FailedWriteVisible, || {
        let descs: Vec<String> = failed.iter().map(|&w| x.write(w)).collect();
        let mut ops = vec![r.oi];
        ops.extend(&wops);
        Example {
            explanation: format!(
                "{} — including the value of the {}, which failed and so must never be seen",
                x.read(r.mi),
                descs.join("; the ")
            ),
            key: r.key.clone(),
            ops: x.indices(&ops),
            nodes: vec![h.node(r.op.node).to_string()],
            detail: json!({"graph": x.graph(&ops, &json!([]))}),
        }
    });
}

/// `future-read`: a value written by an operation invoked after the read
/// completed. Ops are numbered in invoke order: only a write invoked after
/// the read (`wo > oi`) can have been.
fn future_read(x: &Explain, r: &Read, f: &mut Findings) {
    let h = x.h;
    let (op, oi) = (r.op, r.oi);
    let future = r.ws.iter().zip(r.wr).find_map(|(&w, &(wo, _))| {
        (!w.is_none() && !wo.is_none() && wo > oi && op.complete_time < h.ops[wo].invoke_time)
            .then_some(w)
    });
    let Some(w) = future else { return };
    let wo = h.mops[w].op;
    f.add(Anomaly::FutureRead, || Example {
        explanation: format!(
            "{} at {} — but the {} was only invoked at {}, after the read had completed",
            x.read(r.mi),
            secs(op.complete_time),
            x.write(w),
            secs(h.ops[wo].invoke_time)
        ),
        key: r.key.clone(),
        ops: x.indices(&[oi, wo]),
        nodes: vec![h.node(op.node).to_string()],
        detail: json!({
            "read_completed_ns": op.complete_time,
            "write_invoked_ns": h.ops[wo].invoke_time,
            "graph": x.graph(&[wo, oi], &json!([])),
        }),
    });
}

/// List `duplicate`: an element listed twice. Resolved values are unique
/// per write. Writes in the key index are marked in a bit set over the
/// key's slots; any other write (one that failed) is sorted by write; so
/// are the unresolved values (phantoms), if several.
fn list_duplicate(
    x: &Explain,
    idx: &KeyIndex,
    r: &Read,
    phantoms: &[i64],
    scratch: &mut Scratch,
    f: &mut Findings,
) {
    let h = x.h;
    let Scratch {
        sorted,
        others,
        seen,
        ..
    } = scratch;
    let mut dups: Vec<i64> = Vec::new();
    let base = idx.key_start(r.m.key);
    seen.clear();
    seen.resize(idx.key_writes(r.m.key).len().div_ceil(64), 0);
    others.clear();
    for ((&v, &w), &sl) in r.vals.iter().zip(r.ws).zip(idx.observed_slots(r.m)) {
        if w.is_none() {
            continue;
        }
        if !sl.is_none() {
            let j = sl.index() - base;
            let (word, bit) = (j / 64, 1u64 << (j % 64));
            if seen[word] & bit != 0 {
                dups.push(v);
            }
            seen[word] |= bit;
        } else {
            others.push((w, v));
        }
    }
    if others.len() > 1 {
        others.sort_unstable();
        dups.extend(
            others
                .windows(2)
                .filter(|p| p[0].0 == p[1].0)
                .map(|p| p[0].1),
        );
    }
    if phantoms.len() > 1 {
        sorted.clear();
        sorted.extend_from_slice(phantoms);
        sorted.sort_unstable();
        dups.extend(sorted.windows(2).filter(|p| p[0] == p[1]).map(|p| p[0]));
    }
    dups.sort_unstable();
    dups.dedup();
    if !dups.is_empty() {
        f.add(Anomaly::Duplicate, || Example {
            explanation: format!(
                "{} — {} appears more than once, but each element was appended once",
                x.read(r.mi),
                join(&dups)
            ),
            key: r.key.clone(),
            ops: x.indices(&[r.oi]),
            nodes: vec![h.node(r.op.node).to_string()],
            detail: json!({"values": dups, "graph": x.graph(&[r.oi], &json!([]))}),
        });
    }
}

/// Registers: `stale-sibling`, two siblings one of which happens before
/// the other. Lists: `causal-order`, an element listed before one that
/// happens before it. Only writes that can take part in happens-before
/// count (not the read's own transaction's, not failed ones).
fn ordered_pair(x: &Explain, idx: &KeyIndex, r: &Read, scratch: &mut Scratch, f: &mut Findings) {
    let h = x.h;
    let (mi, oi) = (r.mi, r.oi);
    let elems = &mut scratch.elems;
    elems.clear();
    for (i, (&w, &(wo, _))) in r.ws.iter().zip(r.wr).enumerate() {
        if !w.is_none() && wo != oi && !idx.slot[w].is_none() {
            elems.push((w, i));
        }
    }
    if elems.len() < 2 {
        return;
    }
    let Some((early, late)) = find_ordered_pair(x, idx, r.m.key, elems, &mut scratch.max) else {
        return;
    };
    match r.kind {
        Some(KeyKind::Register) => {
            // siblings c and d with c →hb d
            let (c, d) = (early, late);
            f.add(Anomaly::StaleSibling, || {
                example_with_path(
                    x,
                    mi,
                    oi,
                    c,
                    d,
                    format!(
                        "{} — a sibling set holding both the {} and the {}, though the first happens before the second, so the second should have replaced it",
                        x.read(mi),
                        x.write(c),
                        x.write(d)
                    ),
                )
            });
        }
        Some(KeyKind::List) => {
            // the list holds `b` before `a` although a →hb b
            let (a, b) = (early, late);
            f.add(Anomaly::CausalOrder, || {
                example_with_path(
                    x,
                    mi,
                    oi,
                    a,
                    b,
                    format!(
                        "{} — it lists {} before {}, but the {} happens before the {}",
                        x.read(mi),
                        h.mops[b].arg,
                        h.mops[a].arg,
                        x.write(a),
                        x.write(b)
                    ),
                )
            });
        }
        _ => {}
    }
}

/// For registers: two observed writes `c →hb d` (any order in the read).
/// For lists: `(a, b)` with `b` listed before `a` and `a →hb b`.
fn find_ordered_pair(
    x: &Explain,
    idx: &KeyIndex,
    key: KeyId,
    elems: &[(MopId, usize)],
    max: &mut Vec<u32>,
) -> Option<(MopId, MopId)> {
    let h = x.h;
    let is_list = h.key_kind[key] == Some(KeyKind::List);
    if idx.small(key) {
        let base = idx.key_start(key) as u32;
        let mut seen = 0u64;
        for &(w, _) in elems {
            let s = idx.slot[w];
            let bit = 1u64 << (s.0 - base);
            // an earlier-listed element that `w` happens before
            let later_than_w = idx.succ[s] & seen;
            if later_than_w != 0 {
                let j = later_than_w.trailing_zeros();
                return Some((w, idx.writes[(base + j) as usize]));
            }
            if !is_list {
                let earlier_than_w = idx.pred[s] & seen;
                if earlier_than_w != 0 {
                    let j = earlier_than_w.trailing_zeros();
                    return Some((idx.writes[(base + j) as usize], w));
                }
            }
            seen |= bit;
        }
        return None;
    }
    if is_list {
        return idx.first_inverted(h, key, elems, max);
    }
    // Registers: a read holds few siblings, so every pair is compared.
    for (j, &(wj, _)) in elems.iter().enumerate() {
        for &(wi, _) in &elems[..j] {
            if idx.hb(h, wj, wi) {
                return Some((wj, wi));
            }
            if !is_list && idx.hb(h, wi, wj) {
                return Some((wi, wj));
            }
        }
    }
    None
}

fn example_with_path(
    x: &Explain,
    mi: MopId,
    oi: OpId,
    from: MopId,
    to: MopId,
    text: String,
) -> Example {
    let h = x.h;
    let (fo, to_op) = (h.mops[from].op, h.mops[to].op);
    let path = x.c.path(fo, to_op).unwrap_or_else(|| vec![fo, to_op]);
    let (ptext, edges) = x.path(&path);
    let mut ops = vec![oi];
    ops.extend(&path);
    Example {
        explanation: format!("{text}. Path: {ptext}"),
        key: Some(h.key(h.mops[mi].key).clone()),
        ops: x.indices(&[oi, fo, to_op]),
        nodes: vec![h.node(h.ops[oi].node).to_string()],
        detail: json!({"path": edges, "graph": x.graph(&ops, &edges)}),
    }
}

fn join(vs: &[i64]) -> String {
    let s: Vec<String> = vs.iter().map(|v| v.to_string()).collect();
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use crate::report::{Anomaly, Verdict};
    use crate::testutil::{check, found};

    fn lines_report(lines: &[&str]) -> crate::report::Report {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let h = crate::reader::read_history(text.as_bytes()).expect("valid");
        let opts = crate::check::CheckOptions {
            guarantees: crate::report::Guarantee::ASYNC.to_vec(),
            ..Default::default()
        };
        crate::check::check_history(&h, &opts)
    }

    /// p1's read of x completes at `read_done`; p0's write of x 1 is
    /// invoked at time 20.
    fn read_then_write(read_done: u64) -> crate::report::Report {
        let rd = read_done;
        lines_report(&[
            r#"{"index":0,"time":10,"type":"invoke","process":1,"node":"n2","f":"txn","value":[["r","x",null]]}"#,
            &format!(
                r#"{{"index":1,"time":{rd},"type":"ok","process":1,"node":"n2","f":"txn","value":[["r","x",1]]}}"#
            ),
            r#"{"index":2,"time":20,"type":"invoke","process":0,"node":"n1","f":"txn","value":[["w","x",1]]}"#,
            r#"{"index":3,"time":30,"type":"ok","process":0,"node":"n1","f":"txn","value":[["w","x",1]]}"#,
            r#"{"index":4,"time":40,"type":"invoke","process":2,"node":"n1","f":"final","value":[["r","x",null]]}"#,
            r#"{"index":5,"time":50,"type":"ok","process":2,"node":"n1","f":"final","value":[["r","x",1]]}"#,
            r#"{"index":6,"time":60,"type":"invoke","process":3,"node":"n2","f":"final","value":[["r","x",null]]}"#,
            r#"{"index":7,"time":70,"type":"ok","process":3,"node":"n2","f":"final","value":[["r","x",1]]}"#,
        ])
    }

    #[test]
    fn future_read_is_decided_by_the_clock() {
        assert_eq!(found(&read_then_write(15)), vec![(Anomaly::FutureRead, 1)]);
        // Completing at the very time of the write's invoke is not the future.
        assert_eq!(read_then_write(20).verdict, Verdict::Valid);
    }

    #[test]
    fn values_nobody_wrote() {
        // A read of a key no operation writes that saw a value; a value a
        // failed write wrote; a list holding an element twice.
        let r = check(&[
            (0, "n1", "txn", r#"[["append","x",1]]"#),
            (1, "n2", "txn", r#"[["r","q",5]]"#),
            (1, "n2", "txn", r#"[["r","x",[1,1]]]"#),
            (2, "n1", "final", r#"[["r","x",[1]]]"#),
        ]);
        assert_eq!(
            found(&r),
            vec![(Anomaly::Duplicate, 1), (Anomaly::Phantom, 1)]
        );
    }

    #[test]
    fn stale_siblings_and_causal_order() {
        let r = check(&[
            (0, "n1", "txn", r#"[["w","x",1],["append","l",1]]"#),
            (1, "n2", "txn", r#"[["r","x",1],["r","l",[1]]]"#),
            (1, "n2", "txn", r#"[["w","x",2],["append","l",2]]"#),
            (2, "n3", "txn", r#"[["r","x",[1,2]],["r","l",[2,1]]]"#),
            (3, "n1", "final", r#"[["r","x",2],["r","l",[1,2]]]"#),
        ]);
        assert_eq!(
            found(&r),
            vec![(Anomaly::StaleSibling, 1), (Anomaly::CausalOrder, 1)]
        );
    }
}
